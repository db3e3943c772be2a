//! A realistic MongoDB write workload, encoded with tidemark-mongo's encoder and
//! written as a pcap with the project's pcap writer.
//!
//! Several application connections to one mongod, interleaved message by message.
//! Each round on a connection is a pymongo-shaped `insert_many` (OP_MSG body plus a
//! `documents` kind-1 sequence of ~1 KB order documents), answered `{n, ok}`, and
//! every fourth round an `update` batch of `$set`/`$inc` statements by `_id`. With a
//! compressor, both directions go through OP_COMPRESSED, as a driver and server that
//! negotiated compression do; without, plain OP_MSG. Messages are cut into MSS-sized TCP
//! segments inside Ethernet/IPv4 frames (checksums zero: nobody here verifies them).

use std::io::{self, Write};

use crate::synth::{tcp_frame, Rng};
use tidemark::capture::pcap_writer::PcapWriter;
use tidemark::capture::{LinkType, Timestamp};
use tidemark::decode::mongo::tidemark_mongo::bson::{self, rawdoc, RawDocumentBuf};
use tidemark::decode::mongo::tidemark_mongo::{
    encode_message, Body, Compressor, Doc, DocSeq, DocSequence, Message, OpMsg,
};

/// Shape of the workload.
#[derive(Debug, Clone)]
pub struct Workload {
    pub target_wire_bytes: u64,
    pub connections: usize,
    pub docs_per_insert: usize,
    pub updates_per_batch: usize,
    pub mss: usize,
    /// `None`: plain OP_MSG, as a connection that negotiated no compression sends.
    pub compressor: Option<Compressor>,
    pub seed: u64,
    /// Capture time between two packets, ns. It sets how long the capture lasts in
    /// capture time, which matters to a tap: an acknowledged write with no
    /// replication in sight waits for its resolution deadline (10 s by default), so
    /// a capture shorter than that decides every write at its end, in one group.
    pub packet_gap_ns: u64,
}

/// One message as it travels: which connection, which way, its wire bytes.
pub struct Wire {
    pub conn: usize,
    pub c2s: bool,
    pub bytes: Vec<u8>,
}

/// What was generated.
#[derive(Debug, Default, Clone)]
pub struct Generated {
    pub messages: u64,
    pub wire_bytes: u64,
    /// Bytes of the messages before compression.
    pub plain_bytes: u64,
    /// Write statements (documents inserted + update statements).
    pub writes: u64,
    pub packets: u64,
    pub frame_bytes: u64,
}

const WORDS: &[&str] = &[
    "delivery",
    "customer",
    "requested",
    "leave",
    "parcel",
    "at",
    "the",
    "back",
    "door",
    "please",
    "call",
    "before",
    "arrival",
    "gift",
    "wrap",
    "fragile",
    "handle",
    "with",
    "care",
    "second",
    "floor",
    "ring",
    "bell",
    "twice",
    "order",
    "shipped",
    "express",
    "warehouse",
    "north",
    "invoice",
    "attached",
    "discount",
    "applied",
    "loyalty",
];
const FIRST: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Frances", "John",
];
const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Allen",
];
const CITIES: &[&str] = &[
    "Berlin", "Lyon", "Porto", "Utrecht", "Gdansk", "Bologna", "Aarhus", "Graz",
];

fn text(rng: &mut Rng, len: usize) -> String {
    let mut s = String::with_capacity(len + 12);
    while s.len() < len {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s
}

fn oid(n: u64) -> bson::oid::ObjectId {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&0x65e1_c0deu32.to_be_bytes());
    b[4..].copy_from_slice(&n.to_be_bytes());
    bson::oid::ObjectId::from_bytes(b)
}

