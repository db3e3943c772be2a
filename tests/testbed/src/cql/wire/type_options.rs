//! The type options a client sees, by protocol version, as Cassandra writes them.
//! The testbed keeps the structured types internally; only what goes on the wire is
//! rewritten here: v4 has no duration option (0x15 is defined from v5 on), so
//! Cassandra sends the custom class `DurationType`, and a vector's class string is
//! spelled as Cassandra's `VectorType.toString` does (`" , "` between element and
//! dimension), which drivers parse.

use tidemark_cql::message::{ColumnSpec, Message, ResultBody, RowsMetadata};
use tidemark_cql::types::marshal::class_name;
use tidemark_cql::ColumnType;

const PREFIX: &str = "org.apache.cassandra.db.marshal.";

/// Rewrites every column spec of a RESULT (rows, prepared bind and result metadata).
pub fn for_version(msg: Message, version: u8) -> Message {
    match msg {
        Message::Result(ResultBody::Rows(mut r)) => {
            rows_metadata(&mut r.metadata, version);
            Message::Result(ResultBody::Rows(r))
        }
        Message::Result(ResultBody::Prepared(mut p)) => {
            specs(&mut p.metadata.columns, version);
            rows_metadata(&mut p.result_metadata, version);
            Message::Result(ResultBody::Prepared(p))
        }
        other => other,
    }
}

fn rows_metadata(m: &mut RowsMetadata, version: u8) {
    specs(&mut m.columns, version);
}

fn specs(cols: &mut [ColumnSpec], version: u8) {
    for c in cols {
        c.ty = wire_type(&c.ty, version);
    }
}

/// `ty` as sent under `version`.
pub fn wire_type(ty: &ColumnType, version: u8) -> ColumnType {
    let inner = |t: &ColumnType| Box::new(wire_type(t, version));
    match ty {
        ColumnType::Duration if version < 5 => ColumnType::Custom {
            class: format!("{PREFIX}DurationType").into(),
            resolved: Some(Box::new(ColumnType::Duration)),
        },
        ColumnType::Vector { element, dimension } => ColumnType::Custom {
            class: format!(
                "{PREFIX}VectorType({} , {dimension})",
                vector_element_class(element)
            )
            .into(),
            resolved: Some(Box::new(ty.clone())),
        },
        ColumnType::List(e) => ColumnType::List(inner(e)),
        ColumnType::Set(e) => ColumnType::Set(inner(e)),
        ColumnType::Map(k, v) => ColumnType::Map(inner(k), inner(v)),
        ColumnType::Tuple(ts) => {
            ColumnType::Tuple(ts.iter().map(|t| wire_type(t, version)).collect())
        }
        ColumnType::Udt {
            keyspace,
            name,
            fields,
        } => ColumnType::Udt {
            keyspace: keyspace.clone(),
            name: name.clone(),
            fields: fields
                .iter()
                .map(|(f, t)| (f.clone(), wire_type(t, version)))
                .collect(),
        },
        other => other.clone(),
    }
}

/// The element's class inside a vector's class string (nested vectors keep the spacing).
fn vector_element_class(e: &ColumnType) -> String {
    match e {
        ColumnType::Vector { element, dimension } => format!(
            "{PREFIX}VectorType({} , {dimension})",
            vector_element_class(element)
        ),
        other => class_name(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_is_custom_before_v5_only() {
        let want = "org.apache.cassandra.db.marshal.DurationType";
        match wire_type(&ColumnType::Duration, 4) {
            ColumnType::Custom { class, .. } => assert_eq!(class.to_string(), want),
            t => panic!("{t:?}"),
        }
        assert_eq!(wire_type(&ColumnType::Duration, 5), ColumnType::Duration);
    }

    #[test]
    fn vector_class_as_cassandra_spells_it() {
        let v = ColumnType::Vector {
            element: Box::new(ColumnType::Float),
            dimension: 3,
        };
        match wire_type(&v, 5) {
            ColumnType::Custom { class, .. } => assert_eq!(
                class.to_string(),
                "org.apache.cassandra.db.marshal.VectorType(org.apache.cassandra.db.marshal.FloatType , 3)"
            ),
            t => panic!("{t:?}"),
        }
    }
}
