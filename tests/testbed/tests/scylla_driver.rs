//! The Rust `scylla` driver against a 3-node testbed: it discovers every peer,
//! creates a keyspace with RF 3 and tables, runs INSERT/UPDATE/DELETE (prepared and
//! unprepared) at several consistency levels, and reads back exactly what a model
//! of the workload predicts; the cluster's ground truth must agree too. Further tests:
//! two writes to one cell with the same (server) timestamp, clock skew, and a slow
//! replica's WriteTimeout as the driver decodes it.

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::statement::unprepared::Statement;
use scylla::statement::Consistency;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;
use tidemark_testbed::cql::Fault;
use tidemark_testbed::{ClusterConfig, CqlCluster};

async fn testbed(base: Ipv4Addr) -> (CqlCluster, Session) {
    let cluster = CqlCluster::start(ClusterConfig {
        base_addr: base,
        port: 0,
        write_timeout: Duration::from_millis(500),
        ..ClusterConfig::default()
    })
    .await
    .expect("start cluster");
    let session = tokio::time::timeout(
        Duration::from_secs(60),
        SessionBuilder::new()
            .known_node(cluster.addresses()[0].to_string())
            .build(),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    (cluster, session)
}

fn stmt(text: &str, cl: Consistency) -> Statement {
    let mut s = Statement::new(text);
    s.set_consistency(cl);
    s
}

type Model = BTreeMap<(i32, i32), (Option<String>, Option<i64>)>;

async fn read_all(session: &Session, cl: Consistency) -> Model {
    let rows = session
        .query_unpaged(stmt("SELECT k, c, v, n FROM ks.t", cl), ())
        .await
        .expect("select all")
        .into_rows_result()
        .expect("rows");
    rows.rows::<(i32, i32, Option<String>, Option<i64>)>()
        .expect("typed rows")
        .map(|r| {
            let (k, c, v, n) = r.expect("row");
            ((k, c), (v, n))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_workload_reads_back_what_it_wrote() {
    let (cluster, session) = testbed(Ipv4Addr::new(127, 0, 21, 1)).await;
    let mut peers: Vec<String> = session
        .get_cluster_state()
        .get_nodes_info()
        .iter()
        .map(|n| n.address.ip().to_string())
        .collect();
    peers.sort();
    assert_eq!(peers, ["127.0.21.1", "127.0.21.2", "127.0.21.3"]);

    session
        .query_unpaged(
            "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            (),
        )
        .await
        .expect("create keyspace");
    session
        .query_unpaged(
            "CREATE TABLE ks.t (k int, c int, v text, n bigint, PRIMARY KEY (k, c))",
            (),
        )
        .await
        .expect("create table");
    session
        .query_unpaged("CREATE TABLE ks.kv (id text PRIMARY KEY, b blob)", ())
        .await
        .expect("create table kv");

    let levels = [
        Consistency::One,
        Consistency::Two,
        Consistency::Quorum,
        Consistency::All,
        Consistency::LocalQuorum,
        Consistency::LocalOne,
    ];
    let mut model = Model::new();
    let mut insert = session
        .prepare("INSERT INTO ks.t (k, c, v, n) VALUES (?, ?, ?, ?)")
        .await
        .expect("prepare insert");
    for k in 0..30i32 {
        let cl = levels[k as usize % levels.len()];
        for c in 0..3i32 {
            let v = format!("v{k}.{c}");
            let n = i64::from(k) * 100 + i64::from(c);
            if c == 2 {
                // Unprepared, literal values.
                let q = format!("INSERT INTO ks.t (k, c, v, n) VALUES ({k}, {c}, '{v}', {n})");
                session
                    .query_unpaged(stmt(&q, cl), ())
                    .await
                    .expect("insert");
            } else {
                insert.set_consistency(cl);
                session
                    .execute_unpaged(&insert, (k, c, v.as_str(), n))
                    .await
                    .expect("execute insert");
            }
            model.insert((k, c), (Some(v), Some(n)));
        }
    }
    // UPDATE: prepared and unprepared-with-values (the driver prepares those itself).
    let mut update = session
        .prepare("UPDATE ks.t SET v = ? WHERE k = ? AND c = ?")
        .await
        .expect("prepare update");
    for k in (0..30i32).step_by(3) {
        update.set_consistency(levels[k as usize % levels.len()]);
        session
            .execute_unpaged(&update, ("updated", k, 0i32))
            .await
            .expect("update");
        model.get_mut(&(k, 0)).expect("row").0 = Some("updated".into());
        session
            .query_unpaged(
                stmt(
                    "UPDATE ks.t SET n = ? WHERE k = ? AND c = ?",
                    Consistency::Quorum,
                ),
                (-1i64, k, 1i32),
            )
            .await
            .expect("update with values");
        model.get_mut(&(k, 1)).expect("row").1 = Some(-1);
    }
    // DELETE: a column, a row, a whole partition.
    for k in (1..30i32).step_by(5) {
        session
            .query_unpaged(
                stmt(
                    &format!("DELETE v FROM ks.t WHERE k = {k} AND c = 2"),
                    Consistency::All,
                ),
                (),
            )
            .await
            .expect("delete column");
        model.get_mut(&(k, 2)).expect("row").0 = None;
        let mut del = stmt(
            "DELETE FROM ks.t WHERE k = ? AND c = ?",
            Consistency::Quorum,
        );
        del.set_consistency(Consistency::Quorum);
        session
            .query_unpaged(del, (k + 1, 0i32))
            .await
            .expect("delete row");
        model.remove(&(k + 1, 0));
    }
    session
        .query_unpaged(stmt("DELETE FROM ks.t WHERE k = 29", Consistency::Two), ())
        .await
        .expect("delete partition");
    model.retain(|(k, _), _| *k != 29);
    // Blobs through a second table.
    let put = session
        .prepare("INSERT INTO ks.kv (id, b) VALUES (?, ?)")
        .await
        .expect("prepare kv");
    for i in 0..10u8 {
        session
            .execute_unpaged(&put, (format!("id{i}"), vec![i, 0xff, i]))
            .await
            .expect("insert kv");
    }

    for cl in [Consistency::One, Consistency::Quorum, Consistency::All] {
        assert_eq!(read_all(&session, cl).await, model, "full scan at {cl:?}");
    }
    let mut select = session
        .prepare("SELECT c, v, n FROM ks.t WHERE k = ?")
        .await
        .expect("prepare select");
    select.set_consistency(Consistency::Quorum);
    for k in 0..30i32 {
        let got: Vec<(i32, Option<String>, Option<i64>)> = session
            .execute_unpaged(&select, (k,))
            .await
            .expect("select")
            .into_rows_result()
            .expect("rows")
            .rows()
            .expect("typed")
            .map(|r| r.expect("row"))
            .collect();
        let want: Vec<_> = model
            .range((k, i32::MIN)..=(k, i32::MAX))
            .map(|((_, c), (v, n))| (*c, v.clone(), *n))
            .collect();
        assert_eq!(got, want, "partition {k}");
    }
    let blob: (Vec<u8>,) = session
        .query_unpaged("SELECT b FROM ks.kv WHERE id = 'id7'", ())
        .await
        .expect("select kv")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("one row");
    assert_eq!(blob.0, vec![7, 0xff, 7]);
    // Ground truth agrees with the driver's view: live `v` cells of ks.t.
    let live_v = cluster
        .logical_state()
        .iter()
        .filter(|c| c.table == "t" && c.column == "v")
        .count();
    assert_eq!(live_v, model.values().filter(|(v, _)| v.is_some()).count());
    cluster.stop();
}

/// Two writes to one cell with the same timestamp: Cassandra keeps the greater
/// value (`Cells.reconcile`), on every replica, whichever write came last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_timestamp_writes_and_clock_skew() {
    let (cluster, session) = testbed(Ipv4Addr::new(127, 0, 22, 1)).await;
    session
        .query_unpaged(
            "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            (),
        )
        .await
        .expect("create keyspace");
    session
        .query_unpaged("CREATE TABLE ks.c (k int PRIMARY KEY, v text)", ())
        .await
        .expect("create table");
    const FIXED: i64 = 1_700_000_000_000_000;
    for node in 0..3 {
        cluster
            .set_clock(node, 0, Some(FIXED))
            .expect("fixed clock");
    }
    for v in ["zebra", "apple"] {
        session
            .query_unpaged(
                stmt(
                    &format!("INSERT INTO ks.c (k, v) VALUES (1, '{v}')"),
                    Consistency::All,
                ),
                (),
            )
            .await
            .expect("insert");
    }
    let (v, wt): (String, i64) = session
        .query_unpaged(
            stmt(
                "SELECT v, WRITETIME(v) FROM ks.c WHERE k = 1",
                Consistency::All,
            ),
            (),
        )
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("row");
    assert_eq!((v.as_str(), wt), ("zebra", FIXED));
    for node in 0..3 {
        let cells: Vec<_> = cluster
            .replica_dump(node)
            .into_iter()
            .filter(|c| c.table == "c" && c.column == "v")
            .collect();
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].cell.timestamp, FIXED);
        assert_eq!(&cells[0].cell.value[..], b"zebra");
    }
    // An hour of skew on every node shows in server-side timestamps.
    const HOUR: i64 = 3_600_000_000;
    for node in 0..3 {
        cluster.set_clock(node, HOUR, None).expect("skew");
    }
    let before = tidemark_testbed::cql::storage::clock::now_micros();
    session
        .query_unpaged(
            stmt(
                "INSERT INTO ks.c (k, v) VALUES (2, 'later')",
                Consistency::All,
            ),
            (),
        )
        .await
        .expect("insert skewed");
    let (wt,): (i64,) = session
        .query_unpaged("SELECT WRITETIME(v) FROM ks.c WHERE k = 2", ())
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("row");
    assert!(wt >= before + HOUR, "skewed timestamp {wt} vs now {before}");
    cluster.stop();
}

/// A slow replica through the Rust driver: QUORUM succeeds, ALL gets WriteTimeout
/// with received 2 / required 3 and the write is on the two healthy replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_sees_write_timeout_from_a_slow_replica() {
    let (cluster, session) = testbed(Ipv4Addr::new(127, 0, 23, 1)).await;
    session
        .query_unpaged(
            "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            (),
        )
        .await
        .expect("create keyspace");
    session
        .query_unpaged("CREATE TABLE ks.s (k int PRIMARY KEY, v int)", ())
        .await
        .expect("create table");
    cluster
        .set_fault(
            2,
            Fault {
                delay_ms: 60_000,
                ..Fault::default()
            },
        )
        .expect("slow");
    session
        .query_unpaged(
            stmt("INSERT INTO ks.s (k, v) VALUES (1, 1)", Consistency::Quorum),
            (),
        )
        .await
        .expect("QUORUM with one slow replica");
    let err = session
        .query_unpaged(
            stmt("INSERT INTO ks.s (k, v) VALUES (2, 2)", Consistency::All),
            (),
        )
        .await
        .expect_err("ALL with one slow replica");
    match err {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::WriteTimeout {
                consistency,
                received,
                required,
                ..
            },
            _,
        )) => {
            assert_eq!(consistency, Consistency::All);
            assert_eq!((received, required), (2, 3));
        }
        other => panic!("expected WriteTimeout, got {other:?}"),
    }
    let has_key2 = |node: usize| {
        cluster
            .replica_dump(node)
            .iter()
            .any(|c| c.table == "s" && c.column == "v" && c.cell.value[..] == [0, 0, 0, 2])
    };
    assert!(has_key2(0) && has_key2(1));
    assert!(
        !has_key2(2),
        "the slow replica applies only after its delay"
    );
    assert!(cluster.hints_pending() >= 2, "timed-out replica hinted");
    // Healing the replica delivers its hints: all three equal.
    cluster.set_fault(2, Fault::default()).expect("heal");
    assert!(has_key2(2));
    assert_eq!(cluster.hints_pending(), 0);
    // Lost mutations: the replica never gets the write until its hint arrives.
    cluster
        .set_fault(
            2,
            Fault {
                drop_writes: true,
                ..Fault::default()
            },
        )
        .expect("drop writes");
    let err = session
        .query_unpaged(
            stmt("INSERT INTO ks.s (k, v) VALUES (3, 3)", Consistency::All),
            (),
        )
        .await
        .expect_err("ALL with lost mutations");
    assert!(
        matches!(
            err,
            ExecutionError::LastAttemptError(RequestAttemptError::DbError(
                DbError::WriteTimeout {
                    received: 2,
                    required: 3,
                    ..
                },
                _
            ))
        ),
        "{err:?}"
    );
    let has_key3 = |node: usize| {
        cluster
            .replica_dump(node)
            .iter()
            .any(|c| c.table == "s" && c.column == "v" && c.cell.value[..] == [0, 0, 0, 3])
    };
    assert!(has_key3(0) && has_key3(1) && !has_key3(2));
    cluster.set_fault(2, Fault::default()).expect("heal");
    assert!(has_key3(2), "hint delivered on heal");
    cluster.stop();
}

