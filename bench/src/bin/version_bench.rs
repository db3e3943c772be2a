//! version-bench: `version create` on a store of many logged mutations, against a plain
//! sort of the same mutations by key, measured in the same run (time and peak RSS).
//!
//! `cargo run --release -p tidemark-bench --bin version-bench [-- --mutations 10000000]`
//!
//! The store holds CQL mutations over `--rows` rows of one table (each mutation sets
//! three text cells of one row at a new timestamp, so most rows are written many
//! times, as a real log is), in `bench/data/version-store` (gitignored; kept between
//! runs when the count matches). Each measurement runs in a child process of this
//! binary, so its peak RSS (`VmHWM`) is its own:
//!
//! * **create**: `tidemark::version::build::create` at the tidemark (reads the log,
//!   merges every row by the cell rules, writes the version's rows);
//! * **sort**: reads every envelope of the log, decodes it, and sorts the mutations by
//!   (namespace, key, seq) — the least any key-ordered merge must do.
//!
//! `create/sort` is the cost of the version rules over the plain sort. The create
//! child also times reading the materialized version's rows back, which is what an
//! `export` or `restore` of a materialized version pays instead of a new merge.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use tidemark::store::{
    Acknowledgement, Cell, CellKind, CellOp, CqlEvidence, CqlPayload, Durability, Evidence,
    EvidenceDetail, Mutation, Outcome, Payload, Source, Store, StoreOptions, WriteOp,
};
use tidemark::version::build::{create, At, CreateOptions};

#[derive(Parser, Debug)]
#[command(about = "version create against a plain sort of the same log")]
struct Args {
    /// Logged mutations.
    #[arg(long, default_value_t = 10_000_000)]
    mutations: u64,
    /// Distinct rows they write.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    #[arg(long, default_value = "bench/data/version-store")]
    store: PathBuf,
    /// Internal: run one measurement (`create` or `sort`) and print it.
    #[arg(long, hide = true)]
    child: Option<String>,
}

const T0: u64 = 1_767_225_600_000_000_000;

