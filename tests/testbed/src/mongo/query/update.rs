//! Update documents: replacements and the operators `$set`, `$unset`,
//! `$setOnInsert`, `$inc`, `$mul`, `$min`, `$max`, `$rename`,
//! `$currentDate` and (in [`super::update_array`]) the array operators, on
//! top-level and dotted fields with the positional `$`, `$[]` and
//! `$[id]` + `arrayFilters` (resolved in [`super::update_path`]); and the
//! `{$v: 2, diff}` oplog `o` of an operator update ([`super::diff`]).

use super::update_path::resolve_paths;
use std::cmp::Ordering;
use tidemark_mongo::bson::{doc, Bson, DateTime, Document, Timestamp};

/// A refused update, sent back as a write error.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateError {
    pub code: i32,
    pub code_name: &'static str,
    pub msg: String,
}

pub fn err(code: i32, code_name: &'static str, msg: impl Into<String>) -> UpdateError {
    UpdateError {
        code,
        code_name,
        msg: msg.into(),
    }
}

/// True when `u` is an operator update (first key starts with `$`).
pub fn is_operator_update(u: &Document) -> bool {
    u.keys().next().is_some_and(|k| k.starts_with('$'))
}

/// What an update needs besides the document: the statement's query (for
/// the positional `$`), its `arrayFilters` (for `$[id]`), and whether the
/// document is being inserted by an upsert (`$setOnInsert` applies then).
#[derive(Debug, Clone, Copy, Default)]
pub struct UpdateOpts<'a> {
    pub query: Option<&'a Document>,
    pub array_filters: &'a [Document],
    pub inserting: bool,
}

/// The document after applying `u` to `old`, without query context.
pub fn apply(old: &Document, u: &Document) -> Result<Document, UpdateError> {
    apply_update(old, u, &UpdateOpts::default())
}

fn immutable_id(path: &str) -> Result<(), UpdateError> {
    if path == "_id" || path.starts_with("_id.") {
        return Err(err(
            66,
            "ImmutableField",
            "Performing an update on the path '_id' would modify the immutable field '_id'",
        ));
    }
    Ok(())
}

/// The document after applying `u` to `old`. `_id` can never change.
pub fn apply_update(
    old: &Document,
    u: &Document,
    opts: &UpdateOpts,
) -> Result<Document, UpdateError> {
    if !is_operator_update(u) {
        return replace(old, u);
    }
    let mut new = old.clone();
    for (op, args) in u {
        let Bson::Document(args) = args else {
            return Err(err(
                9,
                "FailedToParse",
                format!(
                    "Modifiers operate on fields but we found type {:?} instead",
                    args.element_type()
                ),
            ));
        };
        if op == "$setOnInsert" && !opts.inserting {
            continue;
        }
        for (path, v) in args {
            immutable_id(path)?;
            if op == "$rename" {
                let Bson::String(to) = v else {
                    return Err(err(
                        2,
                        "BadValue",
                        "The 'to' field for $rename must be a string",
                    ));
                };
                immutable_id(to)?;
                if let Some(val) = super::matcher::get_path(&new, path).cloned() {
                    unset_path(&mut new, path);
                    set_path(&mut new, to, val)?;
                }
                continue;
            }
            for concrete in resolve_paths(&new, path, opts)? {
                apply_op(&mut new, op, &concrete, v)?;
            }
        }
    }
    Ok(new)
}