/// The Rust driver follows membership changes through TOPOLOGY_CHANGE events and
/// `system.peers`: a bootstrapped fourth node appears in its cluster state, data is
/// readable at QUORUM on the new ring; after a decommission the node disappears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_follows_added_and_removed_nodes() {
    let (cluster, session) = testbed(Ipv4Addr::new(127, 0, 25, 1)).await;
    session
        .query_unpaged(
            "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            (),
        )
        .await
        .expect("create keyspace");
    session
        .query_unpaged("CREATE TABLE ks.m (k int PRIMARY KEY, v int)", ())
        .await
        .expect("create table");
    let insert = session
        .prepare(stmt(
            "INSERT INTO ks.m (k, v) VALUES (?, ?)",
            Consistency::Quorum,
        ))
        .await
        .expect("prepare");
    for k in 0..100i32 {
        session
            .execute_unpaged(&insert, (k, k * 7))
            .await
            .expect("insert");
    }
    let node_count = |session: &Session| session.get_cluster_state().get_nodes_info().len();
    let wait_nodes = |want: usize| {
        let session = &session;
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while node_count(session) != want {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "driver still sees {} nodes, want {want}",
                    node_count(session)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let added = cluster.add_node().await.expect("add node");
    assert_eq!(added, 3);
    wait_nodes(4).await;
    let streamed = cluster
        .replica_dump(added)
        .iter()
        .filter(|c| c.table == "m" && c.column == "v")
        .count();
    assert!(streamed > 0, "nothing streamed to the new node");
    let mut select = session
        .prepare("SELECT v FROM ks.m WHERE k = ?")
        .await
        .expect("prepare select");
    select.set_consistency(Consistency::Quorum);
    let read_all = || async {
        for k in 0..100i32 {
            let (v,): (i32,) = session
                .execute_unpaged(&select, (k,))
                .await
                .expect("select")
                .into_rows_result()
                .expect("rows")
                .single_row()
                .expect("row");
            assert_eq!(v, k * 7, "key {k}");
        }
    };
    read_all().await;
    cluster.remove_node(1).await.expect("remove node 1");
    wait_nodes(3).await;
    read_all().await;
    cluster.stop();
}
