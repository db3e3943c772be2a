//! CQL literals converted to typed [`Value`]s the way Cassandra converts them on
//! write, so their serialized bytes are the bytes Cassandra stores.
//!
//! The conversions follow Cassandra's `fromString` of each type: integer text of any
//! length for varints (leading zeros dropped, minimal two's complement), Java
//! `BigDecimal(String)` for decimals (the scale is kept: `1.50` is 150 at scale 2),
//! `Float.parseFloat`/`Double.parseDouble` for floats (`NaN`, `-0.0`), dates, times
//! and timestamps as `literal.rs` reads them for the JSON line. Function calls,
//! casts and arithmetic are evaluated by the server: they have no offline value.

use std::net::IpAddr;

use bytes::Bytes;
use tidemark_cql::statement::Term;
use tidemark_cql::{ColumnType, Text, Value};

use super::time::{parse_date, parse_duration, parse_time, parse_timestamp};

/// Why a literal has no typed value.
pub type Why = &'static str;

/// Resolves a bind marker nested in a literal (`[?, ?]`) to its value, given the
/// type the context expects.
pub type ValueBinder<'b> = dyn Fn(usize, &ColumnType) -> Result<Value, Why> + 'b;

/// The value of `term` for a column of type `ty`.
pub fn literal_value(
    term: &Term<'_>,
    ty: &ColumnType,
    bind: &ValueBinder<'_>,
) -> Result<Value, Why> {
    use ColumnType as T;
    let ty = ty.effective();
    match term {
        Term::Null => Ok(Value::Null),
        Term::Bind(m) => bind(m.index, ty),
        Term::TypeHint { term, .. } => literal_value(term, ty, bind),
        Term::Negate(inner) => match &**inner {
            Term::Integer(s) | Term::Float(s) => number(&negate(s), ty),
            _ => Err("negated non-literal"),
        },
        Term::Function { .. } | Term::Cast { .. } | Term::BinaryOp { .. } => {
            Err("function call or arithmetic: the server evaluates it")
        }
        Term::Bool(b) => match ty {
            T::Boolean => Ok(Value::Boolean(*b)),
            _ => Err("boolean literal for a non-boolean column"),
        },
        Term::Integer(s) | Term::Float(s) => number(s, ty),
        Term::Str(s) => string(s, ty),
        Term::Uuid(s) => match (ty, parse_uuid(s)) {
            (T::Uuid, Some(u)) => Ok(Value::Uuid(u)),
            (T::Timeuuid, Some(u)) => Ok(Value::Timeuuid(u)),
            _ => Err("uuid literal that does not fit the column"),
        },
        Term::Blob(s) => match (ty, parse_hex(s)) {
            (T::Blob, Some(b)) => Ok(Value::Blob(Bytes::from(b))),
            _ => Err("blob literal that does not fit the column"),
        },
        Term::Duration(s) => match (ty, parse_duration(s)) {
            (T::Duration, Some((months, days, nanos))) => Ok(Value::Duration {
                months,
                days,
                nanos,
            }),
            _ => Err("duration literal that does not fit the column"),
        },
        Term::List(items) | Term::Set(items) | Term::Tuple(items) => {
            let each = |e: &ColumnType| -> Result<Vec<Value>, Why> {
                items.iter().map(|x| literal_value(x, e, bind)).collect()
            };
            match ty {
                T::List(e) => Ok(Value::List(each(e)?)),
                T::Set(e) => Ok(Value::Set(each(e)?)),
                T::Vector { element, .. } => Ok(Value::Vector(each(element)?)),
                // `{}` parses as an empty set; for a map column it is an empty map.
                T::Map(..) if items.is_empty() => Ok(Value::Map(Vec::new())),
                T::Tuple(ts) if ts.len() >= items.len() => Ok(Value::Tuple(
                    items
                        .iter()
                        .zip(ts)
                        .map(|(x, t)| literal_value(x, t, bind))
                        .collect::<Result<_, _>>()?,
                )),
                _ => Err("collection literal that does not fit the column"),
            }
        }
        Term::Map(entries) => match ty {
            T::Map(kt, vt) => Ok(Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| Ok((literal_value(k, kt, bind)?, literal_value(v, vt, bind)?)))
                    .collect::<Result<_, Why>>()?,
            )),
            _ => Err("map literal for a non-map column"),
        },
        Term::Udt(given) => match ty {
            T::Udt { fields, .. } => {
                if given
                    .iter()
                    .any(|(n, _)| !fields.iter().any(|(f, _)| f.as_str() == n.as_str()))
                {
                    return Err("UDT literal names a field the type does not have");
                }
                // Cassandra serializes every field of the type; unnamed ones are null.
                let values = fields
                    .iter()
                    .map(
                        |(f, ft)| match given.iter().find(|(n, _)| n.as_str() == f.as_str()) {
                            Some((_, v)) => literal_value(v, ft, bind),
                            None => Ok(Value::Null),
                        },
                    )
                    .collect::<Result<_, _>>()?;
                Ok(Value::Udt(values))
            }
            _ => Err("UDT literal for a non-UDT column"),
        },
    }
}

