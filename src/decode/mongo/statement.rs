//! What a request asks to change, as `write` lines still waiting for an outcome.
//!
//! Every wire form ends up as an [`Action`]: write commands (OP_MSG, OP_QUERY on
//! `$cmd`, OP_COMMAND), legacy OP_INSERT/OP_UPDATE/OP_DELETE, `bulkWrite`,
//! `applyOps`, DDL, transaction control and `getlasterror`. The line's fields that the
//! request alone fixes (namespace, op, key, values, write concern, session, request,
//! batch) are filled here, once; the reply only adds `outcome` and `reason`.

use crate::capture::Timestamp;
use serde_json::{Map, Value};

use crate::decode::records::{BatchPlace, SentWriteConcern};
use tidemark_mongo::bson::RawDocument;
use tidemark_mongo::model::{
    CommandOrigin, Ddl, DdlOp, ModelError, Namespace, StatementOp, TransactionOp, UpdateSpec,
    WriteCommand, WriteConcern, WriteKind, WriteStatement, W,
};
use tidemark_mongo::Message;

use super::share::Owners;
use super::{evidence, sent, values};
use crate::decode::records::{LineValue, WriteExtras, WriteRecord};

/// Generic command arguments: not part of what a DDL command changes.
const GENERIC_FIELDS: &[&str] = &[
    "lsid",
    "txnNumber",
    "autocommit",
    "startTransaction",
    "stmtId",
    "stmtIds",
    "writeConcern",
    "readConcern",
    "$db",
    "$clusterTime",
    "$readPreference",
    "$client",
    "$audit",
    "$configServerState",
    "$topologyTime",
    "$gleStats",
    "apiVersion",
    "apiStrict",
    "apiDeprecationErrors",
    "comment",
    "maxTimeMS",
    "mayBypassWriteBlocking",
];

/// The durability a write asked for, owned so it outlives the request's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wc {
    /// No `writeConcern` (or no `w` in it): the server's default, `w:1` before 5.0
    /// and for the captures this project has; inspect does not know the cluster's.
    Default,
    Majority,
    Nodes(i64),
    Tag(String),
}

impl Wc {
    pub fn of(wc: Option<&WriteConcern<'_>>) -> Wc {
        match wc.and_then(|w| w.w) {
            None => Wc::Default,
            Some(W::Majority) => Wc::Majority,
            Some(W::Nodes(n)) => Wc::Nodes(n),
            Some(W::Tag(t)) => Wc::Tag(t.to_owned()),
        }
    }

    /// How the acknowledgement was asked for, for `reason` texts.
    pub fn describe(&self) -> String {
        match self {
            Wc::Default => "acknowledged with the default write concern".to_owned(),
            Wc::Majority => "acknowledged w:\"majority\"".to_owned(),
            Wc::Nodes(n) => format!("acknowledged w:{n}"),
            Wc::Tag(t) => format!("acknowledged w:{t:?}"),
        }
    }
}

/// A transaction: the session id's bytes and the transaction number.
pub type TxnKey = (Vec<u8>, i64);

/// One statement waiting for its outcome.
#[derive(Debug, Clone)]
pub struct Stmt {
    /// The line, outcome still empty.
    pub rec: Box<WriteRecord>,
    /// Position in its command (what `writeErrors[].index` counts).
    pub index: usize,
}

/// Where a write command came from, which decides whether a `getlasterror` may follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// OP_MSG: modern drivers, never followed by getlasterror.
    Msg,
    /// OP_QUERY `$cmd` or OP_COMMAND: 2.6–3.2-era clients, which may confirm with
    /// `getlasterror` and its `w`.
    LegacyCommand,
    /// OP_INSERT/OP_UPDATE/OP_DELETE: no reply of their own at all.
    LegacyOpcode,
}

/// What a request does to data.
#[derive(Debug, Clone)]
pub enum Action {
    /// Statements of a write or DDL command, decided together by one reply.
    Writes {
        stmts: Vec<Stmt>,
        ordered: bool,
        wc: Wc,
        unacknowledged: bool,
        /// `autocommit:false`: held until the transaction ends.
        txn: Option<TxnKey>,
        origin: Origin,
        /// `bulkWrite` reports per-operation results in a cursor.
        bulk_write: bool,
    },
    /// `commitTransaction` / `abortTransaction`, itself a `write` line.
    Txn {
        op: TransactionOp,
        key: TxnKey,
        rec: Box<WriteRecord>,
        wc: Wc,
    },
    /// `getlasterror`: decides the connection's previous legacy write with its `w`.
    GetLastError {
        wc: Wc,
        /// Its `w`, `j`, `fsync`, `wtimeout`: the `write_concern` of the lines it decides.
        sent: SentWriteConcern,
    },
}

