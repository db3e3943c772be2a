//! `hello`/`isMaster`: the reply drivers' server discovery and monitoring
//! (SDAM) builds its topology from, and compression negotiation.

use crate::mongo::state::Shared;
use std::time::Duration;
use tidemark_mongo::bson::{doc, Bson, DateTime, Document};
use tidemark_mongo::Compressor;

/// Wire versions advertised: 0 up to 17 (MongoDB 6.0), the lowest that
/// current drivers require for everything the testbed implements.
pub const MIN_WIRE_VERSION: i32 = 0;
pub const MAX_WIRE_VERSION: i32 = 17;
pub const MAX_BSON_OBJECT_SIZE: i32 = 16 * 1024 * 1024;
pub const MAX_MESSAGE_SIZE_BYTES: i32 = 48_000_000;
pub const MAX_WRITE_BATCH_SIZE: i32 = 100_000;
pub const LOGICAL_SESSION_TIMEOUT_MINUTES: i32 = 30;

/// The compressors both sides support, in the client's order (MongoDB
/// answers with the intersection; the client then uses its first).
pub fn negotiate(offered: &[Compressor], request: &Document) -> Vec<Compressor> {
    let Ok(list) = request.get_array("compression") else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|b| b.as_str())
        .filter_map(|name| offered.iter().copied().find(|c| c.name() == name))
        .collect()
}

/// The hello reply `member` sends now. `legacy` (isMaster) names the
/// primary flag `ismaster`, as MongoDB does for that command.
pub fn reply(
    shared: &Shared,
    member: usize,
    connection_id: i64,
    compression: &[Compressor],
    legacy: bool,
) -> Document {
    let topo = shared.topology();
    let is_primary = topo.primary == Some(member);
    let m = &shared.members[member];
    let view = m.view().clone();
    let (last, wall) = {
        let s = m.store();
        (s.last_op_time(), s.last_write_millis())
    };
    let commit = m.commit_point();
    let mut d = Document::new();
    d.insert(
        "topologyVersion",
        doc! { "processId": m.process_id(), "counter": topo.counter },
    );
    d.insert(
        "hosts",
        shared
            .hosts()
            .into_iter()
            .map(Bson::String)
            .collect::<Vec<_>>(),
    );
    d.insert("setName", shared.config.set_name.clone());
    d.insert("setVersion", topo.set_version);
    d.insert(
        if legacy {
            "ismaster"
        } else {
            "isWritablePrimary"
        },
        is_primary,
    );
    // a member answers from what it knows: a partitioned one may not have
    // heard of the new primary yet
    d.insert("secondary", !is_primary);
    if let Some(p) = view.primary {
        d.insert("primary", shared.members[p].host.clone());
    }
    d.insert("me", m.host.clone());
    if is_primary {
        d.insert("electionId", topo.election_id);
    }
    d.insert(
        "lastWrite",
        doc! {
            "opTime": last.to_doc(),
            "lastWriteDate": DateTime::from_millis(wall),
            "majorityOpTime": commit.to_doc(),
            "majorityWriteDate": DateTime::from_millis(commit.ts.0 as i64 * 1000),
        },
    );
    d.insert("maxBsonObjectSize", MAX_BSON_OBJECT_SIZE);
    d.insert("maxMessageSizeBytes", MAX_MESSAGE_SIZE_BYTES);
    d.insert("maxWriteBatchSize", MAX_WRITE_BATCH_SIZE);
    d.insert("localTime", DateTime::now());
    d.insert(
        "logicalSessionTimeoutMinutes",
        LOGICAL_SESSION_TIMEOUT_MINUTES,
    );
    d.insert("connectionId", connection_id);
    d.insert("minWireVersion", MIN_WIRE_VERSION);
    d.insert("maxWireVersion", MAX_WIRE_VERSION);
    d.insert("readOnly", false);
    if !compression.is_empty() {
        d.insert(
            "compression",
            compression
                .iter()
                .map(|c| Bson::String(c.name().into()))
                .collect::<Vec<_>>(),
        );
    }
    d.insert("helloOk", true);
    d.insert("ok", 1.0);
    d
}

/// An awaitable hello (streaming SDAM: `topologyVersion` and
/// `maxAwaitTimeMS`) is answered as soon as the topology changes — or at
/// once if the driver's `topologyVersion` is already stale — else after
/// `min(maxAwaitTimeMS, config.max_await)`. Returns the command with
/// `maxAwaitTimeMS` removed, so the ordinary hello path answers at once.
pub async fn await_topology_change(shared: &Shared, member: usize, mut cmd: Document) -> Document {
    let ms = match cmd.get("maxAwaitTimeMS") {
        Some(Bson::Int32(i)) => *i as i64,
        Some(Bson::Int64(i)) => *i,
        Some(Bson::Double(d)) => *d as i64,
        _ => return cmd,
    };
    cmd.remove("maxAwaitTimeMS");
    let Ok(tv) = cmd.get_document("topologyVersion") else {
        return cmd;
    };
    let same_process =
        tv.get_object_id("processId").ok() == Some(shared.members[member].process_id());
    let mut rx = shared.topology_tx.subscribe();
    let counter = *rx.borrow_and_update();
    if !same_process || tv.get_i64("counter").ok() != Some(counter) {
        return cmd;
    }
    let wait = Duration::from_millis(ms.max(0) as u64).min(shared.config.max_await);
    let _ = tokio::time::timeout(wait, rx.changed()).await;
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_keeps_client_order_and_drops_unknown() {
        let offered = [Compressor::Snappy, Compressor::Zlib, Compressor::Zstd];
        let req = doc! { "hello": 1, "compression": ["zstd", "lz4", "zlib"] };
        assert_eq!(
            negotiate(&offered, &req),
            vec![Compressor::Zstd, Compressor::Zlib]
        );
        assert!(negotiate(&offered, &doc! { "hello": 1 }).is_empty());
    }
}
