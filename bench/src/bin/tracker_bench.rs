//! tracker-bench: the commit tracker's cost per MongoDB write when replication is in
//! sight, against the same writes acknowledged at `w:"majority"` in the same run.
//!
//! `cargo run --release -p tidemark-bench --bin tracker-bench [-- --writes 20000]`
//!
//! Two record streams go through `CommitTracker::record` directly (no capture, no
//! decoding, no store), so only the tracker is measured:
//!
//! * **majority**: every insert is acknowledged at `w:"majority"`: committed on
//!   arrival, the tracker's cheapest path.
//! * **w:1 + oplog**: every insert is acknowledged at `w:1` (pending), the
//!   secondaries fetch its oplog entry (`OplogEntry` + a confirming `getMore`) and
//!   the majority commit point trails the writes by `--lag` writes, so about `--lag`
//!   writes and entries are undecided at any moment, as on a busy replica set.
//!
//! The ratio (w:1 + oplog) / majority says what the replication side costs per
//! write; run it at two `--writes` sizes (the default runs N and 4N) to see that the
//! cost per write does not grow with the history (it would if each entry scanned
//! every undecided write, or each flush every kept entry).

use std::time::Instant;

use clap::Parser;
use tidemark::capture::Timestamp;
use tidemark::commit::{CommitTracker, TrackerConfig};
use tidemark::decode::mongo::tidemark_mongo::bson::{doc, Document};
use tidemark::decode::records::{
    MessageRecord, Record, ReplicationEvent, ReplicationRecord, SentW, SentWriteConcern,
    WireOutcome, WriteExtras, WriteRecord,
};
use tidemark::store::{MongoOp, MongoOpKind, OpTime};

#[derive(Parser, Debug)]
#[command(about = "commit tracker cost of w:1 writes with replication vs w:majority")]
struct Args {
    /// Writes in the smaller run (the larger one has 4×).
    #[arg(long, default_value_t = 20_000)]
    writes: u64,
    /// Writes the commit point trails behind.
    #[arg(long, default_value_t = 2_000)]
    lag: u64,
    /// Writes between flushes (`take_flush`, as tap's group commit).
    #[arg(long, default_value_t = 1_000)]
    group: u64,
    /// Rounds per measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

const CLIENT_FLOW: u64 = 1;
const FETCHER_FLOW: u64 = 2;
const NS: &str = "bench.items";

fn bson_bytes(d: &Document) -> Vec<u8> {
    let mut out = Vec::new();
    d.to_writer(&mut out).expect("bson encodes");
    out
}

fn insert_op(i: u64) -> MongoOp {
    let d = doc! { "_id": i as i64, "name": format!("item-{i}"), "qty": (i % 97) as i32 };
    MongoOp {
        op: MongoOpKind::Insert,
        ns: NS.into(),
        o: bson_bytes(&d).into(),
        o2: None,
        optime: None,
        lsid: None,
        txn_number: None,
        stmt_id: None,
    }
}

fn optime(i: u64) -> OpTime {
    OpTime {
        ts: (1_700_000_000u64 << 32) + i + 1,
        t: 1,
    }
}

fn at(i: u64) -> u64 {
    1_700_000_000_000_000_000 + i * 10_000
}

fn write(i: u64, majority: bool) -> Record {
    let op = insert_op(i);
    Record::Write(Box::new(WriteRecord {
        flow: CLIENT_FLOW,
        ts: Timestamp(at(i)),
        proto: "mongo",
        namespace: Some(NS.into()),
        op: "insert".into(),
        key: serde_json::json!({ "_id": i }).into(),
        values: serde_json::json!({ "_id": i, "name": format!("item-{i}"), "qty": i % 97 }).into(),
        // As the decoder types `{"w": "majority"}` / `{"w": 1}`.
        write_concern: Some(SentWriteConcern::Fields {
            w: Some(if majority {
                SentW::Majority
            } else {
                SentW::Members(1)
            }),
            j: None,
            wtimeout: None,
        }),
        request: Some(i as i64),
        outcome: if majority {
            WireOutcome::Committed
        } else {
            WireOutcome::Pending
        },
        extras: WriteExtras {
            mongo_op: Some(op),
            optime: Some(optime(i)),
            ..WriteExtras::default()
        },
        ..WriteRecord::default()
    }))
}

fn replication(event: ReplicationEvent, i: u64) -> Record {
    Record::Replication(ReplicationRecord {
        flow: FETCHER_FLOW,
        ts: Timestamp(at(i)),
        event,
    })
}

/// The fetcher asking for more: confirms the entries it received.
fn get_more(i: u64) -> Record {
    Record::Message(MessageRecord {
        flow: FETCHER_FLOW,
        dir: "c2s",
        ts: Timestamp(at(i)),
        proto: "mongo",
        opcode: "OP_MSG".into(),
        ..MessageRecord::default()
    })
}

/// The record stream of `n` writes, built before timing.
fn stream(n: u64, lag: u64, majority: bool) -> Vec<(Record, u64)> {
    let mut out = Vec::with_capacity(n as usize * 4);
    for i in 0..n {
        out.push((write(i, majority), at(i)));
        if majority {
            continue;
        }
        let mut op = insert_op(i);
        op.optime = Some(optime(i));
        out.push((
            replication(
                ReplicationEvent::OplogEntry {
                    optime: optime(i),
                    wall: None,
                    op,
                },
                i,
            ),
            at(i),
        ));
        out.push((get_more(i), at(i)));
        if i >= lag {
            out.push((
                replication(
                    ReplicationEvent::CommitPoint {
                        optime: optime(i - lag),
                        source: "$replData",
                    },
                    i,
                ),
                at(i),
            ));
        }
    }
    out
}

/// Seconds to feed `records` through a fresh tracker, flushing every `group`
/// writes; the number of mutations it decided.
fn run(records: &[(Record, u64)], group: u64) -> (f64, usize) {
    let mut t = CommitTracker::new(TrackerConfig::default());
    let mut decided = 0;
    let start = Instant::now();
    let mut writes = 0u64;
    for (rec, at) in records {
        let is_write = matches!(rec, Record::Write(_));
        t.record(rec.clone(), *at);
        if is_write {
            writes += 1;
            if writes.is_multiple_of(group) {
                t.advance(*at, None);
                decided += t
                    .take_flush(tidemark::commit::Parking::Full)
                    .mutations
                    .len();
            }
        }
    }
    t.finish();
    decided += t
        .take_flush(tidemark::commit::Parking::Full)
        .mutations
        .len();
    (start.elapsed().as_secs_f64(), decided)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args = Args::parse();
    println!(
        "tracker-bench: {} rounds, lag {} writes, flush every {} writes",
        args.rounds, args.lag, args.group
    );
    for n in [args.writes, args.writes * 4] {
        let majority = stream(n, args.lag, true);
        let w1 = stream(n, args.lag, false);
        let (mut tm, mut tw) = (Vec::new(), Vec::new());
        let (mut dm, mut dw) = (0, 0);
        for _ in 0..args.rounds.max(1) {
            let (s, d) = run(&majority, args.group);
            tm.push(s);
            dm = d;
            let (s, d) = run(&w1, args.group);
            tw.push(s);
            dw = d;
        }
        let (m, w) = (median(tm), median(tw));
        println!(
            "writes {n:>7}: majority {:>9.0} writes/s ({dm} logged) | w:1 + oplog {:>9.0} writes/s ({dw} logged) | ratio {:.2}×",
            n as f64 / m,
            n as f64 / w,
            w / m
        );
    }
}
