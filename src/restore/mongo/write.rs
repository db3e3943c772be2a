//! Writing one batch of documents into one collection: `insert` with
//! `ordered: false` into a collection that was empty when the restore began, else
//! replacement upserts by `_id` (a document the target already holds unchanged is
//! skipped, not rewritten). An insert that meets a duplicate key (a resumed restore
//! writing a document it wrote before it was stopped) becomes a replacement of that
//! document: every write here is idempotent, which is what makes retries and
//! `--resume` safe.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use anyhow::{anyhow, Result};
use futures_util::TryStreamExt;
use mongodb::Client;
use tidemark_mongo::bson::{doc, Bson, Document, RawDocument, RawDocumentBuf};

use super::client::{one_line, retryable, retryable_code};
use super::same::same;
use crate::decode::mongo::values;

/// Attempts of one command before the restore stops (resumable).
const ATTEMPTS: u32 = 8;
/// First pause between attempts; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Errors kept per batch (the report keeps the first 10 overall).
const MAX_ERRORS: usize = 10;

/// One document of the version.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The version's key (canonical JSON `{"_id": …}`).
    pub key: String,
    /// Raw BSON, as the version stores it.
    pub bytes: Vec<u8>,
}

/// What writing a batch did.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub written: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
    pub errors: Vec<String>,
}

/// A command that failed, and whether repeating it may help.
pub struct Failure {
    msg: String,
    retryable: bool,
}

impl From<mongodb::error::Error> for Failure {
    fn from(e: mongodb::error::Error) -> Failure {
        Failure {
            retryable: retryable(&e),
            msg: one_line(&e),
        }
    }
}

/// Runs `f` until it succeeds, fails for good, or [`ATTEMPTS`] are spent, pausing
/// with a doubling backoff between attempts (an election, a dropped connection).
pub async fn retry<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut pause = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.retryable && attempt < ATTEMPTS => {
                tracing::warn!(what, attempt, error = %e.msg, "retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_BACKOFF);
            }
            Err(e) => return Err(anyhow!("{what}: {}", e.msg)),
        }
    }
    Err(anyhow!("{what}: no attempt left"))
}

/// Runs a write command; a reply's `writeConcernError` is a failure (retryable when
/// its code says so: the write may or may not stand, and repeating it is safe).
pub async fn run_write(client: &Client, db: &str, cmd: &Document) -> Result<Document, Failure> {
    let reply = client.database(db).run_command(cmd.clone()).await?;
    if let Ok(wce) = reply.get_document("writeConcernError") {
        let code = wce.get_i32("code").unwrap_or(0);
        return Err(Failure {
            msg: format!(
                "write concern error ({code}): {}",
                wce.get_str("errmsg").unwrap_or("")
            ),
            retryable: retryable_code(code),
        });
    }
    Ok(reply)
}

