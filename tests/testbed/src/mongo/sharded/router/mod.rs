//! A `mongos`: answers drivers on its own loopback address and is itself a
//! client of the shards and the config servers over the wire. Its routing
//! tables are a cache, read from `config.collections`/`config.chunks` on
//! the config primary; a shard's `StaleConfig` makes it refresh and retry.
//!
//! - [`conn`]: the wire (OP_MSG, legacy OP_QUERY handshakes)
//! - [`commands`]: hello, admin and sharding commands, scatter-gather reads
//! - [`write`]: inserts/updates/deletes/findAndModify split by shard key,
//!   replies merged
//! - [`txn`]: transactions: participants, commit (two-phase through a coordinator shard), abort

pub mod commands;
pub mod conn;
pub mod txn;
pub mod write;

use super::chunks::RoutingTable;
use super::client::{is_ok, Pool};
use super::config::fetch_table;
use super::state::ClusterInner;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tidemark_mongo::bson::Document;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A transaction's key: the `lsid`'s BSON bytes and the `txnNumber`.
pub type TxnKey = (Vec<u8>, i64);

/// A router cursor: the merged documents not returned yet.
pub struct RouterCursor {
    pub ns: String,
    pub rest: VecDeque<Document>,
}

/// One router.
pub struct Router {
    pub index: usize,
    pub addr: SocketAddr,
    pub(crate) cluster: Arc<ClusterInner>,
    /// Cached routing tables; `None`: known to be unsharded.
    tables: Mutex<HashMap<String, Option<RoutingTable>>>,
    /// Routing-table reads from the config servers.
    pub refreshes: AtomicU64,
    /// Shard requests answered StaleConfig (each followed by a refresh and a retry).
    pub stale_retries: AtomicU64,
    pub(crate) pool: Pool,
    pub(crate) cursors: Mutex<HashMap<i64, RouterCursor>>,
    /// Open transactions: (lsid bytes, txnNumber) → participant shards, in order.
    pub(crate) txns: Mutex<HashMap<TxnKey, Vec<String>>>,
    next_cursor: AtomicI64,
    next_conn: AtomicI64,
    shutdown: watch::Sender<bool>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Router {
    /// Binds `addr` and serves until [`Router::stop`].
    pub async fn start(
        cluster: Arc<ClusterInner>,
        index: usize,
        addr: SocketAddr,
    ) -> std::io::Result<Arc<Router>> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let router = Arc::new(Router {
            index,
            addr,
            pool: Pool::new(addr.ip(), cluster.timeout),
            cluster,
            tables: Mutex::new(HashMap::new()),
            refreshes: AtomicU64::new(0),
            stale_retries: AtomicU64::new(0),
            cursors: Mutex::new(HashMap::new()),
            txns: Mutex::new(HashMap::new()),
            next_cursor: AtomicI64::new(0),
            next_conn: AtomicI64::new(0),
            shutdown: watch::channel(false).0,
            accept: Mutex::new(None),
        });
        let r = router.clone();
        let rx = router.shutdown.subscribe();
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((sock, _)) => {
                        let _ = sock.set_nodelay(true);
                        tokio::spawn(conn::serve(r.clone(), sock, rx.clone()));
                    }
                    Err(e) => {
                        tracing::warn!("router accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        });
        *lock(&router.accept) = Some(task);
        Ok(router)
    }

    /// Closes the listener and every connection.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = lock(&self.accept).take() {
            t.abort();
        }
    }

    pub(crate) fn next_connection_id(&self) -> i64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn next_cursor_id(&self) -> i64 {
        ((self.index as i64 + 1) << 48) + self.next_cursor.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The cached routing table of `ns` (read from the config servers on a miss).
    pub async fn table(&self, ns: &str) -> Result<Option<RoutingTable>, String> {
        if let Some(t) = lock(&self.tables).get(ns) {
            return Ok(t.clone());
        }
        self.refresh(ns).await
    }

    /// Reads `ns`'s routing table from the config servers again.
    pub async fn refresh(&self, ns: &str) -> Result<Option<RoutingTable>, String> {
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let config = self.cluster.config.primary_addr()?;
        let t = fetch_table(&self.pool, config, ns).await?;
        lock(&self.tables).insert(ns.to_string(), t.clone());
        Ok(t)
    }

    /// Forgets every cached table (`flushRouterConfig`).
    pub fn flush(&self) {
        lock(&self.tables).clear();
    }

    /// The table this router has cached for `ns`, without refreshing.
    pub fn cached_table(&self, ns: &str) -> Option<Option<RoutingTable>> {
        lock(&self.tables).get(ns).cloned()
    }

    /// Sends `cmd` to shard `id`'s primary.
    pub(crate) async fn shard_command(&self, id: &str, cmd: Document) -> Result<Document, String> {
        let addr = self.cluster.shard_primary_addr(id)?;
        self.pool.command(addr, cmd).await
    }
}

/// Whether a shard reply is StaleConfig: a command error, or a write
/// batch's StaleConfig write errors.
pub fn is_stale(reply: &Document) -> bool {
    let code = |d: &Document| d.get_i32("code").ok() == Some(13388);
    if is_ok(reply) {
        // a write batch: the shard refuses it before running any statement
        reply
            .get_array("writeErrors")
            .into_iter()
            .flatten()
            .filter_map(tidemark_mongo::bson::Bson::as_document)
            .any(code)
    } else {
        code(reply)
    }
}
