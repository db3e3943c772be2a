//! `tidemark repo push|ls|verify` on the local-filesystem backend.
//!
//! A store's log goes up as sealed segments and comes back equal, envelope by
//! envelope, to what the store holds (read through the store's own reader); a
//! second push sends only what is new and continues the chain; an unfinished upload
//! (a segment object with no manifest) is replaced, never doubled; a corrupted,
//! truncated or foreign object is found by `verify` (exit 1, naming it); two stores
//! claiming one source id are refused instead of mixed; bad URLs and URLs carrying
//! credentials are one-line errors (exit 2).

mod repo_cli_support;
mod store_support;

use std::path::Path;
use std::process::Output;

use repo_cli_support::{json_lines, run, NO_ENV};

use tidemark::repo::segment::{self, Manifest};
use tidemark::store::{Envelope, Store, StoreOptions};

fn tidemark(args: &[&str]) -> Output {
    run(NO_ENV, args)
}

fn ok(args: &[&str]) -> String {
    repo_cli_support::ok(NO_ENV, args)
}

/// A store with `n` mutations (CQL and MongoDB, growing commit times) from `from`.
fn fill(store: &Store, from: u64, n: u64) {
    let ms: Vec<_> = (from..from + n)
        .map(|i| {
            let t = 1_800_000_000_000_000_000 + i * 1_000_000;
            if i % 3 == 0 {
                // A retryable insert with its own transaction number, as a driver
                // sends them (the fixture's default shares one).
                let mut m = store_support::mongo("app.users", i, t, 300);
                if let tidemark::store::Payload::Mongo(op) = &mut m.payload {
                    op.txn_number = Some(i as i64);
                }
                m
            } else {
                store_support::cql("ks.t", &format!("{{\"id\":{i}}}"), t, 4)
            }
        })
        .collect();
    store.append_batch(&ms).unwrap();
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

fn all_envelopes(store: &Path) -> Vec<Envelope> {
    let s = Store::open_side(store, &StoreOptions::default()).unwrap();
    let r = s.reader().unwrap();
    r.seq_range(1..).unwrap().map(Result::unwrap).collect()
}

#[test]
fn a_pushed_log_comes_back_equal_and_a_second_push_sends_only_what_is_new() {
    let (dir, path) = store_support::store_dir();
    let store = Store::create(&path, &StoreOptions::default()).unwrap();
    fill(&store, 1, 250);
    drop(store);
    let repo = dir.path().join("repo");
    let url = format!("file://{}", repo.display());
    let out = ok(&[
        "repo",
        "push",
        "--store",
        path.to_str().unwrap(),
        "--repo",
        &url,
        "--source-id",
        "node-a",
        "--segment-mutations",
        "100",
        "--json",
    ]);
    let lines = json_lines(&out);
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "repo_push");
    assert_eq!(last["segments"], 3, "{out}");
    assert_eq!(last["mutations"], 250);
    assert_eq!(last["pushed_through"], 250);
    assert!(
        lines.iter().filter(|l| l["type"] == "progress").count() == 3,
        "{out}"
    );

    let got = segments(&repo, "node-a");
    let ranges: Vec<(u64, u64)> = got.iter().map(|(m, _)| (m.first_seq, m.last_seq)).collect();
    assert_eq!(ranges, [(1, 100), (101, 200), (201, 250)]);
    let pushed: Vec<Envelope> = got.into_iter().flat_map(|(_, e)| e).collect();
    assert_eq!(
        pushed,
        all_envelopes(&path),
        "the repository holds the store's log"
    );

    // Nothing new: nothing sent.
    let again = json_lines(&ok(&[
        "repo",
        "push",
        "--store",
        path.to_str().unwrap(),
        "--repo",
        &url,
        "--source-id",
        "node-a",
        "--json",
    ]));
    assert_eq!(again.last().unwrap()["segments"], 0);

    // More in the store: only the new part goes, continuing the chain.
    let store = Store::open(&path, &StoreOptions::default()).unwrap();
    fill(&store, 251, 30);
    drop(store);
    let more = json_lines(&ok(&[
        "repo",
        "push",
        "--store",
        path.to_str().unwrap(),
        "--repo",
        &url,
        "--source-id",
        "node-a",
        "--json",
    ]));
    assert_eq!(more.last().unwrap()["segments"], 1);
    assert_eq!(more.last().unwrap()["mutations"], 30);
    let got = segments(&repo, "node-a");
    assert_eq!((got[3].0.first_seq, got[3].0.last_seq), (251, 280));
    let pushed: Vec<Envelope> = got.into_iter().flat_map(|(_, e)| e).collect();
    assert_eq!(pushed, all_envelopes(&path));

    let ls = json_lines(&ok(&["repo", "ls", "--repo", &url, "--json"]));
    assert_eq!(ls.len(), 1);
    assert_eq!(ls[0]["source"], "node-a");
    assert_eq!(ls[0]["segments"], 4);
    assert_eq!(ls[0]["mutations"], 280);
    assert_eq!(ls[0]["last_seq"], 280);
    assert_eq!(ls[0]["unfinished"], 0);
    let v = json_lines(&ok(&["repo", "verify", "--repo", &url, "--json"]));
    let summary = v.last().unwrap();
    assert_eq!(summary["problems"], 0, "{v:?}");
    assert_eq!(summary["segments"], 4);
    assert_eq!(summary["mutations"], 280);
}

