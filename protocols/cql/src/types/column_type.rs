//! [`ColumnType`]: the `[option]` type descriptions of result and bind metadata
//! (spec section 4.2.5.2), decoded and encoded. Custom types keep their class name so
//! they re-encode byte for byte; the ones this crate understands (vectors, durations and
//! the native types under their marshal class names) are also resolved to a structured
//! type once, at metadata decode time, so value decoding never re-parses class names.

use super::marshal;
use crate::error::{ParseError, ParseErrorKind};
use crate::text::Text;
use crate::wire::{Reader, Writer};

/// Nesting limit for types (and values, which follow types). Real schemas nest a few
/// levels; the limit keeps hostile input from exhausting the stack.
pub const MAX_DEPTH: usize = 32;

/// A CQL column type as described in metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// Option 0x0000: a Java class name. `resolved` is the structured type when the class
    /// is one this crate decodes (e.g. `VectorType(FloatType, 3)`, `DurationType`).
    Custom {
        class: Text,
        resolved: Option<Box<ColumnType>>,
    },
    Ascii,
    BigInt,
    Blob,
    Boolean,
    Counter,
    Decimal,
    Double,
    Float,
    Int,
    Timestamp,
    Uuid,
    Varchar,
    Varint,
    Timeuuid,
    Inet,
    Date,
    Time,
    SmallInt,
    TinyInt,
    Duration,
    List(Box<ColumnType>),
    Map(Box<ColumnType>, Box<ColumnType>),
    Set(Box<ColumnType>),
    Udt {
        keyspace: Text,
        name: Text,
        fields: Vec<(Text, ColumnType)>,
    },
    Tuple(Vec<ColumnType>),
    /// A dense vector (Cassandra 5 `vector<T, n>`); only ever produced by resolving the
    /// custom class `VectorType(T, n)`, and encoded back as that class.
    Vector {
        element: Box<ColumnType>,
        dimension: u32,
    },
}

impl ColumnType {
    /// A custom type from its class name, resolving it if this crate knows it.
    pub fn custom(class: Text) -> ColumnType {
        let resolved = marshal::parse_class(&class).map(Box::new);
        ColumnType::Custom { class, resolved }
    }

    /// The type to decode values with: custom types are replaced by their resolution.
    pub fn effective(&self) -> &ColumnType {
        match self {
            ColumnType::Custom {
                resolved: Some(r), ..
            } => r.effective(),
            t => t,
        }
    }

