//! Many sources, one cluster: three stores that saw overlapping parts of one
//! cluster's writes push to one repository; `repo pull` (and `version create
//! --repo`) merge them into one log on an empty machine.
//!
//! Checked against the ground truth the test builds: the set of distinct writes and
//! their commit order. The merged log holds each write once (copies seen by two
//! sources dropped by identity), in commit order, up to the cluster's tidemark —
//! the minimum over the sources — and nothing past it; the source holding it is
//! named by `status --repo`; a copy decided committed by one source wins over an in
//! doubt copy of another; a later pull adds exactly what came since.

mod repo_cli_support;
mod store_support;

use std::path::Path;
use std::process::Command;

use repo_cli_support::{json_lines, NO_ENV};

use tidemark::store::{InDoubtReason, Mutation, Outcome, Store, StoreOptions, TxnExtras};

const T0: u64 = 1_800_000_000_000_000_000;
const MS: u64 = 1_000_000;

fn ok(args: &[&str]) -> String {
    repo_cli_support::ok(NO_ENV, args)
}

/// Write number `i` of the cluster, as any source that saw it logs it: CQL
/// upserts with client timestamps and MongoDB inserts, at `T0 + i ms`.
fn write(i: u64) -> Mutation {
    let t = T0 + i * MS;
    if i.is_multiple_of(4) {
        // A retryable insert: its own transaction number in the session.
        let mut m = store_support::mongo("app.users", i, t, 120);
        if let tidemark::store::Payload::Mongo(op) = &mut m.payload {
            op.txn_number = Some(i as i64);
        }
        m
    } else {
        let mut m = store_support::cql("ks.t", &format!("{{\"id\":{i}}}"), t, 2);
        m.write_timestamp = Some(1_700_000_000_000_000 + i as i64);
        m
    }
}

/// A store that saw writes `range` and whose tidemark is `tidemark_at` (a write
/// number's time).
fn source_store(dir: &Path, range: std::ops::RangeInclusive<u64>, tidemark_at: u64) {
    let store = Store::create(dir, &StoreOptions::default()).unwrap();
    let ms: Vec<Mutation> = range.map(write).collect();
    store
        .append_batch_with(
            &ms,
            &TxnExtras {
                tidemark: Some(T0 + tidemark_at * MS),
                ..TxnExtras::default()
            },
        )
        .unwrap();
}

fn push(store: &Path, url: &str, source: &str) {
    ok(&[
        "repo",
        "push",
        "--store",
        store.to_str().unwrap(),
        "--repo",
        url,
        "--source-id",
        source,
        "--segment-mutations",
        "40",
    ]);
}

/// The merged log: (namespace, key, commit time, outcome).
fn merged_log(store: &Path) -> Vec<(String, String, u64, String)> {
    let s = Store::open_side(store, &StoreOptions::default()).unwrap();
    let r = s.reader().unwrap();
    r.seq_range(1..)
        .unwrap()
        .map(|e| {
            let m = e.unwrap().mutation;
            (
                m.namespace,
                m.key,
                m.commit_time,
                m.outcome.kind().as_str().to_string(),
            )
        })
        .collect()
}

fn expected(writes: std::ops::RangeInclusive<u64>) -> Vec<(String, String, u64, String)> {
    writes
        .map(write)
        .map(|m| (m.namespace, m.key, m.commit_time, "committed".to_string()))
        .collect()
}

