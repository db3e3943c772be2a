//! Checks a request's bound values against its statement before it runs, as
//! Cassandra does: the number of values must equal the number of markers, and each
//! value of a fixed-size type must have that size. Without these checks the testbed
//! would commit writes Cassandra refuses (a key of 2 bytes for an `int`, a missing
//! value taken as unset), so a capture of it would show writes no real node makes.

use super::ctx::Bound;
use crate::cql::errors::invalid;
use crate::cql::language::select::parse_select;
use tidemark_cql::message::{ColumnSpec, ErrorBody};
use tidemark_cql::statement::{parse_statement, StatementKind};
use tidemark_cql::wire::WireValue;
use tidemark_cql::ColumnType;

/// QUERY: Cassandra refuses values whose count is not the statement's marker count
/// (`QueryProcessor.process`: "Invalid amount of bind variables"). A statement that
/// does not parse is left to the executor, which reports the syntax error.
pub fn check_query(query: &str, bound: &Bound) -> Result<(), ErrorBody> {
    let Ok(stmt) = parse_statement(query) else {
        return Ok(());
    };
    let markers = match &stmt.kind {
        StatementKind::Select(s) => match parse_select(s.text) {
            Ok(sel) => sel.markers,
            Err(_) => return Ok(()),
        },
        _ => stmt.bind_markers.len(),
    };
    if markers != bound.0.len() {
        return Err(invalid("Invalid amount of bind variables"));
    }
    Ok(())
}

/// EXECUTE: the count against the prepared bind metadata (`QueryProcessor.processPrepared`
/// names both numbers), then each value against its marker's type.
pub fn check_execute(binds: &[ColumnSpec], bound: &Bound) -> Result<(), ErrorBody> {
    let given = bound.0.len();
    if !(given == 0 && binds.is_empty()) && given != binds.len() {
        return Err(invalid(format!(
            "there were {} markers(?) in CQL but {given} bound variables",
            binds.len()
        )));
    }
    for (spec, v) in binds.iter().zip(&bound.0) {
        if let WireValue::Bytes(b) = v {
            check_size(&spec.ty, b.len())?;
        }
    }
    Ok(())
}

/// The size rule of Cassandra's serializer for `ty` (`TypeSerializer.validate`) with
/// its message; types of variable size are not checked here.
fn check_size(ty: &ColumnType, n: usize) -> Result<(), ErrorBody> {
    let (ok, msg) = match ty {
        ColumnType::Int => (n == 4 || n == 0, "Expected 4 or 0 byte int"),
        ColumnType::BigInt | ColumnType::Counter => (n == 8 || n == 0, "Expected 8 or 0 byte long"),
        ColumnType::Boolean => (n == 1 || n == 0, "Expected 1 or 0 byte value"),
        ColumnType::Double => (n == 8 || n == 0, "Expected 8 or 0 byte value for a double"),
        ColumnType::Float => (n == 4 || n == 0, "Expected 4 or 0 byte value for a float"),
        ColumnType::Timestamp => (n == 8 || n == 0, "Expected 8 or 0 byte long for date"),
        ColumnType::Uuid | ColumnType::Timeuuid => {
            (n == 16 || n == 0, "UUID should be 16 or 0 bytes")
        }
        ColumnType::SmallInt => (n == 2 || n == 0, "Expected 2 bytes for a smallint"),
        ColumnType::TinyInt => (n == 1 || n == 0, "Expected 1 byte for a tinyint"),
        ColumnType::Date => (n == 4 || n == 0, "Expected 4 byte long for date"),
        ColumnType::Time => (n == 8 || n == 0, "Expected 8 byte long for time"),
        _ => (true, ""),
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("{msg} ({n})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn spec(ty: ColumnType) -> ColumnSpec {
        ColumnSpec {
            keyspace: "ks".into(),
            table: "t".into(),
            name: "k".into(),
            ty,
        }
    }

    fn bytes(n: usize) -> WireValue {
        WireValue::Bytes(Bytes::from(vec![0u8; n]))
    }

    #[test]
    fn query_counts_markers_of_every_statement_kind() {
        let one = Bound(vec![bytes(4)]);
        assert!(check_query("SELECT * FROM ks.t", &Bound::default()).is_ok());
        assert_eq!(
            check_query("SELECT * FROM ks.t", &one)
                .unwrap_err()
                .message
                .to_string(),
            "Invalid amount of bind variables"
        );
        assert!(check_query("SELECT * FROM ks.t WHERE k = ?", &one).is_ok());
        assert!(check_query("INSERT INTO ks.t (k, v) VALUES (?, ?)", &one).is_err());
        assert!(check_query("INSERT INTO ks.t (k) VALUES (?)", &one).is_ok());
    }

    #[test]
    fn execute_names_both_counts_and_checks_sizes() {
        let binds = vec![
            spec(ColumnType::Int),
            spec(ColumnType::Int),
            spec(ColumnType::Varchar),
        ];
        let e = check_execute(&binds, &Bound(vec![bytes(4), bytes(4)])).unwrap_err();
        assert_eq!(
            e.message.to_string(),
            "there were 3 markers(?) in CQL but 2 bound variables"
        );
        let e = check_execute(&binds, &Bound(vec![bytes(2), bytes(4), bytes(1)])).unwrap_err();
        assert_eq!(e.message.to_string(), "Expected 4 or 0 byte int (2)");
        assert!(check_execute(&binds, &Bound(vec![bytes(4), WireValue::Null, bytes(1)])).is_ok());
    }
}
