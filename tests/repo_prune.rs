//! `tidemark repo prune`: what goes and what stays.
//!
//! A store of 300 CQL writes and two finished CQL snapshots (reads at 90–100 ms and
//! 190–200 ms into the log) pushed in segments of 50: `--keep-versions 1` keeps the
//! newest snapshot as the base, so the segments that end before its start (writes
//! 1–150) and the older snapshot go, and nothing else; the chain then starts after
//! the prune point for `ls`, `verify`, a later `push` and a `pull` on an empty
//! working store (which gets the log from write 151 and the kept snapshot).
//! `--dry-run` deletes nothing, a window longer than the history deletes nothing,
//! and a protocol with writes but no snapshot keeps its log.

mod repo_cli_support;
mod store_support;

use std::path::Path;
use std::process::Output;

use repo_cli_support::{run, NO_ENV};

use tidemark::snapshot::model::{NamespaceInfo, PartInfo, PartRange, SnapshotInfo};
use tidemark::store::{Mutation, Protocol, Store, StoreOptions, TxnExtras};

const T0: u64 = 1_800_000_000_000_000_000;
const MS: u64 = 1_000_000;

fn tidemark(args: &[&str]) -> Output {
    run(NO_ENV, args)
}

/// `tidemark ARGS`, which must succeed; its last JSON line.
fn ok(args: &[&str]) -> serde_json::Value {
    let text = repo_cli_support::ok(NO_ENV, args);
    serde_json::from_str(text.lines().last().unwrap_or("null")).unwrap()
}

fn write(i: u64) -> Mutation {
    let mut m = store_support::cql("ks.t", &format!("{{\"id\":{i}}}"), T0 + i * MS, 2);
    m.write_timestamp = Some(1_700_000_000_000_000 + i as i64);
    m
}

fn snapshot(store: &Store, started_ms: u64, finished_ms: u64) {
    let info = SnapshotInfo {
        id: 0,
        source: "cql://10.0.0.1:9042".into(),
        cluster: "bench".into(),
        protocol: Protocol::Cql,
        started: T0 + started_ms * MS,
        finished: Some(T0 + finished_ms * MS),
        namespaces: vec![NamespaceInfo {
            name: "ks.t".into(),
            schema: "CREATE TABLE ks.t (id int PRIMARY KEY, c0 text, c1 text);".into(),
            rows: 0,
            bytes: 0,
        }],
        parts: vec![PartInfo {
            namespace: "ks.t".into(),
            range: PartRange::Token(i64::MIN, i64::MAX),
            read_start: T0 + started_ms * MS,
            read_end: Some(T0 + finished_ms * MS),
            rows: 0,
        }],
        cluster_time: None,
    };
    tidemark::snapshot::store::insert_info(store, &info).unwrap();
}

fn make(path: &Path, writes: std::ops::RangeInclusive<u64>, snapshots: bool) {
    let store = Store::create(path, &StoreOptions::default()).unwrap();
    let last = *writes.end();
    let ms: Vec<Mutation> = writes.map(write).collect();
    store
        .append_batch_with(
            &ms,
            &TxnExtras {
                tidemark: Some(T0 + last * MS),
                ..TxnExtras::default()
            },
        )
        .unwrap();
    if snapshots {
        snapshot(&store, 90, 100);
        snapshot(&store, 190, 200);
    }
}

fn segments(repo: &Path, source: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo.join("sources").join(source).join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    v.sort();
    v
}

