//! What a request is waiting for: a QUERY, EXECUTE or BATCH is turned into its
//! `write` lines at once (outcome still open), a PREPARE keeps its text until the
//! Prepared result gives the id, and everything else only occupies its stream id.

use crate::capture::Timestamp;
use bytes::Bytes;
use tidemark_cql::message::{BatchQuery, BatchType, QueryParameters, QueryValues};
use tidemark_cql::statement::Statement;
use tidemark_cql::wire::Consistency;
use tidemark_cql::Message;

use super::ddl;
use super::extract::bound::Bound;
use super::extract::{base, statement_writes, BatchInfo, RequestInfo, StmtCtx, StmtText};
use super::flow::id_hex;
use super::parsed::TextCache;
use super::shared::{Shared, Unresolved};
use crate::decode::records::{CqlBatchType, ErrorRecord, Record, WriteRecord};
use std::net::SocketAddr;

/// Where a request was seen.
pub struct Ctx<'a> {
    pub flow: u64,
    pub ts: Timestamp,
    pub stream: i16,
    /// The connection's current keyspace.
    pub keyspace: Option<&'a str>,
}

/// A request waiting for its response.
pub struct Pending {
    /// Order of arrival on the flow.
    pub seq: u64,
    pub kind: PendingKind,
}

pub enum PendingKind {
    Prepare {
        text: String,
        keyspace: Option<String>,
    },
    /// Write lines, and for each whether it is an unresolved prepared statement.
    /// `unresolved` ends at the last write that waits for its PREPARE (empty when
    /// none does, as almost always: a vector of `None`s per request was an
    /// allocation per EXECUTE for nothing); the writes after it are `None`.
    Writes {
        writes: Vec<Box<WriteRecord>>,
        lwt: bool,
        unresolved: Vec<Option<Waiting>>,
    },
    Use,
    Other,
}

/// What an unresolved EXECUTE needs to be resolved later.
pub struct Waiting {
    pub id: Bytes,
    pub values: QueryValues,
    pub keyspace: Option<String>,
    pub default_timestamp: Option<i64>,
}

impl Waiting {
    pub fn into_unresolved(self, record: WriteRecord) -> Unresolved {
        Unresolved {
            record,
            values: self.values,
            keyspace: self.keyspace,
            default_timestamp: self.default_timestamp,
        }
    }
}

fn serial(c: Option<Consistency>) -> Option<&'static str> {
    c.map(Consistency::name)
}

fn info<'a>(ctx: &'a Ctx<'a>, p: &QueryParameters) -> RequestInfo<'a> {
    RequestInfo {
        flow: ctx.flow,
        ts: ctx.ts,
        stream: ctx.stream,
        consistency: p.consistency.name(),
        serial_consistency: serial(p.serial_consistency),
    }
}

/// Statements whose text we could not parse are reported when they look like writes.
fn looks_like_write(text: &str) -> bool {
    let w: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    matches!(
        w.as_str(),
        "INSERT"
            | "UPDATE"
            | "DELETE"
            | "BEGIN"
            | "TRUNCATE"
            | "CREATE"
            | "ALTER"
            | "DROP"
            | "GRANT"
            | "REVOKE"
    )
}

fn parse_error(ctx: &Ctx<'_>, text: &str, e: impl std::fmt::Display, out: &mut Vec<Record>) {
    if looks_like_write(text) {
        out.push(Record::Error(ErrorRecord {
            flow: Some(ctx.flow),
            dir: Some("c2s"),
            offset: None,
            message: format!(
                "cql: stream {}: statement not understood, write not extracted: {}",
                ctx.stream,
                parse_error_detail(text, e)
            ),
        }));
    }
}

/// The parser's message quotes the text where it stopped; a statement that names a
/// password (CREATE/ALTER ROLE or USER in a form the parser does not know) must not
/// have any of its text copied into output.
fn parse_error_detail(text: &str, e: impl std::fmt::Display) -> String {
    if text.to_ascii_lowercase().contains("password") {
        "(details withheld: the statement may carry a credential)".to_string()
    } else {
        e.to_string()
    }
}

