//! The write commands on the primary: `insert`, `update`, `delete`, each
//! statement applied to the primary's collections and logged in its oplog
//! (or collected for the commit of an open transaction), with MongoDB's
//! per-index `writeErrors` for ordered and unordered batches. Retryable
//! statements (`lsid` + `txnNumber`) already executed are answered from the
//! session record, not applied again.

use crate::mongo::errors::error;
use crate::mongo::query::matcher::matches;
use crate::mongo::query::update::{
    apply_update, diff, is_operator_update, UpdateError, UpdateOpts,
};
use crate::mongo::storage::index::DupKey;
use crate::mongo::storage::session::{
    oplog_session_fields, stmt_id, BeforeImage, StmtOutcome, TxnOps,
};
use crate::mongo::storage::store::{Collection, MemberStore, OpTime};
use tidemark_mongo::bson::oid::ObjectId;
use tidemark_mongo::bson::{doc, Binary, Bson, Document};

/// Where a write goes: the store, the term it is logged in, and either the
/// retryable-write session or the open transaction it belongs to.
pub struct WriteCtx<'a> {
    pub store: &'a mut MemberStore,
    pub term: i64,
    /// `lsid` and `txnNumber` of a retryable write (outside transactions).
    pub retry: Option<(Document, i64)>,
    /// The open transaction collecting the writes (nothing is logged until commit).
    pub txn: Option<&'a mut TxnOps>,
    /// `stmtId` of the statement being executed.
    pub stmt_id: i32,
    /// Optime of the last oplog entry this command wrote (its `opTime`).
    pub last_logged: Option<OpTime>,
    /// `needsRetryImage` for the entries of a retryable `findAndModify`
    /// (`"preImage"` or `"postImage"`), as mongod 5.1+ marks them.
    pub retry_image: Option<&'static str>,
}

impl WriteCtx<'_> {
    /// Logs one data change: into the open transaction, or as an oplog
    /// entry carrying `ui` and, for a retryable write, the session fields.
    #[allow(clippy::too_many_arguments)]
    pub fn log(
        &mut self,
        op: &str,
        ns: &str,
        ui: Option<Binary>,
        o: Document,
        o2: Option<Document>,
        before: BeforeImage,
        with_session: bool,
    ) -> Option<OpTime> {
        if let Some(txn) = self.txn.as_deref_mut() {
            let mut e = doc! { "op": op, "ns": ns };
            if let Some(u) = ui {
                e.insert("ui", u);
            }
            e.insert("o", o);
            if let Some(o2) = o2 {
                e.insert("o2", o2);
            }
            txn.ops.push(e);
            txn.before.push(before);
            return None;
        }
        let mut extra = Document::new();
        if let Some(u) = ui {
            extra.insert("ui", u);
        }
        let session = self.retry.clone().filter(|_| with_session);
        if let Some((lsid, txn)) = &session {
            let prev = self
                .store
                .sessions
                .get(lsid)
                .filter(|r| r.txn_number == *txn)
                .and_then(|r| r.last_optime);
            extra.extend(oplog_session_fields(lsid, *txn, self.stmt_id, prev));
            if let Some(image) = self.retry_image.filter(|_| op != "i") {
                extra.insert("needsRetryImage", image);
            }
        }
        let t = self
            .store
            .append_oplog_with(self.term, op, ns, o, o2, extra);
        if let Some((lsid, txn)) = &session {
            let r = self.store.sessions.get_mut(lsid);
            if r.txn_number != *txn {
                r.txn_number = *txn;
                r.executed.clear();
                r.txn = None;
            }
            r.last_optime = Some(t);
        }
        self.last_logged = Some(t);
        Some(t)
    }
}

/// One statement's failure, reported at its index.
pub struct WriteError {
    pub code: i32,
    pub errmsg: String,
    pub extra: Document,
}

impl From<UpdateError> for WriteError {
    fn from(e: UpdateError) -> Self {
        WriteError {
            code: e.code,
            errmsg: e.msg,
            extra: Document::new(),
        }
    }
}

impl WriteError {
    /// As a command error reply (`findAndModify` fails the whole command).
    pub fn into_reply(self) -> Document {
        let name = match self.code {
            11000 => "DuplicateKey",
            2 => "BadValue",
            9 => "FailedToParse",
            14 => "TypeMismatch",
            28 => "PathNotViable",
            66 => "ImmutableField",
            72 => "InvalidOptions",
            _ => "UnknownError",
        };
        let mut d = error(self.code, name, &self.errmsg);
        d.extend(self.extra);
        d
    }
}

pub fn bad_value(msg: &str) -> WriteError {
    WriteError {
        code: 2,
        errmsg: msg.into(),
        extra: Document::new(),
    }
}

