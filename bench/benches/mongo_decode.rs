//! Criterion benchmark of MongoDB decode and decode + write extraction over the
//! `mongo_workload` stream (OP_MSG inserts of ~1 KB documents in `documents`
//! sequences, update batches, zstd), in bytes of wire traffic per second.
//!
//! `cargo bench -p tidemark-bench --bench mongo_decode`. The side-by-side comparison
//! with tshark over the same traffic is `cargo run --release -p tidemark-bench --bin
//! mongo_bench`; this one gives stable per-function numbers.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tidemark::capture::{CloseReason, Direction, FlowId, Timestamp};
use tidemark::decode::detect::Protocol;
use tidemark::decode::mongo::tidemark_mongo::bytes::Bytes;
use tidemark::decode::mongo::tidemark_mongo::{
    Compressor, ConnEvent, Connection, Direction as MDir, Limits,
};
use tidemark::decode::mongo::MongoFlowDecoder;
use tidemark::decode::seam::{FlowDecoder, FlowInfo, StreamPos};
use tidemark_bench::mongo_workload::{messages, Wire, Workload};

const T0: Timestamp = Timestamp(1_795_478_400_000_000_000);

fn workload() -> (Vec<Wire>, u64) {
    let w = Workload {
        target_wire_bytes: 8 << 20,
        connections: 4,
        docs_per_insert: 100,
        updates_per_batch: 20,
        mss: 1448,
        compressor: Some(Compressor::Zstd),
        seed: 7,
        packet_gap_ns: 2_000,
    };
    let mut wires = Vec::new();
    let g = messages(&w, |m| {
        wires.push(m);
        Ok(())
    })
    .expect("generate");
    (wires, g.wire_bytes)
}

fn info(conn: usize) -> FlowInfo {
    FlowInfo {
        flow: FlowId(conn as u64),
        client: format!("10.1.0.{}:{}", 10 + conn, 40_000 + conn)
            .parse()
            .expect("address"),
        server: "10.9.0.1:27017".parse().expect("address"),
        protocol: Protocol::Mongo,
        opened: T0,
    }
}

fn dir(c2s: bool) -> Direction {
    if c2s {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    }
}

fn decode_only(wires: &[(usize, bool, Bytes)]) -> u64 {
    let mut conns: Vec<Connection> = (0..4).map(|_| Connection::new(Limits::default())).collect();
    let mut n = 0;
    for (conn, c2s, bytes) in wires {
        let d = if *c2s {
            MDir::ClientToServer
        } else {
            MDir::ServerToClient
        };
        conns[*conn].feed(d, bytes);
        while let Some(ev) = conns[*conn].poll() {
            n += u64::from(matches!(ev, ConnEvent::Message { .. }));
        }
    }
    n
}

fn decode_and_extract(wires: &[(usize, bool, Bytes)]) -> u64 {
    let infos: Vec<FlowInfo> = (0..4).map(info).collect();
    let mut decs: Vec<MongoFlowDecoder> = infos.iter().map(MongoFlowDecoder::new).collect();
    let mut offsets = [[0u64; 2]; 4];
    let mut out = Vec::with_capacity(256);
    let mut records = 0u64;
    for (conn, c2s, bytes) in wires {
        let d = dir(*c2s);
        let pos = StreamPos {
            flow: &infos[*conn],
            dir: d,
            ts: T0,
            offset: offsets[*conn][d as usize],
        };
        decs[*conn].data(&pos, bytes, &mut out);
        offsets[*conn][d as usize] += bytes.len() as u64;
        records += out.len() as u64;
        out.clear();
    }
    for (d, inf) in decs.iter_mut().zip(&infos) {
        d.closed(inf, T0, CloseReason::Fin, &mut out);
    }
    records + out.len() as u64
}

fn bench(c: &mut Criterion) {
    let (wires, wire_bytes) = workload();
    let wires: Vec<(usize, bool, Bytes)> = wires
        .into_iter()
        .map(|w| (w.conn, w.c2s, Bytes::from(w.bytes)))
        .collect();
    let mut g = c.benchmark_group("mongo_zstd_8MiB");
    g.throughput(Throughput::Bytes(wire_bytes));
    g.sample_size(10);
    g.bench_function("decode", |b| b.iter(|| decode_only(&wires)));
    g.bench_function("decode_and_extract", |b| {
        b.iter(|| decode_and_extract(&wires))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
