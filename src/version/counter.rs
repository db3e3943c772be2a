//! A counter cell's value: a context of shards (counter id, logical clock, count), one
//! per replica that ever incremented the counter, and the rule that merges two of them.
//!
//! Facts taken from apache/cassandra `src/java/org/apache/cassandra/db/context/
//! CounterContext.java` (class comment, `merge`, `compare`, `ContextState`): a context
//! is `[i16 n][n × i16 header][body]`, the body a list of 32-byte shards (16-byte
//! counter id, i64 clock, i64 count) sorted by id in unsigned byte order. A header
//! element `i` names body shard `i` as *local*; `i + i16::MIN` (negative) names it
//! *global*; a shard the header does not name is *remote*. A negative `n` marks local
//! shards "to be cleared" (`markLocalToBeCleared`); its absolute value is the count.
//!
//! A client's increment is only a delta on the wire; inside a mutation Cassandra
//! carries it as an update context (one local shard with the reserved id 0,
//! `createUpdate`) until the leader replica folds it into its own global shard
//! (`CounterMutation`). Since Cassandra 2.1 every stored increment is a global shard; local and remote shards
//! only survive in data written by 2.0 and earlier. They are modelled because their
//! merge rules are part of `compare`, but with two caveats Cassandra shares: two local
//! shards of one id *sum*, so merging a context with itself is not idempotent (the
//! reason 2.1 replaced them), and the legacy remote clock rule is not commutative when
//! one clock is 0. Left out: the "to be cleared" mark (dropped on decode, never
//! written), `clearAllLocal`, and the empty value Cassandra's read path substitutes for
//! unqueried counter columns (`Cells.resolveCounter`'s empty branch, CASSANDRA-10657):
//! tidemark never reads cells back through a column filter.

use bytes::{BufMut, Bytes, BytesMut};
use std::cmp::Ordering;

/// Bytes of a counter id (`CounterId.LENGTH`, a UUID).
pub const COUNTER_ID_LEN: usize = 16;
/// Bytes of one shard in the body: id, clock, count.
const STEP: usize = COUNTER_ID_LEN + 8 + 8;

/// How a shard merges with another shard of the same counter id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShardKind {
    /// Written by 2.1+ increments: the higher clock wins.
    Global,
    /// Pre-2.1 shard of the local node: two of them sum.
    Local,
    /// Pre-2.1 copy of another node's shard: the higher clock wins (legacy rule).
    Remote,
}

/// One (counter id, logical clock, count) tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    pub id: [u8; COUNTER_ID_LEN],
    pub clock: i64,
    pub count: i64,
    pub kind: ShardKind,
}

/// Why bytes or shards do not form a counter context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CounterError {
    #[error("counter context of {0} bytes is shorter than its header")]
    Truncated(usize),
    #[error("counter context body of {0} bytes is not a whole number of shards")]
    RaggedBody(usize),
    #[error("counter context shards are not sorted by counter id without duplicates")]
    Unsorted,
    #[error("counter context has more than 32767 global and local shards")]
    TooManyShards,
}

/// A counter cell's value: shards sorted by counter id (unsigned bytes), ids unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CounterContext {
    shards: Vec<Shard>,
}

impl CounterContext {
    /// A context of the given shards, sorted here; two shards with one id are refused
    /// (Cassandra's contexts never hold them and its merge would misread them).
    pub fn new(mut shards: Vec<Shard>) -> Result<Self, CounterError> {
        shards.sort_by_key(|s| s.id);
        if shards.windows(2).any(|w| w[0].id == w[1].id) {
            return Err(CounterError::Unsorted);
        }
        let named = shards
            .iter()
            .filter(|s| s.kind != ShardKind::Remote)
            .count();
        if named > i16::MAX as usize {
            return Err(CounterError::TooManyShards);
        }
        Ok(CounterContext { shards })
    }

