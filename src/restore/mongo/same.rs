//! When a document in the target is the version's document: the same fields in the
//! same order with the same values of the same BSON types (an int32 `1` is not an
//! int64 `1`, `{a, b}` is not `{b, a}`), except that `_id` may move to the front,
//! because servers put it first on insert. This is byte equality of the documents
//! with `_id` first: a restore writes each document exactly as the version stores it,
//! so anything else is a real change (a driver or server that reorders or retypes
//! fields is caught, not forgiven).

use std::borrow::Cow;

use tidemark_mongo::bson::{Bson, Document, RawDocument};

/// The document's bytes with `_id` first (borrowed when it already is).
pub fn normalized(bytes: &[u8]) -> Cow<'_, [u8]> {
    let first_is_id = RawDocument::from_bytes(bytes)
        .ok()
        .and_then(|d| d.iter().next())
        .and_then(|e| e.ok())
        .is_none_or(|(k, _)| k.as_str() == "_id");
    if first_is_id {
        return Cow::Borrowed(bytes);
    }
    let Ok(mut d) = Document::from_reader(bytes) else {
        return Cow::Borrowed(bytes);
    };
    let mut out = Document::new();
    if let Some(id) = d.remove("_id") {
        out.insert("_id", id);
    }
    out.extend(d);
    match out.to_vec() {
        Ok(v) => Cow::Owned(v),
        Err(_) => Cow::Borrowed(bytes),
    }
}

/// Whether `a` and `b` are the same document (see the module).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a == b || normalized(a) == normalized(b)
}

/// One line naming what differs between the version's document `want` and the
/// target's `got`: each top-level field that is missing, extra or unequal, with both
/// values (relaxed Extended JSON, cut at 60 characters).
pub fn describe(want: &[u8], got: &[u8]) -> String {
    let (Ok(w), Ok(g)) = (Document::from_reader(want), Document::from_reader(got)) else {
        return "unreadable BSON".into();
    };
    let show = |v: Option<&Bson>| -> String {
        match v {
            None => "absent".into(),
            Some(v) => {
                let s = super::extjson::to_json(v).to_string();
                if s.chars().count() > 60 {
                    format!("{}…", s.chars().take(60).collect::<String>())
                } else {
                    s
                }
            }
        }
    };
    let mut parts = Vec::new();
    let mut keys: Vec<&String> = w.keys().collect();
    keys.extend(g.keys().filter(|k| !w.contains_key(*k)));
    for k in keys {
        let (a, b) = (w.get(k), g.get(k));
        let equal = match (a, b) {
            (Some(a), Some(b)) => {
                let (ea, eb) = (
                    Document::from_iter([(k.clone(), a.clone())]).to_vec().ok(),
                    Document::from_iter([(k.clone(), b.clone())]).to_vec().ok(),
                );
                ea.is_some() && ea == eb
            }
            _ => false,
        };
        if !equal {
            let (mut sa, mut sb) = (show(a), show(b));
            if sa == sb {
                // the same in relaxed form: the types differ
                let typed =
                    |s: String, v: Option<&Bson>| format!("{s} ({:?})", v.map(Bson::element_type));
                (sa, sb) = (typed(sa, a), typed(sb, b));
            }
            parts.push(format!("{k}: version {sa}, target {sb}"));
        }
    }
    if parts.is_empty() {
        "field order differs".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_mongo::bson::doc;

    #[test]
    fn id_may_move_first_but_types_and_order_count() {
        let a = doc! {"x": 1, "_id": 5}.to_vec().unwrap();
        let b = doc! {"_id": 5, "x": 1}.to_vec().unwrap();
        assert!(same(&a, &b));
        let c = doc! {"_id": 5, "x": 1i64}.to_vec().unwrap();
        assert!(!same(&b, &c));
        assert_eq!(
            describe(&b, &c),
            "x: version 1 (Some(Int32)), target 1 (Some(Int64))"
        );
        let d = doc! {"_id": 5, "s": {"a": 1, "b": 2}}.to_vec().unwrap();
        let e = doc! {"_id": 5, "s": {"b": 2, "a": 1}}.to_vec().unwrap();
        assert!(!same(&d, &e));
        let f = doc! {"_id": 5, "x": 2, "y": true}.to_vec().unwrap();
        assert_eq!(
            describe(&b, &f),
            "x: version 1, target 2; y: version absent, target true"
        );
    }
}
