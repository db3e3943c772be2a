//! MongoDB commit rules that depend on the deployment rather than on one reply
//! (ARCHITECTURE.md, MongoDB outcome rules; issue #12 part 4): what a majority is,
//! what the default write concern is, and whether anything can be rolled back.
//! Each rule is a named function of [`Deployment`], the facts the wire has shown;
//! [`committed_on_acknowledgement`] says which of them, if any, makes an
//! acknowledged write committed at its reply, and the tracker prints that rule's
//! word ([`Rule::reason`]) first in the write's reason.
//!
//! Sources (MongoDB manual):
//! - "Default MongoDB Read Concerns/Write Concerns"
//!   (<https://www.mongodb.com/docs/manual/reference/mongodb-defaults/>): "Starting in
//!   MongoDB 5.0, the implicit default write concern is w: majority", except
//!   `if [ (#arbiters > 0) AND (#non-arbiters <= majority(#voting-nodes)) ]` →
//!   `{ w: 1 }`; the voting majority is "1 plus half the number of voting members,
//!   rounded down" (PSA: 2 non-arbiters ≤ 2 → `w:1`; PSSSA: 4 > 3 → majority).
//! - `setDefaultRWConcern` / `getDefaultRWConcern`
//!   (<https://www.mongodb.com/docs/manual/reference/command/setDefaultRWConcern/>,
//!   `.../getDefaultRWConcern/`): replica sets and sharded clusters take a global
//!   default write concern that "operations which do not specify an explicit write
//!   concern inherit"; the reply's `defaultWriteConcern` is absent when none is set.
//! - `hello` (replica sets): `hosts` lists members "that are neither hidden,
//!   passive, nor arbiters", `passives` those with priority 0, `arbiters` the
//!   arbiters. hello never shows `votes`.
//!
//! **Passives count as voters.** A priority-0 member votes unless configured with
//! `votes: 0`, which hello does not show. Counting them can only make tidemark wait
//! for a commit point it did not need; not counting a member that votes could call
//! committed a write that a majority without it can roll back. Hidden members are
//! not in hello at all: that is why [`one_member_set`] also requires that no other
//! member has been seen replicating (fetching the oplog, reporting positions).
//!
//! MongoDB 5.0 is `maxWireVersion` 13 (the drivers' wire version table).

use crate::decode::reason::Reason;

/// `maxWireVersion` of MongoDB 5.0, the first with the implicit `w:"majority"` default.
pub const WIRE_VERSION_5_0: i64 = 13;

/// What a server's hello said it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kind {
    /// No hello seen (or only a router's).
    #[default]
    Unknown,
    /// hello without `setName`: a standalone mongod.
    Standalone,
    /// A replica-set member: voting members (hosts + passives + arbiters) and how
    /// many of them are arbiters.
    ReplicaSet { voters: usize, arbiters: usize },
}

/// The deployment facts seen on the wire so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    pub kind: Kind,
    /// The last hello's `maxWireVersion`.
    pub max_wire_version: Option<i64>,
    /// The cluster-wide default write concern (`setDefaultRWConcern` /
    /// `getDefaultRWConcern` reply): `Some(true)` for `w:"majority"`, `Some(false)`
    /// for any other `w`; `None` when none was seen or none is set.
    pub cluster_default_majority: Option<bool>,
    /// Another member was seen replicating: oplog fetches or position reports.
    pub other_members_seen: bool,
}

/// The rule that decided a write committed at its acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Standalone,
    OneMemberSet,
    ClusterDefaultMajority,
    ImplicitDefaultMajority,
}

impl Rule {
    /// The reason word printed first for a write this rule decided.
    pub fn reason(self) -> Reason {
        match self {
            Rule::Standalone => Reason::Standalone,
            Rule::OneMemberSet => Reason::OneMemberSet,
            Rule::ClusterDefaultMajority => Reason::ClusterDefaultMajority,
            Rule::ImplicitDefaultMajority => Reason::ImplicitDefaultMajority,
        }
    }

    /// Why, for people (follows the word).
    pub fn explain(self, d: &Deployment) -> String {
        match self {
            Rule::Standalone => {
                "hello has no setName: a standalone has no replica to roll back to".into()
            }
            Rule::OneMemberSet => {
                "hello names one voting member, so the primary's acknowledgement is the majority's"
                    .into()
            }
            Rule::ClusterDefaultMajority => {
                "sent without w; the cluster-wide default write concern (setDefaultRWConcern) is w:\"majority\"".into()
            }
            Rule::ImplicitDefaultMajority => match d.kind {
                Kind::ReplicaSet { voters, arbiters } => format!(
                    "sent without w; maxWireVersion {} (MongoDB 5.0+) and {voters} voting members, {arbiters} arbiters: the implicit default is w:\"majority\"",
                    d.max_wire_version.unwrap_or_default()
                ),
                _ => "sent without w; the implicit default is w:\"majority\"".into(),
            },
        }
    }
}

