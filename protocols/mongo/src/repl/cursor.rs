//! Oplog fetching: `find`/`getMore` on `local.oplog.rs` and cursor replies
//! (`cursor.firstBatch` / `cursor.nextBatch`).

use bson::{RawArray, RawDocument, Timestamp};

use super::oplog::OplogEntry;
use super::optime::OpTime;
use crate::model::fields::{self, docs_of};
use crate::model::{Command, ModelError};

/// A `find` on the oplog by a syncing secondary.
#[derive(Debug, Clone, PartialEq)]
pub struct OplogFind<'a> {
    pub filter: Option<&'a RawDocument>,
    /// Lower bound of `filter.ts.$gte` (or `$gt`), where syncing starts.
    pub from_ts: Option<Timestamp>,
    pub tailable: bool,
    pub await_data: bool,
    pub batch_size: Option<i64>,
    pub term: Option<i64>,
}

/// A `getMore` request.
#[derive(Debug, Clone, PartialEq)]
pub struct GetMoreRequest<'a> {
    pub cursor_id: i64,
    pub collection: Option<&'a str>,
    pub batch_size: Option<i64>,
    pub max_time_ms: Option<i64>,
    pub term: Option<i64>,
    pub last_known_committed_op_time: Option<OpTime>,
}

/// The `cursor` sub-document of a reply.
#[derive(Debug, Clone, PartialEq)]
pub struct CursorReply<'a> {
    pub id: i64,
    pub ns: Option<&'a str>,
    /// `firstBatch` or `nextBatch`.
    pub batch: &'a RawArray,
    /// True for `firstBatch`.
    pub first: bool,
    pub post_batch_resume_token: Option<&'a RawDocument>,
}

impl<'a> CursorReply<'a> {
    pub fn parse(d: &'a RawDocument) -> Result<CursorReply<'a>, ModelError> {
        const C: &str = "cursor";
        let (batch, first) = match fields::opt_array(d, "firstBatch", C)? {
            Some(b) => (b, true),
            None => match fields::opt_array(d, "nextBatch", C)? {
                Some(b) => (b, false),
                None => {
                    return Err(ModelError::Missing {
                        context: C,
                        field: "firstBatch",
                    })
                }
            },
        };
        Ok(CursorReply {
            id: fields::opt_i64(d, "id", C)?.unwrap_or(0),
            ns: fields::opt_str(d, "ns", C)?,
            batch,
            first,
            post_batch_resume_token: fields::opt_doc(d, "postBatchResumeToken", C)?,
        })
    }

    /// True when the batch comes from the oplog.
    pub fn is_oplog(&self) -> bool {
        self.ns == Some("local.oplog.rs")
    }

    /// The batch decoded as oplog entries.
    pub fn oplog_entries(&self) -> Result<Vec<OplogEntry<'a>>, ModelError> {
        docs_of(self.batch, "batch", "cursor")?
            .into_iter()
            .map(OplogEntry::parse)
            .collect()
    }
}

impl<'a> Command<'a> {
    /// A `find` on `local.oplog.rs`.
    pub fn oplog_find(&self) -> Result<Option<OplogFind<'a>>, ModelError> {
        if self.name != "find" || self.db != "local" || self.collection() != Some("oplog.rs") {
            return Ok(None);
        }
        const C: &str = "oplog find";
        let b = self.body;
        let filter = fields::opt_doc(b, "filter", C)?;
        let from_ts = filter
            .and_then(|f| fields::opt_doc(f, "ts", C).ok().flatten())
            .and_then(|ts| {
                fields::opt_timestamp(ts, "$gte", C)
                    .ok()
                    .flatten()
                    .or_else(|| fields::opt_timestamp(ts, "$gt", C).ok().flatten())
            });
        Ok(Some(OplogFind {
            filter,
            from_ts,
            tailable: fields::opt_bool(b, "tailable", C)?.unwrap_or(false),
            await_data: fields::opt_bool(b, "awaitData", C)?.unwrap_or(false),
            batch_size: fields::opt_i64(b, "batchSize", C)?,
            term: fields::opt_i64(b, "term", C)?,
        }))
    }

    /// A `getMore`.
    pub fn get_more(&self) -> Result<Option<GetMoreRequest<'a>>, ModelError> {
        if self.name != "getMore" {
            return Ok(None);
        }
        const C: &str = "getMore";
        let b = self.body;
        let cursor_id = fields::opt_i64(b, "getMore", C)?.ok_or(ModelError::Missing {
            context: C,
            field: "getMore",
        })?;
        Ok(Some(GetMoreRequest {
            cursor_id,
            collection: fields::opt_str(b, "collection", C)?,
            batch_size: fields::opt_i64(b, "batchSize", C)?,
            max_time_ms: fields::opt_i64(b, "maxTimeMS", C)?,
            term: fields::opt_i64(b, "term", C)?,
            last_known_committed_op_time: OpTime::field(b, "lastKnownCommittedOpTime", C)?,
        }))
    }
}
