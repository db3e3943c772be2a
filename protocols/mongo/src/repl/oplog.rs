//! Oplog entries (`local.oplog.rs` documents), field names as in mongod's
//! `oplog_entry.idl`: ts, t, h, v, op, ns, ui, o, o2, wall, lsid, txnNumber,
//! stmtId, prevOpTime, fromMigrate, partialTxn, prepare.
//!
//! When oplog entries are visible they are the authoritative, idempotent
//! form of a mutation, so this model is what the log stores for MongoDB.

use bson::{DateTime, RawBsonRef, RawDocument, Timestamp};

use super::diff::DocDiff;
use super::optime::OpTime;
use crate::model::fields::{self, docs_of};
use crate::model::ModelError;

const CTX: &str = "oplog entry";

/// The `op` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpType {
    Insert,
    Update,
    Delete,
    Command,
    Noop,
    /// `db` (database declaration, pre-4.0 masters).
    Db,
}

impl OpType {
    pub fn parse(s: &str) -> Option<OpType> {
        Some(match s {
            "i" => OpType::Insert,
            "u" => OpType::Update,
            "d" => OpType::Delete,
            "c" => OpType::Command,
            "n" => OpType::Noop,
            "db" => OpType::Db,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Insert => "i",
            OpType::Update => "u",
            OpType::Delete => "d",
            OpType::Command => "c",
            OpType::Noop => "n",
            OpType::Db => "db",
        }
    }
}

/// How an update entry describes its change.
#[derive(Debug, Clone, PartialEq)]
pub enum OplogUpdate<'a> {
    /// `{$v: 2, diff: {...}}` (5.0+).
    Diff(DocDiff<'a>),
    /// `{$set: ..., $unset: ...}` (with or without `$v: 1`).
    Modifiers(&'a RawDocument),
    /// A whole replacement document.
    Replacement(&'a RawDocument),
}

/// One oplog entry, borrowed.
#[derive(Debug, Clone, PartialEq)]
pub struct OplogEntry<'a> {
    pub raw: &'a RawDocument,
    pub ts: Option<Timestamp>,
    pub t: Option<i64>,
    /// Pre-4.2 hash.
    pub h: Option<i64>,
    pub v: Option<i64>,
    pub op: OpType,
    pub ns: &'a str,
    /// Collection UUID bytes.
    pub ui: Option<&'a [u8]>,
    pub o: &'a RawDocument,
    pub o2: Option<&'a RawDocument>,
    pub wall: Option<DateTime>,
    pub lsid: Option<&'a RawDocument>,
    pub txn_number: Option<i64>,
    /// `stmtId`: an int, or an array of ints for batched writes.
    pub stmt_id: Option<RawBsonRef<'a>>,
    pub prev_op_time: Option<OpTime>,
    pub from_migrate: bool,
    pub partial_txn: bool,
    pub prepare: bool,
}

/// `partialTxn` or `prepare` of a transaction's `applyOps` entry. mongod writes them
/// inside the command object `o` (`ApplyOpsCommandInfoBase` in `apply_ops.idl`; its
/// `isPartialTransaction`/`shouldPrepare` read `getObject()[…]`), not at the top level
/// of the entry, and only an `applyOps` has them.
fn applyops_flag(d: &RawDocument, key: &str) -> Result<bool, ModelError> {
    match fields::opt_doc(d, "o", CTX)? {
        Some(o) if fields::first_key(o) == Some("applyOps") => {
            Ok(fields::opt_bool(o, key, CTX)?.unwrap_or(false))
        }
        _ => Ok(false),
    }
}

impl<'a> OplogEntry<'a> {
    /// Reads an entry. Entries inside `applyOps` have no `ts`/`t`/`wall`.
    pub fn parse(d: &'a RawDocument) -> Result<OplogEntry<'a>, ModelError> {
        let op_str = fields::req_str(d, "op", CTX)?;
        let op = OpType::parse(op_str).ok_or_else(|| ModelError::Invalid {
            context: CTX,
            reason: format!("unknown op `{op_str}`"),
        })?;
        let ui = match fields::get(d, "ui", CTX)? {
            Some(RawBsonRef::Binary(b)) => Some(b.bytes),
            _ => None,
        };
        Ok(OplogEntry {
            raw: d,
            ts: fields::opt_timestamp(d, "ts", CTX)?,
            t: fields::opt_i64(d, "t", CTX)?,
            h: fields::opt_i64(d, "h", CTX)?,
            v: fields::opt_i64(d, "v", CTX)?,
            op,
            ns: fields::opt_str(d, "ns", CTX)?.unwrap_or(""),
            ui,
            o: fields::req_doc(d, "o", CTX)?,
            o2: fields::opt_doc(d, "o2", CTX)?,
            wall: match fields::get(d, "wall", CTX)? {
                Some(RawBsonRef::DateTime(t)) => Some(t),
                _ => None,
            },
            lsid: fields::opt_doc(d, "lsid", CTX)?,
            txn_number: fields::opt_i64(d, "txnNumber", CTX)?,
            stmt_id: fields::get(d, "stmtId", CTX)?,
            prev_op_time: OpTime::field(d, "prevOpTime", CTX)?,
            from_migrate: fields::opt_bool(d, "fromMigrate", CTX)?.unwrap_or(false),
            partial_txn: applyops_flag(d, "partialTxn")?,
            prepare: applyops_flag(d, "prepare")?,
        })
    }

    /// `{ts, t}` of the entry, if it has a timestamp.
    pub fn op_time(&self) -> Option<OpTime> {
        self.ts.map(|ts| OpTime {
            ts,
            t: self.t.unwrap_or(OpTime::UNINITIALIZED_TERM),
        })
    }

    /// The `_id` of the affected document: `o._id` for inserts and deletes,
    /// `o2._id` for updates.
    pub fn document_id(&self) -> Option<RawBsonRef<'a>> {
        match self.op {
            OpType::Insert | OpType::Delete => self.o.get("_id").ok().flatten(),
            OpType::Update => self.o2.and_then(|o2| o2.get("_id").ok().flatten()),
            _ => None,
        }
    }

    /// The change of an update entry.
    pub fn update(&self) -> Result<Option<OplogUpdate<'a>>, ModelError> {
        if self.op != OpType::Update {
            return Ok(None);
        }
        let version = fields::get(self.o, "$v", CTX)?.and_then(fields::as_i64);
        if version == Some(2) {
            let diff = fields::req_doc(self.o, "diff", CTX)?;
            return Ok(Some(OplogUpdate::Diff(DocDiff::parse(diff)?)));
        }
        let modifiers = self
            .o
            .iter_elements()
            .flatten()
            .any(|e| e.key().as_str().starts_with('$') && e.key().as_str() != "$v");
        Ok(Some(if modifiers {
            OplogUpdate::Modifiers(self.o)
        } else {
            OplogUpdate::Replacement(self.o)
        }))
    }

    /// The command name of a `c` entry (`create`, `drop`, `applyOps`, ...).
    pub fn command_name(&self) -> Option<&'a str> {
        (self.op == OpType::Command)
            .then(|| fields::first_key(self.o))
            .flatten()
    }

    /// The operations of an `applyOps` command entry (transactions).
    pub fn apply_ops(&self) -> Result<Vec<OplogEntry<'a>>, ModelError> {
        if self.command_name() != Some("applyOps") {
            return Ok(Vec::new());
        }
        let arr = fields::opt_array(self.o, "applyOps", CTX)?.ok_or(ModelError::Missing {
            context: CTX,
            field: "applyOps",
        })?;
        docs_of(arr, "applyOps", CTX)?
            .into_iter()
            .map(OplogEntry::parse)
            .collect()
    }
}
