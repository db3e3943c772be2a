//! The ground truth of a running set as JSON (canonical extended JSON for
//! BSON values), for `tidemark-testbed mongo --truth-out` and the capture
//! script: every member's oplog, last optime and commit point, and the
//! primary's documents per namespace.

use super::set::MongoReplicaSet;
use serde_json::{json, Value};
use tidemark_mongo::bson::{Bson, Document};

fn ext(d: &Document) -> Value {
    Bson::Document(d.clone()).into_canonical_extjson()
}

/// `{set_name, primary, members: [{host, last_applied, commit_point,
/// oplog}], documents: {ns: [...]}}`.
pub fn ground_truth_json(set: &MongoReplicaSet) -> Value {
    let shared = set.shared();
    let members: Vec<Value> = (0..shared.members.len())
        .map(|m| {
            let optime = |o: Option<super::store::OpTime>| {
                o.map(|o| json!({ "t": o.t, "ts": [o.ts.0, o.ts.1] }))
            };
            json!({
                "host": shared.members[m].host,
                "last_applied": optime(set.last_applied(m)),
                "commit_point": optime(set.commit_point(m)),
                "oplog": set.oplog(m).iter().map(ext).collect::<Vec<_>>(),
            })
        })
        .collect();
    let primary = set.primary();
    let mut documents = serde_json::Map::new();
    if let Some(p) = primary {
        let namespaces: Vec<String> = shared.members[p]
            .store()
            .collections
            .keys()
            .cloned()
            .collect();
        for ns in namespaces {
            let docs: Vec<Value> = set.documents(p, &ns).iter().map(ext).collect();
            documents.insert(ns, Value::Array(docs));
        }
    }
    json!({
        "set_name": shared.config.set_name,
        "primary": primary,
        "members": members,
        "documents": documents,
    })
}
