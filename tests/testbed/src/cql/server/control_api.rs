//! The CQL testbed's routes on the generic control endpoint (`crate::control`), so
//! tests in other languages can inject faults and change membership while their
//! driver stays connected:
//!
//! | request | effect |
//! |---|---|
//! | `GET /nodes` | every node slot: index, address, joined, alive, fault, clock, pending hints |
//! | `GET /state` | nodes, pending hints, and the reconciled logical state |
//! | `GET /nodes/{i}/dump` | node i's cells with timestamps (ground truth) |
//! | `POST /nodes/{i}/stop`, `/start` | stop / restart node i (restart delivers hints) |
//! | `POST /nodes/{i}/slow` `{"delay_ms":n}` or `{"drop_acks":true}` or `{"drop_writes":true}` | set node i's write fault (replaces the previous one) |
//! | `POST /nodes/{i}/heal` | clear node i's fault and deliver its hints |
//! | `POST /nodes/{i}/skew` `{"micros":n}` and/or `{"fixed":ts}` | clock skew / fixed clock for server timestamps |
//! | `POST /nodes/add` | bootstrap a node in a spare slot: `{"index", "address"}` |
//! | `POST /nodes/{i}/remove` | decommission node i |
//! | `POST /hints/deliver` | deliver every deliverable hint now |

use super::cluster::logical_state;
use super::membership;
use super::membership::MembershipError;
use crate::control::{ControlError, ControlFuture, ControlHandler, ControlRequest};
use crate::cql::cluster::faults::Fault;
use crate::cql::cluster::hints;
use crate::cql::cluster::state::Shared;
use crate::cql::storage::store;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The handler to give `ControlServer::start` for this cluster.
pub fn handler(shared: Arc<Shared>) -> ControlHandler {
    Arc::new(move |req: ControlRequest| {
        let shared = shared.clone();
        Box::pin(async move { route(&shared, req).await }) as ControlFuture
    })
}

fn membership_error(e: MembershipError) -> ControlError {
    match e {
        MembershipError::NoSuchNode(_) => ControlError::not_found(e.to_string()),
        MembershipError::Bind { .. } => ControlError::new(500, e.to_string()),
        _ => ControlError::conflict(e.to_string()),
    }
}

fn node_json(shared: &Shared, i: usize) -> Value {
    let n = &shared.nodes[i];
    json!({
        "index": i,
        "address": n.addr.to_string(),
        "host_id": store::hex(&n.host_id),
        "joined": n.joined.load(Ordering::SeqCst),
        "alive": n.alive.load(Ordering::SeqCst),
        "fault": *n.fault.lock().unwrap_or_else(|e| e.into_inner()),
        "clock_skew_micros": n.clock_skew_micros.load(Ordering::SeqCst),
        "fixed_clock": *n.fixed_clock.lock().unwrap_or_else(|e| e.into_inner()),
        "hints_pending": hints::pending_for(shared, i),
    })
}

fn nodes_json(shared: &Shared) -> Value {
    Value::Array(
        (0..shared.nodes.len())
            .map(|i| node_json(shared, i))
            .collect(),
    )
}

fn body_object(req: &ControlRequest) -> Result<serde_json::Map<String, Value>, ControlError> {
    match &req.body {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(serde_json::Map::new()),
        _ => Err(ControlError::bad_request("body must be a JSON object")),
    }
}

async fn route(shared: &Arc<Shared>, req: ControlRequest) -> Result<Value, ControlError> {
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let method = req.method.as_str();
    match (method, parts.as_slice()) {
        ("GET", ["nodes"]) => Ok(nodes_json(shared)),
        ("GET", ["state"]) => Ok(json!({
            "nodes": nodes_json(shared),
            "hints_pending": hints::pending(shared),
            "logical": logical_state(shared),
        })),
        ("POST", ["hints", "deliver"]) => Ok(json!({ "delivered": hints::deliver(shared) })),
        ("POST", ["nodes", "add"]) => {
            let i = membership::add_node(shared)
                .await
                .map_err(membership_error)?;
            Ok(node_json(shared, i))
        }
        (_, ["nodes", index, action]) => {
            let i: usize = index
                .parse()
                .map_err(|_| ControlError::bad_request(format!("bad node index {index:?}")))?;
            if i >= shared.nodes.len() {
                return Err(ControlError::not_found(format!("no node {i}")));
            }
            node_action(shared, method, i, action, &req).await
        }
        _ => Err(ControlError::not_found(format!(
            "no route {} {}",
            req.method, req.path
        ))),
    }
}

async fn node_action(
    shared: &Arc<Shared>,
    method: &str,
    i: usize,
    action: &str,
    req: &ControlRequest,
) -> Result<Value, ControlError> {
    match (method, action) {
        ("GET", "dump") => Ok(json!(shared.store(i).dump())),
        ("POST", "stop") => {
            membership::stop_node(shared, i)
                .await
                .map_err(membership_error)?;
            Ok(node_json(shared, i))
        }
        ("POST", "start") => {
            membership::start_node(shared, i)
                .await
                .map_err(membership_error)?;
            Ok(node_json(shared, i))
        }
        ("POST", "remove") => {
            membership::remove_node(shared, i)
                .await
                .map_err(membership_error)?;
            Ok(node_json(shared, i))
        }
        ("POST", "slow") => {
            let fault: Fault = serde_json::from_value(Value::Object(body_object(req)?))
                .map_err(|e| ControlError::bad_request(format!("bad fault: {e}")))?;
            membership::set_fault(shared, i, fault).map_err(membership_error)?;
            Ok(node_json(shared, i))
        }
        ("POST", "heal") => {
            membership::set_fault(shared, i, Fault::default()).map_err(membership_error)?;
            Ok(node_json(shared, i))
        }
        ("POST", "skew") => {
            let body = body_object(req)?;
            let int = |k: &str| -> Result<Option<i64>, ControlError> {
                match body.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                        ControlError::bad_request(format!("{k} must be an integer"))
                    }),
                }
            };
            if let Some(k) = body.keys().find(|k| *k != "micros" && *k != "fixed") {
                return Err(ControlError::bad_request(format!("unknown field {k:?}")));
            }
            let micros = int("micros")?.unwrap_or(0);
            let fixed = int("fixed")?;
            membership::set_clock(shared, i, micros, fixed).map_err(membership_error)?;
            Ok(node_json(shared, i))
        }
        _ => Err(ControlError::not_found(format!(
            "no route {} {}",
            req.method, req.path
        ))),
    }
}
