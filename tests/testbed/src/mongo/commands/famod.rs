//! `findAndModify`: update, replace, upsert or remove the first document
//! the query (and `sort`) selects, answering with the document before or
//! after (`new`), optionally projected (`fields`). A retried retryable
//! `findAndModify` is answered with its recorded reply.

use super::find::matching_docs;
use super::write::{
    array_filters, bad_value, delete_at, insert_one, update_at, update_doc, upsert_document,
    WriteCtx, WriteError,
};
use crate::mongo::query::order::{cmp_by_sort, parse_sort};
use crate::mongo::query::projection::Projection;
use crate::mongo::storage::session::StmtOutcome;
use tidemark_mongo::bson::{doc, Bson, Document};

/// Runs `findAndModify` on `db` through `ctx` (the member is primary).
pub fn run(ctx: &mut WriteCtx, db: &str, cmd: &Document) -> Document {
    let coll = cmd
        .get_str("findAndModify")
        .or_else(|_| cmd.get_str("findandmodify"))
        .unwrap_or_default()
        .to_string();
    if coll.is_empty() {
        return bad_value("findAndModify needs a collection name").into_reply();
    }
    ctx.stmt_id = cmd.get_i32("stmtId").unwrap_or(0);
    if let Some((lsid, txn)) = &ctx.retry {
        if let Some(reply) = ctx
            .store
            .sessions
            .executed(lsid, *txn, ctx.stmt_id)
            .and_then(|o| o.reply)
        {
            let mut reply = reply;
            reply.insert("retriedStmtId", ctx.stmt_id);
            return reply;
        }
    }
    match modify(ctx, db, &coll, cmd) {
        Ok((reply, outcome)) => {
            if let Some((lsid, txn)) = ctx.retry.clone() {
                if ctx.txn.is_none() {
                    let stmt = ctx.stmt_id;
                    let outcome = StmtOutcome {
                        reply: Some(reply.clone()),
                        ..outcome
                    };
                    ctx.store.sessions.record(&lsid, txn, stmt, outcome, None);
                }
            }
            reply
        }
        Err(e) => e.into_reply(),
    }
}

fn modify(
    ctx: &mut WriteCtx,
    db: &str,
    coll: &str,
    cmd: &Document,
) -> Result<(Document, StmtOutcome), WriteError> {
    let ns = format!("{db}.{coll}");
    let q = cmd.get_document("query").cloned().unwrap_or_default();
    let remove = cmd.get_bool("remove").unwrap_or(false);
    let want_new = cmd.get_bool("new").unwrap_or(false);
    let upsert = cmd.get_bool("upsert").unwrap_or(false);
    let fields = match cmd.get_document("fields") {
        Ok(f) => Projection::parse(f).map_err(|e| bad_value(&e))?,
        Err(_) => None,
    };
    let show = |d: &Document| match &fields {
        Some(p) => Bson::Document(p.apply(d)),
        None => Bson::Document(d.clone()),
    };
    let u = if remove {
        if cmd.contains_key("update") {
            return Err(bad_value("remove and update cannot both be given"));
        }
        None
    } else {
        Some(update_doc(cmd.get("update"))?)
    };
    let filters = array_filters(cmd)?;
    // the first matching document in sort order
    let mut hits = matching_docs(ctx.store, &ns, &q).map_err(|e| WriteError {
        code: e.get_i32("code").unwrap_or(2),
        errmsg: e.get_str("errmsg").unwrap_or_default().to_string(),
        extra: Document::new(),
    })?;
    if let Ok(spec) = cmd.get_document("sort") {
        let spec = parse_sort(spec).map_err(|e| bad_value(&e))?;
        hits.sort_by(|a, b| cmp_by_sort(a, b, &spec));
    }
    // mongod marks the entry of a retryable findAndModify with the image a
    // retry must answer with: the document before (remove, or new: false)
    // or after (new: true)
    ctx.retry_image = Some(if remove || !want_new {
        "preImage"
    } else {
        "postImage"
    });
    let target = hits.first().and_then(|d| {
        let id = d.get("_id")?;
        ctx.store.collection(&ns)?.find_id(id)
    });
    let mut outcome = StmtOutcome::default();
    let (value, last_error) = match (target, u) {
        (Some(seq), None) => {
            let old = delete_at(ctx, &ns, seq).ok_or_else(|| bad_value("document vanished"))?;
            outcome.n = 1;
            (show(&old), doc! { "n": 1 })
        }
        (Some(seq), Some(u)) => {
            let (old, new) = update_at(ctx, &ns, seq, &u, &q, &filters)?
                .ok_or_else(|| bad_value("document vanished"))?;
            outcome.n = 1;
            outcome.n_modified = i64::from(old != new);
            let v = if want_new { show(&new) } else { show(&old) };
            (v, doc! { "n": 1, "updatedExisting": true })
        }
        (None, Some(u)) if upsert => {
            let new = upsert_document(&q, &u, &filters)?;
            let id = new.get("_id").cloned().unwrap_or(Bson::Null);
            insert_one(ctx, db, coll, &ns, &new)?;
            outcome.n = 1;
            outcome.upserted = Some(id.clone());
            let v = if want_new { show(&new) } else { Bson::Null };
            (v, doc! { "n": 1, "updatedExisting": false, "upserted": id })
        }
        (None, Some(_)) => (Bson::Null, doc! { "n": 0, "updatedExisting": false }),
        (None, None) => (Bson::Null, doc! { "n": 0 }),
    };
    Ok((
        doc! { "lastErrorObject": last_error, "value": value, "ok": 1.0 },
        outcome,
    ))
}