/// Serializes a value (no length prefix).
pub fn encode(v: &Value) -> Bytes {
    let mut out = Vec::new();
    v.encode(&mut out);
    Bytes::from(out)
}

fn negate(s: &str) -> String {
    match s.strip_prefix('-') {
        Some(rest) => rest.to_string(),
        None => format!("-{s}"),
    }
}

/// A numeric literal (also a string holding one) for a column of type `ty`.
fn number(s: &str, ty: &ColumnType) -> Result<Value, Why> {
    use ColumnType as T;
    let bad = "number that does not fit the column";
    Ok(match ty {
        T::Int => Value::Int(s.parse().map_err(|_| bad)?),
        T::BigInt => Value::BigInt(s.parse().map_err(|_| bad)?),
        T::Counter => Value::Counter(s.parse().map_err(|_| bad)?),
        T::SmallInt => Value::SmallInt(s.parse().map_err(|_| bad)?),
        T::TinyInt => Value::TinyInt(s.parse().map_err(|_| bad)?),
        T::Float => Value::Float(s.parse().map_err(|_| bad)?),
        T::Double => Value::Double(s.parse().map_err(|_| bad)?),
        T::Timestamp => Value::Timestamp(s.parse().map_err(|_| bad)?),
        T::Date => Value::Date(s.parse().map_err(|_| bad)?),
        T::Time => Value::Time(s.parse().map_err(|_| bad)?),
        T::Varint => Value::Varint(Bytes::from(varint(s).ok_or(bad)?)),
        T::Decimal => {
            let (scale, unscaled) = decimal(s).ok_or(bad)?;
            Value::Decimal {
                scale,
                unscaled: Bytes::from(unscaled),
            }
        }
        _ => return Err(bad),
    })
}