/// A ~1 KB order document.
fn order(rng: &mut Rng, n: u64) -> RawDocumentBuf {
    let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
    let mut items = bson::RawArrayBuf::new();
    for i in 0..3 + rng.below(3) {
        items.push(rawdoc! {
            "sku": format!("SKU-{:05}", rng.below(100_000)),
            "qty": (1 + rng.below(5)) as i32,
            "price": (rng.below(100_000) as f64) / 100.0,
            "line": i as i32,
        });
    }
    rawdoc! {
        "_id": oid(n),
        "customer": {
            "id": rng.below(1 << 40) as i64,
            "name": format!("{first} {last}"),
            "email": format!("{}.{}@example.org", first.to_lowercase(), last.to_lowercase()),
            "address": {
                "street": format!("{} {} Street", 1 + rng.below(300), rng.pick(WORDS)),
                "city": rng.pick(CITIES), "zip": format!("{:05}", rng.below(100_000)), "country": "DE",
            },
        },
        "status": "pending",
        "created": bson::DateTime::from_millis(1_709_296_245_123 + n as i64 * 17),
        "total": (rng.below(1_000_000) as f64) / 100.0,
        "currency": "EUR",
        "items": items,
        "tags": [rng.pick(WORDS), rng.pick(WORDS)],
        "note": text(rng, 430),
        "version": 1,
    }
}

fn op_msg(
    id: i32,
    to: i32,
    body: RawDocumentBuf,
    seq: Option<(&str, Vec<RawDocumentBuf>)>,
    c: Option<Compressor>,
) -> Message {
    let mut m = OpMsg::new(Doc::from(body));
    if let Some((ident, docs)) = seq {
        m.sequences.push(DocSequence {
            identifier: ident.to_owned(),
            documents: DocSeq::from_docs(docs.iter().map(|d| d.as_ref())),
        });
    }
    let m = Message::new(id, to, Body::Msg(m));
    match c {
        Some(c) => m.compressed_with(c),
        None => m,
    }
}

fn lsid(conn: usize) -> bson::Binary {
    bson::Binary {
        subtype: bson::spec::BinarySubtype::Uuid,
        bytes: (0..16).map(|i| (conn * 31 + i) as u8).collect(),
    }
}

/// Generates the workload's messages in wire order, handing each to `sink`.
pub fn messages(
    w: &Workload,
    mut sink: impl FnMut(Wire) -> io::Result<()>,
) -> io::Result<Generated> {
    let mut rng = Rng::new(w.seed);
    let mut g = Generated::default();
    let mut next_doc = 0u64;
    let mut round = vec![0u64; w.connections];
    let mut request_id = 1i32;
    while g.wire_bytes < w.target_wire_bytes {
        let conn = rng.below(w.connections as u64) as usize;
        round[conn] += 1;
        let txn = round[conn] as i64;
        let wc = if round[conn].is_multiple_of(3) {
            rawdoc! {"w": "majority"}
        } else {
            rawdoc! {"w": 1}
        };
        let (req, reply, n) = if round[conn].is_multiple_of(4) && next_doc > 0 {
            let ups: Vec<RawDocumentBuf> = (0..w.updates_per_batch)
                .map(|_| {
                    rawdoc! {
                        "q": {"_id": oid(rng.below(next_doc))},
                        "u": {"$set": {"status": "shipped", "shipped": bson::DateTime::from_millis(1_709_400_000_000)},
                              "$inc": {"version": 1}},
                    }
                })
                .collect();
            let body = rawdoc! {"update": "orders", "ordered": true, "lsid": {"id": lsid(conn)}, "txnNumber": txn,
            "writeConcern": wc, "$db": "shop"};
            let n = w.updates_per_batch as i32;
            let reply = rawdoc! {"n": n, "nModified": n, "ok": 1.0};
            (
                op_msg(request_id, 0, body, Some(("updates", ups)), w.compressor),
                reply,
                n,
            )
        } else {
            let docs: Vec<RawDocumentBuf> = (0..w.docs_per_insert)
                .map(|_| {
                    next_doc += 1;
                    order(&mut rng, next_doc)
                })
                .collect();
            let body = rawdoc! {"insert": "orders", "ordered": true, "lsid": {"id": lsid(conn)}, "txnNumber": txn,
            "writeConcern": wc, "$db": "shop"};
            let n = w.docs_per_insert as i32;
            let reply = rawdoc! {"n": n, "ok": 1.0};
            (
                op_msg(request_id, 0, body, Some(("documents", docs)), w.compressor),
                reply,
                n,
            )
        };
        let reply = op_msg(
            1_000_000 + request_id,
            request_id,
            reply,
            None,
            w.compressor,
        );
        request_id = request_id.wrapping_add(1);
        for (c2s, m) in [(true, req), (false, reply)] {
            let bytes = encode_message(&m).map_err(io::Error::other)?;
            let mut plain = m.clone();
            plain.compressor = None;
            g.plain_bytes += encode_message(&plain).map_err(io::Error::other)?.len() as u64;
            g.messages += 1;
            g.wire_bytes += bytes.len() as u64;
            sink(Wire { conn, c2s, bytes })?;
        }
        g.writes += n as u64;
    }
    Ok(g)
}

