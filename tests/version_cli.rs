//! `tidemark version create | list | show | diff` and `tidemark export`, end to end
//! through the binary.
//!
//! The references are independent of tidemark: what a real Apache Cassandra 5.0.9
//! cluster and a real FerretDB server held after the driver workloads of
//! `captures/cassandra5_v4_lz4.pcap` and `captures/ferretdb_pymongo.pcap` (their
//! `held` truth, read back by the drivers: see `captures/realdb.md`). A version cut at
//! the tidemark of a store tapped from the capture, exported as JSON lines, must be
//! exactly that — every row, every column, nulls included. The rest builds stores from
//! mutations to show each rule a user meets: the fat-finger TRUNCATE seen by `diff`,
//! TTLs read at the version's time, writes that never committed, gaps, bad input.

mod require;
mod store_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tidemark::store::{
    Cell, CellKind, CellOp, Gap, InDoubtReason, Mutation, Outcome, Store, StoreOptions, WriteOp,
};

fn tidemark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .expect("run tidemark")
}

fn ok(args: &[&str]) -> String {
    let out = tidemark(args);
    assert!(
        out.status.success(),
        "tidemark {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A command that must refuse: exit 2, one line on stderr starting `tidemark: `.
fn refused(args: &[&str], mentions: &str) {
    let out = tidemark(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "tidemark {args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("tidemark: "), "{err}");
    assert!(
        err.contains(mentions),
        "{args:?}: {err:?} should mention {mentions:?}"
    );
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

/// The truth file's `held` rows: namespace → key (as JSON text) → row; rows a
/// driver read back as absent (`null`) are not there.
fn held(truth: &str, row_field: &str) -> BTreeMap<String, BTreeMap<String, Value>> {
    let t: Value = serde_json::from_str(&std::fs::read_to_string(capture(truth)).unwrap()).unwrap();
    let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for h in t["held"].as_array().expect("held") {
        let row = &h[row_field];
        if row.is_null() {
            continue;
        }
        let key = match h.get("key") {
            Some(k) => k.to_string(),
            None => serde_json::json!({"_id": row["_id"]}).to_string(),
        };
        out.entry(h["ns"].as_str().unwrap().to_string())
            .or_default()
            .insert(key, row.clone());
    }
    out
}

/// The exported JSON lines of every namespace, keyed like [`held`] by the columns
/// of `key_of`'s key.
fn exported(
    dir: &Path,
    key_columns: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let ns = name
            .strip_suffix(".jsonl")
            .expect("only .jsonl files")
            .to_string();
        let cols = key_columns
            .get(&ns)
            .cloned()
            .unwrap_or_else(|| vec!["_id".into()]);
        for row in lines(&std::fs::read_to_string(&path).unwrap()) {
            let mut key = serde_json::Map::new();
            for c in &cols {
                key.insert(c.clone(), row[c].clone());
            }
            let prev = out
                .entry(ns.clone())
                .or_default()
                .insert(Value::Object(key).to_string(), row);
            assert!(prev.is_none(), "a row exported twice in {ns}");
        }
    }
    out
}

/// Numbers compared as numbers (the truth was written by Python: `0.0` and `0`
/// are one value there), everything else exactly.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn assert_same_rows(
    truth: &BTreeMap<String, BTreeMap<String, Value>>,
    ours: &BTreeMap<String, BTreeMap<String, Value>>,
) {
    assert_eq!(
        truth.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>(),
        "namespaces"
    );
    for (ns, rows) in truth {
        let mine = &ours[ns];
        assert_eq!(
            rows.keys().collect::<Vec<_>>(),
            mine.keys().collect::<Vec<_>>(),
            "keys of {ns}"
        );
        for (k, row) in rows {
            assert!(
                same(row, &mine[k]),
                "{ns} {k}:\n held {row}\n ours {}",
                mine[k]
            );
        }
    }
}

/// Taps `pcap` (with `tap_args`) into a store under `dir`, cuts version `end` at the
/// tidemark and exports it as `format` into `dir/export`: the version's description
/// (`version create --json`) and the export directory.
fn tap_cut_export(dir: &Path, pcap: &str, tap_args: &[&str], format: &str) -> (Value, PathBuf) {
    let store = dir.join("store");
    let pcap = capture(pcap);
    let mut tap = vec!["tap", "--pcap", s(&pcap), "--store", s(&store)];
    tap.extend_from_slice(tap_args);
    ok(&tap);
    let info = lines(&ok(&[
        "version",
        "create",
        "--store",
        s(&store),
        "--at",
        "latest",
        "--name",
        "end",
        "--json",
    ]));
    let out = dir.join("export");
    ok(&[
        "export",
        "--store",
        s(&store),
        "--version",
        "end",
        "--format",
        format,
        "--out",
        s(&out),
    ]);
    (info[0].clone(), out)
}

#[test]
fn version_at_the_tidemark_is_what_cassandra_5_held() {
    let tmp = tempfile::tempdir().unwrap();
    let (info, out) = tap_cut_export(tmp.path(), "cassandra5_v4_lz4.pcap", &[], "jsonl");
    assert_eq!(info["type"], "version");
    assert_eq!(info["at"], info["tidemark"], "latest is the tidemark");

    let truth = held("cassandra5_v4_lz4.truth.json", "row");
    let key_columns: BTreeMap<String, Vec<String>> = truth
        .iter()
        .map(|(ns, rows)| {
            let k: Value = serde_json::from_str(rows.keys().next().unwrap()).unwrap();
            (ns.clone(), k.as_object().unwrap().keys().cloned().collect())
        })
        .collect();
    assert_same_rows(&truth, &exported(&out, &key_columns));
    let rows: u64 = truth.values().map(|r| r.len() as u64).sum();
    assert_eq!(info["rows"], rows);
    // The capture's deletes removed rows the real cluster no longer had.
    assert!(rows < 60, "{rows}");
}

#[test]
fn version_at_the_tidemark_is_what_ferretdb_held() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (_, out) = tap_cut_export(
        tmp.path(),
        "ferretdb_pymongo.pcap",
        &["--mongo-port", "27018"],
        "jsonl",
    );
    let truth = held("ferretdb_pymongo.truth.json", "doc");
    assert_same_rows(&truth, &exported(&out, &BTreeMap::new()));
    let show = lines(&ok(&[
        "version",
        "show",
        "end",
        "--store",
        s(&store),
        "--json",
    ]));
    assert_eq!(show[0]["uncertain"], serde_json::json!([]));
}

// ----- stores built from mutations -----

const SEC: u64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600 * SEC;

fn row(key: i32, value: &str, at: u64) -> Mutation {
    let mut m = store_support::cql("shop.orders", &format!(r#"{{"id":{key}}}"#), at, 0);
    m.write_timestamp = Some((at / 1000) as i64);
    if let tidemark::store::Payload::Cql(p) = &mut m.payload {
        p.cells.push(Cell {
            column: "item".into(),
            path: None,
            value: value.as_bytes().to_vec().into(),
            cql_type: "text".into(),
            timestamp: (at / 1000) as i64,
            ttl: None,
            local_deletion_time: None,
            kind: CellKind::Live,
            op: CellOp::Set,
        });
    }
    m
}

fn truncate(at: u64) -> Mutation {
    let mut m = store_support::cql("shop.orders", "{}", at, 0);
    m.op = WriteOp::Truncate;
    m
}

fn make_store(dir: &Path, mutations: &[Mutation], tidemark: u64) {
    let store = Store::create(dir, &StoreOptions::for_tests()).unwrap();
    store.append_batch(mutations).unwrap();
    store.set_tidemark(tidemark).unwrap();
}

/// `tidemark version create --at AT --name NAME` on `store`, which must succeed.
fn cut(store: &Path, at: String, name: &str) {
    ok(&[
        "version",
        "create",
        "--store",
        s(store),
        "--at",
        &at,
        "--name",
        name,
    ]);
}

/// The `uncertain` items of a version cut at `t` as `name` (`version show --json`).
fn uncertain_at(store: &Path, t: u64, name: &str) -> Vec<Value> {
    cut(store, at(t), name);
    let show = lines(&ok(&[
        "version",
        "show",
        name,
        "--store",
        s(store),
        "--json",
    ]));
    show[0]["uncertain"].as_array().cloned().unwrap_or_default()
}

fn at(t: u64) -> String {
    format!("{}", t as f64 / 1e9)
}

#[test]
fn diff_shows_the_fat_finger_truncate_emptying_the_table() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let mut ms: Vec<Mutation> = (0..5)
        .map(|i| row(i, &format!("item-{i}"), T0 + i as u64 * SEC))
        .collect();
    ms.push(row(2, "item-2-changed", T0 + 6 * SEC));
    ms.push(truncate(T0 + 10 * SEC));
    ms.push(row(9, "after", T0 + 11 * SEC));
    make_store(&store, &ms, T0 + 20 * SEC);

    cut(&store, at(T0 + 5 * SEC), "before");
    cut(&store, at(T0 + 9 * SEC), "just-before");
    ok(&[
        "version",
        "create",
        "--store",
        s(&store),
        "--at",
        "latest",
        "--name",
        "after",
    ]);

    let out = tidemark(&[
        "version",
        "diff",
        "before",
        "after",
        "--store",
        s(&store),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "differences: exit 1");
    let diff = lines(&String::from_utf8(out.stdout).unwrap());
    let changes: Vec<(String, String)> = diff
        .iter()
        .filter(|l| l["type"] == "row_diff")
        .map(|l| {
            (
                l["key"].as_str().unwrap().to_string(),
                l["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut want: Vec<(String, String)> = (0..5)
        .map(|i| (format!(r#"{{"id":{i}}}"#), "removed".to_string()))
        .collect();
    want.push((r#"{"id":9}"#.into(), "added".into()));
    assert_eq!(changes, want);
    let ns = diff.iter().find(|l| l["type"] == "namespace_diff").unwrap();
    assert_eq!(
        (ns["removed"].as_u64(), ns["added"].as_u64()),
        (Some(5), Some(1))
    );

    // One row changed between the two earlier versions, and nothing else.
    let out = tidemark(&[
        "version",
        "diff",
        "before",
        "just-before",
        "--store",
        s(&store),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let diff = lines(&String::from_utf8(out.stdout).unwrap());
    let rows: Vec<&Value> = diff.iter().filter(|l| l["type"] == "row_diff").collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["key"].as_str(), rows[0]["change"].as_str()),
        (Some(r#"{"id":2}"#), Some("changed"))
    );

    // A version equals itself: exit 0.
    let out = tidemark(&["version", "diff", "after", "after", "--store", s(&store)]);
    assert_eq!(out.status.code(), Some(0));

    let list = lines(&ok(&["version", "list", "--store", s(&store), "--json"]));
    let names: Vec<&str> = list.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["after", "before", "just-before"]);
    let counts: Vec<u64> = list.iter().map(|v| v["rows"].as_u64().unwrap()).collect();
    assert_eq!(counts, [1, 5, 5]);
}

#[test]
fn ttl_is_read_at_the_versions_time_and_only_committed_writes_count() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let mut expiring = row(1, "short-lived", T0);
    expiring.ttl = Some(10);
    if let tidemark::store::Payload::Cql(p) = &mut expiring.payload {
        p.cells[0].ttl = Some(10);
        p.cells[0].kind = CellKind::Expiring;
        p.cells[0].local_deletion_time = Some((T0 / SEC) as i64 + 10);
    }
    let mut doubtful = row(2, "in doubt", T0 + SEC);
    doubtful.outcome = Outcome::InDoubt {
        reason: InDoubtReason::Timeout,
    };
    let mut rejected = row(3, "rejected", T0 + SEC);
    rejected.outcome = Outcome::Rejected;
    let mut rolled_back = row(4, "rolled back", T0 + SEC);
    rolled_back.outcome = Outcome::RolledBack;
    make_store(
        &store,
        &[
            expiring,
            doubtful,
            rejected,
            rolled_back,
            row(5, "kept", T0 + 2 * SEC),
        ],
        T0 + 60 * SEC,
    );

    cut(&store, at(T0 + 9 * SEC), "t9");
    cut(&store, at(T0 + 10 * SEC), "t10");
    let keys = |v: &str| {
        let out = tmp.path().join(format!("x-{v}"));
        ok(&[
            "export",
            "--store",
            s(&store),
            "--version",
            v,
            "--format",
            "jsonl",
            "--out",
            s(&out),
        ]);
        lines(&std::fs::read_to_string(out.join("shop.orders.jsonl")).unwrap())
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    // Live while now < local deletion time (Cassandra's rule): gone at exactly +10 s.
    assert_eq!(keys("t9"), [1, 5]);
    assert_eq!(keys("t10"), [5]);
}

/// A write decided in doubt is not applied, and the version says it cannot vouch
/// for its row (found by the proxied MongoDB histories: a document an in-doubt
/// upsert created was missing from a version that listed nothing uncertain), from
/// the write's decision on; a committed write beside it leaves its own row certain.
#[test]
fn an_in_doubt_write_makes_its_row_uncertain_from_its_decision_on() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let mut doubtful = row(2, "in doubt", T0 + SEC);
    doubtful.outcome = Outcome::InDoubt {
        reason: InDoubtReason::Timeout,
    };
    make_store(
        &store,
        &[row(1, "kept", T0), doubtful, row(3, "kept", T0 + 2 * SEC)],
        T0 + 60 * SEC,
    );
    assert_eq!(
        uncertain_at(&store, T0 + SEC / 2, "before"),
        Vec::<Value>::new()
    );
    let after = uncertain_at(&store, T0 + 3 * SEC, "after");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["namespace"], "shop.orders");
    assert_eq!(after[0]["key"], r#"{"id":2}"#);
    let why = after[0]["why"].as_str().unwrap_or("");
    assert!(why.contains("in-doubt write (timeout"), "{why}");
}

/// A MongoDB write by filter decided in doubt names no document: every document
/// of its collection is uncertain from its decision on, and so is the filter.
#[test]
fn an_in_doubt_mongo_write_by_filter_makes_its_collection_uncertain() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let mut by_filter = store_support::mongo("db.c", 3, T0 + 2 * SEC, 64);
    by_filter.op = WriteOp::Delete;
    by_filter.key = r#"{"_id":{"$in":[1,9]}}"#.into();
    by_filter.outcome = Outcome::InDoubt {
        reason: InDoubtReason::NoResponse,
    };
    if let tidemark::store::Payload::Mongo(op) = &mut by_filter.payload {
        op.op = tidemark::store::MongoOpKind::Delete;
    }
    make_store(
        &store,
        &[
            store_support::mongo("db.c", 1, T0, 64),
            store_support::mongo("db.c", 2, T0 + SEC, 64),
            by_filter,
        ],
        T0 + 60 * SEC,
    );
    let uncertain_keys = |t: u64, name: &str| {
        let mut keys: Vec<String> = uncertain_at(&store, t, name)
            .iter()
            .map(|u| u["key"].as_str().unwrap_or("").to_string())
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        uncertain_keys(T0 + 3 * SEC / 2, "before"),
        Vec::<String>::new()
    );
    assert_eq!(
        uncertain_keys(T0 + 3 * SEC, "after"),
        [r#"{"_id":1}"#, r#"{"_id":2}"#, r#"{"_id":{"$in":[1,9]}}"#]
    );
}

#[test]
fn gaps_before_the_time_are_refused_unless_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    make_store(&store, &[row(1, "a", T0)], T0 + 60 * SEC);
    {
        let st = Store::open(&store, &StoreOptions::for_tests()).unwrap();
        st.add_gaps(&[Gap {
            flow: 42,
            node: Some("10.0.0.1:9042".parse().unwrap()),
            from: T0 + 20 * SEC,
            to: T0 + 21 * SEC,
            bytes: 1460,
        }])
        .unwrap();
    }
    // Before the gap: nothing to refuse.
    cut(&store, at(T0 + 10 * SEC), "early");
    refused(
        &["version", "create", "--store", s(&store), "--at", "latest"],
        "flow 42",
    );
    let v = lines(&ok(&[
        "version",
        "create",
        "--store",
        s(&store),
        "--at",
        "latest",
        "--name",
        "late",
        "--allow-gaps",
        "--json",
    ]));
    assert_eq!(v[0]["gaps"][0]["flow"], 42);
    assert_eq!(v[0]["gaps"][0]["bytes"], 1460);
}

#[test]
fn bad_input_is_refused_with_one_line_and_nothing_written() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    make_store(&store, &[row(1, "a", T0)], T0 + 60 * SEC);
    let st = s(&store);
    refused(
        &[
            "version",
            "create",
            "--store",
            st,
            "--at",
            &at(T0 + 61 * SEC),
        ],
        "after the tidemark",
    );
    refused(
        &["version", "create", "--store", st, "--at", "yesterday"],
        "invalid --at",
    );
    refused(
        &[
            "version", "create", "--store", st, "--at", "latest", "--name", "a/b",
        ],
        "invalid version name",
    );
    assert_eq!(
        ok(&["version", "list", "--store", st, "--json"]),
        "",
        "nothing was written"
    );
    ok(&[
        "version", "create", "--store", st, "--at", "latest", "--name", "v1",
    ]);
    refused(
        &[
            "version", "create", "--store", st, "--at", "latest", "--name", "v1",
        ],
        "exists",
    );
    refused(
        &["version", "show", "nope", "--store", st],
        "no version \"nope\"",
    );
    refused(
        &["version", "diff", "v1", "nope", "--store", st],
        "no version \"nope\"",
    );
    refused(
        &[
            "export",
            "--store",
            st,
            "--version",
            "nope",
            "--format",
            "jsonl",
            "--out",
            s(&tmp.path().join("x")),
        ],
        "no version",
    );
    assert!(
        !tmp.path().join("x").exists(),
        "no directory for a refused export"
    );
    let existing = tmp.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep.txt"), "mine").unwrap();
    refused(
        &[
            "export",
            "--store",
            st,
            "--version",
            "v1",
            "--format",
            "jsonl",
            "--out",
            s(&existing),
        ],
        "exists",
    );
    assert_eq!(
        std::fs::read_dir(&existing).unwrap().count(),
        1,
        "nothing written into it"
    );
    refused(
        &[
            "export",
            "--store",
            st,
            "--version",
            "v1",
            "--format",
            "xml",
            "--out",
            s(&tmp.path().join("y")),
        ],
        "invalid --format",
    );
    refused(
        &["version", "list", "--store", s(&tmp.path().join("missing"))],
        "missing",
    );
    // An empty store has no tidemark: nothing to cut.
    let empty = tmp.path().join("empty");
    Store::create(&empty, &StoreOptions::for_tests()).unwrap();
    refused(
        &["version", "create", "--store", s(&empty), "--at", "latest"],
        "no tidemark",
    );
}

#[test]
fn csv_export_has_a_header_and_one_line_per_row() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    make_store(
        &store,
        &[row(1, "plain", T0), row(2, "with, comma", T0 + SEC)],
        T0 + 60 * SEC,
    );
    ok(&[
        "version",
        "create",
        "--store",
        s(&store),
        "--at",
        "latest",
        "--name",
        "v",
    ]);
    let out = tmp.path().join("csv");
    let summary = lines(&ok(&[
        "export",
        "--store",
        s(&store),
        "--version",
        "v",
        "--format",
        "csv",
        "--out",
        s(&out),
        "--json",
    ]));
    assert_eq!(summary.last().unwrap()["rows"], 2);
    let text = std::fs::read_to_string(out.join("shop.orders.csv")).unwrap();
    assert_eq!(text, "id,item\n1,plain\n2,\"with, comma\"\n");
}

#[test]
fn version_after_a_failover_holds_the_committed_state_not_the_rolled_back_writes() {
    // captures/mongo_failover.pcap: a 3-member testbed replica set; the old primary
    // acknowledged five w:1 inserts in a partition, lost the election and rolled them
    // back. Its truth keeps the committed state the set converged to.
    let tmp = tempfile::tempdir().unwrap();
    let (_, out) = tap_cut_export(tmp.path(), "mongo_failover.pcap", &[], "jsonl");
    let t: Value = serde_json::from_str(
        &std::fs::read_to_string(capture("mongo_failover.truth.json")).unwrap(),
    )
    .unwrap();
    let mut truth: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for (ns, docs) in t["committed_state"].as_object().unwrap() {
        for d in docs.as_array().unwrap() {
            truth
                .entry(ns.clone())
                .or_default()
                .insert(serde_json::json!({"_id": d["_id"]}).to_string(), d.clone());
        }
    }
    let ours = exported(&out, &BTreeMap::new());
    assert_same_rows(&truth, &ours);
    for lost in t["lost_acknowledged_inserts"].as_array().unwrap() {
        let key = serde_json::json!({"_id": lost}).to_string();
        assert!(
            !ours["tm.failover"].contains_key(&key),
            "rolled-back {key} in the version"
        );
    }
}

#[test]
fn parquet_export_read_by_pyarrow_has_typed_columns_and_what_cassandra_held() {
    if !require::python_modules(&["pyarrow"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (_, out) = tap_cut_export(tmp.path(), "cassandra5_v4_lz4.pcap", &[], "parquet");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/version_support/parquet_rows.py");
    let read = Command::new("python3")
        .arg(&script)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let truth = held("cassandra5_v4_lz4.truth.json", "row");
    let mut seen = 0;
    for line in lines(&String::from_utf8(read.stdout).unwrap()) {
        let ns = line["ns"].as_str().unwrap();
        let types = &line["types"];
        if ns == "capture_v4.types" {
            // Each CQL type in its Arrow type (arbitrary precision stays text).
            for (col, ty) in [
                ("k", "int32"),
                ("b", "bool"),
                ("big", "int64"),
                ("bl", "binary"),
                ("d", "double"),
                ("dec", "string"),
                ("dt", "date32[day]"),
                ("sm", "int16"),
                ("ts", "timestamp[ms, tz=UTC]"),
                ("txt", "string"),
                ("u", "string"),
            ] {
                assert_eq!(types[col], ty, "{col}");
            }
        }
        let rows = &truth[ns];
        let key_cols: Vec<String> = serde_json::from_str::<Value>(rows.keys().next().unwrap())
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let row = line["row"].as_object().unwrap();
        let key: serde_json::Map<String, Value> = key_cols
            .iter()
            .map(|c| (c.clone(), row[c].clone()))
            .collect();
        let want = &rows[&Value::Object(key).to_string()];
        for (col, got) in row {
            // Text columns that hold JSON (collections, tuples, UDTs, decimals) are
            // compared as the values they spell.
            let got = match (got, &want[col]) {
                (Value::String(text), w) if !w.is_string() && !w.is_null() => {
                    serde_json::from_str(text).unwrap_or(got.clone())
                }
                _ => got.clone(),
            };
            assert!(
                same(&got, &want[col]),
                "{ns} {col}: parquet {got} held {}",
                want[col]
            );
        }
        seen += 1;
    }
    assert_eq!(seen, truth.values().map(BTreeMap::len).sum::<usize>());
}

#[test]
fn a_snapshot_of_another_cluster_or_unfinished_is_refused() {
    use tidemark::snapshot::{PartInfo, PartRange, SnapshotInfo};
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    // The log saw node 10.0.0.1 (store_support's mutations).
    make_store(&store, &[row(1, "a", T0)], T0 + 60 * SEC);
    let snap = |source: &str, finished: bool| SnapshotInfo {
        id: 0,
        source: source.into(),
        cluster: "elsewhere".into(),
        protocol: tidemark::store::Protocol::Cql,
        started: T0 + SEC,
        finished: finished.then_some(T0 + 2 * SEC),
        namespaces: vec![],
        parts: vec![PartInfo {
            namespace: "shop.orders".into(),
            range: PartRange::Token(i64::MIN, i64::MAX),
            read_start: T0 + SEC,
            read_end: finished.then_some(T0 + 2 * SEC),
            rows: 0,
        }],
        cluster_time: None,
    };
    {
        let st = Store::open_side(&store, &StoreOptions::for_tests()).unwrap();
        tidemark::snapshot::store::insert_info(&st, &snap("cql://10.9.9.9:9042", true)).unwrap();
        tidemark::snapshot::store::insert_info(&st, &snap("cql://10.0.0.1:9042", false)).unwrap();
    }
    let st = s(&store);
    refused(
        &["version", "create", "--store", st, "--at", "latest"],
        "another cluster",
    );
    refused(
        &[
            "version",
            "create",
            "--store",
            st,
            "--at",
            "latest",
            "--snapshot",
            "2",
        ],
        "not finished",
    );
    refused(
        &[
            "version",
            "create",
            "--store",
            st,
            "--at",
            "latest",
            "--snapshot",
            "9",
        ],
        "no snapshot 9",
    );
    refused(
        &[
            "version",
            "create",
            "--store",
            st,
            "--at",
            "latest",
            "--snapshot",
            "x",
        ],
        "invalid --snapshot",
    );
    assert_eq!(
        ok(&["version", "list", "--store", st, "--json"]),
        "",
        "nothing was written"
    );
    // The log alone is still possible, on request.
    ok(&[
        "version",
        "create",
        "--store",
        st,
        "--at",
        "latest",
        "--snapshot",
        "none",
        "--name",
        "log-only",
    ]);
}

#[test]
fn tap_keeps_the_schema_the_decoders_learned() {
    // The capture's driver read system_schema and sent CREATE statements: the store's
    // schema table has every user table with its key and column types, and none of
    // Cassandra's own keyspaces.
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    ok(&[
        "tap",
        "--pcap",
        s(&capture("cassandra5_v4_lz4.pcap")),
        "--store",
        s(&store),
    ]);
    let st = Store::open(&store, &StoreOptions::default().read_only()).unwrap();
    let namespaces = st.namespaces().unwrap();
    let truth = held("cassandra5_v4_lz4.truth.json", "row");
    for ns in truth.keys() {
        assert!(namespaces.contains(ns), "{ns} in {namespaces:?}");
    }
    assert!(
        namespaces.iter().all(|n| !n.starts_with("system")),
        "{namespaces:?}"
    );
    let more = st.schema("capture_v4.more").unwrap().unwrap();
    assert_eq!(more.partition_key, ["k"]);
    let ad = more.columns.iter().find(|c| c.name == "ad").unwrap();
    assert!(ad.cql_type.contains("addr"), "{}", ad.cql_type);
    assert!(
        more.user_types
            .iter()
            .any(|(n, f)| n == "addr" && f.iter().any(|(f, _)| f == "street")),
        "{:?}",
        more.user_types
    );
}
