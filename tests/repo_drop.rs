//! Dropping pushed segments from the local store (issue #16: "a segment is dropped
//! locally only after the repository confirms it"), on the local-filesystem
//! backend: `tidemark repo push --drop-pushed`.
//!
//! - after push+drop the local log starts past the pushed seqs (read through the
//!   store, and `status --json`), the repository holds every dropped seq (its
//!   segments read directly from the repository directory, envelope by envelope
//!   equal to the log before the drop), and a later push continues the chain;
//! - a version cut from the repository alone (`version create --repo` on an empty
//!   working store) equals, row by row and deletion by deletion, the version cut
//!   from the local store before the drop; a local `version create` on the dropped
//!   store is refused with one line naming the repository;
//! - an upload that fails drops nothing (the local log is untouched), and the next
//!   clean push drops it;
//! - LMDB does not shrink its file but reuses freed pages: across push+drop cycles
//!   the data file stays flat while the log keeps growing, and the same cycles
//!   without the drop make it grow (so the flat line is the drop's doing).

mod repo_cli_support;
mod store_support;

use std::path::Path;

use repo_cli_support::{json_lines, log_of, make_store, ok, run, NO_ENV, T0};
use tidemark::repo::segment::{self, Manifest};
use tidemark::store::{Envelope, Store, StoreOptions, TxnExtras};

/// Appends writes `from..from+n` (the pattern of `make_store`, one ms apart) and
/// moves the tidemark to the last.
fn append(path: &Path, from: u64, n: u64, columns: usize) {
    let store = Store::open(path, &StoreOptions::default()).unwrap();
    let ms: Vec<_> = (from..from + n)
        .map(|i| {
            let t = T0 + i * 1_000_000;
            let mut m = store_support::cql("ks.t", &format!("{{\"id\":{i}}}"), t, columns);
            m.write_timestamp = Some(1_700_000_000_000_000 + i as i64);
            m
        })
        .collect();
    store
        .append_batch_with(
            &ms,
            &TxnExtras {
                tidemark: Some(T0 + (from + n - 1) * 1_000_000),
                ..TxnExtras::default()
            },
        )
        .unwrap();
}

/// Every segment of `source` in the repository directory, decoded and checked
/// against its manifest, in seq order.
fn segments(repo: &Path, source: &str) -> Vec<(Manifest, Vec<Envelope>)> {
    let dir = repo.join("sources").join(source).join("segments");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let m: Manifest = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let object = std::fs::read(dir.join(&m.object)).unwrap();
            let envs = segment::read(&object, &m, None).unwrap();
            (m, envs)
        })
        .collect()
}

fn push(store: &Path, url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "repo",
        "push",
        "--store",
        store.to_str().unwrap(),
        "--repo",
        url,
        "--source-id",
        "node-a",
        "--segment-mutations",
        "100",
        "--json",
    ];
    args.extend_from_slice(extra);
    run(NO_ENV, &args)
}

fn last_report(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "push: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&String::from_utf8_lossy(&out.stdout))
        .pop()
        .unwrap()
}

/// A version's rows and deletions as JSON text, in key order.
fn version_of(store: &Path, name: &str) -> (Vec<String>, Vec<String>) {
    let s = Store::open_side(store, &StoreOptions::default()).unwrap();
    let mut rows = Vec::new();
    tidemark::version::stored::for_each_row(&s, name, |ns, key, row| {
        rows.push(format!("{ns} {key} {}", serde_json::to_string(&row)?));
        Ok(true)
    })
    .unwrap();
    let mut deletions = Vec::new();
    tidemark::version::stored::for_each_deletion(&s, name, |ns, key, d| {
        deletions.push(format!("{ns} {key} {}", serde_json::to_string(&d)?));
        Ok(true)
    })
    .unwrap();
    (rows, deletions)
}

