//! The JSON contract does not move (issue #11): `inspect --json`, `log --json` and
//! `status --json` on every capture in `captures/` and `../shared/captures` are
//! byte-identical to what the release before the typed model printed.
//!
//! The baseline was made with that release (commit 310e92f) before the model changed:
//! `tests/fixtures/baseline/NAME.{inspect,log}.jsonl.gz` and `NAME.status.json.gz` for
//! this project's captures (gzip of the exact output), and for the third-party captures
//! only a digest, line count and name per output in `shared.sha256` (their content is
//! not copied into the project). `status` is compared without its `store` path and
//! `format_version`, the two fields that may differ by design.
//!
//! A format-2 store made by that release (`tests/fixtures/store_v2/NAME/data.mdb.gz`,
//! tapped from `captures/NAME.pcap`) must still be read by `log`, and its mutations come
//! out as that release printed them (`store_v2/NAME/{log.jsonl,status.json}.gz` where
//! a later behaviour fix regenerated the baseline, else the baseline).
//!
//! Regenerated since, by behaviour fixes (the commit messages say which writes
//! changed): the `log`/`status` fixtures of the MongoDB captures whose outcomes or
//! reasons the deployment rules and the oplog adoption changed (issue #12 part 4).
//!
//! Added since: the fixtures of captures recorded after the baseline
//! (`cassandra5_v4_lz4`, `ferretdb_pymongo`: captures/realdb.md), made with the binary
//! of the commit that added them, so later changes to their output are seen.

mod require;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// The ports the baseline was made with: the shared captures that use other ports
/// for MongoDB (SOURCES.md lists them).
fn port_args(name: &str) -> Vec<&'static str> {
    for (needle, port) in [
        ("op_command_2inserts", "20000"),
        ("mongodb_insert_duplicate_key", "27018"),
        ("mongodb_op_msg_opcode", "9991"),
        ("mongo-msg", "3717"),
        // captures/ferretdb_pymongo.pcap: FerretDB listens on 27018 (captures/realdb.md)
        ("ferretdb", "27018"),
    ] {
        if name.contains(needle) {
            return vec!["--mongo-port", port];
        }
    }
    Vec::new()
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
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// `status --json` without the two fields that differ by design, and `held_by`
/// (added after the fixtures: it restates the oldest of `undecided` and `gaps`,
/// which are compared).
fn comparable_status(bytes: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).expect("status is JSON");
    let o = v.as_object_mut().expect("status is an object");
    o.remove("store");
    o.remove("format_version");
    o.remove("held_by");
    v
}

/// The three outputs of a capture as this build prints them.
struct Outputs {
    inspect: Vec<u8>,
    log: Vec<u8>,
    status: Vec<u8>,
}

fn outputs(pcap: &Path, name: &str) -> Outputs {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    let pcap = pcap.to_str().unwrap();
    let ports = port_args(name);
    let mut args = vec!["inspect", "--json"];
    args.extend(&ports);
    args.push(pcap);
    let inspect = tidemark(&args);
    let mut args = vec!["tap", "--pcap", pcap, "--store", store];
    args.extend(&ports);
    tidemark(&args);
    Outputs {
        inspect,
        log: tidemark(&["log", "--store", store, "--json"]),
        status: tidemark(&["status", "--store", store, "--json"]),
    }
}

/// The first line where two outputs differ, for a readable failure.
fn first_difference(got: &[u8], want: &[u8]) -> String {
    let g = String::from_utf8_lossy(got);
    let w = String::from_utf8_lossy(want);
    for (i, (a, b)) in g.lines().zip(w.lines()).enumerate() {
        if a != b {
            return format!("line {}:\n  now:    {a}\n  before: {b}", i + 1);
        }
    }
    format!(
        "{} lines now, {} before",
        g.lines().count(),
        w.lines().count()
    )
}

