//! `tidemark proxy` with TLS on both sides: it terminates the client's TLS with its
//! own certificate, re-originates TLS to the node (trusting a CA given with
//! `--upstream-ca`), forwards the plaintext unchanged, and decodes it — the writes
//! inside TLS reach the store, which no passive tap could see. Certificates are
//! generated here (rcgen): a CA, the node's (`node.test`) and the proxy's
//! (`proxy.test`). A client that does not trust the proxy, or a node whose
//! certificate names another host, gets no connection, and the proxy counts it.

mod proxy_support;
mod ready_support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use proxy_support::{free_port, proxy_command, scrape, spawn_ready};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tidemark_testbed::{ClusterConfig, CqlCluster};

struct Pki {
    ca: String,
    node: (String, String),
    proxy: (String, String),
}

fn make_pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca.pem(),
        node: leaf("node.test"),
        proxy: leaf("proxy.test"),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
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

/// The node side: TLS with the node's certificate, then the plaintext relayed to a
/// testbed node (which speaks no TLS itself). One thread per connection.
fn tls_node(listener: TcpListener, cert: (String, String), backend: SocketAddr) {
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
    std::thread::spawn(move || {
        for conn in listener.incoming().take(16) {
            let Ok(tcp) = conn else { continue };
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let Ok(mut db) = TcpStream::connect(backend) else {
                    return;
                };
                // Request/response in lock step: the test's client sends one frame
                // and waits for the answer.
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if db.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    let mut head = [0u8; 9];
                    if db.read_exact(&mut head).is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) as usize;
                    let mut body = vec![0u8; len];
                    if db.read_exact(&mut body).is_err() {
                        return;
                    }
                    let mut out = head.to_vec();
                    out.extend_from_slice(&body);
                    if tls.write_all(&out).and_then(|_| tls.flush()).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

fn frame(stream: i16, opcode: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0x04, 0x00];
    f.extend_from_slice(&stream.to_be_bytes());
    f.push(opcode);
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn query(text: &str) -> Vec<u8> {
    let mut b = (text.len() as u32).to_be_bytes().to_vec();
    b.extend_from_slice(text.as_bytes());
    b.extend_from_slice(&1u16.to_be_bytes()); // ONE
    b.push(0);
    b
}

/// Sends one frame and reads one answer; its opcode.
fn round_trip(s: &mut impl ReadWrite, f: &[u8]) -> u8 {
    s.write_all(f).unwrap();
    s.flush().unwrap();
    let mut head = [0u8; 9];
    s.read_exact(&mut head).unwrap();
    let len = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head[4]
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[test]
fn writes_inside_tls_are_forwarded_and_decided_and_untrusted_peers_get_nothing() {
    let pki = make_pki();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ca = write("ca.pem", &pki.ca);
    let proxy_cert = write("proxy.pem", &pki.proxy.0);
    let proxy_key = write("proxy.key", &pki.proxy.1);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cluster = rt
        .block_on(CqlCluster::start(ClusterConfig {
            nodes: 1,
            base_addr: Ipv4Addr::new(127, 0, 94, 1),
            port: 0,
            ..ClusterConfig::default()
        }))
        .unwrap();
    let ip = Ipv4Addr::new(127, 0, 94, 100);
    let node_listener = TcpListener::bind((ip, 0)).unwrap();
    let node_addr = node_listener.local_addr().unwrap();
    tls_node(node_listener, pki.node.clone(), cluster.addresses()[0]);
    let (listen, wrong_name, metrics) = (
        SocketAddr::from((ip, free_port(ip))),
        SocketAddr::from((ip, free_port(ip))),
        SocketAddr::from((ip, free_port(ip))),
    );
    let store = dir.path().join("store");
    let mut proxy = proxy_command(listen, node_addr);
    proxy
        .args([
            "--protocol",
            "cql",
            "--upstream-tls",
            "node.test",
            "--metrics",
            &metrics.to_string(),
        ])
        .arg("--upstream-ca")
        .arg(&ca)
        .arg("--tls-cert")
        .arg(&proxy_cert)
        .arg("--tls-key")
        .arg(&proxy_key)
        .args(["--drain", "1", "--store"])
        .arg(&store)
        .stdout(Stdio::null());
    let (mut proxy, _err) = spawn_ready(&mut proxy);

    // A CQL client over TLS to the proxy: STARTUP, DDL, three INSERTs.
    let tcp = TcpStream::connect(listen).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let conn = rustls::ClientConnection::new(
        client_config(&pki.ca),
        ServerName::try_from("proxy.test").unwrap(),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut startup = 1u16.to_be_bytes().to_vec();
    for s in ["CQL_VERSION", "3.0.0"] {
        startup.extend_from_slice(&(s.len() as u16).to_be_bytes());
        startup.extend_from_slice(s.as_bytes());
    }
    assert_eq!(
        round_trip(&mut tls, &frame(0, 0x01, &startup)),
        0x02,
        "READY"
    );
    for (i, q) in [
        "CREATE KEYSPACE tls WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        "CREATE TABLE tls.t (id int PRIMARY KEY, v text)",
        "INSERT INTO tls.t (id, v) VALUES (1, 'one')",
        "INSERT INTO tls.t (id, v) VALUES (2, 'two')",
        "INSERT INTO tls.t (id, v) VALUES (3, 'three')",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(round_trip(&mut tls, &frame(i as i16 + 1, 0x07, &query(q))), 0x08, "{q}");
    }
    drop(tls);
    // The node's own state has the rows: the plaintext reached it unchanged.
    let rows: std::collections::BTreeSet<String> = cluster
        .logical_state()
        .into_iter()
        .filter(|c| c.keyspace == "tls")
        .map(|c| c.value)
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");

    // A client that does not trust the proxy's CA gets no session.
    let other = make_pki();
    let tcp = TcpStream::connect(listen).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let conn = rustls::ClientConnection::new(
        client_config(&other.ca),
        ServerName::try_from("proxy.test").unwrap(),
    )
    .unwrap();
    let mut untrusted = rustls::StreamOwned::new(conn, tcp);
    assert!(
        untrusted
            .write_all(&frame(0, 0x01, &startup))
            .and_then(|_| untrusted.flush())
            .is_err()
            || untrusted.read(&mut [0u8; 9]).is_err()
    );

    // A proxy whose node's certificate names another host refuses the node.
    let mut wrong = proxy_command(wrong_name, node_addr);
    wrong
        .args(["--upstream-tls", "other.test", "--drain", "1", "--store"])
        .arg(dir.path().join("store2"))
        .arg("--upstream-ca")
        .arg(&ca)
        .stdout(Stdio::null());
    let (mut wrong, _werr) = spawn_ready(&mut wrong);
    let mut c = TcpStream::connect(wrong_name).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = c.write_all(&frame(0, 0x01, &startup));
    let mut b = [0u8; 9];
    assert!(
        matches!(c.read(&mut b), Ok(0) | Err(_)),
        "no answer through a node of the wrong name"
    );
    wrong.signal_and_wait("TERM", Duration::from_secs(30));

    // Metrics: the untrusted client's failed handshake is counted.
    let text = scrape(metrics);
    assert!(
        text.contains("tidemark_proxy_tls_failures_total 1"),
        "{text}"
    );

    proxy.signal_and_wait("TERM", Duration::from_secs(30));
    // The store decided the writes it saw inside TLS.
    let log = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["log", "--json", "--ns", "tls.t", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&log.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|m: &serde_json::Value| m["op"] == "insert")
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().all(|m| m["outcome"] == "committed"));
    cluster.stop();
}
