//! Write extraction: a parsed statement plus its bound values → `write` lines.
//!
//! [`statement_writes`] handles every statement kind a backup must record: INSERT,
//! UPDATE, DELETE (see [`stmt`]), a `BEGIN BATCH` written in CQL (one line per
//! member), TRUNCATE, schema changes (op `create_table`, `drop_keyspace`, ...) and
//! GRANT/REVOKE. Outcomes are left for the caller to fill from the response.

pub mod bound;
pub mod cells;
pub mod collection;
pub mod lazy;
pub mod literal;
pub mod order;
pub mod stmt;
pub mod time;
pub mod value;

use crate::capture::Timestamp;
use crate::decode::records::{BatchPlace, CqlBatchType, WireOutcome};
use serde_json::{Map, Value as Json};
use std::sync::Arc;
use tidemark_cql::statement::{SchemaAction, SchemaObject, Statement, StatementKind};

use crate::decode::records::WriteRecord;
pub use stmt::StmtCtx;

/// The request a statement came in.
#[derive(Debug, Clone)]
pub struct RequestInfo<'a> {
    pub flow: u64,
    /// Capture time of the request.
    pub ts: Timestamp,
    pub stream: i16,
    pub consistency: &'a str,
    pub serial_consistency: Option<&'a str>,
}

/// Membership of a BATCH: the batch is named by the flow and stream that carried it
/// (printed `flow:stream`), `kind` is its type.
#[derive(Debug, Clone)]
pub struct BatchInfo {
    pub flow: u64,
    pub stream: i16,
    pub kind: CqlBatchType,
    pub index: usize,
    pub size: usize,
}

impl BatchInfo {
    /// The line's `batch`.
    pub fn place(&self) -> BatchPlace {
        BatchPlace::Cql {
            flow: self.flow,
            stream: self.stream,
            kind: self.kind,
            index: self.index as u64,
            size: self.size as u64,
        }
    }
}

/// A statement's text as the write lines keep it: shared with the prepared
/// statement (an EXECUTE then copies no text; a copy per write showed in decode
/// profiles), or borrowed from the request and copied once per line.
#[derive(Clone, Copy)]
pub enum StmtText<'a> {
    Shared(&'a Arc<str>),
    Borrowed(&'a str),
}

impl StmtText<'_> {
    /// The text for a line's `cql`.
    pub fn line(self) -> Arc<str> {
        match self {
            StmtText::Shared(t) => Arc::clone(t),
            StmtText::Borrowed(t) => Arc::from(t),
        }
    }
}

/// A `write` line with the request's fields set and the outcome still open.
pub fn base(req: &RequestInfo<'_>, prepared: bool, batch: Option<&BatchInfo>) -> Box<WriteRecord> {
    // Boxed once here and moved as a box from then on: a write record is about
    // 1.4 KB, and moving it by value from statement to pending to output copied
    // it four times per write (memmove was 13 % of decode).
    Box::new(WriteRecord {
        flow: req.flow,
        ts: req.ts,
        proto: "cql",
        key: Json::Object(Map::new()).into(),
        values: Json::Object(Map::new()).into(),
        consistency: Some(req.consistency.into()),
        serial_consistency: req.serial_consistency.map(Into::into),
        batch: batch.map(BatchInfo::place),
        request: Some(req.stream.into()),
        outcome: WireOutcome::InDoubt,
        prepared: Some(prepared),
        columns_deleted: Some(Vec::new()),
        collection_ops: Some(Json::Array(Vec::new())),
        ..WriteRecord::default()
    })
}

fn object_name(o: SchemaObject) -> &'static str {
    match o {
        SchemaObject::Keyspace => "keyspace",
        SchemaObject::Table => "table",
        SchemaObject::Index => "index",
        SchemaObject::Type => "type",
        SchemaObject::Function => "function",
        SchemaObject::Aggregate => "aggregate",
        SchemaObject::MaterializedView => "materialized_view",
        SchemaObject::Trigger => "trigger",
        SchemaObject::Role => "role",
        SchemaObject::User => "user",
        SchemaObject::Identity => "identity",
    }
}

/// Appends the writes of `stmt` (statement text `text`) to `out`. `batch` is set
/// when the statement is a member of a protocol BATCH.
pub fn statement_writes(
    stmt: &Statement<'_>,
    text: StmtText<'_>,
    cx: &StmtCtx<'_>,
    req: &RequestInfo<'_>,
    prepared: bool,
    batch: Option<&BatchInfo>,
    out: &mut Vec<Box<WriteRecord>>,
) {
    match &stmt.kind {
        StatementKind::Modification(m) => {
            let mut w = base(req, prepared, batch);
            stmt::modification(m, cx, &mut w);
            w.cql = Some(text.line());
            out.push(w);
        }
        StatementKind::Batch(b) => {
            let size = b.statements.len();
            let kind = match b.kind {
                tidemark_cql::statement::BatchKind::Logged => CqlBatchType::Logged,
                tidemark_cql::statement::BatchKind::Unlogged => CqlBatchType::Unlogged,
                tidemark_cql::statement::BatchKind::Counter => CqlBatchType::Counter,
            };
            let inner = StmtCtx {
                batch_using: &b.using,
                ..*cx
            };
            for (index, m) in b.statements.iter().enumerate() {
                let info = BatchInfo {
                    flow: req.flow,
                    stream: req.stream,
                    kind,
                    index,
                    size,
                };
                let mut w = base(req, prepared, Some(batch.unwrap_or(&info)));
                stmt::modification(m, &inner, &mut w);
                w.cql = Some(m.to_string().into());
                out.push(w);
            }
        }
        StatementKind::Truncate(q) => {
            let mut w = base(req, prepared, batch);
            w.op = "truncate".into();
            match q.resolve(cx.keyspace) {
                Some(r) => w.namespace = Some(r.to_string()),
                None => w.table = Some(q.name.as_str().to_string()),
            }
            w.client_timestamp = cx.default_timestamp;
            (w.timestamp, w.timestamp_source) = match cx.default_timestamp {
                Some(t) => (Some(t), Some("default")),
                None => (None, Some("server")),
            };
            w.cql = Some(text.line());
            out.push(w);
        }
        StatementKind::Schema(s) => {
            let mut w = base(req, prepared, batch);
            let action = match s.action {
                SchemaAction::Create => "create",
                SchemaAction::Alter => "alter",
                SchemaAction::Drop => "drop",
            };
            w.op = compact_str::format_compact!("{action}_{}", object_name(s.object));
            w.namespace = match s.object {
                SchemaObject::Keyspace => s.keyspace.as_ref().map(|k| k.as_str().to_string()),
                _ => s.resolve(cx.keyspace).map(|r| r.to_string()),
            };
            // Role and user statements can carry passwords: never copy their text.
            if !matches!(
                s.object,
                SchemaObject::Role | SchemaObject::User | SchemaObject::Identity
            ) {
                w.cql = Some(text.line());
            }
            w.timestamp_source = Some("server");
            out.push(w);
        }
        StatementKind::Access(a) => {
            let mut w = base(req, prepared, batch);
            w.op = if a.grant { "grant" } else { "revoke" }.into();
            w.cql = Some(text.line());
            w.timestamp_source = Some("server");
            out.push(w);
        }
        StatementKind::Use(_) | StatementKind::Select(_) | StatementKind::Other(_) => {}
    }
}
