//! One member's in-memory state: collections of documents keyed by `_id`
//! (with their UUIDs and secondary indexes), the oplog, logical sessions and
//! open query cursors. Documents are owned `bson::Document`s: the testbed favours
//! simple, obviously-correct data handling over speed.

use super::index::Indexes;
use super::session::Sessions;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};
use tidemark_mongo::bson::spec::BinarySubtype;
use tidemark_mongo::bson::{doc, Binary, Bson, DateTime, Document, Timestamp};

/// The documents a cursor has not returned yet.
#[derive(Debug, Clone)]
pub struct QueryCursor {
    pub ns: String,
    pub rest: VecDeque<Document>,
}

/// A fresh collection UUID (BSON binary subtype 4), random as MongoDB's are.
pub fn new_uuid() -> Binary {
    Binary {
        subtype: BinarySubtype::Uuid,
        bytes: rand::random::<[u8; 16]>().to_vec(),
    }
}

/// An optime: election term and oplog timestamp, ordered as MongoDB orders
/// them (term first; field order matters for the derived `Ord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct OpTime {
    pub t: i64,
    pub ts: (u32, u32),
}

impl OpTime {
    pub fn timestamp(&self) -> Timestamp {
        Timestamp {
            time: self.ts.0,
            increment: self.ts.1,
        }
    }

    /// Parses `{ts, t}`; `None` if either is missing.
    pub fn from_doc(d: &Document) -> Option<OpTime> {
        let ts = d.get_timestamp("ts").ok()?;
        Some(OpTime {
            t: d.get_i64("t").ok()?,
            ts: (ts.time, ts.increment),
        })
    }

    /// `{ts, t}` as in hello's `lastWrite` and `$replData`.
    pub fn to_doc(&self) -> Document {
        doc! { "ts": self.timestamp(), "t": self.t }
    }
}

/// The process's cluster time, `(secs << 32) | increment`: every set in the process
/// (a sharded cluster's shards and config servers) takes its oplog timestamps from
/// it. MongoDB's sets keep hybrid logical clocks that gossip `$clusterTime` (the
/// driver and router pass it on every request, a migration's recipient gets it from
/// the donor), so a write that causally follows another — on another shard, after
/// its chunk moved — gets a later timestamp. One process, one clock is the simplest
/// clock with that property (stronger than MongoDB's: every write is ordered).
static CLUSTER_TIME: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The process's cluster time now, as `(secs, increment)`: the newest timestamp
/// any set of the process has given an oplog entry.
pub fn cluster_time_now() -> (u32, u32) {
    let t = CLUSTER_TIME.load(std::sync::atomic::Ordering::Relaxed);
    ((t >> 32) as u32, t as u32)
}

/// The next timestamp after both the process's cluster time and `last` (the set's
/// own newest), at wall-clock second `secs` or later.
fn next_cluster_time(secs: u32, last: (u32, u32)) -> (u32, u32) {
    use std::sync::atomic::Ordering;
    let pack = |t: (u32, u32)| (u64::from(t.0) << 32) | u64::from(t.1);
    let mut cur = CLUSTER_TIME.load(Ordering::Relaxed);
    loop {
        let floor = cur.max(pack(last));
        let next = if u64::from(secs) > floor >> 32 {
            pack((secs, 1))
        } else {
            floor + 1
        };
        match CLUSTER_TIME.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return ((next >> 32) as u32, next as u32),
            Err(seen) => cur = seen,
        }
    }
}

/// A canonical key for an `_id` value: the BSON bytes of `{"": v}`, with
/// integral numbers normalised to int64 so that `1`, `1L` and `1.0` are the
/// same key (as they are to MongoDB's unique index).
pub fn id_key(v: &Bson) -> Vec<u8> {
    let norm = match v {
        Bson::Int32(i) => Bson::Int64(*i as i64),
        Bson::Double(d) if d.fract() == 0.0 && d.abs() < 9.0e15 => Bson::Int64(*d as i64),
        other => other.clone(),
    };
    doc! { "": norm }.to_vec().unwrap_or_default()
}

