//! `ALTER TYPE [IF EXISTS] [ks.]name ADD [IF NOT EXISTS] field type` and
//! `... RENAME [IF EXISTS] a TO b [AND c TO d ...]`, Cassandra 5.0's two alterations
//! of a user type (changing a field's type is not allowed there either).

use super::ddl::{Ddl, UdtResolver};
use super::lex::Cursor;
use super::types::parse_type_with;
use tidemark_cql::ColumnType;

/// What an ALTER TYPE changes.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterType {
    /// A new last field: its name, wire type and type text.
    Add {
        field: String,
        ty: ColumnType,
        text: String,
        if_not_exists: bool,
    },
    /// Field renames, in the order written.
    Rename {
        if_exists: bool,
        renames: Vec<(String, String)>,
    },
}

/// Parses what follows `ALTER TYPE`.
pub fn alter_type(c: &mut Cursor, udts: UdtResolver<'_>) -> Result<Ddl, String> {
    let if_exists = parse_if_exists(c)?;
    let (keyspace, name) = c.qualified()?;
    let lookup = |n: &str| udts(keyspace.as_deref(), n);
    let change = if c.kw("add") {
        let if_not_exists = if c.kw("if") {
            c.expect_kw("not")?;
            c.expect_kw("exists")?;
            true
        } else {
            false
        };
        let field = c.ident()?;
        let (ty, text) = parse_type_with(c, &lookup)?;
        AlterType::Add {
            field,
            ty,
            text,
            if_not_exists,
        }
    } else if c.kw("rename") {
        let if_exists = parse_if_exists(c)?;
        let mut renames = Vec::new();
        loop {
            let from = c.ident()?;
            c.expect_kw("to")?;
            renames.push((from, c.ident()?));
            if !c.kw("and") {
                break;
            }
        }
        AlterType::Rename { if_exists, renames }
    } else {
        return Err("only ALTER TYPE ADD and RENAME are supported".into());
    };
    Ok(Ddl::AlterType {
        keyspace,
        name,
        if_exists,
        change,
    })
}

fn parse_if_exists(c: &mut Cursor) -> Result<bool, String> {
    if c.kw("if") {
        c.expect_kw("exists")?;
        return Ok(true);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cql::language::ddl::parse_ddl;

    #[test]
    fn add_and_rename_parse() {
        let d = parse_ddl("ALTER TYPE ks.pt ADD IF NOT EXISTS y list<int>", &|_, _| {
            None
        })
        .unwrap();
        let Ddl::AlterType {
            keyspace,
            name,
            if_exists,
            change:
                AlterType::Add {
                    field,
                    text,
                    if_not_exists,
                    ..
                },
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!((keyspace.as_deref(), name.as_str()), (Some("ks"), "pt"));
        assert!(!if_exists && if_not_exists);
        assert_eq!((field.as_str(), text.as_str()), ("y", "list<int>"));
        let d = parse_ddl(
            "ALTER TYPE IF EXISTS pt RENAME x TO xx AND y TO yy",
            &|_, _| None,
        )
        .unwrap();
        assert_eq!(
            d,
            Ddl::AlterType {
                keyspace: None,
                name: "pt".into(),
                if_exists: true,
                change: AlterType::Rename {
                    if_exists: false,
                    renames: vec![("x".into(), "xx".into()), ("y".into(), "yy".into())],
                },
            }
        );
        assert!(parse_ddl("ALTER TYPE pt ALTER x TYPE text", &|_, _| None).is_err());
        assert!(parse_ddl("ALTER TYPE pt RENAME x", &|_, _| None).is_err());
    }
}