/// Fields every line of one request shares.
pub struct Base {
    pub flow: u64,
    pub ts: Timestamp,
}

/// The action of a request message, `Ok(None)` for requests that change nothing.
pub fn extract(msg: &Message, base: &Base) -> Result<Option<Action>, ModelError> {
    if let Some(w) = msg.write()? {
        let body = msg.command().map(|c| (c.body, c.origin));
        return Ok(Some(writes(msg, base, &w, body)));
    }
    let Some(cmd) = msg.command() else {
        return Ok(None);
    };
    if let Some(op) = cmd.transaction_op() {
        let s = cmd.session()?;
        let key: TxnKey = (
            s.lsid.unwrap_or_default().to_vec(),
            s.txn_number.unwrap_or(-1),
        );
        let mut values = Map::new();
        if let Some(n) = s.txn_number {
            values.insert("txnNumber".into(), n.into());
        }
        let mut rec = record(base, msg, Some(cmd.body), None);
        rec.namespace = Some(format!("{}.$cmd", cmd.db));
        rec.op = cmd.name.into();
        rec.values = Value::Object(values).into();
        rec.extras.mongo_op = Some(evidence::command_op(
            format!("{}.$cmd", cmd.db),
            cmd.body,
            &s,
            GENERIC_FIELDS,
        ));
        return Ok(Some(Action::Txn {
            op,
            key,
            rec,
            wc: Wc::of(s.write_concern.as_ref()),
        }));
    }
    if let Some(gle) = cmd.get_last_error()? {
        return Ok(Some(Action::GetLastError {
            wc: Wc::of(Some(&gle.write_concern)),
            sent: sent::gle_write_concern(cmd.body),
        }));
    }
    if let Some(ddl) = cmd.ddl()? {
        let s = &ddl.session;
        let mut rec = record(base, msg, Some(cmd.body), None);
        let (namespace, op) = ddl_target(&ddl, cmd.name);
        rec.namespace = Some(namespace);
        rec.op = op.into();
        rec.key = Value::Null.into();
        rec.values = command_values(cmd.body).into();
        rec.extras.mongo_op = Some(evidence::command_op(
            ddl_command_ns(&ddl),
            cmd.body,
            s,
            GENERIC_FIELDS,
        ));
        let txn = s.in_transaction().then(|| {
            (
                s.lsid.unwrap_or_default().to_vec(),
                s.txn_number.unwrap_or(-1),
            )
        });
        return Ok(Some(Action::Writes {
            stmts: vec![Stmt { rec, index: 0 }],
            ordered: true,
            wc: Wc::of(s.write_concern.as_ref()),
            unacknowledged: s.write_concern.is_some_and(|w| w.is_unacknowledged()),
            txn,
            origin: origin_of(cmd.origin),
            bulk_write: false,
        }));
    }
    Ok(None)
}

fn origin_of(o: CommandOrigin) -> Origin {
    match o {
        CommandOrigin::OpMsg => Origin::Msg,
        CommandOrigin::OpQuery | CommandOrigin::OpCommand => Origin::LegacyCommand,
    }
}

fn writes(
    msg: &Message,
    base: &Base,
    w: &WriteCommand<'_>,
    body: Option<(&RawDocument, CommandOrigin)>,
) -> Action {
    let s = &w.session;
    let multi = matches!(
        w.kind,
        WriteKind::Insert
            | WriteKind::Update
            | WriteKind::Delete
            | WriteKind::BulkWrite
            | WriteKind::ApplyOps
    );
    let count = w.statements.len() as u64;
    let command = kind_name(w.kind);
    // What every statement shares is rendered once; only `stmtIds` differ per statement.
    let generic = body.map(|(b, _)| sent::Generic::scan(b));
    let per_stmt_ids = generic
        .as_ref()
        .is_some_and(sent::Generic::per_statement_ids);
    let proto = record_of(base, msg, generic.as_ref(), None);
    let owners = Owners::of(msg);
    let stmts = w
        .statements
        .iter()
        .map(|st| {
            let mut rec = if per_stmt_ids {
                record_of(base, msg, generic.as_ref(), Some(st.index))
            } else {
                proto.clone()
            };
            fill_statement(&mut rec, st, &owners);
            rec.extras.mongo_op = evidence::statement_op(st, s, &owners);
            if multi {
                rec.batch = Some(BatchPlace::Mongo {
                    command,
                    index: st.index as u64,
                    count,
                    ordered: w.ordered,
                });
            }
            Stmt {
                rec,
                index: st.index,
            }
        })
        .collect();
    let origin = match body {
        _ if w.legacy => Origin::LegacyOpcode,
        Some((_, o)) => origin_of(o),
        None => Origin::Msg,
    };
    Action::Writes {
        stmts,
        ordered: w.ordered,
        wc: Wc::of(s.write_concern.as_ref()),
        unacknowledged: s.write_concern.is_some_and(|w| w.is_unacknowledged()),
        txn: s.in_transaction().then(|| {
            (
                s.lsid.unwrap_or_default().to_vec(),
                s.txn_number.unwrap_or(-1),
            )
        }),
        origin,
        bulk_write: w.kind == WriteKind::BulkWrite,
    }
}

