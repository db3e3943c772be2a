//! A realistic CQL v4 workload (lz4, or uncompressed with [`connection_with`]) as a
//! pcap: a few pool connections to one node, each with STARTUP, PREPARE of a 10-column INSERT of mixed types, then
//! prepared EXECUTEs (every tenth request a BATCH of five) answered by RESULT Void,
//! frames packed into TCP segments the way drivers coalesce writes. Encoded with
//! tidemark-cql's encoder; headers by hand (checksums zero: tidemark does not check
//! them).

use std::io::{self, Write};

use crate::synth::{tcp_frame, Endpoint, Rng};
use cql::frame::{encode_message, Compression};
use cql::message::{
    Batch, BatchQuery, BatchStatement, BatchType, ColumnSpec, Execute, Prepare, Prepared,
    PreparedMetadata, QueryParameters, QueryValues, ResultBody, RowsMetadata, Startup,
};
use cql::wire::{Consistency, WireValue};
use cql::{ColumnType, Message};
use tidemark::capture::pcap_writer::PcapWriter;
use tidemark::capture::{LinkType, Timestamp};
use tidemark::decode::cql::protocol as cql;
use tidemark::decode::cql::protocol::bytes::Bytes;

pub const INSERT: &str = "INSERT INTO bench.events (id, ck, name, score, active, created, payload, tags, counts, amount) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const ID: &[u8] = b"\x8a\x1f\x00\x42\x99\x13\x77\x01\x8a\x1f\x00\x42\x99\x13\x77\x01";
const MSS: usize = 1448;
const SERVER: [u8; 4] = [10, 9, 0, 42];

/// The byte streams of one connection, kept for in-memory measurements.
#[derive(Default)]
pub struct Streams {
    pub c2s: Vec<u8>,
    pub s2c: Vec<u8>,
    pub writes: u64,
    /// Bytes of both directions' frames had none been compressed (the decoder's
    /// work after decompression).
    pub plain: u64,
    /// Compression every frame after STARTUP uses.
    compression: Compression,
    /// (end of request in c2s, end of its response in s2c) per exchange, so the pcap
    /// never shows a response before its request.
    marks: Vec<(usize, usize)>,
}

fn spec(name: &str, ty: ColumnType) -> ColumnSpec {
    ColumnSpec {
        keyspace: "bench".into(),
        table: "events".into(),
        name: name.into(),
        ty,
    }
}

fn prepared() -> Message {
    use ColumnType as T;
    Message::Result(ResultBody::Prepared(Prepared {
        id: Bytes::from_static(ID),
        result_metadata_id: None,
        metadata: PreparedMetadata {
            pk_indexes: vec![0],
            global_table_spec: None,
            columns: vec![
                spec("id", T::Uuid),
                spec("ck", T::Int),
                spec("name", T::Varchar),
                spec("score", T::Double),
                spec("active", T::Boolean),
                spec("created", T::Timestamp),
                spec("payload", T::Blob),
                spec("tags", T::List(Box::new(T::Varchar))),
                spec("counts", T::Map(Box::new(T::Varchar), Box::new(T::Int))),
                spec("amount", T::BigInt),
            ],
        },
        result_metadata: RowsMetadata::default(),
    }))
}

fn b(v: Vec<u8>) -> WireValue {
    WireValue::Bytes(Bytes::from(v))
}