/// Classifies a request and builds its write lines.
pub fn classify(
    msg: &Message,
    ctx: &Ctx<'_>,
    shared: &mut Shared,
    queries: &mut TextCache,
    server: SocketAddr,
    out: &mut Vec<Record>,
) -> Option<PendingKind> {
    Some(match msg {
        Message::Query(q) => {
            let parsed = queries.get(q.query.as_str());
            let stmt = match parsed.statement() {
                Ok(s) => s,
                Err(e) => {
                    parse_error(ctx, q.query.as_str(), e, out);
                    return Some(PendingKind::Other);
                }
            };
            if matches!(stmt.kind, tidemark_cql::statement::StatementKind::Use(_)) {
                return Some(PendingKind::Use);
            }
            let ks = q.params.keyspace.as_deref().or(ctx.keyspace);
            ddl::learn(stmt, ks, &mut shared.schema);
            let bound = Bound::new(&q.params.values, &stmt.bind_markers, None);
            let mut writes = Vec::new();
            one(
                stmt,
                StmtText::Borrowed(q.query.as_str()),
                ks,
                &bound,
                shared,
                &info(ctx, &q.params),
                q.params.timestamp,
                false,
                None,
                &mut writes,
            );
            writes_kind(writes, stmt.is_lwt(), Vec::new())
        }
        Message::Prepare(p) => PendingKind::Prepare {
            text: p.query.to_string(),
            keyspace: p
                .keyspace
                .as_ref()
                .map(|k| k.to_string())
                .or(ctx.keyspace.map(str::to_string)),
        },
        Message::Execute(e) => {
            let req = info(ctx, &e.params);
            let ks = e.params.keyspace.as_deref().or(ctx.keyspace);
            let mut writes = Vec::new();
            let mut waiting = Vec::new();
            let lwt = prepared(
                &e.id,
                &e.params.values,
                ks,
                e.params.timestamp,
                &req,
                None,
                shared,
                server,
                &mut writes,
                &mut waiting,
            );
            writes_kind(writes, lwt, waiting)
        }
        Message::Batch(b) => {
            let req = RequestInfo {
                flow: ctx.flow,
                ts: ctx.ts,
                stream: ctx.stream,
                consistency: b.consistency.name(),
                serial_consistency: serial(b.serial_consistency),
            };
            let ks = b.keyspace.as_deref().or(ctx.keyspace);
            let kind = match b.batch_type {
                BatchType::Logged => CqlBatchType::Logged,
                BatchType::Unlogged => CqlBatchType::Unlogged,
                BatchType::Counter => CqlBatchType::Counter,
            };
            let (mut writes, mut waiting, mut lwt) = (Vec::new(), Vec::new(), false);
            for (index, s) in b.statements.iter().enumerate() {
                let bi = BatchInfo {
                    flow: ctx.flow,
                    stream: ctx.stream,
                    kind,
                    index,
                    size: b.statements.len(),
                };
                match &s.query {
                    BatchQuery::Query(text) => match queries.get(text.as_str()).statement() {
                        Ok(stmt) => {
                            lwt |= stmt.is_lwt();
                            let bound = Bound::new(&s.values, &stmt.bind_markers, None);
                            one(
                                stmt,
                                StmtText::Borrowed(text.as_str()),
                                ks,
                                &bound,
                                shared,
                                &req,
                                b.timestamp,
                                false,
                                Some(&bi),
                                &mut writes,
                            );
                        }
                        Err(e) => parse_error(ctx, text.as_str(), e, out),
                    },
                    BatchQuery::Prepared(id) => {
                        lwt |= prepared(
                            id,
                            &s.values,
                            ks,
                            b.timestamp,
                            &req,
                            Some(&bi),
                            shared,
                            server,
                            &mut writes,
                            &mut waiting,
                        );
                    }
                }
            }
            writes_kind(writes, lwt, waiting)
        }
        _ => PendingKind::Other,
    })
}

