//! Query filters: equality on top-level and dotted fields (matching array
//! elements as MongoDB does), the comparison operators, `$in`/`$nin`,
//! `$exists`, `$elemMatch`, `$size`, `$all`, `$not`, and `$and`/`$or`/`$nor`.
//! Anything else is refused with an
//! error reply rather than guessed at.

use std::cmp::Ordering;
use tidemark_mongo::bson::{Bson, Document};

/// The value at a dotted `path` ("a.b.0.c"), descending into documents and,
/// for numeric components, into arrays.
pub fn get_path<'a>(d: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut cur = d.get(parts.next()?)?;
    for p in parts {
        cur = match cur {
            Bson::Document(sub) => sub.get(p)?,
            Bson::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Every value a dotted `path` reaches, descending into each document of
/// an array when the next component is a field name (as queries on
/// `"items.k"` do in MongoDB).
pub fn get_all<'a>(d: &'a Document, path: &str) -> Vec<&'a Bson> {
    let (head, rest) = path
        .split_once('.')
        .map_or((path, None), |(h, r)| (h, Some(r)));
    let Some(v) = d.get(head) else {
        return Vec::new();
    };
    let Some(rest) = rest else {
        return vec![v];
    };
    descend(v, rest)
}

fn descend<'a>(v: &'a Bson, rest: &str) -> Vec<&'a Bson> {
    match v {
        Bson::Document(sub) => get_all(sub, rest),
        Bson::Array(a) => {
            let (head, more) = rest
                .split_once('.')
                .map_or((rest, None), |(h, r)| (h, Some(r)));
            if let Ok(i) = head.parse::<usize>() {
                return match (a.get(i), more) {
                    (Some(e), None) => vec![e],
                    (Some(e), Some(m)) => descend(e, m),
                    (None, _) => Vec::new(),
                };
            }
            a.iter()
                .filter_map(|e| match e {
                    Bson::Document(sub) => Some(get_all(sub, rest)),
                    _ => None,
                })
                .flatten()
                .collect()
        }
        _ => Vec::new(),
    }
}

