//! The repository end to end (issue #16) on the `file://` backend: three sidecars
//! — one `tidemark proxy` process per node of a 3-node CQL testbed, each with its
//! own store, `--repo file://… --push-every 1 --source-id sidecar-N` — ship to one
//! repository while the scylla driver writes through them; sidecar-1 is SIGKILLed
//! with writes in flight and restarted on the same store.
//!
//! The test shows:
//! - **no write lost, none twice**: `repo pull` into an empty working store gives
//!   the same mutations as a single tap of all the traffic (`dumpcap` of the
//!   sidecars→nodes leg, `tidemark tap --pcap` into a reference store), compared
//!   as multisets of (namespace, op, key, cells, write timestamp, outcome, …). The
//!   order is not compared: the merged log is in each source's commit-time order
//!   and the tap in the capture's, and writes in flight together on connections of
//!   different sidecars (the concurrent burst, the retries) may be ordered either
//!   way by two clocks stamping at different points;
//! - **the kill**: writes in flight through sidecar-1 at its SIGKILL are logged in
//!   doubt when it restarts on the same store (it persisted them); the driver
//!   retries each (idempotent, with its own client timestamp, so the retry is the
//!   same write by the dedupe identity) through another sidecar, which logs it
//!   committed; the merge keeps one copy, the committed one. The in-doubt copies
//!   are counted from sidecar-1's own store and must equal the duplicates the
//!   merge dropped;
//! - **against the database**: the merged committed mutations, applied by write
//!   timestamp, are exactly the testbed's live cells (key, column, write
//!   timestamp);
//! - **a version from the repository alone**: `version create --repo --store
//!   EMPTYDIR --at latest`, `restore --repo` into a fresh testbed, `verify --repo`
//!   exit 0; the fresh testbed's cells equal the source's (values and timestamps);
//! - `repo verify` is clean; `status --repo` names the three sources and the
//!   cluster's tidemark.
//!
//! The same for MongoDB: a 3-member replica set, a sidecar per member, the mongodb
//! crate (`replicaSet=rs0`, w:majority, retryable writes) writing through them.
//! Writes go to the primary only, so its sidecar is the one killed: the primary is
//! cut from its secondaries (w:majority writes wait), its sidecar SIGKILLed under a
//! burst of inserts, restarted on the same store, the cut healed; the driver
//! retries each interrupted insert once, with the same lsid and txnNumber, through
//! the restarted sidecar. That sidecar's store then holds both copies (the in-doubt
//! one from before the kill, the committed retry); the merge keeps one. The
//! secondaries' sidecars carry no write and still advance their tidemark, so they
//! do not hold the cluster's. The restored replica set's committed documents equal
//! the source's.
//!
//! Every CQL write carries a client timestamp set on the statement (not only the
//! driver's generator: scylla draws a generator timestamp per *attempt*, so a retry
//! would be a different write), which is what gives every write an identity.
//!
//! Setup details that matter:
//! - each sidecar gets `--map NODE=SIDECAR` for every node, its own included: once
//!   `--map` is given, a route's own node→listen mapping is no longer implied, and
//!   the node's address would reach the driver unrewritten;
//! - only the sidecar that carried the DDL (or the driver's schema reads) knows the
//!   table's primary key; the others key INSERTs by the bind metadata (partition
//!   key only). `repo pull` completes those keys with the merged schema (the
//!   `rekeyed` count; `src/repo/rekey.rs`), without which the merged log differs
//!   from the tap and a retried write's two copies do not merge;
//! - a retry reaching a node that never prepared the statement is answered
//!   Unprepared; the decoder (sidecar and tap alike) logs that attempt in doubt
//!   with an unknown statement and holds the tidemark for `--resolve-after` (10 s
//!   by default, which would hold the cluster's tidemark past the end of the run).
//!   The sidecars and the tap run with `--resolve-after 1`; such attempts (0 to 7
//!   a run) are counted and must be equal in the merged log and the tap.
//!
//! Not covered, found while writing this test (a sidecar defect, not the
//! repository's): a sidecar answers the driver before the write it decided is
//! committed to its store (group commit every 200 ms, after the decoders), so a
//! SIGKILL loses the writes acknowledged in the last few hundred ms, and requests
//! forwarded in the last ~150 ms are not yet persisted as in flight. Killing 150 ms
//! into the burst right after phase A lost 35 acknowledged writes that the tap
//! holds and no sidecar store does. Hence the rest before the burst
//! ([`REST_MS`]) and the kill well into it ([`KILL_AFTER_MS`]).
//!
//! Needs live-capture rights and `dumpcap` (through `require`: a skip locally, a
//! failure under CI).

mod proxy_support;
mod ready_support;
#[path = "require/mod.rs"]
mod require;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proxy_support::{
    common_port, output_within, start_capture, start_proxy, stop_capture, stop_proxy, Killed,
};
use ready_support::Lines;
use serde_json::Value;
use tidemark_testbed::{ClusterConfig, CqlCluster};

