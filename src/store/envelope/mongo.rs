//! The MongoDB payload of an envelope: an oplog-style operation.
//!
//! The oplog form is idempotent and already resolved (an update is stored as the
//! `$set`/`$unset` or replacement it made, when known), which is what applying the log
//! after a snapshot's start optime needs. Documents stay raw BSON bytes: the store never
//! needs to look inside them, and re-encoding would risk changing field order or
//! numeric types.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One oplog-style operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MongoOp {
    /// `i`, `u`, `d`, `c` or `n`.
    pub op: MongoOpKind,
    /// Namespace as in the oplog (`db.collection`, `db.$cmd` for commands).
    pub ns: String,
    /// The oplog `o` field as a BSON document: the inserted document, the update
    /// (modifiers or replacement), the delete's `_id` filter, or the command.
    ///
    /// `Bytes`, so a decoder hands over a slice of the request it read instead of a
    /// copy (`decode::mongo::share`), and the line's kept values are that same slice.
    /// Serde writes it as the byte string `serde_bytes` wrote: the store's encoding
    /// is unchanged.
    pub o: Bytes,
    /// The oplog `o2` field (the `_id` filter of an update) as BSON, when present.
    pub o2: Option<Bytes>,
    /// The entry's optime, when known (from the reply or the oplog).
    pub optime: Option<OpTime>,
    /// `lsid.id` of a retryable write or transaction (UUID bytes only).
    pub lsid: Option<[u8; 16]>,
    /// `txnNumber` of a retryable write or transaction.
    pub txn_number: Option<i64>,
    /// `stmtId` within the retryable write or transaction.
    pub stmt_id: Option<i32>,
}

impl MongoOp {
    /// The document that names the changed document: `o2` (the filter or `{_id}`) for
    /// an update, `o` (the document, or the delete's filter) otherwise.
    pub fn target_doc(&self) -> Option<&[u8]> {
        match self.op {
            MongoOpKind::Update => self.o2.as_deref(),
            _ => Some(&self.o[..]),
        }
    }
}

/// Oplog operation type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MongoOpKind {
    /// `i`: insert.
    #[serde(rename = "i")]
    Insert,
    /// `u`: update.
    #[serde(rename = "u")]
    Update,
    /// `d`: delete.
    #[serde(rename = "d")]
    Delete,
    /// `c`: command (DDL, applyOps).
    #[serde(rename = "c")]
    Command,
    /// `n`: no-op.
    #[serde(rename = "n")]
    Noop,
}

impl MongoOpKind {
    /// The oplog's one-letter spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MongoOpKind::Insert => "i",
            MongoOpKind::Update => "u",
            MongoOpKind::Delete => "d",
            MongoOpKind::Command => "c",
            MongoOpKind::Noop => "n",
        }
    }
}

/// A replication optime: BSON timestamp and election term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpTime {
    /// BSON Timestamp as one integer: seconds in the high 32 bits, increment low.
    pub ts: u64,
    /// Election term (`-1` for pre-3.2 protocol version 0).
    pub t: i64,
}

/// A Mongo write concern as requested.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteConcern {
    /// `w` as written: a number (`"1"`), `"majority"`, or a tag set name; `None`
    /// when the client sent no write concern (server default applies).
    pub w: Option<String>,
    /// `j`.
    pub j: Option<bool>,
    /// `wtimeout` in milliseconds.
    pub wtimeout_ms: Option<u64>,
}

/// The reply and replication state that decided a Mongo write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MongoEvidence {
    /// `ok` of the reply.
    pub ok: Option<bool>,
    /// `operationTime` of the reply: the write's optime.
    pub operation_time: Option<OpTime>,
    /// The majority commit point that covered it, and where it was learned
    /// (`lastOpCommitted`, `majorityOpTime`, `replSetUpdatePosition`).
    pub commit_point: Option<OpTime>,
    /// Where `commit_point` came from.
    pub commit_point_source: Option<String>,
    /// Code of the write error or write concern error, if any.
    pub error_code: Option<i32>,
    /// `requestId` of the request (pairing key), for tracing back to the capture.
    pub request_id: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `MongoOp` as it was declared before its documents became `Bytes`: what
    /// every store up to now holds.
    #[derive(Serialize)]
    struct VecOp {
        op: MongoOpKind,
        ns: String,
        #[serde(with = "serde_bytes")]
        o: Vec<u8>,
        #[serde(with = "serde_bytes")]
        o2: Option<Vec<u8>>,
        optime: Option<OpTime>,
        lsid: Option<[u8; 16]>,
        txn_number: Option<i64>,
        stmt_id: Option<i32>,
    }

    proptest::proptest! {
        /// The shared documents are encoded byte for byte as the copied ones were,
        /// and decode back equal: no store format changes with them.
        #[test]
        fn documents_as_bytes_encode_as_the_byte_vectors_did(
            o in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            o2 in proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)),
            ts in proptest::prelude::any::<u64>(),
        ) {
            let optime = Some(OpTime { ts, t: 3 });
            let old = VecOp {
                op: MongoOpKind::Update, ns: "d.c".into(), o: o.clone(), o2: o2.clone(),
                optime, lsid: Some([7; 16]), txn_number: Some(4), stmt_id: None,
            };
            let new = MongoOp {
                op: MongoOpKind::Update, ns: "d.c".into(), o: o.into(), o2: o2.map(Bytes::from),
                optime, lsid: Some([7; 16]), txn_number: Some(4), stmt_id: None,
            };
            let (old_bytes, new_bytes) = (
                crate::store::codec::encode(&old).unwrap(),
                crate::store::codec::encode(&new).unwrap(),
            );
            proptest::prop_assert_eq!(&old_bytes, &new_bytes);
            let back: MongoOp = crate::store::codec::decode(&old_bytes).unwrap();
            proptest::prop_assert_eq!(back, new);
        }
    }
}