fn duplicate(ns: &str, id: &Bson) -> WriteError {
    WriteError {
        code: 11000,
        errmsg: format!(
            "E11000 duplicate key error collection: {ns} index: _id_ dup key: {{ _id: {id} }}"
        ),
        extra: doc! { "keyPattern": { "_id": 1 }, "keyValue": { "_id": id.clone() } },
    }
}

/// E11000 on a unique secondary index.
fn duplicate_on_index(ns: &str, dup: DupKey) -> WriteError {
    let shown: Vec<String> = dup
        .key_value
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    WriteError {
        code: 11000,
        errmsg: format!(
            "E11000 duplicate key error collection: {ns} index: {} dup key: {{ {} }}",
            dup.index,
            shown.join(", ")
        ),
        extra: doc! { "keyPattern": dup.key_pattern, "keyValue": dup.key_value },
    }
}

/// Per-command counters and the reply they become.
#[derive(Default)]
struct Outcome {
    n: i64,
    n_modified: i64,
    upserted: Vec<Bson>,
    errors: Vec<Bson>,
    /// Statements answered from the session record (`retriedStmtIds`).
    retried: Vec<i32>,
}

/// Runs `insert`/`update`/`delete` (`name`) through `ctx`; the caller has
/// checked that the member is primary.
pub fn run(ctx: &mut WriteCtx, db: &str, name: &str, cmd: &Document) -> Document {
    let coll = match cmd.get_str(name) {
        Ok(c) if !c.is_empty() => c,
        _ => {
            return error(
                73,
                "InvalidNamespace",
                "write command needs a collection name",
            )
        }
    };
    let ns = format!("{db}.{coll}");
    let list_key = match name {
        "insert" => "documents",
        "update" => "updates",
        _ => "deletes",
    };
    let Ok(items) = cmd.get_array(list_key) else {
        return error(
            9,
            "FailedToParse",
            &format!("{name} needs an array '{list_key}'"),
        );
    };
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let mut out = Outcome::default();
    for (i, item) in items.iter().enumerate() {
        ctx.stmt_id = stmt_id(cmd, i);
        if let Some((lsid, txn)) = &ctx.retry {
            if let Some(done) = ctx.store.sessions.executed(lsid, *txn, ctx.stmt_id) {
                // a retried statement: answer as the first time, apply nothing
                tracing::debug!(ns, stmt = ctx.stmt_id, "retried statement not re-applied");
                out.retried.push(ctx.stmt_id);
                out.n += done.n;
                out.n_modified += done.n_modified;
                if let Some(id) = done.upserted {
                    out.upserted
                        .push(Bson::Document(doc! { "index": i as i32, "_id": id }));
                }
                continue;
            }
        }
        let Bson::Document(item) = item else {
            push_error(&mut out, i, bad_value("write statements must be documents"));
            if ordered {
                break;
            }
            continue;
        };
        let r = match name {
            "insert" => insert_one(ctx, db, coll, &ns, item).map(|()| StmtOutcome {
                n: 1,
                ..Default::default()
            }),
            "update" => update_stmt(ctx, db, coll, &ns, item),
            _ => delete_stmt(ctx, &ns, item),
        };
        match r {
            Ok(o) => {
                out.n += o.n;
                out.n_modified += o.n_modified;
                if let Some(id) = &o.upserted {
                    out.upserted.push(Bson::Document(
                        doc! { "index": i as i32, "_id": id.clone() },
                    ));
                }
                if let Some((lsid, txn)) = ctx.retry.clone() {
                    if ctx.txn.is_none() {
                        ctx.store.sessions.record(&lsid, txn, ctx.stmt_id, o, None);
                    }
                }
            }
            Err(e) => {
                push_error(&mut out, i, e);
                if ordered {
                    break;
                }
            }
        }
    }
    let mut reply = doc! { "n": out.n as i32 };
    if name == "update" {
        reply.insert("nModified", out.n_modified as i32);
        if !out.upserted.is_empty() {
            reply.insert("upserted", out.upserted);
        }
    }
    if !out.errors.is_empty() {
        reply.insert("writeErrors", out.errors);
    }
    if !out.retried.is_empty() {
        reply.insert("retriedStmtIds", out.retried);
    }
    reply.insert("ok", 1.0);
    reply
}

fn push_error(out: &mut Outcome, index: usize, e: WriteError) {
    let mut d = doc! { "index": index as i32, "code": e.code, "errmsg": e.errmsg };
    d.extend(e.extra);
    out.errors.push(Bson::Document(d));
}

/// The `create` oplog `o` for `coll`, as MongoDB 6.0 logs it.
pub fn create_entry(coll: &str) -> Document {
    doc! { "create": coll, "idIndex": { "v": 2, "key": { "_id": 1 }, "name": "_id_" } }
}

