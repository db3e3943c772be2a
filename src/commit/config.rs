//! The commit tracker's settings: what an operator may choose, as opposed to the
//! rules, which are fixed.

use serde::{Deserialize, Serialize};

/// What an in-doubt write becomes once its resolution deadline passes with nothing
/// (no retry, no duplicate) resolving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InDoubtPolicy {
    /// Logged as `in_doubt` with its reason: versions and restore decide (default:
    /// tidemark never pretends to know).
    #[default]
    Keep,
    /// Logged as `committed` (the reason says it was by policy): favours never
    /// losing a write that did land.
    Committed,
    /// Logged as `rejected` (the reason says it was by policy).
    Rejected,
}

impl InDoubtPolicy {
    /// The spelling used on the command line and in `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            InDoubtPolicy::Keep => "keep",
            InDoubtPolicy::Committed => "committed",
            InDoubtPolicy::Rejected => "rejected",
        }
    }

    /// Parses the command-line spelling.
    pub fn parse(s: &str) -> Option<InDoubtPolicy> {
        match s {
            "keep" | "in_doubt" => Some(InDoubtPolicy::Keep),
            "committed" => Some(InDoubtPolicy::Committed),
            "rejected" => Some(InDoubtPolicy::Rejected),
            _ => None,
        }
    }
}

/// Settings of one [`CommitTracker`](super::CommitTracker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Capture time (ns) an in-doubt or unconfirmed write may wait for something to
    /// resolve it before the policy decides.
    pub resolve_after_ns: u64,
    /// What an in-doubt write becomes at its deadline.
    pub in_doubt_policy: InDoubtPolicy,
    /// A Mongo write acknowledged below majority, with no replication traffic in
    /// sight by its deadline, counts as committed (ARCHITECTURE.md's default) —
    /// otherwise it is logged `in_doubt(unreplicated)`.
    pub mongo_unreplicated_committed: bool,
    /// Voting members of the replica set, when the hello replies cannot be seen
    /// (for a majority of `replSetUpdatePosition` durable optimes).
    pub mongo_members: Option<usize>,
    /// Dedupe memory: identities of logged mutations kept for late duplicates.
    pub dedupe_window: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            resolve_after_ns: 10_000_000_000,
            in_doubt_policy: InDoubtPolicy::Keep,
            mongo_unreplicated_committed: true,
            mongo_members: None,
            dedupe_window: 1 << 20,
        }
    }
}
