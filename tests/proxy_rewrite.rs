//! The drivers stay behind the sidecars: real drivers given one sidecar of a
//! 3-node CQL testbed (or a 3-member replica set) behind one `tidemark proxy` with
//! three routes learn the sidecar addresses, work through them, and the nodes accept
//! no connection the proxy did not make. With `--no-rewrite` the same drivers learn
//! the nodes' own addresses and connect around the proxy: the rewrite is what keeps
//! them behind it. And with the rewrite on, a raw exchange through the proxy decodes
//! to what the node says directly, except the rewritten addresses.

mod proxy_support;
mod ready_support;
#[path = "require/mod.rs"]
mod require;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use proxy_support::{accepted_log, common_port, sample, scrape, start_proxy, Killed};
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::unprepared::Statement;
use scylla::statement::Consistency;
use tidemark_testbed::{ClusterConfig, CqlCluster, MongoReplicaSet, ReplSetConfig};

/// The node-side log is one per process: tests that count from it run one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Connections accepted per node address so far (`field` = "node" or "member").
fn accepted(field: &str) -> BTreeMap<usize, usize> {
    let text = accepted_log().text();
    let mut out = BTreeMap::new();
    for l in text.lines().filter(|l| l.contains(" connection ")) {
        let Some(i) = l
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{field}=")))
            .and_then(|v| v.parse().ok())
        else {
            continue;
        };
        *out.entry(i).or_default() += 1;
    }
    out
}

/// Stops a proxy (SIGTERM, bounded wait); how it exited is not this test's concern.
fn stop(mut proxy: Killed) {
    proxy.signal_and_wait("TERM", Duration::from_secs(30));
}

/// Waits (bounded) until the nodes accepted as many connections as the proxy
/// forwarded; returns both counts as last seen.
fn settle(field: &str, metrics: SocketAddr, before: usize) -> (usize, f64, BTreeMap<usize, usize>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes = accepted(field);
        let total: usize = nodes.values().sum::<usize>() - before;
        let proxied = sample(&scrape(metrics), "tidemark_proxy_connections_total");
        if total as f64 == proxied || Instant::now() > deadline {
            return (total, proxied, nodes);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

struct CqlBed {
    cluster: CqlCluster,
    sidecars: Vec<SocketAddr>,
    metrics: SocketAddr,
    proxy: Killed,
    _dir: tempfile::TempDir,
}

/// `rewrite`: None = `--no-rewrite`; Some(false) = the default map (from the
/// routes); Some(true) = the same map given explicitly with `--map`.
fn cql_bed(rt: &tokio::runtime::Runtime, third: u8, rewrite: Option<bool>) -> CqlBed {
    accepted_log();
    let cluster = rt
        .block_on(CqlCluster::start(ClusterConfig {
            nodes: 3,
            base_addr: Ipv4Addr::new(127, 0, third, 1),
            port: 0,
            ..ClusterConfig::default()
        }))
        .unwrap();
    let ips: Vec<Ipv4Addr> = (101..=103)
        .map(|d| Ipv4Addr::new(127, 0, third, d))
        .collect();
    let port = common_port(&ips, cluster.addresses()[0].port());
    let sidecars: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::from((*ip, port))).collect();
    let metrics_ip = Ipv4Addr::new(127, 0, third, 100);
    let metrics = SocketAddr::from((metrics_ip, common_port(&[metrics_ip], 0)));
    let mut args = vec!["--metrics".to_string(), metrics.to_string()];
    for (s, n) in sidecars.iter().zip(cluster.addresses()) {
        args.push("--route".into());
        args.push(format!("{s}={n}"));
        if rewrite == Some(true) {
            args.push("--map".into());
            args.push(format!("{n}={s}"));
        }
    }
    if rewrite.is_none() {
        args.push("--no-rewrite".into());
    }
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _) = start_proxy(&args, &dir.path().join("store"), &["--no-sync"]);
    CqlBed {
        cluster,
        sidecars,
        metrics,
        proxy,
        _dir: dir,
    }
}

