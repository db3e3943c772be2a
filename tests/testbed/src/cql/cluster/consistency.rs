//! Consistency-level arithmetic: how many replica acknowledgements a request needs
//! (Cassandra's `ConsistencyLevel.blockFor`) and whether the live replicas can
//! satisfy it at all (`assureSufficientLiveReplicas`, which yields Unavailable).

use crate::cql::errors::invalid;
use std::collections::BTreeMap;
use tidemark_cql::message::{error_code as code, ErrorBody, ErrorDetails};
use tidemark_cql::Consistency;

/// A replica as the consistency arithmetic sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaInfo {
    pub node: usize,
    pub dc: String,
    pub alive: bool,
}

/// What a request must collect before it succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockFor {
    /// This many acknowledgements from any of the replicas (ANY, ONE, TWO, THREE,
    /// QUORUM, ALL).
    Any(usize),
    /// This many from replicas in the coordinator's datacenter (LOCAL_ONE,
    /// LOCAL_QUORUM).
    Local { dc: String, count: usize },
    /// A quorum in every datacenter that holds replicas (EACH_QUORUM).
    Each(BTreeMap<String, usize>),
}

impl BlockFor {
    /// The total number of acknowledgements (the `block_for` of WriteTimeout errors).
    pub fn total(&self) -> usize {
        match self {
            BlockFor::Any(n) => *n,
            BlockFor::Local { count, .. } => *count,
            BlockFor::Each(m) => m.values().sum(),
        }
    }

    /// How many of `acks` count towards this requirement.
    pub fn counted(&self, acks: &[&ReplicaInfo]) -> usize {
        match self {
            BlockFor::Any(_) => acks.len(),
            BlockFor::Local { dc, .. } => acks.iter().filter(|r| &r.dc == dc).count(),
            BlockFor::Each(m) => m
                .iter()
                .map(|(dc, need)| acks.iter().filter(|r| &r.dc == dc).count().min(*need))
                .sum(),
        }
    }

    /// True when `acks` satisfy the requirement.
    pub fn satisfied(&self, acks: &[&ReplicaInfo]) -> bool {
        match self {
            BlockFor::Each(m) => m
                .iter()
                .all(|(dc, need)| acks.iter().filter(|r| &r.dc == dc).count() >= *need),
            _ => self.counted(acks) >= self.total(),
        }
    }
}

/// Why a request cannot be attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClError {
    /// Not a level for this kind of request (e.g. SERIAL for a plain write).
    Invalid(String),
    /// Too few live replicas: `required` and `alive` as the Unavailable error reports.
    Unavailable { required: usize, alive: usize },
}

pub fn cl_error(e: ClError, cl: Consistency) -> ErrorBody {
    match e {
        ClError::Invalid(m) => invalid(m),
        ClError::Unavailable { required, alive } => ErrorBody {
            code: code::UNAVAILABLE,
            message: format!("Cannot achieve consistency level {}", cl.name()).into(),
            details: ErrorDetails::Unavailable {
                consistency: cl,
                required: required as i32,
                alive: alive as i32,
            },
        },
    }
}

fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// The requirement for `cl` given the replicas of one token (all of them, live or
/// not), the replication factor per datacenter, and the coordinator's datacenter.
/// `write` matters for ANY (writes only) and SERIAL levels (reads only here).
pub fn block_for(
    cl: Consistency,
    rf_by_dc: &BTreeMap<String, usize>,
    local_dc: &str,
    write: bool,
) -> Result<BlockFor, ClError> {
    let total: usize = rf_by_dc.values().sum();
    let local_rf = rf_by_dc.get(local_dc).copied().unwrap_or(0);
    Ok(match cl {
        Consistency::Any if write => BlockFor::Any(1),
        Consistency::Any => {
            return Err(ClError::Invalid(
                "ANY ConsistencyLevel is only supported for writes".into(),
            ))
        }
        Consistency::One => BlockFor::Any(1),
        Consistency::Two => BlockFor::Any(2),
        Consistency::Three => BlockFor::Any(3),
        Consistency::Quorum => BlockFor::Any(quorum(total)),
        Consistency::All => BlockFor::Any(total),
        Consistency::LocalOne => BlockFor::Local {
            dc: local_dc.into(),
            count: 1,
        },
        Consistency::LocalQuorum => BlockFor::Local {
            dc: local_dc.into(),
            count: quorum(local_rf),
        },
        Consistency::EachQuorum if write => BlockFor::Each(
            rf_by_dc
                .iter()
                .filter(|(_, rf)| **rf > 0)
                .map(|(dc, rf)| (dc.clone(), quorum(*rf)))
                .collect(),
        ),
        Consistency::EachQuorum => {
            return Err(ClError::Invalid(
                "EACH_QUORUM ConsistencyLevel is only supported for writes".into(),
            ))
        }
        // A read at SERIAL runs Paxos over a quorum; without LWT support we read a quorum.
        Consistency::Serial if !write => BlockFor::Any(quorum(total)),
        Consistency::LocalSerial if !write => BlockFor::Local {
            dc: local_dc.into(),
            count: quorum(local_rf),
        },
        Consistency::Serial | Consistency::LocalSerial => {
            return Err(ClError::Invalid(format!(
                "You must use conditional updates for serializable writes (consistency {})",
                cl.name()
            )))
        }
        Consistency::Other(n) => return Err(ClError::Invalid(format!("unknown consistency {n}"))),
    })
}

