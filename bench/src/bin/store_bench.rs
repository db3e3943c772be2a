//! store-bench: appends/s of realistic mutation envelopes through `tidemark::store`,
//! against the raw LMDB group-commit rate of the same bytes, measured in the same run.
//!
//! For each workload (CQL rows of 10 cells; Mongo inserts of 1 KiB documents) and each
//! round, two fresh environments on the same file system get the same mutations in
//! the same groups with the same durability (fsync per group unless `--no-sync`):
//!
//! * **store**: `Store::append_batch` per group: validation, postcard encoding, the
//!   `log` and `by_key` puts, the meta update, commit.
//! * **raw**: the envelopes and index keys the store would write, encoded before the
//!   clock starts, put with plain heed calls (`log` with `APPEND`, `by_key` plain),
//!   one transaction per group.
//!
//! The ratio raw/store is the cost of the pipeline over LMDB itself. Rates are the
//! median of the rounds, since this machine is shared and noisy.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use heed::byteorder::BigEndian;
use heed::types::{Bytes, Unit, U64};
use heed::{CommitOrAbort, Database, EnvFlags, EnvOpenOptions, PutFlags};
use tidemark::store::codec;
use tidemark::store::{
    Acknowledgement, Cell, CellKind, CellOp, CqlEvidence, CqlPayload, Durability, Evidence,
    EvidenceDetail, MongoEvidence, MongoOp, MongoOpKind, Mutation, OpTime, Outcome, Payload,
    Source, Store, StoreOptions, WriteConcern, WriteOp,
};

#[derive(Parser, Debug)]
#[command(about = "Store append throughput against raw LMDB group commits")]
struct Args {
    /// Mutations per transaction (group commit).
    #[arg(long, default_value_t = 1000)]
    group: usize,
    /// Groups per measurement.
    #[arg(long, default_value_t = 100)]
    groups: usize,
    /// Rounds per workload; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Skip fsync (LMDB NOSYNC) for both sides.
    #[arg(long)]
    no_sync: bool,
    /// Directory for the temporary stores (default: the system temp dir). Use a
    /// directory on the disk you care about: fsync cost is the point.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Diagnostics: which puts the raw side makes (`both`, `log`, `index`).
    #[arg(long, default_value = "both")]
    raw_parts: String,
    /// Diagnostics: open the raw side with MDB_WRITEMAP.
    #[arg(long)]
    raw_write_map: bool,
}

const MAP_SIZE: usize = 8 << 30;

fn main() -> Result<()> {
    let args = Args::parse();
    let durability = if args.no_sync {
        "no sync"
    } else {
        "fsync per group"
    };
    println!(
        "store-bench: {} groups of {} mutations, {durability}, median of {} rounds",
        args.groups, args.group, args.rounds
    );
    println!(
        "{:<28} {:>10} {:>14} {:>14} {:>8}",
        "workload", "bytes/mut", "store mut/s", "raw mut/s", "raw/store"
    );
    let total = args.group * args.groups;
    let workloads: [(&str, Vec<Mutation>); 2] = [
        ("cql 10 cells", (0..total).map(cql_row).collect()),
        ("mongo 1 KiB insert", (0..total).map(mongo_insert).collect()),
    ];
    for (name, mutations) in &workloads {
        let (encoded, keys) = pre_encode(mutations)?;
        let bytes_per = encoded.iter().map(Vec::len).sum::<usize>() / encoded.len().max(1);
        let mut store_rates = Vec::new();
        let mut raw_rates = Vec::new();
        for _ in 0..args.rounds {
            raw_rates.push(run_raw(&args, &encoded, &keys)?);
            store_rates.push(run_store(&args, mutations)?);
        }
        let store = median(&mut store_rates);
        let raw = median(&mut raw_rates);
        println!(
            "{name:<28} {bytes_per:>10} {store:>14.0} {raw:>14.0} {:>8.2}",
            raw / store
        );
    }
    Ok(())
}

fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn temp_dir(args: &Args) -> Result<tempfile::TempDir> {
    match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .context("temporary directory")
}

