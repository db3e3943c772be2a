//! How much result metadata an EXECUTE's rows carry, as Cassandra's `ExecuteMessage`
//! decides it. Under v5 a result metadata id the client holds that no longer matches
//! the rows' columns gets METADATA_CHANGED with the new id and the full columns,
//! otherwise skip_metadata leaves the columns out (NO_METADATA); under v4 the columns
//! are left out only while they still match the prepared ones. A conditional
//! statement (LWT) always carries its columns (CASSANDRA-13992: its `[applied]` row
//! changes shape). Captures of drivers that skip metadata show these flags.

use crate::cql::cluster::state::PreparedStmt;
use crate::cql::storage::schema::uuid_from;
use bytes::Bytes;
use tidemark_cql::message::{ColumnSpec, Message, ResultBody};
use tidemark_cql::statement::parse_statement;

/// The result metadata id of a statement returning `columns` (PREPARE sends the same).
pub fn metadata_id(columns: &[ColumnSpec]) -> Bytes {
    Bytes::copy_from_slice(&uuid_from(&format!("{columns:?}")))
}

/// Applies the client's `skip_metadata` and (v5) the id it holds, `held_id`, to the
/// reply of an EXECUTE of `stmt`.
pub fn for_execute(
    reply: Message,
    stmt: &PreparedStmt,
    version: u8,
    skip_metadata: bool,
    held_id: Option<&Bytes>,
) -> Message {
    let Message::Result(ResultBody::Rows(mut rows)) = reply else {
        return reply;
    };
    if parse_statement(&stmt.query).is_ok_and(|s| s.is_lwt()) {
        return Message::Result(ResultBody::Rows(rows));
    }
    let m = &mut rows.metadata;
    let current = metadata_id(&m.columns);
    let skip = if version >= 5 {
        if held_id.is_some_and(|h| *h != current) {
            m.new_metadata_id = Some(current);
            false
        } else {
            skip_metadata
        }
    } else {
        skip_metadata && metadata_id(&stmt.result.columns) == current
    };
    if skip {
        m.no_metadata = true;
        m.columns.clear();
    }
    Message::Result(ResultBody::Rows(rows))
}
