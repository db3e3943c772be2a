//! Randomized histories (issue 18, item 5) against real Apache Cassandra 5.0: three
//! nodes (RF 3) started by `scripts/cassandra.sh`, the generator of `tests/histories.rs`
//! (`CqlHistory`), a live `tidemark tap` on `lo`, and the faults a real node takes:
//! the generator's stop/start is a crash (`cassandra.sh kill-node`: SIGKILL, no
//! drain) and a restart on the node's data (`start-node`: commit log replayed, CQL
//! served again, peers seen); its slow, lost-ack and lost-write replica faults become
//! a node paused with SIGSTOP until their heal (SIGCONT). Clock skew and node
//! add/remove, which need the testbed, are left out of the history. The nodes sync
//! their commit log before acknowledging (`commitlog_sync: batch`), so a crash loses
//! no acknowledged write of the database's own.
//!
//! The references are never tidemark: the client oracle (each operation's outcome as
//! the real driver saw it: acknowledged writes of `v` in the final version unless a
//! newer write or deletion covers them, rejected writes and LWTs that did not apply
//! nowhere, timed-out ones either way) and a final read at ALL of every cell (values,
//! write times and TTLs, collections element by element through `WRITETIME` on
//! multi-cell collections, counters by value), compared with the version cut at that
//! moment by the histories' checker (`histories_support/cql_check.rs`).
//!
//! A handful of histories (`REALDB_HISTORIES`, default 4): each costs seconds of real
//! timeouts. Skipped with a reason when Cassandra cannot start (JDK 17 and the cached
//! Maven artifacts are needed), failed under `CI`; needs live capture on `lo`.

// `realdb_support` loads `ready_support` and `require` under itself by path, and
// `histories_support` needs them at the crate root: the same files twice, on purpose.
#![allow(clippy::duplicate_mod)]

mod histories_support;
mod ready_support;
mod realdb_support;
mod require;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use histories_support::cql_check::{self, Cut};
use histories_support::cql_model::{CqlHistory, FaultAction, NODES};
use histories_support::cql_run::{self, hex, now_ns, CellV, Cells, Dump, Ran, Record, Tap};
use scylla::client::session::Session;
use scylla::statement::unprepared::Statement;
use scylla::statement::Consistency;
use scylla::value::{CqlValue, Row};

static CLUSTER: OnceLock<Result<String, String>> = OnceLock::new();

/// The nodes a history has paused (SIGSTOP) or crashed (SIGKILL): when this is
/// dropped (also on a failed assertion) every paused node is resumed and every crashed
/// one started again, so no JVM stays stopped and the cluster is whole for the next.
struct Faulted {
    paused: BTreeSet<usize>,
    killed: BTreeSet<usize>,
    /// Crashes and restarts done (for the totals).
    kills: usize,
}

