//! The write model: one [`WriteCommand`] per request, one
//! [`WriteStatement`] per document or statement, as `write` lines need.
//!
//! Every wire form maps here: OP_MSG/OP_QUERY/OP_COMMAND write commands,
//! `bulkWrite` (8.0), `applyOps`, and legacy OP_INSERT/OP_UPDATE/OP_DELETE.
//! `index` is the statement's position in its command, which is what
//! `writeErrors[].index` refers to.

use std::fmt;

use bson::{RawArray, RawBsonRef, RawDocument};

use super::session::SessionInfo;
use crate::repl::oplog::OplogEntry;

/// `db.collection`, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Namespace<'a> {
    pub db: &'a str,
    pub coll: &'a str,
}

impl<'a> Namespace<'a> {
    /// Splits `db.collection` at the first dot (collections may contain dots).
    pub fn parse(full: &'a str) -> Namespace<'a> {
        match full.split_once('.') {
            Some((db, coll)) => Namespace { db, coll },
            None => Namespace { db: full, coll: "" },
        }
    }
}

impl fmt::Display for Namespace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.coll.is_empty() {
            f.write_str(self.db)
        } else {
            write!(f, "{}.{}", self.db, self.coll)
        }
    }
}

/// The command a write statement came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteKind {
    Insert,
    Update,
    Delete,
    FindAndModify,
    BulkWrite,
    ApplyOps,
}

/// What an update does with the matched document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UpdateSpec<'a> {
    /// Update operators (`$set`, ...): first key starts with `$`.
    Modifiers(&'a RawDocument),
    /// A replacement document.
    Replacement(&'a RawDocument),
    /// An aggregation pipeline (4.2+).
    Pipeline(&'a RawArray),
}

impl<'a> UpdateSpec<'a> {
    /// Classifies a `u` / `update` / `updateMods` value.
    pub fn from_value(v: RawBsonRef<'a>) -> Option<UpdateSpec<'a>> {
        match v {
            RawBsonRef::Document(d) => {
                let modifiers = super::fields::first_key(d).is_some_and(|k| k.starts_with('$'));
                Some(if modifiers {
                    UpdateSpec::Modifiers(d)
                } else {
                    UpdateSpec::Replacement(d)
                })
            }
            RawBsonRef::Array(a) => Some(UpdateSpec::Pipeline(a)),
            _ => None,
        }
    }
}

/// One update statement.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateStatement<'a> {
    pub q: &'a RawDocument,
    pub u: UpdateSpec<'a>,
    pub upsert: bool,
    pub multi: bool,
    pub array_filters: Option<&'a RawArray>,
    pub collation: Option<&'a RawDocument>,
    pub hint: Option<RawBsonRef<'a>>,
    /// `sort` (8.0, single-document updates).
    pub sort: Option<&'a RawDocument>,
    /// `upsertSupplied` / `c` (let constants) are not modelled.
    pub raw: &'a RawDocument,
}

/// One delete statement.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteStatement<'a> {
    pub q: &'a RawDocument,
    /// 0 = all matching documents, 1 = one.
    pub limit: i64,
    pub collation: Option<&'a RawDocument>,
    pub hint: Option<RawBsonRef<'a>>,
}

/// `findAndModify`.
#[derive(Debug, Clone, PartialEq)]
pub struct FindAndModify<'a> {
    pub query: Option<&'a RawDocument>,
    pub sort: Option<&'a RawDocument>,
    /// Set unless `remove`.
    pub update: Option<UpdateSpec<'a>>,
    pub remove: bool,
    pub upsert: bool,
    /// Return the new document instead of the old one.
    pub new: bool,
    pub fields: Option<&'a RawDocument>,
    pub array_filters: Option<&'a RawArray>,
    pub collation: Option<&'a RawDocument>,
    pub hint: Option<RawBsonRef<'a>>,
}

/// The operation of one statement.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementOp<'a> {
    Insert {
        document: &'a RawDocument,
    },
    Update(UpdateStatement<'a>),
    Delete(DeleteStatement<'a>),
    FindAndModify(FindAndModify<'a>),
    /// An oplog-format operation (applyOps).
    Oplog(OplogEntry<'a>),
}

impl StatementOp<'_> {
    /// Short name for `write` lines: insert, update, delete, findAndModify, applyOps.
    pub fn name(&self) -> &'static str {
        match self {
            StatementOp::Insert { .. } => "insert",
            StatementOp::Update(_) => "update",
            StatementOp::Delete(_) => "delete",
            StatementOp::FindAndModify(_) => "findAndModify",
            StatementOp::Oplog(_) => "applyOps",
        }
    }
}

/// One statement of a write command.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteStatement<'a> {
    /// Position in the command (matches `writeErrors[].index`).
    pub index: usize,
    pub ns: Namespace<'a>,
    pub op: StatementOp<'a>,
}

impl<'a> WriteStatement<'a> {
    /// The statement's filter (`q`, `filter`, `query`), when it has one:
    /// the `key` of a `write` line when no `_id` is known.
    pub fn filter(&self) -> Option<&'a RawDocument> {
        match &self.op {
            StatementOp::Insert { .. } => None,
            StatementOp::Update(u) => Some(u.q),
            StatementOp::Delete(d) => Some(d.q),
            StatementOp::FindAndModify(f) => f.query,
            StatementOp::Oplog(o) => match o.op {
                crate::repl::oplog::OpType::Update => o.o2,
                crate::repl::oplog::OpType::Delete => Some(o.o),
                _ => None,
            },
        }
    }

    /// The `_id` when the statement pins one: the inserted document's `_id`,
    /// or an equality on `_id` in the filter. This is the `key` of `write` lines.
    pub fn id(&self) -> Option<RawBsonRef<'a>> {
        let from_filter = |q: &'a RawDocument| match q.get("_id").ok().flatten() {
            Some(RawBsonRef::Document(d))
                if super::fields::first_key(d).is_some_and(|k| k.starts_with('$')) =>
            {
                d.get("$eq").ok().flatten()
            }
            other => other,
        };
        match &self.op {
            StatementOp::Insert { document } => document.get("_id").ok().flatten(),
            StatementOp::Update(u) => from_filter(u.q),
            StatementOp::Delete(d) => from_filter(d.q),
            StatementOp::FindAndModify(f) => f.query.and_then(from_filter),
            StatementOp::Oplog(o) => o.document_id(),
        }
    }
}

/// A write request.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteCommand<'a> {
    pub kind: WriteKind,
    pub db: &'a str,
    /// `ordered` (default true): statements after the first error are not applied.
    pub ordered: bool,
    pub bypass_document_validation: bool,
    pub statements: Vec<WriteStatement<'a>>,
    pub session: SessionInfo<'a>,
    /// Came as OP_INSERT/OP_UPDATE/OP_DELETE: acknowledged only by a
    /// following `getlasterror` on the same connection.
    pub legacy: bool,
}