    /// One global shard: what a 2.1+ replica writes for an increment
    /// (`CounterContext.createGlobal`).
    pub fn global(id: [u8; COUNTER_ID_LEN], clock: i64, count: i64) -> Self {
        CounterContext {
            shards: vec![Shard {
                id,
                clock,
                count,
                kind: ShardKind::Global,
            }],
        }
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The counter's value: the sum of every shard's count, wrapping as Java's `long`
    /// does (`CounterContext.total`).
    pub fn total(&self) -> i64 {
        self.shards
            .iter()
            .fold(0i64, |t, s| t.wrapping_add(s.count))
    }

    /// Reads a serialized context the way `ContextState` walks it: the header is read
    /// in step with the body, so a header element names the shard at its position.
    pub fn decode(b: &[u8]) -> Result<Self, CounterError> {
        let n = match b.get(..2) {
            Some(h) => i16::from_be_bytes([h[0], h[1]]).unsigned_abs() as usize,
            None => return Err(CounterError::Truncated(b.len())),
        };
        let header_len = 2 + 2 * n;
        let (header, body) = match (b.get(2..header_len), b.get(header_len..)) {
            (Some(h), Some(body)) => (h, body),
            _ => return Err(CounterError::Truncated(b.len())),
        };
        if body.len() % STEP != 0 {
            return Err(CounterError::RaggedBody(body.len()));
        }
        let mut next_header = header
            .chunks_exact(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]));
        let mut pending = next_header.next();
        let mut shards = Vec::with_capacity(body.len() / STEP);
        for (index, step) in body.chunks_exact(STEP).enumerate() {
            let kind = match pending {
                Some(e) if i32::from(e) == index as i32 + i32::from(i16::MIN) => ShardKind::Global,
                Some(e) if i32::from(e) == index as i32 => ShardKind::Local,
                _ => ShardKind::Remote,
            };
            if kind != ShardKind::Remote {
                pending = next_header.next();
            }
            let mut id = [0u8; COUNTER_ID_LEN];
            id.copy_from_slice(&step[..COUNTER_ID_LEN]);
            let long = |at: usize| {
                let mut x = [0u8; 8];
                x.copy_from_slice(&step[at..at + 8]);
                i64::from_be_bytes(x)
            };
            shards.push(Shard {
                id,
                clock: long(COUNTER_ID_LEN),
                count: long(COUNTER_ID_LEN + 8),
                kind,
            });
        }
        if shards.windows(2).any(|w| w[0].id >= w[1].id) {
            return Err(CounterError::Unsorted);
        }
        Ok(CounterContext { shards })
    }

    /// Serializes the context as Cassandra stores it (`ContextState.allocate` and
    /// `writeElement`): header entries in body order.
    pub fn encode(&self) -> Bytes {
        let named: Vec<i16> = self
            .shards
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let i = i as i16;
                match s.kind {
                    ShardKind::Global => Some(i.wrapping_add(i16::MIN)),
                    ShardKind::Local => Some(i),
                    ShardKind::Remote => None,
                }
            })
            .collect();
        let mut out = BytesMut::with_capacity(2 + 2 * named.len() + STEP * self.shards.len());
        out.put_i16(named.len() as i16);
        for e in &named {
            out.put_i16(*e);
        }
        for s in &self.shards {
            out.put_slice(&s.id);
            out.put_i64(s.clock);
            out.put_i64(s.count);
        }
        out.freeze()
    }

    /// Merges two contexts shard by shard (`CounterContext.merge`): shards of distinct
    /// ids are all kept; two shards of one id resolve by [`merge_shards`].
    pub fn merge(&self, other: &CounterContext) -> CounterContext {
        let (a, b) = (&self.shards, &other.shards);
        let mut out = Vec::with_capacity(a.len().max(b.len()));
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].id.cmp(&b[j].id) {
                Ordering::Equal => {
                    out.push(merge_shards(&a[i], &b[j]));
                    i += 1;
                    j += 1;
                }
                Ordering::Less => {
                    out.push(a[i]);
                    i += 1;
                }
                Ordering::Greater => {
                    out.push(b[j]);
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        CounterContext { shards: out }
    }
}

/// Two shards of one counter id (`CounterContext.compare`, then `merge`'s use of it):
/// a global shard beats any other, the higher (clock, count) wins between two globals;
/// a local shard beats a remote one and two locals sum clocks and counts; between two
/// remotes the legacy clock rule decides, then the higher count. On a full tie the
/// right shard is kept, as Cassandra does (`EQUAL` copies the right state); the two are
/// equal then.
pub fn merge_shards(left: &Shard, right: &Shard) -> Shard {
    use ShardKind::*;
    let left_wins = match (left.kind, right.kind) {
        (Global, Global) | (Remote, Remote) if left.clock == right.clock => {
            left.count > right.count
        }
        (Global, Global) => left.clock > right.clock,
        (Global, _) => true,
        (_, Global) => false,
        (Local, Local) => {
            return Shard {
                id: left.id,
                clock: left.clock.wrapping_add(right.clock),
                count: left.count.wrapping_add(right.count),
                kind: Local,
            }
        }
        (Local, Remote) => true,
        (Remote, Local) => false,
        (Remote, Remote) => legacy_clock_wins(left.clock, right.clock),
    };
    if left_wins {
        *left
    } else {
        *right
    }
}

/// The pre-2.1 remote shard rule of `CounterContext.compare` for differing clocks: a
/// negative clock marked a deleted shard and wins over positive clocks, and the more
/// negative of two negative clocks wins. Written as in the Java source, so the two can
/// be compared term by term.
#[allow(clippy::nonminimal_bool)]
fn legacy_clock_wins(left: i64, right: i64) -> bool {
    (left >= 0 && right > 0 && left >= right) || (left < 0 && (right > 0 || left < right))
}