#[test]
fn after_push_and_drop_the_log_starts_past_the_pushed_seqs_and_the_repository_cuts_the_same_version(
) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    make_store(&path, 300);
    let repo = tmp.path().join("repo");
    let url = format!("file://{}", repo.display());
    let before = log_of(&path);
    assert_eq!(before.len(), 300);
    let p = path.to_str().unwrap();
    let cut = json_lines(&ok(
        NO_ENV,
        &[
            "version", "create", "--store", p, "--at", "latest", "--name", "before", "--json",
        ],
    ));
    let at = cut.last().unwrap()["at"].clone();
    assert_eq!(cut.last().unwrap()["mutations"], 300, "{cut:?}");

    let r = last_report(&push(&path, &url, &["--drop-pushed"]));
    assert_eq!(r["segments"], 3, "{r}");
    assert_eq!(r["pushed_through"], 300, "{r}");
    assert_eq!(r["dropped"]["entries"], 300, "{r}");
    assert_eq!(r["dropped"]["log_start"], 301, "{r}");

    // The local log holds nothing of what went; the repository holds all of it.
    assert!(log_of(&path).is_empty());
    let there: Vec<Envelope> = segments(&repo, "node-a")
        .into_iter()
        .flat_map(|(_, e)| e)
        .collect();
    assert_eq!(there, before, "the repository holds every dropped seq");
    let status = json_lines(&ok(NO_ENV, &["status", "--store", p, "--json"]));
    assert_eq!(status[0]["dropped"]["log_start"], 301, "{status:?}");
    assert_eq!(status[0]["mutations"], 0, "{status:?}");

    // The log goes on past the drop: new seqs continue the chain, and the next
    // drop removes only those.
    append(&path, 301, 50, 3);
    let after: Vec<u64> = log_of(&path).iter().map(|e| e.seq).collect();
    assert_eq!(after, (301..=350).collect::<Vec<_>>());
    let more = log_of(&path);
    let r = last_report(&push(&path, &url, &["--drop-pushed"]));
    assert_eq!(r["segments"], 1, "{r}");
    assert_eq!(r["dropped"]["entries"], 50, "{r}");
    assert_eq!(r["dropped"]["log_start"], 351, "{r}");
    let segs = segments(&repo, "node-a");
    let ranges: Vec<(u64, u64)> = segs
        .iter()
        .map(|(m, _)| (m.first_seq, m.last_seq))
        .collect();
    assert_eq!(ranges, [(1, 100), (101, 200), (201, 300), (301, 350)]);
    let there: Vec<Envelope> = segs.into_iter().flat_map(|(_, e)| e).collect();
    let expected: Vec<Envelope> = before.iter().chain(&more).cloned().collect();
    assert_eq!(there, expected);

    // Versions: the local store refuses (its log is gone), naming the repository;
    // the repository alone gives the version cut before the drop.
    let refused = run(
        NO_ENV,
        &["version", "create", "--store", p, "--at", "latest"],
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--repo") && err.contains(&url) && err.contains("351"),
        "{err}"
    );
    let work = tmp.path().join("work");
    let at = at.as_str().unwrap().to_string();
    let v = json_lines(&ok(
        NO_ENV,
        &[
            "version",
            "create",
            "--repo",
            &url,
            "--store",
            work.to_str().unwrap(),
            "--at",
            &at,
            "--name",
            "from-repo",
            "--json",
        ],
    ));
    assert_eq!(v.last().unwrap()["mutations"], 300, "{v:?}");
    let local = version_of(&path, "before");
    let remote = version_of(&work, "from-repo");
    // 200 CQL rows and 100 documents.
    assert_eq!(local.0.len(), 300);
    assert_eq!(
        remote, local,
        "the repository's version equals the local one"
    );
}

#[test]
fn a_failed_upload_drops_nothing_and_the_next_clean_push_does() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    make_store(&path, 250);
    let before = log_of(&path);
    let repo = tmp.path().join("repo");
    let url = format!("file://{}", repo.display());
    // The first two segments go up; the third's object cannot be written (its
    // name is taken by a directory), so its upload fails after retries.
    let seg_dir = repo.join("sources/node-a/segments");
    std::fs::create_dir_all(&seg_dir).unwrap();
    let blocked = seg_dir.join(tidemark::repo::layout::segment_name(201, 250));
    std::fs::create_dir_all(blocked.join("x")).unwrap();
    let out = push(&path, &url, &["--drop-pushed"]);
    assert!(!out.status.success(), "the blocked upload must fail");
    let r = json_lines(&String::from_utf8_lossy(&out.stdout))
        .pop()
        .unwrap();
    assert_eq!(r["pushed_through"], 200, "{r}");
    assert!(r["error"].is_string(), "{r}");
    assert!(r.get("dropped").is_none(), "{r}");
    assert_eq!(log_of(&path), before, "nothing dropped after a failed push");
    let status = json_lines(&ok(
        NO_ENV,
        &["status", "--store", path.to_str().unwrap(), "--json"],
    ));
    assert!(status[0].get("dropped").is_none(), "{status:?}");

    std::fs::remove_dir_all(&blocked).unwrap();
    let r = last_report(&push(&path, &url, &["--drop-pushed"]));
    assert_eq!(r["segments"], 1, "{r}");
    assert_eq!(r["dropped"]["entries"], 250, "{r}");
    assert!(log_of(&path).is_empty());
}

/// Size of the store's LMDB data file.
fn data_size(path: &Path) -> u64 {
    std::fs::metadata(path.join(tidemark::store::DATA_FILE))
        .unwrap()
        .len()
}

/// `cycles` rounds of 3000 appended writes (about 1 KB each) and a push, with or
/// without `--drop-pushed`; the data file's size after each round.
fn cycles(dir: &Path, drop_pushed: bool, cycles: u64) -> Vec<u64> {
    let path = dir.join(if drop_pushed { "dropping" } else { "keeping" });
    let url = format!(
        "file://{}",
        dir.join(format!("repo-{drop_pushed}")).display()
    );
    Store::create(&path, &StoreOptions::default()).unwrap();
    let per = 3000;
    let mut sizes = Vec::new();
    for c in 0..cycles {
        append(&path, 1 + c * per, per, 12);
        let extra: &[&str] = if drop_pushed { &["--drop-pushed"] } else { &[] };
        let r = last_report(&push(&path, &url, extra));
        assert_eq!(r["pushed_through"], (c + 1) * per, "{r}");
        sizes.push(data_size(&path));
    }
    sizes
}

#[test]
fn the_data_file_stays_flat_across_push_and_drop_cycles_while_the_log_grows() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 8;
    let dropping = cycles(tmp.path(), true, n);
    let keeping = cycles(tmp.path(), false, n);
    eprintln!("data.mdb bytes per cycle: dropping {dropping:?}, keeping {keeping:?}");
    // After the first rounds (the free list fills), freed pages are reused: no
    // growth at all from round 3 to the last, while 6 more rounds were appended.
    assert!(
        dropping[n as usize - 1] <= dropping[2],
        "the file grew although every round was dropped: {dropping:?}"
    );
    // Without the drop it grows with the log (so the flat line is the drop's).
    assert!(
        keeping[n as usize - 1] > 2 * dropping[n as usize - 1],
        "keeping {keeping:?} vs dropping {dropping:?}"
    );
}
