//! Store format 6 (issue #11): the envelope holds the write line typed, no JSON text.
//!
//! - A tap stores every decoder line as a typed [`StoredLine::Write`] and every oplog
//!   entry logged without a client write as [`StoredLine::Oplog`] (its values the
//!   payload's own document): no line falls back to a value tree.
//! - A format-5 store (`tests/fixtures/store_v5`, made by commit af238e4, the release
//!   before format 6) has every JSON line converted to a typed one — none is kept as
//!   a tree. (`output_baseline` shows `log`/`status` print exactly what that release
//!   printed, read as it is and after conversion.)
//! - Repository segments keep the format they were sealed in: format-5 segments
//!   (`tests/fixtures/repo_v5/repo`, pushed by that release from two of those stores,
//!   10 mutations a segment) decode to the same mutations as the store they came
//!   from, and `repo pull` of them prints with `log --json` exactly what that
//!   release's pull printed (`repo_v5/pull.log.jsonl.gz`).
//! - The typed envelope is smaller than the format-5 one of the same capture (the
//!   fixtures were tapped from `captures/NAME.pcap`; the numbers are printed).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use tidemark::repo::segment::{self, Manifest};
use tidemark::store::{Envelope, LineValues, Query, Store, StoreOptions, StoredLine};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tidemark(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .expect("run tidemark");
    assert!(
        out.status.success(),
        "tidemark {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn envelopes(store: &Path) -> Vec<Envelope> {
    let s = Store::open(store, &StoreOptions::default().read_only()).unwrap();
    let r = s.reader().unwrap();
    r.query(&Query::all())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// How many lines of each kind: (typed write lines, oplog lines, trees, none).
fn kinds(log: &[Envelope]) -> (usize, usize, usize, usize) {
    let mut k = (0, 0, 0, 0);
    for e in log {
        match &e.mutation.line {
            Some(StoredLine::Write(_)) => k.0 += 1,
            Some(StoredLine::Oplog { .. }) => k.1 += 1,
            Some(StoredLine::Tree(_)) => k.2 += 1,
            None => k.3 += 1,
        }
    }
    k
}

/// A format-5 fixture store unpacked into `dir`.
fn v5_store(name: &str, dir: &Path) -> PathBuf {
    let store = dir.join(name);
    std::fs::create_dir(&store).unwrap();
    std::fs::write(
        store.join("data.mdb"),
        gunzip(&root().join(format!("tests/fixtures/store_v5/{name}/data.mdb.gz"))),
    )
    .unwrap();
    store
}

#[test]
fn a_tap_stores_typed_lines_and_oplog_lines_without_trees() {
    for (name, oplog) in [("cassandra5_v4_lz4", 0), ("mongo_sharded", 7)] {
        let pcap = root().join(format!("captures/{name}.pcap"));
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        tidemark(&[
            "tap",
            "--pcap",
            pcap.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ]);
        let log = envelopes(&store);
        let (typed, oplogs, trees, none) = kinds(&log);
        assert_eq!((oplogs, trees, none), (oplog, 0, 0), "{name}");
        assert_eq!(typed + oplogs, log.len(), "{name}");
        for e in &log {
            if let Some(StoredLine::Oplog { values, .. }) = &e.mutation.line {
                assert_eq!(values, &None, "{name} seq {}: values stored twice", e.seq);
                assert_eq!(e.mutation.line_values, Some(LineValues::PayloadDocument));
            }
        }
    }
}

#[test]
fn every_line_of_a_format_5_store_becomes_typed() {
    let dir = tempfile::tempdir().unwrap();
    for (name, oplog) in [
        ("cassandra5_v4_lz4", 0),
        ("cql_v4_lz4", 0),
        ("mongo_failover", 1),
        ("mongo_sharded", 7),
        ("mongo_zstd", 0),
    ] {
        let store = v5_store(name, dir.path());
        let log = envelopes(&store);
        assert!(!log.is_empty(), "{name}");
        let (typed, oplogs, trees, none) = kinds(&log);
        assert_eq!((oplogs, trees, none), (oplog, 0, 0), "{name}");
        assert_eq!(typed + oplogs, log.len(), "{name}");
        // Undecided writes (parked mutations) convert too.
        let s = Store::open(&store, &StoreOptions::default().read_only()).unwrap();
        let undecided = s.list_undecided().unwrap();
        if matches!(name, "cql_v4_lz4" | "mongo_zstd") {
            assert!(
                !undecided.is_empty(),
                "{name}: the fixture holds undecided writes"
            );
        }
        for (_, u) in undecided {
            assert!(
                matches!(u.mutation.line, Some(StoredLine::Write(_))),
                "{name}: {:?}",
                u.mutation.line
            );
        }
    }
}

/// The status fields that may differ by design: the store's path and format.
fn comparable_status(bytes: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("store");
    o.remove("format_version");
    v
}

#[test]
fn format_5_segments_read_as_sealed_and_pull_prints_as_that_release_did() {
    let fixture = root().join("tests/fixtures/repo_v5");
    let dir = tempfile::tempdir().unwrap();
    for source in ["cql_v4_lz4", "mongo_failover"] {
        let segs = fixture.join(format!("repo/sources/{source}/segments"));
        let mut manifests: Vec<PathBuf> = std::fs::read_dir(&segs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        manifests.sort();
        assert!(manifests.len() >= 2, "{source}");
        let mut from_segments = Vec::new();
        for p in manifests {
            let m: Manifest = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            assert_eq!(m.store_format, 5, "{}", p.display());
            let object = std::fs::read(segs.join(&m.object)).unwrap();
            from_segments.extend(segment::read(&object, &m, None).unwrap());
        }
        let store = v5_store(source, dir.path());
        assert!(
            from_segments == envelopes(&store),
            "{source}: format-5 segments decode to other mutations than their store"
        );
        assert_eq!(
            kinds(&from_segments).2,
            0,
            "{source}: a line kept as a tree"
        );
    }

    let repo = dir.path().join("repo");
    copy_dir(&fixture.join("repo"), &repo);
    let url = format!("file://{}", repo.display());
    let work = dir.path().join("work");
    let work = work.to_str().unwrap();
    tidemark(&["repo", "pull", "--repo", &url, "--store", work]);
    let log = tidemark(&["log", "--store", work, "--json"]);
    let want = gunzip(&fixture.join("pull.log.jsonl.gz"));
    assert!(
        log == want,
        "log --json of the pulled store differs from that release's:\n{}",
        String::from_utf8_lossy(&log)
    );
    let status = tidemark(&["status", "--store", work, "--json"]);
    assert_eq!(
        comparable_status(&status),
        comparable_status(&gunzip(&fixture.join("pull.status.json.gz")))
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Mutations and their stored bytes (the envelopes as the log holds them).
fn raw_sizes(store: &Path) -> (u64, u64) {
    let s = Store::open(store, &StoreOptions::default().read_only()).unwrap();
    let r = s.reader().unwrap();
    let mut sizes = (0u64, 0u64);
    r.for_each_raw(1, u64::MAX, |_, _, bytes| {
        sizes.0 += 1;
        sizes.1 += bytes.len() as u64;
        true
    })
    .unwrap();
    sizes
}

#[test]
fn a_typed_envelope_is_smaller_than_the_format_5_one_of_the_same_capture() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "cassandra5_v4_lz4",
        "cql_v4_lz4",
        "mongo_sharded",
        "mongo_zstd",
    ] {
        let before = raw_sizes(&v5_store(name, dir.path()));
        let store = dir.path().join(format!("{name}.v6"));
        let pcap = root().join(format!("captures/{name}.pcap"));
        tidemark(&[
            "tap",
            "--pcap",
            pcap.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ]);
        let after = raw_sizes(&store);
        assert_eq!(before.0, after.0, "{name}: another number of mutations");
        println!(
            "{name}: {} mutations, average envelope {} bytes (format 5) -> {} bytes (format 6)",
            after.0,
            before.1 / before.0,
            after.1 / after.0
        );
        assert!(after.1 < before.1, "{name}: {after:?} vs {before:?}");
    }
}