/// One collection: documents in natural (insertion) order, plus the unique
/// `_id` index and the collection UUID that oplog entries carry as `ui`.
#[derive(Debug, Clone)]
pub struct Collection {
    docs: BTreeMap<u64, Document>,
    by_id: HashMap<Vec<u8>, u64>,
    next_seq: u64,
    pub uuid: Binary,
    /// Secondary indexes (`createIndexes`); unique ones are enforced.
    pub indexes: Indexes,
}

impl Default for Collection {
    fn default() -> Self {
        Collection {
            docs: BTreeMap::new(),
            by_id: HashMap::new(),
            next_seq: 0,
            uuid: new_uuid(),
            indexes: Indexes::default(),
        }
    }
}

impl Collection {
    /// Inserts `d`, which must have an `_id`; `Err` with the key on a duplicate.
    pub fn insert(&mut self, d: Document) -> Result<(), Bson> {
        let id = d.get("_id").cloned().unwrap_or(Bson::Null);
        let key = id_key(&id);
        if self.by_id.contains_key(&key) {
            return Err(id);
        }
        self.next_seq += 1;
        self.by_id.insert(key, self.next_seq);
        self.indexes.on_insert(self.next_seq, &d);
        self.docs.insert(self.next_seq, d);
        Ok(())
    }