/// Checks that the live replicas can satisfy `bf` (ANY writes only need the
/// coordinator, which would store a hint).
pub fn check_available(
    cl: Consistency,
    bf: &BlockFor,
    replicas: &[ReplicaInfo],
) -> Result<(), ClError> {
    if cl == Consistency::Any {
        return Ok(());
    }
    let alive: Vec<&ReplicaInfo> = replicas.iter().filter(|r| r.alive).collect();
    if bf.satisfied(&alive) {
        return Ok(());
    }
    Err(ClError::Unavailable {
        required: bf.total(),
        alive: bf.counted(&alive),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dcs(v: &[(&str, usize)]) -> BTreeMap<String, usize> {
        v.iter().map(|(d, n)| (d.to_string(), *n)).collect()
    }

    fn reps(v: &[(&str, bool)]) -> Vec<ReplicaInfo> {
        v.iter()
            .enumerate()
            .map(|(i, (d, a))| ReplicaInfo {
                node: i,
                dc: d.to_string(),
                alive: *a,
            })
            .collect()
    }

    #[test]
    fn block_for_counts() {
        let rf3 = dcs(&[("dc1", 3)]);
        let t = |cl| block_for(cl, &rf3, "dc1", true).unwrap().total();
        assert_eq!(t(Consistency::One), 1);
        assert_eq!(t(Consistency::Two), 2);
        assert_eq!(t(Consistency::Three), 3);
        assert_eq!(t(Consistency::Quorum), 2);
        assert_eq!(t(Consistency::All), 3);
        assert_eq!(t(Consistency::LocalQuorum), 2);
        assert_eq!(t(Consistency::LocalOne), 1);
        assert_eq!(t(Consistency::Any), 1);
        assert_eq!(t(Consistency::EachQuorum), 2);
        let two = dcs(&[("dc1", 3), ("dc2", 2)]);
        let q = |cl| block_for(cl, &two, "dc2", true).unwrap();
        assert_eq!(q(Consistency::Quorum).total(), 3); // 5/2+1
        assert_eq!(q(Consistency::LocalQuorum).total(), 2); // 2/2+1 in dc2
        assert_eq!(q(Consistency::EachQuorum).total(), 4); // 2 + 2
        assert_eq!(q(Consistency::All).total(), 5);
        assert_eq!(
            block_for(Consistency::Quorum, &dcs(&[("dc1", 4)]), "dc1", true)
                .unwrap()
                .total(),
            3
        );
    }

    #[test]
    fn serial_and_any_rules() {
        let rf3 = dcs(&[("dc1", 3)]);
        assert!(block_for(Consistency::Serial, &rf3, "dc1", true).is_err());
        assert_eq!(
            block_for(Consistency::Serial, &rf3, "dc1", false)
                .unwrap()
                .total(),
            2
        );
        assert!(block_for(Consistency::Any, &rf3, "dc1", false).is_err());
        assert!(block_for(Consistency::EachQuorum, &rf3, "dc1", false).is_err());
    }

    #[test]
    fn availability() {
        let rf3 = dcs(&[("dc1", 3)]);
        let r = reps(&[("dc1", true), ("dc1", false), ("dc1", false)]);
        let q = block_for(Consistency::Quorum, &rf3, "dc1", true).unwrap();
        assert_eq!(
            check_available(Consistency::Quorum, &q, &r),
            Err(ClError::Unavailable {
                required: 2,
                alive: 1
            })
        );
        let one = block_for(Consistency::One, &rf3, "dc1", true).unwrap();
        assert!(check_available(Consistency::One, &one, &r).is_ok());
        let none = reps(&[("dc1", false)]);
        assert!(check_available(Consistency::Any, &BlockFor::Any(1), &none).is_ok());
    }

    #[test]
    fn local_and_each_quorum_count_per_dc() {
        let two = dcs(&[("dc1", 3), ("dc2", 3)]);
        let r = reps(&[
            ("dc1", true),
            ("dc1", true),
            ("dc1", true),
            ("dc2", true),
            ("dc2", false),
            ("dc2", false),
        ]);
        let lq = block_for(Consistency::LocalQuorum, &two, "dc1", true).unwrap();
        assert!(check_available(Consistency::LocalQuorum, &lq, &r).is_ok());
        let each = block_for(Consistency::EachQuorum, &two, "dc1", true).unwrap();
        assert_eq!(
            check_available(Consistency::EachQuorum, &each, &r),
            Err(ClError::Unavailable {
                required: 4,
                alive: 3
            })
        );
        let acks: Vec<&ReplicaInfo> = r.iter().take(3).collect();
        assert!(!each.satisfied(&acks));
        assert!(lq.satisfied(&acks));
    }
}