/// The collection `ns`, created (with its oplog `create` entry, as MongoDB
/// logs an implicit creation) if it does not exist yet.
pub fn ensure_collection(ctx: &mut WriteCtx, db: &str, coll: &str, ns: &str) {
    if ctx.store.create_collection(ns, None) {
        let ui = ctx.store.uuid(ns);
        ctx.log(
            "c",
            &format!("{db}.$cmd"),
            ui,
            create_entry(coll),
            None,
            BeforeImage::Create { ns: ns.into() },
            false,
        );
    }
}

pub fn insert_one(
    ctx: &mut WriteCtx,
    db: &str,
    coll: &str,
    ns: &str,
    d: &Document,
) -> Result<(), WriteError> {
    let mut d = d.clone();
    if !d.contains_key("_id") {
        // the server adds a missing _id first in the document
        let mut with_id = doc! { "_id": ObjectId::new() };
        with_id.extend(d);
        d = with_id;
    }
    if matches!(d.get("_id"), Some(Bson::Array(_))) {
        return Err(bad_value("can't use an array for _id"));
    }
    if let Some(k) = d.keys().find(|k| k.starts_with('$')) {
        return Err(bad_value(&format!(
            "Document can't have $ prefixed field names: {k}"
        )));
    }
    ensure_collection(ctx, db, coll, ns);
    let c = ctx.store.collection_mut(ns);
    let id = d.get("_id").cloned().unwrap_or(Bson::Null);
    if c.find_id(&id).is_none() {
        if let Some(dup) = c.indexes.conflict(&d, None) {
            return Err(duplicate_on_index(ns, dup));
        }
    }
    c.insert(d.clone()).map_err(|dup| duplicate(ns, &dup))?;
    let ui = ctx.store.uuid(ns);
    let before = BeforeImage::Insert {
        ns: ns.into(),
        id: id.clone(),
    };
    ctx.log("i", ns, ui, d, Some(doc! { "_id": id }), before, true);
    Ok(())
}

/// Positions of documents in `c` matching `q`, at most one unless `multi`.
pub fn matching(c: &Collection, q: &Document, multi: bool) -> Result<Vec<u64>, WriteError> {
    if let Some(id) = q.get("_id") {
        let plain = !matches!(id, Bson::Document(d) if d.keys().any(|k| k.starts_with('$')));
        if plain {
            let hit = c
                .find_id(id)
                .filter(|s| c.get(*s).is_some_and(|d| matches(d, q).unwrap_or(false)));
            return Ok(hit.into_iter().collect());
        }
    }
    let mut out = Vec::new();
    for (seq, d) in c.iter() {
        if matches(d, q).map_err(|e| bad_value(&e))? {
            out.push(seq);
            if !multi {
                break;
            }
        }
    }
    Ok(out)
}

/// The `u` of an update statement; pipeline updates are refused clearly.
pub fn update_doc(u: Option<&Bson>) -> Result<Document, WriteError> {
    match u {
        Some(Bson::Document(u)) => Ok(u.clone()),
        Some(Bson::Array(_)) => Err(WriteError {
            code: 72,
            errmsg: "pipeline-style updates (an array of stages) are not supported by the testbed"
                .into(),
            extra: Document::new(),
        }),
        _ => Err(bad_value("update statement needs 'u'")),
    }
}

/// `arrayFilters` of a statement, each a document.
pub fn array_filters(stmt: &Document) -> Result<Vec<Document>, WriteError> {
    match stmt.get("arrayFilters") {
        None => Ok(Vec::new()),
        Some(Bson::Array(a)) => a
            .iter()
            .map(|f| match f {
                Bson::Document(d) => Ok(d.clone()),
                _ => Err(bad_value("arrayFilters entries must be objects")),
            })
            .collect(),
        Some(_) => Err(bad_value("arrayFilters must be an array")),
    }
}

/// The document an upsert inserts: the query's equality fields, then the
/// update (operators with `$setOnInsert`, or the replacement).
pub fn upsert_document(
    q: &Document,
    u: &Document,
    filters: &[Document],
) -> Result<Document, WriteError> {
    let mut base = Document::new();
    for (k, v) in q {
        let is_op = matches!(v, Bson::Document(d) if d.keys().any(|k| k.starts_with('$')));
        if !k.starts_with('$') && !k.contains('.') && !is_op {
            base.insert(k.clone(), v.clone());
        }
    }
    if !base.contains_key("_id") && !u.contains_key("_id") {
        let mut with_id = doc! { "_id": ObjectId::new() };
        with_id.extend(base);
        base = with_id;
    }
    if is_operator_update(u) {
        let opts = UpdateOpts {
            query: None,
            array_filters: filters,
            inserting: true,
        };
        Ok(apply_update(&base, u, &opts)?)
    } else {
        let mut r = doc! { "_id": base.get("_id").or(u.get("_id")).cloned().unwrap_or(Bson::Null) };
        r.extend(u.clone().into_iter().filter(|(k, _)| k != "_id"));
        Ok(r)
    }
}