const SERVER: [u8; 4] = [10, 9, 0, 1];
const PORT: u16 = 27017;
const ACK_PSH: u8 = 0x18;

fn frame(conn: usize, c2s: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let client = ([10, 1, 0, 10 + conn as u8], 40_000 + conn as u16);
    let server = (SERVER, PORT);
    let (src, dst) = if c2s {
        (client, server)
    } else {
        (server, client)
    };
    tcp_frame(src, dst, seq, ack, flags, payload)
}

/// Writes the workload as a pcap (handshake, MSS segments, FIN per connection) and
/// returns what was generated, keeping each message for the direct measurement.
pub fn write_pcap<W: Write>(out: W, w: &Workload, keep: &mut Vec<Wire>) -> io::Result<Generated> {
    let mut pw = PcapWriter::new(out, LinkType::Ethernet, 65535)?;
    let mut seq: Vec<[u32; 2]> = (0..w.connections)
        .map(|c| [1000 + c as u32, 9000 + c as u32])
        .collect();
    let mut ts = 1_795_478_400_000_000_000u64;
    let (mut packets, mut frame_bytes) = (0u64, 0u64);
    let mut put = |pw: &mut PcapWriter<W>, f: Vec<u8>, ts: &mut u64| -> io::Result<()> {
        *ts += w.packet_gap_ns;
        packets += 1;
        frame_bytes += f.len() as u64;
        pw.write(Timestamp(*ts), &f)
    };
    for (c, s) in seq.iter_mut().enumerate() {
        put(&mut pw, frame(c, true, s[0], 0, 0x02, &[]), &mut ts)?;
        put(&mut pw, frame(c, false, s[1], s[0] + 1, 0x12, &[]), &mut ts)?;
        s[0] += 1;
        s[1] += 1;
        put(&mut pw, frame(c, true, s[0], s[1], 0x10, &[]), &mut ts)?;
    }
    let mut g = messages(w, |m| {
        let s = &mut seq[m.conn];
        let (i, j) = if m.c2s { (0, 1) } else { (1, 0) };
        for chunk in m.bytes.chunks(w.mss) {
            put(
                &mut pw,
                frame(m.conn, m.c2s, s[i], s[j], ACK_PSH, chunk),
                &mut ts,
            )?;
            s[i] = s[i].wrapping_add(chunk.len() as u32);
        }
        keep.push(m);
        Ok(())
    })?;
    for (c, s) in seq.iter_mut().enumerate() {
        put(&mut pw, frame(c, true, s[0], s[1], 0x11, &[]), &mut ts)?;
        put(&mut pw, frame(c, false, s[1], s[0] + 1, 0x11, &[]), &mut ts)?;
        put(
            &mut pw,
            frame(c, true, s[0] + 1, s[1] + 1, 0x10, &[]),
            &mut ts,
        )?;
    }
    pw.finish()?;
    g.packets = packets;
    g.frame_bytes = frame_bytes;
    Ok(g)
}