fn row(rng: &mut Rng, n: u64) -> QueryValues {
    let r = rng.next_u64();
    let mut uuid = r.to_be_bytes().to_vec();
    uuid.extend_from_slice(&n.to_be_bytes());
    let name = format!("user-{:08x}", r as u32).into_bytes();
    let mut tags = 2i32.to_be_bytes().to_vec();
    for t in ["alpha", "beta"] {
        tags.extend_from_slice(&(t.len() as i32).to_be_bytes());
        tags.extend_from_slice(t.as_bytes());
    }
    let mut counts = 2i32.to_be_bytes().to_vec();
    for (k, v) in [("x", r as i32 & 0xff), ("y", (r >> 8) as i32 & 0xff)] {
        counts.extend_from_slice(&1i32.to_be_bytes());
        counts.extend_from_slice(k.as_bytes());
        counts.extend_from_slice(&4i32.to_be_bytes());
        counts.extend_from_slice(&v.to_be_bytes());
    }
    let payload: Vec<u8> = (0..48).map(|i| (r >> (i % 56)) as u8).collect();
    QueryValues::Positional(vec![
        b(uuid),
        b(((n % 1000) as i32).to_be_bytes().to_vec()),
        b(name),
        b(((r % 10_000) as f64 / 7.0).to_be_bytes().to_vec()),
        b(vec![(r & 1) as u8]),
        b((1_700_000_000_000i64 + n as i64).to_be_bytes().to_vec()),
        b(payload),
        b(tags),
        b(counts),
        b((r as i64 >> 3).to_be_bytes().to_vec()),
    ])
}

fn params(values: QueryValues, ts: i64) -> QueryParameters {
    QueryParameters {
        consistency: Consistency::LocalQuorum,
        values,
        timestamp: Some(ts),
        ..QueryParameters::default()
    }
}

/// Appends one request and its response to the streams; returns writes carried.
fn exchange(s: &mut Streams, rng: &mut Rng, n: u64, stream: i16) -> u64 {
    let ts = 1_795_000_000_000_000 + n as i64;
    let (req, writes) = if n % 10 == 9 {
        let statements = (0..5)
            .map(|i| BatchStatement {
                query: BatchQuery::Prepared(Bytes::from_static(ID)),
                values: row(rng, n * 8 + i),
            })
            .collect();
        let batch = Batch {
            batch_type: if n % 20 == 19 {
                BatchType::Logged
            } else {
                BatchType::Unlogged
            },
            statements,
            consistency: Consistency::LocalQuorum,
            serial_consistency: None,
            timestamp: Some(ts),
            keyspace: None,
            now_in_seconds: None,
        };
        (Message::Batch(batch), 5)
    } else {
        let e = Execute {
            id: Bytes::from_static(ID),
            result_metadata_id: None,
            params: params(row(rng, n), ts),
        };
        (Message::Execute(e), 1)
    };
    put(s, true, stream, req);
    put(s, false, stream, Message::Result(ResultBody::Void));
    s.marks.push((s.c2s.len(), s.s2c.len()));
    writes
}

/// Appends one frame in `s`'s compression, counting its uncompressed size.
fn put(s: &mut Streams, c2s: bool, stream: i16, m: Message) {
    let compression = s.compression;
    if compression != Compression::None {
        s.plain += encode_message(4, stream, m.clone(), Compression::None).len() as u64;
    }
    let frame = encode_message(4, stream, m, compression);
    if compression == Compression::None {
        s.plain += frame.len() as u64;
    }
    if c2s { &mut s.c2s } else { &mut s.s2c }.extend_from_slice(&frame);
}

fn handshake(s: &mut Streams) {
    let mut options = vec![("CQL_VERSION".into(), "3.0.0".into())];
    if s.compression == Compression::Lz4 {
        options.push(("COMPRESSION".into(), "lz4".into()));
    }
    let startup = Message::Startup(Startup { options });
    // STARTUP itself is never compressed: compression starts with its answer.
    let compression = std::mem::replace(&mut s.compression, Compression::None);
    put(s, true, 0, startup);
    s.compression = compression;
    put(s, false, 0, Message::Ready);
    let prep = Message::Prepare(Prepare {
        query: INSERT.into(),
        keyspace: None,
    });
    put(s, true, 1, prep);
    put(s, false, 1, prepared());
    s.marks.push((s.c2s.len(), s.s2c.len()));
}

/// One lz4 connection's streams with about `bytes` of requests and responses.
pub fn connection(seed: u64, bytes: usize) -> Streams {
    connection_with(seed, bytes, Compression::Lz4)
}

