//! Which snapshot a version joins, and the rules of the join (ARCHITECTURE.md,
//! "Versions and restore"), each a named function with its test:
//!
//! - [`choose_snapshots`]: by default the newest finished snapshot of each protocol
//!   that ended by T; T inside (or before) the read window of the snapshot asked
//!   for is refused, naming the earliest valid T;
//! - [`refuse_other_cluster`]: a snapshot read from nodes the log never saw is of
//!   another cluster;
//! - [`window_rule`]: a non-idempotent change (counter increment, list append or
//!   prepend, a MongoDB operator update the oplog did not resolve) committed before
//!   its row's read window is in the snapshot already, after it is applied, inside it
//!   is uncertain;
//! - [`after_cluster_time`]: a MongoDB snapshot read at one cluster time has every
//!   operation up to that optime and none after.

use std::collections::BTreeSet;
use std::net::IpAddr;

use anyhow::bail;

use crate::capture::Timestamp;
use crate::decode::time::rfc3339;
use crate::snapshot::{SnapshotInfo, SnapshotRow};
use crate::store::{OpTime, Protocol};

/// What `--snapshot` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotChoice {
    /// The newest finished snapshot of each protocol that ended by T.
    Auto,
    /// The log alone.
    None,
    /// This one.
    Id(u64),
}

/// The moment from which a version may use a snapshot: every part read by then (a
/// MongoDB snapshot read at one cluster time is valid from that time).
pub fn valid_from(s: &SnapshotInfo) -> Option<u64> {
    if let Some(ct) = s.cluster_time {
        return Some((ct.ts >> 32) * 1_000_000_000);
    }
    let finished = s.finished?;
    Some(
        s.parts
            .iter()
            .filter_map(|p| p.read_end)
            .max()
            .unwrap_or(finished),
    )
}

/// The snapshots a version at `at` joins.
pub fn choose_snapshots(
    all: &[SnapshotInfo],
    choice: SnapshotChoice,
    at: u64,
) -> anyhow::Result<Vec<SnapshotInfo>> {
    match choice {
        SnapshotChoice::None => Ok(Vec::new()),
        SnapshotChoice::Id(id) => {
            let Some(s) = all.iter().find(|s| s.id == id) else {
                bail!("no snapshot {id} in the store (see `tidemark snapshot list`)");
            };
            let Some(from) = valid_from(s) else {
                bail!("snapshot {id} is not finished: complete it with `tidemark snapshot take --resume`");
            };
            if at < from {
                bail!(
                    "--at {} falls before the end of snapshot {id}'s read window (its rows may hold writes made after T); the earliest valid time with this snapshot is {}",
                    rfc3339(Timestamp(at)),
                    rfc3339(Timestamp(from))
                );
            }
            Ok(vec![s.clone()])
        }
        SnapshotChoice::Auto => {
            let mut out: Vec<SnapshotInfo> = Vec::new();
            for protocol in [Protocol::Cql, Protocol::Mongo] {
                let finished: Vec<&SnapshotInfo> = all
                    .iter()
                    .filter(|s| s.protocol == protocol && valid_from(s).is_some())
                    .collect();
                let usable = finished
                    .iter()
                    .filter(|s| valid_from(s).is_some_and(|f| f <= at))
                    .max_by_key(|s| (valid_from(s), s.id));
                match usable {
                    Some(s) => out.push((*s).clone()),
                    None => {
                        if let Some(first) = finished.iter().filter_map(|s| valid_from(s)).min() {
                            bail!(
                                "--at {} is before every {} snapshot's read window ended; the earliest valid time is {} (or cut from the log alone with --snapshot none)",
                                rfc3339(Timestamp(at)),
                                protocol.as_str(),
                                rfc3339(Timestamp(first))
                            );
                        }
                    }
                }
            }
            Ok(out)
        }
    }
}

/// The addresses in a snapshot's `--from` (IP literals only; names cannot be
/// compared with captured addresses).
fn source_ips(source: &str) -> Vec<IpAddr> {
    let rest = source.split_once("://").map_or(source, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hosts = rest.split(['/', '?']).next().unwrap_or_default();
    hosts
        .split(',')
        .filter_map(|h| {
            let h = h.trim();
            let host = match h.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default(),
                None => h.rsplit_once(':').map_or(h, |(a, _)| a),
            };
            host.parse().ok()
        })
        .collect()
}

