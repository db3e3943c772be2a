//! The token ring: every node owns `num_tokens` vnode tokens; a key's replicas are
//! found by walking the ring clockwise from the first token at or after the key's
//! token, as Cassandra's `SimpleStrategy` and `NetworkTopologyStrategy` do.

use std::collections::BTreeMap;

/// One node as the ring sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingNode {
    pub dc: String,
    pub rack: String,
    pub tokens: Vec<i64>,
}

/// How a keyspace places replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    Simple { rf: usize },
    NetworkTopology { dcs: BTreeMap<String, usize> },
}

impl Replication {
    /// Replication factor per datacenter (SimpleStrategy counts every replica in the
    /// datacenter named `any_dc`, the datacenter it finds them in being irrelevant to
    /// its placement; consistency arithmetic only needs the total then).
    pub fn rf_by_dc(&self, replicas_dcs: &[&str]) -> BTreeMap<String, usize> {
        match self {
            Replication::NetworkTopology { dcs } => dcs.clone(),
            Replication::Simple { rf } => {
                // SimpleStrategy: LOCAL_* levels use the total factor, as Cassandra's
                // `localReplicationFactor` does for non-NTS strategies.
                let mut m = BTreeMap::new();
                for dc in replicas_dcs {
                    m.entry(dc.to_string()).or_insert(*rf);
                }
                if m.is_empty() {
                    m.insert(String::new(), *rf);
                }
                m
            }
        }
    }
}

/// The tokens of all nodes, sorted.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    /// (token, node index), sorted by token.
    entries: Vec<(i64, usize)>,
    nodes: Vec<RingNode>,
}

/// Deterministic vnode tokens: splitmix64 over `seed` and the node index, so a
/// testbed started twice has the same ring (tests and captures are reproducible).
pub fn vnode_tokens(seed: u64, node: usize, num_tokens: usize) -> Vec<i64> {
    let mut state = seed ^ (node as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(num_tokens);
    while out.len() < num_tokens {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let t = z as i64;
        if t != i64::MIN && !out.contains(&t) {
            out.push(t);
        }
    }
    out.sort_unstable();
    out
}

impl Ring {
    pub fn new(nodes: Vec<RingNode>) -> Ring {
        let mut entries: Vec<(i64, usize)> = nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.tokens.iter().map(move |t| (*t, i)))
            .collect();
        entries.sort_unstable();
        entries.dedup_by_key(|e| e.0);
        Ring { entries, nodes }
    }

    pub fn nodes(&self) -> &[RingNode] {
        &self.nodes
    }

    /// Index in `entries` of the first token >= `token`, wrapping to 0.
    fn start(&self, token: i64) -> usize {
        let i = self.entries.partition_point(|(t, _)| *t < token);
        if i == self.entries.len() {
            0
        } else {
            i
        }
    }

    /// The nodes walked clockwise from `token`, each once, in ring order.
    fn walk(&self, token: i64) -> impl Iterator<Item = usize> + '_ {
        let n = self.entries.len();
        let start = if n == 0 { 0 } else { self.start(token) };
        let mut seen = vec![false; self.nodes.len()];
        (0..n).filter_map(move |k| {
            let node = self.entries[(start + k) % n].1;
            (!std::mem::replace(&mut seen[node], true)).then_some(node)
        })
    }

    /// The replicas of `token` under `rep`, in the order Cassandra lists them.
    /// NetworkTopologyStrategy here takes the first distinct nodes of each datacenter
    /// in ring order; Cassandra also spreads over racks first, which gives the same
    /// answer while each datacenter has a single rack (the testbed default).
    pub fn replicas(&self, token: i64, rep: &Replication) -> Vec<usize> {
        match rep {
            Replication::Simple { rf } => self.walk(token).take(*rf).collect(),
            Replication::NetworkTopology { dcs } => {
                let mut left = dcs.clone();
                let mut out = Vec::new();
                for node in self.walk(token) {
                    if let Some(n) = left.get_mut(&self.nodes[node].dc) {
                        if *n > 0 {
                            *n -= 1;
                            out.push(node);
                        }
                    }
                    if left.values().all(|n| *n == 0) {
                        break;
                    }
                }
                out
            }
        }
    }
}

/// The ring as the running cluster sees it: replaced whole when a node joins or
/// leaves, so a lookup always sees one consistent ring.
#[derive(Debug, Default)]
pub struct LiveRing(std::sync::RwLock<std::sync::Arc<Ring>>);

impl LiveRing {
    pub fn new(ring: Ring) -> LiveRing {
        LiveRing(std::sync::RwLock::new(std::sync::Arc::new(ring)))
    }

    /// The current ring (cheap: shares it).
    pub fn current(&self) -> std::sync::Arc<Ring> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, ring: Ring) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(ring);
    }

    /// The replicas of `token` under `rep` in the current ring.
    pub fn replicas(&self, token: i64, rep: &Replication) -> Vec<usize> {
        self.current().replicas(token, rep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(dc: &str, tokens: &[i64]) -> RingNode {
        RingNode {
            dc: dc.into(),
            rack: "rack1".into(),
            tokens: tokens.to_vec(),
        }
    }

    #[test]
    fn simple_strategy_walks_clockwise_and_wraps() {
        let ring = Ring::new(vec![
            node("dc1", &[-100, 200]),
            node("dc1", &[0]),
            node("dc1", &[100]),
        ]);
        let simple = |rf| Replication::Simple { rf };
        // A token equal to a node's token belongs to that node.
        assert_eq!(ring.replicas(0, &simple(1)), vec![1]);
        assert_eq!(ring.replicas(1, &simple(2)), vec![2, 0]);
        assert_eq!(ring.replicas(-500, &simple(3)), vec![0, 1, 2]);
        // Past the last token: wraps to the first (node 0 at -100).
        assert_eq!(ring.replicas(201, &simple(2)), vec![0, 1]);
        // Node 0 appears twice on the ring but is one replica.
        assert_eq!(ring.replicas(150, &simple(3)), vec![0, 1, 2]);
        assert_eq!(ring.replicas(150, &simple(5)).len(), 3);
    }

    #[test]
    fn nts_takes_per_dc_counts() {
        let ring = Ring::new(vec![
            node("dc1", &[0]),
            node("dc2", &[10]),
            node("dc1", &[20]),
            node("dc2", &[30]),
            node("dc1", &[40]),
        ]);
        let dcs: BTreeMap<String, usize> = [("dc1".to_string(), 2), ("dc2".to_string(), 1)].into();
        let rep = Replication::NetworkTopology { dcs };
        assert_eq!(ring.replicas(5, &rep), vec![1, 2, 4]);
        assert_eq!(ring.replicas(35, &rep), vec![4, 0, 1]);
    }

    #[test]
    fn vnode_tokens_are_deterministic_and_distinct() {
        let a = vnode_tokens(7, 0, 16);
        assert_eq!(a, vnode_tokens(7, 0, 16));
        assert_ne!(a, vnode_tokens(7, 1, 16));
        assert_eq!(a.len(), 16);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
    }
}