#[test]
fn three_overlapping_sources_merge_into_one_log_each_write_once_up_to_the_slowest() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}", tmp.path().join("repo").display());
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    // a saw writes 1–100, b 60–180, c 170–220 (overlaps 60–100 and 170–180); c is the
    // slowest: complete only up to write 200.
    source_store(&a, 1..=100, 230);
    source_store(&b, 60..=180, 230);
    source_store(&c, 170..=220, 200);
    push(&a, &url, "a");
    push(&b, &url, "b");
    push(&c, &url, "c");

    let work = tmp.path().join("work");
    let out = json_lines(&ok(&[
        "repo",
        "pull",
        "--repo",
        &url,
        "--store",
        work.to_str().unwrap(),
        "--json",
    ]));
    let r = &out[0];
    assert_eq!(r["tidemark"], T0 + 200 * MS);
    assert_eq!(r["held_by"], serde_json::json!(["c"]));
    assert_eq!(r["merged"], 200, "{r}");
    assert_eq!(r["duplicates"], 41 + 11, "{r}");
    assert_eq!(
        merged_log(&work),
        expected(1..=200),
        "each write once, in commit order, none past the tidemark"
    );

    let st = json_lines(&ok(&["status", "--repo", &url, "--json"]));
    let st = &st[0];
    assert_eq!(
        st["tidemark"].as_str().unwrap(),
        tidemark::decode::time::rfc3339(tidemark::capture::Timestamp(T0 + 200 * MS))
    );
    let holders: Vec<&str> = st["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["holds_tidemark"] == true)
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(holders, ["c"]);

    // c catches up (its store sees 221–230 and its tidemark reaches 230): the next
    // pull adds exactly 201–230.
    let store = Store::open(&c, &StoreOptions::default()).unwrap();
    let more: Vec<Mutation> = (221..=230).map(write).collect();
    store
        .append_batch_with(
            &more,
            &TxnExtras {
                tidemark: Some(T0 + 230 * MS),
                ..TxnExtras::default()
            },
        )
        .unwrap();
    drop(store);
    push(&c, &url, "c");
    let out = json_lines(&ok(&[
        "repo",
        "pull",
        "--repo",
        &url,
        "--store",
        work.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(out[0]["merged"], 30, "{}", out[0]);
    assert_eq!(merged_log(&work), expected(1..=230));

    // A version cut from the repository alone, on a machine with no store: the
    // default working store is the repository's cache directory.
    let cache = tmp.path().join("cache");
    let cached = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(args)
            .env("XDG_CACHE_HOME", &cache)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let v = json_lines(&cached(&[
        "version", "create", "--repo", &url, "--at", "latest", "--name", "merged", "--json",
    ]));
    assert_eq!(v.last().unwrap()["name"], "merged", "{v:?}");
    assert_eq!(v.last().unwrap()["mutations"], 230, "{v:?}");
    let list = cached(&["version", "list", "--repo", &url, "--json"]);
    assert!(list.contains("\"merged\""), "{list}");
    assert!(cache.join("tidemark/repos").is_dir());
}

#[test]
fn a_copy_decided_by_one_source_wins_over_an_in_doubt_copy_of_another() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}", tmp.path().join("repo").display());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    // Both saw writes 1–10; a lost the answer to write 5 (in doubt, decided later).
    let store = Store::create(&a, &StoreOptions::default()).unwrap();
    let mut ms: Vec<Mutation> = (1..=10).map(write).collect();
    ms[4].outcome = Outcome::InDoubt {
        reason: InDoubtReason::NoResponse,
    };
    store
        .append_batch_with(
            &ms,
            &TxnExtras {
                tidemark: Some(T0 + 20 * MS),
                ..TxnExtras::default()
            },
        )
        .unwrap();
    drop(store);
    source_store(&b, 1..=10, 20);
    push(&a, &url, "a");
    push(&b, &url, "b");
    let work = tmp.path().join("work");
    ok(&[
        "repo",
        "pull",
        "--repo",
        &url,
        "--store",
        work.to_str().unwrap(),
    ]);
    assert_eq!(merged_log(&work), expected(1..=10));
}

/// One CQL write `INSERT INTO ks.t (id, c, v) VALUES (1, 2, 'x')` as a source logs
/// it: with the schema (key `{"id":1,"c":2}`, one cell `v`), or without it, by the
/// bind metadata only (key `{"id":1}`, `c` left among the values and cells).
fn keyed_insert(with_schema: bool, t: u64) -> Mutation {
    let key = if with_schema {
        r#"{"id":1,"c":2}"#
    } else {
        r#"{"id":1}"#
    };
    let mut m = store_support::cql("ks.t", key, t, 0);
    m.write_timestamp = Some(1_700_000_000_000_042);
    let cell = |column: &str, value: &[u8], cql_type: &str| tidemark::store::Cell {
        column: column.into(),
        path: None,
        value: value.to_vec().into(),
        cql_type: cql_type.into(),
        timestamp: 1_700_000_000_000_042,
        ttl: None,
        local_deletion_time: None,
        kind: tidemark::store::CellKind::Live,
        op: tidemark::store::CellOp::Set,
    };
    let (values, source) = if with_schema {
        (serde_json::json!({"v": "x"}), "schema")
    } else {
        (serde_json::json!({"c": 2, "v": "x"}), "bind_metadata")
    };
    if let tidemark::store::Payload::Cql(p) = &mut m.payload {
        if !with_schema {
            p.cells.push(cell("c", &2i32.to_be_bytes(), "int"));
        }
        p.cells.push(cell("v", b"x", "text"));
    }
    // A line of its own shape (not the contract's): kept as a tree.
    m.line = Some(tidemark::store::StoredLine::Tree(
        (&serde_json::json!({
            "type": "write", "proto": "cql", "namespace": "ks.t", "op": "insert",
            "key": serde_json::from_str::<serde_json::Value>(key).unwrap(),
            "values": values, "key_source": source,
            "timestamp": 1_700_000_000_000_042i64,
        }))
            .into(),
    ));
    m
}

/// With one sidecar per node only one of them sees the DDL (or the driver's
/// schema reads): the others key an INSERT by its partition key alone. The pull
/// completes the key with the schema the other source shipped, so the two copies
/// of one write (a retry through two sidecars) are one, keyed as the database keys
/// the row, and the clustering column is no cell of it.
#[test]
fn a_key_decoded_without_the_schema_is_completed_with_the_merged_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}", tmp.path().join("repo").display());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let extras = TxnExtras {
        tidemark: Some(T0 + 20 * MS),
        ..TxnExtras::default()
    };
    // a: the schema, and the write committed (its retry).
    let store = Store::create(&a, &StoreOptions::default()).unwrap();
    let schema = tidemark::store::NamespaceSchema {
        partition_key: vec!["id".into()],
        clustering: vec![tidemark::store::ClusteringColumn {
            name: "c".into(),
            descending: false,
        }],
        columns: ["id", "c", "v"]
            .map(|n| tidemark::store::Column {
                name: n.into(),
                cql_type: if n == "v" { "text" } else { "int" }.into(),
            })
            .to_vec(),
        updated_at: T0,
        ..tidemark::store::NamespaceSchema::default()
    };
    store.put_schema("ks.t", &schema).unwrap();
    store
        .append_batch_with(&[keyed_insert(true, T0 + 2 * MS)], &extras)
        .unwrap();
    drop(store);
    // b: no schema, the first attempt in doubt.
    let store = Store::create(&b, &StoreOptions::default()).unwrap();
    let mut first = keyed_insert(false, T0 + MS);
    first.outcome = Outcome::InDoubt {
        reason: InDoubtReason::NoResponse,
    };
    store.append_batch_with(&[first], &extras).unwrap();
    drop(store);
    push(&a, &url, "a");
    push(&b, &url, "b");
    let work = tmp.path().join("work");
    let report = json_lines(&ok(&[
        "repo",
        "pull",
        "--repo",
        &url,
        "--store",
        work.to_str().unwrap(),
        "--json",
    ]));
    let report = report.last().unwrap();
    assert_eq!(report["rekeyed"], 1, "{report}");
    assert_eq!(report["duplicates"], 1, "{report}");
    let s = Store::open_side(&work, &StoreOptions::default()).unwrap();
    let r = s.reader().unwrap();
    let all: Vec<Mutation> = r
        .seq_range(1..)
        .unwrap()
        .map(|e| e.unwrap().mutation)
        .collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].key, r#"{"id":1,"c":2}"#);
    assert_eq!(all[0].outcome.kind().as_str(), "committed");
    let tidemark::store::Payload::Cql(p) = &all[0].payload else {
        panic!("a CQL payload");
    };
    let columns: Vec<&str> = p.cells.iter().map(|c| &*c.column).collect();
    assert_eq!(columns, ["v"]);
}
