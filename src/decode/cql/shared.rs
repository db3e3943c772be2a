//! State shared by every CQL flow of a run: prepared statements per server node, the
//! EXECUTEs still waiting for their PREPARE, and the schema.
//!
//! A driver prepares a statement on one connection and executes it on any other
//! connection to the same node (and re-prepares on a node that answers Unprepared),
//! so prepared statements are keyed by the server's address, not by flow.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tidemark_cql::message::{PreparedMetadata, QueryValues};
use tidemark_cql::ColumnType;

use super::parsed::ParsedText;
use super::schema::Schema;
use super::typed::Name;
use crate::decode::records::WriteRecord;

/// A statement a node prepared: its text, the keyspace it was prepared in, and the
/// bind metadata the node returned.
#[derive(Debug)]
pub struct PreparedStmt {
    /// The statement text, parsed once when the PREPARE was answered.
    pub text: ParsedText,
    pub keyspace: Option<String>,
    pub metadata: PreparedMetadata,
    /// The bind metadata's marker types and names, shared: each EXECUTE's typed
    /// cells hold these instead of a copy per cell.
    pub shared: SharedSpecs,
}

/// A prepared statement's marker types and names, made once when it is prepared.
#[derive(Debug, Default)]
pub struct SharedSpecs {
    pub types: Vec<Arc<ColumnType>>,
    pub names: Vec<Name>,
}

impl PreparedStmt {
    pub fn new(text: ParsedText, keyspace: Option<String>, metadata: PreparedMetadata) -> Self {
        let cols = &metadata.columns;
        let shared = SharedSpecs {
            types: cols.iter().map(|c| Arc::new(c.ty.clone())).collect(),
            names: cols.iter().map(|c| Name::new(c.name.as_str())).collect(),
        };
        PreparedStmt {
            text,
            keyspace,
            metadata,
            shared,
        }
    }
}

/// An EXECUTE (or prepared BATCH member) whose PREPARE was not seen: reported as
/// `unresolved` once answered, and again, resolved, if its PREPARE shows up later.
#[derive(Debug, Clone)]
pub struct Unresolved {
    /// The write as reported (outcome already decided from the response).
    pub record: WriteRecord,
    pub values: QueryValues,
    /// Keyspace of the connection when executed (v5 may name one per request).
    pub keyspace: Option<String>,
    pub default_timestamp: Option<i64>,
}

/// Per-node limits, so hostile or huge captures cannot grow state without bound.
const MAX_PREPARED: usize = 100_000;
const MAX_WAITING: usize = 10_000;

/// One server node.
#[derive(Debug, Default)]
pub struct Node {
    prepared: HashMap<Bytes, Arc<PreparedStmt>>,
    waiting: HashMap<Bytes, Vec<Unresolved>>,
    /// Arrival order of waiting ids, for eviction.
    waiting_order: VecDeque<Bytes>,
    waiting_len: usize,
}

impl Node {
    pub fn prepared(&self, id: &[u8]) -> Option<Arc<PreparedStmt>> {
        self.prepared.get(id).cloned()
    }

    /// Records a prepared statement; returns the EXECUTEs that were waiting for it.
    pub fn insert_prepared(&mut self, id: Bytes, stmt: PreparedStmt) -> Vec<Unresolved> {
        if self.prepared.len() >= MAX_PREPARED && !self.prepared.contains_key(&id) {
            // Drop an arbitrary entry: a re-PREPARE would bring it back.
            if let Some(k) = self.prepared.keys().next().cloned() {
                self.prepared.remove(&k);
            }
        }
        let waiting = self.waiting.remove(&id).unwrap_or_default();
        self.waiting_len -= waiting.len();
        self.prepared.insert(id, Arc::new(stmt));
        waiting
    }

    /// Parks an unresolved EXECUTE until a PREPARE of its id is seen.
    pub fn wait(&mut self, id: Bytes, u: Unresolved) {
        while self.waiting_len >= MAX_WAITING {
            let Some(old) = self.waiting_order.pop_front() else {
                break;
            };
            if let Some(v) = self.waiting.remove(&old) {
                self.waiting_len -= v.len();
            }
        }
        self.waiting_order.push_back(id.clone());
        self.waiting.entry(id).or_default().push(u);
        self.waiting_len += 1;
    }
}

/// Everything shared between the flows of one run.
#[derive(Debug, Default)]
pub struct Shared {
    nodes: HashMap<SocketAddr, Node>,
    pub schema: Schema,
}

impl Shared {
    pub fn node(&mut self, server: SocketAddr) -> &mut Node {
        self.nodes.entry(server).or_default()
    }
}

/// A handle to the shared state.
#[derive(Debug, Clone, Default)]
pub struct SharedState(Arc<Mutex<Shared>>);

impl SharedState {
    /// Locks the state. A panic elsewhere while holding the lock leaves data that is
    /// still consistent per operation, so a poisoned lock is simply taken over.
    pub fn lock(&self) -> MutexGuard<'_, Shared> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
