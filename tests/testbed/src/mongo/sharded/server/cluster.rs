//! The running sharded cluster: started with [`MongoShardedCluster::start`],
//! everything stopped when it is dropped. Addresses: the config servers on
//! `base_addr`, `base_addr+1`, ...; shard k's members on the next `members`
//! addresses; then the routers.

use crate::mongo::sharded::balancer::{self, BalancerMode};
use crate::mongo::sharded::config::ConfigServer;
use crate::mongo::sharded::router::Router;
use crate::mongo::sharded::shard::ShardHook;
use crate::mongo::sharded::state::{ClusterInner, Shard};
use crate::mongo::{MongoReplicaSet, ReplSetConfig};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How to build a sharded cluster.
#[derive(Debug, Clone)]
pub struct ShardedConfig {
    pub shards: usize,
    /// Members of each shard replica set and of the config server set.
    pub members: usize,
    pub routers: usize,
    /// The first loopback address; the rest follow consecutively.
    pub base_addr: Ipv4Addr,
    /// Every set and router listens on this port (one port for the whole
    /// cluster, so a capture can filter on it); 0 picks a free one for the
    /// config servers and uses it everywhere else too (a set or router whose
    /// address has it taken falls back to a free port of its own, with a
    /// warning).
    pub port: u16,
    pub election_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// Bound on an awaitable hello (keeps shutdown quick).
    pub max_await: Duration,
    /// How long a donor keeps a migrated chunk's orphans.
    pub range_deleter_delay: Duration,
    /// Deadline of every internal request (router → shard, migrations, config writes).
    pub timeout: Duration,
}

impl Default for ShardedConfig {
    fn default() -> Self {
        ShardedConfig {
            shards: 2,
            members: 3,
            routers: 1,
            base_addr: Ipv4Addr::new(127, 0, 0, 1),
            port: 0,
            election_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(2),
            max_await: Duration::from_millis(500),
            range_deleter_delay: Duration::from_secs(2),
            timeout: Duration::from_secs(15),
        }
    }
}

/// A running sharded cluster. Dropping it stops everything.
pub struct MongoShardedCluster {
    pub(crate) inner: Arc<ClusterInner>,
    pub routers: Vec<Arc<Router>>,
}

fn set_config(cfg: &ShardedConfig, name: &str, first: u32) -> ReplSetConfig {
    ReplSetConfig {
        members: cfg.members,
        base_addr: Ipv4Addr::from(u32::from(cfg.base_addr) + first),
        port: cfg.port,
        set_name: name.to_string(),
        election_timeout: cfg.election_timeout,
        heartbeat_interval: cfg.heartbeat_interval,
        max_await: cfg.max_await,
        ..ReplSetConfig::default()
    }
}