/// The scylla driver through one sidecar: the nodes it learned, then (with
/// `work`) writes and reads at ALL.
fn scylla_through(
    rt: &tokio::runtime::Runtime,
    contact: SocketAddr,
    ks: &str,
    work: bool,
) -> BTreeSet<SocketAddr> {
    rt.block_on(async {
        let session = SessionBuilder::new()
            .known_node(contact.to_string())
            .build()
            .await
            .expect("connect through the sidecar");
        let learned: BTreeSet<SocketAddr> = session
            .get_cluster_state()
            .get_nodes_info()
            .iter()
            .map(|n| SocketAddr::new(n.address.ip(), n.address.port()))
            .collect();
        if !work {
            return learned;
        }
        for q in [
            format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 3}}"),
            format!("CREATE TABLE {ks}.t (id int PRIMARY KEY, v text)"),
        ] {
            session.query_unpaged(q.as_str(), ()).await.expect("ddl");
        }
        let mut insert = session
            .prepare(format!("INSERT INTO {ks}.t (id, v) VALUES (?, ?)"))
            .await
            .unwrap();
        insert.set_consistency(Consistency::All);
        for i in 0..60i32 {
            session
                .execute_unpaged(&insert, (i, format!("v{i}")))
                .await
                .expect("insert at ALL");
        }
        let mut count = Statement::new(format!("SELECT COUNT(*) FROM {ks}.t"));
        count.set_consistency(Consistency::All);
        let (n,): (i64,) = session
            .query_unpaged(count, ())
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .single_row()
            .unwrap();
        assert_eq!(n, 60);
        learned
    })
}

const PY_CQL: &str = r#"
import json, sys
from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT
from cassandra.policies import RoundRobinPolicy
from cassandra import ConsistencyLevel
host, port, ks = sys.argv[1], int(sys.argv[2]), sys.argv[3]
profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), consistency_level=ConsistencyLevel.ALL)
cluster = Cluster([host], port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
s = cluster.connect()
learned = sorted("%s:%d" % (h.endpoint.address, h.endpoint.port) for h in cluster.metadata.all_hosts())
s.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}" % ks)
s.execute("CREATE TABLE %s.t (id int PRIMARY KEY, v text)" % ks)
for i in range(30):
    s.execute("INSERT INTO %s.t (id, v) VALUES (%%s, %%s)" % ks, (i, "p%d" % i))
n = s.execute("SELECT COUNT(*) FROM %s.t" % ks).one()[0]
# Pools open in the background after a host is learned: give them a bounded time
# before reading which exist (the assertion on them is unchanged).
import time as _t
_deadline = _t.time() + 20
while _t.time() < _deadline and len(s.get_pool_state()) < len(cluster.metadata.all_hosts()):
    _t.sleep(0.1)
pools = sorted("%s:%d" % (h.endpoint.address, h.endpoint.port) for h in s.get_pool_state().keys())
version = cluster.protocol_version
cluster.shutdown()
print(json.dumps({"learned": learned, "count": n, "pools": pools, "version": version}))
"#;

fn python_through(contact: SocketAddr, ks: &str) -> serde_json::Value {
    let out = Command::new("python3")
        .args(["-c", PY_CQL])
        .arg(contact.ip().to_string())
        .arg(contact.port().to_string())
        .arg(ks)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

fn strings(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn cql_drivers_learn_the_sidecars_and_stay_behind_them() {
    let _serial = serial();
    let rt = runtime();
    let bed = cql_bed(&rt, 90, Some(false));
    let before: usize = accepted("node").values().sum();
    let sidecars: BTreeSet<SocketAddr> = bed.sidecars.iter().copied().collect();

    let learned = scylla_through(&rt, bed.sidecars[0], "rw1", true);
    assert_eq!(learned, sidecars, "the scylla driver learned the sidecars");

    let py_ok = require::python_modules(&["cassandra"]);
    if py_ok {
        let py = python_through(bed.sidecars[1], "rw2");
        let want: BTreeSet<String> = sidecars.iter().map(|s| s.to_string()).collect();
        assert_eq!(strings(&py["learned"]), want, "python learned: {py}");
        assert_eq!(strings(&py["pools"]), want, "python pools: {py}");
        assert_eq!(py["count"], 30);
        // The Python driver speaks v5 to the testbed: segment framing, rewritten.
        assert_eq!(py["version"], 5, "{py}");
    }

    // Node side: every node accepted connections, and exactly as many as the proxy
    // forwarded — no driver connection reached a node around it.
    let (nodes_total, proxied, per_node) = settle("node", bed.metrics, before);
    let text = scrape(bed.metrics);
    assert_eq!(nodes_total as f64, proxied, "{per_node:?} {text}");
    assert_eq!(
        per_node.len(),
        3,
        "all three routes were used: {per_node:?}"
    );
    assert!(
        sample(&text, "tidemark_proxy_rewrites_total") >= 2.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "tidemark_proxy_rewrite_errors_total"),
        0.0,
        "{text}"
    );
    stop(bed.proxy);
    bed.cluster.stop();
}

#[test]
fn cql_without_rewrite_the_drivers_go_around_the_proxy() {
    let _serial = serial();
    let rt = runtime();
    let bed = cql_bed(&rt, 91, None);
    let learned = scylla_through(&rt, bed.sidecars[0], "nr1", false);
    // The driver learns the nodes' own IPs (system.local's included) and dials them
    // on the port it connected to: around the proxy.
    let ips: BTreeSet<IpAddr> = learned.iter().map(|a| a.ip()).collect();
    let nodes: BTreeSet<IpAddr> = bed.cluster.addresses().iter().map(|a| a.ip()).collect();
    assert_eq!(
        ips, nodes,
        "without the rewrite the driver learns the nodes"
    );
    let text = scrape(bed.metrics);
    assert_eq!(sample(&text, "tidemark_proxy_rewrites_total"), 0.0);
    stop(bed.proxy);
    bed.cluster.stop();
}

/// The mongodb crate with replicaSet=rs0 through one sidecar: the servers it opens
/// (SDAM ServerOpening events), and a majority write.
fn mongo_through(rt: &tokio::runtime::Runtime, seed: SocketAddr) -> BTreeSet<String> {
    rt.block_on(async {
        let opened = Arc::new(Mutex::new(BTreeSet::new()));
        let o = Arc::clone(&opened);
        let mut options = mongodb::options::ClientOptions::parse(format!(
            "mongodb://{seed}/?replicaSet=rs0&serverSelectionTimeoutMS=20000&w=majority"
        ))
        .await
        .unwrap();
        options.sdam_event_handler = Some(mongodb::event::EventHandler::callback(
            move |ev: mongodb::event::sdam::SdamEvent| {
                if let mongodb::event::sdam::SdamEvent::ServerOpening(e) = ev {
                    o.lock().unwrap().insert(e.address.to_string());
                }
            },
        ));
        let client = mongodb::Client::with_options(options).unwrap();
        let coll = client.database("rwdb").collection::<Document>("c");
        for i in 0..20 {
            coll.insert_one(doc! { "_id": i })
                .await
                .expect("majority write through the sidecar");
        }
        assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 20);
        client.shutdown().await;
        let seen = opened.lock().unwrap().clone();
        seen
    })
}

