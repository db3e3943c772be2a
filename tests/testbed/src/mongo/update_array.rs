//! The array update operators: `$push` (with `$each`, `$position`,
//! `$slice`), `$addToSet` (with `$each`), `$pop`, `$pull` (a value or a
//! query condition) and `$pullAll`. `$push` with `$sort` is refused rather
//! than approximated.

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
        .find(|k| !matches!(k.as_str(), "$each" | "$position" | "$slice"))
    {
        return Err(err(
            2,
            "BadValue",
            format!("$push modifier {k} is not supported by the testbed"),
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
        assert!(apply(
            "$push",
            cur.clone(),
            &bson!({ "$each": [1], "$sort": 1 }),
            "a"
        )
        .is_err());
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
