//! A CQL history as data, and its generator: a seed gives rounds of concurrent client
//! operations (every write kind the testbed answers) and replica faults. Histories are
//! plain serde values so a shrunk one can be saved under `tests/regressions/` and
//! replayed exactly (the same operations and faults; the interleaving is the
//! scheduler's, as in any Jepsen history).

use serde::{Deserialize, Serialize};

use super::history::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cl {
    One,
    Quorum,
    All,
}

/// How the write timestamp travels: the driver's default-timestamp field (as every
/// driver with client-side timestamps sends it) or `USING TIMESTAMP` in the text.
/// Both carry `history start + offset` µs; two clients may share an offset (a tie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ts {
    Driver(i64),
    Using(i64),
}

impl Ts {
    pub fn offset(self) -> i64 {
        match self {
            Ts::Driver(o) | Ts::Using(o) => o,
        }
    }
}

/// One simple (non-batch) write. Every value an op writes names the op (`o{id}` text,
/// `id` int, `e{id}` set element), so the checker knows which op any cell came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Write {
    /// `INSERT INTO t (pk, ck, v, n) VALUES (...) [USING TTL ttl]`.
    Insert { pk: i32, ck: i32, ttl: Option<u32> },
    /// `UPDATE t SET v = ... [USING TTL]`.
    Update { pk: i32, ck: i32, ttl: Option<u32> },
    /// `UPDATE t SET s = s + {'e{id}'}`.
    SetAdd { pk: i32, ck: i32 },
    /// `UPDATE t SET s = s - {'e{of}'}`: removes an element an earlier op added.
    SetRemove { pk: i32, ck: i32, of: u32 },
    /// `UPDATE t SET m['k{key}'] = 'o{id}'`.
    MapPut { pk: i32, ck: i32, key: u8 },
    /// `DELETE col FROM t WHERE pk AND ck` (`col` is v, n, s or m).
    DeleteColumn { pk: i32, ck: i32, col: String },
    /// `DELETE FROM t WHERE pk AND ck`.
    DeleteRow { pk: i32, ck: i32 },
    /// `DELETE FROM t WHERE pk AND ck >= from`.
    DeleteRange { pk: i32, from: i32 },
    /// `DELETE FROM t WHERE pk`.
    DeletePartition { pk: i32 },
}

impl Write {
    pub fn pk(&self) -> i32 {
        match self {
            Write::Insert { pk, .. }
            | Write::Update { pk, .. }
            | Write::SetAdd { pk, .. }
            | Write::SetRemove { pk, .. }
            | Write::MapPut { pk, .. }
            | Write::DeleteColumn { pk, .. }
            | Write::DeleteRow { pk, .. }
            | Write::DeleteRange { pk, .. }
            | Write::DeletePartition { pk } => *pk,
        }
    }

    /// Whether this write may change cell `col` of row (pk, ck) of table `t`
    /// (deletions cover what their scope covers).
    pub fn covers(&self, pk: i32, ck: i32, col: &str) -> bool {
        if self.pk() != pk {
            return false;
        }
        let base = col.split('[').next().unwrap_or(col);
        match self {
            Write::Insert { ck: c, .. } => *c == ck && (base == "v" || base == "n"),
            Write::Update { ck: c, .. } => *c == ck && base == "v",
            Write::SetAdd { ck: c, .. } | Write::SetRemove { ck: c, .. } => *c == ck && base == "s",
            Write::MapPut { ck: c, .. } => *c == ck && base == "m",
            Write::DeleteColumn { ck: c, col: d, .. } => *c == ck && base == d,
            Write::DeleteRow { ck: c, .. } => *c == ck,
            Write::DeleteRange { from, .. } => ck >= *from,
            Write::DeletePartition { .. } => true,
        }
    }

