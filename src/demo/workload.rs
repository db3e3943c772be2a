//! The demo's workload through the real drivers (`scylla`, `mongodb`): the schema,
//! the rows before the snapshot, the changes after it, a failover, a pulse that
//! keeps both clusters busy (and the tidemark moving), and the fat-finger.
//!
//! CQL writes carry client-side timestamps (as the Python and Java drivers send by
//! default), so the write time of every cell is on the wire.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures_util::future::try_join_all;
use mongodb::bson::{doc, Document};
use mongodb::options::{ClientOptions, CollectionOptions, WriteConcern};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::statement::unprepared::Statement;
use scylla::statement::Consistency;
use tidemark_testbed::MongoReplicaSet;

/// Accounts written before the snapshot.
pub const ACCOUNTS: i32 = 1000;
/// Orders written before the snapshot.
pub const ORDERS: i32 = 500;
/// Statements in flight at once.
const IN_FLIGHT: usize = 32;
/// How long a wait for the replica set may take.
const SET_WAIT: Duration = Duration::from_secs(45);

/// The drivers' connections.
pub struct Drivers {
    pub cql: Arc<Session>,
    pub mongo: mongodb::Client,
}

impl Drivers {
    pub async fn connect(cql_node: &str, mongo_uri: &str) -> Result<Drivers> {
        let cql = tokio::time::timeout(
            Duration::from_secs(30),
            SessionBuilder::new()
                .known_node(cql_node)
                .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
                .build(),
        )
        .await
        .map_err(|_| anyhow!("connect to the Cassandra testbed: timed out"))?
        .context("connect to the Cassandra testbed")?;
        let opts = ClientOptions::parse(format!("{mongo_uri}&serverSelectionTimeoutMS=30000"))
            .await
            .context("MongoDB URI")?;
        let mongo = mongodb::Client::with_options(opts).context("MongoDB client")?;
        Ok(Drivers {
            cql: Arc::new(cql),
            mongo,
        })
    }

    async fn cql(&self, text: &str) -> Result<()> {
        let mut s = Statement::new(text);
        s.set_consistency(Consistency::Quorum);
        self.cql
            .query_unpaged(s, ())
            .await
            .with_context(|| text.to_string())?;
        Ok(())
    }

    fn orders(&self, w: WriteConcern) -> mongodb::Collection<Document> {
        self.mongo.database("shop").collection_with_options(
            "orders",
            CollectionOptions::builder().write_concern(w).build(),
        )
    }

    /// Keyspaces and tables (RF 3), and the pulse's.
    pub async fn schema(&self) -> Result<()> {
        for s in [
            "CREATE KEYSPACE demo WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            "CREATE TABLE demo.accounts (id int PRIMARY KEY, owner text, balance bigint, tags set<text>)",
            "CREATE TABLE demo.ledger (account int, seq int, amount bigint, note text, PRIMARY KEY (account, seq))",
            "CREATE TABLE demo.visits (page text PRIMARY KEY, hits counter)",
            "CREATE KEYSPACE pulse WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            "CREATE TABLE pulse.beat (id int PRIMARY KEY, n bigint)",
        ] {
            self.cql(s).await?;
        }
        Ok(())
    }

