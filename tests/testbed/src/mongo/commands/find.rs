//! Reads: `find` (filter, sort, projection, skip, limit, batchSize,
//! singleBatch) with cursors continued by `getMore`, `count`, `distinct`,
//! and the `aggregate` pipelines drivers send for `count_documents`
//! (`$match`, `$sort`, `$skip`, `$limit`, `$project`, `$count`, and
//! `$group` on a constant `_id` with `$sum`). Other stages are refused.

use super::cursor::int_arg;
use crate::mongo::errors::error;
use crate::mongo::query::matcher;
use crate::mongo::query::matcher::{get_path, matches};
use crate::mongo::query::order;
use crate::mongo::query::order::{cmp_by_sort, parse_sort};
use crate::mongo::query::projection::Projection;
use crate::mongo::storage::store::MemberStore;
use tidemark_mongo::bson::{doc, Bson, Document};

fn bad_value(msg: &str) -> Document {
    error(2, "BadValue", msg)
}

/// Documents of `ns` matching `filter`, in natural order (an `_id`
/// equality uses the unique index, as MongoDB's IDHACK does).
pub fn matching_docs(
    store: &MemberStore,
    ns: &str,
    filter: &Document,
) -> Result<Vec<Document>, Document> {
    let Some(c) = store.collection(ns) else {
        return Ok(Vec::new());
    };
    let by_id = match filter.get("_id") {
        Some(v) if !matches!(v, Bson::Document(d) if d.keys().any(|k| k.starts_with('$'))) => {
            Some(c.find_id(v))
        }
        _ => None,
    };
    let candidates: Vec<&Document> = match by_id {
        Some(seq) => seq.and_then(|s| c.get(s)).into_iter().collect(),
        None => c.iter().map(|(_, d)| d).collect(),
    };
    let mut out = Vec::new();
    for d in candidates {
        match matches(d, filter) {
            Ok(true) => out.push(d.clone()),
            Ok(false) => {}
            Err(e) => return Err(bad_value(&e)),
        }
    }
    Ok(out)
}

fn sort_docs(docs: &mut [Document], spec: Option<&Document>) -> Result<(), Document> {
    if let Some(spec) = spec.filter(|s| !s.is_empty()) {
        let spec = parse_sort(spec).map_err(|e| bad_value(&e))?;
        docs.sort_by(|a, b| cmp_by_sort(a, b, &spec));
    }
    Ok(())
}

fn skip_limit(docs: Vec<Document>, skip: i64, limit: i64) -> Vec<Document> {
    let limit = limit.unsigned_abs() as usize;
    docs.into_iter()
        .skip(skip.max(0) as usize)
        .take(if limit == 0 { usize::MAX } else { limit })
        .collect()
}

/// What a read command produced: a plain reply, or documents for a cursor
/// (opened by the caller once it no longer holds the store).
pub enum ReadOutcome {
    Reply(Document),
    Cursor {
        ns: String,
        docs: Vec<Document>,
        batch_size: Option<i64>,
        single_batch: bool,
    },
}

/// Runs the read command `name` (`find`, `count`, `distinct`, `aggregate`)
/// on `view`: a member's store or a transaction's snapshot.
pub fn read(db: &str, name: &str, cmd: &Document, view: &MemberStore) -> ReadOutcome {
    let r = match name {
        "find" => find(db, cmd, view),
        "count" => Ok(ReadOutcome::Reply(count(db, cmd, view))),
        "distinct" => Ok(ReadOutcome::Reply(distinct(db, cmd, view))),
        _ => aggregate(db, cmd, view),
    };
    r.unwrap_or_else(ReadOutcome::Reply)
}

/// `find` on a user collection of `db`.
fn find(db: &str, cmd: &Document, store: &MemberStore) -> Result<ReadOutcome, Document> {
    let coll = match cmd.get_str("find") {
        Ok(c) if !c.is_empty() => c,
        _ => {
            return Err(error(
                73,
                "InvalidNamespace",
                "find needs a collection name",
            ))
        }
    };
    let ns = format!("{db}.{coll}");
    let filter = cmd.get_document("filter").cloned().unwrap_or_default();
    let projection = match cmd.get_document("projection") {
        Ok(p) => Projection::parse(p).map_err(|e| bad_value(&e))?,
        Err(_) => None,
    };
    let mut docs = matching_docs(store, &ns, &filter)?;
    sort_docs(&mut docs, cmd.get_document("sort").ok())?;
    let limit = int_arg(cmd, "limit").unwrap_or(0);
    let mut docs = skip_limit(docs, int_arg(cmd, "skip").unwrap_or(0), limit);
    if let Some(p) = &projection {
        docs = docs.iter().map(|d| p.apply(d)).collect();
    }
    Ok(ReadOutcome::Cursor {
        ns,
        docs,
        batch_size: int_arg(cmd, "batchSize"),
        single_batch: cmd.get_bool("singleBatch").unwrap_or(false) || limit < 0,
    })
}

/// `count` with `query`, `skip`, `limit`.
fn count(db: &str, cmd: &Document, store: &MemberStore) -> Document {
    let coll = cmd.get_str("count").unwrap_or_default();
    let ns = format!("{db}.{coll}");
    let filter = cmd.get_document("query").cloned().unwrap_or_default();
    match matching_docs(store, &ns, &filter) {
        Ok(docs) => {
            let n = skip_limit(
                docs,
                int_arg(cmd, "skip").unwrap_or(0),
                int_arg(cmd, "limit").unwrap_or(0),
            )
            .len();
            doc! { "n": n as i32, "ok": 1.0 }
        }
        Err(e) => e,
    }
}