fn mutation(i: u64, rows: u64) -> Mutation {
    let row = (i.wrapping_mul(2_654_435_761)) % rows;
    let ts = (T0 / 1000) as i64 + i as i64;
    let cells = ["a", "b", "c"]
        .iter()
        .map(|c| Cell {
            column: (*c).into(),
            path: None,
            value: format!("{c}-{i}-value").into_bytes().into(),
            cql_type: "text".into(),
            timestamp: ts,
            ttl: None,
            local_deletion_time: None,
            kind: CellKind::Live,
            op: CellOp::Set,
        })
        .collect();
    Mutation {
        commit_time: T0 + i * 1000,
        source: Source {
            node: "10.0.0.1:9042".parse().expect("addr"),
            flow: 1,
        },
        namespace: "bench.t".into(),
        key: format!(r#"{{"id":{row}}}"#),
        op: if i < rows {
            WriteOp::Insert
        } else {
            WriteOp::Update
        },
        outcome: Outcome::Committed,
        evidence: Evidence {
            note: String::new(),
            detail: EvidenceDetail::Cql(CqlEvidence::default()),
        },
        write_timestamp: Some(ts),
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

fn options() -> StoreOptions {
    StoreOptions {
        durability: Durability::NoSync,
        ..StoreOptions::default()
    }
}

/// Makes the store unless one with this many mutations is there.
fn ensure_store(args: &Args) -> Result<()> {
    if let Ok(s) = Store::open(&args.store, &options().read_only()) {
        if s.reader()?.len()? == args.mutations {
            return Ok(());
        }
    }
    if args.store.exists() {
        std::fs::remove_dir_all(&args.store)?;
    }
    std::fs::create_dir_all(args.store.parent().unwrap_or(Path::new(".")))?;
    let store = Store::create(&args.store, &options())?;
    let started = Instant::now();
    let group = 10_000u64;
    let mut i = 0;
    while i < args.mutations {
        let n = group.min(args.mutations - i);
        let batch: Vec<Mutation> = (i..i + n).map(|j| mutation(j, args.rows)).collect();
        store.append_batch(&batch)?;
        i += n;
    }
    store.set_tidemark(T0 + args.mutations * 1000)?;
    eprintln!(
        "version-bench: wrote {} mutations in {:.1} s",
        args.mutations,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn child(args: &Args, what: &str) -> Result<()> {
    let started = Instant::now();
    let n = match what {
        "create" => {
            let store = Store::open(&args.store, &options())?;
            let name = format!("bench-{}", std::process::id());
            let info = create(
                &store,
                &CreateOptions {
                    at: At::Latest,
                    name: Some(name.clone()),
                    allow_gaps: false,
                    snapshot: tidemark::version::join::SnapshotChoice::None,
                },
            )?;
            // Reading the materialized version back (what `export` and `restore` do
            // with a materialized version), timed on its own.
            let read_started = Instant::now();
            let mut read = 0u64;
            tidemark::version::stored::for_each_row(&store, &name, |_, _, _| {
                read += 1;
                Ok(true)
            })?;
            eprintln!(
                "read-back {} {}",
                read_started.elapsed().as_secs_f64(),
                read
            );
            // Leave the store as it was for the next run.
            tidemark::version::stored::delete(&store, &name)?;
            info.rows()
        }
        "sort" => {
            let store = Store::open(&args.store, &options().read_only())?;
            let reader = store.reader()?;
            let mut all: Vec<(String, String, u64, Payload)> = Vec::new();
            for e in reader.commit_times(..)? {
                let e = e?;
                all.push((
                    e.mutation.namespace,
                    e.mutation.key,
                    e.seq,
                    e.mutation.payload,
                ));
            }
            all.sort_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
            all.len() as u64
        }
        other => bail!("unknown child {other}"),
    };
    println!(
        "{} {} {}",
        started.elapsed().as_secs_f64(),
        peak_rss_kib(),
        n
    );
    Ok(())
}

fn measure(args: &Args, what: &str) -> Result<(f64, u64, u64)> {
    let out = Command::new(std::env::current_exe()?)
        .args(["--store"])
        .arg(&args.store)
        .args([
            "--mutations",
            &args.mutations.to_string(),
            "--rows",
            &args.rows.to_string(),
        ])
        .args(["--child", what])
        .output()?;
    if !out.status.success() {
        bail!("{what}: {}", String::from_utf8_lossy(&out.stderr));
    }
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        if let Some(rest) = line.strip_prefix("read-back ") {
            let f: Vec<&str> = rest.split_whitespace().collect();
            println!(
                "read-back of the materialized version: {} rows in {} s",
                f[1], f[0]
            );
        }
    }
    let text = String::from_utf8(out.stdout)?;
    let f: Vec<&str> = text.split_whitespace().collect();
    Ok((
        f[0].parse().context("time")?,
        f[1].parse().context("rss")?,
        f[2].parse().context("count")?,
    ))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(what) = &args.child {
        return child(&args, what);
    }
    ensure_store(&args)?;
    let (ct, crss, rows) = measure(&args, "create")?;
    let (st, srss, n) = measure(&args, "sort")?;
    println!(
        "version-bench: {} mutations over {} rows ({} rows in the version, {} sorted)",
        args.mutations, args.rows, rows, n
    );
    println!("{:<8} {:>10} {:>14}", "", "seconds", "peak RSS MiB");
    println!(
        "{:<8} {:>10.1} {:>14.0}",
        "create",
        ct,
        crss as f64 / 1024.0
    );
    println!("{:<8} {:>10.1} {:>14.0}", "sort", st, srss as f64 / 1024.0);
    println!(
        "create/sort: time {:.2}x, peak RSS {:.2}x",
        ct / st,
        crss as f64 / srss as f64
    );
    Ok(())
}
