//! Running a MongoDB history: one 3-member testbed replica set and one `tidemark tap
//! --interface lo --mongo-port` per test binary, each history in a fresh database.
//! Clients are separate `mongodb::Client`s (each its own pool; retryable writes on, the
//! driver's default). The runner records every op's call, return and outcome, injects
//! the round's faults through the set's fault API, and dumps the ground truth — the
//! set's majority-committed state (`committed_state_at` its newest commit point:
//! every committed oplog entry replayed), which tidemark never sees — mid-round and at
//! every round's end; at the end it heals everything and waits for the set to settle.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, CollectionOptions, WriteConcern};
use mongodb::{Client, Collection};
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};

use super::cql_run::{now_ns, Outcome, Record, Tap};
use super::mongo_model::{MFault, MKind, MOp, MWrite, MongoHistory, MEMBERS, W};
use super::proxy_run::{common_port, Proxy, Restarted, Via};

/// `_id` (as `{:?}` of its Bson) → document.
pub type Docs = BTreeMap<String, Document>;

pub fn key(id: &Bson) -> String {
    format!("{id:?}")
}

#[derive(Debug, Clone)]
pub struct MDump {
    pub t0: u64,
    pub t1: u64,
    pub truth: Docs,
}

pub struct MRan {
    pub db: String,
    /// When the history began (ns), before its database existed.
    pub started: u64,
    /// The proxy restarts injected (proxied mode).
    pub restarts: Vec<Restarted>,
    /// The snapshot taken mid-history, as in [`super::cql_run::Ran`].
    pub snapshot: Option<Result<(u64, u64), String>>,
    pub records: BTreeMap<u32, Record>,
    pub dumps: Vec<MDump>,
}

pub struct MongoHarness {
    pub rt: tokio::runtime::Runtime,
    pub set: MongoReplicaSet,
    pub store_dir: PathBuf,
    clients: Vec<Client>,
    next_db: u32,
    /// Take a snapshot of the history's database while this round's clients write.
    pub snapshot_round: Option<usize>,
    /// The 1-member set versions are restored into (started on first use).
    pub target: Option<MongoReplicaSet>,
    base: Ipv4Addr,
    /// What records the histories (`Via::Proxy`: the sidecar below, no tap).
    pub via: Via,
    // Dropped in order: the tap or proxy before the store directory.
    _tap: Option<Tap>,
    proxy: Option<Proxy>,
    _dir: tempfile::TempDir,
}

pub const MAX_CLIENTS: usize = 3;
const OP_TIMEOUT: Duration = Duration::from_secs(15);

impl MongoHarness {
    pub fn start(base: Ipv4Addr) -> MongoHarness {
        MongoHarness::start_via(base, Via::Tap)
    }

