//! What a statement executes with: its bound values and the per-request context
//! (coordinator, keyspace, consistency, paging).

use super::project::Page;
use crate::cql::cluster::state::Shared;
use crate::cql::errors::invalid;
use crate::cql::storage::schema::Table;
use bytes::Bytes;
use std::sync::Arc;
use tidemark_cql::message::ErrorBody;
use tidemark_cql::wire::WireValue;
use tidemark_cql::Consistency;

/// Bound values by marker index.
#[derive(Debug, Clone, Default)]
pub struct Bound(pub Vec<WireValue>);

impl Bound {
    /// `Some(Some(bytes))`, `Some(None)` for null, `None` for unset or missing.
    pub fn get(&self, i: usize) -> Option<Option<Bytes>> {
        match self.0.get(i)? {
            WireValue::Bytes(b) => Some(Some(b.clone())),
            WireValue::Null => Some(None),
            WireValue::Unset => None,
        }
    }
}

/// Per-request context.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub me: usize,
    /// The connection's current keyspace (USE).
    pub keyspace: Option<String>,
    pub consistency: Consistency,
    pub timestamp: Option<i64>,
    /// SERIAL or LOCAL_SERIAL for conditional statements.
    pub serial: Option<Consistency>,
    /// Requested page size and the paging state to continue from.
    pub page: Page,
}

impl Ctx<'_> {
    pub fn table(&self, ks: Option<&str>, name: &str) -> Result<(String, Arc<Table>), ErrorBody> {
        let ks = ks
            .map(str::to_string)
            .or_else(|| self.keyspace.clone())
            .ok_or_else(|| invalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename"))?;
        let schema = self.shared.schema();
        if !schema.keyspaces.contains_key(&ks) {
            return Err(invalid(format!("keyspace {ks} does not exist")));
        }
        let t = schema
            .table(&ks, name)
            .cloned()
            .ok_or_else(|| invalid(format!("table {name} does not exist")))?;
        Ok((ks, t))
    }
}