/// Applies `u` to the document at `seq`; logs a `u` entry when it changed
/// (a `$v:2` diff, or the new document for a replacement). Returns the old
/// and new documents.
pub fn update_at(
    ctx: &mut WriteCtx,
    ns: &str,
    seq: u64,
    u: &Document,
    q: &Document,
    filters: &[Document],
) -> Result<Option<(Document, Document)>, WriteError> {
    let Some(old) = ctx.store.collection(ns).and_then(|c| c.get(seq)).cloned() else {
        return Ok(None);
    };
    let opts = UpdateOpts {
        query: Some(q),
        array_filters: filters,
        inserting: false,
    };
    let new = apply_update(&old, u, &opts)?;
    if new == old {
        return Ok(Some((old, new)));
    }
    let id = old.get("_id").cloned().unwrap_or(Bson::Null);
    let c = ctx.store.collection_mut(ns);
    if let Some(dup) = c.indexes.conflict(&new, Some(seq)) {
        return Err(duplicate_on_index(ns, dup));
    }
    c.replace(seq, new.clone());
    let o = if is_operator_update(u) {
        diff(&old, &new)
    } else {
        new.clone()
    };
    let ui = ctx.store.uuid(ns);
    let before = BeforeImage::Update {
        ns: ns.into(),
        old: old.clone(),
    };
    ctx.log("u", ns, ui, o, Some(doc! { "_id": id }), before, true);
    Ok(Some((old, new)))
}

fn update_stmt(
    ctx: &mut WriteCtx,
    db: &str,
    coll: &str,
    ns: &str,
    stmt: &Document,
) -> Result<StmtOutcome, WriteError> {
    let q = stmt.get_document("q").cloned().unwrap_or_default();
    let u = update_doc(stmt.get("u"))?;
    let filters = array_filters(stmt)?;
    let multi = stmt.get_bool("multi").unwrap_or(false);
    let upsert = stmt.get_bool("upsert").unwrap_or(false);
    if multi && !is_operator_update(&u) {
        return Err(WriteError {
            code: 9,
            errmsg: "multi update is not supported for replacement-style update".into(),
            extra: Document::new(),
        });
    }
    let hits = match ctx.store.collection(ns) {
        Some(c) => matching(c, &q, multi)?,
        None => Vec::new(),
    };
    if hits.is_empty() {
        if !upsert {
            return Ok(StmtOutcome::default());
        }
        let new = upsert_document(&q, &u, &filters)?;
        let id = new.get("_id").cloned().unwrap_or(Bson::Null);
        insert_one(ctx, db, coll, ns, &new)?;
        return Ok(StmtOutcome {
            n: 1,
            upserted: Some(id),
            ..Default::default()
        });
    }
    let mut out = StmtOutcome {
        n: hits.len() as i64,
        ..Default::default()
    };
    for seq in hits {
        if let Some((old, new)) = update_at(ctx, ns, seq, &u, &q, &filters)? {
            if old != new {
                out.n_modified += 1;
            }
        }
    }
    Ok(out)
}

/// Removes the document at `seq`, logging a `d` entry; returns it.
pub fn delete_at(ctx: &mut WriteCtx, ns: &str, seq: u64) -> Option<Document> {
    let d = ctx.store.collection_mut(ns).remove(seq)?;
    let id = d.get("_id").cloned().unwrap_or(Bson::Null);
    let ui = ctx.store.uuid(ns);
    let before = BeforeImage::Delete {
        ns: ns.into(),
        old: d.clone(),
    };
    ctx.log("d", ns, ui, doc! { "_id": id }, None, before, true);
    Some(d)
}

fn delete_stmt(ctx: &mut WriteCtx, ns: &str, stmt: &Document) -> Result<StmtOutcome, WriteError> {
    let q = stmt.get_document("q").cloned().unwrap_or_default();
    let multi = match stmt.get("limit") {
        Some(Bson::Int32(0)) | Some(Bson::Int64(0)) => true,
        Some(Bson::Double(d)) if *d == 0.0 => true,
        _ => false,
    };
    let hits = match ctx.store.collection(ns) {
        Some(c) => matching(c, &q, multi)?,
        None => return Ok(StmtOutcome::default()),
    };
    let mut n = 0;
    for seq in hits {
        if delete_at(ctx, ns, seq).is_some() {
            n += 1;
        }
    }
    Ok(StmtOutcome {
        n,
        ..Default::default()
    })
}
