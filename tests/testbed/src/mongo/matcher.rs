//! Query filters: equality on top-level and dotted fields (matching array
//! elements as MongoDB does), the comparison operators, `$in`/`$nin`,
//! `$exists`, and `$and`/`$or`/`$nor`. Anything else is refused with an
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
            path => field_matches(get_path(d, path), v)?,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn field_matches(field: Option<&Bson>, cond: &Bson) -> Result<bool, String> {
    let ops = match cond {
        Bson::Document(ops) if ops.keys().next().is_some_and(|k| k.starts_with('$')) => ops,
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
                let hit = set.iter().any(|w| eq_match(field, w));
                hit == (op == "$in")
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
        assert!(matches(&d, &doc! { "n": { "$regex": "a" } }).is_err());
        assert!(matches(&d, &doc! { "$where": "1" }).is_err());
    }
}
