//! `tidemark restore --to cql://…` against the CQL testbed.
//!
//! One 3-node RF 3 source testbed runs a `scylla` driver workload with every cell
//! kind a restore must carry; `snapshot take` and `version create` (the real binary)
//! cut version `v1` of it. Each test restores that version into its own target
//! testbed (other node counts, other token seeds) and compares the target's ground
//! truth (`logical_state()`: every replica merged, expiry applied) and reads through
//! the `scylla` driver at QUORUM with the source's — never with tidemark's own idea
//! of the version.

mod require;
mod restore_support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use restore_support::*;
use tidemark::store::{ClusteringBound, Deletion, RangeDeletion, Store, StoreOptions};
use tidemark::version::model::VersionDeletion;
use tidemark::version::stored;
use tidemark_testbed::CqlCluster;

/// The source, kept for the whole test binary.
struct Source {
    _cluster: CqlCluster,
    store: PathBuf,
    /// Its ground truth when the version was cut (lists and counters apart).
    cells: Cells,
    counters: BTreeMap<i32, i64>,
    lists: BTreeMap<i32, Vec<String>>,
    _dir: tempfile::TempDir,
}

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Tables compared cell by cell (lists get server-made paths; counters are compared
/// by value through the driver).
const EXCEPT: [&str; 2] = ["l", "c"];

/// The deletions the test adds to version `v1` (as `version create` would once it
/// writes them): a partition, a row, a clustering range, a cell — all at timestamp
/// 1 000 000 on keys the source never wrote, where the targets hold older data.
fn deletions() -> Vec<(String, String, VersionDeletion)> {
    let del = Deletion {
        timestamp: 1_000_000,
        local_deletion_time: 1_700_000_000,
    };
    let b = |ck: i32, inclusive: bool| ClusteringBound {
        prefix: vec![tidemark::store::ByteBuf::from(ck.to_be_bytes().to_vec())],
        inclusive,
    };
    let ns = format!("{KS}.t");
    let cell = tidemark::store::Cell {
        column: "v".into(),
        path: None,
        value: Default::default(),
        cql_type: "text".into(),
        timestamp: 1_000_000,
        ttl: None,
        local_deletion_time: Some(1_700_000_000),
        kind: tidemark::store::CellKind::Tombstone,
        op: tidemark::store::CellOp::Tombstone,
    };
    vec![
        (
            ns.clone(),
            "{\"pk\":50}".into(),
            VersionDeletion {
                partition: Some(del),
                ..Default::default()
            },
        ),
        (
            ns.clone(),
            "{\"pk\":51,\"ck\":1}".into(),
            VersionDeletion {
                row: Some(del),
                ..Default::default()
            },
        ),
        (
            ns.clone(),
            "{\"pk\":52}".into(),
            VersionDeletion {
                ranges: vec![RangeDeletion {
                    start: b(2, true),
                    end: b(5, false),
                    deletion: del,
                }],
                ..Default::default()
            },
        ),
        (
            ns,
            "{\"pk\":53,\"ck\":0}".into(),
            VersionDeletion {
                cells: vec![cell],
                ..Default::default()
            },
        ),
    ]
}

/// Older data (timestamp 500 000) where the version deletes, and one newer row
/// (2 000 000) the partition deletion must not reach; created with the target's
/// own schema at `rf`.
async fn prewrite(addr: std::net::SocketAddr, rf: usize) {
    let s = session(addr).await;
    schema(&s, KS, rf).await;
    for ck in 0..4 {
        q(
            &s,
            &format!(
                "INSERT INTO {KS}.t (pk, ck, v) VALUES (50, {ck}, 'old') USING TIMESTAMP 500000"
            ),
        )
        .await;
    }
    q(
        &s,
        &format!("INSERT INTO {KS}.t (pk, ck, v) VALUES (50, 9, 'newer') USING TIMESTAMP 2000000"),
    )
    .await;
    for ck in 1..3 {
        q(
            &s,
            &format!(
                "INSERT INTO {KS}.t (pk, ck, v) VALUES (51, {ck}, 'old') USING TIMESTAMP 500000"
            ),
        )
        .await;
    }
    for ck in 0..7 {
        q(
            &s,
            &format!(
                "INSERT INTO {KS}.t (pk, ck, v) VALUES (52, {ck}, 'old') USING TIMESTAMP 500000"
            ),
        )
        .await;
    }
    q(
        &s,
        &format!(
            "INSERT INTO {KS}.t (pk, ck, v, n) VALUES (53, 0, 'old', 1) USING TIMESTAMP 500000"
        ),
    )
    .await;
}

/// What the target must hold at the pre-written keys after the restore, stated by
/// hand: (pk, ck, column) that survive the version's tombstones.
fn survivors() -> Vec<(i32, i32, &'static str)> {
    let mut out = vec![(50, 9, "v"), (51, 2, "v"), (53, 0, "n")];
    out.extend([0, 1, 5, 6].map(|ck| (52, ck, "v")));
    out
}

fn hex_int(i: i32) -> String {
    i.to_be_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The source's truth plus the survivors of the pre-written data.
fn expected(src: &Source, target_truth: &Cells) -> Cells {
    let mut want = src.cells.clone();
    for (pk, ck, col) in survivors() {
        let k = ("t".to_string(), hex_int(pk), hex_int(ck), col.to_string());
        let got = target_truth
            .get(&k)
            .unwrap_or_else(|| panic!("{k:?} was shadowed, it is newer or not deleted"));
        want.insert(k, got.clone());
    }
    want
}

fn source() -> &'static Source {
    static SRC: OnceLock<Source> = OnceLock::new();
    SRC.get_or_init(|| {
        let cluster = rt().block_on(testbed(3, 151, 11, None));
        let addr = cluster.addresses()[0];
        let (counters, lists) = rt().block_on(async {
            let s = session(addr).await;
            workload(&s).await;
            (counters(&s, KS).await, lists(&s, KS).await)
        });
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        version_of(&format!("cql://{addr}"), &store);
        let cells = truth(&cluster, KS, &EXCEPT);
        let st = Store::open_side(&store, &StoreOptions::default()).unwrap();
        stored::write_deletions(&st, "v1", deletions()).unwrap();
        drop(st);
        Source {
            _cluster: cluster,
            store,
            cells,
            counters,
            lists,
            _dir: dir,
        }
    })
}

fn to(cluster: &CqlCluster) -> String {
    format!("cql://{}", cluster.addresses()[0])
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The version into a 1-node and a 5-node target with other token seeds: every
/// cell equal (value, write timestamp), TTLs counting down, tombstones shadowing
/// the older pre-written data and not the newer, counters and lists equal.
#[test]
fn a_version_restores_into_other_topologies() {
    let src = source();
    for (nodes, third, seed) in [(1usize, 152u8, 99u64), (5, 153, 12345)] {
        let target = rt().block_on(testbed(nodes, third, seed, None));
        let addr = target.addresses()[0];
        rt().block_on(prewrite(addr, nodes.min(3)));
        let out = restore(&src.store, &to(&target), &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        let r = report(&out);
        assert_eq!(r["type"], "restore");
        assert_eq!(r["total"]["failed"], 0, "{r}");
        assert_eq!(r["total"]["deletions"], 4, "{r}");
        let got = truth(&target, KS, &EXCEPT);
        assert_restored(&expected(src, &got), &got);
        let (c, l) = rt().block_on(async {
            let s = session(addr).await;
            (counters(&s, KS).await, lists(&s, KS).await)
        });
        assert_eq!(c, src.counters, "counters on {nodes} nodes");
        // every row readable at QUORUM, with its write time, as in the source
        let query = format!("SELECT pk, ck, v, writetime(v), n, writetime(n), m, s, f FROM {KS}.t");
        let (want, got) = rt().block_on(async {
            let a = read_at_quorum(&session(src._cluster.addresses()[0]).await, &query).await;
            let b = read_at_quorum(&session(addr).await, &query).await;
            (a, b)
        });
        let got: BTreeMap<_, _> = got
            .into_iter()
            .filter(|(_, row)| !matches!(row[0], Some(scylla::value::CqlValue::Int(50..=53))))
            .collect();
        assert_eq!(want.len(), (PARTITIONS * ROWS_EACH + 1) as usize);
        assert_eq!(got, want, "rows read at QUORUM on {nodes} nodes");
        assert_eq!(l, src.lists, "lists on {nodes} nodes");
        // a second restore changes nothing (timestamps decide; counters are brought
        // to their totals, not incremented again)
        let again = restore(&src.store, &to(&target), &["--parallel", "4"]);
        assert!(again.status.success(), "{}", stderr(&again));
        let got2 = truth(&target, KS, &EXCEPT);
        assert_restored(&expected(src, &got2), &got2);
        let c2 = rt().block_on(async { counters(&session(addr).await, KS).await });
        assert_eq!(c2, src.counters, "counters doubled by a second restore");
        target.stop();
    }
}

/// The workload put every kind of cell in the version (so the comparisons above
/// cover them), and the row that exists by its key alone came back.
#[test]
fn the_version_holds_every_cell_kind_and_key_only_rows_come_back() {
    let src = source();
    assert!(
        src.cells.values().any(|(_, _, ttl)| *ttl > 0),
        "no expiring cell"
    );
    for (table, column) in [
        ("t", "m["),
        ("t", "s["),
        ("u", "a["),
        ("st", "s"),
        ("t", "f"),
    ] {
        assert!(
            src.cells
                .keys()
                .any(|k| k.0 == table && k.3.starts_with(column)),
            "no {table}.{column} cell in {:?}",
            src.cells.keys().take(20).collect::<Vec<_>>()
        );
    }
    let target = rt().block_on(testbed(1, 154, 7, None));
    let out = restore(&src.store, &to(&target), &["--table", "t"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = rt().block_on(async {
        let s = session(target.addresses()[0]).await;
        let mut st = scylla::statement::unprepared::Statement::new(format!(
            "SELECT pk, ck, v FROM {KS}.t WHERE pk = 100"
        ));
        st.set_consistency(scylla::statement::Consistency::Quorum);
        let r = s
            .query_unpaged(st, ())
            .await
            .unwrap()
            .into_rows_result()
            .unwrap();
        r.rows::<(i32, i32, Option<String>)>()
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    });
    assert_eq!(rows, vec![(100, 0, None)]);
    target.stop();
}

/// A small deterministic generator (the seed is printed, so a failure replays).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// `kill -9` of `tidemark restore` at 10 random moments, each run continuing with
/// `--resume`: the end state equals an uninterrupted restore's and the source's,
/// counters not incremented twice.
#[test]
fn a_restore_killed_ten_times_and_resumed_equals_an_uninterrupted_one() {
    let src = source();
    let select = [
        "--table", "t", "--table", "st", "--table", "u", "--table", "c",
    ];
    let whole = rt().block_on(testbed(1, 155, 21, None));
    rt().block_on(prewrite(whole.addresses()[0], 1));
    let out = restore(&src.store, &to(&whole), &select);
    assert!(out.status.success(), "{}", stderr(&out));

    let target = rt().block_on(testbed(3, 156, 31, None));
    rt().block_on(prewrite(target.addresses()[0], 3));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill seed {seed}");
    let mut rng = Lcg(seed);
    let target_uri = to(&target);
    let store = src.store.to_str().unwrap();
    let mut checkpoints_seen = 0;
    for i in 0..10 {
        let mut args = vec![
            "restore",
            "--version",
            "v1",
            "--store",
            store,
            "--to",
            &target_uri,
            "--json",
            "--rate",
            "80",
            "--parallel",
            "4",
        ];
        args.extend_from_slice(&select);
        if i > 0 {
            args.push("--resume");
        }
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200 + rng.below(2300)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let st = Store::open(&src.store, &StoreOptions::default().read_only()).unwrap();
        let kept: Option<tidemark::restore::cql::state::State> =
            tidemark::restore::checkpoint::load(&st, "v1", &target_uri).unwrap();
        checkpoints_seen += usize::from(kept.is_some());
    }
    assert!(
        checkpoints_seen > 0,
        "no kill left a checkpoint to resume from"
    );
    let mut args = select.to_vec();
    args.push("--resume");
    let out = restore(&src.store, &target_uri, &args);
    assert!(out.status.success(), "{}", stderr(&out));

    let got = truth(&target, KS, &EXCEPT);
    // equal up to the TTL left, which counts down from each restore's own start
    let strip = |c: &Cells| -> BTreeMap<_, _> {
        c.iter()
            .map(|(k, (v, ts, ttl))| (k.clone(), (v.clone(), *ts, *ttl > 0)))
            .collect()
    };
    let (a, b) = (strip(&got), strip(&truth(&whole, KS, &EXCEPT)));
    let differ: Vec<_> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .chain(b.iter().filter(|(k, _)| !a.contains_key(*k)))
        .take(10)
        .collect();
    assert!(
        differ.is_empty() && a.len() == b.len(),
        "killed and resumed differs from uninterrupted: {differ:?}"
    );
    assert_restored(&expected(src, &got), &got);
    let c = rt().block_on(async { counters(&session(target.addresses()[0]).await, KS).await });
    assert_eq!(c, src.counters, "counters after ten kills");
    // the checkpoint is gone once the restore finished
    let st = Store::open(&src.store, &StoreOptions::default().read_only()).unwrap();
    let kept: Option<tidemark::restore::cql::state::State> =
        tidemark::restore::checkpoint::load(&st, "v1", &target_uri).unwrap();
    assert!(kept.is_none());
    whole.stop();
    target.stop();
}

fn keyspaces_and_tables(addr: std::net::SocketAddr) -> Vec<(String, String)> {
    rt().block_on(async {
        let s = session(addr).await;
        let r = s
            .query_unpaged(
                "SELECT keyspace_name, table_name FROM system_schema.tables",
                (),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap();
        r.rows::<(String, String)>()
            .unwrap()
            .map(Result::unwrap)
            .filter(|(k, _)| !k.starts_with("system"))
            .collect()
    })
}

/// `--dry-run` prints the plan and leaves the target as it was; `--table` with
/// `--rename` restores one table, under its new name, and nothing else.
#[test]
fn dry_run_writes_nothing_and_rename_with_selection_writes_only_that() {
    let src = source();
    let target = rt().block_on(testbed(1, 157, 41, None));
    let addr = target.addresses()[0];
    let out = restore(&src.store, &to(&target), &["--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["dry_run"], true);
    let schema: Vec<String> = serde_json::from_value(r["schema"].clone()).unwrap();
    assert!(
        schema
            .iter()
            .any(|s| s.starts_with("CREATE KEYSPACE IF NOT EXISTS rsrc")),
        "{schema:?}"
    );
    assert!(
        schema
            .iter()
            .any(|s| s.starts_with("CREATE TABLE IF NOT EXISTS rsrc.st")
                && s.contains("s text static")),
        "{schema:?}"
    );
    assert!(target.logical_state().is_empty());
    assert!(
        keyspaces_and_tables(addr).is_empty(),
        "dry run created schema"
    );

    let out = restore(
        &src.store,
        &to(&target),
        &["--table", "t", "--rename", "rsrc.t=other.t2"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        keyspaces_and_tables(addr),
        vec![("other".to_string(), "t2".to_string())]
    );
    let want: Cells = src
        .cells
        .iter()
        .filter(|(k, _)| k.0 == "t")
        .map(|(k, v)| {
            (
                ("t2".to_string(), k.1.clone(), k.2.clone(), k.3.clone()),
                v.clone(),
            )
        })
        .collect();
    assert_restored(&want, &truth(&target, "other", &[]));
    assert!(truth(&target, KS, &[]).is_empty());
    target.stop();
}

/// Bad input: one `tidemark:` line on stderr, exit 2, nothing written.
fn refused(out: &std::process::Output, why: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{why}: {err}");
    assert_eq!(err.lines().count(), 1, "{why}: {err}");
    assert!(err.starts_with("tidemark: "), "{why}: {err}");
    assert!(
        out.stdout.is_empty(),
        "{why}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let src = source();
    let out = restore(&src.store, "cql://127.0.0.1:1", &[]);
    refused(&out, "unreachable");

    let locked = rt().block_on(testbed(1, 158, 51, Some(("admin", "s3cret"))));
    let addr = locked.addresses()[0];
    let out = restore(&src.store, &format!("cql://admin:wrong-pass@{addr}"), &[]);
    refused(&out, "wrong credentials");
    assert!(
        !stderr(&out).contains("wrong-pass"),
        "the password is printed"
    );
    assert!(locked.logical_state().is_empty());
    // the right password works, and is never printed
    let out = restore(
        &src.store,
        &format!("cql://admin:s3cret@{addr}"),
        &["--table", "u"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let all = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(!all.contains("s3cret"), "the password is printed: {all}");
    assert_eq!(report(&out)["target"], format!("cql://{addr}"));
    assert!(!locked.logical_state().is_empty());
    locked.stop();

    let target = rt().block_on(testbed(1, 159, 61, None));
    let addr = target.addresses()[0];
    let out = tidemark(&[
        "restore",
        "--version",
        "nope",
        "--store",
        src.store.to_str().unwrap(),
        "--to",
        &to(&target),
    ]);
    refused(&out, "no such version");

    // a target table with another key type: refused before any table is created
    rt().block_on(async {
        let s = session(addr).await;
        q(&s, "CREATE KEYSPACE clash WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}").await;
        q(&s, "CREATE TABLE clash.t (pk text, ck int, v text, PRIMARY KEY (pk, ck))").await;
        q(&s, "INSERT INTO clash.t (pk, ck, v) VALUES ('x', 1, 'mine')").await;
    });
    let before = target.logical_state().len();
    let out = restore(&src.store, &to(&target), &["--rename", "rsrc=clash"]);
    refused(&out, "another schema");
    assert!(stderr(&out).contains("clash.t"), "{}", stderr(&out));
    assert_eq!(
        keyspaces_and_tables(addr),
        vec![("clash".to_string(), "t".to_string())]
    );
    assert_eq!(target.logical_state().len(), before);
    target.stop();
}

/// Without `--overwrite` a newer value already in the target stays (timestamps
/// decide, as in the source); with it the version's value wins.
#[test]
fn overwrite_makes_the_version_beat_newer_target_data() {
    let src = source();
    let target = rt().block_on(testbed(1, 161, 71, None));
    let addr = target.addresses()[0];
    rt().block_on(async {
        let s = session(addr).await;
        schema(&s, KS, 1).await;
        q(&s, &format!("INSERT INTO {KS}.t (pk, ck, v) VALUES (0, 0, 'newer') USING TIMESTAMP 9000000000000000")).await;
    });
    let key = ("t".to_string(), hex_int(0), hex_int(0), "v".to_string());
    let out = restore(&src.store, &to(&target), &["--table", "t"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = truth(&target, KS, &[]);
    assert_eq!(
        got[&key].0, "6e65776572",
        "the newer target value was overwritten"
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    // the target's newer value is far in the future: --overwrite's "now" cannot beat
    // it, so remove it first with a tombstone older than now
    rt().block_on(async {
        let s = session(addr).await;
        q(
            &s,
            &format!(
                "DELETE v FROM {KS}.t USING TIMESTAMP 9000000000000000 WHERE pk = 0 AND ck = 0"
            ),
        )
        .await;
        q(
            &s,
            &format!(
                "INSERT INTO {KS}.t (pk, ck, v) VALUES (0, 1, 'newer') USING TIMESTAMP {}",
                before - 1
            ),
        )
        .await;
    });
    let out = restore(&src.store, &to(&target), &["--table", "t", "--overwrite"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = truth(&target, KS, &[]);
    let k1 = ("t".to_string(), hex_int(0), hex_int(1), "v".to_string());
    assert_eq!(
        got[&k1].0, src.cells[&k1].0,
        "--overwrite lost to newer target data"
    );
    assert!(got[&k1].1 >= before, "written at the restore's time");
    target.stop();
}

/// SIGTERM ends a restore cleanly: exit 1, `error` in the report, the checkpoint
/// kept; `--resume` then finishes it and the target equals the source.
#[test]
fn sigterm_stops_cleanly_and_resume_finishes() {
    let src = source();
    let target = rt().block_on(testbed(1, 162, 81, None));
    rt().block_on(prewrite(target.addresses()[0], 1));
    let uri = to(&target);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "restore",
            "--version",
            "v1",
            "--store",
            src.store.to_str().unwrap(),
            "--to",
            &uri,
            "--json",
            "--rate",
            "40",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["error"], "interrupted", "{r}");
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
    let progress = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"type\":\"progress\""))
        .count();
    assert!(progress > 0, "no --json progress line");
    let st = Store::open(&src.store, &StoreOptions::default().read_only()).unwrap();
    let kept: Option<tidemark::restore::cql::state::State> =
        tidemark::restore::checkpoint::load(&st, "v1", &uri).unwrap();
    drop(st);
    let kept = kept.expect("the checkpoint is kept");
    assert!(kept.counts.iter().map(|(_, c)| c[0]).sum::<u64>() > 0);
    let out = restore(&src.store, &uri, &["--resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(report(&out)["resumed"], true);
    let got = truth(&target, KS, &EXCEPT);
    assert_restored(&expected(src, &got), &got);
    let c = rt().block_on(async { counters(&session(target.addresses()[0]).await, KS).await });
    assert_eq!(c, src.counters);
    target.stop();
}

/// Throughput (run by hand: `cargo test --test restore_cql measure -- --ignored
/// --nocapture`): 20 000 rows restored into a 3-node testbed, and into the Cassandra
/// at `TIDEMARK_MEASURE_CASSANDRA` (contact point) when set.
#[test]
#[ignore]
fn measure_restore_throughput() {
    let rows: i32 = 20_000;
    let source = rt().block_on(testbed(3, 163, 91, None));
    let addr = source.addresses()[0];
    rt().block_on(async {
        let s = session(addr).await;
        q(&s, "CREATE KEYSPACE big WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}").await;
        q(&s, "CREATE TABLE big.t (pk int, ck int, v text, n bigint, PRIMARY KEY (pk, ck))").await;
        let p = s.prepare("INSERT INTO big.t (pk, ck, v, n) VALUES (?, ?, ?, ?)").await.unwrap();
        for chunk in (0..rows).collect::<Vec<_>>().chunks(200) {
            let futs = chunk.iter().map(|i| {
                let p = p.clone();
                let s = &s;
                async move {
                    s.execute_unpaged(&p, (i / 10, i % 10, format!("value {i} {}", "x".repeat(100)), i64::from(*i)))
                        .await
                        .unwrap();
                }
            });
            futures_util::future::join_all(futs).await;
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    version_of(&format!("cql://{addr}"), &store);
    let target = rt().block_on(testbed(3, 164, 92, None));
    let mut targets = vec![(to(&target), "3-node testbed".to_string())];
    if let Ok(h) = std::env::var("TIDEMARK_MEASURE_CASSANDRA") {
        targets.push((format!("cql://{h}:9042"), format!("Cassandra at {h}")));
    }
    for (uri, what) in targets {
        let started = std::time::Instant::now();
        let out = restore(&store, &uri, &["--parallel", "32"]);
        let secs = started.elapsed().as_secs_f64();
        assert!(out.status.success(), "{}", stderr(&out));
        let r = report(&out);
        let n = r["total"]["written"].as_f64().unwrap();
        let mb = r["total"]["bytes"].as_f64().unwrap() / 1e6;
        eprintln!(
            "restore into {what}: {n} rows, {mb:.1} MB in {secs:.1} s: {:.0} rows/s, {:.2} MB/s",
            n / secs,
            mb / secs
        );
    }
    target.stop();
    source.stop();
}
