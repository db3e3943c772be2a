//! The real drivers through TLS sidecars: scylla and the Python cassandra-driver
//! (3-node CQL testbed), the mongodb crate and pymongo (3-member replica set), each
//! given one sidecar of one `tidemark proxy` with three routes, with TLS on both
//! sides of the proxy and certificate verification on everywhere. It proves that
//! - the drivers verify the sidecars' certificate (IP SANs, a CA made here with
//!   rcgen), learn only sidecar addresses (rewritten peers / hello) and work
//!   through them; the same driver trusting another CA is refused (verification
//!   is really on), and the proxy counts the failed handshake;
//! - the proxy re-originates TLS to the nodes: the testbed nodes speak plain TCP, so
//!   each sits behind a TLS terminator made here (`node.test`, the proxy's
//!   `--upstream-tls`); every connection a terminator accepted is a socket of the
//!   proxy process (looked up in /proc), and every connection a node accepted came
//!   from its terminator (the nodes' own accept log): nobody went around the proxy;
//! - what the drivers read back equals what the same workload gives run directly
//!   against the testbed (another keyspace / database, plain TCP), and the testbed's
//!   own state;
//! - the proxy's store holds exactly the committed writes, one per statement, in
//!   the order issued: replayed in the test, the CQL ones give the rows the drivers
//!   read and touch exactly the keys the replicas hold cells or tombstones for; the
//!   MongoDB ones touch the documents the committed oplog names, in its order, and
//!   leave the replica set's committed state.
//!
//! The two tests may run at once: they use separate loopback /24s and count the
//! node-side log by different fields (`node` vs `member`).

mod proxy_support;
mod ready_support;
#[path = "require/mod.rs"]
mod require;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, Document};
use proxy_support::{
    accepted_log, common_port, sample, scrape_within, spawn_proxy, wait_ready, Killed,
};
use ready_support::Lines;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::unprepared::Statement;
use scylla::statement::Consistency;
use serde_json::{json, Value};
use tidemark_testbed::{ClusterConfig, CqlCluster, MongoReplicaSet, ReplSetConfig};

/// Every wait on a driver, a child or a count.
const WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// The node side: who the testbed nodes accepted.

/// Every connection accepted so far by a node (`field` = "node" for CQL, "member"
/// for MongoDB; the two tests of this file use one each, so they may run at once):
/// (node index, peer address), in order.
fn accepted(field: &str) -> Vec<(usize, SocketAddr)> {
    let text = accepted_log().text();
    let mut out = Vec::new();
    for l in text.lines().filter(|l| l.contains(" connection")) {
        let value = |k: &str| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")).map(str::to_string))
        };
        let (Some(i), Some(peer)) = (
            value(field).and_then(|v| v.parse().ok()),
            value("peer").and_then(|v| v.parse().ok()),
        ) else {
            continue;
        };
        out.push((i, peer));
    }
    out
}

// ---------------------------------------------------------------------------
// Certificates.

struct Pki {
    ca: PathBuf,
    /// The sidecars' chain and key: IP SANs for every sidecar address.
    sidecar: (PathBuf, PathBuf),
    /// The terminators' (the nodes' TLS): `node.test`, the proxy's `--upstream-tls`.
    node: (String, String),
    /// A CA that signed nothing here: a client trusting only it must be refused.
    stranger: PathBuf,
}

fn make_pki(dir: &Path, sidecar_ips: &[Ipv4Addr]) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct subjects: OpenSSL (Python's ssl) takes a leaf whose subject equals
    // its issuer for self-signed, and rcgen gives every certificate the same one.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tidemark test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |cn: &str, names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        // rcgen makes a name that parses as an IP an iPAddress SAN.
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (cert, key) = leaf(
        "tidemark sidecars",
        sidecar_ips.iter().map(|ip| ip.to_string()).collect(),
    );
    Pki {
        ca: write("ca.pem", &ca.pem()),
        sidecar: (write("sidecar.pem", &cert), write("sidecar.key", &key)),
        node: leaf("node.test", vec!["node.test".into()]),
        stranger: write("stranger.pem", &{
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(DnType::CommonName, "stranger CA");
            params.self_signed(&key).unwrap().pem()
        }),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client trusting only the test CA (verification on: the driver checks
/// the sidecar's certificate against the IP it dials).
fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

// ---------------------------------------------------------------------------
// The TLS terminators in front of the nodes.

/// One connection a terminator accepted: which terminator, from where, and whether
/// that peer socket belonged to the proxy process when it was accepted.
#[derive(Debug, Clone)]
struct TermAccept {
    terminator: usize,
    peer: SocketAddr,
    from_proxy: bool,
}

/// Whether process `pid` holds the TCP socket `local` → `remote` (IPv4), from
/// /proc/net/tcp (the socket's inode) and /proc/PID/fd.
fn socket_of(pid: u32, local: SocketAddr, remote: SocketAddr) -> bool {
    let parse = |s: &str| -> Option<SocketAddr> {
        let (ip, port) = s.split_once(':')?;
        let ip = u32::from_str_radix(ip, 16).ok()?;
        let port = u16::from_str_radix(port, 16).ok()?;
        Some(SocketAddr::from((Ipv4Addr::from(ip.to_le_bytes()), port)))
    };
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let inodes: BTreeSet<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && parse(f[1]) == Some(local) && parse(f[2]) == Some(remote))
                .then(|| format!("socket:[{}]", f[9]))
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|t| inodes.contains(t.to_string_lossy().as_ref()))
    })
}

/// TLS terminators at `ips` (any port) with the node certificate, each relaying
/// plaintext to its node from its own IP (so the node's accept log names it). The
/// proxy's pid is set once it runs; every accept is checked against it at once,
/// while the proxy's socket is still open.
struct Terminators {
    addrs: Vec<SocketAddr>,
    accepts: Arc<Mutex<Vec<TermAccept>>>,
    proxy_pid: Arc<AtomicU32>,
}

