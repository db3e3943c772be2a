//! Builders of realistic mutations for the store tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tidemark::store::{
    Acknowledgement, Cell, CellKind, CellOp, CqlEvidence, CqlPayload, Deletion, Evidence,
    EvidenceDetail, InDoubtReason, MongoEvidence, MongoOp, MongoOpKind, Mutation, OpTime, Outcome,
    Payload, Source, Store, StoreOptions, WriteConcern, WriteOp,
};

/// A fresh temporary directory and the path of a store inside it (not created yet).
pub fn store_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    (tmp, dir)
}

/// Creates a no-sync store in a fresh directory.
pub fn new_store() -> (tempfile::TempDir, Store) {
    let (tmp, dir) = store_dir();
    let store = Store::create(&dir, &StoreOptions::for_tests()).expect("create store");
    (tmp, store)
}

/// Reopens a store for writing.
pub fn reopen(dir: &Path) -> Store {
    Store::open(dir, &StoreOptions::for_tests()).expect("reopen store")
}

/// A CQL mutation with `columns` text cells.
pub fn cql(ns: &str, key: &str, commit_time: u64, columns: usize) -> Mutation {
    let cells = (0..columns)
        .map(|i| Cell {
            column: format!("c{i}").into(),
            path: None,
            value: format!("value-{i}-{key}").into_bytes().into(),
            cql_type: "text".into(),
            timestamp: 1_700_000_000_000_000 + i as i64,
            ttl: None,
            local_deletion_time: None,
            kind: CellKind::Live,
            op: CellOp::Set,
        })
        .collect();
    Mutation {
        commit_time,
        source: Source {
            node: "10.0.0.1:9042".parse().expect("addr"),
            flow: 7,
        },
        namespace: ns.into(),
        key: key.into(),
        op: WriteOp::Insert,
        outcome: Outcome::Committed,
        evidence: Evidence {
            note: "RESULT Void".into(),
            detail: EvidenceDetail::Cql(CqlEvidence {
                response: "RESULT Void".into(),
                ..CqlEvidence::default()
            }),
        },
        write_timestamp: Some(1_700_000_000_000_000),
        ttl: None,
        ack: Acknowledgement::Consistency {
            level: "QUORUM".into(),
            serial: None,
        },
        batch: None,
        payload: Payload::Cql(CqlPayload {
            cells,
            ..CqlPayload::default()
        }),
        line: None,
        line_values: None,
        ddl: None,
    }
}

/// A CQL mutation exercising every optional part of the CQL payload.
pub fn cql_full(commit_time: u64) -> Mutation {
    let mut m = cql("ks.t", r#"{"id":1,"ck":2}"#, commit_time, 2);
    m.op = WriteOp::Delete;
    m.outcome = Outcome::InDoubt {
        reason: InDoubtReason::Timeout,
    };
    m.evidence.detail = EvidenceDetail::Cql(CqlEvidence {
        response: "ERROR".into(),
        error_code: Some(0x1100),
        write_type: Some("SIMPLE".into()),
        received: Some(0),
        block_for: Some(2),
        applied: None,
        stream: Some(12),
    });
    m.ttl = Some(3600);
    if let Payload::Cql(p) = &mut m.payload {
        p.cells.push(Cell {
            column: "tags".into(),
            path: Some(b"red".to_vec()),
            value: Default::default(),
            cql_type: "set<text>".into(),
            timestamp: 5,
            ttl: None,
            local_deletion_time: Some(1_700_000_000),
            kind: CellKind::Tombstone,
            op: CellOp::Remove,
        });
        p.row_deletion = Some(Deletion {
            timestamp: 4,
            local_deletion_time: 1_700_000_000,
        });
        p.partition_deletion = Some(Deletion {
            timestamp: 3,
            local_deletion_time: 1_700_000_001,
        });
        p.range_deletions.push(tidemark::store::RangeDeletion {
            start: tidemark::store::ClusteringBound {
                prefix: vec![serde_bytes::ByteBuf::from(vec![0, 0, 0, 1])],
                inclusive: true,
            },
            end: tidemark::store::ClusteringBound::default(),
            deletion: Deletion {
                timestamp: 6,
                local_deletion_time: 1_700_000_002,
            },
        });
    }
    m
}

/// A Mongo insert of a document of about `doc_len` bytes.
pub fn mongo(ns: &str, id: u64, commit_time: u64, doc_len: usize) -> Mutation {
    // A BSON document {_id: int64, pad: string}; valid enough to be realistic bytes.
    let pad = "x".repeat(doc_len.saturating_sub(32));
    let mut doc = Vec::new();
    doc.extend_from_slice(&[0; 4]);
    doc.push(0x12);
    doc.extend_from_slice(b"_id\0");
    doc.extend_from_slice(&(id as i64).to_le_bytes());
    doc.push(0x02);
    doc.extend_from_slice(b"pad\0");
    doc.extend_from_slice(&((pad.len() + 1) as i32).to_le_bytes());
    doc.extend_from_slice(pad.as_bytes());
    doc.push(0);
    doc.push(0);
    let len = doc.len() as i32;
    doc[..4].copy_from_slice(&len.to_le_bytes());
    Mutation {
        commit_time,
        source: Source {
            node: "[fd00::2]:27017".parse().expect("addr"),
            flow: 9,
        },
        namespace: ns.into(),
        key: format!(r#"{{"_id":{id}}}"#),
        op: WriteOp::Insert,
        outcome: Outcome::Committed,
        evidence: Evidence {
            note: "ok:1 w:majority".into(),
            detail: EvidenceDetail::Mongo(MongoEvidence {
                ok: Some(true),
                operation_time: Some(OpTime {
                    ts: (1_700_000_000u64 << 32) | id,
                    t: 3,
                }),
                commit_point: None,
                commit_point_source: None,
                error_code: None,
                request_id: Some(42),
            }),
        },
        write_timestamp: None,
        ttl: None,
        ack: Acknowledgement::WriteConcern(WriteConcern {
            w: Some("majority".into()),
            j: Some(true),
            wtimeout_ms: None,
        }),
        batch: None,
        payload: Payload::Mongo(MongoOp {
            op: MongoOpKind::Insert,
            ns: ns.into(),
            o: doc.into(),
            o2: None,
            optime: Some(OpTime {
                ts: (1_700_000_000u64 << 32) | id,
                t: 3,
            }),
            lsid: Some([7; 16]),
            txn_number: Some(1),
            stmt_id: Some(0),
        }),
        line: None,
        line_values: None,
        ddl: None,
    }
}