    /// The rows before the snapshot: accounts, their ledgers (some entries expiring),
    /// and orders. Returns (CQL rows, documents) written.
    pub async fn before_snapshot(&self) -> Result<(u64, u64)> {
        let mut account = self
            .cql
            .prepare("INSERT INTO demo.accounts (id, owner, balance, tags) VALUES (?, ?, ?, ?)")
            .await?;
        account.set_consistency(Consistency::Quorum);
        let mut ledger = self
            .cql
            .prepare("INSERT INTO demo.ledger (account, seq, amount, note) VALUES (?, ?, ?, ?) USING TTL ?")
            .await?;
        ledger.set_consistency(Consistency::Quorum);
        let ids: Vec<i32> = (1..=ACCOUNTS).collect();
        for chunk in ids.chunks(IN_FLIGHT) {
            try_join_all(chunk.iter().map(|&id| {
                let tags = vec!["new".to_string(), format!("region-{}", id % 4)];
                self.cql.execute_unpaged(
                    &account,
                    (id, format!("owner-{id}"), i64::from(id) * 100, tags),
                )
            }))
            .await?;
        }
        let entries: Vec<(i32, i32)> = (1..=200)
            .flat_map(|a| (1..=5).map(move |s| (a, s)))
            .collect();
        for chunk in entries.chunks(IN_FLIGHT) {
            try_join_all(chunk.iter().map(|&(a, s)| {
                // every fifth entry is a hold that expires in a day
                let ttl: i32 = if s == 5 { 86_400 } else { 0 };
                self.cql.execute_unpaged(
                    &ledger,
                    (a, s, i64::from(a * s), format!("entry {s} of {a}"), ttl),
                )
            }))
            .await?;
        }
        let docs: Vec<Document> = (1..=ORDERS)
            .map(|i| {
                doc! {
                    "_id": i,
                    "customer": format!("c{}", i % 50),
                    "items": [ { "sku": format!("sku-{}", i % 17), "qty": 1 + i % 3 } ],
                    "total": f64::from(i) * 1.25,
                    "status": "new",
                }
            })
            .collect();
        for chunk in docs.chunks(100) {
            self.orders(WriteConcern::majority())
                .insert_many(chunk.to_vec())
                .await?;
        }
        Ok((ACCOUNTS as u64 + entries.len() as u64, ORDERS as u64))
    }

    /// The changes after the snapshot: updates, collection adds, deletions of rows,
    /// a partition and a range, counter increments; order updates, deletes and new
    /// orders. Returns (CQL statements, MongoDB writes).
    pub async fn after_snapshot(&self) -> Result<(u64, u64)> {
        let mut balance = self
            .cql
            .prepare("UPDATE demo.accounts SET balance = ? WHERE id = ?")
            .await?;
        balance.set_consistency(Consistency::Quorum);
        let mut vip = self
            .cql
            .prepare("UPDATE demo.accounts SET tags = tags + {'vip'} WHERE id = ?")
            .await?;
        vip.set_consistency(Consistency::Quorum);
        let mut close = self
            .cql
            .prepare("DELETE FROM demo.accounts WHERE id = ?")
            .await?;
        close.set_consistency(Consistency::Quorum);
        let mut visit = self
            .cql
            .prepare("UPDATE demo.visits SET hits = hits + 1 WHERE page = ?")
            .await?;
        visit.set_consistency(Consistency::Quorum);
        let mut n = 0u64;
        let updated: Vec<i32> = (1..=300).map(|i| i * 3).collect();
        for chunk in updated.chunks(IN_FLIGHT) {
            try_join_all(chunk.iter().map(|&id| {
                self.cql
                    .execute_unpaged(&balance, (i64::from(id) * 100 + 7, id))
            }))
            .await?;
            n += chunk.len() as u64;
        }
        for id in (1..=50).map(|i| i * 7) {
            self.cql.execute_unpaged(&vip, (id,)).await?;
            n += 1;
        }
        for id in (1..=20).map(|i| i * 11) {
            self.cql.execute_unpaged(&close, (id,)).await?;
            n += 1;
        }
        self.cql("DELETE FROM demo.ledger WHERE account = 5")
            .await?;
        self.cql("DELETE FROM demo.ledger WHERE account = 6 AND seq > 2")
            .await?;
        n += 2;
        for i in 0..200 {
            self.cql
                .execute_unpaged(&visit, (format!("/page/{}", i % 10),))
                .await?;
            n += 1;
        }
        let orders = self.orders(WriteConcern::majority());
        let mut m = 0u64;
        for i in 1..=200 {
            orders
                .update_one(
                    doc! { "_id": i },
                    doc! { "$inc": { "total": 2.5 }, "$push": { "items": { "sku": "gift", "qty": 1 } }, "$set": { "status": "paid" } },
                )
                .await?;
            m += 1;
        }
        for i in 481..=500 {
            orders.delete_one(doc! { "_id": i }).await?;
            m += 1;
        }
        let more: Vec<Document> = (ORDERS + 1..=ORDERS + 100)
            .map(|i| doc! { "_id": i, "customer": format!("c{}", i % 50), "items": [], "total": 0.0, "status": "cart" })
            .collect();
        orders.insert_many(more).await?;
        m += 100;
        Ok((n, m))
    }