/// `(index, code, message)` of each of a reply's `writeErrors`.
fn write_errors(reply: &Document) -> Vec<(usize, i32, String)> {
    reply
        .get_array("writeErrors")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .map(|e| {
                    (
                        e.get_i32("index").unwrap_or(-1) as usize,
                        e.get_i32("code").unwrap_or(0),
                        e.get_str("errmsg").unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The batch writer of one target.
pub struct Writer {
    pub client: Client,
    /// `{w: …, wtimeout: …}`.
    pub write_concern: Document,
}

impl Writer {
    /// Writes `docs` into `db.coll`: inserted when `insert`, else replaced. An `Err`
    /// is a failure the retries did not overcome (the restore stops, resumable);
    /// documents the server refuses are counted `failed` in the outcome.
    pub async fn write(&self, db: &str, coll: &str, docs: &[Doc], insert: bool) -> Result<Outcome> {
        let mut out = Outcome::default();
        let parsed: Vec<Document> = docs
            .iter()
            .map(|d| Document::from_reader(d.bytes.as_slice()))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow!("{db}.{coll}: a version document is not BSON: {e}"))?;
        let mut replace: Vec<usize> = Vec::new();
        if insert {
            let cmd = doc! {
                "insert": coll,
                "documents": parsed.iter().cloned().map(Bson::Document).collect::<Vec<_>>(),
                "ordered": false,
                "writeConcern": self.write_concern.clone(),
            };
            let reply = retry(&format!("insert into {db}.{coll}"), || {
                run_write(&self.client, db, &cmd)
            })
            .await?;
            let mut bad = vec![false; docs.len()];
            for (i, code, msg) in write_errors(&reply) {
                let Some(flag) = bad.get_mut(i) else { continue };
                *flag = true;
                if code == 11000 {
                    replace.push(i);
                } else {
                    out.failed += 1;
                    push_error(
                        &mut out.errors,
                        format!("{db}.{coll} {}: ({code}) {msg}", docs[i].key),
                    );
                }
            }
            for (i, d) in docs.iter().enumerate() {
                if !bad[i] {
                    out.written += 1;
                    out.bytes += d.bytes.len() as u64;
                }
            }
        } else {
            replace = (0..docs.len()).collect();
        }
        if !replace.is_empty() {
            self.replace(db, coll, docs, &parsed, &replace, &mut out)
                .await?;
        }
        Ok(out)
    }

    /// Replacement upserts of `docs[which]`, skipping those the target already holds.
    async fn replace(
        &self,
        db: &str,
        coll: &str,
        docs: &[Doc],
        parsed: &[Document],
        which: &[usize],
        out: &mut Outcome,
    ) -> Result<()> {
        let ids: Vec<Bson> = which
            .iter()
            .filter_map(|&i| parsed[i].get("_id").cloned())
            .collect();
        let held = retry(&format!("read {db}.{coll}"), || self.held(db, coll, &ids)).await?;
        let mut todo: Vec<usize> = Vec::new();
        for &i in which {
            match held.get(&docs[i].key) {
                Some(bytes) if same(bytes, &docs[i].bytes) => out.skipped += 1,
                _ => todo.push(i),
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let updates: Vec<Bson> = todo
            .iter()
            .map(|&i| {
                Bson::Document(doc! {
                    "q": {"_id": parsed[i].get("_id").cloned().unwrap_or(Bson::Null)},
                    "u": parsed[i].clone(),
                    "upsert": true,
                })
            })
            .collect();
        let cmd = doc! {
            "update": coll,
            "updates": updates,
            "ordered": false,
            "writeConcern": self.write_concern.clone(),
        };
        let reply = retry(&format!("replace in {db}.{coll}"), || {
            run_write(&self.client, db, &cmd)
        })
        .await?;
        let mut bad = vec![false; todo.len()];
        for (i, code, msg) in write_errors(&reply) {
            let Some(flag) = bad.get_mut(i) else { continue };
            *flag = true;
            out.failed += 1;
            push_error(
                &mut out.errors,
                format!("{db}.{coll} {}: ({code}) {msg}", docs[todo[i]].key),
            );
        }
        for (j, &i) in todo.iter().enumerate() {
            if !bad[j] {
                out.written += 1;
                out.bytes += docs[i].bytes.len() as u64;
            }
        }
        Ok(())
    }

    /// The target's documents with these `_id`s, by the version's key spelling.
    async fn held(
        &self,
        db: &str,
        coll: &str,
        ids: &[Bson],
    ) -> Result<HashMap<String, Vec<u8>>, Failure> {
        let c = self.client.database(db).collection::<RawDocumentBuf>(coll);
        let mut cursor = c.find(doc! {"_id": {"$in": ids.to_vec()}}).await?;
        let mut out = HashMap::with_capacity(ids.len());
        while let Some(d) = cursor.try_next().await? {
            if let Some(k) = key_of(&d) {
                out.insert(k, d.into_bytes());
            }
        }
        Ok(out)
    }
}

/// The version's key of a document: canonical JSON of its `_id`.
pub fn key_of(d: &RawDocument) -> Option<String> {
    let id = d.get("_id").ok()??;
    Some(values::id_key(id).to_string())
}

fn push_error(errors: &mut Vec<String>, e: String) {
    if errors.len() < MAX_ERRORS {
        errors.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn fail(retryable: bool) -> Failure {
        Failure {
            msg: "PrimarySteppedDown (189)".into(),
            retryable,
        }
    }

    #[tokio::test]
    async fn retries_what_may_pass_and_gives_up_on_what_cannot() {
        let calls = Cell::new(0);
        let r = retry("w", || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(fail(true))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        calls.set(0);
        let r: Result<()> = retry("w", || {
            calls.set(calls.get() + 1);
            async { Err(fail(false)) }
        })
        .await;
        assert_eq!(calls.get(), 1);
        assert_eq!(r.unwrap_err().to_string(), "w: PrimarySteppedDown (189)");
    }
}