    /// [`MongoHarness::start`], recorded `via` the tap or a proxy: then one
    /// `tidemark proxy` carries a route per member, on addresses `base + 100 +
    /// member` sharing one port, and the clients' seed list names the sidecars (the
    /// rewrite makes `hello` name them too).
    pub fn start_via(base: Ipv4Addr, via: Via) -> MongoHarness {
        let base = super::own_net(base);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let set = rt
            .block_on(MongoReplicaSet::start(ReplSetConfig {
                members: MEMBERS,
                base_addr: base,
                port: 0,
                max_await: Duration::from_millis(500),
                election_timeout: Duration::from_millis(1500),
                heartbeat_interval: Duration::from_millis(250),
                ..ReplSetConfig::default()
            }))
            .expect("start set");
        let dir = tempfile::tempdir().unwrap();
        // HISTORIES_KEEP_STORE=DIR keeps the store for a look afterwards (debugging).
        let store_dir = std::env::var_os("HISTORIES_KEEP_STORE")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.path().join("store"));
        let port = set.addresses()[0].port();
        let (tap, proxy, uri) = match via {
            Via::Tap => (
                Some(Tap::start("--mongo-port", port, &store_dir)),
                None,
                set.uri(),
            ),
            Via::Proxy => {
                let at = |i: usize, off: u32| Ipv4Addr::from(u32::from(base) + off + i as u32);
                let ips: Vec<Ipv4Addr> = (0..MEMBERS).map(|i| at(i, 100)).collect();
                let sidecar_port = common_port(&ips, port);
                let routes: Vec<_> = set
                    .addresses()
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (std::net::SocketAddr::from((at(i, 100), sidecar_port)), *a))
                    .collect();
                let proxy = Proxy::start(&routes, "mongo", &store_dir);
                let hosts: Vec<String> = routes.iter().map(|r| r.0.to_string()).collect();
                let query = set
                    .uri()
                    .split_once("/?")
                    .map(|x| x.1.to_string())
                    .unwrap_or_default();
                (
                    None,
                    Some(proxy),
                    format!("mongodb://{}/?{query}", hosts.join(",")),
                )
            }
        };
        let clients = rt.block_on(async {
            let mut v = Vec::new();
            for _ in 0..MAX_CLIENTS {
                let opts = ClientOptions::parse(format!("{uri}&serverSelectionTimeoutMS=5000"))
                    .await
                    .expect("uri");
                v.push(Client::with_options(opts).expect("client"));
            }
            v
        });
        MongoHarness {
            rt,
            set,
            store_dir,
            clients,
            next_db: 0,
            snapshot_round: None,
            target: None,
            base,
            via,
            _tap: tap,
            proxy,
            _dir: dir,
        }
    }

    /// Heals every link, starts every member, and waits (bounded) for a primary and
    /// for every member's last write to be majority-committed.
    fn settle(&self) {
        self.set.heal_all();
        self.rt.block_on(async {
            for m in 0..MEMBERS {
                let _ = self.set.start_member(m).await;
            }
            let _ = self.set.wait_for_primary(Duration::from_secs(30)).await;
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                let cp = self.set.newest_commit_point();
                if (0..MEMBERS).all(|m| self.set.last_applied(m) == Some(cp)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }

    fn apply_fault(&self, f: &MFault) {
        let s = &self.set;
        let r: Result<(), String> = self.rt.block_on(async {
            match f {
                MFault::PartitionPrimary => match s.primary() {
                    Some(p) => s.partition(p).map_err(|e| e.to_string()),
                    None => Err("no primary".into()),
                },
                MFault::HealAll => {
                    s.heal_all();
                    Ok(())
                }
                MFault::Stop { member } => s.stop_member(*member).map_err(|e| e.to_string()),
                MFault::Start { member } => {
                    s.start_member(*member).await.map_err(|e| e.to_string())
                }
                MFault::StepDown => match s.primary() {
                    Some(p) => s
                        .step_down(p, Duration::from_secs(2))
                        .map_err(|e| e.to_string()),
                    None => Err("no primary".into()),
                },
                MFault::MoveChunk { .. }
                | MFault::Balancer { .. }
                | MFault::StaleRouter { .. }
                | MFault::ShardStepDown { .. } => {
                    Err("a sharded cluster's fault, not a replica set's".into())
                }
                // Run beside the round's clients (`MongoHarness::run`).
                MFault::ProxyRestart(_) => Ok(()),
            }
        });
        if let Err(e) = r {
            eprintln!("histories: mongo fault {f:?} not applied: {e}");
        }
    }

    fn dump(&self, db: &str) -> MDump {
        let ns = format!("{db}.c");
        let t0 = now_ns();
        let state = self.set.committed_state_at(self.set.newest_commit_point());
        let t1 = now_ns();
        let docs = state
            .map(|s| s.get(&ns).cloned().unwrap_or_default())
            .unwrap_or_default();
        let truth = docs
            .into_iter()
            .map(|d| {
                // The testbed's bson is the same crate: round-trip the bytes.
                let bytes = d.to_vec().expect("encode");
                let d = Document::from_reader(bytes.as_slice()).expect("decode");
                (key(d.get("_id").unwrap_or(&Bson::Null)), d)
            })
            .collect();
        MDump { t0, t1, truth }
    }

    pub fn run(&mut self, h: &MongoHistory) -> MRan {
        self.next_db += 1;
        let db = format!("h{}", self.next_db);
        let started = now_ns();
        self.settle();
        // The collection exists before any transaction writes to it. Majority said
        // explicitly: the testbed acknowledges a write without a writeConcern at w:1
        // (MongoDB 5.0+, which it claims to be, waits for a majority), and a failover
        // could then roll back a write tidemark rightly took as committed.
        self.rt.block_on(async {
            let c = self.clients[0]
                .database(&db)
                .collection_with_options::<Document>(
                    "c",
                    CollectionOptions::builder()
                        .write_concern(WriteConcern::majority())
                        .build(),
                );
            let deadline = Instant::now() + Duration::from_secs(30);
            while let Err(e) = c.insert_one(doc! {"_id": "seed"}).await {
                // An earlier try that ended in doubt (a proxy restart) may have
                // inserted it.
                if e.to_string().contains("E11000") {
                    break;
                }
                assert!(Instant::now() < deadline, "seed insert: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
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
                MFault::ProxyRestart(p) => Some(*p),
                _ => None,
            });
            let restarting = super::proxy_run::restart_beside(&mut self.proxy, restart);
            let taking = (self.snapshot_round == Some(r))
                .then(|| super::spawn_snapshot(&self.store_dir, &self.set.uri(), &["--db", &db]));
            let clients = &self.clients;
            let db_ref = db.as_str();
            let (recs, mid) = self.rt.block_on(async {
                let work = round.clients.iter().enumerate().map(|(i, ops)| {
                    let client = &clients[i % clients.len()];
                    async move {
                        let mut out = Vec::new();
                        for op in ops {
                            let call = now_ns();
                            let outcome = match tokio::time::timeout(
                                OP_TIMEOUT,
                                execute(client, db_ref, op, Target::ReplicaSet),
                            )
                            .await
                            {
                                Ok(o) => o,
                                Err(_) => Outcome::InDoubt("client timeout".into()),
                            };
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
                let all = futures_util::future::join_all(work);
                tokio::join!(all, async {
                    match round.mid_dump_ms {
                        Some(ms) => {
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                            Some(self.dump(db_ref))
                        }
                        None => None,
                    }
                })
            });
            for (id, r) in recs.into_iter().flatten() {
                records.insert(id, r);
            }
            dumps.extend(mid);
            if let Some(child) = taking {
                snapshot = Some(super::finish_snapshot(child));
            }
            if let Some(t) = restarting {
                let (proxy, done) = t.join().expect("proxy restart");
                self.proxy = Some(proxy);
                restarts.push(done);
            }
            dumps.push(self.dump(&db));
        }
        self.settle();
        dumps.push(self.dump(&db));
        MRan {
            db,
            started,
            restarts,
            snapshot,
            records,
            dumps,
        }
    }

    /// The restore target: a 1-member set (another size than the source's 3),
    /// started once.
    pub fn target(&mut self) -> &MongoReplicaSet {
        if self.target.is_none() {
            let o = self.base.octets();
            let set = self
                .rt
                .block_on(MongoReplicaSet::start(ReplSetConfig {
                    members: 1,
                    base_addr: Ipv4Addr::new(o[0], o[1], o[2], o[3] + 10),
                    port: 0,
                    ..ReplSetConfig::default()
                }))
                .expect("start the restore target");
            self.rt
                .block_on(set.wait_for_primary(Duration::from_secs(30)))
                .expect("the target's primary");
            self.target = Some(set);
        }
        self.target.as_ref().expect("target")
    }

    /// The majority-committed documents of `ns` in a set.
    pub fn docs_of(set: &MongoReplicaSet, ns: &str) -> Docs {
        let state = set.committed_state_at(set.newest_commit_point());
        state
            .map(|s| s.get(ns).cloned().unwrap_or_default())
            .unwrap_or_default()
            .into_iter()
            .map(|d| {
                let bytes = d.to_vec().expect("encode");
                let d = Document::from_reader(bytes.as_slice()).expect("decode");
                (key(d.get("_id").unwrap_or(&Bson::Null)), d)
            })
            .collect()
    }
}

fn concern(w: W) -> WriteConcern {
    match w {
        W::Zero => WriteConcern::nodes(0),
        W::One => WriteConcern::nodes(1),
        W::Majority => WriteConcern::majority(),
    }
}

fn classify(e: &mongodb::error::Error) -> Outcome {
    match &*e.kind {
        // One document's write error: nothing of it was applied.
        ErrorKind::Write(WriteFailure::WriteError(we)) => {
            Outcome::Rejected(format!("write error {}: {}", we.code, we.message))
        }
        // Refused by the driver before sending (e.g. w:0 where it allows none).
        ErrorKind::InvalidArgument { message, .. } => Outcome::Rejected(message.clone()),
        _ => Outcome::InDoubt(e.to_string()),
    }
}

/// How a write names its documents: on the replica set by `_id` alone; on a sharded
/// collection (shard key `k`, always equal to `_id`) documents carry `k`, and a
/// single-document filter carries it too (targeted to one shard) when the op id plus
/// the `_id` is even or the write upserts (a router needs the shard key to upsert),
/// else `_id` alone (the router finds the owner first). Multi-document filters are
/// by `_id` (sent to every shard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    ReplicaSet,
    Sharded,
}

impl Target {
    fn doc(self, id: i32, mut d: Document) -> Document {
        if self == Target::Sharded {
            d.insert("k", id);
        }
        d
    }
    fn filter(self, op: u32, id: i32, upsert: bool) -> Document {
        let keyed = upsert || (op as i64 + id as i64) % 2 == 0;
        if self == Target::Sharded && keyed {
            doc! {"_id": id, "k": id}
        } else {
            doc! {"_id": id}
        }
    }
}

/// An insertMany error with write errors only: what it inserted is final.
fn settled_insert_many(e: &mongodb::error::Error) -> bool {
    matches!(
        &*e.kind,
        ErrorKind::InsertMany(mongodb::error::InsertManyError {
            write_errors: Some(_),
            write_concern_error: None,
            ..
        })
    )
}

async fn write_one(
    c: &Collection<Document>,
    op: u32,
    w: &MWrite,
    s: Option<&mut mongodb::ClientSession>,
    t: Target,
) -> mongodb::error::Result<()> {
    let v = op as i32;
    macro_rules! go {
        ($action:expr) => {
            match s {
                Some(s) => $action.session(s).await.map(|_| ()),
                None => $action.await.map(|_| ()),
            }
        };
    }
    match w {
        MWrite::Insert { id } => go!(c.insert_one(t.doc(*id, doc! {"_id": id, "v": v, "n": 0}))),
        MWrite::InsertMany { ids, ordered } => go!(c
            .insert_many(
                ids.iter()
                    .map(|id| t.doc(*id, doc! {"_id": id, "v": v, "n": 0}))
            )
            .ordered(*ordered)),
        MWrite::Set { id, upsert } => go!(c
            .update_one(
                t.filter(op, *id, *upsert),
                doc! {"$set": {"v": v}, "$inc": {"n": 1}}
            )
            .upsert(*upsert)),
        MWrite::Push { id } => {
            go!(c.update_one(t.filter(op, *id, false), doc! {"$push": {"tags": v}}))
        }
        MWrite::Replace { id } => go!(c.replace_one(
            t.filter(op, *id, false),
            t.doc(*id, doc! {"v": v, "r": true})
        )),
        MWrite::Delete { id } => go!(c.delete_one(t.filter(op, *id, false))),
        MWrite::DeleteMany { ids } => go!(c.delete_many(doc! {"_id": {"$in": ids.clone()}})),
        MWrite::IncMany { ids } => {
            go!(c.update_many(doc! {"_id": {"$in": ids.clone()}}, doc! {"$inc": {"n": 10}}))
        }
        MWrite::FindAndModify { id } => go!(c.find_one_and_update(
            t.filter(op, *id, false),
            doc! {"$inc": {"n": 100}, "$set": {"f": v}}
        )),
    }
}

/// Runs one op through `client` on `db.c`; `t` says how it names documents.
pub async fn execute(client: &Client, db: &str, op: &MOp, t: Target) -> Outcome {
    let c = client.database(db).collection_with_options::<Document>(
        "c",
        CollectionOptions::builder()
            .write_concern(concern(op.w))
            .build(),
    );
    match &op.kind {
        MKind::Write(w) => match write_one(&c, op.id, w, None, t).await {
            Ok(()) => Outcome::Ok,
            // Sharded: an insertMany refused only by write errors (duplicate keys)
            // inserted what it inserted and is settled at its reply (no write
            // concern error): not in doubt. The replica-set runner keeps calling it
            // in doubt (unchanged, its saved cases were found that way).
            Err(e) if t == Target::Sharded && settled_insert_many(&e) => Outcome::Ok,
            Err(e) => classify(&e),
        },
        MKind::Txn { writes, commit } => {
            // Transactions run at majority (a w:0 commit is not allowed).
            let c = client.database(db).collection::<Document>("c");
            let mut s = match client.start_session().await {
                Ok(s) => s,
                Err(e) => return Outcome::InDoubt(e.to_string()),
            };
            // Majority said explicitly: the testbed acknowledges a commit without a
            // writeConcern at w:1, though it reports MongoDB 6.0 (implicit default
            // majority), which tidemark rightly assumes.
            let opts = mongodb::options::TransactionOptions::builder()
                .write_concern(WriteConcern::majority())
                .build();
            if let Err(e) = s.start_transaction().with_options(opts).await {
                return Outcome::Rejected(e.to_string());
            }
            for w in writes {
                if let Err(e) = write_one(&c, op.id, w, Some(&mut s), t).await {
                    let _ = s.abort_transaction().await;
                    // An aborted transaction applied nothing.
                    return Outcome::Rejected(format!("in transaction: {e}"));
                }
            }
            if !*commit {
                return match s.abort_transaction().await {
                    Ok(()) => Outcome::NotApplied,
                    Err(e) => Outcome::InDoubt(format!("abort: {e}")),
                };
            }
            match s.commit_transaction().await {
                Ok(()) => Outcome::Ok,
                Err(e) => Outcome::InDoubt(format!("commit: {e}")),
            }
        }
    }
}
