//! The CQL testbed held against a real Apache Cassandra 5.0.9 node (issue #12, testbed
//! fidelity): the same statements go to one real node (`scripts/cassandra.sh start 1`)
//! and to a one-node testbed, through the same raw client (`realdb_support/cql_raw.py`,
//! protocol v4, and v5 for METADATA_CHANGED; it builds and parses the frames itself),
//! and what a driver or tidemark can observe is compared step by step:
//! `system.local`/`peers_v2` columns, RESULT metadata flags and column specs, prepared
//! metadata, error codes and bodies, warnings, `WRITETIME`/`TTL`, paging and
//! SCHEMA_CHANGE events.
//!
//! The reference is the real node. Every difference found must be in [`KNOWN`]
//! (`fidelity_support/known.rs`), and [`KNOWN`] must equal the list in the testbed
//! README, so a new difference fails the test and a fixed one has to be taken off the
//! list.

mod fidelity_support;
mod realdb_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use fidelity_support::known::KNOWN;
use fidelity_support::{ttl_rounded, Diffs};
use realdb_support::{python, root, server, workload};
use serde_json::{json, Value};
use tidemark_testbed::{ClusterConfig, CqlCluster};

static NODE: OnceLock<Result<String, String>> = OnceLock::new();
static TESTBED: OnceLock<SocketAddr> = OnceLock::new();

/// The real node's address, started once for this binary (`None`: skip, not under CI).
fn node() -> Option<String> {
    server(&NODE, "cassandra.sh", &["1"]).map(|hosts| hosts.split(',').next().unwrap().into())
}

/// A one-node testbed on its own loopback address and an ephemeral port (the real node
/// has 127.0.0.1:9042). It runs on a thread of its own until the process exits.
fn testbed() -> SocketAddr {
    *TESTBED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let cluster = CqlCluster::start(ClusterConfig {
                    nodes: 1,
                    base_addr: Ipv4Addr::new(127, 0, 91, 1),
                    port: 0,
                    spare_nodes: 0,
                    ..Default::default()
                })
                .await
                .expect("testbed starts");
                tx.send(cluster.addresses()[0]).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("testbed address")
    })
}

/// Runs `steps` against the real node and the testbed; (real answers, testbed answers)
/// by step name.
fn both(steps: &[Value]) -> Option<(BTreeMap<String, Value>, BTreeMap<String, Value>)> {
    both_in(steps, 4)
}

/// [`both`] in native protocol `version` (4 or 5).
fn both_in(
    steps: &[Value],
    version: u8,
) -> Option<(BTreeMap<String, Value>, BTreeMap<String, Value>)> {
    let host = node()?;
    let tb = testbed();
    let input = Value::Array(steps.to_vec()).to_string();
    let by_name = |lines: Vec<Value>| -> BTreeMap<String, Value> {
        lines
            .into_iter()
            .map(|l| (l["step"].as_str().unwrap().to_string(), l))
            .collect()
    };
    let version = version.to_string();
    let real = by_name(python(
        &workload("cql_raw.py"),
        &[&host, "9042", &version],
        &input,
    ));
    let ours = by_name(python(
        &workload("cql_raw.py"),
        &[&tb.ip().to_string(), &tb.port().to_string(), &version],
        &input,
    ));
    assert_eq!(real.len(), steps.len(), "the real node answered every step");
    assert_eq!(ours.len(), steps.len(), "the testbed answered every step");
    Some((real, ours))
}

fn query(name: &str, cql: &str) -> Value {
    json!({"name": name, "op": "query", "cql": cql})
}

