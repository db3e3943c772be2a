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
        value: Vec::new(),
        cql_type: "text".into(),
        timestamp: 1_000_000,
        ttl: None,
        local_deletion_time: Some(1_700_000_000),
        kind: tidemark::store::CellKind::Tombstone,
        op: tidemark::store::CellOp::Tombstone,
    };
    vec![
        (ns.clone(), "{\"pk\":50}".into(), VersionDeletion { partition: Some(del), ..Default::default() }),
        (ns.clone(), "{\"pk\":51,\"ck\":1}".into(), VersionDeletion { row: Some(del), ..Default::default() }),
        (
            ns.clone(),
            "{\"pk\":52}".into(),
            VersionDeletion {
                ranges: vec![RangeDeletion { start: b(2, true), end: b(5, false), deletion: del }],
                ..Default::default()
            },
        ),
        (ns, "{\"pk\":53,\"ck\":0}".into(), VersionDeletion { cells: vec![cell], ..Default::default() }),
    ]
}

/// Older data (timestamp 500 000) where the version deletes, and one newer row
/// (2 000 000) the partition deletion must not reach; created with the target's
/// own schema at `rf`.
async fn prewrite(addr: std::net::SocketAddr, rf: usize) {
    let s = session(addr).await;
    schema(&s, KS, rf).await;
    for ck in 0..4 {
        q(&s, &format!("INSERT INTO {KS}.t (pk, ck, v) VALUES (50, {ck}, 'old') USING TIMESTAMP 500000")).await;
    }
    q(&s, &format!("INSERT INTO {KS}.t (pk, ck, v) VALUES (50, 9, 'newer') USING TIMESTAMP 2000000")).await;
    for ck in 1..3 {
        q(&s, &format!("INSERT INTO {KS}.t (pk, ck, v) VALUES (51, {ck}, 'old') USING TIMESTAMP 500000")).await;
    }
    for ck in 0..7 {
        q(&s, &format!("INSERT INTO {KS}.t (pk, ck, v) VALUES (52, {ck}, 'old') USING TIMESTAMP 500000")).await;
    }
    q(&s, &format!("INSERT INTO {KS}.t (pk, ck, v, n) VALUES (53, 0, 'old', 1) USING TIMESTAMP 500000")).await;
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
        Source { _cluster: cluster, store, cells, counters, lists, _dir: dir }
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
