//! What the routers, migrations, the balancer and the shards' coordinators
//! share: the config servers, the shards, the knobs changeable while
//! running, and the records of finished migrations and range deletions. It
//! sits below the router and the running cluster ([`super::server`]), so
//! neither imports the other's layer.

use super::balancer::BalancerMode;
use super::config::ConfigServer;
use super::migration::{MigrationRecord, RangeDeletion};
use super::shard::ShardHook;
use crate::mongo::MongoReplicaSet;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Knobs changeable while running.
#[derive(Debug, Clone)]
pub struct Settings {
    pub balancer: bool,
    pub balancer_interval: Duration,
    pub balancer_mode: BalancerMode,
    pub range_deleter_delay: Duration,
    /// Documents per `_migrateClone` batch.
    pub clone_batch_docs: usize,
    /// A pause after each clone batch: widens the window in which writes
    /// must be caught up by `_transferMods` (tests use it).
    pub clone_batch_pause: Duration,
}

/// One shard.
pub struct Shard {
    pub id: String,
    pub set: Arc<MongoReplicaSet>,
    pub hook: Arc<ShardHook>,
}

/// What routers, migrations and the balancer share.
pub struct ClusterInner {
    pub config: ConfigServer,
    pub shards: Vec<Shard>,
    pub timeout: Duration,
    settings: Mutex<Settings>,
    /// One migration at a time, cluster-wide.
    pub migration_lock: tokio::sync::Mutex<()>,
    migrations: Mutex<Vec<MigrationRecord>>,
    range_deletions: Mutex<Vec<RangeDeletion>>,
    pub balancer_rounds: AtomicU64,
    /// Background tasks (range deleter, balancer), aborted on drop.
    pub tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClusterInner {
    /// A new cluster's shared state: balancer off (every 500 ms, `even`, when
    /// turned on), clone batches of 1000 documents without pause.
    pub fn new(
        config: ConfigServer,
        shards: Vec<Shard>,
        timeout: Duration,
        range_deleter_delay: Duration,
    ) -> ClusterInner {
        ClusterInner {
            config,
            shards,
            timeout,
            settings: Mutex::new(Settings {
                balancer: false,
                balancer_interval: Duration::from_millis(500),
                balancer_mode: BalancerMode::Even,
                range_deleter_delay,
                clone_batch_docs: 1000,
                clone_batch_pause: Duration::ZERO,
            }),
            migration_lock: tokio::sync::Mutex::new(()),
            migrations: Mutex::new(Vec::new()),
            range_deletions: Mutex::new(Vec::new()),
            balancer_rounds: AtomicU64::new(0),
            tasks: Mutex::new(Vec::new()),
        }
    }

    pub fn shard(&self, id: &str) -> Result<&Shard, String> {
        self.shards
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| format!("no shard {id:?}"))
    }

    pub fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    pub fn update_settings(&self, f: impl FnOnce(&mut Settings)) {
        f(&mut lock(&self.settings));
    }

    pub fn lock_migrations(&self) -> MutexGuard<'_, Vec<MigrationRecord>> {
        lock(&self.migrations)
    }

    pub fn lock_range_deletions(&self) -> MutexGuard<'_, Vec<RangeDeletion>> {
        lock(&self.range_deletions)
    }

    /// The primary address of shard `id`.
    pub fn shard_primary_addr(&self, id: &str) -> Result<SocketAddr, String> {
        let s = self.shard(id)?;
        let p = s
            .set
            .primary()
            .ok_or_else(|| format!("shard {id} has no primary"))?;
        Ok(s.set.addresses()[p])
    }
}
