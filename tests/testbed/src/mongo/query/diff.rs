//! `$v: 2` update diffs as MongoDB 5.0+ writes them in oplog `u` entries:
//! a document diff has `d` (deleted fields), `u` (changed values), `i`
//! (added fields) and `s<field>` (a nested diff of a sub-document or
//! array); an array diff has `a: true`, `l` (new, shorter length), `u<i>`
//! (element replaced or appended) and `s<i>` (element diffed). Computing
//! and applying are inverses (a unit test checks it on every operator).

use tidemark_mongo::bson::{doc, Bson, Document};

/// The diff turning `old` into `new` (only the `diff` body, no `$v`).
pub fn compute(old: &Document, new: &Document) -> Document {
    let mut d = Document::new();
    let mut u = Document::new();
    let mut i = Document::new();
    let mut subs = Document::new();
    for (k, _) in old {
        if !new.contains_key(k) {
            d.insert(k.clone(), false);
        }
    }
    for (k, v) in new {
        match old.get(k) {
            None => {
                i.insert(k.clone(), v.clone());
            }
            Some(o) if o == v => {}
            Some(Bson::Document(od)) if matches!(v, Bson::Document(_)) => {
                if let Bson::Document(nd) = v {
                    subs.insert(format!("s{k}"), compute(od, nd));
                }
            }
            Some(Bson::Array(oa)) if matches!(v, Bson::Array(_)) => {
                if let Bson::Array(na) = v {
                    subs.insert(format!("s{k}"), array_diff(oa, na));
                }
            }
            Some(_) => {
                u.insert(k.clone(), v.clone());
            }
        }
    }
    let mut out = Document::new();
    for (name, part) in [("d", d), ("u", u), ("i", i)] {
        if !part.is_empty() {
            out.insert(name, part);
        }
    }
    out.extend(subs);
    out
}

fn array_diff(old: &[Bson], new: &[Bson]) -> Document {
    let mut out = doc! { "a": true };
    if new.len() < old.len() {
        out.insert("l", new.len() as i64);
    }
    for (idx, v) in new.iter().enumerate() {
        match (old.get(idx), v) {
            (Some(o), v) if o == v => {}
            (Some(Bson::Document(od)), Bson::Document(nd)) => {
                out.insert(format!("s{idx}"), compute(od, nd));
            }
            (Some(Bson::Array(oa)), Bson::Array(na)) => {
                out.insert(format!("s{idx}"), array_diff(oa, na));
            }
            _ => {
                out.insert(format!("u{idx}"), v.clone());
            }
        }
    }
    out
}

/// `old` with the document diff `diff` applied.
pub fn apply(old: &Document, diff: &Document) -> Result<Document, String> {
    let mut new = old.clone();
    if let Ok(d) = diff.get_document("d") {
        for k in d.keys() {
            new.remove(k);
        }
    }
    for section in ["u", "i"] {
        if let Ok(s) = diff.get_document(section) {
            for (k, v) in s {
                new.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, v) in diff {
        let Some(field) = k.strip_prefix('s').filter(|f| !f.is_empty()) else {
            continue;
        };
        let Bson::Document(sub) = v else {
            return Err(format!("nested diff {k} is not a document"));
        };
        let applied = match new.get(field) {
            Some(Bson::Array(a)) if sub.get_bool("a").unwrap_or(false) => {
                Bson::Array(apply_array(a, sub)?)
            }
            Some(Bson::Document(d)) => Bson::Document(apply(d, sub)?),
            _ => {
                return Err(format!(
                    "nested diff for '{field}', which is not a document or array"
                ))
            }
        };
        new.insert(field, applied);
    }
    Ok(new)
}

fn apply_array(old: &[Bson], diff: &Document) -> Result<Vec<Bson>, String> {
    let mut new = old.to_vec();
    if let Some(l) = diff.get("l") {
        let l = match l {
            Bson::Int32(i) => *i as i64,
            Bson::Int64(i) => *i,
            _ => return Err("array diff length is not an integer".into()),
        };
        let l = usize::try_from(l).map_err(|_| "negative array diff length")?;
        if l > new.len() + 1_500_000 {
            return Err("array diff length too large".into());
        }
        new.resize(l, Bson::Null);
    }
    for (k, v) in diff {
        let (kind, idx) = match k.split_at_checked(1) {
            Some((kind @ ("u" | "s"), idx)) => (kind, idx),
            _ => continue,
        };
        let Ok(idx) = idx.parse::<usize>() else {
            continue;
        };
        if idx > new.len() + 1_500_000 {
            return Err("array diff index too large".into());
        }
        if idx >= new.len() {
            new.resize(idx + 1, Bson::Null);
        }
        new[idx] = match (kind, &new[idx], v) {
            ("u", _, v) => v.clone(),
            ("s", Bson::Array(a), Bson::Document(sub)) => Bson::Array(apply_array(a, sub)?),
            ("s", Bson::Document(d), Bson::Document(sub)) => Bson::Document(apply(d, sub)?),
            _ => return Err(format!("array element diff {k} does not apply")),
        };
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mongo::query::update::apply as update;

    #[test]
    fn nested_diffs_like_mongod_and_back() {
        let old = doc! { "_id": 1, "a": 1, "n": { "x": 1, "y": { "z": 1 } }, "arr": [1, { "k": 1 }, 3], "gone": 0 };
        let u = doc! {
            "$set": { "n.y.z": 2, "arr.1.k": 5, "new": true },
            "$unset": { "gone": "" },
            "$inc": { "a": 1 },
            "$push": { "arr": 4 },
        };
        let new = update(&old, &u).unwrap();
        let d = compute(&old, &new);
        assert_eq!(
            d,
            doc! {
                "d": { "gone": false }, "u": { "a": 2 }, "i": { "new": true },
                "sn": { "sy": { "u": { "z": 2 } } },
                "sarr": { "a": true, "s1": { "u": { "k": 5 } }, "u3": 4 },
            }
        );
        assert_eq!(apply(&old, &d).unwrap(), new);
        // a shorter array: `l`
        let shorter = update(&new, &doc! { "$pop": { "arr": 1 } }).unwrap();
        let d = compute(&new, &shorter);
        assert_eq!(d, doc! { "sarr": { "a": true, "l": 3i64 } });
        assert_eq!(apply(&new, &d).unwrap(), shorter);
        // tidemark's own parser (protocols/mongo) reads the nested diff
        let raw = tidemark_mongo::bson::RawDocumentBuf::try_from(&compute(&old, &new)).unwrap();
        let parsed = tidemark_mongo::repl::DocDiff::parse(&raw).expect("tidemark parses it");
        assert_eq!(parsed.delete, vec!["gone"]);
        assert_eq!(parsed.sub.len(), 2);
        assert!(
            matches!(parsed.sub[1], ("arr", tidemark_mongo::repl::SubDiff::Array(ref a)) if a.update.len() == 1 && a.sub.len() == 1)
        );
        // garbage diffs are errors, not panics
        assert!(apply(&old, &doc! { "sa": { "u": { "x": 1 } } }).is_err());
        assert!(apply(&old, &doc! { "sarr": { "a": true, "l": -1 } }).is_err());
        assert!(apply(&old, &doc! { "sarr": { "a": true, "u99999999999": 1 } }).is_err());
    }
}
