//! `tidemark restore --to mongodb://…` and `tidemark verify --against mongodb://…`
//! between two testbed replica sets: the version of a tapped set (through a failover
//! with a rollback, `restore_mongo_support`) is restored into a second 3-member set
//! that requires SCRAM; what the second set holds, read back through the real
//! `mongodb` driver at majority, must equal the first set's own committed state
//! (the testbed's ground truth), never the rolled-back writes. Each test restores
//! into its own database (`--rename t=…`).

mod live_tap_support;
mod ready_support;
mod require;
mod restore_mongo_support;

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use mongodb::options::{ClientOptions, WriteConcern};
use mongodb::Client;
use restore_mongo_support::{
    build, index_names, json_line, read_all, store_arg, tidemark, Docs, Source, BULK, VERSION,
};
use tidemark_testbed::mongo::scram::ScramUser;
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};

const USER: &str = "restorer";
const PASSWORD: &str = "s3cret-Pw";

struct World {
    rt: tokio::runtime::Runtime,
    source: Source,
    /// The target set (kept running for the whole binary).
    target: MongoReplicaSet,
}

static WORLD: OnceLock<Option<World>> = OnceLock::new();

/// The source version and the target set, built once per test binary; `None`
/// when live capture is not available (a counted skip, a failure under CI).
fn world() -> Option<&'static World> {
    WORLD
        .get_or_init(|| {
            if !require::live_capture() {
                return None;
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let source = build(&rt, 62);
            let target = rt
                .block_on(MongoReplicaSet::start(ReplSetConfig {
                    base_addr: Ipv4Addr::new(127, 0, 63, 1),
                    port: 0,
                    max_await: Duration::from_millis(200),
                    scram_user: Some(ScramUser::new(USER, PASSWORD)),
                    ..ReplSetConfig::default()
                }))
                .expect("target set");
            rt.block_on(target.wait_for_primary(Duration::from_secs(30)))
                .expect("a primary");
            Some(World { rt, source, target })
        })
        .as_ref()
}

impl World {
    /// The target's URI with credentials.
    fn uri(&self) -> String {
        self.target
            .uri()
            .replace("mongodb://", &format!("mongodb://{USER}:{PASSWORD}@"))
    }

    fn client(&self) -> Client {
        self.rt.block_on(async {
            let mut o = ClientOptions::parse(format!("{}&w=majority", self.uri()))
                .await
                .unwrap();
            o.write_concern = Some(WriteConcern::majority());
            Client::with_options(o).unwrap()
        })
    }

    fn store(&self) -> &str {
        store_arg(&self.source.store)
    }

    /// `tidemark restore` of the version into the target with `args`.
    fn restore(&self, args: &[&str]) -> std::process::Output {
        let uri = self.uri();
        let mut all = vec![
            "restore",
            "--version",
            VERSION,
            "--to",
            &uri,
            "--store",
            self.store(),
            "--json",
        ];
        all.extend_from_slice(args);
        tidemark(&all)
    }

    fn verify(&self, args: &[&str]) -> std::process::Output {
        let uri = self.uri();
        let mut all = vec![
            "verify",
            "--version",
            VERSION,
            "--against",
            &uri,
            "--store",
            self.store(),
            "--json",
        ];
        all.extend_from_slice(args);
        tidemark(&all)
    }

    fn read(&self, client: &Client, db: &str, coll: &str) -> Docs {
        self.rt.block_on(read_all(client, db, coll))
    }

