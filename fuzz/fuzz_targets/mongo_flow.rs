//! The MongoDB flow decoder (src/decode/mongo) on arbitrary traffic in both
//! directions: pairing, outcome rules, the write lines' extras (raw-BSON oplog-style
//! operations, reply optimes) and the replication records (hello topology, commit
//! points, replSetUpdatePosition, oplog cursors, exhaust replies).
//!
//! Input: records of [kind: u8][len: u8][bytes]. Kind bit 0 is the direction; bit 1
//! wraps the bytes as the body of an OP_MSG (request id and responseTo from bits 2-4,
//! so replies pair with requests), otherwise they go on the stream as they are; bit 5
//! sets moreToCome (exhaust replies, w:0 writes); bit 6 is a gap instead of bytes.
//! Every operation a record carries must hold documents that frame as BSON.
#![no_main]

use tidemark_mongo::bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tidemark::capture::{CloseReason, Direction, FlowId, Timestamp};
use tidemark::decode::mongo::MongoFlowDecoder;
use tidemark::decode::seam::{FlowDecoder, FlowInfo, StreamPos};
use tidemark::decode::detect::Protocol;
use tidemark::decode::records::{Record, ReplicationEvent};
use tidemark::store::envelope::MongoOp;
use tidemark_mongo::bson::RawDocument;

fn op_msg(id: i32, to: i32, flags: u32, body: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + 1 + body.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as i32).to_le_bytes());
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&to.to_le_bytes());
    m.extend_from_slice(&2013i32.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.push(0);
    m.extend_from_slice(body);
    m
}

fn check(op: &MongoOp) {
    assert!(RawDocument::from_bytes(&op.o).is_ok(), "o frames as BSON");
    if let Some(o2) = &op.o2 {
        assert!(RawDocument::from_bytes(o2).is_ok(), "o2 frames as BSON");
    }
}

fuzz_target!(|data: &[u8]| {
    let info = FlowInfo {
        flow: FlowId(1),
        client: "10.0.0.1:40000".parse().unwrap(),
        server: "10.0.0.2:27017".parse().unwrap(),
        protocol: Protocol::Mongo,
        opened: Timestamp(0),
    };
    let mut dec = MongoFlowDecoder::new(&info);
    let mut out = Vec::new();
    let mut offset = [0u64; 2];
    let mut rest = data;
    while let [kind, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (bytes, next) = tail.split_at(n);
        rest = next;
        let dir = if kind & 1 == 0 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        let pos = StreamPos {
            flow: &info,
            dir,
            ts: Timestamp(1),
            offset: offset[dir as usize],
        };
        if kind & 0x40 != 0 {
            dec.gap(&pos, n as u64 + 1, &mut out);
            offset[dir as usize] += n as u64 + 1;
            continue;
        }
        let wire = if kind & 2 != 0 {
            let id = i32::from((kind >> 2) & 7);
            let flags = if kind & 0x20 != 0 { 2 } else { 0 };
            match dir {
                Direction::ClientToServer => op_msg(id, 0, flags, bytes),
                Direction::ServerToClient => op_msg(100 + id, id, flags, bytes),
            }
        } else {
            bytes.to_vec()
        };
        offset[dir as usize] += wire.len() as u64;
        dec.data(&pos, &Bytes::from(wire), &mut out);
    }
    dec.closed(&info, Timestamp(2), CloseReason::Fin, &mut out);
    for r in &out {
        match r {
            Record::Write(w) => {
                if let Some(op) = &w.extras.mongo_op {
                    check(op);
                }
                // Documents kept as BSON render when printed, and the same as when
                // read; the store's form (line minus kept values) serializes too.
                let printed = serde_json::to_value(&w.values).expect("values serialize");
                assert_eq!(printed, *w.values);
                let stored = tidemark::decode::records::without_raw_values(|| {
                    serde_json::to_value(&w.values).expect("values serialize")
                });
                if w.values.as_raw().is_some() {
                    assert!(stored.is_null());
                }
            }
            Record::Replication(x) => {
                if let ReplicationEvent::OplogEntry { op, .. } = &x.event {
                    check(op);
                }
            }
            _ => {}
        }
    }
});
