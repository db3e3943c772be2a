//! `tidemark verify --against cql://…` against the simulated Cassandra cluster.
//!
//! A 3-node testbed is written by the `scylla` driver (deterministic statements with
//! their own `USING TIMESTAMP`), snapshotted into a store through `snapshot take`, and
//! a version is cut from it. Verify against the same cluster is equal; after the
//! test changes the cluster with the driver (one UPDATE, one DELETE, one INSERT; a
//! dropped table; a renamed copy), verify names exactly what the test changed. A
//! 1-node testbed with another token layout, written with the same statements, is
//! equal too (with write timestamps compared): bucketing by the target's ring does
//! not depend on the topology the version was taken from.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use serde_json::Value;
use tidemark::store::{Store, StoreOptions};
use tidemark_testbed::{ClusterConfig, CqlCluster};

fn tidemark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn cluster(nodes: usize, third: u8, token_seed: u64) -> CqlCluster {
    CqlCluster::start(ClusterConfig {
        nodes,
        base_addr: Ipv4Addr::new(127, 0, third, 1),
        port: 0,
        token_seed,
        ..ClusterConfig::default()
    })
    .await
    .expect("testbed starts")
}

async fn session(addr: SocketAddr) -> Session {
    tokio::time::timeout(
        Duration::from_secs(60),
        SessionBuilder::new().known_node(addr.to_string()).build(),
    )
    .await
    .expect("connect in time")
    .expect("connect")
}

async fn q(s: &Session, text: &str) {
    s.query_unpaged(text, ())
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"));
}

/// Keyspace `vfy`: `t` (clustering, a static column, a map, a list, a set, TTLs),
/// `c` (counters), `k2` (a composite partition key).
async fn schema(s: &Session, rf: usize) {
    q(s, &format!("CREATE KEYSPACE vfy WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}")).await;
    q(s, "CREATE TABLE vfy.t (pk int, ck int, v text, n int, st text static, m map<text, int>, l list<int>, s set<text>, PRIMARY KEY (pk, ck))").await;
    q(s, "CREATE TABLE vfy.c (k text PRIMARY KEY, hits counter)").await;
    q(
        s,
        "CREATE TABLE vfy.k2 (a int, b text, v text, PRIMARY KEY ((a, b)))",
    )
    .await;
}

/// Rows in `t`, counters in `c`, rows in `k2`.
const T_ROWS: usize = 30 * 3 + 10;
const K2_ROWS: usize = 20;

/// The same statements for every cluster: every write carries its own timestamp.
async fn fill(s: &Session) {
    for pk in 0..30 {
        for ck in 0..3 {
            let ts = 1_700_000_000_000_000i64 + i64::from(pk * 10 + ck);
            let ttl = if pk % 5 == 0 { " AND TTL 100000" } else { "" };
            q(s, &format!(
                "INSERT INTO vfy.t (pk, ck, v, n, m, l, s) VALUES ({pk}, {ck}, 'v-{pk}-{ck}', {n}, {{'a': {pk}, 'b': {ck}}}, [{ck}, {pk}, 7], {{'x{pk}', 'y'}}) USING TIMESTAMP {ts}{ttl}",
                n = pk * ck
            ))
            .await;
        }
        if pk % 3 == 0 {
            // 10 partitions with a static value: each a partition row of its own.
            q(s, &format!("UPDATE vfy.t USING TIMESTAMP 1700000000000999 SET st = 'static-{pk}' WHERE pk = {pk}")).await;
        }
    }
    for k in 0..10 {
        q(
            s,
            &format!(
                "UPDATE vfy.c SET hits = hits + {} WHERE k = 'c{k}'",
                k * 3 + 1
            ),
        )
        .await;
    }
    for a in 0..K2_ROWS {
        q(s, &format!("INSERT INTO vfy.k2 (a, b, v) VALUES ({a}, 'b{}', 'k2-{a}') USING TIMESTAMP 1700000000001000", a % 4)).await;
    }
}

