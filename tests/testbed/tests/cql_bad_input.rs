//! Bad input is normal input: every prefix of a set of valid statements, odd
//! literals and hostile values go through the testbed's executor (as a QUERY would)
//! and must come back as a result or an error body, never a panic; the valid
//! statements must still work afterwards.

use bytes::Bytes;
use std::net::Ipv4Addr;
use tidemark_cql::message::ResultBody;
use tidemark_cql::wire::WireValue;
use tidemark_cql::Consistency;
use tidemark_testbed::cql::exec::ctx::{Bound, Ctx};
use tidemark_testbed::cql::exec::dispatch::execute;
use tidemark_testbed::cql::exec::project::Page;
use tidemark_testbed::{ClusterConfig, CqlCluster};

const SCHEMA: &[&str] = &[
    "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
    "CREATE TYPE ks.addr (street text, zip int)",
    "CREATE TABLE ks.t (k int, c timeuuid, s text STATIC, v text, l list<int>, m map<text, int>, a addr, f frozen<addr>, d date, ts timestamp, du duration, dec decimal, vi varint, PRIMARY KEY (k, c))",
    "CREATE TABLE ks.n (k text PRIMARY KEY, hits counter)",
];

const STATEMENTS: &[&str] = &[
    "INSERT INTO ks.t (k, c, s, v, l, m, a, f, d, ts, du, dec, vi) VALUES (1, 50554d6e-29bb-11e5-b345-feff819cdc9f, 's', 'v', [1, 2], {'a': 1}, {street: 'x', zip: 1}, {street: 'y', zip: 2}, '2024-02-29', '2024-01-02 03:04:05.678+0000', 1mo2d3h, -0.5, 123456789012345678901234567890) USING TTL 100 AND TIMESTAMP 10",
    "UPDATE ks.t SET l = l + [3], l = [0] + l, m['b'] = 2, a.zip = 9 WHERE k = 1 AND c = 50554d6e-29bb-11e5-b345-feff819cdc9f",
    "UPDATE ks.t SET l[1] = 5 WHERE k = 1 AND c = 50554d6e-29bb-11e5-b345-feff819cdc9f IF EXISTS",
    "DELETE m['a'], l[0], a.street FROM ks.t WHERE k = 1 AND c = 50554d6e-29bb-11e5-b345-feff819cdc9f IF v = 'v'",
    "DELETE FROM ks.t WHERE k = 1 AND c > 50554d6e-29bb-11e5-b345-feff819cdc9f AND c <= 50554d6e-29bb-11e5-b345-feff819cdc9f",
    "UPDATE ks.n SET hits = hits + 3 WHERE k = 'a'",
    "BEGIN UNLOGGED BATCH INSERT INTO ks.t (k, c) VALUES (2, now()) IF NOT EXISTS; UPDATE ks.t SET s = 'z' WHERE k = 2; APPLY BATCH",
    "INSERT INTO ks.t JSON '{\"k\": 3, \"c\": \"50554d6e-29bb-11e5-b345-feff819cdc9f\", \"l\": [1, \"2\"]}'",
    "INSERT INTO ks.t (k, c, ts, d) VALUES (4, now(), currentTimestamp(), currentDate())",
    "SELECT JSON DISTINCT k, s FROM ks.t WHERE token(k) > -100 AND token(k) <= 100 LIMIT 2",
    "SELECT k, writetime(v), ttl(v), token(k) FROM ks.t WHERE k IN (1, 2) ORDER BY c DESC",
    "ALTER TABLE ks.t ADD extra frozen<map<int, frozen<list<addr>>>>",
    "ALTER TABLE ks.t DROP extra",
    "TRUNCATE ks.n",
];