fn writes_kind(
    writes: Vec<Box<WriteRecord>>,
    lwt: bool,
    waiting: Vec<Option<Waiting>>,
) -> PendingKind {
    if writes.is_empty() {
        return PendingKind::Other;
    }
    PendingKind::Writes {
        writes,
        lwt,
        unresolved: waiting,
    }
}

/// The writes of one parsed statement.
#[allow(clippy::too_many_arguments)]
fn one(
    stmt: &Statement<'_>,
    text: StmtText<'_>,
    keyspace: Option<&str>,
    bound: &Bound<'_>,
    shared: &Shared,
    req: &RequestInfo<'_>,
    default_timestamp: Option<i64>,
    prepared: bool,
    batch: Option<&BatchInfo>,
    out: &mut Vec<Box<WriteRecord>>,
) {
    let cx = StmtCtx {
        schema: &shared.schema,
        keyspace,
        bound,
        default_timestamp,
        batch_using: &[],
    };
    statement_writes(stmt, text, &cx, req, prepared, batch, out);
}

/// An EXECUTE or prepared BATCH member: its writes if the statement is known, else
/// one unresolved write. Returns whether it is an LWT.
#[allow(clippy::too_many_arguments)]
fn prepared(
    id: &Bytes,
    values: &QueryValues,
    keyspace: Option<&str>,
    default_timestamp: Option<i64>,
    req: &RequestInfo<'_>,
    batch: Option<&BatchInfo>,
    shared: &mut Shared,
    server: SocketAddr,
    writes: &mut Vec<Box<WriteRecord>>,
    waiting: &mut Vec<Option<Waiting>>,
) -> bool {
    if let Some(p) = shared.node(server).prepared(id) {
        // Unqualified names were resolved when the statement was prepared.
        let ks = p.keyspace.as_deref().or(keyspace);
        if let Ok(stmt) = p.text.statement() {
            let bound =
                Bound::new(values, &stmt.bind_markers, Some(&p.metadata)).with_shared(&p.shared);
            one(
                stmt,
                StmtText::Shared(p.text.shared()),
                ks,
                &bound,
                shared,
                req,
                default_timestamp,
                true,
                batch,
                writes,
            );
            return stmt.is_lwt();
        }
        // A prepared text we cannot parse: report it like an unknown statement.
    }
    let mut w = base(req, true, batch);
    w.op = "unknown".into();
    w.key = serde_json::Value::Null.into();
    w.key_source = Some("unknown");
    w.values = Bound::raw(values).hex_all().into();
    w.statement_id = Some(id_hex(id));
    w.client_timestamp = default_timestamp;
    (w.timestamp, w.timestamp_source) = match default_timestamp {
        Some(t) => (Some(t), Some("default")),
        None => (None, Some("server")),
    };
    writes.push(w);
    // `waiting` stays empty until a write waits (see `PendingKind::Writes`).
    waiting.resize_with(writes.len() - 1, || None);
    waiting.push(Some(Waiting {
        id: id.clone(),
        values: values.clone(),
        keyspace: keyspace.map(str::to_string),
        default_timestamp,
    }));
    false
}

#[cfg(test)]
mod tests {
    use super::parse_error_detail;

    #[test]
    fn parse_errors_never_quote_statements_that_name_a_password() {
        let text = "CREATE USER u WITH PASSWORD 'S3cret-Tide!42' %%%";
        let parser_said = "expected end of statement at 45, found \"'S3cret-Tide!42' %%%\"";
        let detail = parse_error_detail(text, parser_said);
        assert!(!detail.contains("S3cret"), "{detail}");
        assert_eq!(parse_error_detail("INSERT INTO t (", "boom"), "boom");
    }
}
