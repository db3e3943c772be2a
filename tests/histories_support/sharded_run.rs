//! Running a MongoDB history on a sharded cluster (issue 18's "chunk migrations on
//! the sharded cluster"): one testbed `MongoShardedCluster` (2 shards of 3 members,
//! a config server set, 3 routers, all on one port) and one `tidemark tap
//! --mongo-port` on that port per test binary, as `tests/mongo_sharded_tap.rs` sets
//! them up. Each history gets its own collection `sN.c`, sharded on `k` (always equal
//! to `_id`): a hashed key for odd seeds (one chunk per shard), a range key for even
//! ones (split at 2 and 4, the middle chunk moved to the other shard). Clients write
//! through routers 0 and 1 (each client its own `mongodb::Client`, retryable writes
//! on); router 2 is the admin's, so a chunk it moves leaves the clients' routers with
//! an old map. Faults: a chunk moved mid-round while the clients write, balancer
//! bursts, a move just before the round (a stale router); never a failover.
//!
//! The truth is the cluster's own `logical_state_at_wall` (each shard's committed
//! oplog replayed to a wall-clock millisecond, kept to the chunk map in force then),
//! which tidemark never sees; a dump notes its millisecond while the clients write
//! (mid-round) and after they finished (round ends, and once more after the last
//! migration and range deletion), and the truth at each is read after the history.
//! The oplog's `wall` has millisecond precision and the capture sees a write's
//! reply, not its entry: a dump is a window of `MARGIN` either side of its moment,
//! and a write sent or answered in it is ambiguous there (`mongo_check`'s rule).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ClientOptions;
use mongodb::Client;
use tidemark_testbed::mongo::sharded::balancer::BalancerMode;
use tidemark_testbed::mongo::sharded::{MongoShardedCluster, ShardedConfig};
use tidemark_testbed::mongo::tidemark_mongo::bson::Bson as TBson;

use super::cql_run::{now_ns, wait_tidemark, Outcome, Record, Tap};
use super::mongo_model::{MFault, MongoHistory};
use super::mongo_run::{execute, key, MDump, MRan, Target, MAX_CLIENTS};
use super::proxy_run::{common_port, Proxy, Via};
use super::{cut_info, mongo_check, mongo_cut, Checked};

/// Half the window a dump stands for (ns): the oplog's wall-clock milliseconds and
/// the capture's view of a write (its reply) may differ by a millisecond or two.
pub const MARGIN: u64 = 3_000_000;
/// The routers: clients use `0..CLIENT_ROUTERS`, the admin the last one.
const ROUTERS: usize = 3;
const CLIENT_ROUTERS: usize = 2;
const OP_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether seed `seed`'s collection is sharded on a hashed key (else a range key).
pub fn hashed(seed: u64) -> bool {
    seed % 2 == 1
}

/// A sharded history's run: the replica-set runner's record, the moments the
/// versions are cut at (one per dump), and what the faults did.
pub struct SRan {
    pub ran: MRan,
    pub cut_at: Vec<u64>,
    /// Chunk moves of the history's collection that committed during it.
    pub moves: usize,
    /// Injected moves the cluster refused (with why).
    pub moves_refused: Vec<String>,
    /// StaleConfig retries of the clients' routers during the history.
    pub stale_retries: u64,
}

pub struct ShardedHarness {
    pub rt: tokio::runtime::Runtime,
    pub cl: MongoShardedCluster,
    pub store_dir: PathBuf,
    clients: Vec<Client>,
    admin: Client,
    next_db: u32,
    /// What records the histories: the tap on the cluster's port, or one
    /// `tidemark proxy` in front of the clients' routers.
    pub via: Via,
    _tap: Option<Tap>,
    _proxy: Option<Proxy>,
    _dir: tempfile::TempDir,
}