#[test]
fn keep_versions_drops_the_log_before_the_oldest_kept_snapshot_and_older_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    make(&store, 1..=300, true);
    let repo = tmp.path().join("repo");
    let url = format!("file://{}", repo.display());
    let s = store.to_str().unwrap();
    ok(&[
        "repo",
        "push",
        "--store",
        s,
        "--repo",
        &url,
        "--source-id",
        "a",
        "--segment-mutations",
        "50",
        "--json",
    ]);
    assert_eq!(segments(&repo, "a").len(), 6);

    // Nothing is old enough for a window longer than the history.
    let r = ok(&[
        "repo",
        "prune",
        "--repo",
        &url,
        "--keep-within",
        "1000w",
        "--json",
    ]);
    assert_eq!(r["segments_deleted"], 0, "{r}");
    assert_eq!(r["snapshots_deleted"], 0, "{r}");

    let dry = ok(&[
        "repo",
        "prune",
        "--repo",
        &url,
        "--keep-versions",
        "1",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(dry["segments_deleted"], 3, "{dry}");
    assert_eq!(dry["mutations_deleted"], 150, "{dry}");
    assert_eq!(dry["snapshots_deleted"], 1, "{dry}");
    assert_eq!(segments(&repo, "a").len(), 6, "a dry run deletes nothing");

    let r = ok(&[
        "repo",
        "prune",
        "--repo",
        &url,
        "--keep-versions",
        "1",
        "--json",
    ]);
    assert_eq!(r["segments_deleted"], 3);
    assert_eq!(r["log_needed_from"], T0 + 190 * MS);
    assert_eq!(r["bases"]["cql"], "a/2", "{r}");
    assert_eq!(
        segments(&repo, "a"),
        [
            "00000000000000000151-00000000000000000200.seg",
            "00000000000000000201-00000000000000000250.seg",
            "00000000000000000251-00000000000000000300.seg"
        ]
    );
    let snaps: Vec<String> = std::fs::read_dir(repo.join("sources/a/snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        snaps.iter().all(|n| n.starts_with("00000000000000000002.")),
        "{snaps:?}"
    );
    // Run again: nothing more to do.
    let again = ok(&[
        "repo",
        "prune",
        "--repo",
        &url,
        "--keep-versions",
        "1",
        "--json",
    ]);
    assert_eq!(
        (
            again["segments_deleted"].as_u64(),
            again["snapshots_deleted"].as_u64()
        ),
        (Some(0), Some(0))
    );

    // The chain starts after the prune point everywhere.
    let ls = ok(&["repo", "ls", "--repo", &url, "--json"]);
    assert_eq!(
        (ls["pruned_through"].as_u64(), ls["last_seq"].as_u64()),
        (Some(150), Some(300)),
        "{ls}"
    );
    let v = ok(&["repo", "verify", "--repo", &url, "--json"]);
    assert_eq!(
        (v["problems"].as_u64(), v["segments"].as_u64()),
        (Some(0), Some(3)),
        "{v}"
    );
    let st = Store::open(&store, &StoreOptions::default()).unwrap();
    let more: Vec<Mutation> = (301..=320).map(write).collect();
    st.append_batch_with(
        &more,
        &TxnExtras {
            tidemark: Some(T0 + 320 * MS),
            ..TxnExtras::default()
        },
    )
    .unwrap();
    drop(st);
    let p = ok(&[
        "repo",
        "push",
        "--store",
        s,
        "--repo",
        &url,
        "--source-id",
        "a",
        "--json",
    ]);
    assert_eq!(
        (p["segments"].as_u64(), p["pushed_through"].as_u64()),
        (Some(1), Some(320)),
        "{p}"
    );
    assert_eq!(
        p["snapshots"], 0,
        "the pruned snapshot is not sent again: {p}"
    );
    let work = tmp.path().join("work");
    let pulled = ok(&[
        "repo",
        "pull",
        "--repo",
        &url,
        "--store",
        work.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        (pulled["merged"].as_u64(), pulled["snapshots"].as_u64()),
        (Some(170), Some(1)),
        "{pulled}"
    );
}

#[test]
fn a_protocol_with_writes_but_no_snapshot_keeps_its_log() {
    let tmp = tempfile::tempdir().unwrap();
    // CQL snapshots, but a MongoDB write among the old CQL ones (seq 31).
    let store = tmp.path().join("s");
    let st = Store::create(&store, &StoreOptions::default()).unwrap();
    let mut m = store_support::mongo("app.users", 1, T0 + 30 * MS + MS / 2, 100);
    if let tidemark::store::Payload::Mongo(op) = &mut m.payload {
        op.txn_number = Some(9);
    }
    let all: Vec<Mutation> = (1..=30)
        .map(write)
        .chain(std::iter::once(m))
        .chain((31..=300).map(write))
        .collect();
    st.append_batch_with(
        &all,
        &TxnExtras {
            tidemark: Some(T0 + 300 * MS),
            ..TxnExtras::default()
        },
    )
    .unwrap();
    snapshot(&st, 90, 100);
    snapshot(&st, 190, 200);
    drop(st);
    let repo = tmp.path().join("repo");
    let url = format!("file://{}", repo.display());
    ok(&[
        "repo",
        "push",
        "--store",
        store.to_str().unwrap(),
        "--repo",
        &url,
        "--source-id",
        "b",
        "--segment-mutations",
        "50",
        "--json",
    ]);
    let before = segments(&repo, "b");
    let r = ok(&[
        "repo",
        "prune",
        "--repo",
        &url,
        "--keep-versions",
        "1",
        "--json",
    ]);
    assert_eq!(r["segments_deleted"], 0, "{r}");
    assert!(r["kept_because"].to_string().contains("mongo"), "{r}");
    assert_eq!(segments(&repo, "b"), before);
}

#[test]
fn prune_needs_what_to_keep_and_a_readable_duration() {
    for args in [
        vec!["repo", "prune", "--repo", "file:///tmp/x"],
        vec![
            "repo",
            "prune",
            "--repo",
            "file:///tmp/x",
            "--keep-within",
            "soon",
        ],
        vec![
            "repo",
            "prune",
            "--repo",
            "file:///tmp/x",
            "--keep-versions",
            "0",
        ],
    ] {
        let out = tidemark(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
