//! Criterion benchmark of CQL decode and decode + write extraction over the
//! `cql_workload` stream (v4 lz4; prepared EXECUTEs of a 10-column mixed-type INSERT,
//! every tenth request a BATCH of five; RESULT Void answers), in bytes per second of
//! both directions' traffic.
//!
//! `cargo bench -p tidemark-bench --bench cql_decode`. The side-by-side comparison
//! with tshark over the same traffic is `cargo run --release -p tidemark-bench --bin
//! cql_bench`; this one gives stable per-function numbers.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tidemark::capture::{CloseReason, Direction, FlowId, Timestamp};
use tidemark::decode::cql::protocol as cql;
use tidemark::decode::cql::protocol::bytes::Bytes;
use tidemark::decode::detect::Protocol;
use tidemark::decode::registry::default_registry;
use tidemark::decode::seam::{FlowInfo, StreamPos};
use tidemark_bench::cql_workload::{connection, Streams};

/// Bytes handed to the decoder at a time, as TCP reassembly would.
const CHUNK: usize = 16 << 10;

fn decode_only(conns: &[Streams]) -> u64 {
    let mut frames = 0;
    for s in conns {
        let mut c = cql::Connection::new();
        for (dir, data) in [
            (cql::Direction::ClientToServer, &s.c2s),
            (cql::Direction::ServerToClient, &s.s2c),
        ] {
            for chunk in data.chunks(CHUNK) {
                c.feed(dir, chunk);
                while let Some(Ok(_)) = c.next() {
                    frames += 1;
                }
            }
        }
    }
    frames
}

/// The flow decoder as inspect runs it: each request chunk, then the answers to it.
fn decode_and_extract(conns: &[(Bytes, Bytes)]) -> u64 {
    let reg = default_registry();
    let mut records = 0;
    let mut out = Vec::with_capacity(4096);
    for (i, (c2s, s2c)) in conns.iter().enumerate() {
        let info = FlowInfo {
            flow: FlowId(i as u64),
            client: "10.1.0.1:40000".parse().expect("addr"),
            server: "10.9.0.42:9042".parse().expect("addr"),
            protocol: Protocol::Cql,
            opened: Timestamp(0),
        };
        let mut dec = reg.create(&info);
        let mut so = 0;
        for co in (0..c2s.len()).step_by(CHUNK) {
            let end = (co + CHUNK).min(c2s.len());
            let pos = |dir, offset| StreamPos {
                flow: &info,
                dir,
                ts: Timestamp(1),
                offset,
            };
            dec.data(
                &pos(Direction::ClientToServer, co as u64),
                &c2s.slice(co..end),
                &mut out,
            );
            // Answers in proportion, a little behind, so requests come first.
            let upto = ((s2c.len() as u128 * end as u128) / c2s.len() as u128) as usize;
            let upto = if end == c2s.len() {
                s2c.len()
            } else {
                upto.saturating_sub(64).max(so)
            };
            if upto > so {
                dec.data(
                    &pos(Direction::ServerToClient, so as u64),
                    &s2c.slice(so..upto),
                    &mut out,
                );
                so = upto;
            }
            records += out.len() as u64;
            out.clear();
        }
        dec.closed(&info, Timestamp(2), CloseReason::Fin, &mut out);
        records += out.len() as u64;
        out.clear();
    }
    records
}

fn bench(c: &mut Criterion) {
    let conns: Vec<Streams> = (0..4).map(|i| connection(i + 1, 2 << 20)).collect();
    let total: usize = conns.iter().map(|s| s.c2s.len() + s.s2c.len()).sum();
    let shared: Vec<(Bytes, Bytes)> = conns
        .iter()
        .map(|s| {
            (
                Bytes::copy_from_slice(&s.c2s),
                Bytes::copy_from_slice(&s.s2c),
            )
        })
        .collect();
    let mut g = c.benchmark_group("cql_v4_lz4_8MiB");
    g.throughput(Throughput::Bytes(total as u64));
    g.sample_size(10);
    g.bench_function("decode", |b| b.iter(|| decode_only(&conns)));
    g.bench_function("decode_and_extract", |b| {
        b.iter(|| decode_and_extract(&shared))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
