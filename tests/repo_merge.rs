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

mod store_support;

use std::path::Path;
use std::process::{Command, Output};

use tidemark::store::{InDoubtReason, Mutation, Outcome, Store, StoreOptions, TxnExtras};

const T0: u64 = 1_800_000_000_000_000_000;
const MS: u64 = 1_000_000;

fn tidemark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .expect("the tidemark binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = tidemark(args);
    assert!(
        out.status.success(),
        "tidemark {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
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