fn mongo_bed(
    rt: &tokio::runtime::Runtime,
    third: u8,
    rewrite: bool,
) -> (
    MongoReplicaSet,
    Vec<SocketAddr>,
    SocketAddr,
    Killed,
    tempfile::TempDir,
) {
    accepted_log();
    let set = rt
        .block_on(MongoReplicaSet::start(ReplSetConfig {
            members: 3,
            base_addr: Ipv4Addr::new(127, 0, third, 11),
            port: 0,
            ..ReplSetConfig::default()
        }))
        .unwrap();
    let ips: Vec<Ipv4Addr> = (111..=113)
        .map(|d| Ipv4Addr::new(127, 0, third, d))
        .collect();
    let port = common_port(&ips, set.addresses()[0].port());
    let sidecars: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::from((*ip, port))).collect();
    let metrics_ip = Ipv4Addr::new(127, 0, third, 110);
    let metrics = SocketAddr::from((metrics_ip, common_port(&[metrics_ip], 0)));
    let mut args = vec!["--metrics".to_string(), metrics.to_string()];
    for (s, n) in sidecars.iter().zip(set.addresses()) {
        args.push("--route".into());
        args.push(format!("{s}={n}"));
    }
    if !rewrite {
        args.push("--no-rewrite".into());
    }
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _) = start_proxy(&args, &dir.path().join("store"), &["--no-sync"]);
    (set, sidecars, metrics, proxy, dir)
}

#[test]
fn mongo_driver_discovers_only_sidecars_and_writes_at_majority() {
    let _serial = serial();
    let rt = runtime();
    let (set, sidecars, metrics, proxy, _dir) = mongo_bed(&rt, 92, true);
    let before: usize = accepted("member").values().sum();
    let opened = mongo_through(&rt, sidecars[0]);
    let want: BTreeSet<String> = sidecars.iter().map(|s| s.to_string()).collect();
    assert_eq!(opened, want, "the driver opened exactly the sidecars");
    let (members_total, proxied, per_member) = settle("member", metrics, before);
    let text = scrape(metrics);
    assert_eq!(members_total as f64, proxied, "{per_member:?} {text}");
    assert!(
        sample(&text, "tidemark_proxy_rewrites_total") >= 3.0,
        "{text}"
    );
    assert_eq!(sample(&text, "tidemark_proxy_rewrite_errors_total"), 0.0);
    stop(proxy);
    set.stop();

    // Without the rewrite: the members' own addresses, connected to directly.
    let rt = runtime();
    let (set, sidecars, metrics, proxy, _dir) = mongo_bed(&rt, 93, false);
    let before: usize = accepted("member").values().sum();
    let opened = mongo_through(&rt, sidecars[0]);
    let members: BTreeSet<String> = set.addresses().iter().map(|a| a.to_string()).collect();
    assert!(
        members.is_subset(&opened),
        "without the rewrite the driver opens the members: {opened:?}"
    );
    let (members_total, proxied, _) = settle("member", metrics, before);
    assert!(members_total as f64 > proxied);
    stop(proxy);
    set.stop();
}

