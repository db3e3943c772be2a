//! The log: round trips, seq assignment across reopen, exact queries, group commit
//! atomicity, and the resume state kept next to the log.

mod store_support;

use store_support::{cql, cql_full, mongo, new_store, reopen, store_dir};
use tidemark::store::{
    Checkpoint, Envelope, Gap, InDoubtReason, NamespaceSchema, Outcome, OutcomeKind, Policy,
    PreparedStatement, Query, Store, StoreError, StoreOptions, TxnExtras, Undecided,
};

fn all(store: &Store, query: &Query) -> Vec<Envelope> {
    let reader = store.reader().unwrap();
    let result: Result<Vec<_>, _> = reader.query(query).unwrap().collect();
    result.unwrap()
}

fn seqs(envelopes: &[Envelope]) -> Vec<u64> {
    envelopes.iter().map(|e| e.seq).collect()
}

#[test]
fn envelopes_round_trip() {
    let (_tmp, store) = new_store();
    let batch = vec![
        cql("ks.t", r#"{"id":1}"#, 10, 10),
        cql_full(11),
        mongo("db.c", 5, 12, 1024),
    ];
    let range = store.append_batch(&batch).unwrap();
    assert_eq!(range, 1..4);
    let got = all(&store, &Query::all());
    assert_eq!(got.len(), 3);
    for (env, (seq, m)) in got.iter().zip(range.zip(&batch)) {
        assert_eq!(env.seq, seq);
        assert_eq!(&env.mutation, m);
    }
    let reader = store.reader().unwrap();
    assert_eq!(reader.get(2).unwrap().unwrap().mutation, batch[1]);
    assert_eq!(reader.get(4).unwrap(), None);
    assert_eq!(batch[2].protocol().as_str(), "mongo");
    assert_eq!(got[1].mutation.outcome.reason(), Some("timeout"));
}

#[test]
fn seqs_continue_across_reopen() {
    let (_tmp, dir) = store_dir();
    let store = Store::create(&dir, &StoreOptions::for_tests()).unwrap();
    assert_eq!(
        store.append_batch(&[cql("ks.t", "{}", 1, 1)]).unwrap(),
        1..2
    );
    assert_eq!(
        store
            .append_batch(&[cql("ks.t", "{}", 2, 1), cql("ks.t", "{}", 2, 1)])
            .unwrap(),
        2..4
    );
    drop(store);
    let store = reopen(&dir);
    assert_eq!(store.next_seq().unwrap(), 4);
    assert_eq!(
        store.append_batch(&[cql("ks.t", "{}", 3, 1)]).unwrap(),
        4..5
    );
    // The commit-time order survives a reopen too.
    let err = store.append_batch(&[cql("ks.t", "{}", 2, 1)]).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    drop(store);
    let store = reopen(&dir);
    assert_eq!(seqs(&all(&store, &Query::all())), vec![1, 2, 3, 4]);
}

#[test]
fn queries_by_namespace_key_time_and_outcome_are_exact() {
    let (_tmp, store) = new_store();
    let mut batch = Vec::new();
    // Keys where one is a prefix of another, and namespaces likewise.
    for (i, (ns, key)) in [
        ("ks.t", r#"{"id":"a"}"#),
        ("ks.t", r#"{"id":"ab"}"#),
        ("ks.tt", r#"{"id":"a"}"#),
        ("ks.t", r#"{"id":"a"}"#),
        ("k.st", r#"{"id":"a"}"#),
    ]
    .iter()
    .enumerate()
    {
        let mut m = cql(ns, key, 100 + 10 * i as u64, 2);
        if i == 3 {
            m.outcome = Outcome::InDoubt {
                reason: InDoubtReason::NoResponse,
            };
        }
        batch.push(m);
    }
    store.append_batch(&batch).unwrap();

    assert_eq!(
        seqs(&all(&store, &Query::all().namespace("ks.t"))),
        vec![1, 2, 4]
    );
    assert_eq!(
        seqs(&all(&store, &Query::all().key("ks.t", r#"{"id":"a"}"#))),
        vec![1, 4]
    );
    assert_eq!(
        seqs(&all(&store, &Query::all().key("ks.t", r#"{"id":"ab"}"#))),
        vec![2]
    );
    assert_eq!(
        seqs(&all(&store, &Query::all().key("ks.t", r#"{"id":"b"}"#))),
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs(&all(&store, &Query::all().commit_times(110..=130))),
        vec![2, 3, 4]
    );
    assert_eq!(
        seqs(&all(&store, &Query::all().commit_times(111..130))),
        vec![3]
    );
    assert_eq!(
        seqs(&all(&store, &Query::all().commit_times(..100))),
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs(&all(&store, &Query::all().commit_times(141..))),
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs(&all(&store, &Query::all().outcome(OutcomeKind::InDoubt))),
        vec![4]
    );
    assert_eq!(
        seqs(&all(
            &store,
            &Query::all()
                .namespace("ks.t")
                .outcome(OutcomeKind::Committed)
        )),
        vec![1, 2]
    );
    assert_eq!(
        seqs(&all(
            &store,
            &Query::all().key("ks.t", r#"{"id":"a"}"#).seqs(2..)
        )),
        vec![4]
    );
    let reader = store.reader().unwrap();
    assert_eq!(reader.seq_range(2..=3).unwrap().count(), 2);
    assert_eq!(reader.namespace("ks.tt").unwrap().count(), 1);
    assert_eq!(reader.key("k.st", r#"{"id":"a"}"#).unwrap().count(), 1);
    assert_eq!(reader.commit_times(..=100).unwrap().count(), 1);
    assert_eq!(reader.outcome(OutcomeKind::Rejected).unwrap().count(), 0);
}

#[test]
fn keys_too_long_for_lmdb_are_indexed_by_digest() {
    let (_tmp, store) = new_store();
    let long_a = format!(r#"{{"id":"{}"}}"#, "a".repeat(2000));
    let long_b = format!(r#"{{"id":"{}b"}}"#, "a".repeat(1999));
    store
        .append_batch(&[
            cql("ks.t", &long_a, 1, 1),
            cql("ks.t", &long_b, 2, 1),
            cql("ks.t", &long_a, 3, 1),
        ])
        .unwrap();
    assert_eq!(
        seqs(&all(&store, &Query::all().key("ks.t", &long_a))),
        vec![1, 3]
    );
    assert_eq!(
        seqs(&all(&store, &Query::all().key("ks.t", &long_b))),
        vec![2]
    );
    assert_eq!(
        seqs(&all(&store, &Query::all().namespace("ks.t"))),
        vec![1, 2, 3]
    );
}

#[test]
fn bad_batches_write_nothing() {
    let (_tmp, store) = new_store();
    store.append_batch(&[cql("ks.t", "{}", 50, 1)]).unwrap();
    let bad_ns = vec![cql("ks.t", "{}", 60, 1), cql(&"n".repeat(256), "{}", 61, 1)];
    assert!(matches!(
        store.append_batch(&bad_ns),
        Err(StoreError::Invalid { .. })
    ));
    let backwards = vec![cql("ks.t", "{}", 60, 1), cql("ks.t", "{}", 59, 1)];
    assert!(matches!(
        store.append_batch(&backwards),
        Err(StoreError::Invalid { .. })
    ));
    let empty_ns = vec![cql("", "{}", 60, 1)];
    assert!(matches!(
        store.append_batch(&empty_ns),
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(seqs(&all(&store, &Query::all())), vec![1]);
    assert_eq!(
        store.append_batch(&[cql("ks.t", "{}", 60, 1)]).unwrap(),
        2..3
    );
}

/// A transaction that fails half-way (the map fills up after some puts, and cannot
/// grow because this process holds a read view open) is dropped before commit: none
/// of its mutations or extras become visible, and the next append reuses its seqs.
#[test]
fn group_commit_is_all_or_nothing() {
    let (_tmp, dir) = store_dir();
    let options = StoreOptions {
        map_size: 1 << 20,
        ..StoreOptions::for_tests()
    };
    let store = Store::create(&dir, &options).unwrap();
    store.append_batch(&[mongo("db.c", 0, 1, 100)]).unwrap();
    let huge: Vec<_> = (1..2000).map(|i| mongo("db.c", i, 2, 1024)).collect();
    let extras = TxnExtras {
        checkpoints: vec![("pcap:a".into(), Checkpoint::default())],
        tidemark: Some(2),
        ..TxnExtras::default()
    };
    let open_view = store.reader().unwrap();
    let err = store.append_batch_with(&huge, &extras).unwrap_err();
    drop(open_view);
    assert!(matches!(err, StoreError::MapFull { .. }), "{err}");
    assert!(err.to_string().contains("map full"), "{err}");
    assert_eq!(seqs(&all(&store, &Query::all())), vec![1]);
    assert_eq!(store.checkpoint("pcap:a").unwrap(), None);
    assert_eq!(store.tidemark().unwrap(), None);
    assert_eq!(store.next_seq().unwrap(), 2);
    assert_eq!(store.append_batch(&huge[..10]).unwrap(), 2..12);
    drop(store);
    let store = Store::open(&dir, &options).unwrap();
    assert_eq!(store.reader().unwrap().last_seq().unwrap(), 11);
    assert_eq!(
        all(&store, &Query::all().key("db.c", r#"{"_id":1}"#)).len(),
        1
    );
}

/// A map that fills up grows (doubling) while no read view is open, and the same
/// group is written: an append never fails for room while the map can grow. The
/// grown store reopens with its small configured size (LMDB keeps the larger) and
/// holds every mutation, indexed by key.
#[test]
fn a_full_map_grows_and_the_append_goes_on() {
    let (_tmp, dir) = store_dir();
    let options = StoreOptions {
        map_size: 1 << 20,
        ..StoreOptions::for_tests()
    };
    let store = Store::create(&dir, &options).unwrap();
    for round in 0..3u64 {
        let batch: Vec<_> = (0..2000)
            .map(|i| mongo("db.c", round * 2000 + i, round + 1, 1024))
            .collect();
        let seqs = store.append_batch(&batch).unwrap();
        assert_eq!(seqs, round * 2000 + 1..round * 2000 + 2001);
    }
    let grown = std::fs::metadata(dir.join(tidemark::store::DATA_FILE))
        .unwrap()
        .len();
    assert!(grown > 4 << 20, "data.mdb is {grown} bytes");
    drop(store);
    let store = Store::open(&dir, &options).unwrap();
    assert_eq!(store.reader().unwrap().last_seq().unwrap(), 6000);
    for id in [0u64, 2999, 5999] {
        let key = format!(r#"{{"_id":{id}}}"#);
        assert_eq!(
            seqs(&all(&store, &Query::all().key("db.c", &key))),
            [id + 1]
        );
    }
}

#[test]
fn extras_commit_with_the_batch() {
    let (_tmp, dir) = store_dir();
    let store = Store::create(&dir, &StoreOptions::for_tests()).unwrap();
    let pending = cql("ks.t", r#"{"id":9}"#, 5, 1);
    store
        .put_undecided(
            b"w1",
            &Undecided {
                first_seen: 4,
                mutation: pending.clone(),
                tracker_state: vec![1, 2, 3],
            },
        )
        .unwrap();
    let gap = Gap {
        flow: 3,
        node: Some("10.0.0.1:9042".parse().unwrap()),
        from: 10,
        to: 20,
        bytes: 1460,
    };
    let extras = TxnExtras {
        checkpoints: vec![(
            "pcap:/tmp/a.pcap".into(),
            Checkpoint {
                offset: 4096,
                state: vec![9],
                at: 7,
            },
        )],
        decided: vec![b"w1".to_vec()],
        undecided: vec![(
            b"w2".to_vec(),
            Undecided {
                first_seen: 6,
                mutation: pending.clone(),
                tracker_state: Vec::new(),
            },
        )],
        gaps: vec![gap.clone()],
        tidemark: Some(5),
        policy: Some(Policy {
            mongo_unreplicated_committed: false,
            ..Policy::default()
        }),
    };
    assert_eq!(store.append_batch_with(&[pending], &extras).unwrap(), 1..2);
    drop(store);
    let store = reopen(&dir);
    assert_eq!(
        store
            .checkpoint("pcap:/tmp/a.pcap")
            .unwrap()
            .unwrap()
            .offset,
        4096
    );
    let undecided = store.list_undecided().unwrap();
    assert_eq!(undecided.len(), 1);
    assert_eq!(undecided[0].0, b"w2");
    assert_eq!(store.tidemark().unwrap(), Some(5));
    assert_eq!(store.gaps().unwrap(), vec![gap.clone()]);
    assert!(!store.policy().unwrap().mongo_unreplicated_committed);

    // The tidemark never goes back; gaps accumulate.
    assert!(matches!(
        store.set_tidemark(4),
        Err(StoreError::Invalid { .. })
    ));
    store.set_tidemark(6).unwrap();
    store.add_gaps(std::slice::from_ref(&gap)).unwrap();
    drop(store);
    let store = reopen(&dir);
    assert_eq!(store.tidemark().unwrap(), Some(6));
    assert_eq!(store.gaps().unwrap().len(), 2);
    assert!(matches!(
        store.set_tidemark(5),
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(store.take_undecided(b"w2").unwrap().unwrap().first_seen, 6);
    assert_eq!(store.take_undecided(b"w2").unwrap(), None);
    assert!(store.list_undecided().unwrap().is_empty());
}

#[test]
fn prepared_schema_and_checkpoints() {
    let (_tmp, store) = new_store();
    let stmt = PreparedStatement {
        query: "INSERT INTO t (id, v) VALUES (?, ?)".into(),
        keyspace: Some("ks".into()),
        metadata: vec![0, 0, 0, 1],
        result_metadata_id: None,
        protocol_version: 4,
        seen_at: 1,
    };
    store
        .put_prepared("10.0.0.1:9042", &[0xab; 16], &stmt)
        .unwrap();
    assert_eq!(
        store.get_prepared("10.0.0.1:9042", &[0xab; 16]).unwrap(),
        Some(stmt.clone())
    );
    // Seen on another node: the same id names the same statement.
    assert_eq!(
        store.get_prepared("10.0.0.2:9042", &[0xab; 16]).unwrap(),
        Some(stmt)
    );
    assert_eq!(
        store.get_prepared("10.0.0.1:9042", &[0xac; 16]).unwrap(),
        None
    );
    assert!(matches!(
        store.put_prepared(
            "n",
            &[],
            &PreparedStatement {
                query: String::new(),
                keyspace: None,
                metadata: Vec::new(),
                result_metadata_id: None,
                protocol_version: 4,
                seen_at: 0,
            }
        ),
        Err(StoreError::Invalid { .. })
    ));

    let schema = NamespaceSchema {
        partition_key: vec!["id".into()],
        ..NamespaceSchema::default()
    };
    store.put_schema("ks.t", &schema).unwrap();
    store
        .put_schema("ks.a", &NamespaceSchema::default())
        .unwrap();
    assert_eq!(store.schema("ks.t").unwrap(), Some(schema));
    assert_eq!(store.schema("ks.x").unwrap(), None);
    assert_eq!(
        store.namespaces().unwrap(),
        vec!["ks.a".to_string(), "ks.t".to_string()]
    );

    store
        .put_checkpoint(
            "live:eth0",
            &Checkpoint {
                offset: 3,
                state: vec![],
                at: 1,
            },
        )
        .unwrap();
    assert_eq!(store.checkpoint("live:eth0").unwrap().unwrap().offset, 3);
}

#[test]
fn a_reader_sees_one_consistent_snapshot() {
    let (_tmp, store) = new_store();
    store.append_batch(&[cql("ks.t", "{}", 1, 1)]).unwrap();
    let reader = store.reader().unwrap();
    store.append_batch(&[cql("ks.t", "{}", 2, 1)]).unwrap();
    assert_eq!(reader.len().unwrap(), 1);
    drop(reader);
    assert_eq!(store.reader().unwrap().len().unwrap(), 2);
}