impl MongoShardedCluster {
    /// Starts the config servers, the shards (registered in `config.shards`)
    /// and the routers; the balancer task starts disabled.
    pub async fn start(cfg: ShardedConfig) -> std::io::Result<MongoShardedCluster> {
        let invalid =
            |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, m.to_string());
        if cfg.shards == 0 || cfg.members == 0 || cfg.routers == 0 {
            return Err(invalid(
                "a sharded cluster needs at least one shard, member and router",
            ));
        }
        let m = cfg.members as u32;
        let config_set = Arc::new(MongoReplicaSet::start(set_config(&cfg, "configRepl", 0)).await?);
        let mut cfg = cfg;
        let chosen = cfg.port == 0;
        cfg.port = config_set.addresses()[0].port();
        // with a chosen port, a clash on another address falls back to a free one
        let start_set = |sc: ReplSetConfig| async move {
            match MongoReplicaSet::start(sc.clone()).await {
                Err(e) if chosen && e.kind() == std::io::ErrorKind::AddrInUse => {
                    tracing::warn!(
                        set = sc.set_name,
                        port = sc.port,
                        "port taken; using a free one"
                    );
                    MongoReplicaSet::start(ReplSetConfig { port: 0, ..sc }).await
                }
                r => r,
            }
        };
        let config = ConfigServer::new(config_set, cfg.timeout);
        let mut shards = Vec::new();
        for k in 0..cfg.shards {
            let id = format!("shard{k}");
            let hook = Arc::new(ShardHook::new(&id, config.catalog_arc()));
            let mut sc = set_config(&cfg, &format!("{id}rs"), (k as u32 + 1) * m);
            sc.command_hook = Some(hook.clone());
            let set = Arc::new(start_set(sc).await?);
            shards.push(Shard { id, set, hook });
        }
        let hosts: Vec<(String, String)> = shards
            .iter()
            .map(|s| {
                let name = &s.set.shared().config.set_name;
                (
                    s.id.clone(),
                    format!("{name}/{}", s.set.shared().hosts().join(",")),
                )
            })
            .collect();
        config
            .add_shards(&hosts)
            .await
            .map_err(std::io::Error::other)?;
        let inner = Arc::new(ClusterInner::new(
            config,
            shards,
            cfg.timeout,
            cfg.range_deleter_delay,
        ));
        crate::mongo::sharded::txn::attach(&inner);
        let mut routers = Vec::new();
        let first_router = (cfg.shards as u32 + 1) * m;
        for r in 0..cfg.routers {
            let ip = Ipv4Addr::from(u32::from(cfg.base_addr) + first_router + r as u32);
            let router =
                match Router::start(inner.clone(), r, SocketAddr::from((ip, cfg.port))).await {
                    Err(e) if chosen && e.kind() == std::io::ErrorKind::AddrInUse => {
                        tracing::warn!(router = r, port = cfg.port, "port taken; using a free one");
                        Router::start(inner.clone(), r, SocketAddr::from((ip, 0))).await?
                    }
                    other => other?,
                };
            routers.push(router);
        }
        let task = tokio::spawn(balancer::run(Arc::downgrade(&inner)));
        lock(&inner.tasks).push(task);
        tracing::info!(
            shards = cfg.shards,
            routers = cfg.routers,
            "sharded mongo testbed started"
        );
        Ok(MongoShardedCluster { inner, routers })
    }

    pub fn inner(&self) -> &Arc<ClusterInner> {
        &self.inner
    }

    /// The routers' addresses.
    pub fn router_addresses(&self) -> Vec<SocketAddr> {
        self.routers.iter().map(|r| r.addr).collect()
    }

    /// A connection string listing every router (drivers treat them as mongos).
    pub fn uri(&self) -> String {
        let hosts: Vec<String> = self
            .router_addresses()
            .iter()
            .map(|a| a.to_string())
            .collect();
        format!("mongodb://{}/", hosts.join(","))
    }

    pub fn shards(&self) -> &[Shard] {
        &self.inner.shards
    }

    pub fn config_servers(&self) -> &MongoReplicaSet {
        &self.inner.config.set
    }

    /// Turns the balancer on or off and sets its mode and interval.
    pub fn set_balancer(&self, on: bool, mode: Option<BalancerMode>, interval: Option<Duration>) {
        self.inner.update_settings(|s| {
            s.balancer = on;
            if let Some(m) = mode {
                s.balancer_mode = m;
            }
            if let Some(i) = interval {
                s.balancer_interval = i;
            }
        });
    }

    /// Clone batch size and the pause after each batch (see [`Settings`]).
    pub fn set_clone_pacing(&self, docs: usize, pause: Duration) {
        self.inner.update_settings(|s| {
            s.clone_batch_docs = docs.max(1);
            s.clone_batch_pause = pause;
        });
    }

    pub fn set_range_deleter_delay(&self, d: Duration) {
        self.inner.update_settings(|s| s.range_deleter_delay = d);
    }

    /// Stops everything.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for MongoShardedCluster {
    fn drop(&mut self) {
        for t in lock(&self.inner.tasks).drain(..) {
            t.abort();
        }
        for r in &self.routers {
            r.stop();
        }
        // the sets stop when the last holder of the cluster drops them; stop
        // their members now in case a connection task still holds it
        let sets =
            std::iter::once(&self.inner.config.set).chain(self.inner.shards.iter().map(|s| &s.set));
        for set in sets {
            for i in 0..set.shared().members.len() {
                crate::mongo::server::lifecycle::halt(set.shared(), i);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
