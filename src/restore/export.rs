//! `tidemark export --version V --format jsonl|csv --out DIR`: one file per table or
//! collection of a version, for loaders and analytics on a copy.
//!
//! - `jsonl`: one object per line — CQL rows as `SELECT JSON` writes them (so
//!   `INSERT ... JSON` / `COPY FROM`-style loaders take them back), MongoDB documents as
//!   mongoexport's relaxed Extended JSON (so `mongoimport` does).
//! - `csv`: a header of the table's columns (CQL) or the documents' top-level fields in
//!   first-seen order (MongoDB), then one line per row; strings as they are, other
//!   values as their JSON text, absent values empty.
//! - `parquet`: typed columns (see [`super::parquet`]).
//!
//! The output directory must not exist: an export never mixes with or overwrites an
//! older one. Files are written under a temporary name and renamed when complete.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::store::Store;
use crate::version::model::VersionRow;
use crate::version::{render, stored};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    Parquet,
}

impl Format {
    pub fn parse(s: &str) -> anyhow::Result<Format> {
        Ok(match s {
            "jsonl" => Format::Jsonl,
            "csv" => Format::Csv,
            "parquet" => Format::Parquet,
            _ => bail!("invalid --format {s:?}: jsonl, csv or parquet"),
        })
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// What one export wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Exported {
    /// Namespace → (file, rows).
    pub files: BTreeMap<String, (PathBuf, u64)>,
}

/// Refuses an output directory that exists (anything there would be mixed or
/// overwritten), before anything is read.
pub fn refuse_existing(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        bail!(
            "{} exists: give a new directory (nothing was written)",
            out.display()
        );
    }
    Ok(())
}

/// Exports version `name` of `store` into `out`.
pub fn export(store: &Store, name: &str, format: Format, out: &Path) -> anyhow::Result<Exported> {
    refuse_existing(out)?;
    if stored::info(store, name)?.is_none() {
        bail!(
            "no version {name:?} in {} (see `tidemark version list`)",
            store.path().display()
        );
    }
    let schema = crate::decode::cql::stored_schema::from_store(store)?;
    // Rows are gathered per namespace first: CSV needs its header before any row, and
    // one read transaction must not stay open while files are written.
    let mut by_ns: BTreeMap<String, (bool, Vec<Value>)> = BTreeMap::new();
    stored::for_each_row(store, name, |ns, key, row| {
        let (is_cql, line) = match &row {
            VersionRow::Cql { cells } => (true, render::cql_row(ns, key, cells, &schema)),
            VersionRow::Mongo { document } => (false, render::mongo_document(document)),
        };
        let e = by_ns.entry(ns.to_string()).or_insert((is_cql, Vec::new()));
        e.1.push(line);
        Ok(true)
    })?;
    fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let mut result = Exported::default();
    for (ns, (is_cql, rows)) in by_ns {
        let file = out.join(format!("{ns}.{}", format.extension()));
        let tmp = out.join(format!(".{ns}.{}.partial", format.extension()));
        let f = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        match format {
            Format::Parquet if is_cql => {
                let (ks, table) = ns.split_once('.').unwrap_or((&ns, ""));
                let columns: Vec<(String, Option<_>)> = header(&rows)
                    .into_iter()
                    .map(|c| {
                        let ty = schema.column_type(ks, table, &c);
                        (c, ty)
                    })
                    .collect();
                super::parquet::write_cql(f, &columns, &rows).with_context(|| ns.clone())?;
            }
            Format::Parquet => super::parquet::write_mongo(f, &rows).with_context(|| ns.clone())?,
            Format::Jsonl | Format::Csv => {
                let mut w = BufWriter::new(f);
                if format == Format::Jsonl {
                    for r in &rows {
                        serde_json::to_writer(&mut w, r)?;
                        w.write_all(b"\n")?;
                    }
                } else {
                    write_csv(&mut w, &rows)?;
                }
                w.flush()?;
                w.into_inner()
                    .map_err(|e| anyhow::anyhow!("write {}: {e}", tmp.display()))?
                    .sync_all()?;
            }
        }
        fs::rename(&tmp, &file).with_context(|| format!("rename {}", tmp.display()))?;
        result.files.insert(ns, (file, rows.len() as u64));
    }
    Ok(result)
}

/// The union of the rows' fields in first-seen order.
fn header(rows: &[Value]) -> Vec<String> {
    let mut header: Vec<String> = Vec::new();
    for r in rows {
        if let Value::Object(o) = r {
            for k in o.keys() {
                if !header.iter().any(|h| h == k) {
                    header.push(k.clone());
                }
            }
        }
    }
    header
}

/// CSV with a header: the union of the rows' fields in first-seen order.
fn write_csv(w: &mut impl Write, rows: &[Value]) -> anyhow::Result<()> {
    let header = header(rows);
    let line = |fields: Vec<String>| {
        fields
            .iter()
            .map(|f| csv_field(f))
            .collect::<Vec<_>>()
            .join(",")
    };
    writeln!(w, "{}", line(header.clone()))?;
    for r in rows {
        let fields = header
            .iter()
            .map(|h| match r.get(h) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            })
            .collect();
        writeln!(w, "{}", line(fields))?;
    }
    Ok(())
}

/// One CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
