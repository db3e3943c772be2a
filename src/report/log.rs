//! `tidemark log`: the mutations of a store, filtered, as a table or as `mutation`
//! JSON lines (the `write` line's fields plus `seq`, `commit_time`, `outcome`,
//! `reason` — ARCHITECTURE.md, "Command line").

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Map, Value};

use super::{format_time, parse_time};
use crate::store::{Envelope, OutcomeKind, Query, Store, StoreOptions};

/// What `tidemark log` was asked for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub store: PathBuf,
    pub namespace: Option<String>,
    /// A key as a JSON object (`{"id": 1}`); needs `namespace`.
    pub key: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub outcome: Option<String>,
    pub json: bool,
}

fn outcome_kind(s: &str) -> anyhow::Result<OutcomeKind> {
    Ok(match s {
        "committed" => OutcomeKind::Committed,
        "rejected" => OutcomeKind::Rejected,
        "in_doubt" => OutcomeKind::InDoubt,
        "rolled_back" => OutcomeKind::RolledBack,
        "pending" => OutcomeKind::Pending,
        _ => anyhow::bail!(
            "invalid outcome {s:?}: one of committed, rejected, in_doubt, rolled_back, pending"
        ),
    })
}

/// The query the options describe.
pub fn query_of(o: &LogOptions) -> anyhow::Result<Query> {
    let mut q = Query::all();
    if let Some(ns) = &o.namespace {
        q = q.namespace(ns.clone());
    }
    if let Some(k) = &o.key {
        let Some(ns) = &o.namespace else {
            anyhow::bail!("--key needs --ns");
        };
        let v: Value =
            serde_json::from_str(k).with_context(|| format!("--key {k:?} is not a JSON object"))?;
        if !v.is_object() {
            anyhow::bail!("--key {k:?} is not a JSON object");
        }
        q = q.key(ns.clone(), v.to_string());
    }
    let since = o.since.as_deref().map(parse_time).transpose()?;
    let until = o.until.as_deref().map(parse_time).transpose()?;
    q = q.commit_times(since.unwrap_or(0)..=until.unwrap_or(u64::MAX));
    if let Some(out) = &o.outcome {
        q = q.outcome(outcome_kind(out)?);
    }
    Ok(q)
}

/// The `mutation` line of an envelope.
pub fn mutation_line(e: &Envelope) -> Value {
    let m = &e.mutation;
    let mut obj = match crate::commit::write_line(m) {
        Some(o) => o,
        None => {
            let mut o = Map::new();
            o.insert("type".into(), "mutation".into());
            o.insert("proto".into(), m.protocol().as_str().into());
            o.insert("namespace".into(), m.namespace.clone().into());
            o.insert("op".into(), m.op.as_str().into());
            o.insert(
                "key".into(),
                serde_json::from_str(&m.key).unwrap_or(Value::Null),
            );
            o
        }
    };
    // `type` stays first (the stored line starts with it): maps keep insertion order
    // and replacing a value keeps its place.
    obj.insert("type".into(), "mutation".into());
    obj.insert("seq".into(), e.seq.into());
    obj.insert("commit_time".into(), format_time(m.commit_time).into());
    obj.insert("outcome".into(), m.outcome.kind().as_str().into());
    obj.insert("reason".into(), m.reason_text().into());
    obj.insert("node".into(), m.source.node.to_string().into());
    Value::Object(obj)
}

/// Runs `tidemark log`, printing to stdout.
pub fn run_log(o: &LogOptions) -> anyhow::Result<()> {
    let query = query_of(o)?;
    let store = Store::open(&o.store, &StoreOptions::default().read_only())?;
    let reader = store.reader()?;
    let stdout = io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    let result = (|| -> anyhow::Result<()> {
        if !o.json {
            writeln!(
                w,
                "{:>8}  {:<27}  {:<11}  {:<24}  {:<8}  {:<30}  reason",
                "seq", "commit_time", "outcome", "namespace", "op", "key"
            )?;
        }
        for e in reader.query(&query)? {
            let e = e?;
            if o.json {
                serde_json::to_writer(&mut w, &mutation_line(&e))?;
                w.write_all(b"\n")?;
            } else {
                let m = &e.mutation;
                writeln!(
                    w,
                    "{:>8}  {:<27}  {:<11}  {:<24}  {:<8}  {:<30}  {}",
                    e.seq,
                    format_time(m.commit_time),
                    m.outcome.kind().as_str(),
                    m.namespace,
                    m.op.as_str(),
                    m.key,
                    m.reason_text().unwrap_or("")
                )?;
            }
        }
        w.flush()?;
        Ok(())
    })();
    match result {
        // A reader that stopped reading (`| head`) ends the output quietly; the
        // JSON writer reports the pipe as a `serde_json::Error`.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<io::Error>().map(io::Error::kind)
                    == Some(io::ErrorKind::BrokenPipe)
                    || c.downcast_ref::<serde_json::Error>()
                        .and_then(serde_json::Error::io_error_kind)
                        == Some(io::ErrorKind::BrokenPipe)
            }) =>
        {
            Ok(())
        }
        other => other,
    }
}
