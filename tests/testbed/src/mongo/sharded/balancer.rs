//! The balancer: a task that, while enabled, moves chunks by itself every
//! `balancer_interval` — towards even chunk counts per shard (`Even`, as
//! MongoDB's balancer does, one move per round), or one random chunk to a
//! random other shard every round (`Continuous`, for tests that want data in
//! motion all the time). Set over the control endpoint or
//! [`super::server::cluster::MongoShardedCluster::set_balancer`].

use super::migration::move_chunk;
use super::state::ClusterInner;
use rand::Rng;
use std::sync::Weak;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalancerMode {
    Even,
    Continuous,
}

impl BalancerMode {
    pub fn parse(s: &str) -> Option<BalancerMode> {
        match s {
            "even" => Some(BalancerMode::Even),
            "continuous" => Some(BalancerMode::Continuous),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BalancerMode::Even => "even",
            BalancerMode::Continuous => "continuous",
        }
    }
}

/// One balancing decision: (ns, a key-space point of the chunk, to shard).
fn choose(
    c: &ClusterInner,
    mode: BalancerMode,
) -> Option<(String, tidemark_mongo::bson::Bson, String)> {
    let cat = c.config.catalog();
    let shards = cat.shards.clone();
    if shards.len() < 2 {
        return None;
    }
    let mut rng = rand::rng();
    match mode {
        BalancerMode::Even => {
            for (ns, t) in &cat.tables {
                let count = |s: &str| t.chunks.iter().filter(|c| c.shard == s).count();
                let most = shards.iter().max_by_key(|s| count(s))?;
                let least = shards.iter().min_by_key(|s| count(s))?;
                if count(most) > count(least) + 1 {
                    let chunk = t.chunks.iter().find(|c| &c.shard == most)?;
                    return Some((ns.clone(), chunk.min.clone(), least.clone()));
                }
            }
            None
        }
        BalancerMode::Continuous => {
            let tables: Vec<_> = cat.tables.values().collect();
            if tables.is_empty() {
                return None;
            }
            let t = tables[rng.random_range(0..tables.len())];
            let chunk = &t.chunks[rng.random_range(0..t.chunks.len())];
            let others: Vec<&String> = shards.iter().filter(|s| **s != chunk.shard).collect();
            let to = others[rng.random_range(0..others.len())];
            Some((t.ns.clone(), chunk.min.clone(), to.clone()))
        }
    }
}

/// The balancer task; ends when the cluster is gone.
pub async fn run(c: Weak<ClusterInner>) {
    loop {
        let Some(cluster) = c.upgrade() else { return };
        let s = cluster.settings();
        let interval = s.balancer_interval.max(Duration::from_millis(10));
        if s.balancer {
            if let Some((ns, point, to)) = choose(&cluster, s.balancer_mode) {
                match move_chunk(&cluster, &ns, &point, &to).await {
                    Ok(r) => {
                        cluster
                            .balancer_rounds
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::debug!(ns, from = r.from, to = r.to, "balancer moved a chunk");
                    }
                    Err(e) => tracing::info!(ns, "balancer move failed: {e}"),
                }
            }
        }
        drop(cluster);
        tokio::time::sleep(interval).await;
    }
}