fn start_terminators(
    rt: &tokio::runtime::Runtime,
    ips: &[Ipv4Addr],
    nodes: &[SocketAddr],
    cert: &(String, String),
) -> Terminators {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.0.as_bytes())
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(cert.1.as_bytes()).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let accepts = Arc::new(Mutex::new(Vec::new()));
    let proxy_pid = Arc::new(AtomicU32::new(0));
    let mut addrs = Vec::new();
    for (i, (ip, node)) in ips.iter().zip(nodes).enumerate() {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind((*ip, 0)))
            .unwrap();
        let me = listener.local_addr().unwrap();
        addrs.push(me);
        let (acceptor, accepts, pid, ip, node) = (
            acceptor.clone(),
            Arc::clone(&accepts),
            Arc::clone(&proxy_pid),
            *ip,
            *node,
        );
        rt.spawn(async move {
            // Bounded: no test here opens anywhere near this many connections.
            for _ in 0..200 {
                let Ok((tcp, peer)) = listener.accept().await else {
                    return;
                };
                let pid = pid.load(Ordering::SeqCst);
                let from_proxy = pid != 0 && socket_of(pid, peer, me);
                accepts.lock().unwrap().push(TermAccept {
                    terminator: i,
                    peer,
                    from_proxy,
                });
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(sock) = tokio::net::TcpSocket::new_v4() else {
                        return;
                    };
                    if sock.bind(SocketAddr::from((ip, 0))).is_err() {
                        return;
                    }
                    let Ok(mut db) = sock.connect(node).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut db).await;
                });
            }
        });
    }
    Terminators {
        addrs,
        accepts,
        proxy_pid,
    }
}

// ---------------------------------------------------------------------------
// The proxy.

/// One bed: the nodes, their terminators, one proxy with a TLS route per node.
struct Bed {
    nodes: Vec<SocketAddr>,
    sidecars: Vec<SocketAddr>,
    terminators: Terminators,
    metrics: SocketAddr,
    proxy: Killed,
    /// The proxy's stderr, read all along (a pipe nobody reads would block it).
    err: Lines,
    store: PathBuf,
    pki: Pki,
    _dir: tempfile::TempDir,
}

/// `third`: the loopback /24 of this bed. Sidecars .101-.103 (one port), the
/// terminators .201-.203, the metrics endpoint .100.
fn bed(rt: &tokio::runtime::Runtime, third: u8, nodes: Vec<SocketAddr>) -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let side_ips: Vec<Ipv4Addr> = (101..=103)
        .map(|d| Ipv4Addr::new(127, 0, third, d))
        .collect();
    let term_ips: Vec<Ipv4Addr> = (201..=203)
        .map(|d| Ipv4Addr::new(127, 0, third, d))
        .collect();
    let pki = make_pki(dir.path(), &side_ips);
    let terminators = start_terminators(rt, &term_ips, &nodes, &pki.node);
    let port = common_port(&side_ips, nodes[0].port());
    let sidecars: Vec<SocketAddr> = side_ips
        .iter()
        .map(|ip| SocketAddr::from((*ip, port)))
        .collect();
    let metrics_ip = Ipv4Addr::new(127, 0, third, 100);
    let metrics = SocketAddr::from((metrics_ip, common_port(&[metrics_ip], 0)));
    let mut args: Vec<String> = vec![
        "proxy".into(),
        "--metrics".into(),
        metrics.to_string(),
        "--upstream-tls".into(),
        "node.test".into(),
        "--upstream-ca".into(),
        pki.ca.display().to_string(),
        "--tls-cert".into(),
        pki.sidecar.0.display().to_string(),
        "--tls-key".into(),
        pki.sidecar.1.display().to_string(),
    ];
    // Routes go to the terminators; the addresses drivers learn are the nodes'
    // own, so the map is given node by node.
    for ((s, t), n) in sidecars.iter().zip(&terminators.addrs).zip(&nodes) {
        args.extend(["--route".into(), format!("{s}={t}")]);
        args.extend(["--map".into(), format!("{n}={s}")]);
    }
    let store = dir.path().join("store");
    let (proxy, mut err) = spawn_proxy(
        Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(&args)
            .arg("--store")
            .arg(&store)
            .args(["--drain", "2", "--no-sync", "--json"])
            .stdout(Stdio::null()),
    );
    terminators.proxy_pid.store(proxy.pid(), Ordering::SeqCst);
    wait_ready(&mut err);
    Bed {
        nodes,
        sidecars,
        terminators,
        metrics,
        proxy,
        err,
        store,
        pki,
        _dir: dir,
    }
}