    /// The CQL text of this write as op `id` (batch members have their own ids).
    pub fn cql(&self, ks: &str, id: u32, using_ts: Option<i64>) -> String {
        let mut using: Vec<String> = Vec::new();
        if let Some(ts) = using_ts {
            using.push(format!("TIMESTAMP {ts}"));
        }
        let ttl = match self {
            Write::Insert { ttl, .. } | Write::Update { ttl, .. } => *ttl,
            _ => None,
        };
        if let Some(t) = ttl {
            using.push(format!("TTL {t}"));
        }
        let using = if using.is_empty() {
            String::new()
        } else {
            format!(" USING {}", using.join(" AND "))
        };
        match self {
            Write::Insert { pk, ck, .. } => format!(
                "INSERT INTO {ks}.t (pk, ck, v, n) VALUES ({pk}, {ck}, 'o{id}', {id}){using}"
            ),
            Write::Update { pk, ck, .. } => {
                format!("UPDATE {ks}.t{using} SET v = 'o{id}' WHERE pk = {pk} AND ck = {ck}")
            }
            Write::SetAdd { pk, ck } => format!(
                "UPDATE {ks}.t{using} SET s = s + {{'e{id}'}} WHERE pk = {pk} AND ck = {ck}"
            ),
            Write::SetRemove { pk, ck, of } => format!(
                "UPDATE {ks}.t{using} SET s = s - {{'e{of}'}} WHERE pk = {pk} AND ck = {ck}"
            ),
            Write::MapPut { pk, ck, key } => format!(
                "UPDATE {ks}.t{using} SET m['k{key}'] = 'o{id}' WHERE pk = {pk} AND ck = {ck}"
            ),
            Write::DeleteColumn { pk, ck, col } => {
                format!("DELETE {col} FROM {ks}.t{using} WHERE pk = {pk} AND ck = {ck}")
            }
            Write::DeleteRow { pk, ck } => {
                format!("DELETE FROM {ks}.t{using} WHERE pk = {pk} AND ck = {ck}")
            }
            Write::DeleteRange { pk, from } => {
                format!("DELETE FROM {ks}.t{using} WHERE pk = {pk} AND ck >= {from}")
            }
            Write::DeletePartition { pk } => format!("DELETE FROM {ks}.t{using} WHERE pk = {pk}"),
        }
    }