async fn client_of(addr: std::net::SocketAddr) -> Client {
    let uri = format!("mongodb://{addr}/?serverSelectionTimeoutMS=10000");
    Client::with_options(ClientOptions::parse(&uri).await.expect("uri")).expect("client")
}

impl ShardedHarness {
    /// A cluster on `base` and following addresses, every process on `port`. The
    /// port is fixed below the kernel's ephemeral range (32768–60999): the tap
    /// filters on the port alone, so a cluster on an ephemeral port captures any
    /// other test's client connection that happens to get that port as its source.
    pub fn start(base: Ipv4Addr, port: u16) -> ShardedHarness {
        ShardedHarness::start_via(base, port, Via::Tap)
    }

    /// [`ShardedHarness::start`], recorded `via` the tap or a proxy: then one
    /// `tidemark proxy` carries a route per client router (sidecars on `base + 100
    /// + i`, one port), the clients connect to the sidecars, and nothing else of
    /// the cluster is seen — no shard, no replication: a `w:1` write's fate is then
    /// unknowable, and tidemark says so (in doubt, `unreplicated`).
    pub fn start_via(base: Ipv4Addr, port: u16, via: Via) -> ShardedHarness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cl = rt
            .block_on(MongoShardedCluster::start(ShardedConfig {
                shards: 2,
                members: 3,
                routers: ROUTERS,
                base_addr: base,
                port,
                range_deleter_delay: Duration::from_millis(200),
                // A step-down's shard elects its next primary within seconds.
                election_timeout: Duration::from_millis(1500),
                heartbeat_interval: Duration::from_millis(250),
                ..ShardedConfig::default()
            }))
            .expect("start the sharded cluster");
        let dir = tempfile::tempdir().unwrap();
        let store_dir = std::env::var_os("HISTORIES_KEEP_STORE")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.path().join("store"));
        let (tap, proxy, client_routers) = match via {
            Via::Tap => (
                Some(Tap::start(
                    "--mongo-port",
                    cl.routers[0].addr.port(),
                    &store_dir,
                )),
                None,
                (0..CLIENT_ROUTERS).map(|i| cl.routers[i].addr).collect(),
            ),
            Via::Proxy => {
                let ips: Vec<Ipv4Addr> = (0..CLIENT_ROUTERS)
                    .map(|i| Ipv4Addr::from(u32::from(base) + 100 + i as u32))
                    .collect();
                let sidecar_port = common_port(&ips, port);
                let routes: Vec<_> = ips
                    .iter()
                    .enumerate()
                    .map(|(i, ip)| {
                        (
                            std::net::SocketAddr::from((*ip, sidecar_port)),
                            cl.routers[i].addr,
                        )
                    })
                    .collect();
                let proxy = Proxy::start(&routes, "mongo", &store_dir);
                (None, Some(proxy), routes.iter().map(|r| r.0).collect())
            }
        };
        let client_routers: Vec<std::net::SocketAddr> = client_routers;
        let (clients, admin) = rt.block_on(async {
            let mut v = Vec::new();
            for i in 0..MAX_CLIENTS {
                v.push(client_of(client_routers[i % CLIENT_ROUTERS]).await);
            }
            (v, client_of(cl.routers[ROUTERS - 1].addr).await)
        });
        ShardedHarness {
            rt,
            cl,
            store_dir,
            clients,
            admin,
            next_db: 0,
            via,
            _tap: tap,
            _proxy: proxy,
            _dir: dir,
        }
    }

    /// The shard that does not own shard-key value `k` of `ns` now.
    fn other_shard(&self, ns: &str, k: i32) -> Result<String, String> {
        let cat = self.cl.inner().config.catalog();
        let t = cat
            .tables
            .get(ns)
            .ok_or_else(|| format!("{ns} is not sharded"))?;
        let owner = t
            .owner(&t.key.point(&TBson::Int32(k)))
            .ok_or_else(|| format!("no chunk of {ns} holds k: {k}"))?
            .to_string();
        cat.shards
            .iter()
            .find(|s| **s != owner)
            .cloned()
            .ok_or_else(|| "one shard only".to_string())
    }

    /// `moveChunk` of the chunk holding `k` to the other shard, through the admin's
    /// router. Asked again when a balancer move took the chunk there first (the move
    /// waits for the one migration at a time cluster-wide).
    async fn move_chunk(&self, ns: &str, k: i32) -> Result<(), String> {
        // Bounded: a move waiting on a shard that is electing must not hang the run.
        tokio::time::timeout(OP_TIMEOUT, self.move_chunk_unbounded(ns, k))
            .await
            .unwrap_or_else(|_| Err(format!("moveChunk k: {k}: no answer in {OP_TIMEOUT:?}")))
    }

    async fn move_chunk_unbounded(&self, ns: &str, k: i32) -> Result<(), String> {
        let mut tries = 0;
        loop {
            tries += 1;
            let to = self.other_shard(ns, k)?;
            match self
                .admin
                .database("admin")
                .run_command(doc! {"moveChunk": ns, "find": {"k": k}, "to": &to})
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if tries < 3 && e.to_string().contains("already on") => continue,
                Err(e) => return Err(format!("moveChunk k: {k} to {to}: {e}")),
            }
        }
    }

    /// `replSetStepDown` on shard `i`'s primary (a new term in that shard only).
    fn step_down_shard(&self, i: usize) {
        let shards = self.cl.shards();
        let set = &shards[i % shards.len()].set;
        let r = match set.primary() {
            Some(p) => set
                .step_down(p, Duration::from_secs(2))
                .map_err(|e| e.to_string()),
            None => Err("no primary".into()),
        };
        if let Err(e) = r {
            eprintln!("histories: shard {i} step-down not applied: {e}");
        }
    }

    /// Every shard has a primary again (after a step-down), bounded.
    async fn shards_have_primaries(&self) {
        for shard in self.cl.shards() {
            let _ = shard.set.wait_for_primary(Duration::from_secs(20)).await;
        }
    }

    async fn admin_cmd(&self, cmd: Document) -> Result<Document, String> {
        self.admin
            .database("admin")
            .run_command(cmd.clone())
            .await
            .map_err(|e| format!("{cmd}: {e}"))
    }

    /// Shards the history's collection; the clients' routers then read it once, so
    /// they hold its chunk map (a later move through the admin's router makes it old).
    fn setup(&self, ns: &str, db: &str, hashed: bool) {
        self.rt.block_on(async {
            let key = if hashed {
                doc! {"k": "hashed"}
            } else {
                doc! {"k": 1}
            };
            self.admin_cmd(doc! {"shardCollection": ns, "key": key})
                .await
                .expect("shardCollection");
            if !hashed {
                for at in [2, 4] {
                    self.admin_cmd(doc! {"split": ns, "middle": {"k": at}})
                        .await
                        .expect("split");
                }
                self.move_chunk(ns, 2).await.expect("spread the chunks");
            }
            for c in &self.clients[..CLIENT_ROUTERS] {
                c.database(db)
                    .collection::<Document>("c")
                    .count_documents(doc! {})
                    .await
                    .expect("a read through the router");
            }
        });
    }

    fn stale_retries(&self) -> u64 {
        self.cl.router_counters()[..CLIENT_ROUTERS]
            .iter()
            .map(|c| c.1)
            .sum()
    }

    /// The cluster's logical state of `ns` at wall-clock millisecond `ms`, waiting
    /// (bounded) until every shard has committed past it.
    fn truth_at(&self, ns: &str, ms: i64) -> Result<super::mongo_run::Docs, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let state = loop {
            match self.cl.logical_state_at_wall(ms) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => return Err(format!("truth at {ms}: {e}")),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        Ok(state
            .get(ns)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|d| {
                // The testbed's bson is the same crate and version: round-trip the bytes.
                let bytes = d.to_vec().expect("encode");
                let d = Document::from_reader(bytes.as_slice()).expect("decode");
                (key(d.get("_id").unwrap_or(&Bson::Null)), d)
            })
            .collect())
    }

    pub fn run(&mut self, h: &MongoHistory) -> Result<SRan, String> {
        self.next_db += 1;
        let started = now_ns();
        let db = format!("s{}", self.next_db);
        let ns = format!("{db}.c");
        self.cl.set_balancer(false, None, None);
        // A step-down in the last history's last round may still be electing.
        self.rt.block_on(self.shards_have_primaries());
        self.setup(&ns, &db, hashed(h.seed));
        let moves_before = self.cl.migrations().len();
        let stale_before = self.stale_retries();
        let mut records = BTreeMap::new();
        let mut moments: Vec<u64> = Vec::new();
        let mut refused = Vec::new();
        for round in &h.rounds {
            let this = &*self;
            let ns = ns.as_str();
            let (recs, mid, moved) = self.rt.block_on(async {
                this.shards_have_primaries().await;
                let mut moved = Vec::new();
                for f in &round.faults {
                    match f {
                        MFault::StaleRouter { key } => moved.push(this.move_chunk(ns, *key).await),
                        MFault::Balancer { .. } => this.cl.set_balancer(
                            true,
                            Some(BalancerMode::Continuous),
                            Some(Duration::from_millis(30)),
                        ),
                        MFault::MoveChunk { .. } | MFault::ShardStepDown { .. } => {}
                        other => moved.push(Err(format!("{other:?}: not a sharded fault"))),
                    }
                }
                let db_ref = db.as_str();
                let work = round.clients.iter().enumerate().map(|(i, ops)| {
                    let client = &this.clients[i % this.clients.len()];
                    async move {
                        let mut out = Vec::new();
                        for op in ops {
                            let call = now_ns();
                            let outcome = match tokio::time::timeout(
                                OP_TIMEOUT,
                                execute(client, db_ref, op, Target::Sharded),
                            )
                            .await
                            {
                                Ok(o) => o,
                                Err(_) => Outcome::InDoubt("client timeout".into()),
                            };
                            let ret = now_ns();
                            out.push((op.id, Record { call, ret, outcome }));
                        }
                        out
                    }
                });
                let faults = round.faults.iter().map(|f| async move {
                    match f {
                        MFault::MoveChunk { key, after_ms } => {
                            tokio::time::sleep(Duration::from_millis(*after_ms)).await;
                            Some(this.move_chunk(ns, *key).await)
                        }
                        MFault::Balancer { ms } => {
                            tokio::time::sleep(Duration::from_millis(*ms)).await;
                            this.cl.set_balancer(false, None, None);
                            None
                        }
                        MFault::ShardStepDown { shard, after_ms } => {
                            tokio::time::sleep(Duration::from_millis(*after_ms)).await;
                            this.step_down_shard(*shard);
                            None
                        }
                        _ => None,
                    }
                });
                let (recs, mid, during) = tokio::join!(
                    futures_util::future::join_all(work),
                    async {
                        let ms = round.mid_dump_ms?;
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Some(now_ns())
                    },
                    futures_util::future::join_all(faults)
                );
                moved.extend(during.into_iter().flatten());
                (recs, mid, moved)
            });
            for (id, r) in recs.into_iter().flatten() {
                records.insert(id, r);
            }
            refused.extend(moved.into_iter().filter_map(Result::err));
            moments.extend(mid);
            moments.push(now_ns());
        }
        // The last dump after every migration and range deletion finished.
        self.cl.set_balancer(false, None, None);
        self.rt.block_on(async {
            let _ = tokio::time::timeout(
                Duration::from_secs(60),
                self.cl.inner().migration_lock.lock(),
            )
            .await;
            self.cl.wait_range_deletions(Duration::from_secs(30)).await;
        });
        moments.push(now_ns());
        let moves = self.cl.migrations()[moves_before..]
            .iter()
            .filter(|m| m.ns == ns)
            .count();
        let stale_retries = self.stale_retries() - stale_before;
        let mut dumps = Vec::new();
        let mut cut_at = Vec::new();
        for t in moments {
            // whole milliseconds: the truth's resolution
            let ms = (t / 1_000_000) as i64;
            let at = ms as u64 * 1_000_000;
            dumps.push(MDump {
                t0: at - MARGIN,
                t1: at + MARGIN,
                truth: self.truth_at(&ns, ms)?,
            });
            cut_at.push(at);
        }
        Ok(SRan {
            ran: MRan {
                db,
                started,
                restarts: Vec::new(),
                snapshot: None,
                records,
                dumps,
            },
            cut_at,
            moves,
            moves_refused: refused,
            stale_retries,
        })
    }
}

