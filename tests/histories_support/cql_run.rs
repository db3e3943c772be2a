//! Running a CQL history: one 3-node testbed (RF 3) and one `tidemark tap --interface
//! lo` for the whole test binary, each history in a fresh keyspace. Clients are
//! separate `scylla` sessions (each its own connections, each first contacting a
//! different node; the second with the driver's speculative executions, every write
//! marked idempotent). The runner records each operation's call and return times and
//! its outcome as the client saw it (the oracle), injects the round's faults through
//! the testbed's fault API (slow, lost-ack and lost-write replicas, stop/start, clock
//! skew, a node bootstrapped and decommissioned), and dumps the cluster's ground truth
//! (`CqlCluster::logical_state`: every replica merged, what a read at ALL returns)
//! mid-round while the clients write and at every round's end.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::policies::retry::FallthroughRetryPolicy;
use scylla::policies::speculative_execution::SimpleSpeculativeExecutionPolicy;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::unprepared::Statement;
use scylla::statement::Consistency;
use scylla::value::{CqlValue, Row};
use tidemark::store::{Store, StoreOptions};
use tidemark_testbed::cql::cluster::faults::Fault;
use tidemark_testbed::{ClusterConfig, CqlCluster};

use super::cql_model::{Cl, CqlHistory, FaultAction, Op, OpKind, Ts, NODES};
use super::proxy_run::{common_port, Proxy, Restarted, Via};
use crate::ready_support::Lines;

/// How the client saw an operation end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// An LWT whose condition failed: nothing written.
    NotApplied,
    /// The server refused it before any replica was asked (Unavailable, Invalid...).
    Rejected(String),
    /// Timeout, lost connection, any error after which replicas may hold it.
    InDoubt(String),
}

#[derive(Debug, Clone)]
pub struct Record {
    pub call: u64,
    pub ret: u64,
    pub outcome: Outcome,
}

/// (table, pk, ck) → column (`col` or `col[hex path]`) → cell.
pub type Cells = BTreeMap<(String, i32, i32), BTreeMap<String, CellV>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellV {
    pub value: String,
    pub ts: i64,
    pub ttl: bool,
}

/// One ground-truth dump: taken between `t0` and `t1` (ns).
#[derive(Debug, Clone)]
pub struct Dump {
    pub t0: u64,
    pub t1: u64,
    pub truth: Cells,
}