const ODD: &[&str] = &[
    "INSERT INTO ks.t (k, c, d) VALUES (1, 50554d6e-29bb-11e5-b345-feff819cdc9f, '99999999999999-01-01')",
    "INSERT INTO ks.t (k, c, du) VALUES (1, 50554d6e-29bb-11e5-b345-feff819cdc9f, 99999999999999999999y)",
    "INSERT INTO ks.t (k, c, ts) VALUES (1, 50554d6e-29bb-11e5-b345-feff819cdc9f, '2024-13-45 99:99:99')",
    "INSERT INTO ks.t (k, c, v) VALUES (1, 50554d6e-29bb-11e5-b345-feff819cdc9f, 'x') USING TTL -1",
    "INSERT INTO ks.t (k, c, v) VALUES (1, 50554d6e-29bb-11e5-b345-feff819cdc9f, 'x') USING TIMESTAMP -9223372036854775808",
    "UPDATE ks.t SET l[99999999999] = 1 WHERE k = 1 AND c = 50554d6e-29bb-11e5-b345-feff819cdc9f",
    "UPDATE ks.t SET f.zip = 1 WHERE k = 1 AND c = 50554d6e-29bb-11e5-b345-feff819cdc9f",
    "UPDATE ks.n SET hits = hits + 9223372036854775807 WHERE k = 'a'",
    "UPDATE ks.n SET hits = hits + 9223372036854775807 WHERE k = 'a'",
    "SELECT * FROM ks.t ORDER BY c",
    "SELECT * FROM ks.t WHERE k = ? AND c IN ?",
    "INSERT INTO ks.t JSON '[1, 2]'",
    "INSERT INTO ks.t JSON '{\"k\": 3, \"c\": \"50554d6e-29bb-11e5-b345-feff819cdc9f\", \"l\": [1, \"x\"]}'",
    "INSERT INTO ks.t (k, c, v) VALUES (5, uuid(), 'v')",
    "INSERT INTO ks.t (k, c, v) VALUES (5, now(), toJson(1))",
    "INSERT INTO ks.t JSON '{\"k\": 1, \"c\": \"not-a-uuid\"}'",
    "DROP TYPE ks.addr",
    "CREATE TABLE ks.bad (k vector<int, 0> PRIMARY KEY)",
    "CREATE TABLE ks.bad (k map<map<map<map<map<map<map<map<map<map<map<map<map<map<map<map<map<int, int>, int>, int>, int>, int>, int>, int>, int>, int>, int>, int>, int>, int>, int>, int>, int>, int> PRIMARY KEY)",
];

fn ctx(cluster: &CqlCluster) -> Ctx<'_> {
    Ctx {
        shared: cluster.shared(),
        me: 0,
        keyspace: None,
        consistency: Consistency::Quorum,
        timestamp: None,
        serial: None,
        page: Page {
            size: Some(1),
            state: None,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_never_panics() {
    let cfg = ClusterConfig {
        base_addr: Ipv4Addr::new(127, 0, 23, 1),
        port: 0,
        ..ClusterConfig::default()
    };
    let cluster = CqlCluster::start(cfg).await.expect("start");
    let c = ctx(&cluster);
    let none = Bound::default();
    for s in SCHEMA {
        execute(&c, s, &none).unwrap_or_else(|e| panic!("{s}: {}", e.message));
    }
    for s in STATEMENTS {
        // The whole statement is valid and must work (so its prefixes reach deep).
        if let Err(e) = execute(&c, s, &none) {
            panic!("{s}: {}", e.message);
        }
        for end in (0..=s.len()).filter(|i| s.is_char_boundary(*i)) {
            let _ = execute(&c, &s[..end], &none);
        }
    }
    for s in ODD {
        let _ = execute(&c, s, &none);
    }
    // Hostile bound values: wrong lengths, truncated collections, negative counts.
    let junk = [
        WireValue::Bytes(Bytes::from_static(b"\xff\xff\xff\xff")),
        WireValue::Bytes(Bytes::from_static(b"\x00\x00\x00\x05\x00")),
        WireValue::Bytes(Bytes::from_static(b"")),
        WireValue::Null,
        WireValue::Unset,
    ];
    let bound_stmts = [
        "INSERT INTO ks.t (k, c, l, m, a) VALUES (?, ?, ?, ?, ?)",
        "UPDATE ks.t SET l = l - ?, m = m + ?, a = ? WHERE k = ? AND c = ?",
        "DELETE FROM ks.t WHERE k IN ? AND c = ?",
        "SELECT * FROM ks.t WHERE k IN ? LIMIT ?",
        "UPDATE ks.n SET hits = hits + ? WHERE k = ?",
    ];
    for s in bound_stmts {
        for j in &junk {
            let vals = Bound(vec![j.clone(); 5]);
            let _ = execute(&c, s, &vals);
        }
    }
    // A forged paging state is an error, not a crash.
    let forged = Ctx {
        page: Page {
            size: Some(1),
            state: Some(Bytes::from_static(b"TBPG0123456789abcdef")),
        },
        ..ctx(&cluster)
    };
    assert!(execute(&forged, "SELECT * FROM ks.t", &none).is_err());
    // Still healthy: a write and its read.
    execute(
        &c,
        "INSERT INTO ks.t (k, c, v) VALUES (9, 50554d6e-29bb-11e5-b345-feff819cdc9f, 'ok')",
        &none,
    )
    .expect("insert");
    let r = execute(&c, "SELECT v FROM ks.t WHERE k = 9", &none).expect("select");
    let ResultBody::Rows(rows) = r else {
        panic!("rows expected")
    };
    assert_eq!(rows.metadata.columns.len(), 1);
    cluster.stop();
}
