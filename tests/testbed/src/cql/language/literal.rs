//! Literal values written in statement text, serialized for a column type. Bound
//! values arrive serialized already; literals need this. Collections and UDT literals
//! are not handled yet (bind them instead).

use super::lex::{Cursor, Tok};
use super::literal_text;
use crate::cql::storage::clock;
use crate::cql::storage::collection;
use crate::cql::storage::collection::push_value;
use crate::cql::storage::order;
use crate::cql::storage::schema;
use bytes::Bytes;
use tidemark_cql::statement::Term;
use tidemark_cql::ColumnType;

/// A literal or bind marker parsed by the testbed's own cursor (SELECT, DDL).
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Uuid(String),
    Blob(String),
    /// Bind marker index and name.
    Marker(usize, Option<String>),
    Map(Vec<(Lit, Lit)>),
}

/// Reads one literal; markers are numbered with `next_marker`.
pub fn parse_lit(cur: &mut Cursor, next_marker: &mut usize) -> Result<Lit, String> {
    Ok(match cur.next_tok() {
        Some(Tok::Str(s)) => Lit::Str(s),
        Some(Tok::Num(n)) => Lit::Num(n),
        Some(Tok::Uuid(u)) => Lit::Uuid(u),
        Some(Tok::Blob(b)) => Lit::Blob(b),
        Some(Tok::Marker(name)) => {
            *next_marker += 1;
            Lit::Marker(*next_marker - 1, name)
        }
        Some(Tok::Ident {
            name,
            quoted: false,
        }) if name == "true" => Lit::Bool(true),
        Some(Tok::Ident {
            name,
            quoted: false,
        }) if name == "false" => Lit::Bool(false),
        Some(Tok::Ident {
            name,
            quoted: false,
        }) if name == "null" => Lit::Null,
        Some(Tok::Sym("{")) => {
            let mut m = Vec::new();
            if !cur.sym("}") {
                loop {
                    let k = parse_lit(cur, next_marker)?;
                    cur.expect_sym(":")?;
                    let v = parse_lit(cur, next_marker)?;
                    m.push((k, v));
                    if cur.sym("}") {
                        break;
                    }
                    cur.expect_sym(",")?;
                }
            }
            Lit::Map(m)
        }
        t => return Err(format!("expected a literal, found {t:?}")),
    })
}

impl Lit {
    /// The text of a string or number literal (for DDL options).
    pub fn text(&self) -> Option<&str> {
        match self {
            Lit::Str(s) | Lit::Num(s) => Some(s),
            Lit::Bool(true) => Some("true"),
            Lit::Bool(false) => Some("false"),
            _ => None,
        }
    }
}