pub struct Ran {
    pub keyspace: String,
    /// When the history began (ns), before its keyspace existed: a capture gap
    /// that ended before it cannot hide any of its writes.
    pub started: u64,
    /// The proxy restarts injected (proxied mode).
    pub restarts: Vec<Restarted>,
    /// The snapshot taken mid-history (while a round's clients wrote): its id and a
    /// moment after it finished; or why it could not be taken.
    pub snapshot: Option<Result<(u64, u64), String>>,
    /// The history's timestamp base (µs): op timestamps are base + offset.
    pub base_us: i64,
    pub records: BTreeMap<u32, Record>,
    pub dumps: Vec<Dump>,
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

fn int_of_hex(h: &str) -> i32 {
    i32::from_be_bytes(unhex(h).try_into().expect("4-byte int key"))
}

/// A `tidemark tap --interface lo` child, stopped (SIGTERM, by its pid) when dropped.
pub struct Tap {
    child: Child,
    _err: Lines,
}

impl Tap {
    /// `port_flag` is `--cql-port` or `--mongo-port`.
    pub fn start(port_flag: &str, port: u16, store: &Path) -> Tap {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["tap", "--interface", "lo", port_flag, &port.to_string()])
            .arg("--store")
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tidemark tap");
        let mut err = Lines::follow(child.stderr.take().expect("stderr"));
        assert!(
            err.wait_for("tidemark: capturing on lo"),
            "tap did not start: {:?}",
            err.seen
        );
        Tap { child, _err: err }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The testbed, the tap, the store and the clients' sessions of one test binary.
pub struct Harness {
    pub rt: tokio::runtime::Runtime,
    pub cluster: CqlCluster,
    pub store_dir: PathBuf,
    sessions: Vec<Session>,
    next_keyspace: u32,
    /// Nodes `AddNode` bootstrapped, removed again when the history ends.
    added: Vec<usize>,
    /// The most a skew fault put a node's clock ahead in this history (µs).
    ahead_us: i64,
    /// Take a snapshot of the history's keyspace while this round's clients write
    /// (set per history by the caller; `None`: no snapshot).
    pub snapshot_round: Option<usize>,
    /// The cluster of another size versions are restored into (started on first use).
    pub target: Option<CqlCluster>,
    base: Ipv4Addr,
    /// Take the tap down for this long while the given round's clients write, then
    /// start it again on the same store (a capture gap: the tap's view of a time
    /// window is lost). Set per history by the caller.
    pub tap_gap: Option<(usize, Duration)>,
    /// When the tap was down (ns): from the stop to the new tap's "capturing".
    pub tap_down: Vec<(u64, u64)>,
    /// What records the histories (`Via::Proxy`: the sidecar below, no tap).
    pub via: Via,
    // Dropped in order: the tap or proxy before the store directory.
    _tap: Option<Tap>,
    proxy: Option<Proxy>,
    _dir: tempfile::TempDir,
}

/// Most clients a history may have (sessions are opened once).
pub const MAX_CLIENTS: usize = 4;

/// A session first contacting `addr`; with `speculative`, the driver's speculative
/// execution policy sends an idempotent request again to another node when no
/// answer came within 30 ms (up to twice): the same mutation reaches the cluster
/// through two or three coordinators, which tidemark must count as one write.
pub async fn session(addr: std::net::SocketAddr, speculative: bool) -> Session {
    // No retries: the oracle is each operation's one answer. (The default policy
    // sends a request again after a client-side timeout or an Unavailable, and then
    // reports the last attempt's error: against real Cassandra an Unavailable came
    // back for a write whose first attempt, to a paused coordinator, was applied
    // once the node resumed.)
    let mut profile = ExecutionProfile::builder()
        .request_timeout(Some(Duration::from_secs(5)))
        .retry_policy(std::sync::Arc::new(FallthroughRetryPolicy));
    if speculative {
        profile = profile.speculative_execution_policy(Some(std::sync::Arc::new(
            SimpleSpeculativeExecutionPolicy {
                max_retry_count: 2,
                retry_interval: Duration::from_millis(30),
            },
        )));
    }
    let profile = profile.build().into_handle();
    tokio::time::timeout(
        Duration::from_secs(60),
        SessionBuilder::new()
            .known_node(addr.to_string())
            .default_execution_profile_handle(profile)
            .build(),
    )
    .await
    .expect("connect in time")
    .expect("connect")
}

impl Harness {
    /// Starts the testbed on `base`.. (ephemeral port), the tap, and the sessions.
    pub fn start(base: Ipv4Addr) -> Harness {
        Harness::start_via(base, Via::Tap)
    }

    /// [`Harness::start`], recorded `via` the tap or a proxy: then one `tidemark
    /// proxy` carries a route per node slot (the spare slots too, so a node
    /// `AddNode` bootstraps is announced to the drivers as a sidecar), on addresses
    /// `base + 100 + slot` sharing one port, and the sessions contact sidecars.
    pub fn start_via(base: Ipv4Addr, via: Via) -> Harness {
        let base = super::own_net(base);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cluster = rt
            .block_on(CqlCluster::start(ClusterConfig {
                nodes: NODES,
                base_addr: base,
                port: 0,
                // Timeouts come back quickly: histories stay short.
                write_timeout: Duration::from_millis(400),
                ..ClusterConfig::default()
            }))
            .expect("start testbed");
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let port = cluster.addresses()[0].port();
        let (tap, proxy, addrs) = match via {
            Via::Tap => (
                Some(Tap::start("--cql-port", port, &store_dir)),
                None,
                cluster.addresses(),
            ),
            Via::Proxy => {
                let slots = NODES + ClusterConfig::default().spare_nodes;
                let at = |i: usize, off: u32| Ipv4Addr::from(u32::from(base) + off + i as u32);
                let ips: Vec<Ipv4Addr> = (0..slots).map(|i| at(i, 100)).collect();
                let sidecar_port = common_port(&ips, port);
                let routes: Vec<_> = (0..slots)
                    .map(|i| {
                        (
                            std::net::SocketAddr::from((at(i, 100), sidecar_port)),
                            std::net::SocketAddr::from((at(i, 0), port)),
                        )
                    })
                    .collect();
                let proxy = Proxy::start(&routes, "cql", &store_dir);
                let sidecars = routes[..NODES].iter().map(|r| r.0).collect();
                (None, Some(proxy), sidecars)
            }
        };
        let sessions = rt.block_on(async {
            let mut v = Vec::new();
            for i in 0..MAX_CLIENTS {
                // The second client's requests are speculatively executed.
                v.push(session(addrs[i % addrs.len()], i == 1).await);
            }
            v
        });
        Harness {
            rt,
            cluster,
            store_dir,
            sessions,
            next_keyspace: 0,
            snapshot_round: None,
            added: Vec::new(),
            ahead_us: 0,
            target: None,
            base,
            tap_gap: None,
            tap_down: Vec::new(),
            via,
            _tap: tap,
            proxy,
            _dir: dir,
        }
    }

