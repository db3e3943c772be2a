//! CQL type names as written in DDL (`int`, `map<text, frozen<list<int>>>`,
//! `vector<float, 3>`, user types), parsed into wire types.

use crate::cql::storage::schema::UdtLookup;
use tidemark_cql::ColumnType;

/// Parses a CQL type as written in DDL (`int`, `map<text, frozen<list<int>>>`),
/// returning the wire type and the normalized text `system_schema` shows.
pub fn parse_type(cur: &mut super::lex::Cursor) -> Result<(ColumnType, String), String> {
    parse_type_depth(cur, 0, &|_| None)
}

/// [`parse_type`] that also knows the user types of the statement's keyspace.
pub fn parse_type_with(
    cur: &mut super::lex::Cursor,
    udts: UdtLookup<'_>,
) -> Result<(ColumnType, String), String> {
    parse_type_depth(cur, 0, udts)
}

fn parse_type_depth(
    cur: &mut super::lex::Cursor,
    depth: usize,
    udts: UdtLookup<'_>,
) -> Result<(ColumnType, String), String> {
    if depth > 16 {
        return Err("type nesting too deep".into());
    }
    let name = cur.ident()?;
    if name == "vector" {
        // `vector<element, dimension>` (Cassandra 5; the driver knows it as a custom type).
        cur.expect_sym("<")?;
        let (element, text) = parse_type_depth(cur, depth + 1, udts)?;
        cur.expect_sym(",")?;
        let dimension = match cur.next_tok() {
            Some(super::lex::Tok::Num(n)) => n.parse::<u32>().ok().filter(|d| *d > 0),
            _ => None,
        }
        .ok_or("vector dimension must be a positive integer")?;
        cur.expect_sym(">")?;
        return Ok((
            ColumnType::Vector {
                element: Box::new(element),
                dimension,
            },
            format!("vector<{text}, {dimension}>"),
        ));
    }
    let mut args = Vec::new();
    if cur.sym("<") {
        loop {
            args.push(parse_type_depth(cur, depth + 1, udts)?);
            if cur.sym(">") {
                break;
            }
            cur.expect_sym(",")?;
        }
    }
    let texts = || {
        args.iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let simple = |t: ColumnType, n: &str| Ok((t, n.to_string()));
    match (name.as_str(), args.len()) {
        ("ascii", 0) => simple(ColumnType::Ascii, "ascii"),
        ("bigint", 0) => simple(ColumnType::BigInt, "bigint"),
        ("blob", 0) => simple(ColumnType::Blob, "blob"),
        ("boolean", 0) => simple(ColumnType::Boolean, "boolean"),
        ("counter", 0) => simple(ColumnType::Counter, "counter"),
        ("decimal", 0) => simple(ColumnType::Decimal, "decimal"),
        ("double", 0) => simple(ColumnType::Double, "double"),
        ("float", 0) => simple(ColumnType::Float, "float"),
        ("int", 0) => simple(ColumnType::Int, "int"),
        ("timestamp", 0) => simple(ColumnType::Timestamp, "timestamp"),
        ("uuid", 0) => simple(ColumnType::Uuid, "uuid"),
        ("text" | "varchar", 0) => simple(ColumnType::Varchar, "text"),
        ("varint", 0) => simple(ColumnType::Varint, "varint"),
        ("timeuuid", 0) => simple(ColumnType::Timeuuid, "timeuuid"),
        ("inet", 0) => simple(ColumnType::Inet, "inet"),
        ("date", 0) => simple(ColumnType::Date, "date"),
        ("time", 0) => simple(ColumnType::Time, "time"),
        ("smallint", 0) => simple(ColumnType::SmallInt, "smallint"),
        ("tinyint", 0) => simple(ColumnType::TinyInt, "tinyint"),
        ("duration", 0) => simple(ColumnType::Duration, "duration"),
        ("frozen", 1) => {
            let (t, text) = args.remove(0);
            Ok((t, format!("frozen<{text}>")))
        }
        ("list", 1) => {
            let text = format!("list<{}>", texts());
            Ok((ColumnType::List(Box::new(args.remove(0).0)), text))
        }
        ("set", 1) => {
            let text = format!("set<{}>", texts());
            Ok((ColumnType::Set(Box::new(args.remove(0).0)), text))
        }
        ("map", 2) => {
            let text = format!("map<{}>", texts());
            let v = args.remove(1).0;
            let k = args.remove(0).0;
            Ok((ColumnType::Map(Box::new(k), Box::new(v)), text))
        }
        ("tuple", n) if n > 0 => {
            let text = format!("tuple<{}>", texts());
            Ok((
                ColumnType::Tuple(args.into_iter().map(|a| a.0).collect()),
                text,
            ))
        }
        (n, 0) => match udts(n) {
            Some(t) => Ok((t, n.to_string())),
            None => Err(format!("Unknown type {n}")),
        },
        _ => Err(format!("unknown or unsupported type {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cql::language::lex::Cursor;

    #[test]
    fn parses_nested_types() {
        let mut c = Cursor::new("map<varchar, frozen<list<int>>>").unwrap();
        let (t, text) = parse_type(&mut c).unwrap();
        assert_eq!(text, "map<text, frozen<list<int>>>");
        assert_eq!(
            t,
            ColumnType::Map(
                Box::new(ColumnType::Varchar),
                Box::new(ColumnType::List(Box::new(ColumnType::Int)))
            )
        );
        assert!(parse_type(&mut Cursor::new("list<int, int>").unwrap()).is_err());
        let (t, text) = parse_type(&mut Cursor::new("vector<float, 3>").unwrap()).unwrap();
        assert_eq!(text, "vector<float, 3>");
        assert!(matches!(t, ColumnType::Vector { dimension: 3, .. }));
        assert!(parse_type(&mut Cursor::new("vector<float, 0>").unwrap()).is_err());
    }
}