// ---------------------------------------------------------------------------
// The independent capture of the sidecars→nodes leg (as in `proxy_vs_tap.rs`).

// ---------------------------------------------------------------------------
// The binary.

/// `tidemark ARGS`, bounded (60 s); its output, whatever its exit.
fn run(args: &[&str]) -> std::process::Output {
    output_within(
        Command::new(env!("CARGO_BIN_EXE_tidemark")).args(args),
        Duration::from_secs(60),
    )
}

fn tidemark(args: &[&str]) -> std::process::Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "tidemark {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn last_json(out: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().expect("a JSON line")).unwrap()
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

fn p(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------
// The sidecars.

/// One sidecar process: node `i`'s route, the other nodes mapped to their
/// sidecars (so the driver learns only sidecars), its own store, shipping.
struct Sidecar {
    args: Vec<String>,
    store: PathBuf,
    running: Option<(Killed, Lines)>,
}

impl Sidecar {
    fn new(
        i: usize,
        nodes: &[SocketAddr],
        sidecars: &[SocketAddr],
        dir: &Path,
        repo: &str,
    ) -> Sidecar {
        let mut args = vec![
            "--listen".to_string(),
            sidecars[i].to_string(),
            "--upstream".into(),
            nodes[i].to_string(),
        ];
        // Every node, its own too: with --map given, the route's own mapping is
        // no longer implied.
        for (n, sc) in nodes.iter().zip(sidecars) {
            args.extend(["--map".into(), format!("{n}={sc}")]);
        }
        args.extend([
            "--repo".into(),
            repo.into(),
            "--push-every".into(),
            "1".into(),
            "--source-id".into(),
            format!("sidecar-{}", i + 1),
            "--resolve-after".into(),
            RESOLVE_AFTER.into(),
        ]);
        let mut sc = Sidecar {
            args,
            store: dir.join(format!("sidecar-{}", i + 1)),
            running: None,
        };
        sc.start();
        sc
    }

    fn start(&mut self) {
        assert!(self.running.is_none());
        self.running = Some(start_proxy(&self.args, &self.store, &[]));
    }

    /// SIGKILL: no drain, no last push, requests in flight left in the store.
    fn kill(&mut self) {
        let (mut p, _err) = self.running.take().expect("running");
        let status = p.signal_and_wait("KILL", Duration::from_secs(10));
        assert!(!status.success(), "a SIGKILLed proxy exited cleanly?");
    }

    /// SIGTERM: drain, last push; the proxy exits 0 only if that push succeeded.
    fn stop(&mut self) -> Value {
        let (p, err) = self.running.take().expect("running");
        stop_proxy(p, err)
    }
}

// ---------------------------------------------------------------------------
// The workload.

const KS: &str = "e2e";

/// Client timestamps, one per write, increasing in issue order.
struct Clock(AtomicI64);

impl Clock {
    fn next(&self) -> i64 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

type Session = scylla::client::session::Session;

async fn session(contacts: &[SocketAddr]) -> Session {
    scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(contacts.iter().map(|a| a.to_string()))
        .build()
        .await
        .expect("scylla through the sidecars")
}

/// One write: a CQL string with bound values, idempotent, at QUORUM, with its own
/// client timestamp (kept by every retry of it).
async fn write(
    s: &Session,
    clock: &Clock,
    cql: &str,
    values: impl scylla::serialize::row::SerializeRow,
) -> Result<(), scylla::errors::ExecutionError> {
    use scylla::statement::unprepared::Statement;
    use scylla::statement::Consistency;
    let mut st = Statement::new(cql);
    st.set_consistency(Consistency::Quorum);
    st.set_is_idempotent(true);
    st.set_timestamp(Some(clock.next()));
    s.query_unpaged(st, values).await.map(|_| ())
}

async fn batch(s: &Session, clock: &Clock, base: i32) {
    use scylla::statement::batch::Batch;
    use scylla::statement::Consistency;
    let mut b = Batch::default();
    b.append_statement(format!("INSERT INTO {KS}.t (id, c, v) VALUES (?, ?, ?)").as_str());
    b.append_statement(format!("UPDATE {KS}.t SET n = ? WHERE id = ? AND c = ?").as_str());
    b.append_statement(format!("DELETE FROM {KS}.t WHERE id = ? AND c = ?").as_str());
    b.set_consistency(Consistency::Quorum);
    b.set_is_idempotent(true);
    b.set_timestamp(Some(clock.next()));
    s.batch(&b, ((base, 0i32, "b"), (7i32, base, 1i32), (base, 2i32)))
        .await
        .expect("batch");
}

/// Phase A, every sidecar up: inserts, updates, deletes (cell, row, partition) and
/// a batch over a few partitions.
async fn phase_a(s: &Session, clock: &Clock) -> usize {
    let mut n = 0;
    for q in [
        format!("CREATE KEYSPACE {KS} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 3}}"),
        format!("CREATE TABLE {KS}.t (id int, c int, v text, n int, PRIMARY KEY (id, c))"),
    ] {
        s.query_unpaged(q.as_str(), ()).await.expect("ddl");
    }
    for id in 0..6i32 {
        for c in 0..20i32 {
            let cql = format!("INSERT INTO {KS}.t (id, c, v, n) VALUES (?, ?, ?, ?)");
            write(s, clock, &cql, (id, c, format!("a{id}.{c}"), c))
                .await
                .expect("insert");
            n += 1;
        }
    }
    for id in 0..6i32 {
        for c in (0..20i32).step_by(3) {
            let cql = format!("UPDATE {KS}.t SET n = ? WHERE id = ? AND c = ?");
            write(s, clock, &cql, (100 + c, id, c))
                .await
                .expect("update");
            n += 1;
        }
    }
    for c in 0..5i32 {
        let cql = format!("DELETE v FROM {KS}.t WHERE id = ? AND c = ?");
        write(s, clock, &cql, (1i32, c)).await.expect("delete cell");
        let cql = format!("DELETE FROM {KS}.t WHERE id = ? AND c = ?");
        write(s, clock, &cql, (2i32, 10 + c))
            .await
            .expect("delete row");
        n += 2;
    }
    let cql = format!("DELETE FROM {KS}.t WHERE id = ?");
    write(s, clock, &cql, (5i32,))
        .await
        .expect("delete partition");
    batch(s, clock, 40).await;
    n + 1 + BATCH_MUTATIONS
}

/// Mutations one [`batch`] makes.
const BATCH_MUTATIONS: usize = 3;

/// Sequential updates of `n` on partitions 0..4 (phases C and D).
async fn updates(s: &Session, clock: &Clock, tag: i32, count: i32) -> usize {
    for k in 0..count {
        let cql = format!("UPDATE {KS}.t SET v = ? WHERE id = ? AND c = ?");
        write(s, clock, &cql, (format!("u{tag}.{k}"), k % 4, k % 20))
            .await
            .expect("update");
    }
    count as usize
}

// ---------------------------------------------------------------------------
// The comparison.

/// A mutation as both sources must agree on it: without what each source numbers
/// or stamps itself — `seq` (log position), `flow` (connection number), `ts` and
/// `commit_time` (capture times by two clocks at two points), a batch id's flow
/// part (`FLOW:N`, kept: N) — and without the `reason`, compared apart for the
/// retried writes (see [`compare`]).
fn identity_fields(m: &Value) -> Value {
    let mut m = m.as_object().expect("a mutation").clone();
    for f in ["seq", "flow", "ts", "commit_time"] {
        m.remove(f);
    }
    if let Some(Value::Object(b)) = m.get_mut("batch") {
        if let Some(Value::String(id)) = b.get_mut("id") {
            *id = id
                .split_once(':')
                .map_or(id.clone(), |(_, n)| n.to_string());
        }
    }
    Value::Object(m)
}

fn multiset(log: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in log {
        *out.entry(identity_fields(m).to_string()).or_default() += 1;
    }
    out
}

/// The multiset difference a − b, one line per surplus copy.
fn minus(a: &BTreeMap<String, usize>, b: &BTreeMap<String, usize>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, n) in a {
        let m = b.get(k).copied().unwrap_or(0);
        for _ in m..*n {
            out.push(k.clone());
        }
    }
    out
}

/// (namespace, id, c, column) → write timestamp of the live cell: the committed
/// mutations applied by write timestamp (last write wins, deletions shadow older
/// cells), as Cassandra reconciles them.
type Cells = BTreeMap<(String, i64, i64, String), i64>;

fn model(log: &[Value]) -> Cells {
    let mut ms: Vec<&Value> = log
        .iter()
        .filter(|m| {
            m["outcome"] == "committed"
                && m["namespace"] == "e2e.t"
                && !m["op"].as_str().unwrap().starts_with("create")
        })
        .collect();
    ms.sort_by_key(|m| m["timestamp"].as_i64().expect("a client timestamp"));
    let mut cells = Cells::new();
    for m in ms {
        let ns = m["namespace"].as_str().unwrap().to_string();
        let ts = m["timestamp"].as_i64().unwrap();
        let id = m["key"]["id"].as_i64().unwrap();
        let c = m["key"].get("c").and_then(Value::as_i64);
        match (m["op"].as_str().unwrap(), c) {
            ("insert" | "update", Some(c)) => {
                for col in m["values"].as_object().unwrap().keys() {
                    cells.insert((ns.clone(), id, c, col.clone()), ts);
                }
            }
            ("delete", Some(c)) => {
                let cols: Vec<String> = m["columns_deleted"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect();
                cells.retain(|(n, i, cc, col), _| {
                    !(*n == ns && *i == id && *cc == c && (cols.is_empty() || cols.contains(col)))
                });
            }
            ("delete", None) => cells.retain(|(n, i, _, _), _| !(*n == ns && *i == id)),
            (op, _) => panic!("a mutation the model does not know ({op}): {m}"),
        }
    }
    cells
}

fn hex_int(h: &str) -> i64 {
    i64::from(u32::from_str_radix(h, 16).unwrap() as i32)
}

/// The testbed's live cells of [`KS`] (every replica merged): key, column, write
/// timestamp — and, for the source/target comparison, the value.
fn state(cluster: &CqlCluster) -> BTreeMap<(String, i64, i64, String), (i64, String)> {
    cluster
        .logical_state()
        .into_iter()
        .filter(|c| c.keyspace == KS)
        .map(|c| {
            (
                (
                    format!("{}.{}", c.keyspace, c.table),
                    hex_int(&c.partition_key[0]),
                    hex_int(&c.clustering[0]),
                    c.column,
                ),
                (c.timestamp, c.value),
            )
        })
        .collect()
}

fn outcomes(log: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in log {
        *out.entry(m["outcome"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A driver's part, bounded: 60 s, or the test fails.
async fn within<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .expect("a driver's workload did not end within 60 s")
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// Writes in flight at once when sidecar-1 is killed.
const BURST: i32 = 30;
/// How long every replica holds a mutation during the burst, so that the kill
/// lands while writes are in flight: it comes [`KILL_AFTER_MS`] in, when the
/// sidecar has had time to persist the requests it forwarded (it commits every
/// 200 ms) and the node has answered none (below the testbed's 2 s write timeout).
const BURST_DELAY_MS: u64 = 1500;
const KILL_AFTER_MS: u64 = 700;
/// The rest between phase A and the burst (see the module doc, "Not covered").
const REST_MS: u64 = 1500;
/// `--resolve-after` for the sidecars and the tap: see the module doc (EXECUTEs
/// answered Unprepared).
const RESOLVE_AFTER: &str = "1";

#[test]
fn three_sidecars_one_killed_merge_into_one_log_equal_to_a_tap_and_restore_from_the_repo() {
    if !require::live_capture() || !require::tool("dumpcap") {
        return;
    }
    let started = Instant::now();
    let rt = runtime();
    let cluster = rt
        .block_on(CqlCluster::start(ClusterConfig {
            nodes: 3,
            base_addr: Ipv4Addr::new(127, 0, 216, 1),
            port: 0,
            ..ClusterConfig::default()
        }))
        .unwrap();
    let nodes = cluster.addresses();
    let dir = tempfile::tempdir().unwrap();
    let repo = format!("file://{}", dir.path().join("repo").display());
    let (tap_store, pcap, merged, empty) = (
        dir.path().join("tap"),
        dir.path().join("leg.pcapng"),
        dir.path().join("merged"),
        dir.path().join("empty"),
    );
    let ips: Vec<Ipv4Addr> = (101..104).map(|d| Ipv4Addr::new(127, 0, 216, d)).collect();
    let port = common_port(&ips, nodes[0].port());
    let sidecar_addrs: Vec<SocketAddr> =
        ips.iter().map(|ip| SocketAddr::from((*ip, port))).collect();

    let capture = start_capture(&nodes, &pcap);
    let mut sidecars: Vec<Sidecar> = (0..3)
        .map(|i| Sidecar::new(i, &nodes, &sidecar_addrs, dir.path(), &repo))
        .collect();
    let clock = Arc::new(Clock(AtomicI64::new(now_micros())));
    let s = Arc::new(rt.block_on(within(session(&sidecar_addrs))));

    // A: everything up.
    let mut writes = rt.block_on(within(phase_a(&s, &clock)));

    // B: every replica slow, a burst in flight, sidecar-1 killed under it. The
    // driver sees its connections to sidecar-1 break and retries each write
    // (idempotent) on another sidecar, with the same client timestamp.
    // A rest before the burst: the kill is to land on requests in flight only, not
    // on writes a sidecar answered but has not committed yet (module doc).
    std::thread::sleep(Duration::from_millis(REST_MS));
    let slow = tidemark_testbed::cql::Fault {
        delay_ms: BURST_DELAY_MS,
        ..Default::default()
    };
    for i in 0..3 {
        cluster.set_fault(i, slow.clone()).unwrap();
    }
    let mut burst = tokio::task::JoinSet::new();
    for k in 0..BURST {
        let (s, clock) = (Arc::clone(&s), Arc::clone(&clock));
        burst.spawn_on(
            async move {
                let cql = format!("INSERT INTO {KS}.t (id, c, v, n) VALUES (?, ?, ?, ?)");
                write(&s, &clock, &cql, (10 + k % 3, k, format!("burst{k}"), k)).await
            },
            rt.handle(),
        );
    }
    std::thread::sleep(Duration::from_millis(KILL_AFTER_MS));
    sidecars[0].kill();
    rt.block_on(within(async {
        while let Some(r) = burst.join_next().await {
            r.unwrap()
                .expect("a burst write (retried on another sidecar)");
        }
    }));
    writes += BURST as usize;
    for i in 0..3 {
        cluster.set_fault(i, Default::default()).unwrap();
    }

    // C: sidecar-1 down; the driver goes on through the other two.
    writes += rt.block_on(within(updates(&s, &clock, 1, 40)));
    rt.block_on(within(batch(&s, &clock, 41)));
    writes += BATCH_MUTATIONS;

    // D: sidecar-1 back on the same store; the driver reconnects to it (bounded
    // wait, not judged: the writes go wherever the driver sends them).
    sidecars[0].start();
    std::thread::sleep(Duration::from_secs(2));
    writes += rt.block_on(within(updates(&s, &clock, 2, 40)));
    rt.block_on(within(batch(&s, &clock, 42)));
    writes += BATCH_MUTATIONS;

    drop(s);
    for sc in &mut sidecars {
        let summary = sc.stop();
        assert_eq!(summary["gap_bytes"], 0, "{summary}");
    }
    let packets = stop_capture(capture);
    let tap_report = last_json(&tidemark(&[
        "tap",
        "--pcap",
        p(&pcap),
        "--store",
        p(&tap_store),
        "--cql-port",
        &nodes[0].port().to_string(),
        "--resolve-after",
        RESOLVE_AFTER,
        "--no-sync",
        "--json",
    ]));
    assert_eq!(
        tap_report["read_errors"],
        serde_json::json!([]),
        "{tap_report}"
    );

    // The merge, into an empty working store.
    let pull = last_json(&tidemark(&[
        "repo",
        "pull",
        "--repo",
        &repo,
        "--store",
        p(&merged),
        "--json",
    ]));
    let (merged_log, tap_log) = (log_of(&merged), log_of(&tap_store));
    let sidecar_logs: Vec<Vec<Value>> = sidecars.iter().map(|sc| log_of(&sc.store)).collect();
    let ours = |m: &&Value| m["namespace"] == "e2e.t";

    // Sidecar-1's restart logged the requests it had in flight at the kill, in doubt.
    let in_doubt: Vec<&Value> = sidecar_logs[0]
        .iter()
        .filter(ours)
        .filter(|m| m["outcome"] == "in_doubt")
        .collect();
    assert!(
        !in_doubt.is_empty(),
        "no write in flight through sidecar-1 at its kill was logged in doubt: {:?}",
        outcomes(&sidecar_logs[0])
    );
    let retried: BTreeSet<i64> = in_doubt
        .iter()
        .map(|m| m["timestamp"].as_i64().expect("a client timestamp"))
        .collect();
    // Each was retried by the driver through another sidecar, which logged it
    // committed; the merge kept that copy only.
    for ts in &retried {
        let copies: Vec<&Value> = sidecar_logs[1..]
            .iter()
            .flatten()
            .filter(|m| m["timestamp"].as_i64() == Some(*ts))
            .collect();
        assert_eq!(copies.len(), 1, "the retry of {ts}: {copies:?}");
        assert_eq!(copies[0]["outcome"], "committed", "{}", copies[0]);
    }
    assert_eq!(
        pull["duplicates"],
        retried.len(),
        "the merge drops exactly the in-doubt copies: {pull}"
    );
    // No write lost, none twice: every write the driver made, once, committed.
    let written: Vec<&Value> = merged_log
        .iter()
        .filter(ours)
        .filter(|m| !m["op"].as_str().unwrap().starts_with("create"))
        .collect();
    assert_eq!(written.len(), writes, "{:?}", outcomes(&merged_log));
    assert!(
        written.iter().all(|m| m["outcome"] == "committed"),
        "the merged log: {:?}",
        outcomes(&merged_log)
    );
    let stamps: BTreeSet<i64> = written
        .iter()
        .filter_map(|m| m["timestamp"].as_i64())
        .collect();
    assert_eq!(
        stamps.len(),
        writes - 3 * (BATCH_MUTATIONS - 1),
        "one client timestamp per statement (the three batches' members share one each)"
    );
    // The EXECUTEs answered Unprepared (see the module doc): in doubt, statement
    // unknown, in the merged log and in the tap alike.
    let unprepared = |log: &[Value]| {
        log.iter()
            .filter(|m| {
                m["outcome"] == "in_doubt"
                    && m["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("not seen; response: rejected (unprepared)"))
            })
            .count()
    };
    let unprepared_n = unprepared(&merged_log);
    assert_eq!(unprepared_n, unprepared(&tap_log));
    assert_eq!(
        merged_log.len(),
        writes + 2 + unprepared_n,
        "the driver's writes, the two DDL statements and the unprepared attempts: {:?}",
        outcomes(&merged_log)
    );

    // The merged log and the tap: equal as multisets; for a retried write, the tap
    // keeps the first attempt it saw decided (the node answered it on sidecar-1's
    // dead connection: its answer crossed `lo`), the merge the committed retry: the
    // two may then name other nodes and stream ids, and nothing else.
    let (mm, tm) = (multiset(&merged_log), multiset(&tap_log));
    let (only_merged, only_tap) = (minus(&mm, &tm), minus(&tm, &mm));
    let attempt_free = |v: &[String]| -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in v {
            let mut m: Value = serde_json::from_str(s).unwrap();
            let ts = m["timestamp"].as_i64().unwrap_or_default();
            assert!(
                retried.contains(&ts),
                "not a retried write, yet differs: {s}"
            );
            for f in ["node", "request", "reason"] {
                m.as_object_mut().unwrap().remove(f);
            }
            *out.entry(m.to_string()).or_default() += 1;
        }
        out
    };
    assert_eq!(
        attempt_free(&only_merged),
        attempt_free(&only_tap),
        "merged log vs tap (only merged {only_merged:#?}, only tap {only_tap:#?})"
    );
    assert_eq!(merged_log.len(), tap_log.len());

    // Against the database: the committed writes, applied, are its live cells.
    let truth = state(&cluster);
    let truth_ts: Cells = truth.iter().map(|(k, (ts, _))| (k.clone(), *ts)).collect();
    assert_eq!(
        model(&merged_log),
        truth_ts,
        "merged log vs the testbed's cells"
    );

    // The repository is whole, and names three sources and the tidemark.
    tidemark(&["repo", "verify", "--repo", &repo]);
    let status = last_json(&tidemark(&["status", "--repo", &repo, "--json"]));
    let sources: BTreeSet<String> = status["sources"]
        .as_array()
        .unwrap_or_else(|| panic!("no sources in {status}"))
        .iter()
        .map(|s| s["source"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        sources,
        ["sidecar-1", "sidecar-2", "sidecar-3"]
            .map(String::from)
            .into(),
        "{status}"
    );
    let ns = |v: &Value| {
        tidemark::decode::time::parse_rfc3339(v.as_str().expect("a time"))
            .expect("RFC 3339")
            .0
    };
    // (status prints microseconds)
    assert_eq!(
        Some(ns(&status["tidemark"]) / 1000),
        pull["tidemark"].as_u64().map(|t| t / 1000),
        "{status}"
    );
    let holding: Vec<&str> = status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["holds_tidemark"] == true)
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(serde_json::json!(holding), pull["held_by"], "{status}");

    // A version from the repository alone, restored into a fresh cluster.
    let cut = tidemark(&[
        "version",
        "create",
        "--repo",
        &repo,
        "--store",
        p(&empty),
        "--at",
        "latest",
        "--name",
        "v1",
        "--json",
    ]);
    let target = rt
        .block_on(CqlCluster::start(ClusterConfig {
            nodes: 3,
            base_addr: Ipv4Addr::new(127, 0, 217, 1),
            port: 0,
            ..ClusterConfig::default()
        }))
        .unwrap();
    let to = format!("cql://{}", target.addresses()[0]);
    tidemark(&[
        "restore",
        "--repo",
        &repo,
        "--store",
        p(&empty),
        "--version",
        "v1",
        "--to",
        &to,
        "--json",
    ]);
    let verify = run(&[
        "verify",
        "--repo",
        &repo,
        "--store",
        p(&empty),
        "--version",
        "v1",
        "--against",
        &to,
        "--json",
    ]);
    assert!(
        verify.status.success(),
        "verify: {}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert_eq!(
        state(&target),
        truth,
        "the restored cluster's cells (values, timestamps)"
    );

    eprintln!(
        "{writes} writes, {} mutations merged ({} duplicates dropped, {} rekeyed) and \
         tapped ({unprepared_n} unprepared attempts), {} in doubt at sidecar-1's restart, \
         {} differing only by attempt, {packets} packets, version {}, {:?}",
        merged_log.len(),
        pull["duplicates"],
        pull["rekeyed"],
        retried.len(),
        only_merged.len(),
        String::from_utf8_lossy(&cut.stdout).trim(),
        started.elapsed()
    );
    target.stop();
    cluster.stop();
}

// ---------------------------------------------------------------------------
// MongoDB: a sidecar per member, the primary's killed.

const DB: &str = "e2e";

/// The mongodb crate through the sidecars: replica set discovery (the sidecars'
/// hello rewritten), w:majority, retryable writes (a retry keeps its lsid and
/// txnNumber: the same write by identity).
async fn mongo_client(seeds: &[SocketAddr]) -> mongodb::Client {
    let hosts: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
    mongodb::Client::with_uri_str(format!(
        "mongodb://{}/?replicaSet=rs0&w=majority&retryWrites=true&serverSelectionTimeoutMS=30000&heartbeatFrequencyMS=500",
        hosts.join(",")
    ))
    .await
    .expect("mongodb through the sidecars")
}

type Coll = mongodb::Collection<mongodb::bson::Document>;

/// Inserts, updates and deletes one document at a time, and an insert_many:
/// `count` writes from `_id` `base`.
async fn mongo_phase(c: &Coll, base: i32, count: i32) -> usize {
    use mongodb::bson::doc;
    let mut n = 0;
    for i in base..base + count {
        c.insert_one(doc! {"_id": i, "v": format!("v{i}"), "n": i})
            .await
            .expect("insert_one");
        n += 1;
    }
    for i in (base..base + count).step_by(3) {
        c.update_one(
            doc! {"_id": i},
            doc! {"$set": {"v": "u"}, "$inc": {"n": 100}},
        )
        .await
        .expect("update_one");
        n += 1;
    }
    for i in (base..base + count).step_by(7) {
        c.delete_one(doc! {"_id": i}).await.expect("delete_one");
        n += 1;
    }
    c.insert_many((0..3).map(|k| doc! {"_id": base + 500 + k, "v": "many"}))
        .await
        .expect("insert_many");
    n + 3
}

#[test]
fn mongo_sidecars_one_killed_merge_into_one_log_equal_to_a_tap_and_restore_from_the_repo() {
    use mongodb::bson::doc;
    use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};
    if !require::live_capture() || !require::tool("dumpcap") {
        return;
    }
    let started = Instant::now();
    let rt = runtime();
    let set = rt
        .block_on(MongoReplicaSet::start(ReplSetConfig {
            members: 3,
            base_addr: Ipv4Addr::new(127, 0, 218, 11),
            port: 0,
            max_await: Duration::from_secs(1),
            ..ReplSetConfig::default()
        }))
        .unwrap();
    let primary = rt
        .block_on(set.wait_for_primary(Duration::from_secs(20)))
        .expect("a primary");
    let nodes = set.addresses();
    let dir = tempfile::tempdir().unwrap();
    let repo = format!("file://{}", dir.path().join("repo").display());
    let (tap_store, pcap, merged, empty) = (
        dir.path().join("tap"),
        dir.path().join("leg.pcapng"),
        dir.path().join("merged"),
        dir.path().join("empty"),
    );
    let ips: Vec<Ipv4Addr> = (111..114).map(|d| Ipv4Addr::new(127, 0, 218, d)).collect();
    let port = common_port(&ips, nodes[0].port());
    let sidecar_addrs: Vec<SocketAddr> =
        ips.iter().map(|ip| SocketAddr::from((*ip, port))).collect();
    let capture = start_capture(&nodes, &pcap);
    let mut sidecars: Vec<Sidecar> = (0..3)
        .map(|i| Sidecar::new(i, &nodes, &sidecar_addrs, dir.path(), &repo))
        .collect();
    let client = rt.block_on(within(mongo_client(&sidecar_addrs)));
    let c: Coll = client.database(DB).collection("c");

    let mut writes = rt.block_on(within(mongo_phase(&c, 0, 40)));
    std::thread::sleep(Duration::from_millis(REST_MS));

    // The primary cut from its secondaries: w:majority writes wait; its sidecar is
    // killed under them, restarted, the cut healed; the driver retries each once.
    set.partition(primary).unwrap();
    let mut burst = tokio::task::JoinSet::new();
    for k in 0..BURST {
        let c = c.clone();
        burst.spawn_on(
            async move { c.insert_one(doc! {"_id": 1000 + k, "v": k}).await },
            rt.handle(),
        );
    }
    std::thread::sleep(Duration::from_millis(KILL_AFTER_MS));
    sidecars[primary].kill();
    std::thread::sleep(Duration::from_millis(300));
    sidecars[primary].start();
    set.heal(primary).unwrap();
    rt.block_on(within(async {
        while let Some(r) = burst.join_next().await {
            r.unwrap().expect("a burst insert (retried)");
        }
    }));
    writes += BURST as usize;
    writes += rt.block_on(within(mongo_phase(&c, 2000, 20)));
    rt.block_on(async { client.shutdown().await });

    for sc in &mut sidecars {
        let summary = sc.stop();
        assert_eq!(summary["gap_bytes"], 0, "{summary}");
    }
    let packets = stop_capture(capture);
    let tap_report = last_json(&tidemark(&[
        "tap",
        "--pcap",
        p(&pcap),
        "--store",
        p(&tap_store),
        "--mongo-port",
        &nodes[0].port().to_string(),
        "--resolve-after",
        RESOLVE_AFTER,
        "--no-sync",
        "--json",
    ]));
    assert_eq!(
        tap_report["read_errors"],
        serde_json::json!([]),
        "{tap_report}"
    );

    let pull = last_json(&tidemark(&[
        "repo",
        "pull",
        "--repo",
        &repo,
        "--store",
        p(&merged),
        "--json",
    ]));
    let (merged_log, tap_log) = (log_of(&merged), log_of(&tap_store));
    let killed_log = log_of(&sidecars[primary].store);
    let ours = |m: &&Value| m["namespace"] == "e2e.c";
    let in_doubt = killed_log
        .iter()
        .filter(ours)
        .filter(|m| m["outcome"] == "in_doubt")
        .count();
    eprintln!(
        "mongo pull {pull}\nmerged {:?} tap {:?} killed {:?}",
        outcomes(&merged_log),
        outcomes(&tap_log),
        outcomes(&killed_log)
    );
    assert!(
        in_doubt > 0,
        "no in-doubt write at the primary sidecar's restart"
    );
    assert_eq!(pull["duplicates"], in_doubt, "{pull}");
    let written: Vec<&Value> = merged_log.iter().filter(ours).collect();
    assert_eq!(written.len(), writes, "{:?}", outcomes(&merged_log));
    assert!(written.iter().all(|m| m["outcome"] == "committed"));
    // Against the database: the `_id`s the merged log inserts and does not delete
    // are the set's majority-committed documents.
    let mut ids: BTreeSet<i64> = BTreeSet::new();
    for m in &written {
        let id = m["key"]["_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("an _id key: {m}"));
        match m["op"].as_str().unwrap() {
            "insert" => assert!(ids.insert(id), "inserted twice: {m}"),
            "delete" => assert!(ids.remove(&id), "deleted while absent: {m}"),
            _ => assert!(ids.contains(&id), "updated while absent: {m}"),
        }
    }
    let committed_ids = |s: &MongoReplicaSet| -> BTreeSet<i64> {
        s.committed_state_at(s.newest_commit_point())
            .expect("committed state")
            .get("e2e.c")
            .map(|d| {
                d.iter()
                    .map(|d| i64::from(d.get_i32("_id").unwrap()))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        ids,
        committed_ids(&set),
        "merged log vs the set's documents"
    );

    // Against the tap: as multisets; a retried write's kept copy may name another
    // attempt (request id, reason).
    let (mm, tm) = (multiset(&merged_log), multiset(&tap_log));
    let strip = |v: Vec<String>| -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in v {
            let mut m: Value = serde_json::from_str(&s).unwrap();
            for f in ["node", "request", "reason"] {
                m.as_object_mut().unwrap().remove(f);
            }
            *out.entry(m.to_string()).or_default() += 1;
        }
        out
    };
    let (only_merged, only_tap) = (minus(&mm, &tm), minus(&tm, &mm));
    let differing = only_merged.len();
    assert!(
        differing <= in_doubt,
        "only merged {only_merged:#?}\nonly tap {only_tap:#?}"
    );
    assert_eq!(strip(only_merged), strip(only_tap));

    // A version from the repository alone, restored into a fresh replica set.
    tidemark(&["repo", "verify", "--repo", &repo]);
    let status = last_json(&tidemark(&["status", "--repo", &repo, "--json"]));
    let sources: Vec<&str> = status["sources"]
        .as_array()
        .unwrap_or_else(|| panic!("no sources in {status}"))
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["sidecar-1", "sidecar-2", "sidecar-3"], "{status}");
    // The killed sidecar records the time between its last group commit and its
    // restart as a capture gap (a crash may lose what it forwarded then); the logs
    // were just compared with the tap's, so the version accepts it, and says so.
    let version = last_json(&tidemark(&[
        "version",
        "create",
        "--repo",
        &repo,
        "--store",
        p(&empty),
        "--at",
        "latest",
        "--name",
        "v1",
        "--allow-gaps",
        "--json",
    ]));
    assert!(
        version["gaps"].as_array().is_some_and(|g| g.len() <= 1),
        "at most the killed sidecar's gap: {version}"
    );
    let target = rt
        .block_on(MongoReplicaSet::start(ReplSetConfig {
            members: 3,
            base_addr: Ipv4Addr::new(127, 0, 219, 11),
            port: 0,
            max_await: Duration::from_secs(1),
            ..ReplSetConfig::default()
        }))
        .unwrap();
    rt.block_on(target.wait_for_primary(Duration::from_secs(20)))
        .expect("a target primary");
    tidemark(&[
        "restore",
        "--repo",
        &repo,
        "--store",
        p(&empty),
        "--version",
        "v1",
        "--to",
        &target.uri(),
        "--json",
    ]);
    let verify = run(&[
        "verify",
        "--repo",
        &repo,
        "--store",
        p(&empty),
        "--version",
        "v1",
        "--against",
        &target.uri(),
        "--json",
    ]);
    assert!(
        verify.status.success(),
        "verify: {}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let docs = |s: &MongoReplicaSet| {
        let mut d = s
            .committed_state_at(s.newest_commit_point())
            .expect("committed state")
            .get("e2e.c")
            .cloned()
            .unwrap_or_default();
        d.sort_by_key(|d| d.get_i32("_id").unwrap_or(i32::MAX));
        d
    };
    assert_eq!(
        docs(&target),
        docs(&set),
        "restored documents vs the source's"
    );
    eprintln!(
        "mongo: {writes} writes, {} merged ({} duplicates dropped), {in_doubt} in doubt at \
         the restart, {differing} differing only by attempt, {packets} packets, {:?}",
        merged_log.len(),
        pull["duplicates"],
        started.elapsed()
    );
    target.stop();
    set.stop();
}