    /// Every node up, healthy and on time, and the ring back to the three first nodes.
    /// A node whose clock ran ahead keeps handing out timestamps past it until the
    /// real clock catches up (its server timestamps are monotonic, as Cassandra's
    /// are): waited out here, so the next history's LWTs are not stamped in the
    /// future (the soak saw one, in a history without a skew fault of its own).
    fn heal_all(&mut self) {
        let ahead = std::mem::take(&mut self.ahead_us);
        let added = std::mem::take(&mut self.added);
        self.rt.block_on(async {
            for n in added {
                if let Err(e) = self.cluster.remove_node(n).await {
                    eprintln!("histories: removing added node {n}: {e}");
                }
            }
            for n in 0..NODES {
                let _ = self.cluster.start_node(n).await;
                self.cluster
                    .set_fault(n, Fault::default())
                    .expect("heal node");
                self.cluster.set_clock(n, 0, None).expect("reset clock");
            }
        });
        if ahead > 0 {
            std::thread::sleep(Duration::from_micros(ahead.min(3_000_000) as u64 + 10_000));
        }
    }

    fn apply_fault(&mut self, f: &FaultAction) {
        let c = &self.cluster;
        let added = &mut self.added;
        let ahead = &mut self.ahead_us;
        let r = self.rt.block_on(async {
            match f {
                FaultAction::Skew { node, micros } => {
                    *ahead = (*ahead).max(*micros);
                    c.set_clock(*node, *micros, None).map_err(|e| e.to_string())
                }
                FaultAction::AddNode => c
                    .add_node()
                    .await
                    .map(|n| added.push(n))
                    .map_err(|e| e.to_string()),
                FaultAction::RemoveAdded => match added.pop() {
                    Some(n) => c.remove_node(n).await.map_err(|e| e.to_string()),
                    None => Err("no added node".into()),
                },
                FaultAction::Slow { node, delay_ms } => c
                    .set_fault(
                        *node,
                        Fault {
                            delay_ms: *delay_ms,
                            ..Fault::default()
                        },
                    )
                    .map_err(|e| e.to_string()),
                FaultAction::DropAcks { node } => c
                    .set_fault(
                        *node,
                        Fault {
                            drop_acks: true,
                            ..Fault::default()
                        },
                    )
                    .map_err(|e| e.to_string()),
                FaultAction::DropWrites { node } => c
                    .set_fault(
                        *node,
                        Fault {
                            drop_writes: true,
                            ..Fault::default()
                        },
                    )
                    .map_err(|e| e.to_string()),
                FaultAction::Heal { node } => c
                    .set_fault(*node, Fault::default())
                    .map_err(|e| e.to_string()),
                FaultAction::Stop { node } => c.stop_node(*node).await.map_err(|e| e.to_string()),
                FaultAction::Start { node } => c.start_node(*node).await.map_err(|e| e.to_string()),
                // Run beside the round's clients (`Harness::run`).
                FaultAction::ProxyRestart(_) => Ok(()),
            }
        });
        // A shrunk history may start a node that is running: that is no fault.
        if let Err(e) = r {
            eprintln!("histories: fault {f:?} not applied: {e}");
        }
    }

    /// The truth of `ks` now, with the moments around the read.
    fn dump(&self, ks: &str) -> Dump {
        let t0 = now_ns();
        let state = self.cluster.logical_state();
        let t1 = now_ns();
        Dump {
            t0,
            t1,
            truth: cells_of(state, ks),
        }
    }

