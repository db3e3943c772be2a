//! CQL literals (as written in statement text) rendered as Cassandra's `SELECT JSON`
//! would render the stored value.
//!
//! With the column type known (schema or bind metadata), a literal is converted the
//! way Cassandra converts it on write (`'2024-01-02 03:04:05.678+0000'` → timestamp →
//! `"2024-01-02 03:04:05.678Z"`, `1mo2d3h` → duration, `{2, 1}` → sorted set), then
//! rendered through tidemark-cql's JSON renderer. Without a type it is rendered from
//! its own shape (strings as strings, numbers as numbers, blobs as `0x…`). Function
//! calls and arithmetic cannot be evaluated offline: they are shown as their CQL text.

use std::net::IpAddr;

use serde_json::{Map, Value as Json};
use tidemark_cql::statement::Term;
use tidemark_cql::types::decimal::exact_number;
use tidemark_cql::types::format;
use tidemark_cql::{to_json, ColumnType, Value};

use super::order::normalize;
use super::time::{parse_date, parse_duration, parse_time, parse_timestamp};

/// Resolves a bind marker (by index) to its rendered value, given the type the
/// context expects; `None` means UNSET (the cell is left alone).
pub type Binder<'b> = dyn Fn(usize, Option<&ColumnType>) -> Option<Json> + 'b;

/// Renders `term` for a cell of type `ty`. `None` when the term is an UNSET marker.
pub fn render(term: &Term<'_>, ty: Option<&ColumnType>, bind: &Binder<'_>) -> Option<Json> {
    let mut out = render_inner(term, ty.map(ColumnType::effective), bind)?;
    if let Some(t) = ty {
        normalize(&mut out, t);
    }
    Some(out)
}

fn render_inner(term: &Term<'_>, ty: Option<&ColumnType>, bind: &Binder<'_>) -> Option<Json> {
    use ColumnType as T;
    let elem = |i: usize| -> Option<&ColumnType> {
        match ty? {
            T::List(e) | T::Set(e) | T::Vector { element: e, .. } => Some(e),
            T::Tuple(ts) => ts.get(i),
            _ => None,
        }
    };
    Some(match term {
        Term::Null => Json::Null,
        Term::Bind(m) => return bind(m.index, ty),
        Term::Bool(b) => Json::Bool(*b),
        Term::Integer(s) | Term::Float(s) => number(s, ty),
        Term::Str(s) => string(s, ty),
        Term::Uuid(s) => Json::String(s.to_ascii_lowercase()),
        Term::Blob(s) => Json::String(s.to_ascii_lowercase()),
        Term::Duration(s) => match parse_duration(s) {
            Some((m, d, n)) => Json::String(format::duration(m, d, n)),
            None => Json::String((*s).to_string()),
        },
        Term::List(items) | Term::Set(items) | Term::Tuple(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    render_inner(x, elem(i).map(ColumnType::effective), bind).unwrap_or(Json::Null)
                })
                .collect(),
        ),
        Term::Map(entries) => {
            let (kt, vt) = match ty {
                Some(T::Map(k, v)) => (Some(k.effective()), Some(v.effective())),
                _ => (None, None),
            };
            // `{}` parses as an empty set; as a map value it is an empty map.
            let mut m = Map::new();
            for (k, v) in entries {
                let key = match render_inner(k, kt, bind) {
                    Some(Json::String(s)) => s,
                    Some(other) => other.to_string(),
                    None => continue,
                };
                m.insert(key, render_inner(v, vt, bind).unwrap_or(Json::Null));
            }
            Json::Object(m)
        }
        Term::Udt(fields) => {
            let ftypes: &[(tidemark_cql::Text, ColumnType)] = match ty {
                Some(T::Udt { fields, .. }) => fields,
                _ => &[],
            };
            let mut m = Map::new();
            for (name, v) in fields {
                let ft = ftypes
                    .iter()
                    .find(|(n, _)| n.as_str() == name.as_str())
                    .map(|(_, t)| t.effective());
                m.insert(
                    name.as_str().to_string(),
                    render_inner(v, ft, bind).unwrap_or(Json::Null),
                );
            }
            Json::Object(m)
        }
        Term::TypeHint { term, .. } => return render_inner(term, ty, bind),
        Term::Negate(inner) => match render_inner(inner, ty, bind)? {
            Json::Number(n) => number(&format!("-{n}"), ty),
            other => Json::String(format!("-{other}")),
        },
        Term::Function { .. } | Term::Cast { .. } | Term::BinaryOp { .. } => {
            Json::String(term.to_string())
        }
    })
}

