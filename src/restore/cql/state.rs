//! What a CQL restore's checkpoint holds (`restore::checkpoint` keeps it in the
//! store): where the acknowledged writes reached, in the version's own order (rows
//! by namespace then key, then deletions likewise), and the counts so far. Saved
//! only after every write up to that place was acknowledged, so `--resume` misses
//! nothing; what it writes again is idempotent (timestamped cells and tombstones,
//! counters brought to a total rather than incremented).

use serde::{Deserialize, Serialize};

/// Rows first, then deletions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    Rows,
    Deletions,
}

/// Counts of one target namespace: written, deletions, failed, bytes, rows with
/// nothing left to write (expired).
pub type Tally = [u64; 5];

/// A CQL restore's place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The options that decide what is written (selection, renames, overwrite):
    /// a resume with other ones is refused.
    pub options: String,
    pub phase: Phase,
    /// The last (namespace, key) whose writes were all acknowledged.
    pub namespace: String,
    pub key: String,
    /// Per target namespace, what was written up to here.
    pub counts: Vec<(String, Tally)>,
}

impl State {
    /// Whether the entry (phase, namespace, key) was done already.
    pub fn covers(&self, phase: Phase, namespace: &str, key: &str) -> bool {
        (phase, namespace, key) <= (self.phase, self.namespace.as_str(), self.key.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_covers_what_comes_before_it_in_version_order() {
        let s = State {
            options: String::new(),
            phase: Phase::Rows,
            namespace: "ks.b".into(),
            key: "{\"id\":5}".into(),
            counts: Vec::new(),
        };
        assert!(s.covers(Phase::Rows, "ks.a", "{\"id\":9}"));
        assert!(s.covers(Phase::Rows, "ks.b", "{\"id\":5}"));
        assert!(!s.covers(Phase::Rows, "ks.b", "{\"id\":6}"));
        assert!(!s.covers(Phase::Deletions, "ks.a", "{\"id\":1}"));
    }
}
