//! `$replData` and `$oplogQueryData`: the commit point as seen by replication.
//!
//! `lastOpCommitted` is the majority commit point; a write whose optime is
//! at or below it is durable (ARCHITECTURE.md, MongoDB outcome rules).

use bson::oid::ObjectId;
use bson::{DateTime, RawBsonRef, RawDocument};

use super::optime::OpTime;
use crate::model::fields;
use crate::model::ModelError;

fn date(d: &RawDocument, key: &str, ctx: &'static str) -> Result<Option<DateTime>, ModelError> {
    Ok(match fields::get(d, key, ctx)? {
        Some(RawBsonRef::DateTime(t)) => Some(t),
        _ => None,
    })
}

/// `$replData` metadata attached to replies sent to replica-set members.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplData {
    pub term: Option<i64>,
    pub last_op_committed: Option<OpTime>,
    pub last_committed_wall: Option<DateTime>,
    pub last_op_visible: Option<OpTime>,
    pub config_version: Option<i64>,
    pub config_term: Option<i64>,
    pub replica_set_id: Option<ObjectId>,
    pub primary_index: Option<i64>,
    pub sync_source_index: Option<i64>,
    pub is_primary: Option<bool>,
}

impl ReplData {
    pub fn parse(d: &RawDocument) -> Result<ReplData, ModelError> {
        const C: &str = "$replData";
        Ok(ReplData {
            term: fields::opt_i64(d, "term", C)?,
            last_op_committed: OpTime::field(d, "lastOpCommitted", C)?,
            last_committed_wall: date(d, "lastCommittedWall", C)?,
            last_op_visible: OpTime::field(d, "lastOpVisible", C)?,
            config_version: fields::opt_i64(d, "configVersion", C)?,
            config_term: fields::opt_i64(d, "configTerm", C)?,
            replica_set_id: match fields::get(d, "replicaSetId", C)? {
                Some(RawBsonRef::ObjectId(o)) => Some(o),
                _ => None,
            },
            primary_index: fields::opt_i64(d, "primaryIndex", C)?,
            sync_source_index: fields::opt_i64(d, "syncSourceIndex", C)?,
            is_primary: fields::opt_bool(d, "isPrimary", C)?,
        })
    }
}

/// `$oplogQueryData`, attached to oplog find/getMore replies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OplogQueryData {
    pub last_op_committed: Option<OpTime>,
    pub last_committed_wall: Option<DateTime>,
    pub last_op_applied: Option<OpTime>,
    pub rbid: Option<i64>,
    pub primary_index: Option<i64>,
    pub sync_source_index: Option<i64>,
    pub sync_source_host: Option<String>,
}

impl OplogQueryData {
    pub fn parse(d: &RawDocument) -> Result<OplogQueryData, ModelError> {
        const C: &str = "$oplogQueryData";
        Ok(OplogQueryData {
            last_op_committed: OpTime::field(d, "lastOpCommitted", C)?,
            last_committed_wall: date(d, "lastCommittedWall", C)?,
            last_op_applied: OpTime::field(d, "lastOpApplied", C)?,
            rbid: fields::opt_i64(d, "rbid", C)?,
            primary_index: fields::opt_i64(d, "primaryIndex", C)?,
            sync_source_index: fields::opt_i64(d, "syncSourceIndex", C)?,
            sync_source_host: fields::opt_str(d, "syncSourceHost", C)?.map(str::to_owned),
        })
    }
}