    pub fn is_deletion(&self) -> bool {
        matches!(
            self,
            Write::DeleteColumn { .. }
                | Write::DeleteRow { .. }
                | Write::DeleteRange { .. }
                | Write::DeletePartition { .. }
                | Write::SetRemove { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    Write {
        w: Write,
        ts: Ts,
    },
    /// `UPDATE c SET hits = hits + delta` (server timestamps: counters have no other).
    Counter {
        pk: i32,
        ck: i32,
        delta: i64,
    },
    /// `INSERT ... IF NOT EXISTS` (`exists: false`) or `UPDATE ... SET v IF EXISTS`.
    Lwt {
        pk: i32,
        ck: i32,
        exists: bool,
    },
    /// A logged or unlogged batch of simple writes, members numbered `id+1..`.
    Batch {
        logged: bool,
        members: Vec<Write>,
        ts: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: u32,
    pub cl: Cl,
    pub kind: OpKind,
}

/// A fault the testbed injects at the start of a round (see the testbed's
/// `cluster/faults.rs` and `membership.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultAction {
    Slow {
        node: usize,
        delay_ms: u64,
    },
    DropAcks {
        node: usize,
    },
    DropWrites {
        node: usize,
    },
    Heal {
        node: usize,
    },
    Stop {
        node: usize,
    },
    Start {
        node: usize,
    },
    /// The node's clock runs `micros` off (server-side timestamps: LWT ballots,
    /// counters); reset when the history ends.
    Skew {
        node: usize,
        micros: i64,
    },
    /// A node bootstraps into a spare slot (ranges stream to it, the drivers learn
    /// of it by NEW_NODE); removed again by `RemoveAdded` or when the history ends.
    AddNode,
    /// The node `AddNode` added is decommissioned (its ranges stream back).
    RemoveAdded,
    /// The proxied mode's sidecar is stopped and started again mid-round
    /// (`proxy_run`); never generated for a tapped history.
    ProxyRestart(super::proxy_run::ProxyRestart),
}

pub type Round = super::history::Round<Op, FaultAction>;
pub type CqlHistory = super::history::History<Op, FaultAction>;

pub const NODES: usize = 3;

impl CqlHistory {
    /// The history of seed `seed`: 2–4 clients, 3–5 rounds of 1–4 ops each, faults
    /// on about half the rounds (never more than one node stopped, so QUORUM can
    /// still succeed somewhere).
    pub fn generate(seed: u64) -> CqlHistory {
        let mut r = Rng::new(seed);
        let clients = 2 + r.below(3) as usize;
        let rounds = 3 + r.below(3) as usize;
        let mut next_id = 1u32;
        let mut set_ids: Vec<u32> = Vec::new();
        let mut tie_offsets: Vec<i64> = Vec::new();
        let mut stopped: Option<usize> = None;
        let mut faulty: Vec<usize> = Vec::new();
        let mut skewed = false;
        let mut added = false;
        let mut out = Vec::new();
        for _ in 0..rounds {
            let mut faults = Vec::new();
            if r.chance(50) {
                let node = r.below(NODES as u64) as usize;
                match r.below(6) {
                    0 => faults.push(FaultAction::Slow {
                        node,
                        delay_ms: 50 + r.below(500),
                    }),
                    1 => faults.push(FaultAction::DropAcks { node }),
                    2 => faults.push(FaultAction::DropWrites { node }),
                    3 if stopped.is_none() => {
                        stopped = Some(node);
                        faults.push(FaultAction::Stop { node });
                    }
                    4 if !skewed => {
                        skewed = true;
                        let micros = 100_000 + r.below(1_900_000) as i64;
                        let micros = if r.chance(50) { micros } else { -micros };
                        faults.push(FaultAction::Skew { node, micros });
                    }
                    5 if !added => {
                        added = true;
                        faults.push(FaultAction::AddNode);
                    }
                    5 if !faults.contains(&FaultAction::RemoveAdded) => {
                        faults.push(FaultAction::RemoveAdded);
                    }
                    _ => {}
                }
                if let Some(
                    FaultAction::Slow { node, .. }
                    | FaultAction::DropAcks { node }
                    | FaultAction::DropWrites { node },
                ) = faults.last()
                {
                    faulty.push(*node);
                }
            }
            if r.chance(30) {
                if let Some(n) = faulty.pop() {
                    faults.push(FaultAction::Heal { node: n });
                }
            }
            if r.chance(40) {
                if let Some(n) = stopped.take() {
                    if !faults.contains(&FaultAction::Stop { node: n }) {
                        faults.push(FaultAction::Start { node: n });
                    } else {
                        stopped = Some(n);
                    }
                }
            }
            let mut per_client = Vec::new();
            for _ in 0..clients {
                let n = 1 + r.below(4);
                let mut ops = Vec::new();
                for _ in 0..n {
                    let op = gen_op(&mut r, &mut next_id, &mut set_ids, &mut tie_offsets);
                    ops.push(op);
                }
                per_client.push(ops);
            }
            let mid_dump_ms = r.chance(60).then(|| r.below(400));
            out.push(Round {
                faults,
                clients: per_client,
                mid_dump_ms,
            });
        }
        CqlHistory { seed, rounds: out }
    }
}

fn gen_cl(r: &mut Rng) -> Cl {
    match r.below(5) {
        0 => Cl::One,
        1 => Cl::All,
        _ => Cl::Quorum,
    }
}

/// A timestamp offset: mostly fresh and increasing-ish (random within 2 s, so later
/// writes sometimes lose), sometimes one already used by another op (a tie).
fn gen_ts(r: &mut Rng, ties: &mut Vec<i64>) -> i64 {
    if !ties.is_empty() && r.chance(15) {
        return ties[r.below(ties.len() as u64) as usize];
    }
    let o = r.below(2_000_000) as i64;
    ties.push(o);
    o
}

fn gen_write(r: &mut Rng, id: u32, set_ids: &mut Vec<u32>) -> Write {
    let pk = r.below(3) as i32;
    let ck = r.below(3) as i32;
    let ttl = match r.below(8) {
        0 => Some(2),
        1 => Some(3600),
        _ => None,
    };
    match r.below(12) {
        0..=2 => Write::Insert { pk, ck, ttl },
        3 | 4 => Write::Update { pk, ck, ttl },
        5 => {
            set_ids.push(id);
            Write::SetAdd { pk, ck }
        }
        6 if !set_ids.is_empty() => Write::SetRemove {
            pk,
            ck,
            of: set_ids[r.below(set_ids.len() as u64) as usize],
        },
        6 | 7 => Write::MapPut {
            pk,
            ck,
            key: r.below(3) as u8,
        },
        8 => Write::DeleteColumn {
            pk,
            ck,
            col: ["v", "n", "s", "m"][r.below(4) as usize].to_string(),
        },
        9 => Write::DeleteRow { pk, ck },
        10 => Write::DeleteRange {
            pk,
            from: r.below(3) as i32,
        },
        _ => Write::DeletePartition { pk },
    }
}

fn gen_op(r: &mut Rng, next_id: &mut u32, set_ids: &mut Vec<u32>, ties: &mut Vec<i64>) -> Op {
    let id = *next_id;
    *next_id += 1;
    let cl = gen_cl(r);
    let kind = match r.below(20) {
        0 | 1 => OpKind::Counter {
            pk: r.below(3) as i32,
            ck: r.below(2) as i32,
            delta: 1 + r.below(9) as i64,
        },
        2 | 3 => OpKind::Lwt {
            pk: r.below(3) as i32,
            ck: r.below(3) as i32,
            exists: r.chance(50),
        },
        4 | 5 => {
            let n = 2 + r.below(2) as u32;
            let members = (0..n)
                .map(|k| {
                    let w = gen_write(r, id + 1 + k, set_ids);
                    // Batch members carry no TTL of their own here: one USING clause.
                    match w {
                        Write::Insert { pk, ck, .. } => Write::Insert { pk, ck, ttl: None },
                        Write::Update { pk, ck, .. } => Write::Update { pk, ck, ttl: None },
                        w => w,
                    }
                })
                .collect();
            *next_id += n;
            OpKind::Batch {
                logged: r.chance(60),
                members,
                ts: gen_ts(r, ties),
            }
        }
        _ => {
            let w = gen_write(r, id, set_ids);
            let o = gen_ts(r, ties);
            let ts = if r.chance(30) {
                Ts::Using(o)
            } else {
                Ts::Driver(o)
            };
            OpKind::Write { w, ts }
        }
    };
    Op { id, cl, kind }
}
