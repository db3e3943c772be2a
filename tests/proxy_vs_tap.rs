//! The proxy's store holds what a tap of the same traffic holds. A 3-node CQL
//! testbed and a 3-member replica set each get one `tidemark proxy` with three
//! routes (a sidecar per node, the rewrite on); real drivers work through one
//! sidecar each:
//! - scylla and the Python cassandra-driver: INSERT/UPDATE/DELETE (row, column,
//!   partition), set/map/list operations, a logged batch, USING TIMESTAMP and TTL,
//!   LWTs applied and not, and (scylla) 48 inserts in flight at once;
//! - the mongodb crate and pymongo (`replicaSet=rs0`, w:majority; pymongo's
//!   requests zlib-compressed): insert_many, update_one/update_many with
//!   operators, replace_one, delete_one/delete_many, find_one_and_update, an
//!   upsert, an ordered bulk_write, and (the crate) 48 inserts in flight at once.
//!
//! Meanwhile `dumpcap` captures the proxy→node leg on `lo`, and `tidemark tap`
//! decides that capture into a second store. The test shows:
//! - the drivers learn only sidecar addresses (scylla's cluster state, the Python
//!   driver's hosts and pools, pymongo's SDAM and pool events) and, from the node
//!   side (the testbed's own accept events), the nodes accept exactly the
//!   connections the proxy made, pymongo's reaching all three members;
//! - what the drivers read through the sidecars is what a direct connection reads
//!   (CQL, after the capture) or the replica set's committed state (MongoDB);
//! - `tidemark log --json` of the two stores: the same mutations, with the same
//!   outcomes, reasons, namespaces, keys, values, collection operations, write
//!   timestamps, consistency / write concern, sessions, request ids and nodes;
//!   on each connection in the same order; along the whole log in the same order
//!   (equal `seq`) except among the concurrent inserts; `tidemark status` agrees;
//! - both against the database: the proxy's committed CQL mutations, applied in
//!   order, are the rows the drivers read and the testbed's live cells; the
//!   committed MongoDB writes, in order, are the set's majority-committed oplog
//!   entry for entry (the concurrent inserts as a set: the oplog has them in the
//!   primary's apply order).
//!
//! Fields that may differ, and are removed only after checking what they must still
//! agree on (everything else must be equal):
//! - `flow`: each source numbers the connections it sees in its own order (the
//!   proxy once it has connected upstream, the tap by the capture's packets), so
//!   one connection may carry two numbers; grouped by flow, the two logs must
//!   hold the same per-connection sequences (a one-to-one map of flows);
//! - a CQL `batch.id` (`FLOW:N`) names its flow: it must name the mutation's own
//!   flow on each side, and N must be equal;
//! - `ts` and `commit_time` are capture times of the request and of the deciding
//!   response: the tap's are when the packets crossed `lo` between proxy and node,
//!   the proxy's when it had forwarded them (a response reaches the proxy after it
//!   crossed `lo`, so the proxy's commit time is later by its forwarding time —
//!   microseconds to milliseconds, reported, not judged).
//! - the log order (`seq`) of writes in flight at the same time on different
//!   connections: each log is in its own commit-time order, and the two sources
//!   stamp at different points (the tap as the node's answers cross `lo`, the
//!   proxy once its per-connection task has forwarded them), so two answers close
//!   together on two connections may be ordered either way. For those the test
//!   checks the same mutations per connection, in the same order, within the same
//!   `seq` range; everything written one at a time keeps its exact `seq`.
//!
//! Why the BPF filter: on `lo` an unfiltered capture also holds the client→sidecar
//! leg (the same bytes again, rewritten answers included) and the members' own
//! replication connections (member address to member address), which the proxy
//! never sees and from which the tap would take oplog evidence. The filter keeps
//! packets with a node's address and port on one side and a non-node address on the
//! other: exactly what the proxy forwards upstream. The capture is stopped (SIGINT
//! to dumpcap's pid) only once its file stopped growing, and must report no drops.
//!
//! Needs live-capture rights, `dumpcap`, and python3 with `cassandra` (the Python
//! CQL part) and `pymongo`: through `require`, a skip locally, a failure under CI.

mod proxy_support;
mod ready_support;
#[path = "require/mod.rs"]
mod require;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, Document};
use proxy_support::{
    accepted_log, common_port, free_port, output_within, sample, scrape, start_capture,
    start_proxy, stop_capture, stop_proxy, Killed,
};
use ready_support::Lines;
use serde_json::Value;
use tidemark_mongo::Compressor;
use tidemark_testbed::{ClusterConfig, CqlCluster, MongoReplicaSet, ReplSetConfig};

// ---------------------------------------------------------------------------
// The node-side view: who the testbed nodes accepted connections from.

/// Every connection the nodes of one bed accepted so far, from the testbed's own
/// `connection` debug events (`field` = "node" for CQL, "member" for MongoDB):
/// (node index, the connecting peer's address), in accept order.
fn accepted(field: &str) -> Vec<(usize, SocketAddr)> {
    let text = accepted_log().text();
    let mut out = Vec::new();
    for l in text.lines().filter(|l| l.contains(" connection ")) {
        let word = |k: &str| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")).map(str::to_string))
        };
        let (Some(i), Some(peer)) = (word(field), word("peer")) else {
            continue;
        };
        out.push((i.parse().unwrap(), peer.parse().unwrap()));
    }
    out
}

/// Connections the nodes accepted from outside the bed (member-to-member
/// replication connections come from the members' own addresses and are left out),
/// after the first `skip` of them.
fn client_accepts(field: &str, nodes: &[SocketAddr], skip: usize) -> Vec<(usize, SocketAddr)> {
    let ips: BTreeSet<IpAddr> = nodes.iter().map(SocketAddr::ip).collect();
    accepted(field)
        .into_iter()
        .filter(|(_, peer)| !ips.contains(&peer.ip()))
        .skip(skip)
        .collect()
}

