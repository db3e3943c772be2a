//! Helpers of the restore tests: a source testbed with a workload of every cell kind
//! restore must carry (timestamps, TTLs, collection elements, a user type, statics,
//! counters, a list, a row that exists by its key alone), a store with a version of
//! it cut through the real binary (`snapshot take`, `version create`), and the
//! ground truth of any cluster keyed so source and target compare.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::statement::unprepared::Statement;
use scylla::statement::Consistency;
use tidemark_testbed::{ClusterConfig, CqlCluster};

/// The source keyspace.
pub const KS: &str = "rsrc";
/// Rows of `rsrc.t` the workload writes (partitions × rows each).
pub const PARTITIONS: i32 = 40;
pub const ROWS_EACH: i32 = 5;

/// A testbed of `nodes` nodes on 127.0.`third`.1.. (ephemeral port).
pub async fn testbed(
    nodes: usize,
    third: u8,
    seed: u64,
    credentials: Option<(&str, &str)>,
) -> CqlCluster {
    CqlCluster::start(ClusterConfig {
        nodes,
        base_addr: Ipv4Addr::new(127, 0, third, 1),
        port: 0,
        spare_nodes: 0,
        token_seed: seed,
        credentials: credentials.map(|(u, p)| (u.to_string(), p.to_string())),
        ..Default::default()
    })
    .await
    .expect("testbed starts")
}

/// A driver session with client-side timestamps (the write timestamp is then the
/// driver's, as with the Java and Python drivers).
pub async fn session(addr: SocketAddr) -> Session {
    tokio::time::timeout(
        Duration::from_secs(60),
        SessionBuilder::new()
            .known_node(addr.to_string())
            .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
            .build(),
    )
    .await
    .expect("connect in time")
    .expect("driver connects")
}

pub async fn q(s: &Session, cql: &str) {
    let mut st = Statement::new(cql);
    st.set_consistency(Consistency::Quorum);
    s.query_unpaged(st, ())
        .await
        .unwrap_or_else(|e| panic!("{cql}: {e}"));
}

/// The tables of the workload (the target tests create them ahead with `rf`).
pub async fn schema(s: &Session, ks: &str, rf: usize) {
    q(s, &format!("CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}")).await;
    q(
        s,
        &format!("CREATE TYPE IF NOT EXISTS {ks}.addr (street text, zip int)"),
    )
    .await;
    q(s, &format!("CREATE TABLE IF NOT EXISTS {ks}.t (pk int, ck int, v text, n int, m map<text, int>, s set<int>, f frozen<list<int>>, PRIMARY KEY (pk, ck))")).await;
    q(s, &format!("CREATE TABLE IF NOT EXISTS {ks}.st (pk int, ck int, s text static, v int, PRIMARY KEY (pk, ck))")).await;
    q(
        s,
        &format!("CREATE TABLE IF NOT EXISTS {ks}.u (pk int PRIMARY KEY, a addr)"),
    )
    .await;
    q(
        s,
        &format!("CREATE TABLE IF NOT EXISTS {ks}.c (pk int PRIMARY KEY, hits counter)"),
    )
    .await;
    q(
        s,
        &format!("CREATE TABLE IF NOT EXISTS {ks}.l (pk int PRIMARY KEY, l list<text>)"),
    )
    .await;
}

/// The workload: explicit timestamps (some older, so the version holds old cells),
/// TTLs of an hour, map and set elements written apart, UDT fields, statics,
/// counters incremented several times, one list, one key-only row.
pub async fn workload(s: &Session) {
    schema(s, KS, 3).await;
    for pk in 0..PARTITIONS {
        for ck in 0..ROWS_EACH {
            let ts = 1_000_000 + i64::from(pk * 100 + ck);
            let ttl = if ck == 1 { " AND TTL 3600" } else { "" };
            q(s, &format!("INSERT INTO {KS}.t (pk, ck, v, n, f) VALUES ({pk}, {ck}, 'v{pk}-{ck}', {}, [1, {ck}]) USING TIMESTAMP {ts}{ttl}", pk * ck)).await;
        }
        q(s, &format!("UPDATE {KS}.t USING TIMESTAMP {} SET m['a'] = {pk}, s = s + {{{pk}}} WHERE pk = {pk} AND ck = 0", 2_000_000 + i64::from(pk))).await;
        q(s, &format!("UPDATE {KS}.t USING TIMESTAMP {} AND TTL 7200 SET m['b'] = 7 WHERE pk = {pk} AND ck = 0", 3_000_000 + i64::from(pk))).await;
        // an overwrite that loses (older timestamp) and one that wins
        q(
            s,
            &format!("UPDATE {KS}.t USING TIMESTAMP 10 SET v = 'lost' WHERE pk = {pk} AND ck = 2"),
        )
        .await;
        q(
            s,
            &format!("UPDATE {KS}.t SET v = 'won' WHERE pk = {pk} AND ck = 3"),
        )
        .await;
    }
    q(
        s,
        &format!("INSERT INTO {KS}.t (pk, ck) VALUES (100, 0) USING TIMESTAMP 5000000"),
    )
    .await;
    for pk in 0..5 {
        q(
            s,
            &format!("INSERT INTO {KS}.st (pk, ck, s, v) VALUES ({pk}, 0, 'static-{pk}', 1)"),
        )
        .await;
        q(
            s,
            &format!("INSERT INTO {KS}.st (pk, ck, v) VALUES ({pk}, 1, 2) USING TTL 3600"),
        )
        .await;
        q(s, &format!("UPDATE {KS}.u USING TIMESTAMP 4000000 SET a.street = 'street {pk}' WHERE pk = {pk}")).await;
        q(
            s,
            &format!("UPDATE {KS}.u SET a.zip = {} WHERE pk = {pk}", 1000 + pk),
        )
        .await;
        for _ in 0..=pk {
            q(
                s,
                &format!("UPDATE {KS}.c SET hits = hits + {} WHERE pk = {pk}", pk + 1),
            )
            .await;
        }
        q(
            s,
            &format!("UPDATE {KS}.c SET hits = hits - 1 WHERE pk = {pk}"),
        )
        .await;
    }
    q(
        s,
        &format!("INSERT INTO {KS}.l (pk, l) VALUES (1, ['x', 'y', 'z'])"),
    )
    .await;
}

