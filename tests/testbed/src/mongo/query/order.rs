//! MongoDB's total order of BSON values (used by `sort`, `$min`/`$max`):
//! values of different types order by canonical type (MinKey < null <
//! numbers < strings < objects < arrays < binary < ObjectId < bool < date <
//! timestamp < regex < MaxKey), numbers compare across int32/int64/double.

use std::cmp::Ordering;
use tidemark_mongo::bson::{Bson, Document};

fn type_rank(v: &Bson) -> u8 {
    match v {
        Bson::MinKey => 0,
        Bson::Null | Bson::Undefined => 1,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 2,
        Bson::String(_) | Bson::Symbol(_) => 3,
        Bson::Document(_) => 4,
        Bson::Array(_) => 5,
        Bson::Binary(_) => 6,
        Bson::ObjectId(_) => 7,
        Bson::Boolean(_) => 8,
        Bson::DateTime(_) => 9,
        Bson::Timestamp(_) => 10,
        Bson::RegularExpression(_) => 11,
        Bson::DbPointer(_) => 12,
        Bson::JavaScriptCode(_) | Bson::JavaScriptCodeWithScope(_) => 13,
        Bson::MaxKey => 14,
    }
}

fn num(v: &Bson) -> f64 {
    match v {
        Bson::Int32(i) => *i as f64,
        Bson::Int64(i) => *i as f64,
        Bson::Double(d) => *d,
        // Decimal128 has no arithmetic in bson; parse its text form
        Bson::Decimal128(d) => d.to_string().parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// The total order of two BSON values.
pub fn cmp_bson(a: &Bson, b: &Bson) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Bson::Int64(x), Bson::Int64(y)) => x.cmp(y),
        (Bson::Int32(x), Bson::Int32(y)) => x.cmp(y),
        _ if ra == 2 => num(a).total_cmp(&num(b)),
        (Bson::String(x), Bson::String(y)) => x.cmp(y),
        (Bson::Document(x), Bson::Document(y)) => cmp_docs(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = cmp_bson(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
            .then(u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then(x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.cmp(y),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => {
            (x.time, x.increment).cmp(&(y.time, y.increment))
        }
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => {
            x.pattern.cmp(&y.pattern).then(x.options.cmp(&y.options))
        }
        _ => Ordering::Equal,
    }
}

/// Documents compare field by field: type, name, then value.
fn cmp_docs(x: &Document, y: &Document) -> Ordering {
    for ((kx, vx), (ky, vy)) in x.iter().zip(y.iter()) {
        let o = type_rank(vx)
            .cmp(&type_rank(vy))
            .then_with(|| kx.cmp(ky))
            .then_with(|| cmp_bson(vx, vy));
        if o != Ordering::Equal {
            return o;
        }
    }
    x.len().cmp(&y.len())
}

/// The value a document sorts by on `path`: a missing field sorts as null,
/// an array by its smallest element ascending and largest descending.
fn sort_key(d: &Document, path: &str, ascending: bool) -> Bson {
    let found = super::matcher::get_all(d, path);
    let mut candidates: Vec<&Bson> = Vec::new();
    for v in found {
        match v {
            Bson::Array(a) if !a.is_empty() => candidates.extend(a.iter()),
            other => candidates.push(other),
        }
    }
    let pick = if ascending {
        candidates.into_iter().min_by(|a, b| cmp_bson(a, b))
    } else {
        candidates.into_iter().max_by(|a, b| cmp_bson(a, b))
    };
    pick.cloned().unwrap_or(Bson::Null)
}

/// A parsed `sort` specification: (path, ascending) pairs in priority order.
pub fn parse_sort(spec: &Document) -> Result<Vec<(String, bool)>, String> {
    spec.iter()
        .map(|(k, v)| {
            let dir = match v {
                Bson::Int32(i) => *i as i64,
                Bson::Int64(i) => *i,
                Bson::Double(d) => *d as i64,
                _ => return Err(format!("sort on {k}: only 1 and -1 are supported")),
            };
            match dir {
                1 => Ok((k.clone(), true)),
                -1 => Ok((k.clone(), false)),
                _ => Err(format!("sort on {k}: direction must be 1 or -1")),
            }
        })
        .collect()
}

/// Compares two documents by a parsed sort specification.
pub fn cmp_by_sort(a: &Document, b: &Document, spec: &[(String, bool)]) -> Ordering {
    for (path, asc) in spec {
        let o = cmp_bson(&sort_key(a, path, *asc), &sort_key(b, path, *asc));
        let o = if *asc { o } else { o.reverse() };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_mongo::bson::doc;

    #[test]
    fn cross_type_and_sort() {
        assert_eq!(cmp_bson(&Bson::Null, &Bson::Int32(0)), Ordering::Less);
        assert_eq!(
            cmp_bson(&Bson::Int64(2), &Bson::Double(1.5)),
            Ordering::Greater
        );
        assert_eq!(
            cmp_bson(&Bson::String("a".into()), &Bson::Int32(9)),
            Ordering::Greater
        );
        let spec = parse_sort(&doc! { "a": -1, "b": 1 }).unwrap();
        let mut docs = [
            doc! { "a": 1, "b": 2 },
            doc! { "a": 2, "b": 9 },
            doc! { "a": 1, "b": 1 },
            doc! { "b": 0 },
        ];
        docs.sort_by(|x, y| cmp_by_sort(x, y, &spec));
        assert_eq!(
            docs.to_vec(),
            vec![
                doc! { "a": 2, "b": 9 },
                doc! { "a": 1, "b": 1 },
                doc! { "a": 1, "b": 2 },
                doc! { "b": 0 }
            ]
        );
        assert!(parse_sort(&doc! { "a": "text" }).is_err());
    }
}
