//! A MongoDB history as data, and its generator: rounds of concurrent client writes
//! (single and bulk, ordered and unordered, updates with operators, replacements,
//! deletes, findAndModify, transactions; the driver's retryable writes are on) at
//! w:0, w:1 or majority, with replica-set faults (the primary partitioned away so
//! another is elected and its w:1 writes roll back, members stopped and started, the
//! primary stepped down). With [`Mode::Sharded`] the same writes at w:1 or majority
//! go through the routers of a sharded cluster (`sharded_run`), with chunk faults
//! instead: a chunk moved mid-round while the clients write, balancer bursts, and a
//! move through another router just before the round (the clients' routers' maps
//! are then old). No replica-set failover in that mode: tidemark's per-shard commit
//! tracking under failover is a separate, unfinished item.

use serde::{Deserialize, Serialize};

use super::history::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum W {
    Zero,
    One,
    Majority,
}

/// One write on collection `c`; `_id`s come from a small space so writes collide.
/// Every value written is the op's id, so a document shows who touched it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MWrite {
    /// `insertOne {_id, v: op, n: 0}` (a duplicate `_id` is a write error).
    Insert { id: i32 },
    /// `insertMany` of several documents, ordered or not.
    InsertMany { ids: Vec<i32>, ordered: bool },
    /// `updateOne {_id} {$set: {v: op}, $inc: {n: 1}}`, upserting or not.
    Set { id: i32, upsert: bool },
    /// `updateOne {_id} {$push: {tags: op}}`.
    Push { id: i32 },
    /// `replaceOne {_id} {v: op, r: true}`.
    Replace { id: i32 },
    /// `deleteOne {_id}`.
    Delete { id: i32 },
    /// `deleteMany {_id: {$in: ids}}`.
    DeleteMany { ids: Vec<i32> },
    /// `updateMany {_id: {$in: ids}} {$inc: {n: 10}}`.
    IncMany { ids: Vec<i32> },
    /// `findAndModify {_id} {$inc: {n: 100}, $set: {f: op}}`.
    FindAndModify { id: i32 },
}

