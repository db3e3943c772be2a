//! The writes themselves, through the `scylla` driver: prepared statements (cached
//! by text; the driver's default load balancing is token-aware for prepared
//! statements, so each write goes to a replica of its partition), the statements of
//! one partition in UNLOGGED batches, counters read then brought to their totals,
//! and bounded retries with exponential backoff on the errors a busy or briefly
//! unavailable cluster answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use scylla::client::session::Session;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::frame::response::result::ColumnType;
use scylla::serialize::value::SerializeValue;
use scylla::serialize::writers::{CellWriter, WrittenCellProof};
use scylla::serialize::SerializationError;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;
use scylla::value::{CqlValue, Row};
use tokio::sync::Mutex;

use super::statements::{CounterWrite, Op, Stmt};

/// Statements per batch at most (a batch of one partition; Cassandra warns on
/// batches above 5 kB, and big ones only add latency).
pub const BATCH_STATEMENTS: usize = 50;
/// Attempts of one write before it counts as failed.
const ATTEMPTS: u32 = 6;

/// A value already serialized, bound as it is.
struct Raw<'a>(&'a [u8]);

impl SerializeValue for Raw<'_> {
    fn serialize<'b>(
        &self,
        _typ: &ColumnType,
        writer: CellWriter<'b>,
    ) -> Result<WrittenCellProof<'b>, SerializationError> {
        writer.set_value(self.0).map_err(SerializationError::new)
    }
}

fn raw(values: &[Vec<u8>]) -> Vec<Raw<'_>> {
    values.iter().map(|v| Raw(v)).collect()
}

/// A connected session writing at one consistency level.
pub struct Writer {
    pub session: Session,
    consistency: Consistency,
    prepared: Mutex<HashMap<String, PreparedStatement>>,
    stop: Arc<AtomicBool>,
}

/// Whether an error is worth another attempt: the cluster busy, a replica briefly
/// down, a timeout, a connection lost.
fn retryable(e: &ExecutionError) -> bool {
    match e {
        ExecutionError::RequestTimeout(_) | ExecutionError::ConnectionPoolError(_) => true,
        ExecutionError::LastAttemptError(a) => match a {
            RequestAttemptError::DbError(db, _) => matches!(
                db,
                DbError::WriteTimeout { .. }
                    | DbError::ReadTimeout { .. }
                    | DbError::Overloaded
                    | DbError::Unavailable { .. }
                    | DbError::IsBootstrapping
                    | DbError::ServerError
            ),
            RequestAttemptError::BrokenConnectionError(_)
            | RequestAttemptError::UnableToAllocStreamId => true,
            _ => false,
        },
        _ => false,
    }
}

impl Writer {
    pub fn new(session: Session, consistency: Consistency, stop: Arc<AtomicBool>) -> Writer {
        Writer {
            session,
            consistency,
            prepared: Mutex::new(HashMap::new()),
            stop,
        }
    }

    /// The prepared statement of `cql` (prepared once).
    async fn prepared(&self, cql: &str, idempotent: bool) -> Result<PreparedStatement> {
        let mut cache = self.prepared.lock().await;
        if let Some(p) = cache.get(cql) {
            return Ok(p.clone());
        }
        let mut p = self
            .session
            .prepare(cql)
            .await
            .map_err(|e| anyhow!("prepare {cql}: {e}"))?;
        p.set_consistency(self.consistency);
        p.set_is_idempotent(idempotent);
        cache.insert(cql.to_string(), p.clone());
        Ok(p)
    }

    /// Runs `attempt` until it succeeds, fails for good, or the attempts run out
    /// (100 ms, 200 ms, … between them).
    async fn with_retries<F, Fut>(&self, mut attempt: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), ExecutionError>>,
    {
        let mut delay = Duration::from_millis(100);
        for n in 1..=ATTEMPTS {
            match attempt().await {
                Ok(()) => return Ok(()),
                Err(e) if n < ATTEMPTS && retryable(&e) && !self.stop.load(Ordering::Relaxed) => {
                    tracing::debug!("write failed ({e}), retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(anyhow!("{e}")),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Writes one unit's operations: the plain statements in batches of at most
    /// [`BATCH_STATEMENTS`], then the counters.
    pub async fn write(&self, ops: &[Op]) -> Result<()> {
        let stmts: Vec<&Stmt> = ops
            .iter()
            .filter_map(|o| match o {
                Op::Write(s) => Some(s),
                Op::Counter(_) => None,
            })
            .collect();
        for chunk in stmts.chunks(BATCH_STATEMENTS) {
            self.batch(chunk).await?;
        }
        for o in ops {
            if let Op::Counter(c) = o {
                self.counter(c).await?;
            }
        }
        Ok(())
    }

    async fn batch(&self, stmts: &[&Stmt]) -> Result<()> {
        if let [one] = stmts {
            let p = self.prepared(&one.cql, true).await?;
            let values = raw(&one.values);
            return self
                .with_retries(|| async {
                    self.session.execute_unpaged(&p, &values).await.map(|_| ())
                })
                .await
                .map_err(|e| anyhow!("{}: {e}", one.cql));
        }
        let mut batch = Batch::new(BatchType::Unlogged);
        batch.set_consistency(self.consistency);
        batch.set_is_idempotent(true);
        for s in stmts {
            batch.append_statement(self.prepared(&s.cql, true).await?);
        }
        let values: Vec<Vec<Raw<'_>>> = stmts.iter().map(|s| raw(&s.values)).collect();
        self.with_retries(|| async { self.session.batch(&batch, &values).await.map(|_| ()) })
            .await
            .map_err(|e| {
                anyhow!(
                    "batch of {} statements ({}…): {e}",
                    stmts.len(),
                    stmts[0].cql
                )
            })
    }

    /// Brings a row's counters to the version's totals: reads them (at the write
    /// consistency), adds the difference. Each attempt reads again, so a retry after
    /// an increment that did land adds nothing more — as long as nothing else writes
    /// these counters meanwhile (a restore target has no other writers).
    async fn counter(&self, c: &CounterWrite) -> Result<()> {
        let select = self.prepared(&c.select, true).await?;
        let update = self.prepared(&c.update, false).await?;
        let key = raw(&c.key);
        self.with_retries(|| async {
            let current = self.session.execute_unpaged(&select, &key).await?;
            let mut now = vec![0i64; c.totals.len()];
            // a counter at 0 is not an absent one: write it unless it is there
            let mut present = vec![false; c.totals.len()];
            if let Ok(rows) = current.into_rows_result() {
                if let Some(Ok(row)) = rows.rows::<Row>().ok().and_then(|mut r| r.next()) {
                    for (i, v) in row.columns.iter().enumerate().take(now.len()) {
                        if let Some(CqlValue::Counter(x)) = v {
                            now[i] = x.0;
                            present[i] = true;
                        }
                    }
                }
            }
            let deltas: Vec<Vec<u8>> = c
                .totals
                .iter()
                .zip(&now)
                .map(|(t, n)| t.wrapping_sub(*n).to_be_bytes().to_vec())
                .collect();
            if present.iter().all(|p| *p) && deltas.iter().all(|d| d.iter().all(|b| *b == 0)) {
                return Ok(());
            }
            let mut values = deltas;
            values.extend(c.key.iter().cloned());
            self.session
                .execute_unpaged(&update, raw(&values))
                .await
                .map(|_| ())
        })
        .await
        .map_err(|e| anyhow!("{}: {e}", c.update))
    }
}