impl Bed {
    /// Waits (bounded) until the nodes accepted, since `before`, as many
    /// connections as the terminators did and the proxy forwarded; then checks
    /// who they came from. Returns how many connections the terminators accepted.
    fn check_nobody_went_around(&self, field: &str, before: usize) -> usize {
        let deadline = Instant::now() + WAIT;
        let (nodes, terms, proxied) = loop {
            // Members of the replica set also connect to each other (replication),
            // from their own addresses: those are not clients.
            let nodes: Vec<(usize, SocketAddr)> = accepted(field)
                .into_iter()
                .skip(before)
                .filter(|(_, peer)| !self.nodes.iter().any(|n| n.ip() == peer.ip()))
                .collect();
            let terms = self.terminators.accepts.lock().unwrap().clone();
            let proxied = sample(
                &scrape_within(self.metrics, WAIT),
                "tidemark_proxy_connections_total",
            );
            if (nodes.len() == terms.len() && terms.len() as f64 == proxied)
                || Instant::now() > deadline
            {
                break (nodes, terms, proxied);
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(
            nodes.len(),
            terms.len(),
            "node accepts {nodes:?} vs terminator accepts {terms:?}"
        );
        assert_eq!(terms.len() as f64, proxied, "{terms:?}");
        // Every terminator was reached, and only by the proxy process.
        let reached: BTreeSet<usize> = terms.iter().map(|a| a.terminator).collect();
        assert_eq!(reached.len(), 3, "{terms:?}");
        for a in &terms {
            assert!(
                a.from_proxy,
                "terminator {} was reached from {}, not a socket of the proxy: {terms:?}",
                a.terminator, a.peer
            );
        }
        // Every node connection came from that node's own terminator.
        for (i, peer) in &nodes {
            assert_eq!(
                peer.ip(),
                self.terminators.addrs[*i].ip(),
                "node {i} accepted {peer}, not its terminator: {nodes:?}"
            );
        }
        // The check tells the proxy's sockets from others: one from this process
        // is seen as not the proxy's (its TLS never starts, so no node sees it).
        let probe = TcpStream::connect(self.terminators.addrs[0]).unwrap();
        let deadline = Instant::now() + WAIT;
        let probed = loop {
            if let Some(a) = self.terminators.accepts.lock().unwrap().get(terms.len()) {
                break a.clone();
            }
            assert!(Instant::now() < deadline, "the probe was never accepted");
            std::thread::sleep(Duration::from_millis(50));
        };
        drop(probe);
        assert!(!probed.from_proxy, "{probed:?}");
        let text = scrape_within(self.metrics, WAIT);
        assert_eq!(
            sample(&text, "tidemark_proxy_tls_failures_total"),
            0.0,
            "{text}"
        );
        assert!(
            sample(&text, "tidemark_proxy_rewrites_total") >= 3.0,
            "{text}"
        );
        assert_eq!(
            sample(&text, "tidemark_proxy_rewrite_errors_total"),
            0.0,
            "{text}"
        );
        terms.len()
    }

    /// Waits (bounded) until the proxy counted a failed TLS handshake (the client
    /// gives up before the proxy has seen the end of it).
    fn saw_tls_failure(&self) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            if sample(
                &scrape_within(self.metrics, WAIT),
                "tidemark_proxy_tls_failures_total",
            ) >= 1.0
            {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the proxy (SIGTERM, bounded wait) and reads its store.
    fn stop_and_log(mut self) -> Vec<Value> {
        let status = self.proxy.signal_and_wait("TERM", WAIT);
        assert!(status.success(), "proxy: {:?}", self.err.rest());
        let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["log", "--json", "--store"])
            .arg(&self.store)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|m| m["type"] == "mutation")
            .collect()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `python3 -c script args…` with a deadline; its last stdout line as JSON.
fn python(script: &str, args: &[String]) -> Value {
    let mut child = Killed(
        Command::new("python3")
            .args(["-c", script])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = Lines::follow(child.0.stdout.take().unwrap());
    let err = Lines::follow(child.0.stderr.take().unwrap());
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "python did not finish in {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.rest(), err.rest());
    assert!(status.success(), "python failed: {}", err.join("\n"));
    serde_json::from_str(out.last().expect("python printed nothing")).unwrap()
}

// ---------------------------------------------------------------------------
// CQL.

/// The CQL workload, the same for both drivers and both paths: keyspace `{ks}` is
/// put in. `q`: a simple statement; `prep`: prepared, bound to (int, text) rows;
/// `batch`: a logged batch of simple statements.
fn cql_workload(ks: &str) -> Vec<Value> {
    let steps = json!([
        {"q": "CREATE KEYSPACE {ks} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}"},
        {"q": "CREATE TABLE {ks}.users (id int PRIMARY KEY, name text, age int)"},
        {"q": "CREATE TABLE {ks}.events (pk int, ck int, v text, PRIMARY KEY (pk, ck))"},
        {"prep": "INSERT INTO {ks}.users (id, name) VALUES (?, ?)",
         "args": [[0, "u0"], [1, "u1"], [2, "u2"], [3, "u3"], [4, "u4"], [5, "u5"], [6, "u6"], [7, "u7"]]},
        {"q": "UPDATE {ks}.users SET age = 30 WHERE id = 1"},
        {"q": "UPDATE {ks}.users SET name = 'renamed', age = 41 WHERE id = 2"},
        {"q": "DELETE FROM {ks}.users WHERE id = 3"},
        {"q": "DELETE name FROM {ks}.users WHERE id = 5"},
        {"batch": [
            "INSERT INTO {ks}.events (pk, ck, v) VALUES (1, 1, 'a')",
            "INSERT INTO {ks}.events (pk, ck, v) VALUES (1, 2, 'b')",
            "INSERT INTO {ks}.events (pk, ck, v) VALUES (2, 1, 'c')",
            "UPDATE {ks}.users SET age = 50 WHERE id = 4"
        ]},
        {"q": "DELETE FROM {ks}.events WHERE pk = 1 AND ck = 2"},
        {"q": "UPDATE {ks}.events SET v = 'c2' WHERE pk = 2 AND ck = 1"},
        {"q": "INSERT INTO {ks}.events (pk, ck, v) VALUES (3, 7, 'd')"}
    ]);
    serde_json::from_str(&steps.to_string().replace("{ks}", ks)).unwrap()
}

/// The writes the workload makes: (table, key as the testbed's hex) per write, in
/// order (DDL excluded).
fn cql_writes() -> Vec<(&'static str, Vec<String>)> {
    let h = |v: i32| format!("{:08x}", v as u32);
    let mut w: Vec<(&str, Vec<String>)> = (0..8).map(|i| ("users", vec![h(i)])).collect();
    for id in [1, 2, 3, 5] {
        w.push(("users", vec![h(id)]));
    }
    w.extend([
        ("events", vec![h(1), h(1)]),
        ("events", vec![h(1), h(2)]),
        ("events", vec![h(2), h(1)]),
        ("users", vec![h(4)]),
        ("events", vec![h(1), h(2)]),
        ("events", vec![h(2), h(1)]),
        ("events", vec![h(3), h(7)]),
    ]);
    w
}

const READS: [&str; 2] = [
    "SELECT id, name, age FROM {ks}.users",
    "SELECT pk, ck, v FROM {ks}.events",
];

/// The workload with scylla to `contact` (TLS when `ca` is given), reads at
/// QUORUM; the nodes it learned and the rows read back, per table, sorted.
async fn scylla_workload(
    contact: SocketAddr,
    ks: &str,
    ca: Option<&Path>,
) -> (BTreeSet<SocketAddr>, Vec<Vec<Value>>) {
    let mut builder = SessionBuilder::new().known_node(contact.to_string());
    if let Some(ca) = ca {
        builder = builder.tls_context(Some(client_config(ca)));
    }
    let session: Session = builder.build().await.expect("scylla connects");
    let learned = session
        .get_cluster_state()
        .get_nodes_info()
        .iter()
        .map(|n| SocketAddr::new(n.address.ip(), n.address.port()))
        .collect();
    let stmt = |q: &str| {
        let mut s = Statement::new(q);
        s.set_consistency(Consistency::Quorum);
        s
    };
    for step in cql_workload(ks) {
        if let Some(q) = step["q"].as_str() {
            session.query_unpaged(stmt(q), ()).await.expect(q);
        } else if let Some(q) = step["prep"].as_str() {
            let mut p = session.prepare(q).await.expect(q);
            p.set_consistency(Consistency::Quorum);
            for a in step["args"].as_array().unwrap() {
                let row = (a[0].as_i64().unwrap() as i32, a[1].as_str().unwrap());
                session.execute_unpaged(&p, row).await.expect(q);
            }
        } else {
            let mut batch = Batch::new(BatchType::Logged);
            batch.set_consistency(Consistency::Quorum);
            let list = step["batch"].as_array().unwrap();
            for q in list {
                batch.append_statement(q.as_str().unwrap());
            }
            let values = vec![(); list.len()];
            session.batch(&batch, values).await.expect("batch");
        }
    }
    let mut tables = Vec::new();
    for (i, q) in READS.iter().enumerate() {
        let rows = session
            .query_unpaged(stmt(&q.replace("{ks}", ks)), ())
            .await
            .expect(q)
            .into_rows_result()
            .unwrap();
        let mut out: Vec<Value> = if i == 0 {
            rows.rows::<(i32, Option<String>, Option<i32>)>()
                .unwrap()
                .map(|r| {
                    let (a, b, c) = r.unwrap();
                    json!([a, b, c])
                })
                .collect()
        } else {
            rows.rows::<(i32, i32, Option<String>)>()
                .unwrap()
                .map(|r| {
                    let (a, b, c) = r.unwrap();
                    json!([a, b, c])
                })
                .collect()
        };
        out.sort_by_key(|v| v.to_string());
        tables.push(out);
    }
    (learned, tables)
}

fn scylla(
    rt: &tokio::runtime::Runtime,
    contact: SocketAddr,
    ks: &str,
    ca: Option<&Path>,
) -> (BTreeSet<SocketAddr>, Vec<Vec<Value>>) {
    rt.block_on(async { tokio::time::timeout(WAIT, scylla_workload(contact, ks, ca)).await })
        .expect("scylla workload within the deadline")
}

/// The same workload with the Python driver: `ssl.create_default_context(cafile=)`
/// verifies the chain and, with `check_hostname` on, the driver names each host by
/// the IP it dials (so the sidecars' IP SANs are checked).
const PY_CQL: &str = r#"
import json, ssl, sys
from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT
from cassandra.policies import RoundRobinPolicy
from cassandra.query import BatchStatement, BatchType, SimpleStatement
from cassandra import ConsistencyLevel
host, port, ca, steps, reads = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
ctx = None
if ca != "-":
    ctx = ssl.create_default_context(cafile=ca)
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
Q = ConsistencyLevel.QUORUM
profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), consistency_level=Q)
cluster = Cluster([host], port=port, ssl_context=ctx, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
s = cluster.connect()
for step in steps:
    if "q" in step:
        s.execute(step["q"])
    elif "prep" in step:
        p = s.prepare(step["prep"])
        for a in step["args"]:
            s.execute(p, a)
    else:
        b = BatchStatement(batch_type=BatchType.LOGGED, consistency_level=Q)
        for q in step["batch"]:
            b.add(SimpleStatement(q))
        s.execute(b)
tables = []
for q in reads:
    tables.append([list(r) for r in s.execute(SimpleStatement(q, consistency_level=Q))])
learned = sorted("%s:%d" % (h.endpoint.address, h.endpoint.port) for h in cluster.metadata.all_hosts())
# Pools open in the background after a host is learned: give them a bounded time
# before reading which exist (the assertion on them is unchanged).
import time as _t
_deadline = _t.time() + 20
while _t.time() < _deadline and len(s.get_pool_state()) < len(cluster.metadata.all_hosts()):
    _t.sleep(0.1)
pools = sorted("%s:%d" % (h.endpoint.address, h.endpoint.port) for h in s.get_pool_state().keys())
cluster.shutdown()
print(json.dumps({"learned": learned, "pools": pools, "tables": tables}))
"#;

fn python_cql(contact: SocketAddr, ks: &str, ca: Option<&Path>) -> (BTreeSet<String>, Value) {
    let reads: Vec<String> = READS.iter().map(|q| q.replace("{ks}", ks)).collect();
    let out = python(
        PY_CQL,
        &[
            contact.ip().to_string(),
            contact.port().to_string(),
            ca.map_or("-".into(), |p| p.display().to_string()),
            Value::from(cql_workload(ks)).to_string(),
            json!(reads).to_string(),
        ],
    );
    let strings = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let learned = strings(&out["learned"]);
    assert_eq!(learned, strings(&out["pools"]), "python pools: {out}");
    let mut tables = out["tables"].clone();
    for t in tables.as_array_mut().unwrap() {
        t.as_array_mut().unwrap().sort_by_key(|v| v.to_string());
    }
    (learned, tables)
}

/// A keyspace's rows in the testbed's own state, as (table, key hex) → column →
/// value hex; the row marker and the key columns are left out.
fn cql_truth(
    cluster: &CqlCluster,
    ks: &str,
) -> BTreeMap<(String, Vec<String>), BTreeMap<String, String>> {
    let mut out: BTreeMap<(String, Vec<String>), BTreeMap<String, String>> = BTreeMap::new();
    for c in cluster
        .logical_state()
        .into_iter()
        .filter(|c| c.keyspace == ks)
    {
        let key = [c.partition_key, c.clustering].concat();
        let row = out.entry((c.table, key)).or_default();
        if !c.column.is_empty() {
            row.insert(c.column, c.value);
        }
    }
    out
}

/// The store's CQL writes applied in order to an empty model, as the drivers read
/// the tables back: users `[id, name, age]`, events `[pk, ck, v]`, sorted. A row
/// an INSERT made lives by its marker; one only updated, while it has a value.
fn cql_replay(writes: &[&Value]) -> Value {
    let mut rows: BTreeMap<(String, String), (bool, serde_json::Map<String, Value>)> =
        BTreeMap::new();
    for m in writes {
        let table = m["namespace"].as_str().unwrap().split_once('.').unwrap().1;
        let key = (table.to_string(), m["key"].to_string());
        let values = m["values"].as_object().unwrap();
        match m["op"].as_str().unwrap() {
            "insert" | "update" => {
                let row = rows.entry(key).or_default();
                row.0 |= m["op"] == "insert";
                row.1.extend(values.clone());
            }
            "delete" => {
                let cols = m["columns_deleted"].as_array().unwrap();
                if cols.is_empty() {
                    rows.remove(&key);
                } else if let Some(row) = rows.get_mut(&key) {
                    for c in cols {
                        row.1.remove(c.as_str().unwrap());
                    }
                }
            }
            op => panic!("op {op} in {m}"),
        }
    }
    let mut tables = vec![Vec::new(), Vec::new()];
    for ((table, key), (marker, cells)) in rows {
        let cells: serde_json::Map<String, Value> =
            cells.into_iter().filter(|(_, v)| !v.is_null()).collect();
        if !marker && cells.is_empty() {
            continue;
        }
        let key: Value = serde_json::from_str(&key).unwrap();
        let cell = |c: &str| cells.get(c).cloned().unwrap_or(Value::Null);
        if table == "users" {
            tables[0].push(json!([key["id"], cell("name"), cell("age")]));
        } else {
            tables[1].push(json!([key["pk"], key["ck"], cell("v")]));
        }
    }
    for t in &mut tables {
        t.sort_by_key(|v| v.to_string());
    }
    json!(tables)
}

#[test]
fn cql_drivers_through_tls_sidecars_match_direct_and_the_store_holds_the_writes() {
    let started = Instant::now();
    accepted_log();
    let rt = runtime();
    let cluster = rt
        .block_on(CqlCluster::start(ClusterConfig {
            nodes: 3,
            base_addr: Ipv4Addr::new(127, 0, 96, 1),
            port: 0,
            ..ClusterConfig::default()
        }))
        .unwrap();
    let bed = bed(&rt, 96, cluster.addresses());
    let before = accepted("node").len();
    let sidecars: BTreeSet<SocketAddr> = bed.sidecars.iter().copied().collect();

    // Through the sidecars, TLS on both sides of the proxy.
    let (learned, rs_tls) = scylla(&rt, bed.sidecars[0], "dt_rs_tls", Some(&bed.pki.ca));
    assert_eq!(learned, sidecars, "scylla learned the sidecars");
    let py_ok = require::python_modules(&["cassandra"]);
    let mut py_tls = None;
    if py_ok {
        let (learned, tables) = python_cql(bed.sidecars[1], "dt_py_tls", Some(&bed.pki.ca));
        let want: BTreeSet<String> = sidecars.iter().map(|s| s.to_string()).collect();
        assert_eq!(learned, want, "python learned and pooled the sidecars");
        py_tls = Some(tables);
    }
    let proxied = bed.check_nobody_went_around("node", before);
    let proxied_phase = started.elapsed();
    // Verification is on: trusting another CA, the same driver gets no session,
    // and the proxy saw the handshake fail.
    let refused = rt.block_on(async {
        tokio::time::timeout(
            WAIT,
            SessionBuilder::new()
                .known_node(bed.sidecars[0].to_string())
                .tls_context(Some(client_config(&bed.pki.stranger)))
                .build(),
        )
        .await
    });
    assert!(
        matches!(refused, Ok(Err(_))),
        "a client not trusting the sidecars' CA must be refused"
    );
    assert!(
        bed.saw_tls_failure(),
        "the proxy counted no failed handshake"
    );

    // Directly, plain TCP, other keyspaces: the same answers.
    let (learned, rs_direct) = scylla(&rt, bed.nodes[0], "dt_rs_direct", None);
    assert_eq!(learned, bed.nodes.iter().copied().collect());
    assert_eq!(rs_tls, rs_direct, "scylla through TLS sidecars vs directly");
    assert!(rs_tls[0].len() == 7 && rs_tls[1].len() == 3, "{rs_tls:?}");
    if let Some(py_tls) = &py_tls {
        let (_, py_direct) = python_cql(bed.nodes[1], "dt_py_direct", None);
        assert_eq!(
            py_tls, &py_direct,
            "python through TLS sidecars vs directly"
        );
        assert_eq!(py_tls.as_array().unwrap().len(), 2);
        assert_eq!(py_tls, &json!(rs_tls), "python and scylla agree");
    }
    // And the testbed's own state: each keyspace holds the same rows.
    let direct_truth = cql_truth(&cluster, "dt_rs_direct");
    // 7 users and 3 events are read back; user 5 lives only by its row marker,
    // which the testbed's logical state does not list as a cell.
    assert_eq!(direct_truth.len(), 9, "{direct_truth:?}");
    assert_eq!(cql_truth(&cluster, "dt_rs_tls"), direct_truth);
    if py_ok {
        assert_eq!(cql_truth(&cluster, "dt_py_tls"), direct_truth);
    }

    // The store: exactly the workload's writes through the proxy, in order, all
    // committed; replayed, they give the rows the drivers read; and their keys are
    // exactly those the replicas hold data or tombstones for.
    let nodes = bed.nodes.clone();
    let log = bed.stop_and_log();
    let mut read_back = vec![("dt_rs_tls", json!(rs_tls))];
    if let Some(py_tls) = py_tls {
        read_back.push(("dt_py_tls", py_tls));
    }
    for m in &log {
        assert_eq!(m["outcome"], "committed", "{m}");
        let ns = m["namespace"].as_str().unwrap();
        assert!(
            read_back
                .iter()
                .any(|(k, _)| ns == *k || ns.starts_with(&format!("{k}."))),
            "only writes through the proxy are in its store: {m}"
        );
    }
    let h = |v: &Value| format!("{:08x}", v.as_i64().unwrap() as i32 as u32);
    let mut compared = 0;
    for (ks, rows) in &read_back {
        let mine: Vec<&Value> = log
            .iter()
            .filter(|m| {
                m["namespace"] == *ks
                    || m["namespace"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("{ks}."))
            })
            .collect();
        let ddl: Vec<&str> = mine
            .iter()
            .filter_map(|m| m["op"].as_str().filter(|op| op.starts_with("create_")))
            .collect();
        assert_eq!(
            ddl,
            ["create_keyspace", "create_table", "create_table"],
            "{ks}"
        );
        let writes: Vec<&Value> = mine
            .into_iter()
            .filter(|m| !m["op"].as_str().unwrap().starts_with("create_"))
            .collect();
        let logged: Vec<(String, Vec<String>)> = writes
            .iter()
            .map(|m| {
                let table = m["namespace"].as_str().unwrap().split_once('.').unwrap().1;
                let key = &m["key"];
                let parts = if table == "users" {
                    vec![h(&key["id"])]
                } else {
                    vec![h(&key["pk"]), h(&key["ck"])]
                };
                (table.to_string(), parts)
            })
            .collect();
        let want: Vec<(String, Vec<String>)> = cql_writes()
            .into_iter()
            .map(|(t, k)| (t.to_string(), k))
            .collect();
        assert_eq!(logged, want, "{ks}: the writes, in the order issued");
        assert_eq!(
            &cql_replay(&writes),
            rows,
            "{ks}: the store's writes replayed vs the rows read back"
        );
        // Every key a replica holds anything for (live cells or tombstones) was
        // logged, and nothing else.
        let logged: BTreeSet<(String, Vec<String>)> = logged.into_iter().collect();
        for node in 0..nodes.len() {
            let dumped: BTreeSet<(String, Vec<String>)> = cluster
                .replica_dump(node)
                .into_iter()
                .filter(|c| c.keyspace == *ks)
                .map(|c| (c.table, [c.partition_key, c.clustering].concat()))
                .collect();
            assert_eq!(logged, dumped, "{ks} node {node}");
        }
        compared += writes.len();
    }
    cluster.stop();
    eprintln!(
        "cql: {proxied} proxied connections checked; {compared} store writes compared ({} log lines); proxied phase {:?}, whole test {:?}",
        log.len(),
        proxied_phase,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// MongoDB.

fn mongo_docs() -> Vec<Document> {
    (0..10)
        .map(|i| doc! {"_id": i, "n": i, "tag": format!("t{}", i % 3)})
        .collect()
}

/// The mongodb crate with `uri` (replicaSet=rs0, w=majority): the servers it
/// opened (SDAM events) and the collection read back, sorted by _id.
async fn mongo_workload(uri: String, db: &str) -> (BTreeSet<String>, Vec<Document>) {
    let opened = Arc::new(Mutex::new(BTreeSet::new()));
    let o = Arc::clone(&opened);
    let mut options = mongodb::options::ClientOptions::parse(uri).await.unwrap();
    options.sdam_event_handler = Some(mongodb::event::EventHandler::callback(
        move |ev: mongodb::event::sdam::SdamEvent| {
            if let mongodb::event::sdam::SdamEvent::ServerOpening(e) = ev {
                o.lock().unwrap().insert(e.address.to_string());
            }
        },
    ));
    let client = mongodb::Client::with_options(options).unwrap();
    let coll = client.database(db).collection::<Document>("c");
    coll.insert_many(mongo_docs()).await.expect("insert_many");
    coll.update_one(doc! {"_id": 1}, doc! {"$set": {"n": 100}})
        .await
        .expect("update_one");
    coll.update_many(doc! {"tag": "t2"}, doc! {"$inc": {"n": 1000}})
        .await
        .expect("update_many");
    coll.replace_one(doc! {"_id": 4}, doc! {"n": -4, "replaced": true})
        .await
        .expect("replace_one");
    coll.delete_one(doc! {"_id": 0}).await.expect("delete_one");
    coll.delete_many(doc! {"tag": "t1"})
        .await
        .expect("delete_many");
    coll.insert_one(doc! {"_id": 20, "n": 20})
        .await
        .expect("insert_one");
    let mut cursor = coll
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .await
        .expect("find");
    let mut docs = Vec::new();
    while cursor.advance().await.unwrap() {
        docs.push(cursor.deserialize_current().unwrap());
    }
    // `shutdown` waits for every cursor to be dropped first.
    drop(cursor);
    client.shutdown().await;
    let seen = opened.lock().unwrap().clone();
    (seen, docs)
}

fn mongo_rust(
    rt: &tokio::runtime::Runtime,
    uri: String,
    db: &str,
) -> (BTreeSet<String>, Vec<Document>) {
    rt.block_on(async { tokio::time::timeout(WAIT, mongo_workload(uri, db)).await })
        .expect("mongodb workload within the deadline")
}

/// The same workload with pymongo; TLS verifies the chain and the IP SANs
/// (pymongo's default with `tls=true`).
const PY_MONGO: &str = r#"
import json, sys
from pymongo import MongoClient
from bson import json_util
uri, db = sys.argv[1], sys.argv[2]
client = MongoClient(uri)
c = client[db]["c"]
c.insert_many([{"_id": i, "n": i, "tag": "t%d" % (i % 3)} for i in range(10)])
c.update_one({"_id": 1}, {"$set": {"n": 100}})
c.update_many({"tag": "t2"}, {"$inc": {"n": 1000}})
c.replace_one({"_id": 4}, {"n": -4, "replaced": True})
c.delete_one({"_id": 0})
c.delete_many({"tag": "t1"})
c.insert_one({"_id": 20, "n": 20})
docs = list(c.find({}).sort("_id", 1))
# The servers the client discovered, with what each one said it is.
opened = ["%s:%d %s" % (a + (d.server_type_name,)) for a, d in client.topology_description.server_descriptions().items()]
client.close()
print(json.dumps({"opened": sorted(opened), "docs": json.loads(json_util.dumps(docs, json_options=json_util.RELAXED_JSON_OPTIONS))}))
"#;

fn mongo_python(uri: String, db: &str) -> (BTreeSet<String>, Vec<Value>) {
    let out = python(PY_MONGO, &[uri, db.to_string()]);
    let opened = out["opened"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    (opened, out["docs"].as_array().unwrap().clone())
}

/// The store's MongoDB write statements applied in order to an empty collection:
/// which documents each touched, as the oplog writes them ("i"/"u"/"d", _id), and
/// the documents left. A filter matches documents equal on all its fields; the
/// workload's filters on `tag` are its update_many/delete_many, on `_id` they match
/// one document, so applying to every match is what the server did.
fn mongo_replay(writes: &[&Value]) -> (Vec<(String, i64)>, BTreeMap<i64, Value>) {
    let mut docs: BTreeMap<i64, serde_json::Map<String, Value>> = BTreeMap::new();
    let mut touched = Vec::new();
    for m in writes {
        let key = m["key"].as_object().unwrap();
        let matching: Vec<i64> = docs
            .iter()
            .filter(|(_, d)| key.iter().all(|(k, v)| d.get(k) == Some(v)))
            .map(|(id, _)| *id)
            .collect();
        match m["op"].as_str().unwrap() {
            "insert" => {
                let d = m["values"].as_object().unwrap().clone();
                let id = d["_id"].as_i64().unwrap();
                touched.push(("i".to_string(), id));
                docs.insert(id, d);
            }
            "update" => {
                let values = m["values"].as_object().unwrap();
                for id in matching {
                    touched.push(("u".to_string(), id));
                    let d = docs.get_mut(&id).unwrap();
                    if let Some(set) = values.get("$set") {
                        d.extend(set.as_object().unwrap().clone());
                    } else if let Some(inc) = values.get("$inc") {
                        for (k, by) in inc.as_object().unwrap() {
                            let n = d[k].as_i64().unwrap() + by.as_i64().unwrap();
                            d.insert(k.clone(), n.into());
                        }
                    } else {
                        // A replacement keeps only the _id.
                        let mut r = values.clone();
                        r.insert("_id".into(), id.into());
                        *d = r;
                    }
                }
            }
            "delete" => {
                for id in matching {
                    touched.push(("d".to_string(), id));
                    docs.remove(&id);
                }
            }
            op => panic!("op {op} in {m}"),
        }
    }
    let docs = docs
        .into_iter()
        .map(|(id, d)| (id, Value::Object(d)))
        .collect();
    (touched, docs)
}

#[test]
fn mongo_drivers_through_tls_sidecars_match_direct_and_the_store_holds_the_writes() {
    let started = Instant::now();
    accepted_log();
    let rt = runtime();
    let set = rt
        .block_on(MongoReplicaSet::start(ReplSetConfig {
            members: 3,
            base_addr: Ipv4Addr::new(127, 0, 97, 11),
            port: 0,
            ..ReplSetConfig::default()
        }))
        .unwrap();
    let bed = bed(&rt, 97, set.addresses());
    let before = accepted("member").len();
    let sidecars: BTreeSet<String> = bed.sidecars.iter().map(|s| s.to_string()).collect();
    let tls_uri = |seed: SocketAddr| {
        format!(
            "mongodb://{seed}/?replicaSet=rs0&tls=true&tlsCAFile={}&w=majority&serverSelectionTimeoutMS=20000",
            bed.pki.ca.display()
        )
    };
    let plain_uri = |seed: SocketAddr| {
        format!("mongodb://{seed}/?replicaSet=rs0&w=majority&serverSelectionTimeoutMS=20000")
    };

    let (opened, rs_tls) = mongo_rust(&rt, tls_uri(bed.sidecars[0]), "dt_rs_tls");
    assert_eq!(
        opened, sidecars,
        "the mongodb crate opened exactly the sidecars"
    );
    let py_ok = require::python_modules(&["pymongo"]);
    let mut py_tls = None;
    if py_ok {
        let (opened, docs) = mongo_python(tls_uri(bed.sidecars[1]), "dt_py_tls");
        let addrs: BTreeSet<String> = opened
            .iter()
            .map(|s| s.split(' ').next().unwrap().to_string())
            .collect();
        assert_eq!(addrs, sidecars, "pymongo discovered exactly the sidecars");
        let kinds: Vec<&str> = opened
            .iter()
            .map(|s| s.split(' ').nth(1).unwrap())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "RSPrimary").count(),
            1,
            "{opened:?}"
        );
        assert_eq!(
            kinds.iter().filter(|k| **k == "RSSecondary").count(),
            2,
            "{opened:?}"
        );
        py_tls = Some(docs);
    }
    let proxied = bed.check_nobody_went_around("member", before);
    // Verification is on: trusting another CA, the same driver finds no server,
    // and the proxy saw the handshakes fail.
    let refused = rt.block_on(async {
        let client = mongodb::Client::with_uri_str(format!(
            "mongodb://{}/?replicaSet=rs0&tls=true&tlsCAFile={}&serverSelectionTimeoutMS=2000",
            bed.sidecars[0],
            bed.pki.stranger.display()
        ))
        .await
        .unwrap();
        let r = tokio::time::timeout(WAIT, client.database("admin").run_command(doc! {"ping": 1}))
            .await;
        client.shutdown().await;
        r
    });
    assert!(
        matches!(refused, Ok(Err(_))),
        "a client not trusting the sidecars' CA must be refused"
    );
    assert!(
        bed.saw_tls_failure(),
        "the proxy counted no failed handshake"
    );

    // Directly, plain TCP, other databases: the same documents.
    let (opened, rs_direct) = mongo_rust(&rt, plain_uri(bed.nodes[0]), "dt_rs_direct");
    let members: BTreeSet<String> = bed.nodes.iter().map(|a| a.to_string()).collect();
    assert_eq!(opened, members);
    assert_eq!(
        rs_tls, rs_direct,
        "mongodb crate through TLS sidecars vs directly"
    );
    assert_eq!(rs_tls.len(), 8, "{rs_tls:?}");
    if let Some(py_tls) = &py_tls {
        let (_, py_direct) = mongo_python(plain_uri(bed.nodes[1]), "dt_py_direct");
        assert_eq!(
            py_tls, &py_direct,
            "pymongo through TLS sidecars vs directly"
        );
        let rs: Vec<Value> = rs_tls
            .iter()
            .map(|d| Bson::Document(d.clone()).into_relaxed_extjson())
            .collect();
        assert_eq!(py_tls, &rs, "pymongo and the mongodb crate agree");
    }
    // The replica set's committed state holds what the drivers read.
    let state = set
        .committed_state_at(set.newest_commit_point())
        .expect("committed state");
    let tls_dbs: Vec<&str> = if py_ok {
        vec!["dt_rs_tls", "dt_py_tls"]
    } else {
        vec!["dt_rs_tls"]
    };
    for db in &tls_dbs {
        let mut truth = state.get(&format!("{db}.c")).cloned().unwrap_or_default();
        truth.sort_by_key(|d| d.get_i32("_id").unwrap());
        assert_eq!(truth, rs_tls, "{db}");
    }

    // The store: one committed mutation per write statement through the proxy, in
    // order, and nothing else. Replayed, those statements touch exactly the
    // documents the committed oplog says, in its order, and leave the replica set's
    // committed state.
    let oplog = set.committed_oplog();
    let log = bed.stop_and_log();
    let mut compared = 0;
    for db in &tls_dbs {
        let ns = format!("{db}.c");
        let writes: Vec<&Value> = log
            .iter()
            .filter(|m| m["namespace"] == ns.as_str())
            .collect();
        let statements: Vec<(&str, Value)> = writes
            .iter()
            .map(|m| {
                assert_eq!(m["outcome"], "committed", "{m}");
                (m["op"].as_str().unwrap(), m["key"].clone())
            })
            .collect();
        let mut want: Vec<(&str, Value)> = (0..10).map(|i| ("insert", json!({"_id": i}))).collect();
        want.extend([
            ("update", json!({"_id": 1})),
            ("update", json!({"tag": "t2"})),
            ("update", json!({"_id": 4})),
            ("delete", json!({"_id": 0})),
            ("delete", json!({"tag": "t1"})),
            ("insert", json!({"_id": 20})),
        ]);
        assert_eq!(statements, want, "{db}: the write statements, in order");
        let (touched, replayed) = mongo_replay(&writes);
        let entries: Vec<(String, i64)> = oplog
            .iter()
            .filter(|e| e.get_str("ns").ok() == Some(ns.as_str()))
            .map(|e| {
                let op = e.get_str("op").unwrap().to_string();
                let id = match op.as_str() {
                    "u" => e.get_document("o2").unwrap().get("_id"),
                    _ => e.get_document("o").unwrap().get("_id"),
                };
                let id = match id {
                    Some(Bson::Int32(i)) => i64::from(*i),
                    Some(Bson::Int64(i)) => *i,
                    other => panic!("{other:?} in {e}"),
                };
                (op, id)
            })
            .collect();
        assert_eq!(entries.len(), 19, "{db}: {entries:?}");
        assert_eq!(touched, entries, "{db}: replayed statements vs the oplog");
        let truth: BTreeMap<i64, Value> = state[&ns]
            .iter()
            .map(|d| {
                (
                    i64::from(d.get_i32("_id").unwrap()),
                    Bson::Document(d.clone()).into_relaxed_extjson(),
                )
            })
            .collect();
        assert_eq!(
            replayed, truth,
            "{db}: replayed statements vs the committed state"
        );
        compared += writes.len();
    }
    assert_eq!(
        compared,
        log.len(),
        "only writes through the proxy: {log:?}"
    );
    set.stop();
    eprintln!(
        "mongo: {proxied} proxied connections checked; {compared} store mutations compared ({} oplog entries); whole test {:?}",
        oplog.len(),
        started.elapsed()
    );
}
