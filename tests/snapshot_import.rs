//! `tidemark snapshot import --node-dump`: node-local copies of CQL tables, one per
//! replica, deduplicated by the reconcile rules.
//!
//! - A real Cassandra 5.0.9 `sstabledump` (captures/sstabledump/) imports to what
//!   the Python driver read back from that node (values, write times, TTL).
//! - A 5-node testbed at RF 3, written through the scylla driver, every node's
//!   dump imported: the snapshot's rows equal `logical_state()` (values,
//!   timestamps, TTLs), the dedup ratio is ≈ 3; a replica that lost writes (and
//!   later got them by hints) reconciles to the newest cells; `version create` on
//!   the store equals the truth.
//! - Bad input exits 2 and writes nothing.

mod ready_support;
mod require;
mod snapshot_support;
mod store_support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use snapshot_support::{hex, read, snapshot_cells, tidemark, CellKey};
use tidemark::snapshot::RowData;
use tidemark::store::{Store, StoreOptions};
use tidemark::version::model::VersionRow;
use tidemark::version::stored;
use tidemark_testbed::cql::Fault;
use tidemark_testbed::{ClusterConfig, CqlCluster};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/captures/sstabledump/cassandra509_imp_t.json"
);

const IMP_SCHEMA: &str = "CREATE KEYSPACE imp WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};\n\
CREATE TABLE imp.t (k int, c text, v text, n bigint, tags set<text>, PRIMARY KEY (k, c));\n";

async fn import(store: &Path, args: &[&str]) -> std::process::Output {
    let mut a = vec!["snapshot", "import", "--store", store.to_str().unwrap()];
    a.extend_from_slice(args);
    tidemark(&a).await
}

