//! The less common query operators: `$regex` (with `$options`; a regex
//! value in a filter or in `$in` means the same), `$type` and `$mod`.
//! Patterns use Rust's regex syntax, which lacks PCRE's lookaround and
//! backreferences; a pattern it cannot compile is an error reply.

use tidemark_mongo::bson::spec::ElementType;
use tidemark_mongo::bson::Bson;

/// Whether the string `field` (or a string element of an array field)
/// matches `pattern` with MongoDB options (`i`, `m`, `s`, `x`).
pub fn regex_matches(field: Option<&Bson>, pattern: &str, options: &str) -> Result<bool, String> {
    let mut flags = String::new();
    for o in options.chars() {
        match o {
            'i' | 'm' | 's' | 'x' => flags.push(o),
            'u' => {}
            other => return Err(format!("invalid flag in regex options: {other}")),
        }
    }
    let full = if flags.is_empty() {
        pattern.to_string()
    } else {
        format!("(?{flags}){pattern}")
    };
    let re = regex::RegexBuilder::new(&full)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("Regular expression is invalid: {e}"))?;
    Ok(match field {
        Some(Bson::String(s)) => re.is_match(s),
        Some(Bson::Symbol(s)) => re.is_match(s),
        Some(Bson::Array(a)) => a
            .iter()
            .any(|e| matches!(e, Bson::String(s) if re.is_match(s))),
        _ => false,
    })
}

/// MongoDB's `$type` aliases and numbers.
fn type_of(arg: &Bson) -> Result<Vec<ElementType>, String> {
    let name = match arg {
        Bson::String(s) => s.as_str(),
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => {
            let n = match arg {
                Bson::Int32(i) => *i as i64,
                Bson::Int64(i) => *i,
                Bson::Double(d) => *d as i64,
                _ => 0,
            };
            let t = u8::try_from(n)
                .ok()
                .and_then(ElementType::from)
                .or(match n {
                    -1 => Some(ElementType::MinKey),
                    127 => Some(ElementType::MaxKey),
                    _ => None,
                });
            return t
                .map(|t| vec![t])
                .ok_or_else(|| format!("Invalid numerical type code: {n}"));
        }
        _ => return Err("type must be represented as a number or a string".into()),
    };
    use ElementType as T;
    Ok(match name {
        "double" => vec![T::Double],
        "string" => vec![T::String],
        "object" => vec![T::EmbeddedDocument],
        "array" => vec![T::Array],
        "binData" => vec![T::Binary],
        "undefined" => vec![T::Undefined],
        "objectId" => vec![T::ObjectId],
        "bool" => vec![T::Boolean],
        "date" => vec![T::DateTime],
        "null" => vec![T::Null],
        "regex" => vec![T::RegularExpression],
        "dbPointer" => vec![T::DbPointer],
        "javascript" => vec![T::JavaScriptCode],
        "symbol" => vec![T::Symbol],
        "javascriptWithScope" => vec![T::JavaScriptCodeWithScope],
        "int" => vec![T::Int32],
        "timestamp" => vec![T::Timestamp],
        "long" => vec![T::Int64],
        "decimal" => vec![T::Decimal128],
        "minKey" => vec![T::MinKey],
        "maxKey" => vec![T::MaxKey],
        "number" => vec![T::Double, T::Int32, T::Int64, T::Decimal128],
        other => return Err(format!("Unknown type name alias: {other}")),
    })
}

/// `$type`: the field (or, for an array, the array itself or any element)
/// has one of the types named by `arg` (an alias, a number, or an array of them).
pub fn type_matches(field: Option<&Bson>, arg: &Bson) -> Result<bool, String> {
    let mut wanted = Vec::new();
    match arg {
        Bson::Array(a) => {
            for t in a {
                wanted.extend(type_of(t)?);
            }
        }
        t => wanted.extend(type_of(t)?),
    }
    let Some(v) = field else {
        return Ok(false);
    };
    let is = |v: &Bson| wanted.contains(&v.element_type());
    Ok(is(v) || matches!(v, Bson::Array(a) if a.iter().any(is)))
}

/// `$mod: [divisor, remainder]` on a number (or any number in an array).
pub fn mod_matches(field: Option<&Bson>, arg: &Bson) -> Result<bool, String> {
    let int = |v: &Bson| match v {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        Bson::Double(d) if d.is_finite() => Some(d.trunc() as i64),
        _ => None,
    };
    let Bson::Array(a) = arg else {
        return Err("malformed mod, needs to be an array".into());
    };
    let (Some(div), Some(rem), 2) = (a.first().and_then(int), a.get(1).and_then(int), a.len())
    else {
        return Err("malformed mod, needs [divisor, remainder]".into());
    };
    if div == 0 {
        return Err("divisor cannot be 0".into());
    }
    let one = |v: &Bson| int(v).is_some_and(|n| n.wrapping_rem(div) == rem);
    Ok(match field {
        Some(Bson::Array(items)) => items.iter().any(one),
        Some(v) => one(v),
        None => false,
    })
}
