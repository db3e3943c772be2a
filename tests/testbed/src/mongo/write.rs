//! The write commands on the primary: `insert`, `update`, `delete`, each
//! statement applied to the primary's collections and logged in its oplog,
//! with MongoDB's per-index `writeErrors` for ordered and unordered batches.
//! Write concerns are accepted and answered at once (no replication yet).

use super::commands::error;
use super::matcher::matches;
use super::set::Shared;
use super::store::{Collection, MemberStore};
use super::update::{apply, diff, is_operator_update, UpdateError};
use tidemark_mongo::bson::oid::ObjectId;
use tidemark_mongo::bson::{doc, Bson, Document};

/// One statement's failure, reported at its index.
struct WriteError {
    code: i32,
    errmsg: String,
    extra: Document,
}

impl From<UpdateError> for WriteError {
    fn from(e: UpdateError) -> Self {
        WriteError {
            code: e.code,
            errmsg: e.msg,
            extra: Document::new(),
        }
    }
}

fn bad_value(msg: &str) -> WriteError {
    WriteError {
        code: 2,
        errmsg: msg.into(),
        extra: Document::new(),
    }
}

fn duplicate(ns: &str, id: &Bson) -> WriteError {
    WriteError {
        code: 11000,
        errmsg: format!(
            "E11000 duplicate key error collection: {ns} index: _id_ dup key: {{ _id: {id} }}"
        ),
        extra: doc! { "keyPattern": { "_id": 1 }, "keyValue": { "_id": id.clone() } },
    }
}

/// Per-command counters and the reply they become.
#[derive(Default)]
struct Outcome {
    n: i64,
    n_modified: i64,
    upserted: Vec<Bson>,
    errors: Vec<Bson>,
}

/// Runs `insert`/`update`/`delete` (`name`) on `member`, which the caller
/// has checked is primary.
pub fn run(shared: &Shared, member: usize, db: &str, name: &str, cmd: &Document) -> Document {
    let coll = match cmd.get_str(name) {
        Ok(c) if !c.is_empty() => c,
        _ => {
            return error(
                73,
                "InvalidNamespace",
                "write command needs a collection name",
            )
        }
    };
    let ns = format!("{db}.{coll}");
    let list_key = match name {
        "insert" => "documents",
        "update" => "updates",
        _ => "deletes",
    };
    let Ok(items) = cmd.get_array(list_key) else {
        return error(
            9,
            "FailedToParse",
            &format!("{name} needs an array '{list_key}'"),
        );
    };
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let term = shared.topology().term;
    let mut store = shared.members[member].store();
    let mut out = Outcome::default();
    for (i, item) in items.iter().enumerate() {
        let Bson::Document(item) = item else {
            push_error(&mut out, i, bad_value("write statements must be documents"));
            if ordered {
                break;
            }
            continue;
        };
        let r = match name {
            "insert" => insert_one(&mut store, term, db, coll, &ns, item).map(|()| 1),
            "update" => update_one(&mut store, term, db, coll, &ns, item, i, &mut out),
            _ => delete_one(&mut store, term, &ns, item),
        };
        match r {
            Ok(n) => out.n += n,
            Err(e) => {
                push_error(&mut out, i, e);
                if ordered {
                    break;
                }
            }
        }
    }
    let mut reply = doc! { "n": out.n as i32 };
    if name == "update" {
        reply.insert("nModified", out.n_modified as i32);
        if !out.upserted.is_empty() {
            reply.insert("upserted", out.upserted);
        }
    }
    if !out.errors.is_empty() {
        reply.insert("writeErrors", out.errors);
    }
    reply.insert("ok", 1.0);
    reply
}

fn push_error(out: &mut Outcome, index: usize, e: WriteError) {
    let mut d = doc! { "index": index as i32, "code": e.code, "errmsg": e.errmsg };
    d.extend(e.extra);
    out.errors.push(Bson::Document(d));
}

/// The collection `ns`, created (with its oplog `create` entry, as MongoDB
/// logs an implicit creation) if it does not exist yet.
fn ensure_collection(store: &mut MemberStore, term: i64, db: &str, coll: &str, ns: &str) {
    if store.collection(ns).is_none() {
        store.collection_mut(ns);
        store.append_oplog(
            term,
            "c",
            &format!("{db}.$cmd"),
            doc! { "create": coll, "idIndex": { "v": 2, "key": { "_id": 1 }, "name": "_id_" } },
            None,
        );
    }
}

fn insert_one(
    store: &mut MemberStore,
    term: i64,
    db: &str,
    coll: &str,
    ns: &str,
    d: &Document,
) -> Result<(), WriteError> {
    let mut d = d.clone();
    if !d.contains_key("_id") {
        // the server adds a missing _id first in the document
        let mut with_id = doc! { "_id": ObjectId::new() };
        with_id.extend(d);
        d = with_id;
    }
    if matches!(d.get("_id"), Some(Bson::Array(_))) {
        return Err(bad_value("can't use an array for _id"));
    }
    ensure_collection(store, term, db, coll, ns);
    let c = store.collection_mut(ns);
    let id = d.get("_id").cloned().unwrap_or(Bson::Null);
    c.insert(d.clone()).map_err(|dup| duplicate(ns, &dup))?;
    store.append_oplog(term, "i", ns, d, Some(doc! { "_id": id }));
    Ok(())
}