fn kind_name(k: WriteKind) -> &'static str {
    match k {
        WriteKind::Insert => "insert",
        WriteKind::Update => "update",
        WriteKind::Delete => "delete",
        WriteKind::FindAndModify => "findAndModify",
        WriteKind::BulkWrite => "bulkWrite",
        WriteKind::ApplyOps => "applyOps",
    }
}

/// `db.collection` (or `db`) as one allocation of the right size, without the
/// formatting machinery `to_string` goes through (twice per statement).
pub fn ns_text(ns: &Namespace<'_>) -> String {
    if ns.coll.is_empty() {
        return ns.db.to_owned();
    }
    let mut s = String::with_capacity(ns.db.len() + 1 + ns.coll.len());
    s.push_str(ns.db);
    s.push('.');
    s.push_str(ns.coll);
    s
}

/// namespace, op, key and values of one statement; documents are slices of
/// `owners` (the operation's `o` is the same slice: see `share`).
fn fill_statement(rec: &mut WriteRecord, st: &WriteStatement<'_>, owners: &Owners<'_>) {
    rec.namespace = Some(ns_text(&st.ns));
    rec.op = st.op.name().into();
    rec.key = match (st.id(), st.filter()) {
        (Some(id), _) => values::lazy_id_key(id),
        (None, Some(filter)) => values::doc(filter).into(),
        (None, None) => Value::Null.into(),
    };
    rec.extras.upsert = match &st.op {
        StatementOp::Update(u) => u.upsert,
        StatementOp::FindAndModify(f) => f.upsert && !f.remove,
        _ => false,
    };
    // Documents stay bytes until the line is printed (see `LineValue`).
    rec.values = match &st.op {
        StatementOp::Insert { document } => values::lazy_doc(document, owners),
        StatementOp::Update(u) => update_spec(&u.u, owners),
        StatementOp::Delete(_) => LineValue::default(),
        StatementOp::FindAndModify(f) => f
            .update
            .as_ref()
            .map(|u| update_spec(u, owners))
            .unwrap_or_default(),
        // The whole entry: its `op`, `ns`, `o` and `o2` are the change.
        StatementOp::Oplog(e) => values::lazy_doc(e.raw, owners),
    };
}

fn update_spec(u: &UpdateSpec<'_>, owners: &Owners<'_>) -> LineValue {
    match u {
        UpdateSpec::Modifiers(d) | UpdateSpec::Replacement(d) => values::lazy_doc(d, owners),
        UpdateSpec::Pipeline(a) => values::lazy_array(a, owners),
    }
}

/// A line with the request-level fields set: write concern and session as sent.
fn record(
    base: &Base,
    msg: &Message,
    body: Option<&RawDocument>,
    index: Option<usize>,
) -> Box<WriteRecord> {
    record_of(base, msg, body.map(sent::Generic::scan).as_ref(), index)
}

/// [`record`] from the body's generic fields, read once per command.
fn record_of(
    base: &Base,
    msg: &Message,
    generic: Option<&sent::Generic<'_>>,
    index: Option<usize>,
) -> Box<WriteRecord> {
    // Boxed once: the line (about 1.4 KB) moves as a box from here to the output.
    Box::new(WriteRecord {
        flow: base.flow,
        ts: base.ts,
        proto: "mongo",
        write_concern: generic.and_then(sent::Generic::write_concern),
        session: generic.and_then(|g| g.session(index)),
        request: Some(i64::from(msg.request_id)),
        extras: WriteExtras {
            // A command a router sent to a shard names the routing table version it
            // was routed with (`shardVersion` for a sharded collection,
            // `databaseVersion` for an unsharded one in a sharded cluster). Clients
            // never send either.
            routed: generic.is_some_and(sent::Generic::routed),
            ..WriteExtras::default()
        },
        ..WriteRecord::default()
    })
}

/// The command minus generic arguments: what a DDL changes.
fn command_values(body: &RawDocument) -> Value {
    let mut m = Map::new();
    for (k, v) in body.iter().map_while(|e| e.ok()) {
        if !GENERIC_FIELDS.contains(&k.as_str()) {
            m.insert(k.as_str().to_owned(), values::value(v));
        }
    }
    Value::Object(m)
}