fn number(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(i) => Some(*i as f64),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

/// Order of two values of comparable types (numbers across int32/int64/double,
/// strings, dates, timestamps, ObjectIds, booleans); `None` across types,
/// where MongoDB's comparison operators do not match either.
pub fn compare(a: &Bson, b: &Bson) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x.partial_cmp(&y);
    }
    match (a, b) {
        (Bson::String(x), Bson::String(y)) => Some(x.cmp(y)),
        (Bson::DateTime(x), Bson::DateTime(y)) => Some(x.cmp(y)),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => Some(x.cmp(y)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => Some(x.cmp(y)),
        (Bson::Boolean(x), Bson::Boolean(y)) => Some(x.cmp(y)),
        (Bson::Null, Bson::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

/// Equality as a query sees it: numerically across number types, otherwise
/// exact BSON equality (documents field order included, as in MongoDB).
pub fn values_equal(a: &Bson, b: &Bson) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// `field` (absent = `None`) equals `want`, or is an array with an element
/// that does. A missing field equals `null`.
fn eq_match(field: Option<&Bson>, want: &Bson) -> bool {
    match field {
        None => matches!(want, Bson::Null),
        Some(v) => {
            values_equal(v, want)
                || matches!(v, Bson::Array(a) if a.iter().any(|e| values_equal(e, want)))
        }
    }
}

fn cmp_match(field: Option<&Bson>, want: &Bson, ok: fn(Ordering) -> bool) -> bool {
    let one = |v: &Bson| compare(v, want).is_some_and(ok);
    match field {
        None => false,
        Some(Bson::Array(a)) if !matches!(want, Bson::Array(_)) => a.iter().any(one),
        Some(v) => one(v),
    }
}

/// Whether `d` matches `filter`; `Err` names an unsupported or malformed
/// operator (sent back as a BadValue error).
pub fn matches(d: &Document, filter: &Document) -> Result<bool, String> {
    for (k, v) in filter {
        let ok = match k.as_str() {
            "$and" | "$or" | "$nor" => {
                let Bson::Array(items) = v else {
                    return Err(format!("{k} must be an array"));
                };
                let mut results = Vec::with_capacity(items.len());
                for item in items {
                    let Bson::Document(sub) = item else {
                        return Err(format!("{k} entries must be objects"));
                    };
                    results.push(matches(d, sub)?);
                }
                match k.as_str() {
                    "$and" => results.iter().all(|r| *r),
                    "$or" => results.iter().any(|r| *r),
                    _ => !results.iter().any(|r| *r),
                }
            }
            _ if k.starts_with('$') => return Err(format!("unknown top level operator: {k}")),
            path => {
                let found = get_all(d, path);
                if found.len() <= 1 {
                    field_matches(found.first().copied(), v)?
                } else {
                    // a dotted path through an array of documents: any element
                    let mut any = false;
                    for f in found {
                        if field_matches(Some(f), v)? {
                            any = true;
                            break;
                        }
                    }
                    any
                }
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a field value (absent = `None`) satisfies `cond`: a plain value
/// (equality) or a document of operators.
pub fn field_matches(field: Option<&Bson>, cond: &Bson) -> Result<bool, String> {
    let ops = match cond {
        Bson::Document(ops) if ops.keys().next().is_some_and(|k| k.starts_with('$')) => ops,
        Bson::RegularExpression(re) => {
            return super::match_ops::regex_matches(field, re.pattern.as_str(), re.options.as_str())
        }
        _ => return Ok(eq_match(field, cond)),
    };
    for (op, arg) in ops {
        let ok = match op.as_str() {
            "$eq" => eq_match(field, arg),
            "$ne" => !eq_match(field, arg),
            "$gt" => cmp_match(field, arg, |o| o == Ordering::Greater),
            "$gte" => cmp_match(field, arg, |o| o != Ordering::Less),
            "$lt" => cmp_match(field, arg, |o| o == Ordering::Less),
            "$lte" => cmp_match(field, arg, |o| o != Ordering::Greater),
            "$in" | "$nin" => {
                let Bson::Array(set) = arg else {
                    return Err(format!("{op} needs an array"));
                };
                let mut hit = false;
                for w in set {
                    hit |= match w {
                        Bson::RegularExpression(re) => super::match_ops::regex_matches(
                            field,
                            re.pattern.as_str(),
                            re.options.as_str(),
                        )?,
                        w => eq_match(field, w),
                    };
                }
                hit == (op == "$in")
            }
            "$regex" => {
                let (pattern, own) = match arg {
                    Bson::String(p) => (p.as_str(), ""),
                    Bson::RegularExpression(re) => (re.pattern.as_str(), re.options.as_str()),
                    _ => return Err("$regex has to be a string".into()),
                };
                let options = ops.get_str("$options").unwrap_or(own);
                super::match_ops::regex_matches(field, pattern, options)?
            }
            "$options" if ops.contains_key("$regex") => true,
            "$options" => return Err("$options needs a $regex".into()),
            "$type" => super::match_ops::type_matches(field, arg)?,
            "$mod" => super::match_ops::mod_matches(field, arg)?,
            "$elemMatch" => match field {
                Some(Bson::Array(a)) => {
                    let mut any = false;
                    for e in a {
                        if super::update_path::element_matches(e, arg)? {
                            any = true;
                            break;
                        }
                    }
                    any
                }
                _ => false,
            },
            "$size" => match (field, arg) {
                (Some(Bson::Array(a)), n) => number(n) == Some(a.len() as f64),
                _ => false,
            },
            "$all" => {
                let Bson::Array(want) = arg else {
                    return Err("$all needs an array".into());
                };
                !want.is_empty() && want.iter().all(|w| eq_match(field, w))
            }
            "$not" => {
                if !matches!(arg, Bson::Document(_)) {
                    return Err("$not needs an object of operators".into());
                }
                !field_matches(field, arg)?
            }
            "$exists" => {
                let want = !matches!(arg, Bson::Boolean(false) | Bson::Int32(0) | Bson::Int64(0));
                field.is_some() == want
            }
            other => return Err(format!("unknown operator: {other}")),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_mongo::bson::doc;

    #[test]
    fn equality_dotted_arrays_and_operators() {
        let d = doc! { "_id": 1, "a": { "b": 5 }, "tags": ["x", "y"], "n": 2.0 };
        assert!(matches(&d, &doc! { "_id": 1i64 }).unwrap());
        assert!(matches(&d, &doc! { "a.b": 5 }).unwrap());
        assert!(matches(&d, &doc! { "tags": "y" }).unwrap());
        assert!(matches(&d, &doc! { "n": { "$gte": 2, "$lt": 3 } }).unwrap());
        assert!(matches(&d, &doc! { "missing": null }).unwrap());
        assert!(!matches(&d, &doc! { "n": { "$in": [1, 3] } }).unwrap());
        assert!(matches(&d, &doc! { "$or": [ { "n": 7 }, { "a.b": 5 } ] }).unwrap());
        assert!(matches(&d, &doc! { "x": { "$exists": false } }).unwrap());
        assert!(matches(&d, &doc! { "n": { "$regex": "a" } }).is_ok_and(|m| !m));
        let s = doc! { "name": "Alice", "tags": ["x1", "y2"], "n": 7, "l": 7i64 };
        assert!(matches(&s, &doc! { "name": { "$regex": "^al", "$options": "i" } }).unwrap());
        assert!(!matches(&s, &doc! { "name": { "$regex": "^al" } }).unwrap());
        let re = tidemark_mongo::bson::Regex {
            pattern: "^y".to_string().try_into().unwrap(),
            options: String::new().try_into().unwrap(),
        };
        assert!(matches(&s, &doc! { "tags": re.clone() }).unwrap());
        assert!(matches(&s, &doc! { "tags": { "$in": [re, "zz"] } }).unwrap());
        assert!(matches(&s, &doc! { "name": { "$regex": "(" } }).is_err());
        assert!(matches(&s, &doc! { "n": { "$type": "int" }, "l": { "$type": 18 } }).unwrap());
        assert!(matches(
            &s,
            &doc! { "n": { "$type": ["string", "number"] }, "tags": { "$type": "string" } }
        )
        .unwrap());
        assert!(!matches(&s, &doc! { "name": { "$type": "number" } }).unwrap());
        assert!(matches(&s, &doc! { "n": { "$type": "nonsense" } }).is_err());
        assert!(matches(&s, &doc! { "n": { "$mod": [4, 3] } }).unwrap());
        assert!(matches(&s, &doc! { "n": { "$mod": [0, 1] } }).is_err());
        assert!(matches(&s, &doc! { "n": { "$mod": [i64::MIN, -1] } }).is_ok());
        assert!(matches(&d, &doc! { "$where": "1" }).is_err());
        assert!(matches(&d, &doc! { "tags": { "$size": 2, "$all": ["y", "x"] } }).unwrap());
        assert!(matches(&d, &doc! { "tags": { "$elemMatch": { "$gt": "x" } } }).unwrap());
        assert!(matches(&d, &doc! { "n": { "$not": { "$gt": 5 } } }).unwrap());
        let e = doc! { "items": [ { "k": "a", "q": 1 }, { "k": "b", "q": 5 } ] };
        assert!(matches(
            &e,
            &doc! { "items": { "$elemMatch": { "k": "b", "q": { "$gt": 2 } } } }
        )
        .unwrap());
        assert!(!matches(
            &e,
            &doc! { "items": { "$elemMatch": { "k": "a", "q": { "$gt": 2 } } } }
        )
        .unwrap());
    }
}
