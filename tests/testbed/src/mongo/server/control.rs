//! The replica set's control routes: failure injection and ground truth
//! as JSON, for tests in other languages and capture scripts. Served over
//! HTTP by the generic [`crate::control`] server (see [`handler`]); the
//! routing itself is [`handle`], usable and tested without HTTP.
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/members` | each member: up, state, term, known primary, last applied, commit point, rbid |
//! | GET | `/primary` | `{primary, term}` (`primary` null while there is none) |
//! | POST | `/members/{i}/stop`, `/start`, `/partition`, `/heal` | crash, restart, cut off, reconnect member i |
//! | POST | `/members/{i}/cut/{j}` | cut one link |
//! | POST | `/stepdown` | the primary steps down (`{"secs": n}`, default 60) |
//! | POST | `/wait-primary` | waits (`{"timeout_ms": n}`, default 60000) for a primary all reachable members know |
//! | GET | `/members/{i}/oplog`, `/members/{i}/data` | member i's oplog entries / collections |
//! | GET | `/commit-point-history`, `/elections`, `/rollbacks`, `/events` | recorded history |
//! | GET | `/committed-state` | the majority-committed state at the newest commit point |
//! | POST | `/committed-state` | the same at `{"t": term, "ts": [secs, inc]}` |
//! | GET | `/truth` | all of the above in one document |
//!
//! BSON values are Extended JSON v2, relaxed (as `mongoexport` writes them);
//! optimes are `{"t": term, "ts": [secs, inc]}`.

use super::set::MongoReplicaSet;
use crate::mongo::storage::store::OpTime;
use crate::mongo::storage::truth::{CommitPointChange, Election, Event, Rollback};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tidemark_mongo::bson::{Bson, Document, RawBsonRef, RawDocumentBuf};
use tidemark_mongo::json::value_to_serde;

/// A refusal: HTTP status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// A document as relaxed Extended JSON.
pub fn doc_json(d: &Document) -> Value {
    match RawDocumentBuf::try_from(d) {
        Ok(raw) => value_to_serde(RawBsonRef::Document(&raw)),
        Err(e) => json!({ "$unencodable": e.to_string() }),
    }
}

fn bson_json(v: &Bson) -> Value {
    let mut d = Document::new();
    d.insert("v", v.clone());
    doc_json(&d).get("v").cloned().unwrap_or(Value::Null)
}

pub fn optime_json(t: OpTime) -> Value {
    json!({ "t": t.t, "ts": [t.ts.0, t.ts.1] })
}

fn optime_from(v: &Value) -> Option<OpTime> {
    let t = v.get("t")?.as_i64()?;
    let ts = v.get("ts")?.as_array()?;
    let secs = u32::try_from(ts.first()?.as_u64()?).ok()?;
    let inc = u32::try_from(ts.get(1)?.as_u64()?).ok()?;
    Some(OpTime { t, ts: (secs, inc) })
}

fn member_json(set: &MongoReplicaSet, i: usize) -> Value {
    let s = set.shared();
    let m = &s.members[i];
    let view = m.view().clone();
    let state = if !m.is_up() {
        "DOWN"
    } else if s.is_primary(i) {
        "PRIMARY"
    } else {
        "SECONDARY"
    };
    json!({
        "index": i,
        "host": m.host,
        "up": m.is_up(),
        "state": state,
        "term": view.term,
        "primary": view.primary,
        "last_applied": optime_json(m.store().last_op_time()),
        "commit_point": optime_json(m.commit_point()),
        "rbid": m.rbid.load(std::sync::atomic::Ordering::SeqCst),
        "partitioned_from": (0..s.members.len()).filter(|j| *j != i && s.cuts().contains(&(i.min(*j), i.max(*j)))).collect::<Vec<_>>(),
    })
}

fn commit_json(c: &CommitPointChange) -> Value {
    json!({ "wall_ms": c.wall_millis, "member": c.member, "term": c.term, "commit_point": optime_json(c.commit_point) })
}

fn election_json(e: &Election) -> Value {
    json!({ "wall_ms": e.wall_millis, "member": e.member, "term": e.term, "votes": e.votes, "optime": optime_json(e.last_applied) })
}

fn rollback_json(r: &Rollback) -> Value {
    json!({
        "wall_ms": r.wall_millis,
        "member": r.member,
        "sync_source": r.sync_source,
        "common_point": optime_json(r.common_point),
        "entries": r.entries.iter().map(doc_json).collect::<Vec<_>>(),
        "documents": r.documents.iter().map(|(ns, id, d)| json!({
            "ns": ns, "_id": bson_json(id), "before": d.as_ref().map(doc_json),
        })).collect::<Vec<_>>(),
        "rbid": r.rbid,
    })
}

fn event_json(e: &Event) -> Value {
    json!({ "wall_ms": e.wall_millis, "member": e.member, "what": e.what })
}

fn state_json(s: &BTreeMap<String, Vec<Document>>) -> Value {
    Value::Object(
        s.iter()
            .map(|(ns, docs)| {
                (
                    ns.clone(),
                    Value::Array(docs.iter().map(doc_json).collect()),
                )
            })
            .collect(),
    )
}

fn committed_state(set: &MongoReplicaSet, at: OpTime) -> Result<Value, Refusal> {
    let state = set
        .committed_state_at(at)
        .map_err(|e| refuse(409, e.to_string()))?;
    Ok(json!({ "at": optime_json(at), "state": state_json(&state) }))
}

/// Everything: members, oplogs, data, histories, the committed state.
pub fn truth_json(set: &MongoReplicaSet) -> Value {
    let n = set.shared().members.len();
    let newest = set.newest_commit_point();
    json!({
        "set_name": set.shared().config.set_name,
        "hosts": set.shared().hosts(),
        "members": (0..n).map(|i| member_json(set, i)).collect::<Vec<_>>(),
        "oplogs": (0..n).map(|i| set.oplog(i).iter().map(doc_json).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "data": (0..n).map(|i| state_json(&set.data(i))).collect::<Vec<_>>(),
        "commit_point_history": set.commit_point_history().iter().map(commit_json).collect::<Vec<_>>(),
        "elections": set.elections().iter().map(election_json).collect::<Vec<_>>(),
        "rollbacks": set.rollbacks().iter().map(rollback_json).collect::<Vec<_>>(),
        "events": set.events().iter().map(event_json).collect::<Vec<_>>(),
        "committed_oplog": set.committed_oplog().iter().map(doc_json).collect::<Vec<_>>(),
        "committed_state": committed_state(set, newest).map(|v| v["state"].clone()).unwrap_or(Value::Null),
        "newest_commit_point": optime_json(newest),
    })
}

fn member_index(set: &MongoReplicaSet, s: &str) -> Result<usize, Refusal> {
    let n = set.shared().members.len();
    s.parse::<usize>()
        .ok()
        .filter(|i| *i < n)
        .ok_or_else(|| refuse(404, format!("no member {s:?} (the set has {n})")))
}

fn ms(body: &Value, key: &str, default: u64) -> u64 {
    body.get(key).and_then(Value::as_u64).unwrap_or(default)
}

/// Routes one request.
pub async fn handle(
    set: Arc<MongoReplicaSet>,
    method: &str,
    path: &str,
    body: Value,
) -> Result<Value, Refusal> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let fault = |r: Result<(), super::lifecycle::FaultError>| {
        r.map(|_| json!({ "ok": true }))
            .map_err(|e| refuse(409, e.to_string()))
    };
    match (method, parts.as_slice()) {
        ("GET", ["members"]) => {
            let n = set.shared().members.len();
            Ok(Value::Array((0..n).map(|i| member_json(&set, i)).collect()))
        }
        ("GET", ["members", i]) => Ok(member_json(&set, member_index(&set, i)?)),
        ("GET", ["primary"]) => {
            Ok(json!({ "primary": set.primary(), "term": set.shared().topology().term }))
        }
        ("POST", ["members", i, action]) => {
            let i = member_index(&set, i)?;
            match *action {
                "stop" => fault(set.stop_member(i)),
                "start" => fault(set.start_member(i).await),
                "partition" => fault(set.partition(i)),
                "heal" => fault(set.heal(i)),
                "stepdown" => fault(set.step_down(i, Duration::from_secs(ms(&body, "secs", 60)))),
                other => Err(refuse(404, format!("no member action {other:?}"))),
            }
        }
        ("POST", ["members", i, "cut", j]) => {
            let (i, j) = (member_index(&set, i)?, member_index(&set, j)?);
            fault(set.cut(i, j))
        }
        ("POST", ["stepdown"]) => {
            let p = set
                .primary()
                .ok_or_else(|| refuse(409, "there is no primary"))?;
            fault(set.step_down(p, Duration::from_secs(ms(&body, "secs", 60))))
                .map(|_| json!({ "ok": true, "stepped_down": p }))
        }
        ("POST", ["wait-primary"]) => {
            let timeout = Duration::from_millis(ms(&body, "timeout_ms", 60_000));
            match set.wait_for_primary(timeout).await {
                Some(p) => Ok(json!({ "primary": p, "term": set.shared().topology().term })),
                None => Err(refuse(504, "no primary within the timeout")),
            }
        }
        ("GET", ["members", i, "oplog"]) => {
            let i = member_index(&set, i)?;
            Ok(Value::Array(set.oplog(i).iter().map(doc_json).collect()))
        }
        ("GET", ["members", i, "data"]) => Ok(state_json(&set.data(member_index(&set, i)?))),
        ("GET", ["commit-point-history"]) => Ok(Value::Array(
            set.commit_point_history().iter().map(commit_json).collect(),
        )),
        ("GET", ["elections"]) => Ok(Value::Array(
            set.elections().iter().map(election_json).collect(),
        )),
        ("GET", ["rollbacks"]) => Ok(Value::Array(
            set.rollbacks().iter().map(rollback_json).collect(),
        )),
        ("GET", ["events"]) => Ok(Value::Array(set.events().iter().map(event_json).collect())),
        ("GET", ["committed-state"]) => committed_state(&set, set.newest_commit_point()),
        ("POST", ["committed-state"]) => {
            let at = optime_from(&body)
                .ok_or_else(|| refuse(400, "body must be {\"t\": term, \"ts\": [secs, inc]}"))?;
            committed_state(&set, at)
        }
        ("GET", ["truth"]) => Ok(truth_json(&set)),
        _ => Err(refuse(404, format!("no route {method} {path}"))),
    }
}

/// The routes as a [`crate::control::ControlHandler`] for the HTTP server.
pub fn handler(set: Arc<MongoReplicaSet>) -> crate::control::ControlHandler {
    Arc::new(move |req: crate::control::ControlRequest| {
        let set = set.clone();
        Box::pin(async move {
            handle(set, &req.method, &req.path, req.body)
                .await
                .map_err(|r| crate::control::ControlError::new(r.status, r.message))
        })
    })
}