/// `distinct` of a field over matching documents (array values unwound).
fn distinct(db: &str, cmd: &Document, store: &MemberStore) -> Document {
    let coll = cmd.get_str("distinct").unwrap_or_default();
    let Ok(key) = cmd.get_str("key") else {
        return bad_value("distinct needs a 'key'");
    };
    let filter = cmd.get_document("query").cloned().unwrap_or_default();
    let docs = match matching_docs(store, &format!("{db}.{coll}"), &filter) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let mut values: Vec<Bson> = Vec::new();
    for d in &docs {
        let vs: Vec<Bson> = match get_path(d, key) {
            Some(Bson::Array(a)) => a.clone(),
            Some(v) => vec![v.clone()],
            None => Vec::new(),
        };
        for v in vs {
            if !values.iter().any(|x| matcher::values_equal(x, &v)) {
                values.push(v);
            }
        }
    }
    values.sort_by(order::cmp_bson);
    doc! { "values": values, "ok": 1.0 }
}

/// `aggregate` with the stages drivers use to count documents.
fn aggregate(db: &str, cmd: &Document, store: &MemberStore) -> Result<ReadOutcome, Document> {
    let Ok(coll) = cmd.get_str("aggregate") else {
        return Err(bad_value(
            "aggregate on a whole database is not supported by the testbed",
        ));
    };
    let ns = format!("{db}.{coll}");
    let Ok(pipeline) = cmd.get_array("pipeline") else {
        return Err(error(
            9,
            "FailedToParse",
            "aggregate needs a 'pipeline' array",
        ));
    };
    let mut docs: Vec<Document> = store.documents(&ns);
    for stage in pipeline {
        let Bson::Document(stage) = stage else {
            return Err(bad_value("pipeline stages must be objects"));
        };
        let Some((name, arg)) = stage.iter().next() else {
            return Err(bad_value("empty pipeline stage"));
        };
        docs = run_stage(name, arg, docs)?;
    }
    Ok(ReadOutcome::Cursor {
        ns,
        docs,
        batch_size: cmd
            .get_document("cursor")
            .ok()
            .and_then(|c| int_arg(c, "batchSize")),
        single_batch: false,
    })
}

fn run_stage(name: &str, arg: &Bson, mut docs: Vec<Document>) -> Result<Vec<Document>, Document> {
    let as_int = |v: &Bson| match v {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        Bson::Double(d) => Some(*d as i64),
        _ => None,
    };
    Ok(match (name, arg) {
        ("$match", Bson::Document(f)) => {
            let mut out = Vec::new();
            for d in docs {
                if matches(&d, f).map_err(|e| bad_value(&e))? {
                    out.push(d);
                }
            }
            out
        }
        ("$sort", Bson::Document(s)) => {
            sort_docs(&mut docs, Some(s))?;
            docs
        }
        ("$skip", n) => skip_limit(docs, as_int(n).unwrap_or(0), 0),
        ("$limit", n) => skip_limit(docs, 0, as_int(n).unwrap_or(0)),
        ("$project", Bson::Document(p)) => match Projection::parse(p).map_err(|e| bad_value(&e))? {
            Some(p) => docs.iter().map(|d| p.apply(d)).collect(),
            None => docs,
        },
        ("$count", Bson::String(field)) => {
            if docs.is_empty() {
                Vec::new()
            } else {
                vec![doc! { field.clone(): docs.len() as i32 }]
            }
        }
        ("$group", Bson::Document(g)) => group(g, &docs)?,
        _ => {
            return Err(bad_value(&format!(
                "aggregation stage {name} is not supported by the testbed"
            )))
        }
    })
}

/// `$group` with a constant `_id` and `$sum` accumulators (of a constant
/// or a `"$field"`), as `count_documents` uses it.
fn group(g: &Document, docs: &[Document]) -> Result<Vec<Document>, Document> {
    let id = g.get("_id").cloned().unwrap_or(Bson::Null);
    if matches!(&id, Bson::String(s) if s.starts_with('$')) || matches!(id, Bson::Document(_)) {
        return Err(bad_value(
            "$group by a field is not supported by the testbed",
        ));
    }
    if docs.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = doc! { "_id": id };
    for (k, acc) in g.iter().filter(|(k, _)| *k != "_id") {
        let Some(Bson::Document(a)) = Some(acc) else {
            return Err(bad_value("$group fields must be accumulators"));
        };
        let Some(what) = a.get("$sum") else {
            return Err(bad_value(
                "only the $sum accumulator is supported by the testbed",
            ));
        };
        let mut total_i: i64 = 0;
        let mut total_f: f64 = 0.0;
        let mut float = false;
        for d in docs {
            let v = match what {
                Bson::String(f) if f.starts_with('$') => get_path(d, &f[1..]).cloned(),
                other => Some(other.clone()),
            };
            match v {
                Some(Bson::Int32(i)) => total_i = total_i.saturating_add(i as i64),
                Some(Bson::Int64(i)) => total_i = total_i.saturating_add(i),
                Some(Bson::Double(f)) => {
                    float = true;
                    total_f += f
                }
                _ => {}
            }
        }
        if float {
            out.insert(k.clone(), total_f + total_i as f64);
        } else if let Ok(small) = i32::try_from(total_i) {
            out.insert(k.clone(), small);
        } else {
            out.insert(k.clone(), total_i);
        }
    }
    Ok(vec![out])
}