/// Runs a sharded history, cuts a version at every dump's moment and checks them
/// with `mongo_check`'s rules.
pub fn run_checked_sharded(harness: &mut ShardedHarness, h: &MongoHistory) -> Checked {
    let mut checked = Checked {
        ops: h.op_count(),
        faults: h.fault_count(),
        ..Checked::default()
    };
    let run = match harness.run(h) {
        Ok(r) => r,
        Err(e) => {
            checked.unchecked = Some(e);
            return checked;
        }
    };
    for why in &run.moves_refused {
        eprintln!("histories: mongo-sharded seed {}: {why}", h.seed);
    }
    checked.moves = run.moves;
    checked.stale_retries = run.stale_retries;
    let ran = &run.ran;
    checked.dumps = ran.dumps.len();
    checked.in_doubt = ran
        .records
        .values()
        .filter(|r| matches!(r.outcome, Outcome::InDoubt(_)))
        .count();
    let last = ran.dumps.iter().map(|d| d.t1).max().unwrap_or(0);
    if !wait_tidemark(&harness.store_dir, last) {
        let store = harness.store_dir.to_string_lossy().into_owned();
        let status = super::tidemark(&["status", "--json", "--store", &store])
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .map(|s| {
                let undecided: Vec<_> = s["undecided"]
                    .as_array()
                    .map(|u| u.iter().take(3).cloned().collect())
                    .unwrap_or_default();
                format!(
                    "held by {}, gaps {}, undecided (first 3 of {}) {undecided:?}",
                    s["held_by"],
                    s["gaps"],
                    s["undecided"].as_array().map_or(0, Vec::len)
                )
            })
            .unwrap_or_default();
        checked.unchecked = Some(format!(
            "the tidemark never passed {last} (a capture gap stops it, rightly): {status}"
        ));
        return checked;
    }
    for (id, r) in &ran.records {
        if let Outcome::InDoubt(why) = &r.outcome {
            eprintln!(
                "histories: mongo-sharded seed {}: op {id} in doubt: {why}",
                h.seed
            );
        }
    }
    let ns = format!("{}.c", ran.db);
    let mut cuts = Vec::new();
    for (i, at) in run.cut_at.iter().enumerate() {
        let name = format!("{}-{i}", ran.db);
        let info = match cut_info(&harness.store_dir, &name, *at, None, ran.started) {
            Ok(x) => x,
            Err(e) => {
                checked.unchecked = Some(format!("version create at dump {i}: {e}"));
                return checked;
            }
        };
        cuts.push(mongo_cut(&harness.store_dir, &name, &ns, info));
    }
    let (divergences, stats) = mongo_check::check(h, ran, &cuts);
    checked.divergences = divergences.iter().map(ToString::to_string).collect();
    checked.stats = super::cql_check::Stats {
        cells: stats.docs,
        equal: stats.equal,
        server_ts: 0,
        excused: stats.excused,
        uncertain: stats.uncertain,
        skew: 0,
    };
    checked
}