/// Runs the tidemark binary.
pub fn tidemark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("tidemark runs")
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Takes a snapshot of `from` into `store` and cuts version `v1` of it.
pub fn version_of(from: &str, store: &Path) {
    let s = store.to_str().unwrap();
    ok(
        &tidemark(&["snapshot", "take", "--from", from, "--store", s, "--json"]),
        "snapshot take",
    );
    // No tap ran: the store's tidemark (how far its log is complete) is set to now,
    // after the snapshot's reads ended, as a tap that saw no writes would have left
    // it; the version is then the snapshot joined with an empty log.
    {
        let st = tidemark::store::Store::open(store, &tidemark::store::StoreOptions::default())
            .expect("open the store");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        st.set_tidemark(now).expect("set the tidemark");
    }
    let out = tidemark(&[
        "version", "create", "--store", s, "--name", "v1", "--at", "latest", "--json",
    ]);
    ok(&out, "version create");
}

/// `restore --version v1 --store STORE --to TO --json EXTRA…`.
pub fn restore(store: &Path, to: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "restore",
        "--version",
        "v1",
        "--store",
        store.to_str().unwrap(),
        "--to",
        to,
        "--json",
    ];
    args.extend_from_slice(extra);
    tidemark(&args)
}

/// The restore's final JSON report (the last stdout line).
pub fn report(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("{}");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// (table, partition key hex, clustering hex, column) → (value hex, timestamp, ttl).
pub type Cells = BTreeMap<(String, String, String, String), (String, i64, i32)>;

/// The testbed's ground truth of keyspace `ks`, tables not in `except`.
pub fn truth(cluster: &CqlCluster, ks: &str, except: &[&str]) -> Cells {
    cluster
        .logical_state()
        .into_iter()
        .filter(|c| c.keyspace == ks && !except.contains(&c.table.as_str()))
        .map(|c| {
            (
                (
                    c.table,
                    c.partition_key.join(":"),
                    c.clustering.join(":"),
                    c.column,
                ),
                (c.value, c.timestamp, c.ttl),
            )
        })
        .collect()
}

/// Every counter of `ks.c` as the driver reads it at QUORUM.
pub async fn counters(s: &Session, ks: &str) -> BTreeMap<i32, i64> {
    let mut st = Statement::new(format!("SELECT pk, hits FROM {ks}.c"));
    st.set_consistency(Consistency::Quorum);
    let rows = s
        .query_unpaged(st, ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    rows.rows::<(i32, scylla::value::Counter)>()
        .unwrap()
        .map(|r| {
            let (k, c) = r.unwrap();
            (k, c.0)
        })
        .collect()
}

/// `ks.l`'s lists as the driver reads them at QUORUM.
pub async fn lists(s: &Session, ks: &str) -> BTreeMap<i32, Vec<String>> {
    let mut st = Statement::new(format!("SELECT pk, l FROM {ks}.l"));
    st.set_consistency(Consistency::Quorum);
    let rows = s
        .query_unpaged(st, ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    rows.rows::<(i32, Option<Vec<String>>)>()
        .unwrap()
        .map(|r| {
            let (k, l) = r.unwrap();
            (k, l.unwrap_or_default())
        })
        .collect()
}

/// Source and target cells equal: same cells, values and write timestamps; an
/// expiring cell still expiring in the target, with no more TTL than it had.
pub fn assert_restored(source: &Cells, target: &Cells) {
    let keys = |c: &Cells| c.keys().cloned().collect::<Vec<_>>();
    let missing: Vec<_> = keys(source)
        .into_iter()
        .filter(|k| !target.contains_key(k))
        .collect();
    let extra: Vec<_> = keys(target)
        .into_iter()
        .filter(|k| !source.contains_key(k))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
    for (k, (v, ts, ttl)) in source {
        let (tv, tts, tttl) = &target[k];
        assert_eq!((v, ts), (tv, tts), "{k:?}");
        if *ttl > 0 {
            assert!(*tttl > 0 && tttl <= ttl, "{k:?}: ttl {tttl} of {ttl}");
        } else {
            assert_eq!(*tttl, 0, "{k:?} has a TTL in the target");
        }
    }
}

/// Rows of `query` at QUORUM, keyed by their key columns' rendering.
pub async fn read_at_quorum(
    s: &Session,
    query: &str,
) -> BTreeMap<String, Vec<Option<scylla::value::CqlValue>>> {
    let mut st = Statement::new(query);
    st.set_consistency(Consistency::Quorum);
    st.set_page_size(1000);
    let mut out = BTreeMap::new();
    let mut pager = s
        .query_iter(st, ())
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .rows_stream::<scylla::value::Row>()
        .unwrap();
    use futures_util::StreamExt;
    while let Some(row) = pager.next().await {
        let row = row.unwrap();
        let keys = if query.contains(", ck,") { 2 } else { 1 };
        out.insert(format!("{:?}", &row.columns[..keys]), row.columns);
    }
    out
}