/// One connection's streams with about `bytes` of requests and responses, every
/// frame after STARTUP in `compression` (`None` or `Lz4`).
pub fn connection_with(seed: u64, bytes: usize, compression: Compression) -> Streams {
    let mut s = Streams {
        compression,
        ..Streams::default()
    };
    let mut rng = Rng::new(seed);
    handshake(&mut s);
    let mut n = 0u64;
    while s.c2s.len() + s.s2c.len() < bytes {
        s.writes += exchange(&mut s, &mut rng, n, (2 + n % 1000) as i16);
        n += 1;
    }
    s
}

fn packet(client: Endpoint, c2s: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let server = (SERVER, 9042);
    let (src, dst) = if c2s {
        (client, server)
    } else {
        (server, client)
    };
    tcp_frame(src, dst, seq, ack, flags, payload)
}

/// Writes `conns` (one TCP flow each, interleaved segment by segment) as a pcap.
pub fn write_pcap<W: Write>(out: W, conns: &[Streams]) -> io::Result<u64> {
    let mut w = PcapWriter::new(out, LinkType::Ethernet, 65_535)?;
    let mut t = 1_795_000_000_000_000_000u64;
    let mut bytes = 0u64;
    let mut put = |w: &mut PcapWriter<W>, p: Vec<u8>| -> io::Result<()> {
        t += 1_000;
        bytes += p.len() as u64 + 16;
        w.write(Timestamp(t), &p)
    };
    let clients: Vec<([u8; 4], u16)> = (0..conns.len())
        .map(|i| ([10, 1, 0, i as u8 + 1], 40_000 + i as u16))
        .collect();
    let (mut cseq, mut sseq) = (vec![1000u32; conns.len()], vec![5000u32; conns.len()]);
    let (mut coff, mut soff) = (vec![0usize; conns.len()], vec![0usize; conns.len()]);
    for (i, c) in clients.iter().enumerate() {
        put(&mut w, packet(*c, true, cseq[i], 0, 0x02, &[]))?;
        put(&mut w, packet(*c, false, sseq[i], cseq[i] + 1, 0x12, &[]))?;
        cseq[i] += 1;
        sseq[i] += 1;
        put(&mut w, packet(*c, true, cseq[i], sseq[i], 0x10, &[]))?;
    }
    let mut mark = vec![0usize; conns.len()];
    loop {
        let mut any = false;
        for (i, s) in conns.iter().enumerate() {
            if coff[i] < s.c2s.len() {
                // Drivers wait for the Prepared result before executing.
                let limit = if mark[i] == 0 {
                    s.marks[0].0
                } else {
                    s.c2s.len()
                };
                let end = (coff[i] + MSS).min(limit);
                put(
                    &mut w,
                    packet(
                        clients[i],
                        true,
                        cseq[i],
                        sseq[i],
                        0x18,
                        &s.c2s[coff[i]..end],
                    ),
                )?;
                cseq[i] = cseq[i].wrapping_add((end - coff[i]) as u32);
                coff[i] = end;
                any = true;
            }
            // Responses to every request now complete.
            let mut s2c_end = soff[i];
            while mark[i] < s.marks.len() && s.marks[mark[i]].0 <= coff[i] {
                s2c_end = s.marks[mark[i]].1;
                mark[i] += 1;
            }
            while soff[i] < s2c_end {
                let end = (soff[i] + MSS).min(s2c_end);
                put(
                    &mut w,
                    packet(
                        clients[i],
                        false,
                        sseq[i],
                        cseq[i],
                        0x18,
                        &s.s2c[soff[i]..end],
                    ),
                )?;
                sseq[i] = sseq[i].wrapping_add((end - soff[i]) as u32);
                soff[i] = end;
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    for (i, c) in clients.iter().enumerate() {
        put(&mut w, packet(*c, true, cseq[i], sseq[i], 0x11, &[]))?;
        put(&mut w, packet(*c, false, sseq[i], cseq[i] + 1, 0x11, &[]))?;
        put(
            &mut w,
            packet(*c, true, cseq[i] + 1, sseq[i] + 1, 0x10, &[]),
        )?;
    }
    w.finish()?;
    Ok(bytes)
}
