//! Applying an oplog entry on a secondary: the inverse of what the primary
//! logs in [`crate::mongo::commands::write`]. Entries are applied idempotently (an insert of
//! an existing `_id` replaces it), as MongoDB's oplog application is.

use super::store::MemberStore;
use crate::mongo::query::diff;
use tidemark_mongo::bson::{Bson, Document};

/// Applies `e` to `store`'s collections (the caller appends it to the oplog).
pub fn apply_entry(store: &mut MemberStore, e: &Document) -> Result<(), String> {
    let op = e.get_str("op").map_err(|x| x.to_string())?;
    let ns = e.get_str("ns").map_err(|x| x.to_string())?;
    let o = e.get_document("o").map_err(|x| x.to_string())?;
    match op {
        "i" => {
            let id = o.get("_id").cloned().unwrap_or(Bson::Null);
            let c = store.collection_mut(ns);
            if let Some(seq) = c.find_id(&id) {
                c.replace(seq, o.clone());
            } else {
                let _ = c.insert(o.clone());
            }
        }
        "u" => {
            let id = e
                .get_document("o2")
                .ok()
                .and_then(|o2| o2.get("_id"))
                .cloned()
                .ok_or("update entry without o2._id")?;
            let c = store.collection_mut(ns);
            let Some(seq) = c.find_id(&id) else {
                return Err(format!("update of missing document {id} in {ns}"));
            };
            let Some(old) = c.get(seq).cloned() else {
                return Ok(());
            };
            let new = if o.get_i32("$v").ok() == Some(2) {
                diff::apply(&old, o.get_document("diff").map_err(|x| x.to_string())?)?
            } else {
                o.clone()
            };
            c.replace(seq, new);
        }
        "d" => {
            let id = o.get("_id").cloned().unwrap_or(Bson::Null);
            let c = store.collection_mut(ns);
            if let Some(seq) = c.find_id(&id) {
                c.remove(seq);
            }
        }
        "c" => {
            let db = ns
                .strip_suffix(".$cmd")
                .ok_or("command entry not on db.$cmd")?;
            if let Ok(coll) = o.get_str("create") {
                // the collection keeps the primary's UUID (`ui`)
                let ui = match e.get("ui") {
                    Some(Bson::Binary(b)) => Some(b.clone()),
                    _ => None,
                };
                store.create_collection(&format!("{db}.{coll}"), ui);
            } else if let Ok(coll) = o.get_str("drop") {
                store.collections.remove(&format!("{db}.{coll}"));
            } else if let (Ok(ops), Ok(true)) = (o.get_array("applyOps"), o.get_bool("prepare")) {
                // a prepared transaction: its writes wait for the commit entry
                let key =
                    super::store::prepared_key(e).ok_or("prepare entry without lsid/txnNumber")?;
                let ops = ops.iter().filter_map(Bson::as_document).cloned().collect();
                store.prepared.insert(key, ops);
            } else if o.contains_key("commitTransaction") {
                let key =
                    super::store::prepared_key(e).ok_or("commit entry without lsid/txnNumber")?;
                let ops = store
                    .prepared
                    .remove(&key)
                    .ok_or("commitTransaction of a transaction that was not prepared")?;
                for op in &ops {
                    apply_entry(store, op)?;
                }
            } else if o.contains_key("abortTransaction") {
                if let Some(key) = super::store::prepared_key(e) {
                    store.prepared.remove(&key);
                }
            } else if let Ok(ops) = o.get_array("applyOps") {
                // a committed transaction: its writes, in order
                for op in ops {
                    let Bson::Document(op) = op else {
                        return Err("applyOps entry is not a document".into());
                    };
                    apply_entry(store, op)?;
                }
            } else if let Some(r) = super::index::apply_entry(store, db, o) {
                r?;
            } else if o.contains_key("dropDatabase") {
                let prefix = format!("{db}.");
                store.collections.retain(|ns, _| !ns.starts_with(&prefix));
            } else if let (Ok(from), Ok(to)) = (o.get_str("renameCollection"), o.get_str("to")) {
                store.collections.remove(to);
                if let Some(c) = store.collections.remove(from) {
                    store.collections.insert(to.to_string(), c);
                }
            } else {
                return Err(format!("unsupported command entry {o}"));
            }
        }
        "n" => {}
        other => return Err(format!("unsupported op {other:?}")),
    }
    // retryable-write entries: remember the statement, so this member
    // recognises a retry if it becomes primary
    if e.contains_key("stmtId") {
        let optime = super::store::OpTime::from_doc(e);
        store.sessions.record_from_oplog(e, optime);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mongo::query::update::{apply, diff};
    use tidemark_mongo::bson::doc;

    #[test]
    fn diff_applied_reproduces_the_update() {
        let old = doc! { "_id": 1, "a": 1, "b": 2, "n": { "x": 1 } };
        let new = apply(
            &old,
            &doc! { "$set": { "n.y": 2, "c": 3 }, "$unset": { "b": 1 } },
        )
        .unwrap();
        let o = diff(&old, &new);
        let applied = crate::mongo::query::diff::apply(&old, o.get_document("diff").unwrap());
        assert_eq!(applied.unwrap(), new);
    }

    #[test]
    fn entries_apply_in_order() {
        let mut s = MemberStore::default();
        let e = |op: &str, o: Document, o2: Option<Document>| {
            let mut d = doc! { "op": op, "ns": "t.c", "o": o };
            if let Some(o2) = o2 {
                d.insert("o2", o2);
            }
            d
        };
        apply_entry(
            &mut s,
            &doc! { "op": "c", "ns": "t.$cmd", "o": { "create": "c" } },
        )
        .unwrap();
        apply_entry(&mut s, &e("i", doc! { "_id": 1, "a": 1 }, None)).unwrap();
        apply_entry(
            &mut s,
            &e(
                "u",
                doc! { "$v": 2, "diff": { "u": { "a": 2 } } },
                Some(doc! { "_id": 1 }),
            ),
        )
        .unwrap();
        apply_entry(&mut s, &e("i", doc! { "_id": 2 }, None)).unwrap();
        apply_entry(&mut s, &e("d", doc! { "_id": 2 }, None)).unwrap();
        assert_eq!(s.documents("t.c"), vec![doc! { "_id": 1, "a": 2 }]);
        assert!(apply_entry(&mut s, &e("x", doc! {}, None)).is_err());
    }
}