#[test]
fn without_a_source_id_a_store_keeps_the_one_it_made() {
    let (dir, path) = store_support::store_dir();
    let store = Store::create(&path, &StoreOptions::default()).unwrap();
    fill(&store, 1, 5);
    drop(store);
    let url = format!("file://{}", dir.path().join("repo").display());
    let first = json_lines(&ok(&[
        "repo",
        "push",
        "--store",
        path.to_str().unwrap(),
        "--repo",
        &url,
        "--json",
    ]));
    let source = first.last().unwrap()["source"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!source.is_empty());
    let store = Store::open(&path, &StoreOptions::default()).unwrap();
    fill(&store, 6, 5);
    drop(store);
    let second = json_lines(&ok(&[
        "repo",
        "push",
        "--store",
        path.to_str().unwrap(),
        "--repo",
        &url,
        "--json",
    ]));
    assert_eq!(second.last().unwrap()["source"], source.as_str());
    assert_eq!(second.last().unwrap()["pushed_through"], 10);
    let ls = json_lines(&ok(&["repo", "ls", "--repo", &url, "--json"]));
    assert_eq!(ls.len(), 1, "one source, not two: {ls:?}");
}

#[test]
fn an_unfinished_upload_is_replaced_not_doubled() {
    let (dir, path) = store_support::store_dir();
    let store = Store::create(&path, &StoreOptions::default()).unwrap();
    fill(&store, 1, 40);
    drop(store);
    let repo = dir.path().join("repo");
    let url = format!("file://{}", repo.display());
    // What a push killed between its segment and its manifest leaves behind.
    let seg_dir = repo.join("sources/node-b/segments");
    std::fs::create_dir_all(&seg_dir).unwrap();
    let leftover = seg_dir.join(segment::Manifest::object_name(1, 40));
    std::fs::write(&leftover, b"half an upload").unwrap();
    let ls = json_lines(&ok(&["repo", "ls", "--repo", &url, "--json"]));
    assert_eq!(ls[0]["unfinished"], 1);
    assert_eq!(ls[0]["segments"], 0);

    ok(&[
        "repo",
        "push",
        "--store",
        path.to_str().unwrap(),
        "--repo",
        &url,
        "--source-id",
        "node-b",
    ]);
    let files: Vec<_> = std::fs::read_dir(&seg_dir).unwrap().collect();
    assert_eq!(files.len(), 2, "one segment and its manifest, no copy");
    let got = segments(&repo, "node-b");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, all_envelopes(&path));
    let v = json_lines(&ok(&["repo", "verify", "--repo", &url, "--json"]));
    assert_eq!(v.last().unwrap()["problems"], 0);
    assert_eq!(v.last().unwrap()["unfinished"], 0);
}

