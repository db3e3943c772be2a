//! The CQL testbed side of the snapshot tests: a cluster, a driver session, the
//! `shop` workload, and the testbed's ground truth keyed like the snapshot's cells.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use tidemark_testbed::cql::cluster::state::Shared;
use tidemark_testbed::cql::server::cluster::logical_state;
use tidemark_testbed::{ClusterConfig, CqlCluster};

use super::{hex, CellKey};

/// A 3-node cluster on its own loopback addresses (tests run in parallel).
pub async fn cluster(third: u8, credentials: Option<(&str, &str)>) -> CqlCluster {
    CqlCluster::start(ClusterConfig {
        nodes: 3,
        base_addr: Ipv4Addr::new(127, 0, third, 1),
        port: 0,
        spare_nodes: 0,
        credentials: credentials.map(|(u, p)| (u.to_string(), p.to_string())),
        ..Default::default()
    })
    .await
    .expect("testbed starts")
}

pub async fn session(addr: SocketAddr, credentials: Option<(&str, &str)>) -> Session {
    let mut b = SessionBuilder::new().known_node(addr.to_string());
    if let Some((u, p)) = credentials {
        b = b.user(u, p);
    }
    b.build().await.expect("driver connects")
}

pub async fn q(s: &Session, text: &str) {
    s.query_unpaged(text, ())
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"));
}

/// Keyspace `shop` at RF 3: `orders` (clustering, a static column, a frozen set,
/// TTLs, explicit timestamps), `cnt` (a counter), `kv` (text key).
pub async fn schema(s: &Session) {
    q(s, "CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}").await;
    q(s, "CREATE TABLE shop.orders (id int, line int, item text, qty int, note text static, tags frozen<set<text>>, PRIMARY KEY (id, line))").await;
    q(s, "CREATE TABLE shop.cnt (k int PRIMARY KEY, n counter)").await;
    q(s, "CREATE TABLE shop.kv (k text PRIMARY KEY, v text)").await;
}

pub async fn fill(s: &Session, n: i32) {
    for id in 0..n {
        for line in 0..3 {
            let text = format!(
                "INSERT INTO shop.orders (id, line, item, qty, tags) VALUES ({id}, {line}, 'item-{id}', {line}, {{'a', 'b{id}'}}) USING TIMESTAMP {}",
                1_000_000 + i64::from(id * 10 + line)
            );
            q(s, &text).await;
        }
        if id % 2 == 0 {
            q(
                s,
                &format!("UPDATE shop.orders USING TTL 3600 SET note = 'n{id}' WHERE id = {id}"),
            )
            .await;
        }
        if id % 5 == 0 {
            q(
                s,
                &format!(
                    "UPDATE shop.orders USING TTL 7200 SET qty = 99 WHERE id = {id} AND line = 1"
                ),
            )
            .await;
        }
        q(
            s,
            &format!("UPDATE shop.cnt SET n = n + {} WHERE k = {id}", id + 1),
        )
        .await;
        q(
            s,
            &format!("INSERT INTO shop.kv (k, v) VALUES ('k{id}', 'v{id}')"),
        )
        .await;
    }
    // A partition holding only its static cell.
    q(s, "UPDATE shop.orders SET note = 'lonely' WHERE id = 1000").await;
}

pub fn pk_columns() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        ("orders", vec!["id"]),
        ("cnt", vec!["k"]),
        ("kv", vec!["k"]),
    ])
}

/// The testbed's live cells of keyspace `shop`: key → (value hex, timestamp, ttl).
pub fn truth(shared: &Shared) -> BTreeMap<CellKey, (String, i64, i32)> {
    logical_state(shared)
        .into_iter()
        .filter(|c| c.keyspace == "shop")
        .map(|c| {
            (
                (
                    c.table,
                    c.partition_key.concat(),
                    c.clustering.concat(),
                    c.column,
                ),
                (c.value, c.timestamp, c.ttl),
            )
        })
        .filter(|(k, _)| !k.3.is_empty())
        .collect()
}

/// Every truth cell is in the snapshot with the same value and write timestamp, a
/// TTL that is the truth's minus at most the test's run time, and nothing else is.
/// Counters (no WRITETIME in CQL) are compared by total only.
pub fn assert_cells_equal(
    snap: &BTreeMap<CellKey, tidemark::store::Cell>,
    truth: &BTreeMap<CellKey, (String, i64, i32)>,
) {
    let snap_keys: Vec<_> = snap.keys().collect();
    let truth_keys: Vec<_> = truth.keys().collect();
    assert_eq!(snap_keys, truth_keys, "the same cells");
    for (k, (value, ts, ttl)) in truth {
        let c = &snap[k];
        assert_eq!(&hex(&c.value), value, "value of {k:?}");
        if k.0 == "cnt" {
            assert_eq!(c.kind, tidemark::store::CellKind::CounterShard);
            continue;
        }
        assert_eq!(c.timestamp, *ts, "WRITETIME of {k:?}");
        match c.ttl {
            None => assert_eq!(*ttl, 0, "{k:?} has a TTL in the testbed"),
            Some(left) => {
                assert!(*ttl > 0, "{k:?} has no TTL in the testbed");
                assert!(
                    left as i32 <= *ttl && left as i32 >= *ttl - 120,
                    "TTL of {k:?}: {left} vs {ttl}"
                );
                assert_eq!(c.kind, tidemark::store::CellKind::Expiring);
                assert!(c.local_deletion_time.is_some());
            }
        }
    }
}