#[test]
fn own_captures_print_exactly_what_the_previous_release_printed() {
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(root().join("captures"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "pcap").then(|| p.file_stem().unwrap().to_string_lossy().into())
        })
        .collect();
    names.sort();
    for name in &names {
        let base = fixtures().join("baseline");
        let inspect_fixture = base.join(format!("{name}.inspect.jsonl.gz"));
        if !inspect_fixture.exists() {
            // A capture recorded after the baseline has nothing to be compared with.
            continue;
        }
        let now = outputs(&root().join(format!("captures/{name}.pcap")), name);
        for (what, got, want) in [
            ("inspect --json", &now.inspect, gunzip(&inspect_fixture)),
            (
                "log --json",
                &now.log,
                gunzip(&base.join(format!("{name}.log.jsonl.gz"))),
            ),
        ] {
            if *got != want {
                failures.push(format!("{name} {what}: {}", first_difference(got, &want)));
            }
        }
        let want = gunzip(&base.join(format!("{name}.status.json.gz")));
        if comparable_status(&now.status) != comparable_status(&want) {
            failures.push(format!(
                "{name} status --json: {}",
                first_difference(&now.status, &want)
            ));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 19, "only {checked} captures had a baseline");
}

#[test]
fn shared_captures_print_exactly_what_the_previous_release_printed() {
    let Some(shared) = require::shared_captures() else {
        return;
    };
    let manifest = std::fs::read_to_string(fixtures().join("baseline/shared.sha256")).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut cache: Option<(String, Outputs)> = None;
    for line in manifest.lines() {
        let mut parts = line.split(' ');
        let (digest, lines, file) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        // shared_DIR_NAME.KIND.jsonl: DIR has no underscore, NAME may.
        let (stem, kind) = file.split_once('.').unwrap();
        let rest = stem.strip_prefix("shared_").unwrap();
        let (dir, name) = rest.split_once('_').unwrap();
        let pcap = shared.join(dir).join(format!("{name}.pcap"));
        if cache.as_ref().map(|(s, _)| s.as_str()) != Some(stem) {
            if !pcap.exists() {
                failures.push(format!("{}: missing", pcap.display()));
                continue;
            }
            cache = Some((stem.to_owned(), outputs(&pcap, name)));
        }
        let now = &cache.as_ref().unwrap().1;
        let got = match kind {
            "inspect.jsonl" => now.inspect.clone(),
            "log.jsonl" => now.log.clone(),
            // status is compared by content (store path aside) below
            _ => {
                let v = comparable_status(&now.status);
                assert!(v.get("tidemark").is_some() || v.get("mutations").is_some());
                continue;
            }
        };
        let got_digest: String = Sha256::digest(&got)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let got_lines = got.iter().filter(|&&b| b == b'\n').count().to_string();
        if got_digest != digest || got_lines != lines {
            failures.push(format!(
                "{file}: {got_lines} lines {got_digest}, before {lines} lines {digest}"
            ));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 48, "{checked} outputs checked");
}

/// What the release that made the format-2 store `src` (named `name`) printed for
/// it (`kind` is `log.jsonl` or `status.json`): the baseline, unless a later
/// behaviour fix changed the baseline — then the old output is kept beside the
/// store, since a store keeps the decisions it was written with.
fn printed_by_that_release(src: &Path, name: &str, kind: &str) -> PathBuf {
    let own = src.join(format!("{kind}.gz"));
    if own.exists() {
        own
    } else {
        fixtures().join(format!("baseline/{name}.{kind}.gz"))
    }
}

/// Older stores kept as fixtures: the directory, its format, and how many stores.
/// Format 3 (`store_v3/NAME`, made by the release before format 4, commit 6295811,
/// with its own `log --json` and `status --json` output beside each store) is what
/// moved the write line's MongoDB values out of its JSON and typed the DDL.
/// Format 5 (`store_v5/NAME`, made by the release before format 6, commit af238e4,
/// tapped from `captures/NAME.pcap`, with that release's `log --json` and `status
/// --json` beside each store) kept the write line as JSON text, which format 6 types;
/// its stores hold undecided writes (`cql_v4_lz4`, `mongo_zstd`) and the lines of
/// oplog entries logged without a client write (`mongo_failover`, `mongo_sharded`).
const OLD_STORES: [(&str, u64, usize); 3] =
    [("store_v2", 2, 4), ("store_v3", 3, 3), ("store_v5", 5, 5)];

#[test]
fn a_format_2_store_is_still_read_by_log_and_status() {
    for (dir, _, count) in OLD_STORES {
        old_stores_are_read_by_log_and_status(dir, count);
    }
}

fn old_stores_are_read_by_log_and_status(dir: &str, count: usize) {
    let base = fixtures().join(dir);
    let mut checked = 0;
    for entry in std::fs::read_dir(&base).unwrap() {
        let src = entry.unwrap().path();
        let name = src.file_name().unwrap().to_string_lossy().into_owned();
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir(&store).unwrap();
        std::fs::write(store.join("data.mdb"), gunzip(&src.join("data.mdb.gz"))).unwrap();
        let store = store.to_str().unwrap();
        let printed = |kind: &str| printed_by_that_release(&src, &name, kind);
        let log = tidemark(&["log", "--store", store, "--json"]);
        let want = gunzip(&printed("log.jsonl"));
        assert!(log == want, "{name}: {}", first_difference(&log, &want));
        let status = tidemark(&["status", "--store", store, "--json"]);
        let want = gunzip(&printed("status.json"));
        assert_eq!(
            comparable_status(&status),
            comparable_status(&want),
            "{name}"
        );
        checked += 1;
    }
    assert_eq!(checked, count, "{dir}");
}

#[test]
fn a_writer_converts_a_format_2_store_in_place_and_nothing_printed_changes() {
    for (dir, format, count) in OLD_STORES {
        a_writer_converts_old_stores_in_place(dir, format, count);
    }
}

fn a_writer_converts_old_stores_in_place(dir: &str, old_format: u64, count: usize) {
    use tidemark::store::{Store, StoreOptions, FORMAT_VERSION};
    let base = fixtures().join(dir);
    let mut checked = 0;
    for entry in std::fs::read_dir(&base).unwrap() {
        let src = entry.unwrap().path();
        let name = src.file_name().unwrap().to_string_lossy().into_owned();
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir(&store).unwrap();
        std::fs::write(store.join("data.mdb"), gunzip(&src.join("data.mdb.gz"))).unwrap();
        let path = store.to_str().unwrap();
        let format = |path: &str| -> serde_json::Value {
            serde_json::from_slice::<serde_json::Value>(&tidemark(&[
                "status", "--store", path, "--json",
            ]))
            .unwrap()["format_version"]
                .clone()
        };
        assert_eq!(
            format(path),
            old_format,
            "{name}: a reader leaves the format alone"
        );
        let envelopes = || {
            let s = Store::open(&store, &StoreOptions::default().read_only()).unwrap();
            let log: Vec<_> = {
                let r = s.reader().unwrap();
                r.query(&tidemark::store::Query::all())
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            };
            (log, s.list_undecided().unwrap())
        };
        let before = envelopes();
        assert!(!before.0.is_empty(), "{name}");
        // Opening for writing converts, and doing it again changes nothing.
        for _ in 0..2 {
            let s = Store::open(&store, &StoreOptions::default()).unwrap();
            assert_eq!(s.format(), FORMAT_VERSION);
        }
        assert_eq!(format(path), u64::from(FORMAT_VERSION), "{name}");
        assert!(
            envelopes() == before,
            "{name}: the conversion changed a mutation"
        );
        let log = tidemark(&["log", "--store", path, "--json"]);
        let want = gunzip(&printed_by_that_release(&src, &name, "log.jsonl"));
        assert!(log == want, "{name}: {}", first_difference(&log, &want));
        let status = tidemark(&["status", "--store", path, "--json"]);
        let want = gunzip(&printed_by_that_release(&src, &name, "status.json"));
        assert_eq!(
            comparable_status(&status),
            comparable_status(&want),
            "{name}"
        );
        checked += 1;
    }
    assert_eq!(checked, count, "{dir}");
}