/// One CQL exchange on a raw socket: STARTUP, then queries; the decoded responses.
fn cql_exchange(addr: SocketAddr, compression: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    use tidemark_cql::frame::{encode_frame, Compression};
    use tidemark_cql::message::{Query, QueryParameters, Startup};
    use tidemark_cql::{Envelope, Message};
    let algo = compression.map_or(Compression::None, Compression::from_name);
    let mut options = vec![("CQL_VERSION".into(), "3.0.0".into())];
    if let Some(c) = compression {
        options.push(("COMPRESSION".into(), c.into()));
    }
    let mut client = encode_frame(
        4,
        0,
        &Envelope::new(Message::Startup(Startup { options })),
        Compression::None,
        0,
    );
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&client).unwrap();
    let mut server = Vec::new();
    let read_frame = |s: &mut TcpStream, server: &mut Vec<u8>| {
        let mut h = [0u8; 9];
        s.read_exact(&mut h).unwrap();
        let len = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) as usize;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).unwrap();
        server.extend_from_slice(&h);
        server.extend_from_slice(&body);
    };
    read_frame(&mut s, &mut server);
    for (i, q) in [
        "SELECT * FROM system.local",
        "SELECT * FROM system.peers",
        "SELECT * FROM system.peers_v2",
        "SELECT keyspace_name FROM system_schema.keyspaces",
    ]
    .iter()
    .enumerate()
    {
        let f = encode_frame(
            4,
            i as i16 + 1,
            &Envelope::new(Message::Query(Query {
                query: (*q).into(),
                params: QueryParameters::default(),
            })),
            algo,
            0,
        );
        client.extend_from_slice(&f);
        s.write_all(&f).unwrap();
        read_frame(&mut s, &mut server);
    }
    (client, server)
}

fn decode(client: &[u8], server: &[u8]) -> Vec<tidemark_cql::Message> {
    let mut c = tidemark_cql::Connection::new();
    c.feed(tidemark_cql::Direction::ClientToServer, client);
    c.feed(tidemark_cql::Direction::ServerToClient, server);
    let mut out = Vec::new();
    for _ in 0..100 {
        match c.next() {
            Some(Ok(i)) if i.dir == tidemark_cql::Direction::ServerToClient => {
                out.push(i.envelope.message)
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("{e}"),
            None => break,
        }
    }
    out
}

/// The reference rewrite, done on decoded cells: in the address columns drivers
/// dial (`rpc_address`, `native_address`) and the node-identity ones
/// (`broadcast_address`, `peer`), node addresses become sidecar addresses; in the
/// port columns paired with them, the nodes' port becomes the sidecars'. Every
/// other cell (`listen_address`, `preferred_ip`, ...) stays.
fn map_cells(
    msg: &tidemark_cql::Message,
    map: &BTreeMap<IpAddr, IpAddr>,
    ports: Option<(u16, u16)>,
) -> Vec<Vec<Option<Vec<u8>>>> {
    use tidemark_cql::message::ResultBody;
    let tidemark_cql::Message::Result(ResultBody::Rows(rows)) = msg else {
        return Vec::new();
    };
    let names: Vec<&str> = rows
        .metadata
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let addr = |i: usize| {
        matches!(
            names[i],
            "rpc_address" | "native_address" | "broadcast_address" | "peer"
        )
    };
    let port = |i: usize| matches!(names[i], "rpc_port" | "native_port");
    rows.rows()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    c.map(|b| {
                        match <[u8; 4]>::try_from(&b[..])
                            .ok()
                            .filter(|_| addr(i) || port(i))
                        {
                            Some(o) => match (map.get(&IpAddr::from(o)), ports) {
                                (Some(IpAddr::V4(n)), _) if addr(i) => n.octets().to_vec(),
                                (_, Some((from, to)))
                                    if port(i) && i32::from_be_bytes(o) == i32::from(from) =>
                                {
                                    i32::from(to).to_be_bytes().to_vec()
                                }
                                _ => b.to_vec(),
                            },
                            None => b.to_vec(),
                        }
                    })
                })
                .collect()
        })
        .collect()
}