/// The oplog namespace of a DDL command, `db.$cmd`: `renameCollection` (run on
/// `admin`) is logged under its source database.
fn ddl_command_ns(ddl: &Ddl<'_>) -> String {
    match &ddl.op {
        DdlOp::RenameCollection { from, .. } => format!("{}.$cmd", from.db),
        _ => format!("{}.$cmd", ddl.db),
    }
}

/// Namespace and op of a DDL line: `renameCollection` names its source;
/// `shardCollection` and `reshardCollection`, run on `admin` like it, name their
/// collection in full (`db.coll`), which is the line's namespace (not `admin.db.coll`).
fn ddl_target(ddl: &Ddl<'_>, name: &str) -> (String, String) {
    let db = ddl.db;
    let (ns, op) = match &ddl.op {
        DdlOp::Other {
            name: n @ ("shardCollection" | "reshardCollection"),
            body,
        } => {
            let full = tidemark_mongo::model::fields::first_element(body)
                .and_then(|(_, v)| v.as_str())
                .filter(|v| v.contains('.'));
            (full.map_or_else(|| db.to_owned(), str::to_owned), *n)
        }
        DdlOp::Create { collection, .. } => (format!("{db}.{collection}"), "create"),
        DdlOp::Drop { collection } => (format!("{db}.{collection}"), "drop"),
        DdlOp::DropDatabase => (db.to_owned(), "dropDatabase"),
        DdlOp::RenameCollection { from, .. } => (from.to_string(), "renameCollection"),
        DdlOp::CreateIndexes { collection, .. } => (format!("{db}.{collection}"), "createIndexes"),
        DdlOp::DropIndexes { collection, .. } => (format!("{db}.{collection}"), "dropIndexes"),
        DdlOp::CollMod { collection, .. } => (format!("{db}.{collection}"), "collMod"),
        DdlOp::Other { body, .. } => {
            let coll =
                tidemark_mongo::model::fields::first_element(body).and_then(|(_, v)| v.as_str());
            (
                coll.map_or_else(|| db.to_owned(), |c| format!("{db}.{c}")),
                name,
            )
        }
    };
    (ns, op.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::mongo::share::{lies_in, same_slice};
    use tidemark_mongo::bson::rawdoc;
    use tidemark_mongo::{Body, Doc, DocSeq, DocSequence, OpMsg};

    fn writes_of(msg: &Message) -> Vec<Stmt> {
        let base = Base {
            flow: 1,
            ts: Timestamp(1),
        };
        match extract(msg, &base) {
            Ok(Some(Action::Writes { stmts, .. })) => stmts,
            other => panic!("not writes: {other:?}"),
        }
    }

    /// The document reaches the store once: the operation's `o` and the line's kept
    /// values are one slice of the request, so `commit::convert::line_values` knows
    /// them equal by address and stores the line's values as "the payload's `o`".
    #[test]
    fn an_inserted_document_is_one_slice_of_the_request_for_payload_and_line() {
        let docs = [
            rawdoc! {"_id": 1, "name": "a"},
            rawdoc! {"_id": 2, "name": "b"},
        ];
        let mut m = OpMsg::new(Doc::from_raw(&rawdoc! {"insert": "c", "$db": "d"}));
        m.sequences.push(DocSequence {
            identifier: "documents".into(),
            documents: DocSeq::from_docs(docs.iter().map(|d| d.as_ref())),
        });
        let msg = Message::new(5, 0, Body::Msg(m));
        let stmts = writes_of(&msg);
        assert_eq!(stmts.len(), 2);
        for (st, doc) in stmts.iter().zip(&docs) {
            let op = st.rec.extras.mongo_op.as_ref().expect("an operation");
            let (_, kept) = st.rec.values.kept().expect("kept values");
            assert_eq!(&op.o[..], doc.as_bytes());
            assert!(same_slice(&op.o, kept), "payload and line share the bytes");
        }
    }

    #[test]
    fn an_update_shares_its_modifiers_and_filter_with_the_request() {
        let body = rawdoc! {
            "update": "c", "$db": "d",
            "updates": [{"q": {"_id": 7}, "u": {"$set": {"n": 1}}}],
        };
        let msg = Message::new(6, 0, Body::Msg(OpMsg::new(Doc::from_raw(&body))));
        let Body::Msg(m) = &msg.body else {
            unreachable!()
        };
        let inside = |b: &[u8]| lies_in(b, m.body.bytes());
        let stmts = writes_of(&msg);
        let op = stmts[0].rec.extras.mongo_op.as_ref().expect("an operation");
        let (_, kept) = stmts[0].rec.values.kept().expect("kept values");
        assert!(inside(&op.o) && inside(op.o2.as_deref().unwrap_or_default()));
        assert!(same_slice(&op.o, kept));
        assert_eq!(&op.o[..], rawdoc! {"$set": {"n": 1}}.as_bytes());
    }
}
