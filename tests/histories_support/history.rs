//! What every protocol's history shares: rounds of concurrent client operations with
//! faults injected at their start, a seeded generator, and the counts reports give.

use serde::{Deserialize, Serialize};

/// SplitMix64: a tiny deterministic generator (the seed is the whole history).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round<O, F> {
    pub faults: Vec<F>,
    /// One list of operations per client, run concurrently, each in order.
    pub clients: Vec<Vec<O>>,
    /// A ground-truth dump (and a version) this long into the round, while the
    /// clients write.
    pub mid_dump_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History<O, F> {
    pub seed: u64,
    pub rounds: Vec<Round<O, F>>,
}

impl<O, F> History<O, F> {
    pub fn ops(&self) -> impl Iterator<Item = &O> {
        self.rounds.iter().flat_map(|r| r.clients.iter().flatten())
    }
    pub fn op_count(&self) -> usize {
        self.ops().count()
    }
    pub fn fault_count(&self) -> usize {
        self.rounds.iter().map(|r| r.faults.len()).sum()
    }
    pub fn client_count(&self) -> usize {
        self.rounds
            .iter()
            .map(|r| r.clients.len())
            .max()
            .unwrap_or(0)
    }
}

impl<O, F> History<O, F> {
    /// The same history for the proxied mode: in about 60% of histories (decided by
    /// its own generator, so the tapped history of a seed stays what it was) one
    /// round starts with a proxy restart — a crash (SIGKILL) in 40% of them, in any
    /// round but the first and 300–800 ms into it, else a graceful stop 50–550 ms
    /// into its round — down for 50–600 ms.
    pub fn with_proxy_restarts(
        mut self,
        restart: impl Fn(super::proxy_run::ProxyRestart) -> F,
    ) -> History<O, F> {
        let mut r = Rng::new(self.seed ^ 0x7072_6f78_7900);
        if !self.rounds.is_empty() && r.chance(60) {
            let kill = r.chance(40);
            // A crash refuses every version after it (a named capture gap): never in
            // the first round, so the versions of that round's dumps are checked.
            let n = self.rounds.len() as u64;
            let round = match (kill, n) {
                (true, 2..) => 1 + r.below(n - 1),
                _ => r.below(n),
            } as usize;
            let f = super::proxy_run::ProxyRestart {
                kill,
                // A crash's gap starts up to ~250 ms before it (the proxy's last
                // group commit, less a margin): later than that, the previous
                // round's dumps stay checked.
                after_ms: 50 + r.below(500) + if kill { 250 } else { 0 },
                down_ms: 50 + r.below(550),
            };
            self.rounds[round].faults.push(restart(f));
        }
        self
    }
}