#[test]
fn verify_finds_corrupted_truncated_and_unreadable_objects() {
    let (dir, path) = store_support::store_dir();
    let store = Store::create(&path, &StoreOptions::default()).unwrap();
    fill(&store, 1, 90);
    drop(store);
    let repo = dir.path().join("repo");
    let url = format!("file://{}", repo.display());
    ok(&[
        "repo",
        "push",
        "--store",
        path.to_str().unwrap(),
        "--repo",
        &url,
        "--source-id",
        "node-c",
        "--segment-mutations",
        "30",
    ]);
    let seg_dir = repo.join("sources/node-c/segments");
    // One bit flipped in the first segment, the second cut short, the third's
    // manifest replaced by garbage.
    let first = seg_dir.join(segment::Manifest::object_name(1, 30));
    let mut bytes = std::fs::read(&first).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&first, bytes).unwrap();
    let second = seg_dir.join(segment::Manifest::object_name(31, 60));
    let bytes = std::fs::read(&second).unwrap();
    std::fs::write(&second, &bytes[..bytes.len() - 7]).unwrap();
    std::fs::write(
        seg_dir.join(format!("{:020}-{:020}.json", 61, 90)),
        b"{not json",
    )
    .unwrap();

    let out = tidemark(&["repo", "verify", "--repo", &url, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&String::from_utf8_lossy(&out.stdout));
    let problems: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["type"] == "repo_problem")
        .collect();
    assert_eq!(problems.len(), 3, "{lines:?}");
    assert!(
        problems[0]["object"]
            .as_str()
            .unwrap()
            .ends_with("00000000000000000061-00000000000000000090.json"),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p["object"]
            .as_str()
            .unwrap()
            .ends_with("00000000000000000001-00000000000000000030.seg")
            && p["problem"].as_str().unwrap().contains("CRC-32C")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p["object"]
            .as_str()
            .unwrap()
            .ends_with("00000000000000000031-00000000000000000060.seg")
            && p["problem"]
                .as_str()
                .unwrap()
                .contains("bytes where the manifest says")),
        "{problems:?}"
    );
    // Text mode says the same, one PROBLEM line each.
    let out = tidemark(&["repo", "verify", "--repo", &url]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("PROBLEM")).count(),
        3,
        "{text}"
    );
}

#[test]
fn two_stores_pushing_as_one_source_are_refused_not_mixed() {
    let (dir_a, a) = store_support::store_dir();
    let (_dir_b, b) = store_support::store_dir();
    let store = Store::create(&a, &StoreOptions::default()).unwrap();
    fill(&store, 1, 20);
    drop(store);
    let store = Store::create(&b, &StoreOptions::default()).unwrap();
    fill(&store, 100, 20);
    drop(store);
    let repo = dir_a.path().join("repo");
    let url = format!("file://{}", repo.display());
    ok(&[
        "repo",
        "push",
        "--store",
        a.to_str().unwrap(),
        "--repo",
        &url,
        "--source-id",
        "same",
    ]);
    // Found before anything is written (the store's log does not reproduce the
    // repository's last segment): bad input, exit 2, one line.
    let out = tidemark(&[
        "repo",
        "push",
        "--store",
        b.to_str().unwrap(),
        "--repo",
        &url,
        "--source-id",
        "same",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("two stores push as source same"), "{err}");
    // The first store's segment is untouched.
    let got = segments(&repo, "same");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, all_envelopes(&a));
}