#[test]
fn with_rewrite_on_only_the_rewritten_fields_differ() {
    let _serial = serial();
    let rt = runtime();
    let bed = cql_bed(&rt, 94, Some(true));
    let map: BTreeMap<IpAddr, IpAddr> = bed
        .cluster
        .addresses()
        .iter()
        .zip(&bed.sidecars)
        .map(|(n, s)| (n.ip(), s.ip()))
        .collect();
    for compression in [None, Some("lz4"), Some("snappy")] {
        let (c1, direct) = cql_exchange(bed.cluster.addresses()[0], compression);
        let (c2, proxied) = cql_exchange(bed.sidecars[0], compression);
        assert_eq!(c1, c2);
        let (d, p) = (decode(&c1, &direct), decode(&c2, &proxied));
        assert_eq!(d.len(), 5);
        assert_eq!(p.len(), 5);
        // READY and the user-keyspace result are identical; the topology results
        // are the direct ones with node addresses swapped for sidecars, cell by cell.
        assert_eq!(d[0], p[0]);
        assert_eq!(d[4], p[4]);
        for i in 1..4 {
            let ports = Some((bed.cluster.addresses()[0].port(), bed.sidecars[0].port()));
            let want = map_cells(&d[i], &map, ports);
            assert!(!want.is_empty());
            assert_eq!(
                map_cells(&p[i], &BTreeMap::new(), None),
                want,
                "{compression:?} #{i}"
            );
            assert_ne!(d[i], p[i], "{compression:?} #{i} was rewritten");
        }
    }
    stop(bed.proxy);
    bed.cluster.stop();
}

/// One OP_MSG hello (with checksum) on a raw socket; the reply's body document.
fn mongo_hello_raw(addr: SocketAddr) -> Document {
    use tidemark_mongo::{
        decode_message, encode_message, Body, Doc, Limits, Message, MsgFlags, OpMsg,
    };
    let cmd = doc! {"hello": 1, "$db": "admin"};
    let mut m = OpMsg::new(
        Doc::new(
            tidemark_mongo::bytes::Bytes::from(cmd.to_vec().unwrap()),
            &Limits::default(),
        )
        .unwrap(),
    );
    m.flags = MsgFlags(MsgFlags::CHECKSUM_PRESENT);
    let req = encode_message(&Message::new(41, 0, Body::Msg(m))).unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&req).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let n = i32::from_le_bytes(len) as usize;
    let mut rest = vec![0u8; n - 4];
    s.read_exact(&mut rest).unwrap();
    let raw = [&len[..], &rest].concat();
    // The protocol crate decodes it (and verifies a checksum if there is one).
    let msg = decode_message(raw.into(), 0, &Limits::default()).expect("a valid reply");
    assert_eq!(msg.response_to, 41);
    match msg.body {
        Body::Msg(m) => Document::try_from(m.body.raw()).unwrap(),
        b => panic!("{b:?}"),
    }
}

#[test]
fn mongo_with_rewrite_on_only_the_topology_fields_differ() {
    let _serial = serial();
    let rt = runtime();
    let (set, sidecars, _metrics, proxy, _dir) = mongo_bed(&rt, 95, true);
    let map: BTreeMap<String, String> = set
        .addresses()
        .iter()
        .zip(&sidecars)
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    for (member, (node, sidecar)) in set.addresses().iter().zip(&sidecars).enumerate() {
        let direct = mongo_hello_raw(*node);
        let mut proxied = mongo_hello_raw(*sidecar);
        // Per-call values: the clock, the cluster clock (a second may pass
        // between the two calls) and the connection's id.
        for k in ["localTime", "connectionId", "$clusterTime", "operationTime"] {
            proxied.insert(k, direct.get(k).unwrap().clone());
        }
        // The reference rewrite on the direct answer.
        let mut want = direct.clone();
        let hosts: Vec<String> = direct
            .get_array("hosts")
            .unwrap()
            .iter()
            .map(|h| map[h.as_str().unwrap()].clone())
            .collect();
        want.insert("hosts", hosts);
        want.insert("me", map[direct.get_str("me").unwrap()].clone());
        if let Ok(p) = direct.get_str("primary") {
            want.insert("primary", map[p].clone());
        }
        assert_eq!(proxied, want, "member {member}");
        assert_eq!(proxied.get_str("setName").unwrap(), "rs0");
        assert_ne!(
            direct.get_str("me").unwrap(),
            proxied.get_str("me").unwrap()
        );
    }
    stop(proxy);
    set.stop();
}
