//! Applying one logged MongoDB operation to a document, as the server would.
//!
//! The log holds oplog-style operations: an insert's document, a delete, and an update
//! as the oplog entry wrote it when one was adopted (a replacement, `$set`/`$unset`, or
//! the `$v: 2` diff of MongoDB 5.0+) or else as the client sent it (update operators).
//! What cannot be applied exactly here — pipeline updates, positional and filtered
//! array updates, `$currentDate` without an oplog entry (the server's clock) — is an
//! [`Unapplied`] error: the version then marks the document uncertain and says why,
//! never guesses.

use std::cmp::Ordering;

use crate::decode::mongo::tidemark_mongo::bson::{Bson, Document};

/// Why an operation could not be applied exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unapplied(pub String);

fn unapplied(why: impl Into<String>) -> Unapplied {
    Unapplied(why.into())
}

/// Parses a stored BSON document.
pub fn parse(bytes: &[u8]) -> Result<Document, Unapplied> {
    Document::from_reader(bytes).map_err(|e| unapplied(format!("unreadable BSON: {e}")))
}

/// Encodes a document for the version.
pub fn encode(doc: &Document) -> Result<Vec<u8>, Unapplied> {
    doc.to_vec()
        .map_err(|e| unapplied(format!("unencodable document: {e}")))
}

/// Whether an update document is a replacement (no top-level `$` operator).
pub fn is_replacement(update: &Document) -> bool {
    !update.keys().any(|k| k.starts_with('$'))
}

/// The document after `update` (oplog `o` of an `u` entry, or a client update), from
/// `current` (`None` for an upsert that inserts: `base` is then the filter's
/// equality fields, as the server seeds the new document).
pub fn apply_update(
    current: Option<&Document>,
    update: &Document,
    base: &Document,
) -> Result<Document, Unapplied> {
    let inserting = current.is_none();
    let id = current
        .and_then(|d| d.get("_id"))
        .or_else(|| base.get("_id"))
        .cloned();
    if is_replacement(update) {
        let mut out = Document::new();
        if let Some(id) = id.or_else(|| update.get("_id").cloned()) {
            out.insert("_id", id);
        }
        for (k, v) in update {
            if k != "_id" {
                out.insert(k.clone(), v.clone());
            }
        }
        return Ok(out);
    }
    let mut doc = current.cloned().unwrap_or_else(|| base.clone());
    if let Some(v) = update.get("$v") {
        if matches!(v, Bson::Int32(2) | Bson::Int64(2) | Bson::Double(2.0)) {
            let Some(Bson::Document(diff)) = update.get("diff") else {
                return Err(unapplied("$v: 2 update without a diff"));
            };
            apply_diff(&mut doc, diff)?;
            return Ok(doc);
        }
    }
    for (op, args) in update {
        if op == "$v" {
            continue;
        }
        let Bson::Document(args) = args else {
            return Err(unapplied(format!("{op} takes a document")));
        };
        for (path, arg) in args {
            if path.split('.').any(|p| p == "$" || p.starts_with("$[")) {
                return Err(unapplied(format!(
                    "positional update {op} {path:?}: the matched element is the server's choice"
                )));
            }
            apply_operator(&mut doc, op, path, arg, inserting)?;
        }
    }
    Ok(doc)
}

