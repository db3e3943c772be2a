//! The array update operators: `$push` (with `$each`, `$position`,
//! `$sort`, `$slice`, applied in that order as MongoDB does), `$addToSet`
//! (with `$each`), `$pop`, `$pull` (a value or a query condition) and
//! `$pullAll`.

use super::matcher::{field_matches, matches, values_equal};
use super::update::{err, UpdateError};
use tidemark_mongo::bson::Bson;

/// The array at `path` after `op` with argument `v`; `cur` is the field's
/// current value (a missing field counts as an empty array for the adding
/// operators).
pub fn apply(op: &str, cur: Option<Bson>, v: &Bson, path: &str) -> Result<Vec<Bson>, UpdateError> {
    let mut arr = match cur {
        None => Vec::new(),
        Some(Bson::Array(a)) => a,
        Some(other) => {
            return Err(err(
                2,
                "BadValue",
                format!(
                    "The field '{path}' must be an array but is of type {:?}",
                    other.element_type()
                ),
            ))
        }
    };
    match op {
        "$push" => push(&mut arr, v)?,
        "$addToSet" => {
            for item in each(v)? {
                if !arr.iter().any(|e| same(e, &item)) {
                    arr.push(item);
                }
            }
        }
        "$pop" => {
            let first = matches!(v, Bson::Int32(-1) | Bson::Int64(-1))
                || matches!(v, Bson::Double(d) if *d == -1.0);
            if first {
                if !arr.is_empty() {
                    arr.remove(0);
                }
            } else {
                arr.pop();
            }
        }
        "$pull" => {
            let mut keep = Vec::with_capacity(arr.len());
            for e in arr {
                if !pull_matches(&e, v)? {
                    keep.push(e);
                }
            }
            arr = keep;
        }
        "$pullAll" => {
            let Bson::Array(gone) = v else {
                return Err(err(2, "BadValue", "$pullAll requires an array argument"));
            };
            arr.retain(|e| !gone.iter().any(|g| same(e, g)));
        }
        other => {
            return Err(err(
                9,
                "FailedToParse",
                format!("Unknown modifier: {other}"),
            ))
        }
    }
    Ok(arr)
}

/// Equality for `$addToSet`/`$pullAll`: numbers across types, else exact.
fn same(a: &Bson, b: &Bson) -> bool {
    values_equal(a, b)
}

/// The items of a `{$each: [...]}` argument, or the argument itself.
fn each(v: &Bson) -> Result<Vec<Bson>, UpdateError> {
    match v {
        Bson::Document(d) if d.contains_key("$each") => match d.get("$each") {
            Some(Bson::Array(a)) => Ok(a.clone()),
            _ => Err(err(2, "BadValue", "$each requires an array")),
        },
        other => Ok(vec![other.clone()]),
    }
}

fn int(v: &Bson, what: &str) -> Result<i64, UpdateError> {
    match v {
        Bson::Int32(i) => Ok(*i as i64),
        Bson::Int64(i) => Ok(*i),
        Bson::Double(d) if d.fract() == 0.0 => Ok(*d as i64),
        _ => Err(err(2, "BadValue", format!("{what} must be an integer"))),
    }
}

fn push(arr: &mut Vec<Bson>, v: &Bson) -> Result<(), UpdateError> {
    let modifiers = matches!(v, Bson::Document(d) if d.contains_key("$each"));
    if !modifiers {
        arr.push(v.clone());
        return Ok(());
    }
    let Bson::Document(spec) = v else {
        return Ok(());
    };
    if let Some(k) = spec
        .keys()
        .find(|k| !matches!(k.as_str(), "$each" | "$position" | "$slice" | "$sort"))
    {
        return Err(err(
            2,
            "BadValue",
            format!("Unrecognized clause in $push: {k}"),
        ));
    }
    let items = each(v)?;
    let len = arr.len() as i64;
    let at = match spec.get("$position") {
        None => len,
        Some(p) => {
            let p = int(p, "$position")?;
            if p < 0 {
                (len + p).max(0)
            } else {
                p.min(len)
            }
        }
    } as usize;
    arr.splice(at..at, items);
    if let Some(order) = spec.get("$sort") {
        sort(arr, order)?;
    }
    if let Some(s) = spec.get("$slice") {
        let s = int(s, "$slice")?;
        let n = arr.len() as i64;
        if s >= 0 {
            arr.truncate(s as usize);
        } else if s.unsigned_abs() < n as u64 {
            arr.drain(..(n + s) as usize);
        }
    }
    Ok(())
}

/// `$push`'s `$sort`: `1`/`-1` sorts the elements themselves, a document
/// sorts document elements by its fields (MongoDB's BSON order).
fn sort(arr: &mut [Bson], order: &Bson) -> Result<(), UpdateError> {
    use super::order::{cmp_bson, cmp_by_sort, parse_sort};
    match order {
        Bson::Document(spec) => {
            let spec = parse_sort(spec).map_err(|m| err(2, "BadValue", m))?;
            let empty = tidemark_mongo::bson::Document::new();
            arr.sort_by(|a, b| {
                let da = a.as_document().unwrap_or(&empty);
                let db = b.as_document().unwrap_or(&empty);
                cmp_by_sort(da, db, &spec)
            });
        }
        dir => match int(dir, "$sort")? {
            1 => arr.sort_by(cmp_bson),
            -1 => arr.sort_by(|a, b| cmp_bson(b, a)),
            _ => return Err(err(2, "BadValue", "$sort must be 1, -1 or a sort document")),
        },
    }
    Ok(())
}