/// Waits (bounded) until the nodes accepted as many client connections since
/// `before` as the proxy made since `proxied_before`, and returns both counts.
fn settle(
    field: &str,
    nodes: &[SocketAddr],
    metrics: SocketAddr,
    before: usize,
    proxied_before: f64,
) -> (usize, f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = client_accepts(field, nodes, before).len();
        let p = sample(&scrape(metrics), "tidemark_proxy_connections_total") - proxied_before;
        if n as f64 == p || Instant::now() > deadline {
            return (n, p);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------
// The independent capture of the proxy→node leg, and the tap of it.

fn tidemark(args: &[&str]) -> std::process::Output {
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_tidemark")).args(args),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "tidemark {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `tidemark log --json` of a store: its mutation lines, in log order.
fn log_of(store: &Path) -> Vec<Value> {
    let out = tidemark(&["log", "--json", "--store", store.to_str().unwrap()]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|m: &Value| m["type"] == "mutation")
        .collect()
}

fn tap(pcap: &Path, store: &Path, port_flag: &str, port: u16) -> Value {
    let out = tidemark(&[
        "tap",
        "--pcap",
        pcap.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        port_flag,
        &port.to_string(),
        "--no-sync",
        "--json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// A driver's part, bounded: 60 s, or the test fails.
async fn within<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .expect("a driver's workload did not end within 60 s")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One bed's proxy: three routes, one sidecar per node, the rewrite on.
struct Proxied {
    sidecars: Vec<SocketAddr>,
    metrics: SocketAddr,
    proxy: Killed,
    err: Lines,
}

fn proxy_for(nodes: &[SocketAddr], third: u8, first: u8, store: &Path) -> Proxied {
    let ips: Vec<Ipv4Addr> = (first..first + 3)
        .map(|d| Ipv4Addr::new(127, 0, third, d))
        .collect();
    let port = common_port(&ips, nodes[0].port());
    let sidecars: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::from((*ip, port))).collect();
    let metrics_ip = Ipv4Addr::new(127, 0, third, first - 1);
    let metrics = SocketAddr::from((metrics_ip, free_port(metrics_ip)));
    let mut args = vec!["--metrics".to_string(), metrics.to_string()];
    for (s, n) in sidecars.iter().zip(nodes) {
        args.push("--route".into());
        args.push(format!("{s}={n}"));
    }
    let (proxy, err) = start_proxy(&args, store, &["--no-sync"]);
    Proxied {
        sidecars,
        metrics,
        proxy,
        err,
    }
}

fn python(script: &str, args: &[String]) -> Value {
    let out = output_within(
        Command::new("python3").arg("-c").arg(script).args(args),
        Duration::from_secs(90),
    );
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// RFC 3339 time of a log field, in nanoseconds.
fn time_ns(v: &Value) -> u64 {
    tidemark::decode::time::parse_rfc3339(v.as_str().expect("a time string"))
        .expect("an RFC 3339 time")
        .0
}

/// The fields that may differ between the proxy's store and the tap's store of
/// the same traffic (see the module doc for why each may): both sides must have
/// them; they are checked for what they must still agree on and then removed.
const SOURCE_FIELDS: [&str; 3] = ["flow", "ts", "commit_time"];

/// What the comparison saw: mutations compared, flows on each side, the
/// mutations compared in log order, and the largest gap between the two capture
/// times of one event (reported, not judged).
struct Compared {
    mutations: usize,
    flows: usize,
    in_order: usize,
    max_skew_us: u64,
}

/// One log's mutations without [`SOURCE_FIELDS`], each with its flow; a CQL batch
/// id (`FLOW:N`) must name the mutation's own flow and keeps only N. `seq` must
/// count 1, 2, ... along the log.
fn normalized(log: &[Value]) -> Vec<(u64, Value)> {
    log.iter()
        .enumerate()
        .map(|(i, m)| {
            let mut m = m.as_object().expect("a mutation object").clone();
            assert_eq!(m["seq"], i + 1, "seq along the log: {m:?}");
            let flow = m["flow"].as_u64().expect("a flow id");
            for f in SOURCE_FIELDS {
                assert!(m.contains_key(f), "no {f} in {m:?}");
                m.remove(f);
            }
            if let Some(Value::Object(batch)) = m.get_mut("batch") {
                if let Some(Value::String(id)) = batch.get_mut("id") {
                    let (f, n) = id.split_once(':').expect("batch id FLOW:N");
                    assert_eq!(f, flow.to_string(), "a batch id names its own flow");
                    *id = n.to_string();
                }
            }
            (flow, Value::Object(m))
        })
        .collect()
}

/// Asserts that the proxy's log and the tap's log hold the same mutations, equal
/// in every field but [`SOURCE_FIELDS`]:
/// - grouped by connection, the same sequences (so the flows correspond one to
///   one, and each connection's writes are in the same order);
/// - along the whole log, in the same order with the same `seq`, every mutation
///   but those `concurrent` says were in flight together with writes on other
///   connections (see the module doc): those occupy the same `seq` range on both
///   sides, in each side's own order.
fn assert_same_mutations(
    proxy: &[Value],
    tap: &[Value],
    concurrent: impl Fn(&Value) -> bool,
) -> Compared {
    assert_eq!(
        proxy.len(),
        tap.len(),
        "mutation counts differ: proxy {proxy:#?}\ntap {tap:#?}"
    );
    let (p, t) = (normalized(proxy), normalized(tap));
    let mut max_skew_us = 0;
    let mut in_order = 0;
    for (i, ((_, pm), (_, tm))) in p.iter().zip(&t).enumerate() {
        assert_eq!(concurrent(pm), concurrent(tm), "#{i}: {pm} / {tm}");
        if concurrent(pm) {
            continue;
        }
        assert_eq!(pm, tm, "mutation #{i} differs beyond the source fields");
        in_order += 1;
        for f in ["ts", "commit_time"] {
            let d = time_ns(&proxy[i][f]).abs_diff(time_ns(&tap[i][f]));
            max_skew_us = max_skew_us.max(d / 1000);
        }
    }
    let by_flow = |log: &[(u64, Value)]| -> Vec<Vec<Value>> {
        let mut flows: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
        for (flow, m) in log {
            let mut m = m.clone();
            m.as_object_mut().unwrap().remove("seq");
            flows.entry(*flow).or_default().push(m);
        }
        let mut seqs: Vec<Vec<Value>> = flows.into_values().collect();
        seqs.sort_by_key(|s| serde_json::to_string(s).unwrap());
        seqs
    };
    let (pf, tf) = (by_flow(&p), by_flow(&t));
    assert_eq!(pf.len(), tf.len(), "flows with mutations");
    for (a, b) in pf.iter().zip(&tf) {
        assert_eq!(a, b, "one connection's mutations");
    }
    Compared {
        mutations: p.len(),
        flows: pf.len(),
        in_order,
        max_skew_us,
    }
}

/// `tidemark status --json` of both stores agrees (mutations, outcome counts,
/// undecided writes, gaps, policy) but in `store` (the path), `tidemark` (a
/// capture time, see the module doc) and `last_run`, which reports pcap runs only
/// (the resumable kind): a live source — the proxy, like `tap --interface` — keeps
/// its own checkpoint, so its store says `none` where the tap of a file says
/// `complete`.
fn assert_same_status(proxy: &Path, tap: &Path) {
    let status = |p: &Path| -> Value {
        let out = tidemark(&["status", "--json", "--store", p.to_str().unwrap()]);
        let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let o = v.as_object_mut().unwrap();
        for f in ["store", "tidemark", "last_run"] {
            assert!(
                o.remove(f).is_some(),
                "no {f} in the status of {}",
                p.display()
            );
        }
        v
    };
    assert_eq!(
        status(proxy),
        status(tap),
        "status of the proxy's and the tap's store"
    );
}

/// How many of `log`'s mutations have each outcome.
fn outcomes(log: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in log {
        *out.entry(m["outcome"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

// ---------------------------------------------------------------------------
// CQL

const CQL_TABLE: &str = "(id int, c int, v text, n int, s set<text>, m map<text, int>, \
                         l list<int>, PRIMARY KEY (id, c))";

async fn scylla_work(contact: SocketAddr, ks: &str, ts: i64) -> BTreeSet<SocketAddr> {
    use scylla::client::session_builder::SessionBuilder;
    use scylla::statement::batch::Batch;
    use scylla::statement::Consistency;
    let session = SessionBuilder::new()
        .known_node(contact.to_string())
        .build()
        .await
        .expect("scylla through the sidecar");
    let learned: BTreeSet<SocketAddr> = session
        .get_cluster_state()
        .get_nodes_info()
        .iter()
        .map(|n| SocketAddr::new(n.address.ip(), n.address.port()))
        .collect();
    for q in [
        format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 3}}"),
        format!("CREATE TABLE {ks}.t {CQL_TABLE}"),
    ] {
        session.query_unpaged(q.as_str(), ()).await.expect("ddl");
    }
    let mut insert = session
        .prepare(format!(
            "INSERT INTO {ks}.t (id, c, v, n) VALUES (?, ?, ?, ?)"
        ))
        .await
        .unwrap();
    insert.set_consistency(Consistency::Quorum);
    for id in 0..8i32 {
        for c in 0..2i32 {
            session
                .execute_unpaged(&insert, (id, c, format!("v{id}.{c}"), id * 10 + c))
                .await
                .expect("insert");
        }
    }
    for stmt in [
        format!("UPDATE {ks}.t SET s = s + {{'a', 'b'}}, m['k'] = 1, l = l + [1, 2] WHERE id = 0 AND c = 0"),
        format!("UPDATE {ks}.t SET s = s - {{'a'}}, m = m + {{'j': 2}}, l = [7] + l WHERE id = 0 AND c = 0"),
        format!("UPDATE {ks}.t USING TIMESTAMP {ts} SET v = 'fixed' WHERE id = 1 AND c = 0"),
        format!("UPDATE {ks}.t USING TTL 3600 SET n = 99 WHERE id = 1 AND c = 1"),
        format!("DELETE v FROM {ks}.t WHERE id = 2 AND c = 0"),
        format!("DELETE FROM {ks}.t WHERE id = 3 AND c = 1"),
        format!("DELETE FROM {ks}.t WHERE id = 4"),
        format!("INSERT INTO {ks}.t (id, c, v) VALUES (20, 0, 'lwt') IF NOT EXISTS"),
        format!("INSERT INTO {ks}.t (id, c, v) VALUES (20, 0, 'lost') IF NOT EXISTS"),
        format!("UPDATE {ks}.t SET v = 'cas' WHERE id = 20 AND c = 0 IF v = 'lwt'"),
    ] {
        session
            .query_unpaged(stmt.as_str(), ())
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    let mut batch = Batch::default();
    batch.append_statement(format!("INSERT INTO {ks}.t (id, c, v) VALUES (?, ?, ?)").as_str());
    batch.append_statement(format!("UPDATE {ks}.t SET n = ? WHERE id = ? AND c = ?").as_str());
    batch.append_statement(format!("DELETE FROM {ks}.t WHERE id = ? AND c = ?").as_str());
    session
        .batch(
            &batch,
            ((30i32, 0i32, "b"), (5i32, 30i32, 0i32), (5i32, 1i32)),
        )
        .await
        .expect("batch");
    // Concurrent writes, spread over the connections to all three nodes.
    let session = Arc::new(session);
    let insert = Arc::new(insert);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONCURRENT {
        let (session, insert) = (Arc::clone(&session), Arc::clone(&insert));
        tasks.spawn(async move {
            session
                .execute_unpaged(&insert, (100 + i, i % 2, format!("cc{i}"), i))
                .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().expect("concurrent insert");
    }
    learned
}

/// Writes the scylla workload has in flight at once.
const CONCURRENT: i32 = 48;

type CqlRow = (
    i32,
    i32,
    Option<String>,
    Option<i32>,
    Option<Vec<String>>,
    Option<BTreeMap<String, i32>>,
    Option<Vec<i32>>,
);

async fn scylla_read(contact: SocketAddr, ks: &str) -> Vec<CqlRow> {
    use scylla::client::session_builder::SessionBuilder;
    use scylla::statement::unprepared::Statement;
    use scylla::statement::Consistency;
    let session = SessionBuilder::new()
        .known_node(contact.to_string())
        .build()
        .await
        .expect("scylla read session");
    let mut st = Statement::new(format!("SELECT id, c, v, n, s, m, l FROM {ks}.t"));
    st.set_consistency(Consistency::All);
    let mut rows: Vec<CqlRow> = session
        .query_unpaged(st, ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<CqlRow>()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.sort_by_key(|r| (r.0, r.1));
    rows
}

/// The Python cassandra-driver: with `work`, the same kinds of statements as the
/// scylla workload (its own keyspace); always, every row read back at ALL.
const PY_CQL: &str = r#"
import json, sys
from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT
from cassandra.policies import RoundRobinPolicy
from cassandra.query import BatchStatement, SimpleStatement
from cassandra import ConsistencyLevel
host, port, ks, work, ts, table = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "work", int(sys.argv[5]), sys.argv[6]
profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), consistency_level=ConsistencyLevel.QUORUM)
cluster = Cluster([host], port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
s = cluster.connect()
out = {}
if work:
    out["learned"] = sorted("%s:%d" % (h.endpoint.address, h.endpoint.port) for h in cluster.metadata.all_hosts())
    s.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}" % ks)
    s.execute("CREATE TABLE %s.t %s" % (ks, table))
    ins = s.prepare("INSERT INTO %s.t (id, c, v, n) VALUES (?, ?, ?, ?)" % ks)
    for i in range(6):
        for c in range(2):
            s.execute(ins, (i, c, "p%d.%d" % (i, c), i * 10 + c))
    for q in [
        "UPDATE {ks}.t SET s = s + {{'x'}}, m['q'] = 5, l = l + [3] WHERE id = 0 AND c = 1",
        "UPDATE {ks}.t USING TIMESTAMP {ts} SET n = 7 WHERE id = 1 AND c = 1",
        "DELETE n FROM {ks}.t WHERE id = 2 AND c = 1",
        "DELETE FROM {ks}.t WHERE id = 3 AND c = 0",
        "INSERT INTO {ks}.t (id, c, v) VALUES (40, 0, 'new') IF NOT EXISTS",
        "UPDATE {ks}.t SET v = 'no' WHERE id = 40 AND c = 0 IF v = 'other'",
    ]:
        s.execute(q.format(ks=ks, ts=ts))
    b = BatchStatement()
    b.add("INSERT INTO %s.t (id, c, v) VALUES (%%s, %%s, %%s)" % ks, (50, 0, "pb"))
    b.add("UPDATE %s.t SET v = %%s WHERE id = %%s AND c = %%s" % ks, ("pu", 5, 0))
    b.add("DELETE FROM %s.t WHERE id = %%s AND c = %%s" % ks, (5, 1))
    s.execute(b)
    # Pools open in the background after a host is learned: give them a bounded time
    # before reading which exist (the assertion on them is unchanged).
    import time as _t
    _deadline = _t.time() + 20
    while _t.time() < _deadline and len(s.get_pool_state()) < len(cluster.metadata.all_hosts()):
        _t.sleep(0.1)
    out["pools"] = sorted("%s:%d" % (h.endpoint.address, h.endpoint.port) for h in s.get_pool_state().keys())
rows = s.execute(SimpleStatement("SELECT id, c, v, n, s, m, l FROM %s.t" % ks, consistency_level=ConsistencyLevel.ALL))
out["rows"] = sorted([[r.id, r.c, r.v, r.n, sorted(r.s) if r.s else None, dict(r.m) if r.m else None, list(r.l) if r.l else None] for r in rows])
cluster.shutdown()
print(json.dumps(out))
"#;

fn py_cql(contact: SocketAddr, ks: &str, work: bool, ts: i64) -> Value {
    python(
        PY_CQL,
        &[
            contact.ip().to_string(),
            contact.port().to_string(),
            ks.into(),
            if work { "work" } else { "read" }.into(),
            ts.to_string(),
            CQL_TABLE.into(),
        ],
    )
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// A row as both drivers' reads are put: `[id, c, v, n, s, m, l]`, a set sorted,
/// an empty or missing collection `null`.
fn scylla_json(rows: &[CqlRow]) -> Vec<Value> {
    rows.iter()
        .map(|(id, c, v, n, s, m, l)| {
            let s = s.clone().map(|mut s| {
                s.sort();
                s
            });
            serde_json::json!([id, c, v, n, s, m, l])
        })
        .collect()
}

/// (namespace, id, c) → column → value: the rows the store's committed CQL
/// mutations make, applied in log order. The workloads write no cell after a
/// `USING TIMESTAMP` write to it, so log order is timestamp order for every cell.
type CqlModel = BTreeMap<(String, i64, i64), BTreeMap<String, Value>>;

fn cql_model(log: &[Value]) -> CqlModel {
    let mut rows = CqlModel::new();
    for m in log.iter().filter(|m| m["outcome"] == "committed") {
        let ns = m["namespace"].as_str().unwrap().to_string();
        let (op, key) = (m["op"].as_str().unwrap(), &m["key"]);
        if op.starts_with("create_") {
            continue;
        }
        let id = key["id"].as_i64().unwrap();
        match (op, key.get("c").and_then(Value::as_i64)) {
            ("insert" | "update", Some(c)) => {
                let row = rows.entry((ns, id, c)).or_default();
                for (col, v) in m["values"].as_object().unwrap() {
                    row.insert(col.clone(), v.clone());
                }
                for o in m["collection_ops"].as_array().unwrap() {
                    let col = o["column"].as_str().unwrap().to_string();
                    let cur = row.remove(&col);
                    let arr = |v: Option<Value>| match v {
                        Some(Value::Array(a)) => a,
                        _ => Vec::new(),
                    };
                    let new = match o["op"].as_str().unwrap() {
                        "add" => {
                            let mut set = arr(cur);
                            set.extend(arr(Some(o["value"].clone())));
                            set.sort_by_key(|v| v.to_string());
                            set.dedup();
                            Value::Array(set)
                        }
                        "remove" => {
                            let gone = arr(Some(o["value"].clone()));
                            Value::Array(
                                arr(cur).into_iter().filter(|v| !gone.contains(v)).collect(),
                            )
                        }
                        "append" => {
                            let mut l = arr(cur);
                            l.extend(arr(Some(o["value"].clone())));
                            Value::Array(l)
                        }
                        "prepend" => {
                            let mut l = arr(Some(o["value"].clone()));
                            l.extend(arr(cur));
                            Value::Array(l)
                        }
                        "put" | "put_all" => {
                            let mut map = match cur {
                                Some(Value::Object(o)) => o,
                                _ => serde_json::Map::new(),
                            };
                            match o.get("key") {
                                Some(k) => {
                                    map.insert(k.as_str().unwrap().into(), o["value"].clone());
                                }
                                None => map.extend(o["value"].as_object().unwrap().clone()),
                            }
                            Value::Object(map)
                        }
                        other => panic!("collection op {other} is not in the model: {m}"),
                    };
                    row.insert(col, new);
                }
            }
            ("delete", Some(c)) => {
                let cols = m["columns_deleted"].as_array().unwrap();
                if cols.is_empty() {
                    rows.remove(&(ns, id, c));
                } else if let Some(row) = rows.get_mut(&(ns, id, c)) {
                    for col in cols {
                        row.remove(col.as_str().unwrap());
                    }
                }
            }
            ("delete", None) => rows.retain(|(n, i, _), _| !(*n == ns && *i == id)),
            _ => panic!("a mutation the model does not know: {m}"),
        }
    }
    for row in rows.values_mut() {
        row.retain(|_, v| {
            !v.is_null() && v != &serde_json::json!([]) && v != &serde_json::json!({})
        });
    }
    rows.retain(|_, row| !row.is_empty());
    rows
}

/// The model's rows of one namespace, as the drivers' reads are put.
fn model_rows(model: &CqlModel, ns: &str) -> Vec<Value> {
    model
        .iter()
        .filter(|((n, _, _), _)| n == ns)
        .map(|((_, id, c), row)| {
            let col = |k: &str| row.get(k).cloned().unwrap_or(Value::Null);
            serde_json::json!([id, c, col("v"), col("n"), col("s"), col("m"), col("l")])
        })
        .collect()
}

/// The testbed's own state as (namespace, id, c, column) → cells (1 for a plain
/// column, one per element for a collection), for the given keyspaces.
fn state_cells(
    cluster: &CqlCluster,
    keyspaces: &[&str],
) -> BTreeMap<(String, i64, i64, String), usize> {
    let int = |hex: &str| i64::from(u32::from_str_radix(hex, 16).unwrap() as i32);
    let mut out = BTreeMap::new();
    for cell in cluster.logical_state() {
        if !keyspaces.contains(&cell.keyspace.as_str()) {
            continue;
        }
        let col = cell.column.split('[').next().unwrap().to_string();
        let key = (
            format!("{}.{}", cell.keyspace, cell.table),
            int(&cell.partition_key[0]),
            int(&cell.clustering[0]),
            col,
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

fn model_cells(model: &CqlModel) -> BTreeMap<(String, i64, i64, String), usize> {
    let mut out = BTreeMap::new();
    for ((ns, id, c), row) in model {
        for (col, v) in row {
            let n = match v {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                _ => 1,
            };
            out.insert((ns.clone(), *id, *c, col.clone()), n);
        }
    }
    out
}

#[test]
fn cql_drivers_through_sidecars_store_what_a_tap_of_the_same_traffic_stores() {
    if !require::live_capture() || !require::tool("dumpcap") {
        return;
    }
    let py_ok = require::python_modules(&["cassandra"]);
    accepted_log();
    let rt = runtime();
    let cluster = rt
        .block_on(CqlCluster::start(ClusterConfig {
            nodes: 3,
            base_addr: Ipv4Addr::new(127, 0, 213, 1),
            port: 0,
            ..ClusterConfig::default()
        }))
        .unwrap();
    let nodes = cluster.addresses();
    let dir = tempfile::tempdir().unwrap();
    let (proxy_store, tap_store, pcap) = (
        dir.path().join("proxy"),
        dir.path().join("tap"),
        dir.path().join("leg.pcapng"),
    );
    let capture = start_capture(&nodes, &pcap);
    let p = proxy_for(&nodes, 213, 101, &proxy_store);
    let sidecars: BTreeSet<SocketAddr> = p.sidecars.iter().copied().collect();
    let before = client_accepts("node", &nodes, 0).len();
    let ts = now_micros() + 3_600_000_000;

    let learned = rt.block_on(within(scylla_work(p.sidecars[0], "vt_rs", ts)));
    assert_eq!(learned, sidecars, "scylla learned the sidecars");
    let rs_proxied = scylla_json(&rt.block_on(within(scylla_read(p.sidecars[1], "vt_rs"))));
    let py_proxied = py_ok.then(|| {
        let py = py_cql(p.sidecars[2], "vt_py", true, ts);
        let want: Vec<String> = p.sidecars.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            py["learned"],
            serde_json::json!(want),
            "python learned: {py}"
        );
        assert_eq!(py["pools"], serde_json::json!(want), "python pools: {py}");
        py
    });
    // Node side: the nodes accepted exactly the connections the proxy made.
    let (accepted_n, proxied) = settle("node", &nodes, p.metrics, before, 0.0);
    assert_eq!(
        accepted_n as f64, proxied,
        "a driver reached a node around the proxy"
    );
    let text = scrape(p.metrics);
    assert_eq!(sample(&text, "tidemark_proxy_rewrite_errors_total"), 0.0);
    assert_eq!(sample(&text, "tidemark_proxy_gap_bytes_total"), 0.0);

    let summary = stop_proxy(p.proxy, p.err);
    assert_eq!(summary["gap_bytes"], 0, "{summary}");
    let packets = stop_capture(capture);
    let tap_report = tap(&pcap, &tap_store, "--cql-port", nodes[0].port());
    assert_eq!(
        tap_report["read_errors"],
        serde_json::json!([]),
        "{tap_report}"
    );

    // What the drivers read through the sidecars is what a direct connection reads
    // (after the capture, so the tap does not see it).
    let rs_direct = scylla_json(&rt.block_on(within(scylla_read(nodes[0], "vt_rs"))));
    assert_eq!(
        rs_proxied, rs_direct,
        "scylla through the proxy and directly"
    );
    if let Some(py) = &py_proxied {
        let direct = py_cql(nodes[1], "vt_py", false, ts);
        assert_eq!(
            py["rows"], direct["rows"],
            "python through the proxy and directly"
        );
    }

    let (proxy_log, tap_log) = (log_of(&proxy_store), log_of(&tap_store));
    assert_same_status(&proxy_store, &tap_store);
    // The concurrent inserts (ids from 100) were in flight together.
    let concurrent =
        |m: &Value| m["namespace"] == "vt_rs.t" && m["key"]["id"].as_i64() >= Some(100);
    let compared = assert_same_mutations(&proxy_log, &tap_log, concurrent);
    let by_outcome = outcomes(&proxy_log);
    // Two LWTs were not applied (rejected); everything else committed.
    let rejected = if py_ok { 2 } else { 1 };
    assert_eq!(
        by_outcome.get("rejected"),
        Some(&rejected),
        "{by_outcome:?}"
    );
    assert_eq!(by_outcome.len(), 2, "{by_outcome:?}");

    // The store against the database: the committed mutations, applied, give the
    // rows the drivers read, and the testbed's own cells.
    let model = cql_model(&proxy_log);
    assert_eq!(
        model_rows(&model, "vt_rs.t"),
        rs_direct,
        "store vs scylla's read"
    );
    if let Some(py) = &py_proxied {
        assert_eq!(
            serde_json::json!(model_rows(&model, "vt_py.t")),
            py["rows"],
            "store vs python's read"
        );
    }
    assert_eq!(
        model_cells(&model),
        state_cells(&cluster, &["vt_rs", "vt_py"]),
        "store vs the testbed's state"
    );
    eprintln!(
        "cql: {} mutations ({by_outcome:?}) on {} flows compared ({} in log order), \
         {packets} packets captured, largest capture-time skew {} us, {} rows",
        compared.mutations,
        compared.flows,
        compared.in_order,
        compared.max_skew_us,
        model.len()
    );
    cluster.stop();
}

// ---------------------------------------------------------------------------
// MongoDB

/// pymongo with `replicaSet=rs0`, w:majority and zlib compression (OP_COMPRESSED,
/// which both the proxy and the tap must decode) through one sidecar: the
/// addresses it opened (SDAM and pool monitoring), then the workload, then every
/// document of the collection (relaxed extended JSON, by `_id`).
const PY_MONGO: &str = r#"
import json, sys
from pymongo import MongoClient, monitoring, UpdateOne, InsertOne, DeleteOne, ReplaceOne, ReturnDocument
from bson import json_util
seed, db = sys.argv[1], sys.argv[2]
opened = set()
class Servers(monitoring.ServerListener):
    def opened(self, e): opened.add("%s:%d" % e.server_address)
    def description_changed(self, e): pass
    def closed(self, e): pass
class Pools(monitoring.ConnectionPoolListener):
    def connection_created(self, e): opened.add("%s:%d" % e.address)
    def pool_created(self, e): opened.add("%s:%d" % e.address)
    def pool_ready(self, e): pass
    def pool_cleared(self, e): pass
    def pool_closed(self, e): pass
    def connection_ready(self, e): pass
    def connection_closed(self, e): pass
    def connection_check_out_started(self, e): pass
    def connection_check_out_failed(self, e): pass
    def connection_checked_out(self, e): pass
    def connection_checked_in(self, e): pass
client = MongoClient("mongodb://%s/?replicaSet=rs0" % seed, w="majority", compressors="zlib", serverSelectionTimeoutMS=20000, event_listeners=[Servers(), Pools()])
c = client[db]["c"]
c.insert_many([{"_id": i, "v": "p%d" % i, "n": i, "tags": ["t%d" % i]} for i in range(12)])
c.update_one({"_id": 1}, {"$set": {"v": "u1", "sub.x": 1}, "$inc": {"n": 5}, "$push": {"tags": "more"}})
c.update_many({"_id": {"$gte": 8}}, {"$set": {"many": True}})
c.replace_one({"_id": 2}, {"v": "replaced", "n": -2})
c.delete_many({"_id": {"$in": [3, 4]}})
got = c.find_one_and_update({"_id": 5}, {"$set": {"v": "fau"}, "$unset": {"tags": ""}}, return_document=ReturnDocument.AFTER)
c.update_one({"_id": 100}, {"$set": {"v": "upserted"}}, upsert=True)
r = c.bulk_write([InsertOne({"_id": 200, "v": "bulk"}), UpdateOne({"_id": 6}, {"$set": {"v": "bw"}}), ReplaceOne({"_id": 7}, {"v": "bwr"}), DeleteOne({"_id": 0})], ordered=True)
docs = [json.loads(json_util.dumps(d, json_options=json_util.RELAXED_JSON_OPTIONS)) for d in c.find({}).sort("_id", 1)]
client.close()
print(json.dumps({"opened": sorted(opened), "docs": docs, "fau": got["v"], "bulk": [r.inserted_count, r.modified_count, r.deleted_count]}))
"#;

async fn mongo_crate_work(seed: SocketAddr, db: &str) -> Vec<Document> {
    use mongodb::options::ReturnDocument;
    let client = mongodb::Client::with_uri_str(format!(
        "mongodb://{seed}/?replicaSet=rs0&serverSelectionTimeoutMS=20000&w=majority"
    ))
    .await
    .unwrap();
    let c = client.database(db).collection::<Document>("c");
    c.insert_many((0..10).map(|i| doc! {"_id": i, "v": format!("r{i}"), "n": i}))
        .await
        .expect("insert_many");
    c.update_one(doc! {"_id": 1}, doc! {"$set": {"v": "u"}, "$inc": {"n": 3}})
        .await
        .unwrap();
    c.replace_one(doc! {"_id": 2}, doc! {"v": "rep"})
        .await
        .unwrap();
    c.delete_one(doc! {"_id": 3}).await.unwrap();
    c.delete_many(doc! {"_id": {"$gte": 8}}).await.unwrap();
    c.find_one_and_update(doc! {"_id": 4}, doc! {"$push": {"a": 1}})
        .return_document(ReturnDocument::After)
        .await
        .unwrap();
    c.update_one(doc! {"_id": 50}, doc! {"$set": {"v": "up"}})
        .upsert(true)
        .await
        .unwrap();
    // Concurrent inserts, over several pooled connections.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONCURRENT {
        let c = c.clone();
        tasks.spawn(async move { c.insert_one(doc! {"_id": 1000 + i, "v": i}).await });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().expect("concurrent insert_one");
    }
    let mut cursor = c.find(doc! {}).sort(doc! {"_id": 1}).await.unwrap();
    let mut out = Vec::new();
    while cursor.advance().await.unwrap() {
        out.push(cursor.deserialize_current().unwrap());
    }
    // shutdown() waits for every cursor to be dropped.
    drop(cursor);
    client.shutdown().await;
    out
}

fn relaxed(docs: &[Document]) -> Value {
    Value::Array(
        docs.iter()
            .map(|d| Bson::Document(d.clone()).into_relaxed_extjson())
            .collect(),
    )
}

fn truth_docs(set: &MongoReplicaSet, ns: &str) -> Vec<Document> {
    let mut docs = set
        .committed_state_at(set.newest_commit_point())
        .expect("committed state")
        .get(ns)
        .cloned()
        .unwrap_or_default();
    docs.sort_by_key(|d| d.get("_id").map(|v| v.as_i32().unwrap_or(i32::MAX)));
    docs
}

/// The `_id`s a logged write's key selects, given the `_id`s present before it
/// (the workloads' filters: an `_id`, `$gte`, `$in`).
fn selected(key: &Value, present: &BTreeSet<i64>) -> Vec<i64> {
    let id = &key["_id"];
    if let Some(i) = id.as_i64() {
        return vec![i];
    }
    if let Some(min) = id.get("$gte").and_then(Value::as_i64) {
        return present.iter().copied().filter(|i| *i >= min).collect();
    }
    if let Some(list) = id.get("$in").and_then(Value::as_array) {
        return list.iter().map(|v| v.as_i64().unwrap()).collect();
    }
    panic!("a key the check does not know: {key}")
}

/// The oplog entries `(ns, op, _id)` the store's committed writes imply, in commit
/// order: an insert is `i`; an update or findAndModify of a present document `u`,
/// of an absent one (an upsert) `i`; a delete `d` for each present document it
/// selects. (Every update in the workloads changes its documents, so each leaves
/// an entry.)
fn implied_oplog(log: &[Value]) -> Vec<(String, String, i64)> {
    let mut present: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut out = Vec::new();
    for m in log.iter().filter(|m| m["outcome"] == "committed") {
        let ns = m["namespace"].as_str().unwrap().to_string();
        let ids = present.entry(ns.clone()).or_default();
        let mut sel = selected(&m["key"], ids);
        let op = m["op"].as_str().unwrap();
        for id in sel.drain(..) {
            let kind = match op {
                "insert" => "i",
                "update" | "findAndModify" if ids.contains(&id) => "u",
                "update" | "findAndModify" => "i",
                "delete" if ids.contains(&id) => "d",
                "delete" => continue,
                other => panic!("op {other} is not in the check: {m}"),
            };
            match kind {
                "d" => ids.remove(&id),
                _ => ids.insert(id),
            };
            out.push((ns.clone(), kind.to_string(), id));
        }
    }
    out
}

/// The testbed's majority-committed oplog `(ns, op, _id)` for namespaces of `dbs`.
fn committed_oplog(set: &MongoReplicaSet, dbs: &[&str]) -> Vec<(String, String, i64)> {
    set.committed_oplog()
        .iter()
        .filter_map(|e| {
            let ns = e.get_str("ns").ok()?;
            if !dbs.iter().any(|d| ns.starts_with(&format!("{d}."))) {
                return None;
            }
            let op = e.get_str("op").ok()?;
            let id = match op {
                "u" => e.get_document("o2").ok()?.get("_id")?,
                _ => e.get_document("o").ok()?.get("_id")?,
            };
            let id = id.as_i32().map(i64::from).or_else(|| id.as_i64())?;
            Some((ns.to_string(), op.to_string(), id))
        })
        .collect()
}

/// The mongodb crate's concurrent inserts (`_id` from 1000), in flight together.
fn mongo_concurrent(m: &Value) -> bool {
    m["namespace"] == "vt_rs.c" && m["key"]["_id"].as_i64() >= Some(1000)
}

/// `entries` with each run of concurrent inserts sorted: the store orders them by
/// when their answers were seen, the oplog by when the primary applied them, and
/// with several in flight the two orders need not agree.
fn runs_sorted(entries: &[(String, String, i64)]) -> Vec<(String, String, i64)> {
    let mut out = entries.to_vec();
    let conc = |e: &(String, String, i64)| e.0 == "vt_rs.c" && e.2 >= 1000;
    let mut i = 0;
    while i < out.len() {
        let j = (i..out.len())
            .find(|&j| !conc(&out[j]))
            .unwrap_or(out.len());
        out[i..j].sort();
        i = j.max(i + 1);
    }
    out
}

#[test]
fn mongo_drivers_through_sidecars_store_what_a_tap_of_the_same_traffic_stores() {
    if !require::live_capture()
        || !require::tool("dumpcap")
        || !require::python_modules(&["pymongo"])
    {
        return;
    }
    accepted_log();
    let rt = runtime();
    let set = rt
        .block_on(MongoReplicaSet::start(ReplSetConfig {
            members: 3,
            base_addr: Ipv4Addr::new(127, 0, 214, 11),
            port: 0,
            ..ReplSetConfig::default()
        }))
        .unwrap();
    let nodes = set.addresses();
    let dir = tempfile::tempdir().unwrap();
    let (proxy_store, tap_store, pcap) = (
        dir.path().join("proxy"),
        dir.path().join("tap"),
        dir.path().join("leg.pcapng"),
    );
    let capture = start_capture(&nodes, &pcap);
    let p = proxy_for(&nodes, 214, 111, &proxy_store);
    let want: Vec<String> = p.sidecars.iter().map(|s| s.to_string()).collect();

    let before = client_accepts("member", &nodes, 0).len();
    let rs_docs = rt.block_on(within(mongo_crate_work(p.sidecars[0], "vt_rs")));
    let (n0, p0) = settle("member", &nodes, p.metrics, before, 0.0);
    assert_eq!(
        n0 as f64, p0,
        "the mongodb crate reached a member around the proxy"
    );

    let zlib = || -> u64 {
        (0..3)
            .map(|i| set.shared().members[i].compressed_requests(Compressor::Zlib))
            .sum()
    };
    let zlib_before = zlib();
    let py = python(PY_MONGO, &[p.sidecars[1].to_string(), "vt_py".into()]);
    assert!(zlib() > zlib_before, "pymongo's requests went compressed");
    assert_eq!(
        py["opened"],
        serde_json::json!(want),
        "pymongo opened: {py}"
    );
    assert_eq!(py["fau"], "fau", "{py}");
    assert_eq!(py["bulk"], serde_json::json!([1, 2, 1]), "{py}");
    // Node side, pymongo's share alone: every connection a member accepted was
    // one the proxy made, and it reached all three members.
    let (n1, p1) = settle("member", &nodes, p.metrics, before + n0, p0);
    assert_eq!(n1 as f64, p1, "pymongo reached a member around the proxy");
    let reached: BTreeSet<usize> = client_accepts("member", &nodes, before + n0)
        .iter()
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(reached.len(), 3, "pymongo used every sidecar: {reached:?}");
    let text = scrape(p.metrics);
    assert_eq!(sample(&text, "tidemark_proxy_rewrite_errors_total"), 0.0);
    assert_eq!(sample(&text, "tidemark_proxy_gap_bytes_total"), 0.0);

    let summary = stop_proxy(p.proxy, p.err);
    assert_eq!(summary["gap_bytes"], 0, "{summary}");
    let packets = stop_capture(capture);
    let tap_report = tap(&pcap, &tap_store, "--mongo-port", nodes[0].port());
    assert_eq!(
        tap_report["read_errors"],
        serde_json::json!([]),
        "{tap_report}"
    );

    // What both drivers read through the sidecars is the set's committed state.
    assert_eq!(relaxed(&rs_docs), relaxed(&truth_docs(&set, "vt_rs.c")));
    assert_eq!(py["docs"], relaxed(&truth_docs(&set, "vt_py.c")));

    let (proxy_log, tap_log) = (log_of(&proxy_store), log_of(&tap_store));
    assert_same_status(&proxy_store, &tap_store);
    let compared = assert_same_mutations(&proxy_log, &tap_log, mongo_concurrent);
    let by_outcome = outcomes(&proxy_log);
    assert_eq!(
        by_outcome.keys().collect::<Vec<_>>(),
        ["committed"],
        "{by_outcome:?}"
    );

    // The store against the database: the committed writes, in commit order, are
    // the set's majority-committed oplog, entry for entry.
    let implied = implied_oplog(&proxy_log);
    assert_eq!(
        runs_sorted(&implied),
        runs_sorted(&committed_oplog(&set, &["vt_rs", "vt_py"])),
        "the store's committed writes vs the set's committed oplog"
    );
    eprintln!(
        "mongo: {} mutations ({by_outcome:?}) on {} flows compared ({} in log order), \
         {} oplog entries, {packets} packets captured, largest capture-time skew {} us",
        compared.mutations,
        compared.flows,
        compared.in_order,
        implied.len(),
        compared.max_skew_us
    );
    set.stop();
}