fn apply_operator(
    doc: &mut Document,
    op: &str,
    path: &str,
    arg: &Bson,
    inserting: bool,
) -> Result<(), Unapplied> {
    match op {
        "$set" => set_path(doc, path, arg.clone()),
        "$setOnInsert" => {
            if inserting {
                set_path(doc, path, arg.clone())?;
            }
            Ok(())
        }
        "$unset" => {
            unset_path(doc, path);
            Ok(())
        }
        "$inc" | "$mul" => {
            let old = get_path(doc, path).cloned();
            let new = match old {
                None | Some(Bson::Null) if op == "$inc" => arg.clone(),
                None | Some(Bson::Null) => {
                    arith(&zero_like(arg), arg, |a, b| a * b, i64::checked_mul)?
                }
                Some(v) if op == "$inc" => arith(&v, arg, |a, b| a + b, i64::checked_add)?,
                Some(v) => arith(&v, arg, |a, b| a * b, i64::checked_mul)?,
            };
            set_path(doc, path, new)
        }
        "$min" | "$max" => {
            let want = if op == "$min" {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            match get_path(doc, path) {
                Some(old) if compare_values(arg, old) != Some(want) => Ok(()),
                _ => set_path(doc, path, arg.clone()),
            }
        }
        "$rename" => {
            let Bson::String(to) = arg else {
                return Err(unapplied("$rename target must be a string"));
            };
            if let Some(v) = get_path(doc, path).cloned() {
                unset_path(doc, path);
                set_path(doc, to, v)?;
            }
            Ok(())
        }
        "$push" | "$addToSet" => {
            let (items, position, slice) = each_args(arg)?;
            let mut arr = match get_path(doc, path) {
                None => Vec::new(),
                Some(Bson::Array(a)) => a.clone(),
                Some(_) => return Err(unapplied(format!("{op} on a field that is not an array"))),
            };
            let mut added = Vec::new();
            for item in items {
                if op == "$addToSet" && (arr.contains(&item) || added.contains(&item)) {
                    continue;
                }
                added.push(item);
            }
            // `$position`: where the new items go (from the end when negative).
            let at = match position {
                None => arr.len(),
                Some(p) if p < 0 => arr.len().saturating_sub(p.unsigned_abs() as usize),
                Some(p) => (p as usize).min(arr.len()),
            };
            arr.splice(at..at, added);
            if let Some(s) = slice {
                if s >= 0 {
                    arr.truncate(s as usize);
                } else {
                    let keep = s.unsigned_abs() as usize;
                    if arr.len() > keep {
                        arr.drain(..arr.len() - keep);
                    }
                }
            }
            set_path(doc, path, Bson::Array(arr))
        }
        "$pull" | "$pullAll" => {
            let Some(Bson::Array(arr)) = get_path(doc, path).cloned() else {
                return Ok(());
            };
            let drop: Vec<Bson> = match (op, arg) {
                ("$pullAll", Bson::Array(a)) => a.clone(),
                ("$pull", Bson::Document(d))
                    if d.keys().any(|k| k.starts_with('$')) || d.is_empty() =>
                {
                    return Err(unapplied(
                        "$pull with a condition: matching is the server's",
                    ));
                }
                ("$pull", v) => vec![v.clone()],
                _ => return Err(unapplied("$pullAll takes an array")),
            };
            let kept: Vec<Bson> = arr.into_iter().filter(|v| !drop.contains(v)).collect();
            set_path(doc, path, Bson::Array(kept))
        }
        "$pop" => {
            let Some(Bson::Array(mut arr)) = get_path(doc, path).cloned() else {
                return Ok(());
            };
            let first = matches!(arg, Bson::Int32(-1) | Bson::Int64(-1))
                || matches!(arg, Bson::Double(d) if *d == -1.0);
            if first {
                if !arr.is_empty() {
                    arr.remove(0);
                }
            } else {
                arr.pop();
            }
            set_path(doc, path, Bson::Array(arr))
        }
        "$currentDate" => Err(unapplied(
            "$currentDate without an oplog entry: the value is the server's clock",
        )),
        "$bit" => Err(unapplied("$bit is not applied by tidemark")),
        other => Err(unapplied(format!("unknown update operator {other}"))),
    }
}

/// `$push`/`$addToSet` arguments: the items, `$position`, `$slice`.
type PushArgs = (Vec<Bson>, Option<i64>, Option<i64>);

fn each_args(arg: &Bson) -> Result<PushArgs, Unapplied> {
    let int = |v: &Bson| match v {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        Bson::Double(d) if d.fract() == 0.0 => Some(*d as i64),
        _ => None,
    };
    match arg {
        Bson::Document(d) if d.contains_key("$each") => {
            if d.contains_key("$sort") {
                return Err(unapplied("$push with $sort is not applied by tidemark"));
            }
            let Some(Bson::Array(items)) = d.get("$each") else {
                return Err(unapplied("$each takes an array"));
            };
            Ok((
                items.clone(),
                d.get("$position").and_then(int),
                d.get("$slice").and_then(int),
            ))
        }
        v => Ok((vec![v.clone()], None, None)),
    }
}

fn zero_like(arg: &Bson) -> Bson {
    match arg {
        Bson::Int32(_) => Bson::Int32(0),
        Bson::Int64(_) => Bson::Int64(0),
        _ => Bson::Double(0.0),
    }
}

/// `$inc`/`$mul` with MongoDB's type promotion: int32 op int32 stays int32 unless it
/// overflows (then int64), anything with int64 is int64, anything with a double is a
/// double; decimals are not computed here.
fn arith(
    a: &Bson,
    b: &Bson,
    float: fn(f64, f64) -> f64,
    int: fn(i64, i64) -> Option<i64>,
) -> Result<Bson, Unapplied> {
    use Bson::*;
    let int_of = |v: &Bson| match v {
        Int32(i) => Some(*i as i64),
        Int64(i) => Some(*i),
        _ => None,
    };
    let float_of = |v: &Bson| match v {
        Double(d) => Some(*d),
        other => int_of(other).map(|i| i as f64),
    };
    let overflow = || unapplied("integer overflow");
    Ok(match (int_of(a), int_of(b)) {
        (Some(x), Some(y)) => {
            let r = int(x, y).ok_or_else(overflow)?;
            match (a, b) {
                (Int32(_), Int32(_)) => i32::try_from(r).map(Int32).unwrap_or(Int64(r)),
                _ => Int64(r),
            }
        }
        _ => match (float_of(a), float_of(b)) {
            (Some(x), Some(y)) => Double(float(x, y)),
            _ => {
                return Err(unapplied(
                    "arithmetic on a value that is not a number (or a decimal)",
                ))
            }
        },
    })
}

/// Compares two values of comparable kinds (numbers with numbers, strings, dates);
/// `None` across kinds, where BSON's type order applies and is not modelled here.
fn compare_values(a: &Bson, b: &Bson) -> Option<Ordering> {
    use Bson::*;
    let num = |v: &Bson| match v {
        Int32(i) => Some(*i as f64),
        Int64(i) => Some(*i as f64),
        Double(d) => Some(*d),
        _ => None,
    };
    match (a, b) {
        (String(x), String(y)) => Some(x.cmp(y)),
        (DateTime(x), DateTime(y)) => Some(x.cmp(y)),
        _ => num(a)?.partial_cmp(&num(b)?),
    }
}

fn get_path<'d>(doc: &'d Document, path: &str) -> Option<&'d Bson> {
    let mut parts = path.split('.');
    let mut cur = doc.get(parts.next()?)?;
    for p in parts {
        cur = match cur {
            Bson::Document(d) => d.get(p)?,
            Bson::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Sets a dotted path, creating embedded documents on the way (as `$set` does);
/// numeric parts index arrays (padding with nulls, as the server does).
pub fn set_path(doc: &mut Document, path: &str, value: Bson) -> Result<(), Unapplied> {
    let parts: Vec<&str> = path.split('.').collect();
    set_in_doc(doc, &parts, value, path)
}

fn set_in_doc(
    doc: &mut Document,
    parts: &[&str],
    value: Bson,
    path: &str,
) -> Result<(), Unapplied> {
    let (first, rest) = parts.split_first().ok_or_else(|| unapplied("empty path"))?;
    if rest.is_empty() {
        doc.insert(*first, value);
        return Ok(());
    }
    if !doc.contains_key(*first) || matches!(doc.get(*first), Some(Bson::Null)) {
        doc.insert(*first, Bson::Document(Document::new()));
    }
    match doc.get_mut(*first) {
        Some(inner) => set_in_value(inner, rest, value, path),
        None => Err(unapplied("path vanished")),
    }
}

fn set_in_value(cur: &mut Bson, parts: &[&str], value: Bson, path: &str) -> Result<(), Unapplied> {
    match cur {
        Bson::Document(d) => set_in_doc(d, parts, value, path),
        Bson::Array(a) => {
            let (first, rest) = parts.split_first().ok_or_else(|| unapplied("empty path"))?;
            let i: usize = first
                .parse()
                .map_err(|_| unapplied(format!("{path:?}: a field name inside an array")))?;
            if i > 1_000_000 {
                return Err(unapplied(format!("{path:?}: array index too large")));
            }
            while a.len() <= i {
                a.push(Bson::Null);
            }
            if rest.is_empty() {
                a[i] = value;
                Ok(())
            } else {
                if matches!(a[i], Bson::Null) {
                    a[i] = Bson::Document(Document::new());
                }
                set_in_value(&mut a[i], rest, value, path)
            }
        }
        _ => Err(unapplied(format!(
            "{path:?} goes through a value that is not a document"
        ))),
    }
}

fn unset_path(doc: &mut Document, path: &str) {
    let parts: Vec<&str> = path.split('.').collect();
    fn walk(cur: &mut Bson, parts: &[&str]) {
        match (cur, parts) {
            (Bson::Document(d), [last]) => {
                d.remove(*last);
            }
            (Bson::Document(d), [first, rest @ ..]) => {
                if let Some(next) = d.get_mut(*first) {
                    walk(next, rest);
                }
            }
            (Bson::Array(a), [last]) => {
                // `$unset` of an array element sets it to null, keeping positions.
                if let Some(v) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    *v = Bson::Null;
                }
            }
            (Bson::Array(a), [first, rest @ ..]) => {
                if let Some(next) = first.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    walk(next, rest);
                }
            }
            _ => {}
        }
    }
    match parts.as_slice() {
        [only] => {
            doc.remove(*only);
        }
        [first, rest @ ..] => {
            if let Some(next) = doc.get_mut(*first) {
                walk(next, rest);
            }
        }
        [] => {}
    }
}