/// A standalone mongod (hello without `setName`, not a router) never rolls back:
/// an acknowledged write there is committed.
pub fn standalone(d: &Deployment) -> bool {
    d.kind == Kind::Standalone
}

/// A replica set whose hello names one voting member, with no other member seen
/// replicating: a majority of one is the primary, so an acknowledged write is
/// majority-committed (and no election can roll it back).
pub fn one_member_set(d: &Deployment) -> bool {
    matches!(d.kind, Kind::ReplicaSet { voters: 1, .. }) && !d.other_members_seen
}

/// MongoDB 5.0+ replica set whose implicit default write concern is
/// `w:"majority"`: no arbiters, or more non-arbiters than a voting majority.
pub fn implicit_default_majority(d: &Deployment) -> bool {
    let Kind::ReplicaSet { voters, arbiters } = d.kind else {
        return false;
    };
    if d.max_wire_version.is_none_or(|v| v < WIRE_VERSION_5_0) || voters == 0 {
        return false;
    }
    let majority = voters / 2 + 1;
    let non_arbiters = voters.saturating_sub(arbiters);
    !(arbiters > 0 && non_arbiters <= majority)
}

/// The cluster-wide default write concern, when the wire showed one: whether it is
/// `w:"majority"`. It overrides the implicit default.
pub fn cluster_default_majority(d: &Deployment) -> Option<bool> {
    d.cluster_default_majority
}

/// The rule that makes a write acknowledged below majority (or at the server's
/// default, `default_wc`) committed at its reply, or `None`: it waits for the
/// commit point. Standalone and one-member set decide any acknowledged write; the
/// default-write-concern rules only a write sent without `w`, the cluster-wide
/// default first.
pub fn committed_on_acknowledgement(d: &Deployment, default_wc: bool) -> Option<Rule> {
    if standalone(d) {
        return Some(Rule::Standalone);
    }
    if one_member_set(d) {
        return Some(Rule::OneMemberSet);
    }
    if !default_wc {
        return None;
    }
    match cluster_default_majority(d) {
        Some(true) => Some(Rule::ClusterDefaultMajority),
        Some(false) => None,
        None => implicit_default_majority(d).then_some(Rule::ImplicitDefaultMajority),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(voters: usize, arbiters: usize, wire: i64) -> Deployment {
        Deployment {
            kind: Kind::ReplicaSet { voters, arbiters },
            max_wire_version: Some(wire),
            ..Deployment::default()
        }
    }

    /// The manual's table: 2 non-arbiters + 1 arbiter → w:1; 4 + 1 → majority.
    #[test]
    fn implicit_default_follows_the_manuals_arbiter_formula() {
        assert!(!implicit_default_majority(&set(3, 1, 17)));
        assert!(implicit_default_majority(&set(5, 1, 17)));
        assert!(implicit_default_majority(&set(3, 0, 13)));
        assert!(!implicit_default_majority(&set(3, 0, 12)), "4.4: w:1");
        assert!(!implicit_default_majority(&Deployment::default()));
    }

    #[test]
    fn the_cluster_default_overrides_the_implicit_one_for_writes_without_w() {
        let mut d = set(3, 0, 17);
        assert_eq!(
            committed_on_acknowledgement(&d, true),
            Some(Rule::ImplicitDefaultMajority)
        );
        assert_eq!(committed_on_acknowledgement(&d, false), None);
        d.cluster_default_majority = Some(false);
        assert_eq!(committed_on_acknowledgement(&d, true), None);
        let mut psa = set(3, 1, 17);
        psa.cluster_default_majority = Some(true);
        assert_eq!(
            committed_on_acknowledgement(&psa, true),
            Some(Rule::ClusterDefaultMajority)
        );
    }

    #[test]
    fn one_member_needs_no_other_member_replicating() {
        let mut d = set(1, 0, 8);
        assert_eq!(
            committed_on_acknowledgement(&d, false),
            Some(Rule::OneMemberSet)
        );
        d.other_members_seen = true;
        assert_eq!(committed_on_acknowledgement(&d, false), None);
        let s = Deployment {
            kind: Kind::Standalone,
            ..Deployment::default()
        };
        assert_eq!(
            committed_on_acknowledgement(&s, false),
            Some(Rule::Standalone)
        );
    }
}