/// The borrowed core both literal forms reduce to.
enum Raw<'a> {
    Null,
    Bool(bool),
    Int(&'a str),
    Float(&'a str),
    Str(&'a str),
    Uuid(&'a str),
    Blob(&'a str),
    Duration(&'a str),
}

/// Serializes a literal term of the real parser for `ty` (`Ok(None)` = null).
pub fn term_bytes(ty: &ColumnType, t: &Term<'_>) -> Result<Option<Bytes>, String> {
    let raw = match t {
        Term::Null => Raw::Null,
        Term::Bool(b) => Raw::Bool(*b),
        Term::Integer(s) => Raw::Int(s),
        Term::Float(s) => Raw::Float(s),
        Term::Str(s) => Raw::Str(s),
        Term::Uuid(s) => Raw::Uuid(s),
        Term::Blob(s) => Raw::Blob(s),
        Term::Duration(s) => Raw::Duration(s),
        Term::TypeHint { term, .. } => return term_bytes(ty, term),
        Term::Negate(inner) => match inner.as_ref() {
            Term::Integer(s) => return raw_bytes(ty, Raw::Int(&format!("-{s}"))),
            Term::Float(s) => return raw_bytes(ty, Raw::Float(&format!("-{s}"))),
            other => return Err(format!("unsupported literal -{other:?}")),
        },
        Term::List(items) | Term::Set(items) | Term::Tuple(items) => {
            return collection_term(ty, items, &[])
        }
        Term::Map(pairs) => return collection_term(ty, &[], pairs),
        Term::Udt(fields) => return udt_term(ty, fields),
        Term::Function { name, args } if args.is_empty() && name.keyspace.is_none() => {
            return function_value(ty, name.name.as_str())
        }
        other => return Err(format!("unsupported literal {other:?} (bind it instead)")),
    };
    raw_bytes(ty, raw)
}

/// Serializes a list/set/map/tuple literal (`[1, 2]`, `{'a'}`, `{'k': 1}`, `(1, 'x')`)
/// for `ty`, as the protocol encodes collections: an int count, then each element
/// (map: key then value) as `[int length][bytes]`; tuples without the count.
fn collection_term(
    ty: &ColumnType,
    items: &[Term<'_>],
    pairs: &[(Term<'_>, Term<'_>)],
) -> Result<Option<Bytes>, String> {
    use ColumnType as T;
    let one = |t: &ColumnType, x: &Term<'_>| -> Result<Option<Bytes>, String> {
        if x.as_marker().is_some() {
            return Err(
                "bind markers inside collection literals are not supported by the testbed".into(),
            );
        }
        term_bytes(t, x)
    };
    let mut elems: Vec<Option<Bytes>> = Vec::new();
    match ty.effective() {
        T::List(e) | T::Set(e) => {
            for x in items {
                elems.push(Some(one(e, x)?.ok_or("null inside a collection")?));
            }
            if matches!(ty.effective(), T::Set(_)) {
                elems.sort_by(|a, b| {
                    order::compare(e, a.as_deref().unwrap_or(&[]), b.as_deref().unwrap_or(&[]))
                });
                elems.dedup();
            }
        }
        T::Map(k, v) if items.is_empty() => {
            let mut kv: Vec<(Bytes, Option<Bytes>)> = Vec::new();
            for (a, b) in pairs {
                kv.push((one(k, a)?.ok_or("null map key")?, one(v, b)?));
            }
            kv.sort_by(|a, b| order::compare(k, &a.0, &b.0));
            kv.dedup_by(|a, b| a.0 == b.0);
            let mut out = (kv.len() as i32).to_be_bytes().to_vec();
            for (a, b) in kv {
                push_value(&mut out, Some(&a));
                push_value(&mut out, b.as_deref());
            }
            return Ok(Some(Bytes::from(out)));
        }
        T::Tuple(types) => {
            if items.len() > types.len() {
                return Err("too many tuple fields".into());
            }
            let mut out = Vec::new();
            for (t, x) in types.iter().zip(items) {
                push_value(&mut out, one(t, x)?.as_deref());
            }
            return Ok(Some(Bytes::from(out)));
        }
        // A vector literal is written like a list (`[1.0, 2.5]`) but serialized as
        // exactly `dimension` elements with no count: fixed-size elements back to
        // back, others each behind an unsigned vint length (protocol v5 §6).
        T::Vector { element, dimension } if pairs.is_empty() => {
            if items.len() != *dimension as usize {
                return Err(format!(
                    "Invalid vector literal for {}: expected {dimension} elements, given {}",
                    ty.cql_name(),
                    items.len()
                ));
            }
            let mut out = Vec::new();
            for x in items {
                let b = one(element, x)?.ok_or("null inside a vector")?;
                if element.fixed_len().is_none() {
                    tidemark_cql::wire::Writer::new(&mut out).unsigned_vint(b.len() as u64);
                }
                out.extend_from_slice(&b);
            }
            return Ok(Some(Bytes::from(out)));
        }
        _ if items.is_empty() && pairs.is_empty() => {
            return Ok(Some(Bytes::from_static(&[0, 0, 0, 0])))
        }
        _ => {
            return Err(format!(
                "collection literal for non-collection type {}",
                ty.cql_name()
            ))
        }
    }
    let mut out = (elems.len() as i32).to_be_bytes().to_vec();
    for e in &elems {
        push_value(&mut out, e.as_deref());
    }
    Ok(Some(Bytes::from(out)))
}

fn udt_term(
    ty: &ColumnType,
    fields: &[(tidemark_cql::statement::Ident<'_>, Term<'_>)],
) -> Result<Option<Bytes>, String> {
    let ColumnType::Udt { fields: defs, .. } = ty.effective() else {
        return Err(format!("UDT literal for type {}", ty.cql_name()));
    };
    for (f, _) in fields {
        if !defs.iter().any(|(n, _)| n.as_ref() == f.as_str()) {
            return Err(format!(
                "Unknown field '{}' in value of user defined type",
                f.as_str()
            ));
        }
    }
    let mut out = Vec::new();
    for (name, t) in defs {
        let v = match fields.iter().find(|(f, _)| f.as_str() == name.as_ref()) {
            Some((_, x)) => term_bytes(t, x)?,
            None => None,
        };
        push_value(&mut out, v.as_deref());
    }
    Ok(Some(Bytes::from(out)))
}

/// The native functions without arguments that stand for a value: `now()` /
/// `currentTimeUUID()` (a fresh timeuuid), `uuid()` (a fresh version-4 UUID),
/// `currentTimestamp()`, `currentDate()`.
fn function_value(ty: &ColumnType, name: &str) -> Result<Option<Bytes>, String> {
    let now_ms = clock::now_micros() / 1000;
    let v = match name.to_ascii_lowercase().as_str() {
        "now" | "currenttimeuuid" => collection::append_path(0),
        "uuid" => {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut u = schema::uuid_from(&format!("uuid() {n} {}", clock::now_micros()));
            u[6] = (u[6] & 0x0f) | 0x40;
            Bytes::copy_from_slice(&u)
        }
        "currenttimestamp" => Bytes::copy_from_slice(&now_ms.to_be_bytes()),
        "currentdate" => {
            let days = now_ms.div_euclid(86_400_000) + (1i64 << 31);
            Bytes::copy_from_slice(&(days as u32).to_be_bytes())
        }
        other => {
            return Err(format!(
                "function {other}() is not supported by the testbed (bind its value instead)"
            ))
        }
    };
    let ok = matches!(
        (name.to_ascii_lowercase().as_str(), ty.effective()),
        (
            "now" | "currenttimeuuid",
            ColumnType::Timeuuid | ColumnType::Uuid
        ) | ("uuid", ColumnType::Uuid)
            | ("currenttimestamp", ColumnType::Timestamp)
            | ("currentdate", ColumnType::Date)
    );
    if !ok {
        return Err(format!(
            "Type error: {name}() cannot be used as {}",
            ty.cql_name()
        ));
    }
    Ok(Some(v))
}

/// Serializes a testbed literal for `ty` (markers are resolved by the caller).
pub fn lit_bytes(ty: &ColumnType, l: &Lit) -> Result<Option<Bytes>, String> {
    let raw = match l {
        Lit::Null => Raw::Null,
        Lit::Bool(b) => Raw::Bool(*b),
        Lit::Num(s) if s.contains(['.', 'e', 'E']) => Raw::Float(s),
        Lit::Num(s) => Raw::Int(s),
        Lit::Str(s) => Raw::Str(s),
        Lit::Uuid(s) => Raw::Uuid(s),
        Lit::Blob(s) => Raw::Blob(s),
        Lit::Marker(..) | Lit::Map(_) => return Err("unsupported literal".into()),
    };
    raw_bytes(ty, raw)
}

fn bad(ty: &ColumnType, v: &str) -> String {
    format!("Invalid literal {v} for type {}", ty.cql_name())
}

fn raw_bytes(ty: &ColumnType, raw: Raw<'_>) -> Result<Option<Bytes>, String> {
    use ColumnType as T;
    let int = |s: &str| s.parse::<i64>().map_err(|_| bad(ty, s));
    let out: Vec<u8> = match (ty.effective(), raw) {
        (_, Raw::Null) => return Ok(None),
        (T::Boolean, Raw::Bool(b)) => vec![u8::from(b)],
        (T::Int, Raw::Int(s)) => i32::try_from(int(s)?)
            .map_err(|_| bad(ty, s))?
            .to_be_bytes()
            .to_vec(),
        (T::BigInt | T::Counter | T::Timestamp, Raw::Int(s)) => int(s)?.to_be_bytes().to_vec(),
        (T::SmallInt, Raw::Int(s)) => i16::try_from(int(s)?)
            .map_err(|_| bad(ty, s))?
            .to_be_bytes()
            .to_vec(),
        (T::TinyInt, Raw::Int(s)) => i8::try_from(int(s)?)
            .map_err(|_| bad(ty, s))?
            .to_be_bytes()
            .to_vec(),
        (T::Varint, Raw::Int(s)) => literal_text::big_integer(s).ok_or_else(|| bad(ty, s))?,
        (T::Decimal, Raw::Int(s) | Raw::Float(s)) => {
            literal_text::decimal(s).ok_or_else(|| bad(ty, s))?
        }
        (T::Date, Raw::Str(s)) => literal_text::date(s).ok_or_else(|| bad(ty, s))?,
        (T::Date, Raw::Int(s)) => u32::try_from(int(s)?)
            .map_err(|_| bad(ty, s))?
            .to_be_bytes()
            .to_vec(),
        (T::Time, Raw::Str(s)) => literal_text::time(s).ok_or_else(|| bad(ty, s))?,
        (T::Time, Raw::Int(s)) => int(s)?.to_be_bytes().to_vec(),
        (T::Timestamp, Raw::Str(s)) => literal_text::timestamp(s).ok_or_else(|| bad(ty, s))?,
        (T::Duration, Raw::Duration(s) | Raw::Str(s)) => {
            literal_text::duration(s).ok_or_else(|| bad(ty, s))?
        }
        (T::Double, Raw::Int(s) | Raw::Float(s)) => s
            .parse::<f64>()
            .map_err(|_| bad(ty, s))?
            .to_be_bytes()
            .to_vec(),
        (T::Float, Raw::Int(s) | Raw::Float(s)) => s
            .parse::<f32>()
            .map_err(|_| bad(ty, s))?
            .to_be_bytes()
            .to_vec(),
        (T::Varchar | T::Ascii, Raw::Str(s)) => s.as_bytes().to_vec(),
        (T::Uuid | T::Timeuuid, Raw::Uuid(s)) => {
            let hex: String = s.chars().filter(|c| *c != '-').collect();
            decode_hex(&hex).ok_or_else(|| bad(ty, s))?
        }
        (T::Blob, Raw::Blob(s)) => decode_hex(&s[2..]).ok_or_else(|| bad(ty, s))?,
        (T::Inet, Raw::Str(s)) => match s.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(a)) => a.octets().to_vec(),
            Ok(std::net::IpAddr::V6(a)) => a.octets().to_vec(),
            Err(_) => return Err(bad(ty, s)),
        },
        (_, Raw::Bool(b)) => return Err(bad(ty, &b.to_string())),
        (
            _,
            Raw::Int(s)
            | Raw::Float(s)
            | Raw::Str(s)
            | Raw::Uuid(s)
            | Raw::Blob(s)
            | Raw::Duration(s),
        ) => return Err(bad(ty, s)),
    };
    Ok(Some(Bytes::from(out)))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_common_literals() {
        let b = |ty, l: Lit| lit_bytes(&ty, &l).unwrap().unwrap().to_vec();
        assert_eq!(
            b(ColumnType::Int, Lit::Num("-2".into())),
            vec![0xff, 0xff, 0xff, 0xfe]
        );
        assert_eq!(
            b(ColumnType::Varchar, Lit::Str("hé".into())),
            "hé".as_bytes()
        );
        assert_eq!(b(ColumnType::Varint, Lit::Num("128".into())), vec![0, 0x80]);
        assert_eq!(b(ColumnType::Varint, Lit::Num("-1".into())), vec![0xff]);
        assert_eq!(
            b(ColumnType::Blob, Lit::Blob("0x0aff".into())),
            vec![0x0a, 0xff]
        );
        assert!(lit_bytes(&ColumnType::Int, &Lit::Num("99999999999".into())).is_err());
        assert!(lit_bytes(&ColumnType::Int, &Lit::Str("x".into())).is_err());
        assert_eq!(lit_bytes(&ColumnType::Int, &Lit::Null).unwrap(), None);
    }

    /// Vector literals (Cassandra 5.0 accepts `[1.0, 2.5, -3.0]` for
    /// `vector<float, 3>`): exactly `dimension` elements, fixed-size ones back to
    /// back, variable-size ones behind an unsigned vint length; the bytes decode
    /// with tidemark-cql's own vector decoder.
    #[test]
    fn serializes_vector_literals() {
        use std::borrow::Cow;
        use tidemark_cql::Value;
        let floats = ColumnType::Vector {
            element: Box::new(ColumnType::Float),
            dimension: 3,
        };
        let list = Term::List(vec![
            Term::Float("1.0"),
            Term::Float("2.5"),
            Term::Float("-3.0"),
        ]);
        let b = term_bytes(&floats, &list).unwrap().unwrap();
        assert_eq!(b.len(), 12);
        assert_eq!(&b[..4], &1.0f32.to_be_bytes());
        assert_eq!(
            Value::decode(&floats, &b).unwrap(),
            Value::Vector(vec![
                Value::Float(1.0),
                Value::Float(2.5),
                Value::Float(-3.0)
            ])
        );
        let texts = ColumnType::Vector {
            element: Box::new(ColumnType::Varchar),
            dimension: 2,
        };
        let list = Term::List(vec![
            Term::Str(Cow::Borrowed("ab")),
            Term::Str(Cow::Borrowed("")),
        ]);
        let b = term_bytes(&texts, &list).unwrap().unwrap();
        assert_eq!(&b[..], &[2, b'a', b'b', 0]);
        let short = Term::List(vec![Term::Float("1.0")]);
        assert!(term_bytes(&floats, &short).is_err());
    }
}