    /// The primary is cut off and acknowledges `w:1` writes no other member gets;
    /// another member is elected, the old primary comes back and rolls them back.
    /// Returns the `_id`s that were rolled back.
    pub async fn failover(&self, set: &MongoReplicaSet) -> Result<Vec<i32>> {
        let old = set.primary().context("the replica set has no primary")?;
        set.partition(old)
            .map_err(|e| anyhow!("partition the primary: {e:?}"))?;
        let lost: Vec<i32> = (9001..=9003).collect();
        let w1 = self.orders(WriteConcern::nodes(1));
        for &i in &lost {
            w1.insert_one(
                doc! { "_id": i, "customer": "lost", "status": "only the old primary has me" },
            )
            .await?;
        }
        until("a new primary", || set.primary().is_some_and(|p| p != old)).await?;
        set.heal(old)
            .map_err(|e| anyhow!("heal the old primary: {e:?}"))?;
        let majority = self.orders(WriteConcern::majority());
        for i in ORDERS + 101..=ORDERS + 110 {
            let deadline = Instant::now() + SET_WAIT;
            loop {
                match majority
                    .insert_one(doc! { "_id": i, "customer": "after the election", "items": [], "total": 1.0, "status": "new" })
                    .await
                {
                    Ok(_) => break,
                    Err(e) if Instant::now() < deadline => {
                        tracing::debug!("insert during the election: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => bail!("insert after the election: {e}"),
                }
            }
        }
        until("the old primary to roll back", || {
            !set.rollbacks().is_empty()
        })
        .await?;
        Ok(lost)
    }

    /// Rows and documents the mistake will take, counted by the drivers (QUORUM,
    /// majority): what the restore must bring back.
    pub async fn count(&self) -> Result<(i64, i64, u64)> {
        let mut counts = Vec::new();
        for table in ["accounts", "ledger"] {
            let mut s = Statement::new(format!("SELECT COUNT(*) FROM demo.{table}"));
            s.set_consistency(Consistency::Quorum);
            let rows = self.cql.query_unpaged(s, ()).await?.into_rows_result()?;
            let (n,): (i64,) = rows.single_row()?;
            counts.push(n);
        }
        let docs = self
            .orders(WriteConcern::majority())
            .count_documents(doc! {})
            .await?;
        Ok((counts[0], counts[1], docs))
    }

    /// How many of these order `_id`s the set holds now (majority reads).
    pub async fn orders_present(&self, ids: &[i32]) -> Result<u64> {
        Ok(self
            .orders(WriteConcern::majority())
            .count_documents(doc! { "_id": { "$in": ids.to_vec() } })
            .await?)
    }

    /// The fat-finger: every account and every order gone.
    pub async fn mistake(&self) -> Result<u64> {
        self.cql("TRUNCATE demo.accounts").await?;
        let gone = self
            .orders(WriteConcern::majority())
            .delete_many(doc! {})
            .await?;
        Ok(gone.deleted_count)
    }

    pub async fn close(self) {
        self.mongo.shutdown().await;
    }
}

/// Keeps both clusters busy until `stop` (or `limit`): a row and a document every
/// 200 ms in namespaces the story does not restore. It keeps the tap's tidemark
/// moving past the last moment of interest, as a production workload would.
pub async fn pulse(
    cql: Arc<Session>,
    mongo: mongodb::Client,
    stop: Arc<AtomicBool>,
    limit: Duration,
) {
    let started = Instant::now();
    let beat = mongo.database("pulse").collection_with_options::<Document>(
        "beat",
        CollectionOptions::builder()
            .write_concern(WriteConcern::nodes(1))
            .build(),
    );
    let mut n: i64 = 0;
    while !stop.load(Ordering::SeqCst) && started.elapsed() < limit {
        n += 1;
        let mut s = Statement::new("INSERT INTO pulse.beat (id, n) VALUES (1, ?)");
        s.set_consistency(Consistency::One);
        let one_second = Duration::from_secs(1);
        let _ = tokio::time::timeout(one_second, cql.query_unpaged(s, (n,))).await;
        let _ = tokio::time::timeout(
            one_second,
            beat.replace_one(doc! { "_id": 1 }, doc! { "_id": 1, "n": n })
                .upsert(true),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + SET_WAIT;
    while !f() {
        if Instant::now() >= deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