async fn show_json(store: &Path, id: u64) -> serde_json::Value {
    let out = tidemark(&[
        "snapshot",
        "show",
        &id.to_string(),
        "--store",
        store.to_str().unwrap(),
        "--json",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (key, column) → (value hex, timestamp, ttl) of a snapshot's rows.
fn cells_of(
    rows: &[tidemark::snapshot::SnapshotRow],
) -> BTreeMap<(String, String), (String, i64, Option<u32>)> {
    let mut out = BTreeMap::new();
    for r in rows {
        let RowData::Cql { cells, .. } = &r.data else {
            panic!("a CQL row")
        };
        for c in cells {
            let col = match &c.path {
                Some(p) => format!("{}[{}]", c.column, hex(p)),
                None => c.column.to_string(),
            };
            out.insert((r.key.clone(), col), (hex(&c.value), c.timestamp, c.ttl));
        }
    }
    out
}

#[tokio::test]
async fn a_real_cassandra_sstabledump_imports_to_what_the_driver_read() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.cql");
    std::fs::write(&schema, IMP_SCHEMA).unwrap();
    let store = dir.path().join("store");
    let out = import(
        &store,
        &[
            "--node-dump",
            FIXTURE,
            "--schema",
            schema.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --json: a progress line per file read, then the summary.
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["type"], "progress");
    assert_eq!(lines[0]["files_done"], 1);
    assert_eq!(lines[1]["type"], "summary");
    assert_eq!(lines[1]["rows"], 3);
    let (infos, rows) = read(&store, 1);
    assert_eq!(infos.len(), 1);
    assert!(infos[0].finished.is_some());
    // What the Python driver read from the node (captures/sstabledump/README.md):
    // (1,'a') v=null n=10 tags={'x','y'}; (1,'b') v='two' n=20 TTL 86400;
    // (2,'a') v='three'; (3,'a') row-deleted and partition 4 deleted: absent.
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            r#"{"k":1,"c":"a"}"#,
            r#"{"k":1,"c":"b"}"#,
            r#"{"k":2,"c":"a"}"#
        ]
    );
    let got = cells_of(&rows);
    let k = |key: &str, col: &str| (key.to_string(), col.to_string());
    let want = BTreeMap::from([
        (
            k(r#"{"k":1,"c":"a"}"#, "n"),
            (hex(&10i64.to_be_bytes()), 1_700_000_000_000_001, None),
        ),
        (
            k(r#"{"k":1,"c":"a"}"#, "tags[78]"),
            (String::new(), 1_700_000_000_000_001, None),
        ),
        (
            k(r#"{"k":1,"c":"a"}"#, "tags[79]"),
            (String::new(), 1_700_000_000_000_001, None),
        ),
        (
            k(r#"{"k":1,"c":"b"}"#, "n"),
            (
                hex(&20i64.to_be_bytes()),
                1_700_000_000_000_002,
                Some(86_400),
            ),
        ),
        (
            k(r#"{"k":1,"c":"b"}"#, "v"),
            (hex(b"two"), 1_700_000_000_000_002, Some(86_400)),
        ),
        (
            k(r#"{"k":2,"c":"a"}"#, "v"),
            (hex(b"three"), 1_700_000_000_000_003, None),
        ),
    ]);
    assert_eq!(got, want);
    // The same node's file three times over: three copies of every cell, one kept.
    let store3 = dir.path().join("store3");
    let out = import(
        &store3,
        &[
            "--schema",
            schema.to_str().unwrap(),
            "--node-dump",
            FIXTURE,
            FIXTURE,
            FIXTURE,
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, rows3) = read(&store3, 1);
    assert_eq!(cells_of(&rows3), want);
    let shown = show_json(&store3, 1).await;
    assert_eq!(shown["import"]["dedup_ratio"], 3.0, "{shown}");
    assert_eq!(
        shown["import"]["input_bytes"].as_u64().unwrap(),
        3 * shown["import"]["logical_bytes"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn a_real_dump_with_a_list_statics_and_a_range_tombstone_imports_to_what_the_driver_read() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.cql");
    std::fs::write(
        &schema,
        "CREATE TABLE imp.l (k int, c int, s text static, l list<int>, v text, PRIMARY KEY (k, c));",
    )
    .unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/captures/sstabledump/cassandra509_imp_l.json"
    );
    let store = dir.path().join("store");
    let out = import(
        &store,
        &["--node-dump", fixture, "--schema", schema.to_str().unwrap()],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, rows) = read(&store, 1);
    // What the driver read back (captures/sstabledump/README.md).
    let mut keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            r#"{"k":1,"c":1}"#,
            r#"{"k":1,"c":2}"#,
            r#"{"k":1,"c":5}"#,
            // Static cells live in a row keyed by the partition key alone, as `snapshot
            // take` stores them and the log keys a static write.
            r#"{"k":1}"#,
            r#"{"k":2}"#
        ]
    );
    let got = cells_of(&rows);
    let k = |key: &str, col: &str| (key.to_string(), col.to_string());
    let int = |i: i32| hex(&i.to_be_bytes());
    let t = |n: i64| 1_700_000_000_000_000 + n;
    let want = BTreeMap::from([
        (k(r#"{"k":1,"c":1}"#, "v"), (hex(b"a"), t(10), None)),
        // l = [5, 10, 20, 30], by position; written at …12 (prepend), …10, …10, …11.
        (k(r#"{"k":1,"c":1}"#, "l[00000000]"), (int(5), t(12), None)),
        (k(r#"{"k":1,"c":1}"#, "l[00000001]"), (int(10), t(10), None)),
        (k(r#"{"k":1,"c":1}"#, "l[00000002]"), (int(20), t(10), None)),
        (k(r#"{"k":1,"c":1}"#, "l[00000003]"), (int(30), t(11), None)),
        (k(r#"{"k":1,"c":2}"#, "v"), (hex(b"r2"), t(13), None)),
        (k(r#"{"k":1,"c":5}"#, "v"), (hex(b"r5"), t(13), None)),
    ]);
    assert_eq!(got, want);
    let mut statics: Vec<(String, String, i64)> = rows
        .iter()
        .flat_map(|r| {
            let RowData::Cql { static_cells, .. } = &r.data else {
                panic!("a CQL row")
            };
            static_cells
                .iter()
                .map(|c| (r.key.clone(), hex(&c.value), c.timestamp))
                .collect::<Vec<_>>()
        })
        .collect();
    statics.sort();
    assert_eq!(
        statics,
        [
            (r#"{"k":1}"#.to_string(), hex(b"st"), t(10)),
            (r#"{"k":2}"#.to_string(), hex(b"only static"), t(15)),
        ]
    );

    // Both tables in one import, each file named by its table; a bare file is
    // ambiguous with two tables in the schema and refused.
    let both = dir.path().join("both.cql");
    std::fs::write(&both, format!("{IMP_SCHEMA}CREATE TABLE imp.l (k int, c int, s text static, l list<int>, v text, PRIMARY KEY (k, c));")).unwrap();
    let t_arg = format!("imp.t={FIXTURE}");
    let l_arg = format!("imp.l={fixture}");
    let store2 = dir.path().join("store2");
    let out = import(
        &store2,
        &[
            "--schema",
            both.to_str().unwrap(),
            "--node-dump",
            &t_arg,
            &l_arg,
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (infos, _) = read(&store2, 1);
    let ns: Vec<(&str, u64)> = infos[0]
        .namespaces
        .iter()
        .map(|n| (n.name.as_str(), n.rows))
        .collect();
    // imp.l: three rows and the partition row of the static cells, and the
    // static-only partition.
    assert_eq!(ns, [("imp.t", 3), ("imp.l", 5)]);
    let out = import(
        &dir.path().join("store3"),
        &["--schema", both.to_str().unwrap(), "--node-dump", fixture],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--table"));
}

#[tokio::test]
async fn without_schema_or_snapshot_the_tables_come_from_the_logs_create_table() {
    let (_tmp, dir) = store_support::store_dir();
    {
        let store = Store::create(&dir, &StoreOptions::for_tests()).unwrap();
        let mut m = store_support::cql("imp.t", "{}", 1_000, 0);
        m.op = tidemark::store::WriteOp::Ddl;
        m.ddl = Some(tidemark::store::DdlChange {
            op: "create_table".into(),
            cql: Some("CREATE TABLE imp.t (k int, c text, v text, n bigint, tags set<text>, PRIMARY KEY (k, c))".into()),
        });
        store.append_batch(&[m]).unwrap();
    }
    // Without a table named, the log cannot be searched: refused.
    let out = import(&dir, &["--node-dump", FIXTURE]).await;
    assert_eq!(out.status.code(), Some(2));
    let out = import(&dir, &["--node-dump", FIXTURE, "--table", "imp.t"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (infos, rows) = read(&dir, 1);
    assert_eq!(
        infos[0].namespaces[0].schema,
        "CREATE TABLE imp.t (k int, c text, n bigint, tags set<text>, v text, PRIMARY KEY ((k), c));"
    );
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            r#"{"k":1,"c":"a"}"#,
            r#"{"k":1,"c":"b"}"#,
            r#"{"k":2,"c":"a"}"#
        ]
    );
}

#[tokio::test]
async fn bad_input_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.cql");
    std::fs::write(&schema, IMP_SCHEMA).unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, b"{\"partition\": [1, 2").unwrap();
    let wrong = dir.path().join("wrong.json");
    std::fs::write(
        &wrong,
        br#"[{"partition": {"key": ["not an int"]}, "rows": []}]"#,
    )
    .unwrap();
    let bson = dir.path().join("dump");
    std::fs::create_dir_all(bson.join("db")).unwrap();
    std::fs::write(bson.join("db/c.bson"), [9u8, 0, 0, 0, 2, 0]).unwrap();
    let archive = dir.path().join("a.archive");
    std::fs::write(&archive, b"not an archive").unwrap();
    let s = schema.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["--node-dump", "/nonexistent/dump.json", "--schema", s],
        vec!["--node-dump", garbage.to_str().unwrap(), "--schema", s],
        vec!["--node-dump", wrong.to_str().unwrap(), "--schema", s],
        vec![
            "--node-dump",
            FIXTURE,
            "--schema",
            "/nonexistent/schema.cql",
        ],
        vec!["--node-dump", FIXTURE],
        vec!["--mongodump", bson.to_str().unwrap()],
        vec!["--mongodump", "/nonexistent/dir"],
        vec!["--archive", archive.to_str().unwrap()],
        vec![],
    ];
    for args in cases {
        let store = dir.path().join("store");
        let out = import(&store, &args).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.starts_with("tidemark: "), "{err}");
        assert!(!store.exists(), "{args:?} wrote a store");
    }
}

fn testbed_truth(cluster: &CqlCluster) -> BTreeMap<CellKey, (String, i64, i32)> {
    cluster
        .logical_state()
        .into_iter()
        .filter(|c| c.keyspace == "rep")
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
        .collect()
}

fn imported(rows: &[tidemark::snapshot::SnapshotRow]) -> BTreeMap<CellKey, (String, i64, i32)> {
    let pk = BTreeMap::from([("t", vec!["id"])]);
    snapshot_cells(rows, &pk)
        .into_iter()
        .map(|(k, c)| {
            (
                k,
                (hex(&c.value), c.timestamp, c.ttl.map_or(0, |t| t as i32)),
            )
        })
        .collect()
}

/// TTLs left differ by the seconds between the truth and the import's reading:
/// both must agree on which cells have one and be within a minute of each other.
fn assert_same(
    got: &BTreeMap<CellKey, (String, i64, i32)>,
    want: &BTreeMap<CellKey, (String, i64, i32)>,
) {
    let gk: Vec<_> = got.keys().collect();
    let wk: Vec<_> = want.keys().collect();
    if gk != wk {
        let missing: Vec<_> = want
            .keys()
            .filter(|k| !got.contains_key(*k))
            .take(5)
            .collect();
        let extra: Vec<_> = got
            .keys()
            .filter(|k| !want.contains_key(*k))
            .take(5)
            .collect();
        panic!("cells differ: missing {missing:?}, extra {extra:?}");
    }
    for (k, (v, ts, ttl)) in want {
        let (gv, gts, gttl) = &got[k];
        assert_eq!((gv, gts), (v, ts), "{k:?}");
        // The truth's ttl is the TTL written; the import keeps the TTL written too.
        assert_eq!(*gttl, *ttl, "{k:?}");
    }
}

async fn q(s: &Session, text: &str) {
    s.query_unpaged(text, ())
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"));
}

async fn dump_all(cluster: &CqlCluster, dir: &Path, tag: &str) -> Vec<String> {
    let mut files = Vec::new();
    for node in 0..5 {
        let json = cluster.sstabledump(node, "rep", "t").expect("table exists");
        let f = dir.join(format!("{tag}-node{node}.json"));
        std::fs::write(&f, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        files.push(f.to_str().unwrap().to_string());
    }
    files
}

const REP_SCHEMA: &str = "CREATE KEYSPACE rep WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3};\n\
CREATE TABLE rep.t (id int, line int, v text, qty int, note text static, tags set<text>, m map<text, int>, PRIMARY KEY (id, line));";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_node_dumps_at_rf3_deduplicate_to_the_clusters_state() {
    let cluster = CqlCluster::start(ClusterConfig {
        nodes: 5,
        base_addr: Ipv4Addr::new(127, 0, 73, 1),
        port: 0,
        spare_nodes: 0,
        ..Default::default()
    })
    .await
    .expect("testbed starts");
    let addr = cluster.addresses()[1];
    let s = SessionBuilder::new()
        .known_node(addr.to_string())
        .build()
        .await
        .expect("driver connects");
    for stmt in REP_SCHEMA.split(";\n") {
        q(&s, stmt.trim_end_matches(';')).await;
    }
    let ts = |i: i32, j: i32| 1_000_000 + i64::from(i) * 100 + i64::from(j);
    for id in 0..30 {
        for line in 0..3 {
            q(&s, &format!(
                "INSERT INTO rep.t (id, line, v, qty, tags, m) VALUES ({id}, {line}, 'v{id}-{line}', {line}, {{'a', 'b{id}'}}, {{'x': {id}}}) USING TIMESTAMP {}",
                ts(id, line)
            )).await;
        }
        if id % 3 == 0 {
            q(&s, &format!("UPDATE rep.t USING TIMESTAMP {} AND TTL 3600 SET note = 'n{id}' WHERE id = {id}", ts(id, 10))).await;
        }
        if id % 4 == 1 {
            q(&s, &format!("UPDATE rep.t USING TIMESTAMP {} AND TTL 7200 SET qty = 99 WHERE id = {id} AND line = 1", ts(id, 11))).await;
        }
        match id % 7 {
            // A cell tombstone, a row tombstone, a range tombstone, a partition
            // tombstone, a set element removed, a map entry added.
            1 => q(&s, &format!("DELETE v FROM rep.t USING TIMESTAMP {} WHERE id = {id} AND line = 0", ts(id, 20))).await,
            2 => q(&s, &format!("DELETE FROM rep.t USING TIMESTAMP {} WHERE id = {id} AND line = 2", ts(id, 20))).await,
            3 => q(&s, &format!("DELETE FROM rep.t USING TIMESTAMP {} WHERE id = {id} AND line > 0", ts(id, 20))).await,
            4 => q(&s, &format!("DELETE FROM rep.t USING TIMESTAMP {} WHERE id = {id}", ts(id, 20))).await,
            5 => q(&s, &format!("UPDATE rep.t USING TIMESTAMP {} SET tags = tags - {{'a'}} WHERE id = {id} AND line = 1", ts(id, 20))).await,
            6 => q(&s, &format!("UPDATE rep.t USING TIMESTAMP {} SET m['y'] = 7 WHERE id = {id} AND line = 2", ts(id, 20))).await,
            _ => {}
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.cql");
    std::fs::write(&schema, REP_SCHEMA).unwrap();

    // Node 0 loses every write for a while: the ones it replicates are hinted.
    cluster
        .set_fault(
            0,
            Fault {
                drop_writes: true,
                ..Fault::default()
            },
        )
        .unwrap();
    for id in 0..30 {
        q(
            &s,
            &format!(
                "UPDATE rep.t USING TIMESTAMP {} SET v = 'new{id}' WHERE id = {id} AND line = 1",
                ts(id, 50)
            ),
        )
        .await;
    }
    let truth = testbed_truth(&cluster);
    let files = dump_all(&cluster, dir.path(), "diverged").await;
    // Node 0's own copy really is behind: some row it holds has the old v.
    let node0: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    let node0 = node0.to_string();
    let stale = (0..30)
        .filter(|i| node0.contains(&format!("\"v{i}-1\"")))
        .count();
    assert!(
        stale > 0,
        "node 0 missed the new values of the rows it holds"
    );

    let store = dir.path().join("store");
    let mut args = vec![
        "--schema",
        schema.to_str().unwrap(),
        "--json",
        "--node-dump",
    ];
    args.extend(files.iter().map(String::as_str));
    let out = import(&store, &args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (infos, rows) = read(&store, 1);
    assert_eq!(infos[0].parts.len(), 5, "one part per node's file");
    let got = imported(&rows);
    assert_same(&got, &truth);
    assert!(got.values().any(|(v, _, _)| *v == hex(b"new7")));
    let shown = show_json(&store, 1).await;
    let ratio = shown["import"]["dedup_ratio"].as_f64().unwrap();
    eprintln!("dedup: {}", shown["import"]);
    assert!((2.5..=3.5).contains(&ratio), "dedup ratio ≈ 3: {shown}");

    // The hints delivered: node 0 catches up; its new dump imports to the same state.
    cluster.set_fault(0, Fault::default()).unwrap();
    assert_eq!(cluster.hints_pending(), 0);
    let healed = dump_all(&cluster, dir.path(), "healed").await;
    let store2 = dir.path().join("store2");
    let mut args = vec!["--schema", schema.to_str().unwrap(), "--node-dump"];
    args.extend(healed.iter().map(String::as_str));
    let out = import(&store2, &args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, rows2) = read(&store2, 1);
    assert_same(&imported(&rows2), &testbed_truth(&cluster));
    let shown2 = show_json(&store2, 1).await;
    let ratio2 = shown2["import"]["dedup_ratio"].as_f64().unwrap();
    eprintln!("dedup after hints: {}", shown2["import"]);
    assert!(ratio2 >= ratio, "more copies once node 0 caught up");

    // Without --schema the tables come from the store's newest CQL snapshot (the
    // first import recorded its CREATE statements).
    let mut args = vec!["--node-dump"];
    args.extend(healed.iter().map(String::as_str));
    let out = import(&store, &args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (infos, rows_again) = read(&store, 2);
    assert_eq!(infos.len(), 2);
    assert_same(&imported(&rows_again), &testbed_truth(&cluster));

    // version create on the store holding the import, with a tap's log after it
    // (one more write), equals the truth then.
    if !require::live_capture() {
        return;
    }
    let port = addr.port();
    let mut tap = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "tap",
            "--interface",
            "lo",
            "--cql-port",
            &port.to_string(),
            "--store",
        ])
        .arg(&store)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = ready_support::Lines::follow(tap.stderr.take().unwrap());
    assert!(
        err.wait_for("tidemark: capturing on lo"),
        "tap: {:?}",
        err.rest()
    );
    let s2 = SessionBuilder::new()
        .known_node(addr.to_string())
        .build()
        .await
        .expect("driver connects");
    let mut stmt = scylla::statement::unprepared::Statement::new(
        // An explicit timestamp: without one the server picks it and the log can
        // only estimate it from the capture.
        "UPDATE rep.t USING TIMESTAMP 5000000 SET v = 'after import' WHERE id = 0 AND line = 0",
    );
    stmt.set_consistency(scylla::statement::Consistency::All);
    s2.query_unpaged(stmt, ()).await.unwrap();
    let last = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut passed = false;
    for _ in 0..300 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        passed = Store::open(&store, &StoreOptions::default().read_only())
            .ok()
            .and_then(|s| s.tidemark().ok().flatten())
            .is_some_and(|t| t > last);
        if passed {
            break;
        }
    }
    std::process::Command::new("kill")
        .args(["-TERM", &tap.id().to_string()])
        .status()
        .unwrap();
    assert!(tap.wait().unwrap().success(), "tap: {:?}", err.rest());
    assert!(passed, "the tidemark never passed the last write");
    let out = tidemark(&[
        "version",
        "create",
        "--store",
        store.to_str().unwrap(),
        "--name",
        "imp",
        "--json",
        "--at",
        "latest",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["snapshot"], 2, "joined the newest import: {info}");
    let st = Store::open(&store, &StoreOptions::default().read_only()).unwrap();
    let mut version = BTreeMap::new();
    stored::for_each_row(&st, "imp", |ns, key, row| {
        if ns != "rep.t" {
            return Ok(true);
        }
        let key: serde_json::Value = serde_json::from_str(key)?;
        let pk = hex(&(key["id"].as_i64().unwrap() as i32).to_be_bytes());
        // A partition holding only static cells has no clustering value.
        let ck = key.get("line").map_or(String::new(), |l| {
            hex(&(l.as_i64().unwrap() as i32).to_be_bytes())
        });
        let VersionRow::Cql { cells } = row else {
            panic!("a CQL row")
        };
        for c in cells.iter().filter(|c| &*c.column != "note") {
            let col = match &c.path {
                Some(p) => format!("{}[{}]", c.column, hex(p)),
                None => c.column.to_string(),
            };
            version.insert(
                ("t".to_string(), pk.clone(), ck.clone(), col),
                (hex(&c.value), c.timestamp),
            );
        }
        Ok(true)
    })
    .unwrap();
    // Static cells are left out on both sides: the version keeps them per row.
    let want: BTreeMap<CellKey, (String, i64)> = testbed_truth(&cluster)
        .into_iter()
        .filter(|(k, _)| k.3 != "note")
        .map(|(k, (v, t, _))| (k, (v, t)))
        .collect();
    assert!(version.values().any(|(v, _)| *v == hex(b"after import")));
    let differ: Vec<_> = want
        .keys()
        .chain(version.keys())
        .filter(|k| want.get(*k) != version.get(*k))
        .take(6)
        .map(|k| (k, want.get(k), version.get(k)))
        .collect();
    assert!(
        differ.is_empty(),
        "version vs truth (key, truth, version): {differ:?}"
    );
}