/// Applies a MongoDB 5.0+ oplog `$v: 2` diff: `u` (update fields), `i` (insert
/// fields), `d` (delete fields), `s<field>` (a sub-diff of an embedded document or,
/// with `a: true`, of an array: `u<index>` sets, `l` truncates, `s<index>` recurses).
pub fn apply_diff(doc: &mut Document, diff: &Document) -> Result<(), Unapplied> {
    for (k, v) in diff {
        match (k.as_str(), v) {
            ("d", Bson::Document(fields)) => {
                for f in fields.keys() {
                    doc.remove(f);
                }
            }
            ("u" | "i", Bson::Document(fields)) => {
                for (f, val) in fields {
                    doc.insert(f.clone(), val.clone());
                }
            }
            (s, Bson::Document(sub)) if s.starts_with('s') => {
                let field = &s[1..];
                let target = doc
                    .get_mut(field)
                    .ok_or_else(|| unapplied(format!("$v: 2 diff of missing field {field:?}")))?;
                apply_sub_diff(target, sub)?;
            }
            _ => return Err(unapplied(format!("$v: 2 diff entry {k:?} not understood"))),
        }
    }
    Ok(())
}

fn apply_sub_diff(target: &mut Bson, sub: &Document) -> Result<(), Unapplied> {
    let is_array = matches!(sub.get("a"), Some(Bson::Boolean(true)));
    match (target, is_array) {
        (Bson::Document(d), false) => apply_diff(d, sub),
        (Bson::Array(a), true) => {
            for (k, v) in sub {
                if k == "a" {
                    continue;
                }
                if k == "l" {
                    let n = match v {
                        Bson::Int32(n) => *n as usize,
                        Bson::Int64(n) => *n as usize,
                        _ => return Err(unapplied("$v: 2 array diff: l must be an integer")),
                    };
                    a.truncate(n);
                    continue;
                }
                // Keys are `u<index>` or `s<index>`; anything else (even a key
                // starting with a multi-byte character) is refused below.
                let (kind, index) = match k.char_indices().nth(1) {
                    Some((i, _)) => k.split_at(i),
                    None => (k.as_str(), ""),
                };
                let i: usize = index
                    .parse()
                    .map_err(|_| unapplied(format!("$v: 2 array diff entry {k:?}")))?;
                if i > 1_000_000 {
                    return Err(unapplied("$v: 2 array diff: index too large"));
                }
                match kind {
                    "u" => {
                        while a.len() <= i {
                            a.push(Bson::Null);
                        }
                        a[i] = v.clone();
                    }
                    "s" => {
                        let (Some(elem), Bson::Document(d)) = (a.get_mut(i), v) else {
                            return Err(unapplied(format!("$v: 2 array diff entry {k:?}")));
                        };
                        apply_sub_diff(elem, d)?;
                    }
                    _ => return Err(unapplied(format!("$v: 2 array diff entry {k:?}"))),
                }
            }
            Ok(())
        }
        _ => Err(unapplied("$v: 2 sub-diff does not match the field's type")),
    }
}