    /// The restore target (2 nodes: another size than the source's 3), started once.
    pub fn target(&mut self) -> &CqlCluster {
        if self.target.is_none() {
            let o = self.base.octets();
            let cluster = self
                .rt
                .block_on(CqlCluster::start(ClusterConfig {
                    nodes: 2,
                    base_addr: Ipv4Addr::new(o[0], o[1], o[2], o[3] + 10),
                    port: 0,
                    ..ClusterConfig::default()
                }))
                .expect("start the restore target");
            self.target = Some(cluster);
        }
        self.target.as_ref().expect("target")
    }
}

/// The cells of keyspace `ks` in a testbed's merged state.
pub fn cells_of(state: Vec<tidemark_testbed::cql::LogicalCell>, ks: &str) -> Cells {
    {
        let mut truth = Cells::new();
        for c in state {
            if c.keyspace != ks {
                continue;
            }
            truth
                .entry((
                    c.table.clone(),
                    int_of_hex(&c.partition_key[0]),
                    int_of_hex(&c.clustering[0]),
                ))
                .or_default()
                .insert(
                    c.column.clone(),
                    CellV {
                        value: c.value.clone(),
                        ts: c.timestamp,
                        ttl: c.ttl > 0,
                    },
                );
        }
        truth
    }
}

impl Harness {
    /// Runs `h` in a fresh keyspace; every node is healthy again afterwards.
    pub fn run(&mut self, h: &CqlHistory) -> Ran {
        self.next_keyspace += 1;
        let ks = format!("h{}", self.next_keyspace);
        let started = now_ns();
        self.heal_all();
        let base_us = (now_ns() / 1000) as i64;
        self.rt.block_on(async {
            let s = &self.sessions[0];
            for cql in [
                format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 3}}"),
                format!("CREATE TABLE {ks}.t (pk int, ck int, v text, n int, s set<text>, m map<text, text>, PRIMARY KEY (pk, ck))"),
                format!("CREATE TABLE {ks}.c (pk int, ck int, hits counter, PRIMARY KEY (pk, ck))"),
            ] {
                // After a proxy restart the sessions reconnect: try again (bounded);
                // a statement an earlier try applied answers that it exists.
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let mut st = Statement::new(cql.clone());
                    st.set_consistency(Consistency::All);
                    match s.query_unpaged(st, ()).await {
                        Ok(_) => break,
                        Err(e) if e.to_string().contains("already exists") => break,
                        Err(e) if Instant::now() > deadline => panic!("{cql}: {e}"),
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
        });
        let mut records = BTreeMap::new();
        let mut dumps = Vec::new();
        let mut snapshot = None;
        let mut restarts = Vec::new();
        for (r, round) in h.rounds.iter().enumerate() {
            for f in &round.faults {
                self.apply_fault(f);
            }
            let restart = round.faults.iter().find_map(|f| match f {
                FaultAction::ProxyRestart(p) => Some(*p),
                _ => None,
            });
            let restarting = super::proxy_run::restart_beside(&mut self.proxy, restart);
            let gap = self
                .tap_gap
                .filter(|(round, _)| *round == r)
                .map(|(_, down)| {
                    // Stopped now, started again after `down` on its own thread, so the
                    // round's clients write while nothing watches.
                    drop(self._tap.take());
                    let from = now_ns();
                    let port = self.cluster.addresses()[0].port();
                    let store = self.store_dir.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(down);
                        let tap = Tap::start("--cql-port", port, &store);
                        (tap, from, now_ns())
                    })
                });
            let taking = (self.snapshot_round == Some(r)).then(|| {
                // Every node as a contact point: a fault may have stopped one.
                let hosts: Vec<String> = self
                    .cluster
                    .addresses()
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                super::spawn_snapshot(
                    &self.store_dir,
                    &format!("cql://{}", hosts.join(",")),
                    &["--keyspace", &ks],
                )
            });
            let sessions = &self.sessions;
            let ks_ref = ks.as_str();
            let (recs, mid) = self.rt.block_on(async {
                let clients = round.clients.iter().enumerate().map(|(i, ops)| {
                    let s = &sessions[i % sessions.len()];
                    async move {
                        let mut out = Vec::new();
                        for op in ops {
                            let call = now_ns();
                            let outcome = execute(s, ks_ref, base_us, op).await;
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
                let all = futures_util::future::join_all(clients);
                let mid = async {
                    match round.mid_dump_ms {
                        Some(ms) => {
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                            Some(())
                        }
                        None => None,
                    }
                };
                // The mid-round dump is taken on this thread while clients run.
                let (recs, mid) = tokio::join!(all, async { mid.await.map(|_| self.dump(ks_ref)) });
                (recs, mid)
            });
            for (id, r) in recs.into_iter().flatten() {
                records.insert(id, r);
            }
            dumps.extend(mid);
            if let Some(child) = taking {
                snapshot = Some(super::finish_snapshot(child));
            }
            if let Some(restart) = gap {
                let (tap, from, to) = restart.join().expect("tap restart");
                self._tap = Some(tap);
                self.tap_down.push((from, to));
            }
            if let Some(t) = restarting {
                let (proxy, done) = t.join().expect("proxy restart");
                self.proxy = Some(proxy);
                restarts.push(done);
            }
            dumps.push(self.dump(&ks));
        }
        // The end: every node healthy, hints delivered, and a last look.
        self.heal_all();
        dumps.push(self.dump(&ks));
        Ran {
            snapshot,
            started,
            restarts,
            keyspace: ks,
            base_us,
            records,
            dumps,
        }
    }

    pub fn wait_tidemark(&self, t: u64) -> bool {
        wait_tidemark(&self.store_dir, t)
    }
}

/// Waits (≤ 60 s) until the store's tidemark passes `t`; false if it never does.
pub fn wait_tidemark(store_dir: &Path, t: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let tm = Store::open(store_dir, &StoreOptions::default().read_only())
            .ok()
            .and_then(|s| s.tidemark().ok().flatten());
        if tm.is_some_and(|tm| tm > t) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn consistency(cl: Cl) -> Consistency {
    match cl {
        Cl::One => Consistency::One,
        Cl::Quorum => Consistency::Quorum,
        Cl::All => Consistency::All,
    }
}

fn classify(e: &ExecutionError) -> Outcome {
    if let ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, msg)) = e {
        if matches!(
            db,
            DbError::Unavailable { .. }
                | DbError::Invalid
                | DbError::SyntaxError
                | DbError::Overloaded
                | DbError::IsBootstrapping
        ) {
            return Outcome::Rejected(format!("{db:?}: {msg}"));
        }
    }
    Outcome::InDoubt(e.to_string())
}

/// Runs one op through the driver.
pub async fn execute(s: &Session, ks: &str, base_us: i64, op: &Op) -> Outcome {
    let cl = consistency(op.cl);
    match &op.kind {
        OpKind::Write { w, ts } => {
            let (text, driver_ts) = match ts {
                Ts::Driver(o) => (w.cql(ks, op.id, None), Some(base_us + o)),
                Ts::Using(o) => (w.cql(ks, op.id, Some(base_us + o)), None),
            };
            let mut st = Statement::new(text);
            st.set_consistency(cl);
            st.set_timestamp(driver_ts);
            // A write with its timestamp fixed is idempotent (lists, whose appends
            // are not, are never generated): speculative executions may resend it.
            st.set_is_idempotent(true);
            match s.query_unpaged(st, ()).await {
                Ok(_) => Outcome::Ok,
                Err(e) => classify(&e),
            }
        }
        OpKind::Counter { pk, ck, delta } => {
            let mut st = Statement::new(format!(
                "UPDATE {ks}.c SET hits = hits + {delta} WHERE pk = {pk} AND ck = {ck}"
            ));
            st.set_consistency(cl);
            match s.query_unpaged(st, ()).await {
                Ok(_) => Outcome::Ok,
                Err(e) => classify(&e),
            }
        }
        OpKind::Lwt { pk, ck, exists } => {
            let id = op.id;
            let text = if *exists {
                format!("UPDATE {ks}.t SET v = 'o{id}' WHERE pk = {pk} AND ck = {ck} IF EXISTS")
            } else {
                format!("INSERT INTO {ks}.t (pk, ck, v, n) VALUES ({pk}, {ck}, 'o{id}', {id}) IF NOT EXISTS")
            };
            let mut st = Statement::new(text);
            st.set_consistency(cl);
            match s.query_unpaged(st, ()).await {
                Ok(r) => {
                    let applied = r.into_rows_result().ok().and_then(|rows| {
                        rows.rows::<Row>().ok()?.next()?.ok().and_then(|row| {
                            match row.columns.first() {
                                Some(Some(CqlValue::Boolean(b))) => Some(*b),
                                _ => None,
                            }
                        })
                    });
                    match applied {
                        Some(true) => Outcome::Ok,
                        Some(false) => Outcome::NotApplied,
                        None => Outcome::InDoubt("LWT result without [applied]".into()),
                    }
                }
                Err(e) => classify(&e),
            }
        }
        OpKind::Batch {
            logged,
            members,
            ts,
        } => {
            let mut b = Batch::new(if *logged {
                BatchType::Logged
            } else {
                BatchType::Unlogged
            });
            for (k, w) in members.iter().enumerate() {
                b.append_statement(Statement::new(w.cql(ks, op.id + 1 + k as u32, None)));
            }
            b.set_consistency(cl);
            b.set_timestamp(Some(base_us + ts));
            b.set_is_idempotent(true);
            let values: Vec<()> = vec![(); members.len()];
            match s.batch(&b, values).await {
                Ok(_) => Outcome::Ok,
                // An unlogged batch goes to the replicas partition by partition:
                // an Unavailable for one may follow others already sent.
                Err(e) => match classify(&e) {
                    Outcome::Rejected(why)
                        if !*logged && members.len() > 1 && why.starts_with("Unavailable") =>
                    {
                        Outcome::InDoubt(format!("unlogged batch: {why}"))
                    }
                    o => o,
                },
            }
        }
    }
}
