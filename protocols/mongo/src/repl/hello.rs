//! `hello` / `isMaster` replies: topology, and `lastWrite.majorityOpTime`,
//! one of the sources of the majority commit point.

use bson::oid::ObjectId;
use bson::{DateTime, RawBsonRef, RawDocument};

use super::optime::OpTime;
use crate::model::fields;
use crate::model::ModelError;

const CTX: &str = "hello reply";

/// `topologyVersion` (4.4+), changes whenever the server's role changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopologyVersion {
    pub process_id: ObjectId,
    pub counter: i64,
}

/// `lastWrite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LastWrite {
    pub op_time: Option<OpTime>,
    pub last_write_date: Option<DateTime>,
    pub majority_op_time: Option<OpTime>,
    pub majority_write_date: Option<DateTime>,
}

/// A hello or legacy isMaster reply.
#[derive(Debug, Clone, PartialEq)]
pub struct HelloReply<'a> {
    /// `isWritablePrimary`, or legacy `ismaster`.
    pub is_writable_primary: Option<bool>,
    pub secondary: Option<bool>,
    pub arbiter_only: Option<bool>,
    pub hidden: Option<bool>,
    pub set_name: Option<&'a str>,
    pub set_version: Option<i64>,
    pub hosts: Vec<&'a str>,
    pub passives: Vec<&'a str>,
    pub arbiters: Vec<&'a str>,
    pub primary: Option<&'a str>,
    pub me: Option<&'a str>,
    pub election_id: Option<ObjectId>,
    pub topology_version: Option<TopologyVersion>,
    pub last_write: Option<LastWrite>,
    pub max_wire_version: Option<i64>,
    pub min_wire_version: Option<i64>,
    pub compression: Vec<&'a str>,
    pub max_bson_object_size: Option<i64>,
    pub max_message_size_bytes: Option<i64>,
    pub max_write_batch_size: Option<i64>,
    pub logical_session_timeout_minutes: Option<i64>,
    pub connection_id: Option<i64>,
    /// `msg: "isdbgrid"` marks a mongos.
    pub msg: Option<&'a str>,
    pub ok: Option<bool>,
}

fn strings<'a>(d: &'a RawDocument, key: &str) -> Result<Vec<&'a str>, ModelError> {
    let mut out = Vec::new();
    if let Some(arr) = fields::opt_array(d, key, CTX)? {
        for v in arr.into_iter().flatten() {
            if let Some(s) = v.as_str() {
                out.push(s);
            }
        }
    }
    Ok(out)
}

fn date(d: &RawDocument, key: &str) -> Option<DateTime> {
    match d.get(key).ok().flatten() {
        Some(RawBsonRef::DateTime(t)) => Some(t),
        _ => None,
    }
}

impl<'a> HelloReply<'a> {
    /// Reads a hello/isMaster reply.
    pub fn parse(d: &'a RawDocument) -> Result<HelloReply<'a>, ModelError> {
        let is_writable_primary = match fields::opt_bool(d, "isWritablePrimary", CTX)? {
            Some(v) => Some(v),
            None => fields::opt_bool(d, "ismaster", CTX)?,
        };
        let topology_version = match fields::opt_doc(d, "topologyVersion", CTX)? {
            Some(tv) => match fields::get(tv, "processId", CTX)? {
                Some(RawBsonRef::ObjectId(process_id)) => Some(TopologyVersion {
                    process_id,
                    counter: fields::opt_i64(tv, "counter", CTX)?.unwrap_or(0),
                }),
                _ => None,
            },
            None => None,
        };
        let last_write = match fields::opt_doc(d, "lastWrite", CTX)? {
            Some(lw) => Some(LastWrite {
                op_time: OpTime::field(lw, "opTime", CTX)?,
                last_write_date: date(lw, "lastWriteDate"),
                majority_op_time: OpTime::field(lw, "majorityOpTime", CTX)?,
                majority_write_date: date(lw, "majorityWriteDate"),
            }),
            None => None,
        };
        Ok(HelloReply {
            is_writable_primary,
            secondary: fields::opt_bool(d, "secondary", CTX)?,
            arbiter_only: fields::opt_bool(d, "arbiterOnly", CTX)?,
            hidden: fields::opt_bool(d, "hidden", CTX)?,
            set_name: fields::opt_str(d, "setName", CTX)?,
            set_version: fields::opt_i64(d, "setVersion", CTX)?,
            hosts: strings(d, "hosts")?,
            passives: strings(d, "passives")?,
            arbiters: strings(d, "arbiters")?,
            primary: fields::opt_str(d, "primary", CTX)?,
            me: fields::opt_str(d, "me", CTX)?,
            election_id: match fields::get(d, "electionId", CTX)? {
                Some(RawBsonRef::ObjectId(o)) => Some(o),
                _ => None,
            },
            topology_version,
            last_write,
            max_wire_version: fields::opt_i64(d, "maxWireVersion", CTX)?,
            min_wire_version: fields::opt_i64(d, "minWireVersion", CTX)?,
            compression: strings(d, "compression")?,
            max_bson_object_size: fields::opt_i64(d, "maxBsonObjectSize", CTX)?,
            max_message_size_bytes: fields::opt_i64(d, "maxMessageSizeBytes", CTX)?,
            max_write_batch_size: fields::opt_i64(d, "maxWriteBatchSize", CTX)?,
            logical_session_timeout_minutes: fields::opt_i64(
                d,
                "logicalSessionTimeoutMinutes",
                CTX,
            )?,
            connection_id: fields::opt_i64(d, "connectionId", CTX)?,
            msg: fields::opt_str(d, "msg", CTX)?,
            ok: fields::get(d, "ok", CTX)?.and_then(fields::truthy),
        })
    }

    /// True for a replica-set member (a `setName` is present).
    pub fn is_replica_set(&self) -> bool {
        self.set_name.is_some()
    }
}