/// A numeric literal for a column of type `ty` (any type when `ty` is `None`).
fn number(s: &str, ty: Option<&ColumnType>) -> Json {
    use ColumnType as T;
    let v = match ty {
        Some(T::Int) => s.parse().ok().map(Value::Int),
        Some(T::BigInt) => s.parse().ok().map(Value::BigInt),
        Some(T::Counter) => s.parse().ok().map(Value::Counter),
        Some(T::SmallInt) => s.parse().ok().map(Value::SmallInt),
        Some(T::TinyInt) => s.parse().ok().map(Value::TinyInt),
        Some(T::Float) => s.parse().ok().map(Value::Float),
        Some(T::Double) => s.parse().ok().map(Value::Double),
        Some(T::Timestamp) => s.parse().ok().map(Value::Timestamp),
        Some(T::Date) => s.parse().ok().map(Value::Date),
        Some(T::Time) => s.parse().ok().map(Value::Time),
        _ => None,
    };
    match (v, ty) {
        (Some(v), Some(t)) => to_json(&v, t),
        _ => exact_number(s),
    }
}

/// A string literal for a column of type `ty`: Cassandra parses it by the type.
fn string(s: &str, ty: Option<&ColumnType>) -> Json {
    use ColumnType as T;
    let v = match ty {
        Some(T::Timestamp) => parse_timestamp(s).map(Value::Timestamp),
        Some(T::Date) => parse_date(s).map(Value::Date),
        Some(T::Time) => parse_time(s).map(Value::Time),
        Some(T::Inet) => s.parse::<IpAddr>().ok().map(Value::Inet),
        Some(T::Uuid | T::Timeuuid) => return Json::String(s.to_ascii_lowercase()),
        Some(T::Duration) => parse_duration(s).map(|(months, days, nanos)| Value::Duration {
            months,
            days,
            nanos,
        }),
        Some(
            t @ (T::Int
            | T::BigInt
            | T::SmallInt
            | T::TinyInt
            | T::Varint
            | T::Decimal
            | T::Float
            | T::Double),
        ) => {
            return number(s, Some(t));
        }
        _ => None,
    };
    match (v, ty) {
        (Some(v), Some(t)) => to_json(&v, t),
        _ => Json::String(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tidemark_cql::statement::parse_statement;

    fn no_binds(_: usize, _: Option<&ColumnType>) -> Option<Json> {
        Some(Json::Null)
    }

    fn first_value(sql: &str, ty: Option<&ColumnType>) -> Json {
        let st = parse_statement(sql).unwrap();
        let tidemark_cql::statement::StatementKind::Modification(
            tidemark_cql::statement::Modification::Insert(i),
        ) = &st.kind
        else {
            panic!("not an insert")
        };
        let tidemark_cql::statement::InsertValues::Columns(cols) = &i.values else {
            panic!("json insert")
        };
        render(&cols[0].1, ty, &no_binds).unwrap()
    }

    #[test]
    fn typed_literals_render_like_select_json() {
        use ColumnType as T;
        let ts = first_value(
            "INSERT INTO t (a) VALUES ('2024-01-02 03:04:05.678+0000')",
            Some(&T::Timestamp),
        );
        assert_eq!(ts, json!("2024-01-02 03:04:05.678Z"));
        let d = first_value("INSERT INTO t (a) VALUES (1mo2d3h)", Some(&T::Duration));
        assert_eq!(d, json!("1mo2d3h"));
        let s = first_value(
            "INSERT INTO t (a) VALUES ({2, 1})",
            Some(&T::Set(Box::new(T::Int))),
        );
        assert_eq!(s, json!([1, 2]));
        let v = first_value(
            "INSERT INTO t (a) VALUES (-98765432109876543210)",
            Some(&T::Varint),
        );
        assert_eq!(v, json!("-98765432109876543210"));
        let f = first_value("INSERT INTO t (a) VALUES (-0.5)", Some(&T::Decimal));
        assert_eq!(f, json!(-0.5));
        let b = first_value("INSERT INTO t (a) VALUES (0xCAFE)", None);
        assert_eq!(b, json!("0xcafe"));
        let u = first_value("INSERT INTO t (a) VALUES ({street: 'Elm', zip: 1})", None);
        assert_eq!(u, json!({"street": "Elm", "zip": 1}));
        let t = first_value(
            "INSERT INTO t (a) VALUES ('23:59:59.999999999')",
            Some(&T::Time),
        );
        assert_eq!(t, json!("23:59:59.999999999"));
    }
}