/// Mutations per second through `Store::append_batch`.
fn run_store(args: &Args, mutations: &[Mutation]) -> Result<f64> {
    let tmp = temp_dir(args)?;
    let options = StoreOptions {
        map_size: MAP_SIZE,
        durability: if args.no_sync {
            Durability::NoSync
        } else {
            Durability::SyncPerGroup
        },
        read_only: false,
    };
    let store = Store::create(tmp.path().join("store"), &options)?;
    let start = Instant::now();
    for group in mutations.chunks(args.group) {
        store.append_batch(group)?;
    }
    Ok(mutations.len() as f64 / start.elapsed().as_secs_f64())
}

/// Mutations per second of plain heed puts of the same bytes.
fn run_raw(args: &Args, encoded: &[Vec<u8>], keys: &[Vec<u8>]) -> Result<f64> {
    let tmp = temp_dir(args)?;
    let mut builder = EnvOpenOptions::new();
    builder.map_size(MAP_SIZE).max_dbs(2);
    // SAFETY: a private temporary directory; NO_SYNC only weakens durability.
    let env = unsafe {
        if args.no_sync {
            builder.flags(EnvFlags::NO_SYNC);
        }
        if args.raw_write_map {
            builder.flags(EnvFlags::WRITE_MAP);
        }
        builder.open(tmp.path())?
    };
    type Log = Database<'static, U64<BigEndian>, Bytes>;
    type Index = Database<'static, Bytes, Unit>;
    let wtxn = env.write_txn()?;
    let (log, by_key): (Log, Index) = env
        .create_databases_and_commit(wtxn, |o, w| -> heed::Result<_> {
            Ok(CommitOrAbort::<_, ()>::Commit((
                o.create_database(w, Some("log"))?,
                o.create_database(w, Some("by_key"))?,
            )))
        })?
        .unwrap_commit();
    let start = Instant::now();
    let mut seq = 1u64;
    for (values, group_keys) in encoded.chunks(args.group).zip(keys.chunks(args.group)) {
        let mut txn = env.write_txn()?;
        for (value, key) in values.iter().zip(group_keys) {
            if args.raw_parts != "index" {
                log.put_with_flags(&mut txn, PutFlags::APPEND, &seq, value)?;
            }
            if args.raw_parts != "log" {
                by_key.put(&mut txn, key, &())?;
            }
            seq += 1;
        }
        txn.commit()?;
    }
    Ok(encoded.len() as f64 / start.elapsed().as_secs_f64())
}

/// Encoded records, one per mutation.
type Encoded = Vec<Vec<u8>>;

/// The envelopes and `by_key` entries the store writes for `mutations`.
fn pre_encode(mutations: &[Mutation]) -> Result<(Encoded, Encoded)> {
    let mut values = Vec::with_capacity(mutations.len());
    let mut keys = Vec::with_capacity(mutations.len());
    for (i, m) in mutations.iter().enumerate() {
        let seq = i as u64 + 1;
        values.push(codec::encode_envelope_into(seq, m, Vec::new()).map_err(anyhow::Error::msg)?);
        let mut key = Vec::new();
        codec::key_prefix(&m.namespace, &m.key, 511, &mut key);
        codec::push_seq(&mut key, seq);
        keys.push(key);
    }
    Ok((values, keys))
}