fn apply_op(new: &mut Document, op: &str, path: &str, v: &Bson) -> Result<(), UpdateError> {
    match op {
        "$set" | "$setOnInsert" => set_path(new, path, v.clone())?,
        "$unset" => unset_path(new, path),
        "$inc" | "$mul" => {
            let cur = super::matcher::get_path(new, path).cloned();
            let r = arith(op, cur.as_ref(), v, path)?;
            set_path(new, path, r)?;
        }
        "$min" | "$max" => {
            let cur = super::matcher::get_path(new, path);
            let want = if op == "$min" {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            let replace = match cur {
                None => true,
                Some(c) => super::order::cmp_bson(v, c) == want,
            };
            if replace {
                set_path(new, path, v.clone())?;
            }
        }
        "$currentDate" => {
            let ts = matches!(v, Bson::Document(d) if d.get_str("$type").ok() == Some("timestamp"));
            let now = DateTime::now();
            let val = if ts {
                let ms = now.timestamp_millis();
                Bson::Timestamp(Timestamp {
                    time: (ms / 1000) as u32,
                    increment: 1,
                })
            } else {
                Bson::DateTime(now)
            };
            set_path(new, path, val)?;
        }
        "$push" | "$addToSet" | "$pop" | "$pull" | "$pullAll" => {
            let cur = super::matcher::get_path(new, path).cloned();
            let arr = super::update_array::apply(op, cur, v, path)?;
            set_path(new, path, Bson::Array(arr))?;
        }
        other => {
            return Err(err(9, "FailedToParse", format!("Unknown modifier: {other}. Expected a valid update modifier or pipeline-style update specified as an array")));
        }
    }
    Ok(())
}

fn replace(old: &Document, u: &Document) -> Result<Document, UpdateError> {
    let id = old.get("_id").cloned().unwrap_or(Bson::Null);
    if let Some(new_id) = u.get("_id") {
        if !super::matcher::values_equal(new_id, &id) {
            return Err(err(66, "ImmutableField", "After applying the update, the (immutable) field '_id' was found to have been altered"));
        }
    }
    let mut new = doc! { "_id": id };
    for (k, v) in u {
        if k != "_id" {
            new.insert(k.clone(), v.clone());
        }
    }
    Ok(new)
}

fn arith(op: &str, cur: Option<&Bson>, by: &Bson, path: &str) -> Result<Bson, UpdateError> {
    let mismatch = || {
        err(
            14,
            "TypeMismatch",
            format!("Cannot apply {op} to a value of non-numeric type at {path}"),
        )
    };
    let mul = op == "$mul";
    let cur = match cur {
        None => {
            // $inc on a missing field sets it; $mul sets zero of the argument's type
            return match by {
                Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) if !mul => Ok(by.clone()),
                Bson::Int32(_) => Ok(Bson::Int32(0)),
                Bson::Int64(_) => Ok(Bson::Int64(0)),
                Bson::Double(_) => Ok(Bson::Double(0.0)),
                _ => Err(mismatch()),
            };
        }
        Some(c) => c,
    };
    let f = |a: i64, b: i64| {
        if mul {
            a.checked_mul(b)
        } else {
            a.checked_add(b)
        }
    };
    let d = |a: f64, b: f64| if mul { a * b } else { a + b };
    Ok(match (cur, by) {
        (Bson::Int32(a), Bson::Int32(b)) => match f(*a as i64, *b as i64) {
            Some(r) if i32::try_from(r).is_ok() => Bson::Int32(r as i32),
            Some(r) => Bson::Int64(r),
            None => return Err(mismatch()),
        },
        (Bson::Int32(_) | Bson::Int64(_), Bson::Int32(_) | Bson::Int64(_)) => {
            let a = as_i64(cur).ok_or_else(mismatch)?;
            let b = as_i64(by).ok_or_else(mismatch)?;
            Bson::Int64(f(a, b).ok_or_else(|| err(2, "BadValue", "integer overflow"))?)
        }
        (
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_),
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_),
        ) => Bson::Double(d(
            as_f64(cur).ok_or_else(mismatch)?,
            as_f64(by).ok_or_else(mismatch)?,
        )),
        _ => return Err(mismatch()),
    })
}

fn as_i64(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        _ => None,
    }
}

fn as_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(i) => Some(*i as f64),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

/// Sets a dotted path, creating intermediate documents; refuses to descend
/// through a scalar (MongoDB's PathNotViable).
/// MongoDB refuses to pad an array with more nulls than this.
const MAX_BACKFILL: usize = 1_500_000;