/// The fields of an upsert's filter that seed the inserted document (equalities,
/// not operators), as the server does.
pub fn upsert_seed(filter: &Document) -> Document {
    let mut seed = Document::new();
    for (k, v) in filter {
        if k.starts_with('$') {
            continue;
        }
        if let Bson::Document(d) = v {
            if d.keys().any(|x| x.starts_with('$')) {
                continue;
            }
        }
        let _ = set_path(&mut seed, k, v.clone());
    }
    seed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::mongo::tidemark_mongo::bson::doc;

    fn upd(current: Document, update: Document) -> Result<Document, Unapplied> {
        apply_update(Some(&current), &update, &Document::new())
    }

    #[test]
    fn set_unset_and_dotted_paths() {
        let d = upd(
            doc! {"_id": 1, "a": 1, "b": {"c": 2}},
            doc! {"$set": {"b.d": 3, "e.f": "x"}, "$unset": {"a": ""}},
        )
        .unwrap();
        assert_eq!(d, doc! {"_id": 1, "b": {"c": 2, "d": 3}, "e": {"f": "x"}});
    }

    #[test]
    fn inc_keeps_mongodbs_numeric_types() {
        let d = upd(
            doc! {"_id": 1, "i": 1i32, "l": 1i64, "big": i32::MAX},
            doc! {"$inc": {"i": 2i32, "l": 2i32, "big": 1i32, "new": 5i32, "f": 0.5}},
        )
        .unwrap();
        assert_eq!(
            d,
            doc! {"_id": 1, "i": 3i32, "l": 3i64, "big": i32::MAX as i64 + 1, "new": 5i32, "f": 0.5}
        );
    }

    #[test]
    fn push_each_position_slice_add_to_set_pull_and_pop() {
        let d = upd(
            doc! {"_id": 1, "a": [1, 2, 3]},
            doc! {"$push": {"a": {"$each": [9, 8], "$position": 1, "$slice": 4}}},
        )
        .unwrap();
        assert_eq!(
            d.get_array("a").unwrap(),
            &vec![1.into(), 9.into(), 8.into(), 2.into()]
        );
        let d = upd(
            doc! {"_id": 1, "t": ["x"]},
            doc! {"$addToSet": {"t": {"$each": ["x", "y", "y"]}}},
        )
        .unwrap();
        assert_eq!(d.get_array("t").unwrap(), &vec!["x".into(), "y".into()]);
        let d = upd(
            doc! {"_id": 1, "t": ["x", "y", "x"]},
            doc! {"$pull": {"t": "x"}, "$pop": {"u": 1}},
        )
        .unwrap();
        assert_eq!(d.get_array("t").unwrap(), &vec!["y".into()]);
    }

    #[test]
    fn replacement_keeps_the_id() {
        let d = upd(doc! {"_id": 7, "a": 1}, doc! {"b": 2}).unwrap();
        assert_eq!(d, doc! {"_id": 7, "b": 2});
    }

    #[test]
    fn v2_diffs_as_mongodb_5_writes_them() {
        let d = upd(
            doc! {"_id": 1, "a": 1, "gone": true, "sub": {"x": 1}, "arr": [1, 2, 3]},
            doc! {"$v": 2, "diff": {"u": {"a": 2}, "d": {"gone": false}, "i": {"new": "n"}, "ssub": {"u": {"x": 5}}, "sarr": {"a": true, "l": 2, "u1": 7}}},
        )
        .unwrap();
        assert_eq!(
            d,
            doc! {"_id": 1, "a": 2, "sub": {"x": 5}, "arr": [1, 7], "new": "n"}
        );
    }

    #[test]
    fn what_the_server_decides_is_refused_not_guessed() {
        for update in [
            doc! {"$set": {"a.$": 1}},
            doc! {"$set": {"a.$[e].b": 1}},
            doc! {"$currentDate": {"t": true}},
            doc! {"$pull": {"a": {"$gt": 1}}},
        ] {
            assert!(
                upd(doc! {"_id": 1, "a": [1, 2]}, update.clone()).is_err(),
                "{update}"
            );
        }
    }

    #[test]
    fn an_upsert_seeds_the_new_document_from_the_filters_equalities() {
        let seed = upsert_seed(&doc! {"_id": 3, "k": "v", "n": {"$gt": 1}});
        let d = apply_update(
            None,
            &doc! {"$set": {"x": 1}, "$setOnInsert": {"created": true}},
            &seed,
        )
        .unwrap();
        assert_eq!(d, doc! {"_id": 3, "k": "v", "x": 1, "created": true});
        let later = upd(d, doc! {"$setOnInsert": {"created": false}}).unwrap();
        assert!(later.get_bool("created").unwrap(), "only when inserting");
    }

    #[test]
    fn a_v2_array_diff_with_odd_keys_is_refused_not_a_panic() {
        let current = doc! {"_id": 1, "arr": [1, 2]};
        for key in ["é1", "u", "x9", "s"] {
            let update = doc! {"$v": 2, "diff": {"sarr": {"a": true, key: 5}}};
            assert!(upd(current.clone(), update).is_err(), "{key}");
        }
    }
}