/// A scrambled but deterministic 64-bit value, so keys arrive in random order as
/// real partition keys do.
fn mix(i: u64) -> u64 {
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn uuid(i: u64) -> String {
    let (a, b) = (mix(i), mix(i ^ 0xdead_beef));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// A CQL row of 10 cells of typical types: uuid key, texts, ints, a timestamp, a
/// double, a boolean, a blob.
fn cql_row(i: usize) -> Mutation {
    let i = i as u64;
    let ts = 1_700_000_000_000_000 + i as i64;
    let cell = |column: &str, cql_type: &str, value: Vec<u8>| Cell {
        column: column.into(),
        path: None,
        value: value.into(),
        cql_type: cql_type.into(),
        timestamp: ts,
        ttl: None,
        local_deletion_time: None,
        kind: CellKind::Live,
        op: CellOp::Set,
    };
    let cells = vec![
        cell(
            "customer",
            "text",
            format!("customer-{}", mix(i) % 100_000).into_bytes(),
        ),
        cell("status", "text", b"shipped".to_vec()),
        cell("quantity", "int", ((i % 10) as i32).to_be_bytes().to_vec()),
        cell(
            "amount_cents",
            "bigint",
            (mix(i) % 1_000_000).to_be_bytes().to_vec(),
        ),
        cell("created", "timestamp", (ts / 1000).to_be_bytes().to_vec()),
        cell("price", "double", 19.99f64.to_be_bytes().to_vec()),
        cell("gift", "boolean", vec![u8::from(i.is_multiple_of(7))]),
        cell(
            "sku",
            "text",
            format!("SKU-{:08}", mix(i) % 99_999_999).into_bytes(),
        ),
        cell(
            "address",
            "text",
            b"221B Baker Street, London NW1 6XE".to_vec(),
        ),
        cell("checksum", "blob", mix(i).to_be_bytes().repeat(2)),
    ];
    Mutation {
        commit_time: 1_700_000_000_000_000_000 + i * 1000,
        source: Source {
            node: "10.0.0.1:9042".parse().expect("literal address"),
            flow: i % 64,
        },
        namespace: "shop.orders".into(),
        key: format!(r#"{{"order_id":"{}"}}"#, uuid(i)),
        op: WriteOp::Insert,
        outcome: Outcome::Committed,
        evidence: Evidence {
            note: String::new(),
            detail: EvidenceDetail::Cql(CqlEvidence {
                response: "RESULT Void".into(),
                stream: Some((i % 32768) as i16),
                ..CqlEvidence::default()
            }),
        },
        write_timestamp: Some(ts),
        ttl: None,
        ack: Acknowledgement::Consistency {
            level: "LOCAL_QUORUM".into(),
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

/// A Mongo insert of a 1 KiB BSON document `{_id: ObjectId, body: string}`.
fn mongo_insert(i: usize) -> Mutation {
    let i = i as u64;
    let oid: Vec<u8> = mix(i)
        .to_be_bytes()
        .iter()
        .chain(&(i as u32).to_be_bytes())
        .copied()
        .collect();
    let body = "lorem ipsum dolor sit amet ".repeat(40);
    let body = &body[..1024 - 4 - 1 - 4 - 12 - 1 - 5 - 4 - 1 - 1];
    let mut doc = vec![0; 4];
    doc.push(0x07);
    doc.extend_from_slice(b"_id\0");
    doc.extend_from_slice(&oid);
    doc.push(0x02);
    doc.extend_from_slice(b"body\0");
    doc.extend_from_slice(&((body.len() + 1) as i32).to_le_bytes());
    doc.extend_from_slice(body.as_bytes());
    doc.push(0);
    doc.push(0);
    let len = doc.len() as i32;
    doc[..4].copy_from_slice(&len.to_le_bytes());
    let hex: String = oid.iter().map(|b| format!("{b:02x}")).collect();
    let optime = OpTime {
        ts: (1_700_000_000u64 << 32) | i,
        t: 1,
    };
    Mutation {
        commit_time: 1_700_000_000_000_000_000 + i * 1000,
        source: Source {
            node: "10.0.0.2:27017".parse().expect("literal address"),
            flow: i % 64,
        },
        namespace: "shop.events".into(),
        key: format!(r#"{{"_id":{{"$oid":"{hex}"}}}}"#),
        op: WriteOp::Insert,
        outcome: Outcome::Committed,
        evidence: Evidence {
            note: String::new(),
            detail: EvidenceDetail::Mongo(MongoEvidence {
                ok: Some(true),
                operation_time: Some(optime),
                request_id: Some(i as i32),
                ..MongoEvidence::default()
            }),
        },
        write_timestamp: None,
        ttl: None,
        ack: Acknowledgement::WriteConcern(WriteConcern {
            w: Some("majority".into()),
            j: None,
            wtimeout_ms: None,
        }),
        batch: None,
        payload: Payload::Mongo(MongoOp {
            op: MongoOpKind::Insert,
            ns: "shop.events".into(),
            o: doc.into(),
            o2: None,
            optime: Some(optime),
            lsid: None,
            txn_number: None,
            stmt_id: None,
        }),
        line: None,
        line_values: None,
        ddl: None,
    }
}
