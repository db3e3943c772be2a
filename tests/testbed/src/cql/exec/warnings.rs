//! Client warnings: the texts Cassandra's `ClientWarn` gathers while it runs one
//! request and sends back in the response frame (warning flag 0x08, a [string list],
//! protocol v4 and later). Drivers log them or hand them to the application, so the
//! testbed sends the same ones with Cassandra 5.0.9's wording.
//!
//! Statements run synchronously on one thread, so the collector is thread-local, as
//! Cassandra's is: [`collect`] opens it around a request, [`warn`] adds to it.

use std::cell::RefCell;

use crate::cql::storage::ring::Replication;

thread_local! {
    static GATHERED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Runs one request and returns its result with the warnings it raised, in order.
pub fn collect<T>(request: impl FnOnce() -> T) -> (T, Vec<String>) {
    let outer = GATHERED.with(|g| g.borrow_mut().replace(Vec::new()));
    let out = request();
    let warnings = GATHERED.with(|g| std::mem::replace(&mut *g.borrow_mut(), outer));
    (out, warnings.unwrap_or_default())
}

/// Adds a warning to the current request's (outside [`collect`], nobody listens).
pub fn warn(text: impl Into<String>) {
    let text = text.into();
    tracing::debug!(warning = %text, "client warning");
    GATHERED.with(|g| {
        if let Some(list) = g.borrow_mut().as_mut() {
            list.push(text);
        }
    });
}

/// Cassandra's replication strategies warn when a keyspace asks for more replicas
/// than there are nodes (`SimpleStrategy` counts all nodes, `NetworkTopologyStrategy`
/// those of each datacenter). `nodes_in` counts the nodes of a datacenter (`None`:
/// all).
pub fn replication_factor(ks: &str, r: &Replication, nodes_in: impl Fn(Option<&str>) -> usize) {
    match r {
        Replication::Simple { rf } => {
            let n = nodes_in(None);
            if *rf > n {
                warn(format!(
                    "Your replication factor {rf} for keyspace {ks} is higher than the number of nodes {n}"
                ));
            }
        }
        Replication::NetworkTopology { dcs } => {
            for (dc, rf) in dcs {
                let n = nodes_in(Some(dc));
                if *rf > n {
                    warn(format!(
                        "Your replication factor {rf} for keyspace {ks} is higher than the number of nodes {n} for datacenter {dc}"
                    ));
                }
            }
        }
    }
}

/// ALTER KEYSPACE that raises the number of replicas (`AlterKeyspaceStatement`).
pub const REPAIR_AFTER_RF_INCREASE: &str =
    "When increasing replication factor you need to run a full (-full) repair to distribute the data.";

/// An aggregate over no partition key, or over several (`SelectStatement`).
pub const AGGREGATE_WITHOUT_KEY: &str = "Aggregation query used without partition key";
pub const AGGREGATE_OVER_IN: &str =
    "Aggregation query used on multiple partition keys (IN restriction)";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    // Texts as Cassandra 5.0.9 sent them to tests/realdb_fidelity.rs (one node,
    // datacenter-less SimpleStrategy).
    #[test]
    fn replication_factor_above_the_node_count_warns_once_per_request() {
        let ((), w) = collect(|| {
            replication_factor("fid_err_rf3", &Replication::Simple { rf: 3 }, |_| 1);
            replication_factor("ok", &Replication::Simple { rf: 1 }, |_| 1);
        });
        assert_eq!(
            w,
            ["Your replication factor 3 for keyspace fid_err_rf3 is higher than the number of nodes 1"]
        );
        let dcs = BTreeMap::from([("dc1".to_string(), 2), ("dc2".to_string(), 1)]);
        let ((), w) = collect(|| {
            replication_factor("k", &Replication::NetworkTopology { dcs }, |dc| {
                usize::from(dc == Some("dc2"))
            })
        });
        assert_eq!(
            w,
            ["Your replication factor 2 for keyspace k is higher than the number of nodes 0 for datacenter dc1"]
        );
        // Nothing gathered outside a request, and nothing leaks into the next one.
        warn("stray");
        let ((), w) = collect(|| ());
        assert!(w.is_empty());
    }
}