/// A string literal: Cassandra parses it with the column type's `fromString`.
fn string(s: &str, ty: &ColumnType) -> Result<Value, Why> {
    use ColumnType as T;
    let bad = "string that does not parse as the column's type";
    Ok(match ty {
        T::Varchar => Value::Text(Text::from(s)),
        T::Ascii if s.is_ascii() => Value::Ascii(Text::from(s)),
        T::Timestamp => Value::Timestamp(parse_timestamp(s).ok_or(bad)?),
        T::Date => Value::Date(parse_date(s).ok_or(bad)?),
        T::Time => Value::Time(parse_time(s).ok_or(bad)?),
        T::Inet => Value::Inet(s.parse::<IpAddr>().map_err(|_| bad)?),
        T::Uuid => Value::Uuid(parse_uuid(s).ok_or(bad)?),
        T::Timeuuid => Value::Timeuuid(parse_uuid(s).ok_or(bad)?),
        T::Duration => {
            let (months, days, nanos) = parse_duration(s).ok_or(bad)?;
            Value::Duration {
                months,
                days,
                nanos,
            }
        }
        T::Int
        | T::BigInt
        | T::SmallInt
        | T::TinyInt
        | T::Varint
        | T::Decimal
        | T::Float
        | T::Double => return number(s, ty),
        _ => return Err(bad),
    })
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || s.len() != 36 {
        return None;
    }
    parse_hex(&format!("0x{hex}"))?.try_into().ok()
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if h.len() % 2 != 0 {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Longest varint or decimal literal converted, in digits.
const MAX_DIGITS: usize = 10_000;

/// Decimal integer text of any length → minimal big-endian two's complement
/// (Java's `BigInteger.toByteArray`).
pub fn varint(s: &str) -> Option<Vec<u8>> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    // The conversion is quadratic in the digits; no real value comes near this.
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Magnitude, big-endian base 256.
    let mut mag: Vec<u8> = vec![0];
    for d in digits.bytes() {
        let mut carry = u32::from(d - b'0');
        for byte in mag.iter_mut().rev() {
            let x = u32::from(*byte) * 10 + carry;
            *byte = (x & 0xff) as u8;
            carry = x >> 8;
        }
        while carry > 0 {
            mag.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    // One leading zero byte keeps the sign bit clear.
    mag.insert(0, 0);
    if neg {
        // Two's complement: invert and add one.
        let mut carry = 1u16;
        for byte in mag.iter_mut().rev() {
            let x = u16::from(!*byte) + carry;
            *byte = (x & 0xff) as u8;
            carry = x >> 8;
        }
    }
    // Drop redundant sign bytes.
    while mag.len() > 1
        && ((mag[0] == 0 && mag[1] & 0x80 == 0) || (mag[0] == 0xff && mag[1] & 0x80 != 0))
    {
        mag.remove(0);
    }
    Some(mag)
}

/// Decimal text → (scale, unscaled varint) as Java's `new BigDecimal(String)`:
/// digits before and after the point form the unscaled value, the scale is the
/// number of fraction digits minus the exponent.
pub fn decimal(s: &str) -> Option<(i32, Vec<u8>)> {
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (sign, mant) = match mant.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", mant.strip_prefix('+').unwrap_or(mant)),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let scale = i32::try_from((frac.len() as i64).checked_sub(exp)?).ok()?;
    Some((scale, varint(&format!("{sign}{int}{frac}"))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_minimal_twos_complement() {
        assert_eq!(varint("0").unwrap(), [0]);
        assert_eq!(varint("007").unwrap(), [7]);
        assert_eq!(varint("128").unwrap(), [0, 128]);
        assert_eq!(varint("-1").unwrap(), [0xff]);
        assert_eq!(varint("-128").unwrap(), [0x80]);
        assert_eq!(varint("-129").unwrap(), [0xff, 0x7f]);
        assert_eq!(varint("65536").unwrap(), [1, 0, 0]);
        assert!(varint("1.5").is_none());
        assert!(varint("").is_none());
        assert!(varint(&"9".repeat(MAX_DIGITS + 1)).is_none());
        assert_eq!(
            varint(&format!("{}1", "0".repeat(MAX_DIGITS - 1))).unwrap(),
            [1]
        );
    }

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(decimal("1.50").unwrap(), (2, vec![0, 150]));
        assert_eq!(decimal("-0.5").unwrap(), (1, vec![0xfb]));
        assert_eq!(decimal("1E+3").unwrap(), (-3, vec![1]));
        assert_eq!(decimal("12.5e-2").unwrap(), (3, vec![125]));
        // Exponents past what a scale holds are refused, never overflowed.
        assert!(decimal("1e-9223372036854775808").is_none());
        assert!(decimal("1e99999999999").is_none());
    }
}
