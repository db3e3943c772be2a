//! The snapshot tables of a store (`tidemark::snapshot::store` over
//! `Store::open_side`): descriptions and rows round-trip, every row comes back once
//! over many read batches, a namespace filter does not catch a namespace it is a
//! prefix of, keys longer than LMDB's key limit are kept, and the side writer holds
//! no writer lock and refuses appends.

mod store_support;

use std::fs::File;

use tidemark::snapshot::store as snapstore;
use tidemark::snapshot::{NamespaceInfo, PartInfo, PartRange, RowData, SnapshotInfo, SnapshotRow};
use tidemark::store::{Cell, CellKind, CellOp, Protocol, Store, StoreError, StoreOptions};

fn info() -> SnapshotInfo {
    SnapshotInfo {
        id: 0,
        source: "cql://10.0.0.1:9042".into(),
        cluster: "prod".into(),
        protocol: Protocol::Cql,
        started: 1_700_000_000_000_000_000,
        finished: None,
        namespaces: vec![NamespaceInfo {
            name: "a.b".into(),
            schema: "CREATE TABLE a.b (k int PRIMARY KEY);".into(),
            rows: 0,
            bytes: 0,
        }],
        parts: vec![PartInfo {
            namespace: "a.b".into(),
            range: PartRange::Token(i64::MIN, 0),
            read_start: 5,
            read_end: Some(6),
            rows: 1,
        }],
        cluster_time: None,
    }
}

fn row(ns: &str, key: String) -> SnapshotRow {
    SnapshotRow {
        namespace: ns.into(),
        key,
        part: 0,
        data: RowData::Cql {
            cells: vec![Cell {
                column: "v".into(),
                path: None,
                value: vec![0, 0, 0, 7].into(),
                cql_type: "int".into(),
                timestamp: 1_700_000_000_000_000,
                ttl: Some(60),
                local_deletion_time: Some(1_700_000_060),
                kind: CellKind::Expiring,
                op: CellOp::Set,
            }],
            static_cells: vec![],
        },
    }
}

#[test]
fn rows_and_descriptions_round_trip_through_the_side_writer() {
    let (_dir, path) = store_support::store_dir();
    drop(Store::create(&path, &StoreOptions::for_tests()).unwrap());
    let store = Store::open_side(&path, &StoreOptions::for_tests()).unwrap();
    // No writer lock is held: a tap could take it now.
    let lock = File::open(path.join(tidemark::store::LOCK_FILE)).unwrap();
    lock.try_lock()
        .expect("the side writer holds no writer lock");
    drop(lock);
    // Appends are refused.
    let m = store_support::cql("a.b", r#"{"k":1}"#, 1, 1);
    assert!(matches!(
        store.append_batch(&[m]),
        Err(StoreError::ReadOnly { .. })
    ));

    let one = snapstore::insert_info(&store, &info()).unwrap();
    let two = snapstore::insert_info(&store, &info()).unwrap();
    assert_eq!((one, two), (1, 2));
    let long = format!(r#"{{"k":"{}"}}"#, "x".repeat(2000));
    let mut rows: Vec<SnapshotRow> = (0..1500)
        .map(|i| row("a.b", format!(r#"{{"k":{i}}}"#)))
        .collect();
    rows.push(row("a.b", long.clone()));
    let others: Vec<SnapshotRow> = (0..10)
        .map(|i| row("a.bc", format!(r#"{{"k":{i}}}"#)))
        .collect();
    let mut finished = info();
    finished.id = one;
    finished.finished = Some(7);
    snapstore::put_rows(&store, one, &rows, None).unwrap();
    snapstore::put_rows(&store, one, &others, Some(&finished)).unwrap();
    snapstore::put_rows(&store, two, &others[..3], None).unwrap();
    // Stored twice: still once.
    snapstore::put_rows(&store, one, &rows[..10], None).unwrap();

    let all: Vec<SnapshotRow> = snapstore::rows(&store, one, None)
        .map(Result::unwrap)
        .collect();
    assert_eq!(all.len(), rows.len() + others.len());
    let mut want: Vec<_> = rows
        .iter()
        .chain(&others)
        .map(|r| (r.namespace.clone(), r.key.clone()))
        .collect();
    let mut got: Vec<_> = all
        .iter()
        .map(|r| (r.namespace.clone(), r.key.clone()))
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(
        all.iter().find(|r| r.key == long).unwrap(),
        rows.last().unwrap()
    );
    let ab: Vec<_> = snapstore::rows(&store, one, Some("a.b"))
        .map(Result::unwrap)
        .collect();
    assert_eq!(ab.len(), rows.len());
    assert!(ab.iter().all(|r| r.namespace == "a.b"));
    assert_eq!(snapstore::rows(&store, two, None).count(), 3);
    assert_eq!(snapstore::rows(&store, 3, None).count(), 0);

    assert_eq!(
        snapstore::snapshot(&store, one).unwrap(),
        Some(finished.clone())
    );
    assert_eq!(snapstore::snapshot(&store, 9).unwrap(), None);
    let listed = snapstore::list_snapshots(&store).unwrap();
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(listed[0], finished);
    drop(store);

    // A read-only open sees the same, and refuses writes.
    let ro = Store::open(&path, &StoreOptions::for_tests().read_only()).unwrap();
    assert_eq!(
        snapstore::rows(&ro, one, None).count(),
        rows.len() + others.len()
    );
    assert!(snapstore::put_info(&ro, &finished).is_err());
}