    /// The target's `db` equals the source's committed `t.c`, `t.d`, `t.bulk`.
    fn assert_equal_to_truth(&self, client: &Client, db: &str) {
        for coll in ["c", "d", "bulk"] {
            let got = self.read(client, db, coll);
            let want = &self.source.truth[&format!("t.{coll}")];
            assert_eq!(got.len(), want.len(), "{db}.{coll} count");
            assert!(
                got == *want,
                "{db}.{coll} differs from the source's committed state"
            );
        }
        let c = self.read(client, db, "c");
        for id in &self.source.rolled_back {
            assert!(!c.contains_key(id), "rolled-back {id} restored");
        }
    }
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_restore_equals_the_sources_committed_state_and_verify_names_a_changed_document() {
    let Some(w) = world() else { return };
    let out = w.restore(&["--rename", "t=t1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json_line(&out, "restore");
    let progress = json_line(&out, "progress");
    assert_eq!(progress["version"], VERSION);
    let docs = (w.source.truth["t.c"].len() + w.source.truth["t.d"].len() + BULK as usize) as u64;
    assert_eq!(report["total"]["written"], docs);
    assert!(report["error"].is_null());
    eprintln!(
        "measure: testbed set: {docs} docs, {:.1} MB in {:.2} s: {:.0} docs/s, {:.2} MB/s",
        report["total"]["bytes"].as_f64().unwrap() / 1e6,
        report["seconds"].as_f64().unwrap(),
        docs as f64 / report["seconds"].as_f64().unwrap(),
        report["total"]["bytes"].as_f64().unwrap() / 1e6 / report["seconds"].as_f64().unwrap(),
    );
    let client = w.client();
    w.assert_equal_to_truth(&client, "t1");
    // the index the source's workload made (logged createIndexes) exists in the target
    assert_eq!(
        w.rt.block_on(index_names(&client, "t1", "c")),
        ["_id_", "n_1"]
    );

    let out = w.verify(&["--rename", "t=t1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = json_line(&out, "verify");
    assert_eq!(v["equal"], true);
    assert_eq!(v["rows"], docs);

    w.rt.block_on(async {
        client
            .database("t1")
            .collection::<Document>("c")
            .update_one(doc! {"_id": 2}, doc! {"$set": {"s": "changed"}})
            .await
            .unwrap();
    });
    let out = w.verify(&["--rename", "t=t1"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = json_line(&out, "verify");
    assert_eq!(v["different"], 1);
    let d = &v["differences"][0];
    assert_eq!(d["namespace"], "t.c");
    assert_eq!(d["key"], r#"{"_id":2}"#);
    assert_eq!(d["kind"], "different");
    assert_eq!(d["detail"], r#"s: version "two", target "changed""#);
    w.rt.block_on(async { client.shutdown().await });
}

#[test]
fn into_a_non_empty_collection_documents_are_replaced_and_extras_left() {
    let Some(w) = world() else { return };
    let client = w.client();
    let truth_c = &w.source.truth["t.c"];
    let same = truth_c
        .values()
        .find(|d| d.get_i32("_id").ok() == Some(5))
        .unwrap()
        .clone();
    w.rt.block_on(async {
        let c = client.database("t2").collection::<Document>("c");
        c.insert_many([
            doc! {"_id": 1, "n": 0, "old": true},
            same,
            doc! {"_id": 999, "old": true},
        ])
        .await
        .unwrap();
    });
    let out = w.restore(&["--rename", "t=t2", "--collection", "c"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json_line(&out, "restore");
    assert_eq!(
        report["total"]["skipped"], 1,
        "the identical document is skipped"
    );
    assert_eq!(report["total"]["written"], truth_c.len() as u64 - 1);
    let mut got = w.read(&client, "t2", "c");
    let extra = got.remove(&format!("{:?}", Some(&mongodb::bson::Bson::Int32(999))));
    assert!(extra.is_some(), "the target's own document is left");
    assert!(
        got == *truth_c,
        "t2.c differs from the source's committed state"
    );

    let out = w.verify(&["--rename", "t=t2", "--collection", "c"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_line(&out, "verify");
    assert_eq!(v["different"], 1);
    assert_eq!(v["differences"][0]["kind"], "extra");
    assert_eq!(v["differences"][0]["key"], r#"{"_id":999}"#);
    w.rt.block_on(async { client.shutdown().await });
}

/// A small deterministic generator (the delays need no cryptographic randomness).
fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

#[test]
fn resume_after_sigterm_and_sigkill_at_ten_moments_ends_as_an_uninterrupted_restore() {
    let Some(w) = world() else { return };
    let uri = w.uri();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    let client = w.client();
    let spawn = |resume: bool| {
        let mut args = vec![
            "restore",
            "--version",
            VERSION,
            "--to",
            &uri,
            "--store",
            w.store(),
            "--json",
            "--rename",
            "t=t3",
            "--rate",
            "300",
            "--parallel",
            "4",
        ];
        if resume {
            args.push("--resume");
        }
        Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // SIGTERM: the restore stops itself, says so, and keeps its checkpoint.
    let child = spawn(false);
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signals the child this test spawned, by its id.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("continue with --resume"),
        "{}",
        stderr(&out)
    );
    let report = json_line(&out, "restore");
    assert_eq!(report["error"], "interrupted by a signal");
    let written = report["total"]["written"].as_u64().unwrap();
    assert!(
        written > 0 && written < BULK as u64,
        "stopped midway: {written}"
    );

    // a resume must select what the interrupted restore selected
    let other = w.restore(&["--rename", "t=t3", "--resume", "--collection", "d"]);
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("--resume continues the restore of"),
        "{}",
        stderr(&other)
    );

    // SIGKILL at ten random moments, each run continuing the last.
    let (mut killed, mut partial, mut resume) = (0, 0, true);
    for round in 0..30 {
        if killed == 10 {
            break;
        }
        let mut child = spawn(resume);
        std::thread::sleep(Duration::from_millis(200 + next(&mut seed) % 800));
        let finished = child.try_wait().unwrap();
        if finished.is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        let out = child.wait_with_output().unwrap();
        match finished.map(|s| s.code()) {
            None => resume = true,
            // killed before its first checkpoint the last time: start over
            Some(Some(2)) if stderr(&out).contains("no interrupted restore") => resume = false,
            other => panic!("round {round}: ended by itself {other:?}: {}", stderr(&out)),
        }
        let n: usize = ["c", "d", "bulk"]
            .iter()
            .map(|c| w.read(&client, "t3", c).len())
            .sum();
        if n > 0 && n < BULK as usize {
            partial += 1;
        }
    }
    assert_eq!(killed, 10);
    assert!(partial > 0, "no kill landed in the middle of a restore");
    let out = w.restore(&["--rename", "t=t3", "--resume"]);
    let out = if out.status.code() == Some(2) && stderr(&out).contains("no interrupted restore") {
        w.restore(&["--rename", "t=t3"])
    } else {
        out
    };
    assert!(out.status.success(), "{}", stderr(&out));
    w.assert_equal_to_truth(&client, "t3");
    assert_eq!(
        w.rt.block_on(index_names(&client, "t3", "c")),
        ["_id_", "n_1"]
    );
    let out = w.verify(&["--rename", "t=t3"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // a finished restore keeps no checkpoint
    let out = w.restore(&["--rename", "t=t3", "--resume"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no interrupted restore"),
        "{}",
        stderr(&out)
    );
    w.rt.block_on(async { client.shutdown().await });
}

#[test]
fn dry_run_writes_nothing_and_selection_with_rename_restores_only_what_is_named() {
    let Some(w) = world() else { return };
    let client = w.client();
    let out = w.restore(&["--rename", "t=t4", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json_line(&out, "restore");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["namespaces"]["t4.bulk"]["written"], BULK as u64);
    let schema = report["schema"].to_string();
    assert!(
        schema.contains("createIndexes") && schema.contains("n_1"),
        "{schema}"
    );
    let names =
        w.rt.block_on(async { client.database("t4").list_collection_names().await })
            .unwrap();
    assert!(names.is_empty(), "a dry run created {names:?}");

    let out = w.restore(&["--collection", "d", "--rename", "t.d=t4.dd"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut names =
        w.rt.block_on(async { client.database("t4").list_collection_names().await })
            .unwrap();
    names.sort();
    assert_eq!(names, ["dd"]);
    assert!(w.read(&client, "t4", "dd") == w.source.truth["t.d"]);
    let out = w.verify(&["--collection", "d", "--rename", "t.d=t4.dd"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    w.rt.block_on(async { client.shutdown().await });
}

#[test]
fn bad_input_is_one_line_exit_2_and_writes_nothing() {
    let Some(w) = world() else { return };
    let store = w.store();
    let started = Instant::now();
    let unreachable = tidemark(&[
        "restore",
        "--version",
        VERSION,
        "--to",
        "mongodb://127.0.0.1:9/",
        "--store",
        store,
        "--rename",
        "t=t5",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "server selection is bounded"
    );
    let wrong = w
        .target
        .uri()
        .replace("mongodb://", &format!("mongodb://{USER}:wrong-{PASSWORD}@"));
    let bad_auth = tidemark(&[
        "restore",
        "--version",
        VERSION,
        "--to",
        &wrong,
        "--store",
        store,
        "--rename",
        "t=t5",
    ]);
    let uri = w.uri();
    let no_version = tidemark(&[
        "restore",
        "--version",
        "nope",
        "--to",
        &uri,
        "--store",
        store,
        "--rename",
        "t=t5",
    ]);
    let no_db = tidemark(&[
        "restore",
        "--version",
        VERSION,
        "--to",
        &uri,
        "--store",
        store,
        "--db",
        "absent",
    ]);
    let too_many = tidemark(&[
        "restore",
        "--version",
        VERSION,
        "--to",
        &uri,
        "--store",
        store,
        "--rename",
        "t=t5",
        "--write-concern",
        "4",
    ]);
    let verify_missing = tidemark(&[
        "verify",
        "--version",
        "nope",
        "--against",
        &uri,
        "--store",
        store,
    ]);
    for (what, out) in [
        ("unreachable", &unreachable),
        ("wrong credentials", &bad_auth),
        ("no such version", &no_version),
        ("no such db", &no_db),
        ("write concern beyond the members", &too_many),
        ("verify of no such version", &verify_missing),
    ] {
        let err = stderr(out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
        assert!(err.starts_with("tidemark: "), "{what}: {err}");
        assert!(!err.contains(PASSWORD), "{what}: the password is printed");
    }
    assert!(
        stderr(&bad_auth).contains("Authentication"),
        "{}",
        stderr(&bad_auth)
    );
    let client = w.client();
    let names =
        w.rt.block_on(async { client.database("t5").list_collection_names().await })
            .unwrap();
    assert!(names.is_empty(), "bad input wrote {names:?}");
    w.rt.block_on(async { client.shutdown().await });
}

/// The target's primary is cut off from its set as the restore starts (its own set,
/// so the election disturbs no other test): whatever the restore sent it either
/// waits for a majority and is retried on the new primary, or waits in server
/// selection for the election, and what the old primary applied alone is rolled
/// back when it returns; the restore still ends equal to the source's committed
/// state, indexes included, with nothing failed.
#[test]
fn a_restore_across_a_failover_in_the_target_ends_equal_indexes_included() {
    let Some(w) = world() else { return };
    let set =
        w.rt.block_on(MongoReplicaSet::start(ReplSetConfig {
            base_addr: Ipv4Addr::new(127, 0, 66, 1),
            port: 0,
            max_await: Duration::from_millis(200),
            election_timeout: Duration::from_secs(2),
            heartbeat_interval: Duration::from_millis(300),
            ..ReplSetConfig::default()
        }))
        .expect("set");
    let first =
        w.rt.block_on(set.wait_for_primary(Duration::from_secs(30)))
            .expect("a primary");
    let uri = set.uri();
    // cut off before the restore starts: the primary still answers clients, and the
    // restore's first writes wait on it for a majority that never comes
    set.partition(first).expect("partition");
    let child = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "restore",
            "--version",
            VERSION,
            "--to",
            &uri,
            "--store",
            w.store(),
            "--json",
            "--rate",
            "1000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while set.primary().is_none_or(|p| p == first) {
        assert!(Instant::now() < deadline, "no new primary");
        std::thread::sleep(Duration::from_millis(50));
    }
    set.heal(first).expect("heal");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Whether a write met the old primary (and was retried) or the driver's server
    // selection waited out the election depends on timing; both must end equal.
    eprintln!("retries: {}", stderr(&out).matches("retrying").count());
    let report = json_line(&out, "restore");
    assert_eq!(report["total"]["failed"], 0);
    let now = w.rt.block_on(set.wait_for_primary(Duration::from_secs(30)));
    assert!(now.is_some_and(|p| p != first), "another member is primary");
    let client =
        w.rt.block_on(async { Client::with_uri_str(&uri).await })
            .unwrap();
    for coll in ["c", "d", "bulk"] {
        let got = w.read(&client, "t", coll);
        assert!(got == w.source.truth[&format!("t.{coll}")], "t.{coll}");
    }
    // the schema commands survived the rollback too
    assert_eq!(
        w.rt.block_on(index_names(&client, "t", "c")),
        ["_id_", "n_1"]
    );
    w.rt.block_on(async { client.shutdown().await });
    set.stop();
}

/// The indexes a snapshot recorded (`listIndexes` at `snapshot take`) come back with
/// a restore of a version that joined that snapshot: the target's `t7` (restored
/// from the tapped version, so it has the `n_1` index) is snapshotted by `snapshot
/// take` into a new store, a version holding the snapshot's documents and naming
/// the snapshot is written there (a store without a tap has no tidemark, so
/// `version create` cannot cut one), and restored as `t8`: the target's own
/// `listIndexes` must show the index.
#[test]
fn indexes_a_snapshot_recorded_are_made_by_the_restore() {
    use tidemark::snapshot::RowData;
    use tidemark::store::{Protocol, Store, StoreOptions};
    use tidemark::version::model::{NamespaceCount, VersionInfo, VersionRow};

    let Some(w) = world() else { return };
    let out = w.restore(&["--rename", "t=t7"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let s = store_arg(&store_dir);
    let uri = w.uri();
    let out = tidemark(&[
        "snapshot", "take", "--from", &uri, "--store", s, "--db", "t7",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    {
        let store = Store::open(&store_dir, &StoreOptions::default()).unwrap();
        let mut rows = Vec::new();
        let mut counts = std::collections::BTreeMap::<String, u64>::new();
        for row in tidemark::snapshot::store::rows(&store, 1, None) {
            let row = row.unwrap();
            let RowData::Mongo { document } = row.data else {
                panic!("a document")
            };
            *counts.entry(row.namespace.clone()).or_default() += 1;
            rows.push((row.namespace, row.key, VersionRow::Mongo { document }));
        }
        let info = VersionInfo {
            name: "snap".into(),
            at: 1,
            tidemark: 1,
            created: 1,
            snapshot: Some(1),
            last_seq: 0,
            mutations: 0,
            gaps: vec![],
            namespaces: counts
                .into_iter()
                .map(|(namespace, rows)| NamespaceCount {
                    namespace,
                    protocol: Protocol::Mongo,
                    rows,
                    uncertain: 0,
                })
                .collect(),
            uncertain: vec![],
            snapshots: vec![1],
        };
        tidemark::version::stored::write(&store, &info, rows).unwrap();
    }
    let out = tidemark(&[
        "restore",
        "--version",
        "snap",
        "--to",
        &uri,
        "--store",
        s,
        "--rename",
        "t7=t8",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let client = w.client();
    assert_eq!(
        w.rt.block_on(index_names(&client, "t8", "c")),
        ["_id_", "n_1"]
    );
    assert_eq!(w.rt.block_on(index_names(&client, "t8", "bulk")), ["_id_"]);
    assert!(w.read(&client, "t8", "c") == w.source.truth["t.c"]);
    w.rt.block_on(async { client.shutdown().await });
}