/// Positions of documents in `c` matching `q`, at most one unless `multi`.
fn matching(c: &Collection, q: &Document, multi: bool) -> Result<Vec<u64>, WriteError> {
    if let Some(id) = q.get("_id") {
        let plain = !matches!(id, Bson::Document(d) if d.keys().any(|k| k.starts_with('$')));
        if plain {
            let hit = c
                .find_id(id)
                .filter(|s| c.get(*s).is_some_and(|d| matches(d, q).unwrap_or(false)));
            return Ok(hit.into_iter().collect());
        }
    }
    let mut out = Vec::new();
    for (seq, d) in c.iter() {
        if matches(d, q).map_err(|e| bad_value(&e))? {
            out.push(seq);
            if !multi {
                break;
            }
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn update_one(
    store: &mut MemberStore,
    term: i64,
    db: &str,
    coll: &str,
    ns: &str,
    stmt: &Document,
    index: usize,
    out: &mut Outcome,
) -> Result<i64, WriteError> {
    let q = stmt.get_document("q").cloned().unwrap_or_default();
    let u = match stmt.get("u") {
        Some(Bson::Document(u)) => u.clone(),
        Some(Bson::Array(_)) => {
            return Err(WriteError {
                code: 72,
                errmsg: "pipeline updates are not supported by the testbed".into(),
                extra: Document::new(),
            })
        }
        _ => return Err(bad_value("update statement needs 'u'")),
    };
    let multi = stmt.get_bool("multi").unwrap_or(false);
    let upsert = stmt.get_bool("upsert").unwrap_or(false);
    let operator = is_operator_update(&u);
    if multi && !operator {
        return Err(WriteError {
            code: 9,
            errmsg: "multi update is not supported for replacement-style update".into(),
            extra: Document::new(),
        });
    }
    let hits = match store.collection(ns) {
        Some(c) => matching(c, &q, multi)?,
        None => Vec::new(),
    };
    if hits.is_empty() {
        if !upsert {
            return Ok(0);
        }
        // the upserted document starts from the query's equality fields
        let mut base = Document::new();
        for (k, v) in &q {
            let is_op = matches!(v, Bson::Document(d) if d.keys().any(|k| k.starts_with('$')));
            if !k.starts_with('$') && !k.contains('.') && !is_op {
                base.insert(k.clone(), v.clone());
            }
        }
        if !base.contains_key("_id") && !u.contains_key("_id") {
            let mut with_id = doc! { "_id": ObjectId::new() };
            with_id.extend(base);
            base = with_id;
        }
        let new = if operator {
            apply(&base, &u)?
        } else {
            let mut r =
                doc! { "_id": base.get("_id").or(u.get("_id")).cloned().unwrap_or(Bson::Null) };
            r.extend(u.into_iter().filter(|(k, _)| k != "_id"));
            r
        };
        let id = new.get("_id").cloned().unwrap_or(Bson::Null);
        insert_one(store, term, db, coll, ns, &new)?;
        out.upserted
            .push(Bson::Document(doc! { "index": index as i32, "_id": id }));
        return Ok(1);
    }
    for seq in &hits {
        let Some(old) = store.collection(ns).and_then(|c| c.get(*seq)).cloned() else {
            continue;
        };
        let new = apply(&old, &u)?;
        if new == old {
            continue;
        }
        let id = old.get("_id").cloned().unwrap_or(Bson::Null);
        store.collection_mut(ns).replace(*seq, new.clone());
        let o = if operator { diff(&old, &new) } else { new };
        store.append_oplog(term, "u", ns, o, Some(doc! { "_id": id }));
        out.n_modified += 1;
    }
    Ok(hits.len() as i64)
}

fn delete_one(
    store: &mut MemberStore,
    term: i64,
    ns: &str,
    stmt: &Document,
) -> Result<i64, WriteError> {
    let q = stmt.get_document("q").cloned().unwrap_or_default();
    let multi = match stmt.get("limit") {
        Some(Bson::Int32(0)) | Some(Bson::Int64(0)) => true,
        Some(Bson::Double(d)) if *d == 0.0 => true,
        _ => false,
    };
    let hits = match store.collection(ns) {
        Some(c) => matching(c, &q, multi)?,
        None => return Ok(0),
    };
    let mut n = 0;
    for seq in hits {
        if let Some(d) = store.collection_mut(ns).remove(seq) {
            let id = d.get("_id").cloned().unwrap_or(Bson::Null);
            store.append_oplog(term, "d", ns, doc! { "_id": id }, None);
            n += 1;
        }
    }
    Ok(n)
}
