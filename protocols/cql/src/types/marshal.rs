//! Cassandra marshal class names (`org.apache.cassandra.db.marshal.MapType(...)`) to
//! [`ColumnType`]. Servers describe some types only this way: custom option 0x0000 with
//! a class string, notably `vector<float, 3>` as `VectorType(FloatType, 3)` and
//! `duration` on protocol v4. Unknown classes resolve to `None` and stay opaque.

use super::column_type::{ColumnType, MAX_DEPTH};
use crate::text::Text;

const PREFIX: &str = "org.apache.cassandra.db.marshal.";

/// Resolves a class name, or `None` if it is not a type this crate can decode.
pub fn parse_class(class: &str) -> Option<ColumnType> {
    let mut p = Parser {
        s: class.as_bytes(),
        pos: 0,
    };
    let t = p.parse_type(0)?;
    p.skip_ws();
    (p.pos == p.s.len()).then_some(t)
}

/// The marshal class name for a type (used to encode [`ColumnType::Vector`]).
pub fn class_name(t: &ColumnType) -> String {
    use ColumnType::*;
    let simple = |n: &str| format!("{PREFIX}{n}");
    match t {
        Custom { class, .. } => class.to_string(),
        Ascii => simple("AsciiType"),
        BigInt => simple("LongType"),
        Blob => simple("BytesType"),
        Boolean => simple("BooleanType"),
        Counter => simple("CounterColumnType"),
        Decimal => simple("DecimalType"),
        Double => simple("DoubleType"),
        Float => simple("FloatType"),
        Int => simple("Int32Type"),
        Timestamp => simple("TimestampType"),
        Uuid => simple("UUIDType"),
        Varchar => simple("UTF8Type"),
        Varint => simple("IntegerType"),
        Timeuuid => simple("TimeUUIDType"),
        Inet => simple("InetAddressType"),
        Date => simple("SimpleDateType"),
        Time => simple("TimeType"),
        SmallInt => simple("ShortType"),
        TinyInt => simple("ByteType"),
        Duration => simple("DurationType"),
        List(e) => format!("{PREFIX}ListType({})", class_name(e)),
        Set(e) => format!("{PREFIX}SetType({})", class_name(e)),
        Map(k, v) => format!("{PREFIX}MapType({},{})", class_name(k), class_name(v)),
        Tuple(ts) => format!(
            "{PREFIX}TupleType({})",
            ts.iter().map(class_name).collect::<Vec<_>>().join(",")
        ),
        Udt {
            keyspace,
            name,
            fields,
        } => {
            let mut s = format!("{PREFIX}UserType({},{}", keyspace, hex(name.as_bytes()));
            for (f, ft) in fields {
                s.push(',');
                s.push_str(&hex(f.as_bytes()));
                s.push(':');
                s.push_str(&class_name(ft));
            }
            s.push(')');
            s
        }
        Vector { element, dimension } => {
            format!("{PREFIX}VectorType({},{})", class_name(element), dimension)
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// An identifier: letters, digits, `.`, `_`, `$`, `-` (hex and numbers included).
    fn ident(&mut self) -> &str {
        self.skip_ws();
        let start = self.pos;
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"._$-".contains(c))
        {
            self.pos += 1;
        }
        std::str::from_utf8(self.s.get(start..self.pos).unwrap_or_default()).unwrap_or_default()
    }

    fn args(&mut self, depth: usize) -> Option<Vec<ColumnType>> {
        if !self.eat(b'(') {
            return None;
        }
        let mut out = Vec::new();
        if self.eat(b')') {
            return Some(out);
        }
        loop {
            out.push(self.parse_type(depth + 1)?);
            if self.eat(b')') {
                return Some(out);
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn one_arg(&mut self, depth: usize) -> Option<ColumnType> {
        let mut a = self.args(depth)?;
        (a.len() == 1).then(|| a.pop()).flatten()
    }

    fn parse_type(&mut self, depth: usize) -> Option<ColumnType> {
        if depth > MAX_DEPTH {
            return None;
        }
        let name = self.ident();
        let short = name.strip_prefix(PREFIX).unwrap_or(name);
        use ColumnType::*;
        Some(match short {
            "AsciiType" => Ascii,
            "LongType" => BigInt,
            "BytesType" => Blob,
            "BooleanType" => Boolean,
            "CounterColumnType" => Counter,
            "DecimalType" => Decimal,
            "DoubleType" => Double,
            "FloatType" => Float,
            "Int32Type" => Int,
            "TimestampType" | "DateType" => Timestamp,
            "UUIDType" | "LexicalUUIDType" => Uuid,
            "UTF8Type" => Varchar,
            "IntegerType" => Varint,
            "TimeUUIDType" => Timeuuid,
            "InetAddressType" => Inet,
            "SimpleDateType" => Date,
            "TimeType" => Time,
            "ShortType" => SmallInt,
            "ByteType" => TinyInt,
            "DurationType" => Duration,
            "FrozenType" | "ReversedType" => self.one_arg(depth)?,
            "ListType" => List(Box::new(self.one_arg(depth)?)),
            "SetType" => Set(Box::new(self.one_arg(depth)?)),
            "MapType" => {
                let mut a = self.args(depth)?;
                if a.len() != 2 {
                    return None;
                }
                let v = a.pop()?;
                let k = a.pop()?;
                Map(Box::new(k), Box::new(v))
            }
            "TupleType" => Tuple(self.args(depth)?),
            "VectorType" => {
                if !self.eat(b'(') {
                    return None;
                }
                let element = self.parse_type(depth + 1)?;
                if !self.eat(b',') {
                    return None;
                }
                let dimension: u32 = self.ident().parse().ok()?;
                if !self.eat(b')') || dimension == 0 {
                    return None;
                }
                Vector {
                    element: Box::new(element),
                    dimension,
                }
            }
            "UserType" => self.user_type(depth)?,
            _ => return None,
        })
    }

    /// `UserType(keyspace,hex(name),hex(field):type,...)`.
    fn user_type(&mut self, depth: usize) -> Option<ColumnType> {
        if !self.eat(b'(') {
            return None;
        }
        let keyspace = Text::from(self.ident());
        if !self.eat(b',') {
            return None;
        }
        let name = Text::from(unhex(self.ident())?);
        let mut fields = Vec::new();
        loop {
            if self.eat(b')') {
                break;
            }
            if !self.eat(b',') {
                return None;
            }
            let f = unhex(self.ident())?;
            if !self.eat(b':') {
                return None;
            }
            fields.push((Text::from(f), self.parse_type(depth + 1)?));
        }
        Some(ColumnType::Udt {
            keyspace,
            name,
            fields,
        })
    }
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_short_and_long_names() {
        let want = ColumnType::Vector {
            element: Box::new(ColumnType::Float),
            dimension: 3,
        };
        assert_eq!(
            parse_class("org.apache.cassandra.db.marshal.VectorType(FloatType, 3)"),
            Some(want.clone())
        );
        assert_eq!(
            parse_class("org.apache.cassandra.db.marshal.VectorType(org.apache.cassandra.db.marshal.FloatType,3)"),
            Some(want.clone())
        );
        assert_eq!(parse_class(&class_name(&want)), Some(want));
    }

    #[test]
    fn nested_and_udt() {
        let t = parse_class("org.apache.cassandra.db.marshal.MapType(org.apache.cassandra.db.marshal.Int32Type,org.apache.cassandra.db.marshal.FrozenType(org.apache.cassandra.db.marshal.ListType(org.apache.cassandra.db.marshal.UTF8Type)))");
        assert_eq!(
            t,
            Some(ColumnType::Map(
                Box::new(ColumnType::Int),
                Box::new(ColumnType::List(Box::new(ColumnType::Varchar)))
            ))
        );
        let u = parse_class("org.apache.cassandra.db.marshal.UserType(ks,61646472,737472656574:org.apache.cassandra.db.marshal.UTF8Type)").unwrap();
        assert_eq!(parse_class(&class_name(&u)), Some(u));
        assert_eq!(parse_class("com.example.Unknown"), None);
        assert_eq!(parse_class("VectorType(FloatType, 0)"), None);
        assert_eq!(parse_class(&"ListType(".repeat(100)), None);
    }
}