/// Runs `tidemark verify` and returns (exit code, the `--json` report line).
fn verify(store: &Path, against: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![
        "verify",
        "--version",
        "v1",
        "--against",
        against,
        "--store",
        store.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = tidemark(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "verify")
        .unwrap_or_else(|| {
            panic!(
                "no verify line: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (out.status.code().unwrap(), report)
}

/// The differences of a report as (kind, namespace, key).
fn named(report: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["namespace"].as_str().unwrap().to_string(),
                d["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn verify_finds_exactly_what_changed_and_ignores_the_topology() {
    let rt = runtime();
    let a = rt.block_on(cluster(3, 171, 0x7469_6465));
    let a_addr = a.addresses()[0];
    let a_uri = format!("cql://{a_addr}");
    let sa = rt.block_on(async {
        let sa = session(a_addr).await;
        schema(&sa, 3).await;
        fill(&sa).await;
        sa
    });

    // A snapshot through the driver, the store's tidemark after it, a version.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let st = store.to_str().unwrap();
    let take = tidemark(&[
        "snapshot",
        "take",
        "--from",
        &a_uri,
        "--store",
        st,
        "--keyspace",
        "vfy",
        "--json",
    ]);
    assert!(
        take.status.success(),
        "{}",
        String::from_utf8_lossy(&take.stderr)
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    Store::open(&store, &StoreOptions::default())
        .unwrap()
        .set_tidemark(now)
        .unwrap();
    let cut = tidemark(&[
        "version", "create", "--store", st, "--at", "latest", "--name", "v1", "--json",
    ]);
    assert!(
        cut.status.success(),
        "{}",
        String::from_utf8_lossy(&cut.stderr)
    );
    let info: Value = serde_json::from_slice(&cut.stdout).unwrap();
    let rows: u64 = info["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(rows as usize, T_ROWS + 10 + K2_ROWS, "{info}");

    // 1. The same cluster: equal.
    let (code, r) = verify(&store, &a_uri, &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["equal"], true);
    assert_eq!(r["rows"], rows);
    assert_eq!(r["different"], 0);
    assert_eq!(r["ranges_unequal"], 0);
    let a_ranges = r["ranges"].as_u64().unwrap();
    assert_eq!(a_ranges, 3 * (3 * 16 + 1), "3 tables × the ring's ranges");
    // Text output says so too.
    let text = tidemark(&[
        "verify",
        "--version",
        "v1",
        "--against",
        &a_uri,
        "--store",
        st,
    ]);
    assert_eq!(text.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&text.stdout).starts_with("equal: version v1"));

    // 2. One UPDATE, one DELETE, one INSERT in the target: exactly those three.
    rt.block_on(async {
        q(
            &sa,
            "UPDATE vfy.t SET v = 'changed' WHERE pk = 1 AND ck = 1",
        )
        .await;
        q(&sa, "DELETE FROM vfy.t WHERE pk = 2 AND ck = 2").await;
        q(&sa, "INSERT INTO vfy.t (pk, ck, v) VALUES (99, 1, 'new')").await;
    });
    let (code, r) = verify(&store, &a_uri, &[]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["equal"], false);
    assert_eq!(r["different"], 3);
    assert_eq!(
        named(&r),
        [
            (s("different"), s("vfy.t"), s(r#"{"pk":1,"ck":1}"#)),
            (s("extra"), s("vfy.t"), s(r#"{"pk":99,"ck":1}"#)),
            (s("missing"), s("vfy.t"), s(r#"{"pk":2,"ck":2}"#)),
        ]
    );
    let diff = r["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "different")
        .unwrap();
    assert_eq!(
        diff["detail"], r#"v: version "v-1-1", target "changed""#,
        "only v is named, both values as SELECT JSON writes them"
    );
    let missing = r["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "missing")
        .unwrap();
    assert!(
        missing["detail"]
            .as_str()
            .unwrap()
            .contains(r#""v":"v-2-2""#),
        "{missing}"
    );
    // The unchanged tables alone are equal; the changed one alone is not.
    assert_eq!(verify(&store, &a_uri, &["--table", "k2"]).0, 0);
    assert_eq!(
        verify(&store, &a_uri, &["--table", "c", "--keyspace", "vfy"]).0,
        0
    );
    let (code, r) = verify(&store, &a_uri, &["--table", "t"]);
    assert_eq!((code, r["different"].as_u64()), (1, Some(3)));
    // At most --max-differences listed, all counted.
    let (_, r) = verify(&store, &a_uri, &["--max-differences", "1"]);
    assert_eq!(r["different"], 3);
    assert_eq!(r["differences"].as_array().unwrap().len(), 1);

    // 3. --rename: the version's vfy.c against a copy elsewhere (counters by value).
    let (code, r) = verify(
        &store,
        &a_uri,
        &["--table", "c", "--rename", "vfy.c=other.c2"],
    );
    assert_eq!(
        (code, r["different"].as_u64()),
        (1, Some(10)),
        "no such table yet: all missing"
    );
    rt.block_on(async {
        q(&sa, "CREATE KEYSPACE other WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}").await;
        q(&sa, "CREATE TABLE other.c2 (k text PRIMARY KEY, hits counter)").await;
        for k in 0..10 {
            q(&sa, &format!("UPDATE other.c2 SET hits = hits + {} WHERE k = 'c{k}'", k * 3 + 1)).await;
        }
    });
    let (code, r) = verify(
        &store,
        &a_uri,
        &[
            "--table",
            "c",
            "--rename",
            "vfy=other",
            "--rename",
            "vfy.c=other.c2",
        ],
    );
    assert_eq!(code, 0, "{r}");
    rt.block_on(q(&sa, "UPDATE other.c2 SET hits = hits + 1 WHERE k = 'c4'"));
    let (code, r) = verify(
        &store,
        &a_uri,
        &["--table", "c", "--rename", "vfy.c=other.c2"],
    );
    assert_eq!(code, 1);
    assert_eq!(
        named(&r),
        [(s("different"), s("vfy.c"), s(r#"{"k":"c4"}"#))]
    );
    assert_eq!(r["differences"][0]["detail"], "hits: version 13, target 14");

    // 4. A table dropped in the target: its rows are missing (a difference, exit 1).
    rt.block_on(q(&sa, "DROP TABLE vfy.k2"));
    let (code, r) = verify(
        &store,
        &a_uri,
        &["--table", "k2", "--max-differences", "1000"],
    );
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["different"], K2_ROWS as u64);
    let kinds: Vec<&str> = r["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["missing"; K2_ROWS]);

    // 5. Another topology (1 node, other tokens) holding the same rows, written by
    //    the same statements: equal, write timestamps included.
    let b = rt.block_on(cluster(1, 172, 99));
    let b_addr = b.addresses()[0];
    rt.block_on(async {
        let sb = session(b_addr).await;
        schema(&sb, 1).await;
        fill(&sb).await;
    });
    let b_uri = format!("cql://{b_addr}");
    let (code, r) = verify(&store, &b_uri, &["--timestamps"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["rows"], rows);
    assert_ne!(r["ranges"].as_u64().unwrap(), a_ranges, "another ring");
    // Timestamps are compared only when asked: a row rewritten with the same values
    // at another time is equal without --timestamps, different with it.
    rt.block_on(async {
        let sb = session(b_addr).await;
        q(&sb, "UPDATE vfy.k2 USING TIMESTAMP 1700000000002000 SET v = 'k2-3' WHERE a = 3 AND b = 'b3'").await;
    });
    assert_eq!(verify(&store, &b_uri, &[]).0, 0);
    let (code, r) = verify(&store, &b_uri, &["--timestamps"]);
    assert_eq!(code, 1);
    assert_eq!(
        r["differences"][0]["detail"],
        "v: writetime version 1700000000001000, target 1700000000002000"
    );

    // 6. Bad input: one line, exit 2.
    for (args, says) in [
        (vec!["--version", "nope"], "no version \"nope\""),
        (vec!["--against", "cql://127.0.0.1:1"], "cannot connect"),
        (vec!["--table", "absent"], "no table \"absent\""),
    ] {
        let mut all = vec![
            "verify",
            "--version",
            "v1",
            "--against",
            &b_uri,
            "--store",
            st,
        ];
        for pair in args.chunks(2) {
            let at = all.iter().position(|a| *a == pair[0]);
            match at {
                Some(i) => all[i + 1] = pair[1],
                None => all.extend_from_slice(pair),
            }
        }
        let out = tidemark(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    drop(sa);
    a.stop();
    b.stop();
}

/// Rows per second of verify on 100 000 rows in a 3-node testbed (run with
/// `cargo test --release --test verify_cql -- --ignored --nocapture`): prints the
/// rate of an equal verify, of one with 100 differing rows, and of the snapshot
/// take that reads the same rows through the same driver, for scale.
#[test]
#[ignore]
fn verify_rate_on_100k_rows() {
    use futures_util::stream::{self, StreamExt};
    let rt = runtime();
    let a = rt.block_on(cluster(3, 174, 0x7469_6465));
    let addr = a.addresses()[0];
    let uri = format!("cql://{addr}");
    let sa = rt.block_on(async {
        let sa = session(addr).await;
        q(&sa, "CREATE KEYSPACE vb WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}").await;
        q(&sa, "CREATE TABLE vb.b (pk int, ck int, v text, n int, PRIMARY KEY (pk, ck))").await;
        let ins = sa
            .prepare("INSERT INTO vb.b (pk, ck, v, n) VALUES (?, ?, ?, ?)")
            .await
            .unwrap();
        let sa_ref = &sa;
        let ins_ref = &ins;
        stream::iter(0..100_000i32)
            .map(|i| async move {
                sa_ref
                    .execute_unpaged(ins_ref, (i / 10, i % 10, format!("value-{i}"), i))
                    .await
                    .unwrap();
            })
            .buffer_unordered(64)
            .collect::<Vec<()>>()
            .await;
        sa
    });
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let st = store.to_str().unwrap();
    let t = std::time::Instant::now();
    let take = tidemark(&[
        "snapshot",
        "take",
        "--from",
        &uri,
        "--store",
        st,
        "--keyspace",
        "vb",
        "--parallel",
        "4",
    ]);
    assert!(
        take.status.success(),
        "{}",
        String::from_utf8_lossy(&take.stderr)
    );
    let take_s = t.elapsed().as_secs_f64();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    Store::open(&store, &StoreOptions::default())
        .unwrap()
        .set_tidemark(now)
        .unwrap();
    let cut = tidemark(&[
        "version", "create", "--store", st, "--at", "latest", "--name", "v1",
    ]);
    assert!(
        cut.status.success(),
        "{}",
        String::from_utf8_lossy(&cut.stderr)
    );
    let t = std::time::Instant::now();
    let (code, r) = verify(&store, &uri, &["--parallel", "4"]);
    let equal_s = t.elapsed().as_secs_f64();
    assert_eq!((code, r["rows"].as_u64()), (0, Some(100_000)), "{r}");
    rt.block_on(async {
        for i in 0..100 {
            q(
                &sa,
                &format!("UPDATE vb.b SET v = 'x' WHERE pk = {} AND ck = 3", i * 97),
            )
            .await;
        }
    });
    let t = std::time::Instant::now();
    let (code, r2) = verify(&store, &uri, &["--parallel", "4"]);
    let diff_s = t.elapsed().as_secs_f64();
    assert_eq!((code, r2["different"].as_u64()), (1, Some(100)));
    eprintln!(
        "verify-rate: 100000 rows; equal: {:.2} s wall ({:.0} rows/s; report {:.2} s); 100 different in {} of {} ranges: {:.2} s wall ({:.0} rows/s); snapshot take of the same rows: {:.2} s ({:.0} rows/s)",
        equal_s,
        1e5 / equal_s,
        r["seconds"].as_f64().unwrap(),
        r2["ranges_unequal"],
        r2["ranges"],
        diff_s,
        1e5 / diff_s,
        take_s,
        1e5 / take_s
    );
    drop(sa);
    a.stop();
}