    /// The CQL name of the type (`map<int, text>`), for messages and reports.
    pub fn cql_name(&self) -> String {
        use ColumnType::*;
        match self {
            Custom {
                resolved: Some(r), ..
            } => r.cql_name(),
            Custom { class, .. } => format!("'{}'", class.as_str()),
            Ascii => "ascii".into(),
            BigInt => "bigint".into(),
            Blob => "blob".into(),
            Boolean => "boolean".into(),
            Counter => "counter".into(),
            Decimal => "decimal".into(),
            Double => "double".into(),
            Float => "float".into(),
            Int => "int".into(),
            Timestamp => "timestamp".into(),
            Uuid => "uuid".into(),
            Varchar => "text".into(),
            Varint => "varint".into(),
            Timeuuid => "timeuuid".into(),
            Inet => "inet".into(),
            Date => "date".into(),
            Time => "time".into(),
            SmallInt => "smallint".into(),
            TinyInt => "tinyint".into(),
            Duration => "duration".into(),
            List(e) => format!("list<{}>", e.cql_name()),
            Set(e) => format!("set<{}>", e.cql_name()),
            Map(k, v) => format!("map<{}, {}>", k.cql_name(), v.cql_name()),
            Udt { keyspace, name, .. } => format!("{keyspace}.{name}"),
            Tuple(ts) => format!(
                "tuple<{}>",
                ts.iter()
                    .map(|t| t.cql_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Vector { element, dimension } => {
                format!("vector<{}, {}>", element.cql_name(), dimension)
            }
        }
    }

    /// Decodes an `[option]` type description.
    pub fn decode(r: &mut Reader) -> Result<ColumnType, ParseError> {
        Self::decode_depth(r, 0)
    }

    fn decode_depth(r: &mut Reader, depth: usize) -> Result<ColumnType, ParseError> {
        if depth > MAX_DEPTH {
            return Err(r.err("[option]", ParseErrorKind::TooDeep));
        }
        let start = r.position();
        let id = r.u16("[option] id")?;
        use ColumnType::*;
        Ok(match id {
            0x0000 => ColumnType::custom(r.string()?),
            0x0001 => Ascii,
            0x0002 => BigInt,
            0x0003 => Blob,
            0x0004 => Boolean,
            0x0005 => Counter,
            0x0006 => Decimal,
            0x0007 => Double,
            0x0008 => Float,
            0x0009 => Int,
            // 0x000A was `text` in protocol v1 and is still sent by some servers.
            0x000A => Varchar,
            0x000B => Timestamp,
            0x000C => Uuid,
            0x000D => Varchar,
            0x000E => Varint,
            0x000F => Timeuuid,
            0x0010 => Inet,
            0x0011 => Date,
            0x0012 => Time,
            0x0013 => SmallInt,
            0x0014 => TinyInt,
            0x0015 => Duration,
            0x0020 => List(Box::new(Self::decode_depth(r, depth + 1)?)),
            0x0021 => {
                let k = Self::decode_depth(r, depth + 1)?;
                let v = Self::decode_depth(r, depth + 1)?;
                Map(Box::new(k), Box::new(v))
            }
            0x0022 => Set(Box::new(Self::decode_depth(r, depth + 1)?)),
            0x0030 => {
                let keyspace = r.string()?;
                let name = r.string()?;
                let n = r.u16("UDT field count")? as usize;
                let mut fields = Vec::with_capacity(r.capacity_for(n, 4));
                for _ in 0..n {
                    let f = r.string()?;
                    let t = Self::decode_depth(r, depth + 1)?;
                    fields.push((f, t));
                }
                Udt {
                    keyspace,
                    name,
                    fields,
                }
            }
            0x0031 => {
                let n = r.u16("tuple size")? as usize;
                let mut ts = Vec::with_capacity(r.capacity_for(n, 2));
                for _ in 0..n {
                    ts.push(Self::decode_depth(r, depth + 1)?);
                }
                Tuple(ts)
            }
            other => {
                return Err(ParseError::new(
                    "[option] id",
                    start,
                    ParseErrorKind::UnknownTag(other.into()),
                ))
            }
        })
    }

    /// Encodes as an `[option]`.
    pub fn encode(&self, w: &mut Writer) {
        use ColumnType::*;
        let id: u16 = match self {
            Custom { class, .. } => {
                w.u16(0);
                w.string(class);
                return;
            }
            Vector { .. } => {
                w.u16(0);
                w.string(&marshal::class_name(self));
                return;
            }
            Ascii => 1,
            BigInt => 2,
            Blob => 3,
            Boolean => 4,
            Counter => 5,
            Decimal => 6,
            Double => 7,
            Float => 8,
            Int => 9,
            Timestamp => 0x0B,
            Uuid => 0x0C,
            Varchar => 0x0D,
            Varint => 0x0E,
            Timeuuid => 0x0F,
            Inet => 0x10,
            Date => 0x11,
            Time => 0x12,
            SmallInt => 0x13,
            TinyInt => 0x14,
            Duration => 0x15,
            List(e) => {
                w.u16(0x20);
                e.encode(w);
                return;
            }
            Map(k, v) => {
                w.u16(0x21);
                k.encode(w);
                v.encode(w);
                return;
            }
            Set(e) => {
                w.u16(0x22);
                e.encode(w);
                return;
            }
            Udt {
                keyspace,
                name,
                fields,
            } => {
                w.u16(0x30);
                w.string(keyspace);
                w.string(name);
                w.u16(u16::try_from(fields.len()).unwrap_or(u16::MAX));
                for (f, t) in fields.iter().take(u16::MAX as usize) {
                    w.string(f);
                    t.encode(w);
                }
                return;
            }
            Tuple(ts) => {
                w.u16(0x31);
                w.u16(u16::try_from(ts.len()).unwrap_or(u16::MAX));
                for t in ts.iter().take(u16::MAX as usize) {
                    t.encode(w);
                }
                return;
            }
        };
        w.u16(id);
    }

    /// The fixed serialized size of a value of this type, as Cassandra's
    /// `valueLengthIfFixed`; vectors of fixed-size elements are packed without lengths.
    pub fn fixed_len(&self) -> Option<usize> {
        use ColumnType::*;
        match self.effective() {
            Boolean => Some(1),
            Int | Float | Date => Some(4),
            BigInt | Counter | Double | Timestamp | Time => Some(8),
            Uuid | Timeuuid => Some(16),
            Vector { element, dimension } => element
                .fixed_len()
                .and_then(|l| l.checked_mul(*dimension as usize)),
            _ => None,
        }
    }

    /// True for text types, whose JSON rendering is already a string (map keys).
    pub fn is_text(&self) -> bool {
        matches!(self.effective(), ColumnType::Ascii | ColumnType::Varchar)
    }
}