#[test]
fn bad_urls_and_urls_with_credentials_are_one_line_errors() {
    let (_dir, path) = store_support::store_dir();
    drop(Store::create(&path, &StoreOptions::default()).unwrap());
    for (url, words) in [
        ("nowhere", "not a URL"),
        ("ftp://host/x", "unknown scheme"),
        (
            "s3://AKIAEXAMPLE:hunter2@bucket/x",
            "credentials do not go in the URL",
        ),
        ("file://relative", "absolute path"),
    ] {
        for args in [
            vec![
                "repo",
                "push",
                "--store",
                path.to_str().unwrap(),
                "--repo",
                url,
            ],
            vec!["repo", "ls", "--repo", url],
            vec!["repo", "verify", "--repo", url],
        ] {
            let out = tidemark(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(
                err.starts_with("tidemark: ") && err.contains(words),
                "{args:?}: {err}"
            );
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
    let out = tidemark(&[
        "repo",
        "push",
        "--store",
        path.to_str().unwrap(),
        "--repo",
        "file:///tmp/x",
        "--source-id",
        "../up",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid source id"));
}

#[test]
fn rate_mb_keeps_the_upload_under_the_limit() {
    let (dir, path) = store_support::store_dir();
    let store = Store::create(&path, &StoreOptions::default()).unwrap();
    fill(&store, 1, 600);
    drop(store);
    let url = format!("file://{}", dir.path().join("repo").display());
    let r = json_lines(&ok(&[
        "repo",
        "push",
        "--store",
        path.to_str().unwrap(),
        "--repo",
        &url,
        "--source-id",
        "slow",
        "--segment-mutations",
        "50",
        "--rate-mb",
        "0.02",
        "--json",
    ]));
    let last = r.last().unwrap();
    let bytes = last["bytes"].as_f64().unwrap();
    let seconds = last["seconds"].as_f64().unwrap();
    // The throttle sleeps until bytes sent / elapsed is back under the rate: a lower
    // bound on the time by construction, not a measurement of speed.
    assert!(bytes / 1e6 / seconds <= 0.02 * 1.01, "{last}");
    assert!(
        bytes > 10_000.0,
        "enough bytes for the limit to bite: {last}"
    );
}

#[test]
fn an_encrypted_repository_hides_the_rows_and_opens_only_with_its_key() {
    let (dir, path) = store_support::store_dir();
    let store = Store::create(&path, &StoreOptions::default()).unwrap();
    fill(&store, 1, 60);
    // Complete up to its last write, so a pull merges all of it.
    store
        .append_batch_with(
            &[],
            &tidemark::store::TxnExtras {
                tidemark: Some(1_800_000_000_000_000_000 + 60 * 1_000_000),
                ..Default::default()
            },
        )
        .unwrap();
    drop(store);
    let key = dir.path().join("key");
    std::fs::write(&key, [0x5au8; 32]).unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, [0xa5u8; 32]).unwrap();
    let repo = dir.path().join("repo");
    let url = format!("file://{}", repo.display());
    ok(&[
        "repo",
        "push",
        "--store",
        path.to_str().unwrap(),
        "--repo",
        &url,
        "--source-id",
        "sealed",
        "--segment-mutations",
        "25",
        "--encrypt-key-file",
        key.to_str().unwrap(),
    ]);
    // No row content in any object (the cells hold `value-…` text).
    let seg_dir = repo.join("sources/sealed/segments");
    for f in std::fs::read_dir(&seg_dir).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"value-"),
            "row content in the clear"
        );
    }
    // Without the key: integrity only; with it: everything decoded; a wrong key is
    // named as such.
    let v = json_lines(&ok(&["repo", "verify", "--repo", &url, "--json"]));
    let summary = v.last().unwrap();
    assert_eq!(
        (summary["problems"].as_u64(), summary["sealed"].as_u64()),
        (Some(0), Some(3)),
        "{summary}"
    );
    let v = json_lines(&ok(&[
        "repo",
        "verify",
        "--repo",
        &url,
        "--json",
        "--encrypt-key-file",
        key.to_str().unwrap(),
    ]));
    assert_eq!(v.last().unwrap()["mutations"], 60);
    let out = tidemark(&[
        "repo",
        "verify",
        "--repo",
        &url,
        "--json",
        "--encrypt-key-file",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not with the key given"));
    // A flipped bit in an encrypted object is found without the key too.
    let first = seg_dir.join(segment::Manifest::object_name(1, 25));
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&first, &bytes).unwrap();
    let out = tidemark(&["repo", "verify", "--repo", &url]);
    assert_eq!(out.status.code(), Some(1));
    bytes[40] ^= 1;
    std::fs::write(&first, &bytes).unwrap();

    // A pull needs the key, and with it gives back the store's log.
    let work = dir.path().join("work");
    let out = tidemark(&[
        "repo",
        "pull",
        "--repo",
        &url,
        "--store",
        work.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --encrypt-key-file"));
    let _ = std::fs::remove_dir_all(&work);
    ok(&[
        "repo",
        "pull",
        "--repo",
        &url,
        "--store",
        work.to_str().unwrap(),
        "--encrypt-key-file",
        key.to_str().unwrap(),
    ]);
    let merged = all_envelopes(&work);
    let original = all_envelopes(&path);
    assert_eq!(merged.len(), 60);
    assert!(
        merged
            .iter()
            .map(|e| &e.mutation)
            .eq(original.iter().map(|e| &e.mutation)),
        "the pulled log differs from the store's"
    );
}