/// Setup steps (`setup:` names) run on both but are not compared: their answers depend
/// on what an earlier run left on a reused node.
fn setup(ks: &str) -> Vec<Value> {
    vec![
        query("setup:drop", &format!("DROP KEYSPACE IF EXISTS {ks}")),
        json!({"name": "setup:events", "op": "events"}),
        query(
            "setup:create",
            &format!(
                "CREATE KEYSPACE {ks} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
        ),
    ]
}

/// `system.local`, `system.peers_v2` and `system.peers`: column names and types and
/// the metadata flags (values such as host ids and tokens are the node's own).
#[test]
fn system_tables_have_cassandras_columns() {
    let steps = [
        query("system.local", "SELECT * FROM system.local"),
        query("system.peers_v2", "SELECT * FROM system.peers_v2"),
        query("system.peers", "SELECT * FROM system.peers"),
        // What drivers read for their schema metadata (columns only: the rows are
        // each server's own keyspaces).
        query(
            "system_schema.keyspaces",
            "SELECT * FROM system_schema.keyspaces WHERE keyspace_name = 'system_schema'",
        ),
        query(
            "system_schema.tables",
            "SELECT * FROM system_schema.tables WHERE keyspace_name = 'fid_none'",
        ),
        query(
            "system_schema.columns",
            "SELECT * FROM system_schema.columns WHERE keyspace_name = 'fid_none'",
        ),
        query(
            "system_schema.types",
            "SELECT * FROM system_schema.types WHERE keyspace_name = 'fid_none'",
        ),
        query(
            "system_schema.indexes",
            "SELECT * FROM system_schema.indexes WHERE keyspace_name = 'fid_none'",
        ),
        query(
            "system_schema.views",
            "SELECT * FROM system_schema.views WHERE keyspace_name = 'fid_none'",
        ),
        query(
            "system.local by key",
            "SELECT key, cluster_name, partitioner FROM system.local WHERE key = 'local'",
        ),
    ];
    let Some((real, ours)) = both(&steps) else {
        return;
    };
    // The reference is sound: the real node answered with its columns and its row.
    let names: Vec<&Value> = real["system.local"]["meta"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert!(names.contains(&&json!("host_id")), "{names:?}");
    assert_eq!(
        real["system.local"]["rows"].as_array().map(Vec::len),
        Some(1)
    );
    let mut d = Diffs::new("system_tables");
    for (name, r) in &real {
        let o = &ours[name];
        d.check(
            &format!("{name} flags"),
            &r["meta"]["flags"],
            &o["meta"]["flags"],
        );
        let cols = |v: &Value| -> Value {
            json!(v["meta"]["columns"].as_array().map(|c| c
                .iter()
                .map(|c| format!("{}.{} {} {}", c["ks"], c["table"], c["name"], c["type"]))
                .collect::<Vec<_>>()))
        };
        let (rc, oc) = (cols(r), cols(o));
        if rc != oc {
            // Missing and extra columns are one entry each, named in the detail.
            let set = |v: &Value| -> BTreeSet<String> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect()
            };
            let (rs, os) = (set(&rc), set(&oc));
            let missing: Vec<&String> = rs.difference(&os).collect();
            let extra: Vec<&String> = os.difference(&rs).collect();
            if !missing.is_empty() {
                d.check(
                    &format!("{name} columns missing"),
                    &json!(missing),
                    &json!([]),
                );
            }
            if !extra.is_empty() {
                d.check(&format!("{name} columns extra"), &json!([]), &json!(extra));
            }
            if rs == os {
                d.check(&format!("{name} column order"), &rc, &oc);
            }
        }
        d.check(
            &format!("{name} row count"),
            &json!(r["rows"].as_array().map(Vec::len)),
            &json!(o["rows"].as_array().map(Vec::len)),
        );
    }
    // The one local row names the same partitioner.
    d.check(
        "system.local partitioner",
        &real["system.local by key"]["rows"][0][2],
        &ours["system.local by key"]["rows"][0][2],
    );
    d.finish();
}

/// RESULT metadata of SELECTs over every column type (flags, keyspace, table, name,
/// type of each column, and the cell bytes), DDL and USE results, and prepared
/// metadata (pk indexes, bind specs, result metadata).
#[test]
fn result_metadata_matches() {
    let ks = "fid_meta";
    let mut steps = setup(ks);
    steps.extend([
        query("use", &format!("USE {ks}")),
        query(
            "create type",
            &format!("CREATE TYPE {ks}.addr (street text, no int)"),
        ),
        query(
            "create table all_types",
            &format!(
                "CREATE TABLE {ks}.all_types (k int PRIMARY KEY, a ascii, b bigint, bl blob, \
                 bo boolean, d decimal, db double, f float, i inet, n int, ts timestamp, \
                 u uuid, t text, vi varint, tu timeuuid, dt date, tm time, si smallint, \
                 ti tinyint, l list<int>, s set<text>, m map<text, int>, \
                 fl frozen<list<int>>, tp tuple<int, text>, ud frozen<addr>, un addr)"
            ),
        ),
        query(
            "create table compound",
            &format!(
                "CREATE TABLE {ks}.compound (a int, b text, c int, s int static, v text, \
                 PRIMARY KEY ((b, a), c)) WITH CLUSTERING ORDER BY (c DESC)"
            ),
        ),
        query(
            "create table counters",
            &format!("CREATE TABLE {ks}.counters (k int PRIMARY KEY, c counter)"),
        ),
        query(
            "insert all_types",
            &format!(
                "INSERT INTO {ks}.all_types (k, a, b, bl, bo, d, db, f, i, n, ts, u, t, vi, \
                 tu, dt, tm, si, ti, l, s, m, fl, tp, ud, un) VALUES (1, 'asc', \
                 -9000000000, 0xcafe, true, 12.345, 1.5, 2.25, '10.1.2.3', 42, \
                 '2024-03-01 12:34:56.789+0000', 3f2d9bb0-8b6a-4b8e-9d1e-6c0c5b1c2a11, \
                 'héllo', 123456789012345678901234567890, \
                 d2177dd0-eaa2-11de-a572-001b779c76e3, '2024-03-01', '12:34:56.123456789', \
                 -7, 7, [3, 1, 2], {{'b', 'a'}}, {{'x': 1, 'y': 2}}, [9, 8], \
                 (5, 'five'), {{street: 'Main', no: 7}}, {{street: 'Side', no: 8}}) \
                 USING TIMESTAMP 1000"
            ),
        ),
        // duration and vector apart: their type options are where v4 and 5.0 differ.
        query(
            "create table odd_types",
            &format!("CREATE TABLE {ks}.odd_types (k int PRIMARY KEY, du duration, v vector<float, 3>)"),
        ),
        query(
            "insert duration",
            &format!("INSERT INTO {ks}.odd_types (k, du) VALUES (1, 1mo2d3h4m)"),
        ),
        query(
            "insert vector",
            &format!("INSERT INTO {ks}.odd_types (k, v) VALUES (2, [1.0, 2.5, -3.0])"),
        ),
        query("select duration", &format!("SELECT k, du FROM {ks}.odd_types WHERE k = 1")),
        query("select vector", &format!("SELECT k, v FROM {ks}.odd_types WHERE k = 2")),
        query(
            "insert compound",
            &format!(
                "INSERT INTO {ks}.compound (a, b, c, s, v) VALUES (1, 'x', 2, 3, 'v') \
                 USING TIMESTAMP 1000"
            ),
        ),
        query(
            "update counter",
            &format!("UPDATE {ks}.counters SET c = c + 5 WHERE k = 1"),
        ),
        query("select all_types *", &format!("SELECT * FROM {ks}.all_types")),
        query(
            "select all_types some",
            &format!("SELECT t, k, m FROM {ks}.all_types WHERE k = 1"),
        ),
        query("select compound *", &format!("SELECT * FROM {ks}.compound")),
        query("select counters *", &format!("SELECT * FROM {ks}.counters")),
        query(
            "select count",
            &format!("SELECT COUNT(*) FROM {ks}.all_types"),
        ),
        query("select empty", &format!("SELECT * FROM {ks}.all_types WHERE k = 99")),
        query("select unqualified (USE)", "SELECT k, n FROM all_types"),
        query(
            "select json",
            &format!("SELECT JSON k, l, m FROM {ks}.all_types"),
        ),
        query(
            "select system_schema.columns",
            &format!(
                "SELECT * FROM system_schema.columns WHERE keyspace_name = '{ks}' \
                 AND table_name = 'compound'"
            ),
        ),
        json!({"name": "prepare insert", "op": "prepare",
               "cql": format!("INSERT INTO {ks}.all_types (k, t, l) VALUES (?, ?, ?)")}),
        json!({"name": "prepare select pk", "op": "prepare",
               "cql": format!("SELECT * FROM {ks}.all_types WHERE k = ?")}),
        json!({"name": "prepare compound", "op": "prepare",
               "cql": format!("SELECT v, s FROM {ks}.compound WHERE a = ? AND b = ? AND c = ?")}),
        json!({"name": "prepare named update", "op": "prepare",
               "cql": format!("UPDATE {ks}.compound SET v = :val WHERE b = :bb AND a = :aa AND c = 1")}),
        json!({"name": "execute insert", "op": "execute", "prepared": "prepare insert",
               "values": ["00000002", "74", "0000000100000004000000ff"], "timestamp": 2000}),
        json!({"name": "execute select pk", "op": "execute", "prepared": "prepare select pk",
               "values": ["00000002"]}),
        json!({"name": "execute compound", "op": "execute", "prepared": "prepare compound",
               "values": ["00000001", "78", "00000002"]}),
        json!({"name": "execute skip metadata", "op": "execute", "prepared": "prepare compound",
               "values": ["00000001", "78", "00000002"], "skip_metadata": true}),
    ]);
    let Some((real, ours)) = both(&steps) else {
        return;
    };
    // The reference is sound: the real node stored and returned the row of every type,
    // and the compound key's pk indexes are in partition-key order (b, a).
    assert_eq!(real["select all_types *"]["meta"]["column_count"], 26);
    assert_eq!(
        real["select all_types *"]["rows"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(real["prepare compound"]["pk_indexes"], json!([1, 0]));
    let mut d = Diffs::new("result_metadata");
    d.all(&real, &ours);
    d.finish();
}

/// Error codes and the fields of their bodies (messages compared apart), and LWT
/// answers that were not applied.
#[test]
fn errors_match() {
    let ks = "fid_err";
    let mut steps = setup(ks);
    steps.extend([
        query(
            "create table",
            &format!("CREATE TABLE {ks}.t (k int, c int, v text, n int, PRIMARY KEY (k, c))"),
        ),
        query("syntax error", "SELEC * FROM x"),
        query("unknown table", &format!("SELECT * FROM {ks}.nope")),
        query("unknown keyspace", "SELECT * FROM fid_no_such_ks.t"),
        query("unknown column", &format!("SELECT nope FROM {ks}.t")),
        query(
            "invalid literal",
            &format!("INSERT INTO {ks}.t (k, c, n) VALUES (1, 1, 'text')"),
        ),
        query(
            "missing clustering key",
            &format!("INSERT INTO {ks}.t (k, v) VALUES (1, 'x')"),
        ),
        query(
            "keyspace exists",
            &format!(
                "CREATE KEYSPACE {ks} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
        ),
        query(
            "table exists",
            &format!("CREATE TABLE {ks}.t (k int PRIMARY KEY)"),
        ),
        json!({"name": "prepare insert", "op": "prepare",
               "cql": format!("INSERT INTO {ks}.t (k, c, v) VALUES (?, ?, ?)")}),
        json!({"name": "wrong bind count", "op": "execute", "prepared": "prepare insert",
               "values": ["00000009", "00000009"]}),
        json!({"name": "invalid bound value", "op": "execute", "prepared": "prepare insert",
               "values": ["0009", "00000009", "78"]}),
        json!({"name": "query values without markers", "op": "query",
               "cql": format!("SELECT * FROM {ks}.t"), "values": ["00000001"]}),
        json!({"name": "unprepared", "op": "execute", "id": "0123456789abcdef0123456789abcdef",
               "values": []}),
        query(
            "lwt insert applied",
            &format!("INSERT INTO {ks}.t (k, c, v, n) VALUES (1, 1, 'a', 5) IF NOT EXISTS"),
        ),
        query(
            "lwt insert not applied",
            &format!("INSERT INTO {ks}.t (k, c, v, n) VALUES (1, 1, 'b', 6) IF NOT EXISTS"),
        ),
        query(
            "lwt update not applied",
            &format!("UPDATE {ks}.t SET v = 'c' WHERE k = 1 AND c = 1 IF v = 'zz' AND n = 5"),
        ),
        query(
            "lwt update applied",
            &format!("UPDATE {ks}.t SET v = 'c' WHERE k = 1 AND c = 1 IF v = 'a'"),
        ),
        query(
            "lwt delete if exists not applied",
            &format!("DELETE FROM {ks}.t WHERE k = 2 AND c = 2 IF EXISTS"),
        ),
        query(
            "lwt with using timestamp",
            &format!(
                "UPDATE {ks}.t USING TIMESTAMP 5 SET v = 'd' WHERE k = 1 AND c = 1 IF v = 'c'"
            ),
        ),
        query("use unknown keyspace", "USE fid_no_such_ks"),
        query(
            "create keyspace rf 3",
            "CREATE KEYSPACE IF NOT EXISTS fid_err_rf3 WITH replication = \
             {'class': 'SimpleStrategy', 'replication_factor': 3}",
        ),
        query(
            "create table rf 3",
            "CREATE TABLE IF NOT EXISTS fid_err_rf3.t (k int PRIMARY KEY, v int)",
        ),
        // One node of RF 3: QUORUM needs 2, ALL 3 (CL codes 0x0004, 0x0005).
        json!({"name": "unavailable quorum write", "op": "query", "consistency": 4,
               "cql": "INSERT INTO fid_err_rf3.t (k, v) VALUES (1, 1)"}),
        json!({"name": "unavailable all read", "op": "query", "consistency": 5,
               "cql": "SELECT * FROM fid_err_rf3.t WHERE k = 1"}),
        json!({"name": "unavailable serial lwt", "op": "query",
               "cql": "INSERT INTO fid_err_rf3.t (k, v) VALUES (1, 1) IF NOT EXISTS"}),
        query("drop keyspace rf 3", "DROP KEYSPACE fid_err_rf3"),
        query(
            "counter on non-counter column",
            &format!("UPDATE {ks}.t SET n = n + 1 WHERE k = 1 AND c = 1"),
        ),
    ]);
    let Some((real, ours)) = both(&steps) else {
        return;
    };
    // The reference is sound: the real node refused what it should, with the codes of
    // the protocol spec (SyntaxError 0x2000, Invalid 0x2200, Unprepared 0x2500,
    // Unavailable 0x1000), and did not apply the second IF NOT EXISTS.
    assert_eq!(real["syntax error"]["code"], 0x2000);
    assert_eq!(real["unknown table"]["code"], 0x2200);
    assert_eq!(real["unprepared"]["code"], 0x2500);
    assert_eq!(real["unavailable quorum write"]["code"], 0x1000);
    assert_eq!(real["lwt insert not applied"]["rows"][0][0], "00");
    let mut d = Diffs::new("errors");
    d.all(&real, &ours);
    d.finish();
}

/// `WRITETIME`/`TTL` of regular, static and collection columns (per element) and of
/// frozen collections, with client timestamps so the values are the same on both.
#[test]
fn writetime_and_ttl_match() {
    let ks = "fid_wt";
    let mut steps = setup(ks);
    steps.extend([
        query(
            "create table",
            &format!(
                "CREATE TABLE {ks}.t (k int, c int, s int static, v int, l list<int>, \
                 m map<text, int>, st set<int>, fr frozen<list<int>>, PRIMARY KEY (k, c))"
            ),
        ),
        query(
            "insert",
            &format!(
                "INSERT INTO {ks}.t (k, c, s, v, l, m, st, fr) VALUES (1, 1, 10, 20, [1, 2], \
                 {{'a': 1}}, {{7}}, [4]) USING TIMESTAMP 1000 AND TTL 100000"
            ),
        ),
        query(
            "append",
            &format!(
                "UPDATE {ks}.t USING TIMESTAMP 2000 AND TTL 50000 SET l = l + [3], \
                 m['b'] = 2, st = st + {{8}} WHERE k = 1 AND c = 1"
            ),
        ),
        query(
            "static later",
            &format!("UPDATE {ks}.t USING TIMESTAMP 3000 SET s = 11 WHERE k = 1"),
        ),
        query(
            "writetime regular and static",
            &format!("SELECT WRITETIME(v), WRITETIME(s), TTL(v), TTL(s) FROM {ks}.t"),
        ),
        query(
            "writetime collections",
            &format!("SELECT WRITETIME(l), WRITETIME(m), WRITETIME(st), WRITETIME(fr) FROM {ks}.t"),
        ),
        query(
            "ttl collections",
            &format!("SELECT TTL(l), TTL(fr) FROM {ks}.t"),
        ),
        query(
            "writetime of a key column",
            &format!("SELECT WRITETIME(c) FROM {ks}.t"),
        ),
        query(
            "writetime with alias",
            &format!("SELECT WRITETIME(v) AS wv, k FROM {ks}.t"),
        ),
    ]);
    let Some((real, ours)) = both(&steps) else {
        return;
    };
    // The reference is sound: WRITETIME(v) is the insert's 1000, WRITETIME(s) the
    // later static update's 3000 (big-endian bigints).
    let wt = &real["writetime regular and static"]["rows"][0];
    assert_eq!(wt[0], "00000000000003e8");
    assert_eq!(wt[1], "0000000000000bb8");
    let mut d = Diffs::new("writetime_ttl");
    for (name, r) in real.iter().filter(|(n, _)| !n.starts_with("setup:")) {
        d.step(name, &ttl_rounded(r), &ttl_rounded(&ours[name]));
    }
    d.finish();
}

/// Paging: page sizes, `has_more_pages`, each paging state replayed gives the next
/// rows, and all pages give the same rows in the same (token) order on both.
#[test]
fn paging_matches() {
    let ks = "fid_page";
    let mut steps = setup(ks);
    steps.push(query(
        "create table",
        &format!("CREATE TABLE {ks}.p (k int, c int, v int, PRIMARY KEY (k, c))"),
    ));
    for k in 0..10 {
        for c in 0..3 {
            steps.push(query(
                &format!("setup:insert {k} {c}"),
                &format!(
                    "INSERT INTO {ks}.p (k, c, v) VALUES ({k}, {c}, {}) USING TIMESTAMP 1",
                    k * 10 + c
                ),
            ));
        }
    }
    // Whole table by 7 and by 10 (30 rows: does the last full page say more pages?),
    // one partition by 2, and a prepared statement by 4.
    let pages = |steps: &mut Vec<Value>, prefix: &str, first: Value, n: usize| {
        let mut prev = format!("{prefix} page 1");
        let mut f = first;
        f["name"] = json!(prev.clone());
        steps.push(f.clone());
        for p in 2..=n {
            let name = format!("{prefix} page {p}");
            let mut next = f.clone();
            next["name"] = json!(name.clone());
            next["paging_from"] = json!(prev);
            steps.push(next);
            prev = name;
        }
    };
    pages(
        &mut steps,
        "scan by 7",
        json!({"op": "query", "cql": format!("SELECT * FROM {ks}.p"), "page_size": 7}),
        6,
    );
    pages(
        &mut steps,
        "scan by 10",
        json!({"op": "query", "cql": format!("SELECT * FROM {ks}.p"), "page_size": 10}),
        4,
    );
    pages(
        &mut steps,
        "partition by 2",
        json!({"op": "query", "cql": format!("SELECT c, v FROM {ks}.p WHERE k = 3"), "page_size": 2}),
        3,
    );
    pages(
        &mut steps,
        "limit 5 by 2",
        json!({"op": "query", "cql": format!("SELECT k, c FROM {ks}.p LIMIT 5"), "page_size": 2}),
        4,
    );
    steps.push(json!({"name": "prepare scan", "op": "prepare",
                      "cql": format!("SELECT k, c, v FROM {ks}.p WHERE token(k) > ?")}));
    pages(
        &mut steps,
        "prepared by 4",
        json!({"op": "execute", "prepared": "prepare scan", "page_size": 4,
               "values": ["8000000000000000"]}),
        9,
    );
    let Some((real, ours)) = both(&steps) else {
        return;
    };
    // The paged scan gives the 30 rows on the real node (the reference is sound).
    let scanned: usize = (1..=6)
        .filter_map(|p| real[&format!("scan by 7 page {p}")]["rows"].as_array())
        .map(Vec::len)
        .sum();
    assert_eq!(scanned, 30, "the real node pages through all 30 rows");
    let mut d = Diffs::new("paging");
    d.all(&real, &ours);
    d.finish();
}

/// SCHEMA_CHANGE results and the events a REGISTERed connection receives for CREATE,
/// ALTER and DROP of a keyspace, table and type (this keyspace's events only: the
/// other tests change schemas on the same servers at the same time).
#[test]
fn schema_change_events_match() {
    let ks = "fid_ev";
    let mut steps = setup(ks);
    let ddl = [
        ("create keyspace", String::new()),
        ("create type", format!("CREATE TYPE {ks}.pt (x int)")),
        ("create table", format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, p frozen<pt>)")),
        ("alter table add", format!("ALTER TABLE {ks}.t ADD v text")),
        ("alter table with", format!("ALTER TABLE {ks}.t WITH default_time_to_live = 10")),
        ("alter table drop", format!("ALTER TABLE {ks}.t DROP v")),
        ("alter type add", format!("ALTER TYPE {ks}.pt ADD y int")),
        ("alter keyspace", format!("ALTER KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 2}}")),
        ("drop table", format!("DROP TABLE {ks}.t")),
        ("drop type", format!("DROP TYPE {ks}.pt")),
        ("create table 2", format!("CREATE TABLE {ks}.t2 (k int PRIMARY KEY)")),
        ("drop keyspace", format!("DROP KEYSPACE {ks}")),
    ];
    for (name, cql) in &ddl {
        if !cql.is_empty() {
            steps.push(query(name, cql));
        }
        steps.push(json!({"name": format!("{name} events"), "op": "events"}));
    }
    let Some((real, ours)) = both(&steps) else {
        return;
    };
    let mine = |v: &Value| -> Value {
        json!(v["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["keyspace"] == ks)
            .collect::<Vec<_>>())
    };
    // The reference is sound: the real node announced the keyspace's creation.
    assert_eq!(
        mine(&real["create keyspace events"])[0]["change"],
        "CREATED",
        "the real node sends SCHEMA_CHANGE events"
    );
    let mut d = Diffs::new("schema_events");
    for (name, r) in real.iter().filter(|(n, _)| !n.starts_with("setup:")) {
        if name.ends_with(" events") {
            d.check(name, &mine(r), &mine(&ours[name]));
        } else {
            d.step(name, r, &ours[name]);
        }
    }
    d.finish();
}

/// [`KNOWN`] is the README's list: the section "Held against Cassandra 5.0.9
/// (differential test)" of tests/testbed/README.md has one table row per known
/// difference whose first two cells are the test and the step, in backticks.
#[test]
fn known_differences_are_the_readmes() {
    let readme = std::fs::read_to_string(root().join("tests/testbed/README.md")).unwrap();
    let section = readme
        .split("## Held against Cassandra 5.0.9 (differential test)")
        .nth(1)
        .expect("the README has the differential test's section");
    let section = section.split("\n## ").next().unwrap();
    let listed: Vec<(String, String)> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_string(),
                cells[2].trim_matches('`').to_string(),
            )
        })
        .collect();
    let known: Vec<(String, String)> = KNOWN
        .iter()
        .map(|k| (k.0.to_string(), k.1.to_string()))
        .collect();
    assert_eq!(listed, known, "README list and KNOWN differ");
}

/// Protocol v5 (segments after READY): RESULT metadata of a query and of EXECUTE, the
/// prepared result metadata id, skip_metadata, and METADATA_CHANGED with the new id
/// after the table gained a column since the PREPARE.
#[test]
fn v5_metadata_changed_matches() {
    let ks = "fid_v5";
    let mut steps = setup(ks);
    steps.extend([
        query(
            "create table",
            &format!("CREATE TABLE {ks}.t (k int PRIMARY KEY, a int)"),
        ),
        query(
            "insert",
            &format!("INSERT INTO {ks}.t (k, a) VALUES (1, 2)"),
        ),
        query("select", &format!("SELECT * FROM {ks}.t")),
        json!({"name": "prepare", "op": "prepare",
               "cql": format!("SELECT * FROM {ks}.t WHERE k = ?")}),
        json!({"name": "execute", "op": "execute", "prepared": "prepare",
               "values": ["00000001"]}),
        json!({"name": "execute skip metadata", "op": "execute", "prepared": "prepare",
               "values": ["00000001"], "skip_metadata": true}),
        // 5.0 forgets the table's prepared statements when it changes: the client
        // prepares again and executes with the result metadata id it held before.
        query("alter table", &format!("ALTER TABLE {ks}.t ADD b text")),
        json!({"name": "execute after alter", "op": "execute", "prepared": "prepare",
               "values": ["00000001"], "skip_metadata": true}),
        json!({"name": "prepare again", "op": "prepare",
               "cql": format!("SELECT * FROM {ks}.t WHERE k = ?")}),
        json!({"name": "execute with old metadata id", "op": "execute",
               "prepared": "prepare again", "metadata_from": "prepare",
               "values": ["00000001"], "skip_metadata": true}),
    ]);
    let Some((real, ours)) = both_in(&steps, 5) else {
        return;
    };
    // The reference is sound: the real node says METADATA_CHANGED (0x0008) with the
    // new columns after the ALTER.
    let after = &real["execute with old metadata id"]["meta"];
    assert_eq!(after["flags"].as_i64().unwrap() & 0x0008, 0x0008, "{after}");
    assert_eq!(after["column_count"], 3);
    let mut d = Diffs::new("v5");
    d.all(&real, &ours);
    d.finish();
}