pub fn set_path(d: &mut Document, path: &str, v: Bson) -> Result<(), UpdateError> {
    let Some((head, rest)) = path.split_once('.') else {
        d.insert(path, v);
        return Ok(());
    };
    let slot = d
        .entry(head.to_string())
        .or_insert_with(|| Bson::Document(Document::new()));
    match slot {
        Bson::Document(sub) => set_path(sub, rest, v),
        Bson::Array(a) => {
            let (idx, more) = rest
                .split_once('.')
                .map_or((rest, None), |(i, m)| (i, Some(m)));
            let i: usize = idx.parse().map_err(|_| not_viable(path))?;
            if i >= a.len() + MAX_BACKFILL {
                return Err(err(
                    2,
                    "BadValue",
                    format!("can't backfill more than {MAX_BACKFILL} elements at '{path}'"),
                ));
            }
            if i >= a.len() {
                a.resize(i + 1, Bson::Null);
            }
            match more {
                None => {
                    a[i] = v;
                    Ok(())
                }
                Some(m) => {
                    if !matches!(a[i], Bson::Document(_)) {
                        a[i] = Bson::Document(Document::new());
                    }
                    match &mut a[i] {
                        Bson::Document(sub) => set_path(sub, m, v),
                        _ => Err(not_viable(path)),
                    }
                }
            }
        }
        _ => Err(not_viable(path)),
    }
}

fn not_viable(path: &str) -> UpdateError {
    err(
        28,
        "PathNotViable",
        format!("Cannot create field in element along path '{path}'"),
    )
}

pub fn unset_path(d: &mut Document, path: &str) {
    match path.split_once('.') {
        None => {
            d.remove(path);
        }
        Some((head, rest)) => match d.get_mut(head) {
            Some(Bson::Document(sub)) => unset_path(sub, rest),
            Some(Bson::Array(a)) => unset_in_array(a, rest),
            _ => {}
        },
    }
}

/// `$unset` of an array element sets it to null (MongoDB keeps positions).
fn unset_in_array(a: &mut [Bson], path: &str) {
    let (idx, more) = path
        .split_once('.')
        .map_or((path, None), |(i, m)| (i, Some(m)));
    let Ok(i) = idx.parse::<usize>() else {
        return;
    };
    match (a.get_mut(i), more) {
        (Some(slot), None) => *slot = Bson::Null,
        (Some(Bson::Document(sub)), Some(m)) => unset_path(sub, m),
        (Some(Bson::Array(inner)), Some(m)) => unset_in_array(inner, m),
        _ => {}
    }
}

/// The oplog `o` of an operator update: `{$v: 2, diff}` with MongoDB's
/// nested document and array diffs ([`super::diff`]).
pub fn diff(old: &Document, new: &Document) -> Document {
    doc! { "$v": 2, "diff": super::diff::compute(old, new) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_and_replacement() {
        let old = doc! { "_id": 1, "a": 1, "b": "x", "n": { "m": 2 } };
        let new = apply(
            &old,
            &doc! { "$set": { "c": true, "n.k": 3 }, "$inc": { "a": 2 }, "$unset": { "b": "" } },
        )
        .unwrap();
        assert_eq!(
            new,
            doc! { "_id": 1, "a": 3, "n": { "m": 2, "k": 3 }, "c": true }
        );
        let r = apply(&old, &doc! { "z": 9 }).unwrap();
        assert_eq!(r, doc! { "_id": 1, "z": 9 });
        assert_eq!(apply(&old, &doc! { "_id": 2 }).unwrap_err().code, 66);
        assert_eq!(
            apply(&old, &doc! { "$bogus": { "a": 1 } })
                .unwrap_err()
                .code,
            9
        );
        assert_eq!(
            apply(&old, &doc! { "$inc": { "b": 1 } }).unwrap_err().code,
            14
        );
        assert_eq!(
            apply(&old, &doc! { "$set": { "a.x": 1 } })
                .unwrap_err()
                .code,
            28
        );
        // a far array index is refused, not allocated
        let far = doc! { "$set": { "arr.99999999999": 1 } };
        assert_eq!(
            apply(&doc! { "_id": 1, "arr": [] }, &far).unwrap_err().code,
            2
        );
        let big = apply(
            &doc! { "_id": 1, "a": i32::MAX },
            &doc! { "$inc": { "a": 1 } },
        )
        .unwrap();
        assert_eq!(big.get("a"), Some(&Bson::Int64(i32::MAX as i64 + 1)));
    }

    #[test]
    fn diff_sections() {
        let old = doc! { "_id": 1, "a": 1, "b": 2 };
        let new = doc! { "_id": 1, "a": 5, "c": 3 };
        assert_eq!(
            diff(&old, &new),
            doc! { "$v": 2, "diff": { "d": { "b": false }, "u": { "a": 5 }, "i": { "c": 3 } } }
        );
    }
}