impl Faulted {
    fn new() -> Faulted {
        Faulted {
            paused: BTreeSet::new(),
            killed: BTreeSet::new(),
            kills: 0,
        }
    }
    fn signal(node: usize, sig: &str) {
        let pid = std::fs::read_to_string(
            realdb_support::root().join(format!("target/realdb/cassandra/node{}/pid", node + 1)),
        )
        .expect("the node's pid file");
        let ok = std::process::Command::new("kill")
            .args([sig, pid.trim()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} node {node} (pid {})", pid.trim());
    }
    /// `scripts/cassandra.sh kill-node|start-node` for `node` (0-based).
    fn script(cmd: &str, node: usize) -> Result<(), String> {
        let out = std::process::Command::new("bash")
            .arg(realdb_support::root().join("scripts/cassandra.sh"))
            .args([cmd, &(node + 1).to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| format!("cassandra.sh {cmd}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "cassandra.sh {cmd} {} failed ({})",
                node + 1,
                out.status
            ))
        }
    }
    fn pause(&mut self, node: usize) {
        if !self.killed.contains(&node) && self.paused.insert(node) {
            Faulted::signal(node, "-STOP");
        }
    }
    fn resume(&mut self, node: usize) {
        if self.paused.remove(&node) {
            Faulted::signal(node, "-CONT");
        }
    }
    /// A crash: the JVM is killed without a drain (a paused node is resumed first,
    /// so the kill is not queued behind the stop).
    fn kill(&mut self, node: usize) {
        self.resume(node);
        if self.killed.insert(node) {
            Faulted::script("kill-node", node).unwrap_or_else(|e| panic!("{e}"));
            self.kills += 1;
        }
    }
    /// Starts a crashed node again on its data and waits until it serves CQL.
    fn restart(&mut self, node: usize) {
        if self.killed.remove(&node) {
            Faulted::script("start-node", node).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    fn heal_all(&mut self) {
        for n in std::mem::take(&mut self.paused) {
            Faulted::signal(n, "-CONT");
        }
        for n in self.killed.clone() {
            self.restart(n);
        }
    }
}

impl Drop for Faulted {
    fn drop(&mut self) {
        for n in std::mem::take(&mut self.paused) {
            Faulted::signal(n, "-CONT");
        }
        // No panic inside a drop: a node that does not come back is reported.
        for n in std::mem::take(&mut self.killed) {
            if let Err(e) = Faulted::script("start-node", n) {
                eprintln!("realdb histories: {e}");
            }
        }
    }
}

/// The faults of `h` a real node can take (crashes, pauses); the others are left out.
fn real_faults(mut h: CqlHistory) -> CqlHistory {
    for r in &mut h.rounds {
        r.faults.retain(|f| {
            !matches!(
                f,
                FaultAction::Skew { .. } | FaultAction::AddNode | FaultAction::RemoveAdded
            )
        });
    }
    h
}

/// Half the histories (even seeds) crash a node if the generator chose no stop for
/// them: a crash and a restart cost seconds, and a handful of histories must still
/// cover them. The node stops at the second round's start (the first when there is
/// one round) and starts again at the round after it (else at the end).
fn with_crash(mut h: CqlHistory, seed: u64) -> CqlHistory {
    let crashes = h
        .rounds
        .iter()
        .flat_map(|r| &r.faults)
        .any(|f| matches!(f, FaultAction::Stop { .. }));
    if crashes || !seed.is_multiple_of(2) || h.rounds.is_empty() {
        return h;
    }
    let node = (seed / 2 % NODES as u64) as usize;
    let at = 1.min(h.rounds.len() - 1);
    // Whatever the rounds did to that node is left out: a crash replaces it.
    for r in &mut h.rounds {
        r.faults.retain(|f| match f {
            FaultAction::Slow { node: n, .. }
            | FaultAction::DropAcks { node: n }
            | FaultAction::DropWrites { node: n }
            | FaultAction::Heal { node: n } => *n != node,
            _ => true,
        });
    }
    h.rounds[at].faults.push(FaultAction::Stop { node });
    if let Some(next) = h.rounds.get_mut(at + 1) {
        next.faults.push(FaultAction::Start { node });
    }
    h
}

/// The generator's stop/start is a real crash (SIGKILL, no drain) and a restart on
/// the node's data; a slow, ack-losing or write-losing replica is a node paused with
/// SIGSTOP until its heal.
fn apply(p: &mut Faulted, f: &FaultAction) {
    match f {
        FaultAction::Stop { node } => p.kill(*node),
        FaultAction::Start { node } => p.restart(*node),
        FaultAction::Slow { node, .. }
        | FaultAction::DropAcks { node }
        | FaultAction::DropWrites { node } => p.pause(*node),
        FaultAction::Heal { node } => p.resume(*node),
        FaultAction::Skew { .. }
        | FaultAction::AddNode
        | FaultAction::RemoveAdded
        | FaultAction::ProxyRestart(_) => {}
    }
}

fn text_hex(s: &str) -> String {
    hex(s.as_bytes())
}

/// One collection's cells: element path (hex) → (value hex, write time, TTL or not).
fn collection_cells(
    col: &str,
    value: Option<&CqlValue>,
    times: Option<&CqlValue>,
    out: &mut BTreeMap<String, CellV>,
) {
    let list = |v: Option<&CqlValue>| -> Vec<Option<i64>> {
        match v {
            Some(CqlValue::List(l)) => l
                .iter()
                .map(|x| match x {
                    CqlValue::BigInt(n) => Some(*n),
                    CqlValue::Int(n) => Some(i64::from(*n)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let times = list(times);
    let elems: Vec<(String, String)> = match value {
        Some(CqlValue::Set(s)) => s
            .iter()
            .filter_map(|e| e.as_text().map(|t| (text_hex(t), String::new())))
            .collect(),
        Some(CqlValue::Map(m)) => m
            .iter()
            .filter_map(|(k, v)| Some((text_hex(k.as_text()?), text_hex(v.as_text()?))))
            .collect(),
        _ => Vec::new(),
    };
    for (i, (path, value)) in elems.into_iter().enumerate() {
        out.insert(
            format!("{col}[{path}]"),
            CellV {
                value,
                ts: times.get(i).copied().flatten().unwrap_or(-1),
                ttl: false,
            },
        );
    }
}

/// Every cell of `ks` read at ALL (retried while a resumed node settles).
async fn read_at_all(s: &Session, ks: &str) -> Cells {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match try_read(s, ks).await {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline => {
                eprintln!("realdb histories: read at ALL: {e}; again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => panic!("read at ALL of {ks} never succeeded: {e}"),
        }
    }
}

async fn try_read(s: &Session, ks: &str) -> Result<Cells, String> {
    let rows = |q: String| async move {
        let mut st = Statement::new(q);
        st.set_consistency(Consistency::All);
        let r = s.query_unpaged(st, ()).await.map_err(|e| e.to_string())?;
        let rows = r.into_rows_result().map_err(|e| e.to_string())?;
        let out: Vec<Row> = rows
            .rows::<Row>()
            .map_err(|e| e.to_string())?
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(out)
    };
    let mut out = Cells::new();
    let int = |v: &Option<CqlValue>| match v {
        Some(CqlValue::Int(n)) => Some(*n),
        _ => None,
    };
    let big = |v: &Option<CqlValue>| match v {
        Some(CqlValue::BigInt(n)) => Some(*n),
        Some(CqlValue::Int(n)) => Some(i64::from(*n)),
        _ => None,
    };
    for row in rows(format!(
        "SELECT pk, ck, v, writetime(v), ttl(v), n, writetime(n), ttl(n), s, writetime(s), m, writetime(m) FROM {ks}.t"
    ))
    .await?
    {
        let c = &row.columns;
        let (Some(pk), Some(ck)) = (int(&c[0]), int(&c[1])) else {
            continue;
        };
        let mut cols = BTreeMap::new();
        if let Some(CqlValue::Text(v)) = &c[2] {
            cols.insert(
                "v".to_string(),
                CellV {
                    value: text_hex(v),
                    ts: big(&c[3]).unwrap_or(-1),
                    ttl: big(&c[4]).is_some_and(|t| t > 0),
                },
            );
        }
        if let Some(n) = int(&c[5]) {
            cols.insert(
                "n".to_string(),
                CellV {
                    value: hex(&n.to_be_bytes()),
                    ts: big(&c[6]).unwrap_or(-1),
                    ttl: big(&c[7]).is_some_and(|t| t > 0),
                },
            );
        }
        // No TTL on collection elements: the generator writes none (and the driver
        // cannot decode `TTL(s)`'s list with null elements).
        collection_cells("s", c[8].as_ref(), c[9].as_ref(), &mut cols);
        collection_cells("m", c[10].as_ref(), c[11].as_ref(), &mut cols);
        if !cols.is_empty() {
            out.insert(("t".to_string(), pk, ck), cols);
        }
    }
    for row in rows(format!("SELECT pk, ck, hits FROM {ks}.c")).await? {
        let c = &row.columns;
        let (Some(pk), Some(ck)) = (int(&c[0]), int(&c[1])) else {
            continue;
        };
        if let Some(CqlValue::Counter(n)) = &c[2] {
            out.entry(("c".to_string(), pk, ck)).or_default().insert(
                "hits".to_string(),
                CellV {
                    value: hex(&n.0.to_be_bytes()),
                    ts: 0,
                    ttl: false,
                },
            );
        }
    }
    Ok(out)
}

#[test]
fn generated_histories_against_real_cassandra_match_the_driver_and_a_read_at_all() {
    if !require::live_capture() {
        return;
    }
    let Some(_hosts) = realdb_support::server(&CLUSTER, "cassandra.sh", &["3"]) else {
        return;
    };
    let n: u64 = std::env::var("REALDB_HISTORIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let from: u64 = std::env::var("REALDB_SEED_FROM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let dir = tempfile::tempdir().unwrap();
    // REALDB_KEEP_STORE=DIR keeps the store for a look afterwards (debugging).
    let store = std::env::var_os("REALDB_KEEP_STORE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("store"));
    let _tap = Tap::start("--cql-port", 9042, &store);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addrs: Vec<SocketAddr> = (1..=NODES)
        .map(|i| format!("127.0.0.{i}:9042").parse().unwrap())
        .collect();
    let sessions: Vec<Session> = rt.block_on(async {
        let mut v = Vec::new();
        for a in &addrs {
            v.push(cql_run::session(*a, false).await);
        }
        v
    });
    let mut faulted = Faulted::new();
    let (mut ops, mut faults, mut cells, mut in_doubt) = (0, 0, 0, 0);
    let mut divergences = Vec::new();
    for seed in from..from + n {
        let h = with_crash(real_faults(CqlHistory::generate(seed)), seed);
        let ks = format!("rh{seed}_{}", now_ns() / 1_000_000_000 % 100_000);
        let base_us = (now_ns() / 1000) as i64;
        rt.block_on(async {
            for cql in [
                format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 3}}"),
                format!("CREATE TABLE {ks}.t (pk int, ck int, v text, n int, s set<text>, m map<text, text>, PRIMARY KEY (pk, ck))"),
                format!("CREATE TABLE {ks}.c (pk int, ck int, hits counter, PRIMARY KEY (pk, ck))"),
            ] {
                let mut st = Statement::new(cql.clone());
                st.set_consistency(Consistency::All);
                sessions[0].query_unpaged(st, ()).await.unwrap_or_else(|e| panic!("{cql}: {e}"));
            }
        });
        let mut records: BTreeMap<u32, Record> = BTreeMap::new();
        for round in &h.rounds {
            for f in &round.faults {
                apply(&mut faulted, f);
            }
            let recs = rt.block_on(async {
                let work = round.clients.iter().enumerate().map(|(i, client_ops)| {
                    let s = &sessions[i % sessions.len()];
                    let ks = ks.as_str();
                    async move {
                        let mut out = Vec::new();
                        for op in client_ops {
                            let call = now_ns();
                            let outcome = cql_run::execute(s, ks, base_us, op).await;
                            out.push((
                                op.id,
                                Record {
                                    call,
                                    ret: now_ns(),
                                    outcome,
                                },
                            ));
                        }
                        out
                    }
                });
                futures_util::future::join_all(work).await
            });
            records.extend(recs.into_iter().flatten());
        }
        faulted.heal_all();
        let t0 = now_ns();
        let truth = rt.block_on(read_at_all(&sessions[0], &ks));
        let t1 = now_ns();
        assert!(
            cql_run::wait_tidemark(&store, t1),
            "seed {seed}: the tidemark never passed the final read"
        );
        let name = format!("{ks}-final");
        let cut: Cut = histories_support::cut(&store, &name, t1, &ks, None)
            .unwrap_or_else(|e| panic!("seed {seed}: version create: {e}"));
        let ran = Ran {
            keyspace: ks.clone(),
            started: 0,
            restarts: Vec::new(),
            snapshot: None,
            base_us,
            records,
            dumps: vec![Dump { t0, t1, truth }],
        };
        let (d, stats) = cql_check::check(&h, &ran, &[cut]);
        ops += h.op_count();
        faults += h.fault_count();
        cells += stats.cells;
        in_doubt += ran
            .records
            .values()
            .filter(|r| matches!(r.outcome, cql_run::Outcome::InDoubt(_)))
            .count();
        eprintln!(
            "realdb histories: seed {seed}: {} ops, {} faults, {} cells compared ({} equal, {} equal but for a coordinator timestamp, {} explained by an ambiguous write), {} divergences",
            h.op_count(),
            h.fault_count(),
            stats.cells,
            stats.equal,
            stats.server_ts,
            stats.excused,
            d.len()
        );
        divergences.extend(d.iter().map(|x| format!("seed {seed}: {x}")));
    }
    eprintln!(
        "realdb histories: {n} histories, {ops} operations, {faults} faults ({} node crashes with restarts, the rest pauses), {in_doubt} in doubt at the client, {cells} cells compared with a read at ALL, {} divergences",
        faulted.kills,
        divergences.len()
    );
    assert!(cells > 0, "nothing compared");
    if n >= 2 {
        assert!(faulted.kills > 0, "no history crashed a node");
    }
    assert!(divergences.is_empty(), "{}", divergences.join("\n"));
}
