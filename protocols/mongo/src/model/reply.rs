//! Replies: success, errors and the durability evidence outcome rules need.

use bson::oid::ObjectId;
use bson::{RawArray, RawBsonRef, RawDocument, Timestamp};

use super::fields::{self, as_i64, docs_of};
use super::ModelError;
use crate::message::{Body, Message};
use crate::repl::cursor::CursorReply;
use crate::repl::metadata::{OplogQueryData, ReplData};
use crate::repl::optime::OpTime;

const CTX: &str = "reply";

/// One entry of `writeErrors`.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteError<'a> {
    pub index: i64,
    pub code: i32,
    pub code_name: Option<&'a str>,
    pub errmsg: Option<&'a str>,
}

/// `writeConcernError`: applied on the primary, not (yet) at the requested `w`.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteConcernError<'a> {
    pub code: i32,
    pub code_name: Option<&'a str>,
    pub errmsg: Option<&'a str>,
    pub err_info: Option<&'a RawDocument>,
}

/// One entry of `upserted`.
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted<'a> {
    pub index: i64,
    pub id: RawBsonRef<'a>,
}

/// findAndModify's `lastErrorObject`.
#[derive(Debug, Clone, PartialEq)]
pub struct LastErrorObject<'a> {
    pub n: Option<i64>,
    pub updated_existing: Option<bool>,
    pub upserted: Option<RawBsonRef<'a>>,
}

/// A command reply (or a getlasterror reply, or the first OP_REPLY document).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<'a> {
    pub doc: &'a RawDocument,
    /// `ok` as a boolean (`None` for replies without it: legacy query results).
    pub ok: Option<bool>,
    pub code: Option<i32>,
    pub code_name: Option<&'a str>,
    /// `errmsg`, or `$err` of a legacy query failure.
    pub errmsg: Option<&'a str>,
    pub error_labels: Vec<&'a str>,
    pub n: Option<i64>,
    pub n_modified: Option<i64>,
    pub upserted: Vec<Upserted<'a>>,
    pub write_errors: Vec<WriteError<'a>>,
    pub write_concern_error: Option<WriteConcernError<'a>>,
    /// The write's optime (replica sets); old servers send a bare timestamp.
    pub op_time: Option<OpTime>,
    pub election_id: Option<ObjectId>,
    pub operation_time: Option<Timestamp>,
    pub cluster_time: Option<Timestamp>,
    pub last_error_object: Option<LastErrorObject<'a>>,
    /// findAndModify's `value` (document or null).
    pub value: Option<RawBsonRef<'a>>,
    /// getlasterror's `err` (`None` when null or absent).
    pub err: Option<&'a str>,
    /// getlasterror's `wtimeout: true`.
    pub wtimeout: bool,
    /// getlasterror's `updatedExisting`.
    pub updated_existing: Option<bool>,
    pub repl_data: Option<ReplData>,
    pub oplog_query_data: Option<OplogQueryData>,
    pub cursor: Option<CursorReply<'a>>,
}

fn code_of(d: &RawDocument) -> Result<Option<i32>, ModelError> {
    Ok(fields::opt_i64(d, "code", CTX)?.map(|c| c as i32))
}

