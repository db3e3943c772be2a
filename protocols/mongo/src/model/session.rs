//! Session, transaction and durability arguments shared by all commands.
//!
//! These decide outcomes: `lsid`+`txnNumber`+`stmtId` identify a retryable
//! write across retries, `autocommit:false` holds a write until its
//! transaction commits, and `writeConcern.w` says whether an
//! acknowledgement already means majority-committed.

use bson::{RawArray, RawBsonRef, RawDocument, Timestamp};

use super::fields::{self, as_i64};
use super::ModelError;

const CTX: &str = "session arguments";

/// The `w` of a write concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum W<'a> {
    /// Number of nodes (0 = unacknowledged).
    Nodes(i64),
    /// `"majority"`.
    Majority,
    /// A tag set name.
    Tag(&'a str),
}

/// `writeConcern` (or the top-level fields of `getlasterror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteConcern<'a> {
    pub w: Option<W<'a>>,
    pub j: Option<bool>,
    pub fsync: Option<bool>,
    pub wtimeout: Option<i64>,
}

impl<'a> WriteConcern<'a> {
    /// Reads `w`, `j`, `fsync`, `wtimeout` (or `wtimeoutMS`) from `doc`.
    pub fn parse(doc: &'a RawDocument) -> Result<WriteConcern<'a>, ModelError> {
        let w = match fields::get(doc, "w", "writeConcern")? {
            None | Some(RawBsonRef::Null) => None,
            Some(RawBsonRef::String("majority")) => Some(W::Majority),
            Some(RawBsonRef::String(s)) => Some(W::Tag(s)),
            Some(v) => Some(W::Nodes(as_i64(v).ok_or(ModelError::WrongType {
                context: "writeConcern",
                field: "w".into(),
                expected: "number or string",
                found: v.element_type(),
            })?)),
        };
        let wtimeout = match fields::opt_i64(doc, "wtimeout", "writeConcern")? {
            Some(v) => Some(v),
            None => fields::opt_i64(doc, "wtimeoutMS", "writeConcern")?,
        };
        Ok(WriteConcern {
            w,
            j: fields::opt_bool(doc, "j", "writeConcern")?,
            fsync: fields::opt_bool(doc, "fsync", "writeConcern")?,
            wtimeout,
        })
    }

    /// True for `w:0`: nobody will tell whether the write happened.
    pub fn is_unacknowledged(&self) -> bool {
        matches!(self.w, Some(W::Nodes(0))) && self.j != Some(true)
    }

    /// True when an acknowledgement implies majority commit.
    pub fn is_majority(&self) -> bool {
        matches!(self.w, Some(W::Majority))
    }
}

/// `readConcern`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadConcern<'a> {
    pub level: Option<&'a str>,
    pub after_cluster_time: Option<Timestamp>,
    pub at_cluster_time: Option<Timestamp>,
}

/// Transaction control commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionOp {
    Commit,
    Abort,
}

/// Session identity, transaction state and durability of one command.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionInfo<'a> {
    /// `lsid.id` (a UUID, binary subtype 4), as raw bytes.
    pub lsid: Option<&'a [u8]>,
    /// `lsid.uid` (SHA-256 of the user, present in internal traffic).
    pub lsid_uid: Option<&'a [u8]>,
    pub txn_number: Option<i64>,
    /// `stmtId` (single statement id).
    pub stmt_id: Option<i32>,
    /// `stmtIds` (one per statement, 4.4+ internal form).
    pub stmt_ids: Option<&'a RawArray>,
    pub autocommit: Option<bool>,
    pub start_transaction: bool,
    pub write_concern: Option<WriteConcern<'a>>,
    pub read_concern: Option<ReadConcern<'a>>,
    /// `$db`.
    pub db: Option<&'a str>,
    /// `$clusterTime.clusterTime` gossiped by the client.
    pub cluster_time: Option<Timestamp>,
}

impl<'a> SessionInfo<'a> {
    /// Reads the generic arguments from a command body.
    pub fn parse(body: &'a RawDocument) -> Result<SessionInfo<'a>, ModelError> {
        let mut s = SessionInfo::default();
        if let Some(lsid) = fields::opt_doc(body, "lsid", CTX)? {
            s.lsid = binary(lsid, "id")?;
            s.lsid_uid = binary(lsid, "uid")?;
        }
        s.txn_number = fields::opt_i64(body, "txnNumber", CTX)?;
        s.stmt_id = fields::opt_i64(body, "stmtId", CTX)?.map(|v| v as i32);
        s.stmt_ids = fields::opt_array(body, "stmtIds", CTX)?;
        s.autocommit = fields::opt_bool(body, "autocommit", CTX)?;
        s.start_transaction = fields::opt_bool(body, "startTransaction", CTX)?.unwrap_or(false);
        if let Some(wc) = fields::opt_doc(body, "writeConcern", CTX)? {
            s.write_concern = Some(WriteConcern::parse(wc)?);
        }
        if let Some(rc) = fields::opt_doc(body, "readConcern", CTX)? {
            s.read_concern = Some(ReadConcern {
                level: fields::opt_str(rc, "level", "readConcern")?,
                after_cluster_time: fields::opt_timestamp(rc, "afterClusterTime", "readConcern")?,
                at_cluster_time: fields::opt_timestamp(rc, "atClusterTime", "readConcern")?,
            });
        }
        s.db = fields::opt_str(body, "$db", CTX)?;
        if let Some(ct) = fields::opt_doc(body, "$clusterTime", CTX)? {
            s.cluster_time = fields::opt_timestamp(ct, "clusterTime", "$clusterTime")?;
        }
        Ok(s)
    }

    /// True for a statement inside a multi-statement transaction.
    pub fn in_transaction(&self) -> bool {
        self.autocommit == Some(false)
    }

    /// True for a retryable write (session + transaction number, outside a transaction).
    pub fn is_retryable_write(&self) -> bool {
        self.lsid.is_some() && self.txn_number.is_some() && !self.in_transaction()
    }
}

fn binary<'a>(doc: &'a RawDocument, key: &str) -> Result<Option<&'a [u8]>, ModelError> {
    match fields::get(doc, key, "lsid")? {
        None => Ok(None),
        Some(RawBsonRef::Binary(b)) => Ok(Some(b.bytes)),
        Some(v) => Err(ModelError::WrongType {
            context: "lsid",
            field: key.to_owned(),
            expected: "binary",
            found: v.element_type(),
        }),
    }
}
