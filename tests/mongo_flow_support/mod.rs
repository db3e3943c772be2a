//! A MongoDB flow fed with messages made by tidemark-mongo's encoder, straight into
//! the flow decoder (the path a capture's reassembled bytes take), keeping every
//! record: `write` lines with their extras and `replication` records.
#![allow(dead_code)]

use bytes::Bytes;
use tidemark::capture::{CloseReason, Direction, FlowId, Timestamp};
use tidemark::decode::detect::Protocol;
use tidemark::decode::mongo::tidemark_mongo::bson::RawDocumentBuf;
use tidemark::decode::mongo::tidemark_mongo::{
    encode_message, Body, Doc, DocSeq, DocSequence, Message, MsgFlags, OpMsg,
};
use tidemark::decode::mongo::MongoFlowDecoder;
use tidemark::decode::records::{Record, ReplicationEvent, WriteRecord};
use tidemark::decode::seam::{FlowDecoder, FlowInfo, StreamPos};

/// One flow under test.
pub struct Flow {
    info: FlowInfo,
    dec: MongoFlowDecoder,
    offset: [u64; 2],
    pub records: Vec<Record>,
}

impl Flow {
    pub fn new() -> Flow {
        let info = FlowInfo {
            flow: FlowId(3),
            client: "10.0.0.1:50000".parse().unwrap(),
            server: "10.0.0.2:27017".parse().unwrap(),
            protocol: Protocol::Mongo,
            opened: Timestamp(1_000_000_000),
        };
        let dec = MongoFlowDecoder::new(&info);
        Flow {
            info,
            dec,
            offset: [0, 0],
            records: Vec::new(),
        }
    }

    pub fn raw(&mut self, dir: Direction, bytes: &[u8]) {
        let i = dir as usize;
        let pos = StreamPos {
            flow: &self.info,
            dir,
            ts: Timestamp(2_000_000_000),
            offset: self.offset[i],
        };
        self.dec
            .data(&pos, &Bytes::copy_from_slice(bytes), &mut self.records);
        self.offset[i] += bytes.len() as u64;
    }

    pub fn send(&mut self, msg: &Message) {
        self.raw(Direction::ClientToServer, &encode_message(msg).unwrap());
    }

    pub fn answer(&mut self, msg: &Message) {
        self.raw(Direction::ServerToClient, &encode_message(msg).unwrap());
    }

    /// `len` bytes of `dir` lost in a capture gap.
    pub fn gap(&mut self, dir: Direction, len: u64) {
        let i = dir as usize;
        let pos = StreamPos {
            flow: &self.info,
            dir,
            ts: Timestamp(2_000_000_000),
            offset: self.offset[i],
        };
        self.dec.gap(&pos, len, &mut self.records);
        self.offset[i] += len;
    }

    pub fn close(&mut self) {
        self.dec.closed(
            &self.info,
            Timestamp(3_000_000_000),
            CloseReason::Fin,
            &mut self.records,
        );
    }

    pub fn writes(&self) -> Vec<&WriteRecord> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Write(w) => Some(&**w),
                _ => None,
            })
            .collect()
    }

    /// (outcome, reason) of every write line so far.
    pub fn outcomes(&self) -> Vec<(&'static str, String)> {
        self.writes()
            .iter()
            .map(|w| {
                (
                    w.outcome.as_str(),
                    w.reason.as_deref().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    pub fn replication(&self) -> Vec<&ReplicationEvent> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Replication(r) => Some(&r.event),
                _ => None,
            })
            .collect()
    }

    /// Takes the records so far (the next assertions see only what follows).
    pub fn take(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.records)
    }
}

/// An OP_MSG with a body and document sequences.
pub fn msg(
    id: i32,
    to: i32,
    body: RawDocumentBuf,
    seqs: Vec<(&str, Vec<RawDocumentBuf>)>,
) -> Message {
    let mut m = OpMsg::new(Doc::from(body));
    m.sequences = seqs
        .into_iter()
        .map(|(id, docs)| DocSequence {
            identifier: id.to_owned(),
            documents: DocSeq::from_docs(docs.iter().map(|d| d.as_ref())),
        })
        .collect();
    Message::new(id, to, Body::Msg(m))
}

/// An OP_MSG reply with moreToCome set (an exhaust stream's next reply follows).
pub fn exhaust_reply(id: i32, to: i32, body: RawDocumentBuf) -> Message {
    let mut m = OpMsg::new(Doc::from(body));
    m.flags = MsgFlags(MsgFlags::MORE_TO_COME);
    Message::new(id, to, Body::Msg(m))
}

/// `body` with the fields of `extra` appended.
pub fn with(mut body: RawDocumentBuf, extra: RawDocumentBuf) -> RawDocumentBuf {
    for el in extra.iter() {
        let (k, v) = el.unwrap();
        body.append(k, v);
    }
    body
}