/// Refuses a snapshot read from a cluster the log never saw: when the log has
/// writes of the snapshot's protocol and the snapshot names its nodes by address,
/// one of them must be a node the log saw.
pub fn refuse_other_cluster(s: &SnapshotInfo, log_nodes: &BTreeSet<IpAddr>) -> anyhow::Result<()> {
    let ips = source_ips(&s.source);
    if log_nodes.is_empty() || ips.is_empty() {
        return Ok(());
    }
    if ips.iter().any(|ip| log_nodes.contains(ip)) {
        return Ok(());
    }
    bail!(
        "snapshot {} was read from {} ({}), which the log never saw: it is of another cluster",
        s.id,
        s.source,
        s.cluster
    )
}

/// Where a change stands to its row's read window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Committed before the read: the snapshot has it.
    InSnapshot,
    /// Committed after the read: apply it.
    After,
    /// Committed while the row's part was read: the snapshot may or may not have it.
    During,
}

/// The exactly-once rule for non-idempotent changes, by commit time against the
/// read window of the part the row was read in.
pub fn window_rule(commit_time: u64, read_start: u64, read_end: u64) -> Window {
    if commit_time < read_start {
        Window::InSnapshot
    } else if commit_time > read_end {
        Window::After
    } else {
        Window::During
    }
}

/// A MongoDB operation is after a one-cluster-time snapshot when its optime is.
pub fn after_cluster_time(op: Option<OpTime>, cluster_time: OpTime) -> Option<bool> {
    op.map(|o| o.ts > cluster_time.ts)
}

/// The read window of the part a snapshot row was read in.
pub fn row_window(s: &SnapshotInfo, row: &SnapshotRow) -> (u64, u64) {
    match s.parts.get(row.part as usize) {
        Some(p) => (p.read_start, p.read_end.unwrap_or(u64::MAX)),
        None => (s.started, s.finished.unwrap_or(u64::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{PartInfo, PartRange};

    fn snap(id: u64, protocol: Protocol, window: (u64, u64), finished: bool) -> SnapshotInfo {
        SnapshotInfo {
            id,
            source: "cql://127.0.0.1:9042".into(),
            cluster: "c".into(),
            protocol,
            started: window.0,
            finished: finished.then_some(window.1),
            namespaces: vec![],
            parts: vec![PartInfo {
                namespace: "ks.t".into(),
                range: PartRange::Token(i64::MIN, 0),
                read_start: window.0,
                read_end: finished.then_some(window.1),
                rows: 0,
            }],
            cluster_time: None,
        }
    }

    #[test]
    fn window_rule_before_during_after() {
        assert_eq!(window_rule(9, 10, 20), Window::InSnapshot);
        assert_eq!(window_rule(10, 10, 20), Window::During);
        assert_eq!(window_rule(20, 10, 20), Window::During);
        assert_eq!(window_rule(21, 10, 20), Window::After);
    }

    #[test]
    fn choose_snapshots_takes_the_newest_that_ended_by_t() {
        let all = [
            snap(1, Protocol::Cql, (10, 20), true),
            snap(2, Protocol::Cql, (30, 40), true),
            snap(3, Protocol::Cql, (50, 60), false),
        ];
        let got = choose_snapshots(&all, SnapshotChoice::Auto, 45).unwrap();
        assert_eq!(got.iter().map(|s| s.id).collect::<Vec<_>>(), [2]);
        let got = choose_snapshots(&all, SnapshotChoice::Auto, 25).unwrap();
        assert_eq!(got.iter().map(|s| s.id).collect::<Vec<_>>(), [1]);
        let e = choose_snapshots(&all, SnapshotChoice::Auto, 15)
            .unwrap_err()
            .to_string();
        assert!(e.contains("earliest valid time"), "{e}");
        let e = choose_snapshots(&all, SnapshotChoice::Id(2), 35)
            .unwrap_err()
            .to_string();
        assert!(e.contains("earliest valid time"), "{e}");
        let e = choose_snapshots(&all, SnapshotChoice::Id(3), 99)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not finished"), "{e}");
        assert!(choose_snapshots(&all, SnapshotChoice::None, 5)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn refuse_other_cluster_compares_addresses() {
        let s = snap(1, Protocol::Cql, (1, 2), true);
        let seen: BTreeSet<IpAddr> = ["127.0.0.1".parse().unwrap()].into();
        assert!(refuse_other_cluster(&s, &seen).is_ok());
        let other: BTreeSet<IpAddr> = ["10.9.9.9".parse().unwrap()].into();
        assert!(refuse_other_cluster(&s, &other)
            .unwrap_err()
            .to_string()
            .contains("another cluster"));
        assert_eq!(
            source_ips("mongodb://u:p@[::1]:27017,10.0.0.2/?replicaSet=rs"),
            [
                "::1".parse::<IpAddr>().unwrap(),
                "10.0.0.2".parse().unwrap()
            ]
        );
    }
}