    /// Documents with their natural-order position, for scans.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Document)> {
        self.docs.iter().map(|(k, v)| (*k, v))
    }

    pub fn get(&self, seq: u64) -> Option<&Document> {
        self.docs.get(&seq)
    }

    /// Replaces the document at `seq` in place; its `_id` must not change
    /// (callers check, as MongoDB refuses such updates).
    pub fn replace(&mut self, seq: u64, d: Document) {
        if let Some(slot) = self.docs.get_mut(&seq) {
            self.indexes.on_remove(seq, slot);
            self.indexes.on_insert(seq, &d);
            *slot = d;
        }
    }

    /// Seq of the document with this `_id`, if present.
    pub fn find_id(&self, id: &Bson) -> Option<u64> {
        self.by_id.get(&id_key(id)).copied()
    }

    pub fn remove(&mut self, seq: u64) -> Option<Document> {
        let d = self.docs.remove(&seq)?;
        if let Some(id) = d.get("_id") {
            self.by_id.remove(&id_key(id));
        }
        self.indexes.on_remove(seq, &d);
        Some(d)
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

/// A member's data and oplog.
#[derive(Debug, Default)]
pub struct MemberStore {
    /// Keyed by namespace, "db.coll".
    pub collections: BTreeMap<String, Collection>,
    oplog: Vec<Document>,
    last: OpTime,
    last_wall: i64,
    /// Logical sessions: executed retryable statements and transactions
    /// (kept with the data, as MongoDB keeps `config.transactions`).
    pub sessions: Sessions,
    /// Open query cursors (`find`, `listCollections`, `aggregate`) by id.
    pub cursors: HashMap<i64, QueryCursor>,
    /// Prepared transactions seen in the oplog (a shard's part of a
    /// cross-shard transaction): their writes, by `(lsid, txnNumber)` key,
    /// applied when the `commitTransaction` entry comes.
    pub prepared: HashMap<(Vec<u8>, i64), Vec<Document>>,
}

/// The key of a prepared transaction: the `lsid`'s BSON bytes and the `txnNumber`.
pub fn prepared_key(e: &Document) -> Option<(Vec<u8>, i64)> {
    let lsid = e.get_document("lsid").ok()?.to_vec().ok()?;
    Some((lsid, e.get_i64("txnNumber").ok()?))
}

impl MemberStore {
    /// A store holding only `collections`: a transaction's view, which the
    /// read and write code runs against like a member's store.
    pub fn with_collections(collections: BTreeMap<String, Collection>) -> MemberStore {
        MemberStore {
            collections,
            ..Default::default()
        }
    }

    /// Creates `ns` with `uuid` (a fresh one when `None`) unless it exists;
    /// true when it was created.
    pub fn create_collection(&mut self, ns: &str, uuid: Option<Binary>) -> bool {
        if self.collections.contains_key(ns) {
            return false;
        }
        let mut c = Collection::default();
        if let Some(u) = uuid {
            c.uuid = u;
        }
        self.collections.insert(ns.to_string(), c);
        true
    }

    /// The `ui` of `ns`, if it exists.
    pub fn uuid(&self, ns: &str) -> Option<Binary> {
        self.collections.get(ns).map(|c| c.uuid.clone())
    }

    pub fn collection_mut(&mut self, ns: &str) -> &mut Collection {
        self.collections.entry(ns.to_string()).or_default()
    }

    pub fn collection(&self, ns: &str) -> Option<&Collection> {
        self.collections.get(ns)
    }

    /// Copies of `ns`'s documents in natural order.
    pub fn documents(&self, ns: &str) -> Vec<Document> {
        self.collection(ns)
            .map(|c| c.iter().map(|(_, d)| d.clone()).collect())
            .unwrap_or_default()
    }

    pub fn oplog(&self) -> &[Document] {
        &self.oplog
    }

    pub fn last_op_time(&self) -> OpTime {
        self.last
    }

    /// Wall-clock milliseconds of the last oplog entry (0 before any write).
    pub fn last_write_millis(&self) -> i64 {
        self.last_wall
    }

    /// Appends an entry fetched from the sync source, keeping its `ts`/`t`;
    /// refuses one that is not after the last (a secondary's oplog only grows
    /// in optime order).
    pub fn push_replicated(&mut self, e: Document) -> Result<OpTime, String> {
        let ts = e.get_timestamp("ts").map_err(|e| e.to_string())?;
        let t = e.get_i64("t").map_err(|e| e.to_string())?;
        let optime = OpTime {
            ts: (ts.time, ts.increment),
            t,
        };
        if optime <= self.last {
            return Err(format!("entry {optime:?} not after {:?}", self.last));
        }
        self.last_wall = e
            .get_datetime("wall")
            .map(|d| d.timestamp_millis())
            .unwrap_or(self.last_wall);
        self.oplog.push(e);
        self.last = optime;
        Ok(optime)
    }

    /// Appends an oplog entry for `op` ("i", "u", "d", "c", "n") on `ns` in
    /// `term`, stamping a timestamp strictly after the previous one (seconds
    /// from the wall clock, increment counting within the second), as the
    /// primary does. Returns the entry's optime.
    pub fn append_oplog(
        &mut self,
        term: i64,
        op: &str,
        ns: &str,
        o: Document,
        o2: Option<Document>,
    ) -> OpTime {
        self.append_oplog_with(term, op, ns, o, o2, Document::new())
    }

    /// [`Self::append_oplog`] plus `extra` fields (`ui`, `lsid`, `txnNumber`,
    /// `stmtId`, `prevOpTime`) appended to the entry.
    pub fn append_oplog_with(
        &mut self,
        term: i64,
        op: &str,
        ns: &str,
        o: Document,
        o2: Option<Document>,
        extra: Document,
    ) -> OpTime {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let ts = next_cluster_time((now / 1000) as u32, self.last.ts);
        let optime = OpTime { ts, t: term };
        let mut e = doc! {
            "ts": optime.timestamp(),
            "t": term,
            "v": 2i64,
            "op": op,
            "ns": ns,
            "wall": DateTime::from_millis(now),
            "o": o,
        };
        if let Some(o2) = o2 {
            e.insert("o2", o2);
        }
        e.extend(extra);
        self.oplog.push(e);
        self.last = optime;
        self.last_wall = now;
        optime
    }
}