impl MWrite {
    pub fn ids(&self) -> Vec<i32> {
        match self {
            MWrite::Insert { id }
            | MWrite::Set { id, .. }
            | MWrite::Push { id }
            | MWrite::Replace { id }
            | MWrite::Delete { id }
            | MWrite::FindAndModify { id } => vec![*id],
            MWrite::InsertMany { ids, .. }
            | MWrite::DeleteMany { ids }
            | MWrite::IncMany { ids } => ids.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MKind {
    Write(MWrite),
    /// A multi-document transaction: committed, or aborted (nothing may show).
    Txn {
        writes: Vec<MWrite>,
        commit: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MOp {
    pub id: u32,
    pub w: W,
    pub kind: MKind,
}

impl MOp {
    pub fn ids(&self) -> Vec<i32> {
        match &self.kind {
            MKind::Write(w) => w.ids(),
            MKind::Txn { writes, .. } => writes.iter().flat_map(|w| w.ids()).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MFault {
    /// Cut every link of the current primary: it keeps acknowledging w:1 writes
    /// until it steps down; the others elect a primary; healing rolls it back.
    PartitionPrimary,
    HealAll,
    /// Stop a member (a crash), or restart it.
    Stop {
        member: usize,
    },
    Start {
        member: usize,
    },
    /// `replSetStepDown` on the primary.
    StepDown,
    /// Sharded mode: the chunk holding shard-key value `key` moved to the other shard
    /// `after_ms` into the round, while its clients write.
    MoveChunk {
        key: i32,
        after_ms: u64,
    },
    /// Sharded mode: the continuous balancer on for `ms` from the round's start
    /// (it moves random chunks of any sharded collection), then off.
    Balancer {
        ms: u64,
    },
    /// Sharded mode: the chunk holding `key` moved through a router no client uses,
    /// just before the round: the clients' routers write with an old chunk map
    /// until a shard answers StaleConfig.
    StaleRouter {
        key: i32,
    },
    /// Sharded mode: `replSetStepDown` on shard `shard`'s primary `after_ms` into
    /// the round, while its clients write: a new term in that shard only (each
    /// set's replication is its own: the other shard and the config servers stay
    /// in their terms).
    ShardStepDown {
        shard: usize,
        after_ms: u64,
    },
    /// The proxied mode's sidecar is stopped and started again mid-round
    /// (`proxy_run`); never generated for a tapped history.
    ProxyRestart(super::proxy_run::ProxyRestart),
}

/// Where a MongoDB history runs: the 3-member replica set, or a sharded cluster's
/// routers. Saved cases without it are replica-set cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    #[default]
    ReplicaSet,
    Sharded,
}

pub type MRound = super::history::Round<MOp, MFault>;
pub type MongoHistory = super::history::History<MOp, MFault>;

pub const MEMBERS: usize = 3;
pub const IDS: u64 = 6;

fn gen_write(r: &mut Rng) -> MWrite {
    let id = r.below(IDS) as i32;
    let ids = |r: &mut Rng| {
        let mut v: Vec<i32> = (0..2 + r.below(2)).map(|_| r.below(IDS) as i32).collect();
        v.dedup();
        v
    };
    match r.below(10) {
        0 | 1 => MWrite::Insert { id },
        2 => MWrite::InsertMany {
            ids: ids(r),
            ordered: r.chance(50),
        },
        3 | 4 => MWrite::Set {
            id,
            upsert: r.chance(50),
        },
        5 => MWrite::Push { id },
        6 => MWrite::Replace { id },
        7 => match r.below(2) {
            0 => MWrite::Delete { id },
            _ => MWrite::DeleteMany { ids: ids(r) },
        },
        8 => MWrite::IncMany { ids: ids(r) },
        _ => MWrite::FindAndModify { id },
    }
}

impl MongoHistory {
    /// The history of seed `seed`: 2–3 clients, 3–4 rounds of 1–3 ops each, a fault
    /// on about half the rounds (at most one member stopped at a time).
    pub fn generate(seed: u64) -> MongoHistory {
        MongoHistory::generate_for(seed, Mode::ReplicaSet)
    }

    /// The history of seed `seed` for `mode`. Replica-set histories are exactly
    /// those of [`MongoHistory::generate`] (saved seeds keep their meaning); sharded
    /// ones draw w:1/majority only (w:0 through a router acknowledges nothing to
    /// check) and chunk faults (a fault on about 60% of the rounds).
    pub fn generate_for(seed: u64, mode: Mode) -> MongoHistory {
        let salt = match mode {
            Mode::ReplicaSet => 0x6d6f_6e67_6f00,
            Mode::Sharded => 0x7368_6172_6400,
        };
        let mut r = Rng::new(seed ^ salt);
        let clients = 2 + r.below(2) as usize;
        let rounds = 3 + r.below(2) as usize;
        let mut next_id = 1u32;
        let mut stopped: Option<usize> = None;
        let mut partitioned = false;
        let mut out = Vec::new();
        for _ in 0..rounds {
            let mut faults = Vec::new();
            if mode == Mode::Sharded {
                if r.chance(60) {
                    let key = r.below(IDS) as i32;
                    faults.push(match r.below(5) {
                        0 | 1 => MFault::MoveChunk {
                            key,
                            after_ms: r.below(150),
                        },
                        2 => MFault::Balancer {
                            ms: 200 + r.below(400),
                        },
                        3 => MFault::StaleRouter { key },
                        _ => MFault::ShardStepDown {
                            shard: r.below(2) as usize,
                            after_ms: r.below(150),
                        },
                    });
                }
            } else if r.chance(50) {
                match r.below(5) {
                    0 | 1 if !partitioned => {
                        partitioned = true;
                        faults.push(MFault::PartitionPrimary);
                    }
                    0 | 1 => {
                        partitioned = false;
                        faults.push(MFault::HealAll);
                    }
                    2 if stopped.is_none() && !partitioned => {
                        let m = r.below(MEMBERS as u64) as usize;
                        stopped = Some(m);
                        faults.push(MFault::Stop { member: m });
                    }
                    2 | 3 => {
                        if let Some(m) = stopped.take() {
                            faults.push(MFault::Start { member: m });
                        }
                    }
                    _ => faults.push(MFault::StepDown),
                }
            }
            let mut per_client = Vec::new();
            for _ in 0..clients {
                let ops = (0..1 + r.below(3))
                    .map(|_| {
                        let id = next_id;
                        next_id += 1;
                        let w = match r.below(4) {
                            0 if mode == Mode::Sharded => W::One,
                            0 => W::Zero,
                            1 => W::One,
                            _ => W::Majority,
                        };
                        let kind = if r.chance(12) {
                            MKind::Txn {
                                writes: (0..2).map(|_| gen_write(&mut r)).collect(),
                                commit: r.chance(75),
                            }
                        } else {
                            MKind::Write(gen_write(&mut r))
                        };
                        MOp { id, w, kind }
                    })
                    .collect();
                per_client.push(ops);
            }
            out.push(MRound {
                faults,
                clients: per_client,
                mid_dump_ms: r.chance(50).then(|| r.below(300)),
            });
        }
        MongoHistory { seed, rounds: out }
    }
}
