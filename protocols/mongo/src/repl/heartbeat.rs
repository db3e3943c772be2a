//! `replSetHeartbeat` requests and replies (field names as in mongod's
//! `repl_set_heartbeat_args_v1` and `repl_set_heartbeat_response`).

use bson::{DateTime, RawBsonRef, RawDocument, Timestamp};

use super::optime::OpTime;
use crate::model::fields;
use crate::model::ModelError;

/// A heartbeat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRequest<'a> {
    /// The replica set name (the command's value).
    pub set_name: &'a str,
    pub config_version: Option<i64>,
    pub config_term: Option<i64>,
    /// `from`: the sender's host:port.
    pub from: Option<&'a str>,
    pub from_id: Option<i64>,
    pub term: Option<i64>,
    pub hbv: Option<i64>,
    pub check_empty: bool,
}

impl<'a> HeartbeatRequest<'a> {
    pub fn parse(d: &'a RawDocument) -> Result<HeartbeatRequest<'a>, ModelError> {
        const C: &str = "replSetHeartbeat";
        Ok(HeartbeatRequest {
            set_name: fields::req_str(d, "replSetHeartbeat", C)?,
            config_version: fields::opt_i64(d, "configVersion", C)?,
            config_term: fields::opt_i64(d, "configTerm", C)?,
            from: fields::opt_str(d, "from", C)?,
            from_id: fields::opt_i64(d, "fromId", C)?,
            term: fields::opt_i64(d, "term", C)?,
            hbv: fields::opt_i64(d, "hbv", C)?,
            check_empty: fields::opt_bool(d, "checkEmpty", C)?.unwrap_or(false),
        })
    }
}

/// A heartbeat reply.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatReply<'a> {
    pub ok: Option<bool>,
    pub set: Option<&'a str>,
    pub term: Option<i64>,
    /// Member state (1 primary, 2 secondary, 7 arbiter, ...).
    pub state: Option<i64>,
    /// `v`: config version.
    pub config_version: Option<i64>,
    pub config_term: Option<i64>,
    pub hbmsg: Option<&'a str>,
    pub syncing_to: Option<&'a str>,
    pub election_time: Option<Timestamp>,
    /// `opTime`: last applied.
    pub applied_op_time: Option<OpTime>,
    pub durable_op_time: Option<OpTime>,
    pub applied_wall_time: Option<DateTime>,
    pub durable_wall_time: Option<DateTime>,
    pub electable: Option<bool>,
    pub primary_id: Option<i64>,
    /// A newer replica set config was attached.
    pub config: Option<&'a RawDocument>,
}

fn date(d: &RawDocument, key: &str) -> Option<DateTime> {
    match d.get(key).ok().flatten() {
        Some(RawBsonRef::DateTime(t)) => Some(t),
        _ => None,
    }
}

impl<'a> HeartbeatReply<'a> {
    pub fn parse(d: &'a RawDocument) -> Result<HeartbeatReply<'a>, ModelError> {
        const C: &str = "replSetHeartbeat reply";
        Ok(HeartbeatReply {
            ok: fields::get(d, "ok", C)?.and_then(fields::truthy),
            set: fields::opt_str(d, "set", C)?,
            term: fields::opt_i64(d, "term", C)?,
            state: fields::opt_i64(d, "state", C)?,
            config_version: fields::opt_i64(d, "v", C)?,
            config_term: fields::opt_i64(d, "configTerm", C)?,
            hbmsg: fields::opt_str(d, "hbmsg", C)?,
            syncing_to: fields::opt_str(d, "syncingTo", C)?,
            election_time: fields::opt_timestamp(d, "electionTime", C)?,
            applied_op_time: OpTime::field(d, "opTime", C)?,
            durable_op_time: OpTime::field(d, "durableOpTime", C)?,
            applied_wall_time: date(d, "wallTime"),
            durable_wall_time: date(d, "durableWallTime"),
            electable: fields::opt_bool(d, "electable", C)?,
            primary_id: fields::opt_i64(d, "primaryId", C)?,
            config: fields::opt_doc(d, "config", C)?,
        })
    }
}