/// Whether `$pull`'s condition `cond` removes element `e`: a document with
/// operators is a condition on the element, a plain document is a query on
/// document elements, anything else is equality.
fn pull_matches(e: &Bson, cond: &Bson) -> Result<bool, UpdateError> {
    let bad = |m: String| err(2, "BadValue", m);
    match cond {
        Bson::Document(c) if c.keys().next().is_some_and(|k| k.starts_with('$')) => {
            field_matches(Some(e), cond).map_err(bad)
        }
        Bson::Document(c) => match e {
            Bson::Document(ed) => matches(ed, c).map_err(bad),
            _ => Ok(false),
        },
        other => Ok(values_equal(e, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_mongo::bson::{bson, doc};

    fn arr(v: Bson) -> Vec<Bson> {
        match v {
            Bson::Array(a) => a,
            _ => panic!("not an array"),
        }
    }

    #[test]
    fn push_each_position_slice() {
        let cur = Some(bson!([1, 2, 3]));
        let r = apply("$push", cur.clone(), &bson!(4), "a").unwrap();
        assert_eq!(r, arr(bson!([1, 2, 3, 4])));
        let spec = bson!({ "$each": [8, 9], "$position": 1 });
        assert_eq!(
            apply("$push", cur.clone(), &spec, "a").unwrap(),
            arr(bson!([1, 8, 9, 2, 3]))
        );
        let spec = bson!({ "$each": [4, 5], "$slice": -3 });
        assert_eq!(
            apply("$push", cur.clone(), &spec, "a").unwrap(),
            arr(bson!([3, 4, 5]))
        );
        let spec = bson!({ "$each": [0], "$position": 0, "$slice": 2 });
        assert_eq!(
            apply("$push", cur.clone(), &spec, "a").unwrap(),
            arr(bson!([0, 1]))
        );
        // $sort before $slice: the top two
        let spec = bson!({ "$each": [9, 0], "$sort": -1, "$slice": 2 });
        assert_eq!(
            apply("$push", cur.clone(), &spec, "a").unwrap(),
            arr(bson!([9, 3]))
        );
        let docs = Some(bson!([{ "s": 2 }, { "s": 1 }]));
        let spec = bson!({ "$each": [{ "s": 0 }], "$sort": { "s": 1 } });
        assert_eq!(
            apply("$push", docs, &spec, "a").unwrap(),
            arr(bson!([{ "s": 0 }, { "s": 1 }, { "s": 2 }]))
        );
        let bad = bson!({ "$each": [1], "$sort": 2 });
        assert!(apply("$push", cur.clone(), &bad, "a").is_err());
        let bad = bson!({ "$each": [1], "$bogus": 1 });
        assert!(apply("$push", cur.clone(), &bad, "a").is_err());
        assert!(apply("$push", Some(bson!(1)), &bson!(2), "a").is_err());
        // extreme arguments are values, not panics
        let spec = bson!({ "$each": [1], "$slice": i64::MIN, "$position": i64::MIN });
        assert_eq!(
            apply("$push", cur.clone(), &spec, "a").unwrap(),
            arr(bson!([1, 1, 2, 3]))
        );
        let spec = bson!({ "$each": [1], "$position": i64::MAX, "$slice": i64::MAX });
        assert_eq!(
            apply("$push", cur.clone(), &spec, "a").unwrap(),
            arr(bson!([1, 2, 3, 1]))
        );
        assert_eq!(
            apply("$push", None, &bson!(2), "a").unwrap(),
            arr(bson!([2]))
        );
    }

    #[test]
    fn add_to_set_pop_pull() {
        let cur = Some(bson!([1, 2, { "k": 1 }]));
        assert_eq!(
            apply(
                "$addToSet",
                cur.clone(),
                &bson!({ "$each": [2, 3, 3] }),
                "a"
            )
            .unwrap(),
            arr(bson!([1, 2, { "k": 1 }, 3]))
        );
        assert_eq!(
            apply("$pop", cur.clone(), &bson!(-1), "a").unwrap(),
            arr(bson!([2, { "k": 1 }]))
        );
        assert_eq!(
            apply("$pop", cur.clone(), &bson!(1), "a").unwrap(),
            arr(bson!([1, 2]))
        );
        assert_eq!(
            apply("$pull", cur.clone(), &bson!({ "$gte": 2 }), "a").unwrap(),
            arr(bson!([1, { "k": 1 }]))
        );
        assert_eq!(
            apply("$pull", cur.clone(), &bson!({ "k": 1 }), "a").unwrap(),
            arr(bson!([1, 2]))
        );
        assert_eq!(
            apply("$pullAll", cur, &bson!([1, 2]), "a").unwrap(),
            arr(bson!([{ "k": 1 }]))
        );
        let _ = doc! {};
    }
}