impl<'a> Reply<'a> {
    /// Reads a reply document.
    pub fn parse(doc: &'a RawDocument) -> Result<Reply<'a>, ModelError> {
        let ok = fields::get(doc, "ok", CTX)?.and_then(fields::truthy);
        let errmsg = match fields::opt_str(doc, "errmsg", CTX)? {
            Some(e) => Some(e),
            None => fields::opt_str(doc, "$err", CTX)?,
        };
        let mut error_labels = Vec::new();
        if let Some(labels) = fields::opt_array(doc, "errorLabels", CTX)? {
            for l in labels.into_iter().flatten() {
                if let Some(s) = l.as_str() {
                    error_labels.push(s);
                }
            }
        }
        let mut upserted = Vec::new();
        let mut value_upserted = None;
        match fields::get(doc, "upserted", CTX)? {
            Some(RawBsonRef::Array(arr)) => {
                for d in docs_of(arr, "upserted", CTX)? {
                    upserted.push(Upserted {
                        index: fields::opt_i64(d, "index", "upserted")?.unwrap_or(0),
                        id: fields::get(d, "_id", "upserted")?.unwrap_or(RawBsonRef::Null),
                    });
                }
            }
            // getlasterror: `upserted: <_id>` of a single upsert
            Some(v) => value_upserted = Some(v),
            None => {}
        }
        if let Some(id) = value_upserted {
            upserted.push(Upserted { index: 0, id });
        }
        let mut write_errors = Vec::new();
        if let Some(arr) = fields::opt_array(doc, "writeErrors", CTX)? {
            for d in docs_of(arr, "writeErrors", CTX)? {
                write_errors.push(WriteError {
                    index: fields::opt_i64(d, "index", "writeErrors")?.unwrap_or(0),
                    code: code_of(d)?.unwrap_or(0),
                    code_name: fields::opt_str(d, "codeName", "writeErrors")?,
                    errmsg: fields::opt_str(d, "errmsg", "writeErrors")?,
                });
            }
        }
        let write_concern_error = match fields::opt_doc(doc, "writeConcernError", CTX)? {
            Some(d) => Some(WriteConcernError {
                code: code_of(d)?.unwrap_or(0),
                code_name: fields::opt_str(d, "codeName", "writeConcernError")?,
                errmsg: fields::opt_str(d, "errmsg", "writeConcernError")?,
                err_info: fields::opt_doc(d, "errInfo", "writeConcernError")?,
            }),
            None => None,
        };
        let op_time = match fields::get(doc, "opTime", CTX)? {
            Some(v) => OpTime::from_value(v)?,
            None => None,
        };
        let election_id = match fields::get(doc, "electionId", CTX)? {
            Some(RawBsonRef::ObjectId(o)) => Some(o),
            _ => None,
        };
        let cluster_time = match fields::opt_doc(doc, "$clusterTime", CTX)? {
            Some(ct) => fields::opt_timestamp(ct, "clusterTime", "$clusterTime")?,
            None => None,
        };
        let last_error_object = match fields::opt_doc(doc, "lastErrorObject", CTX)? {
            Some(d) => Some(LastErrorObject {
                n: fields::opt_i64(d, "n", "lastErrorObject")?,
                updated_existing: fields::opt_bool(d, "updatedExisting", "lastErrorObject")?,
                upserted: fields::get(d, "upserted", "lastErrorObject")?,
            }),
            None => None,
        };
        let err = match fields::get(doc, "err", CTX)? {
            Some(RawBsonRef::String(s)) => Some(s),
            _ => None,
        };
        // requests carry `$replData: 1` to ask for it; only a document is data
        let repl_data = match fields::get(doc, "$replData", CTX)? {
            Some(RawBsonRef::Document(d)) => Some(ReplData::parse(d)?),
            _ => None,
        };
        let oplog_query_data = match fields::opt_doc(doc, "$oplogQueryData", CTX)? {
            Some(d) => Some(OplogQueryData::parse(d)?),
            None => None,
        };
        let cursor = match fields::opt_doc(doc, "cursor", CTX)? {
            Some(d) => Some(CursorReply::parse(d)?),
            None => None,
        };
        Ok(Reply {
            doc,
            ok,
            code: code_of(doc)?,
            code_name: fields::opt_str(doc, "codeName", CTX)?,
            errmsg,
            error_labels,
            n: fields::get(doc, "n", CTX)?.and_then(as_i64),
            n_modified: fields::opt_i64(doc, "nModified", CTX)?,
            upserted,
            write_errors,
            write_concern_error,
            op_time,
            election_id,
            operation_time: fields::opt_timestamp(doc, "operationTime", CTX)?,
            cluster_time,
            last_error_object,
            value: fields::get(doc, "value", CTX)?,
            err,
            wtimeout: fields::opt_bool(doc, "wtimeout", CTX)?.unwrap_or(false),
            updated_existing: fields::opt_bool(doc, "updatedExisting", CTX)?,
            repl_data,
            oplog_query_data,
            cursor,
        })
    }

    /// True when the reply carries this error label.
    pub fn has_label(&self, label: &str) -> bool {
        self.error_labels.contains(&label)
    }

    /// `ok:1` with no write errors and no write concern error.
    pub fn is_clean_success(&self) -> bool {
        self.ok == Some(true)
            && self.write_errors.is_empty()
            && self.write_concern_error.is_none()
            && self.err.is_none()
    }

    /// The error label that leaves a transaction commit in doubt.
    pub fn unknown_commit_result(&self) -> bool {
        self.has_label("UnknownTransactionCommitResult")
    }

    /// The batch of a cursor reply, if any.
    pub fn batch(&self) -> Option<&'a RawArray> {
        self.cursor.as_ref().map(|c| c.batch)
    }
}

impl Message {
    /// The reply document of a server message: OP_MSG body, the first
    /// OP_REPLY document, OP_COMMANDREPLY's commandReply.
    pub fn reply_document(&self) -> Option<&RawDocument> {
        match &self.body {
            Body::Msg(m) => Some(m.body.raw()),
            Body::Reply(r) => r.documents.iter().next(),
            Body::CommandReply(c) => Some(c.command_reply.raw()),
            _ => None,
        }
    }

    /// The reply model of a server message.
    pub fn reply(&self) -> Option<Result<Reply<'_>, ModelError>> {
        self.reply_document().map(Reply::parse)
    }
}
