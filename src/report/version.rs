//! `tidemark version create | list | show | diff`: what people and programs see of
//! versions. The work is in `crate::version`; this renders it (text, or one JSON
//! object per line with a `type` field, as every command's `--json` does).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use serde_json::json;

use super::{format_time, parse_time};
use crate::store::{Store, StoreOptions};
use crate::version::build::{create, At, CreateOptions};
use crate::version::diff::{diff, RowChange};
use crate::version::join::SnapshotChoice;
use crate::version::model::VersionInfo;
use crate::version::stored;

/// `version create`.
#[derive(Debug, Clone)]
pub struct VersionCreateArgs {
    pub store: PathBuf,
    /// `latest` or a time (RFC 3339 UTC or seconds since the epoch).
    pub at: String,
    pub name: Option<String>,
    pub allow_gaps: bool,
    /// `--snapshot ID` or `none`; `None` for the default choice.
    pub snapshot: Option<String>,
    pub json: bool,
}

/// Parses `--snapshot`.
pub fn parse_snapshot(s: Option<&str>) -> anyhow::Result<SnapshotChoice> {
    match s {
        None => Ok(SnapshotChoice::Auto),
        Some("none") => Ok(SnapshotChoice::None),
        Some(id) => id
            .parse()
            .map(SnapshotChoice::Id)
            .map_err(|_| anyhow::anyhow!("invalid --snapshot {id:?}: a snapshot id or none")),
    }
}

/// Parses `--at`.
pub fn parse_at(s: &str) -> anyhow::Result<At> {
    if s == "latest" {
        return Ok(At::Latest);
    }
    parse_time(s).map(At::Time).map_err(|e| {
        anyhow::anyhow!(
            "invalid --at {s:?}: give latest, RFC 3339 UTC, or seconds since the epoch ({e})"
        )
    })
}

fn info_json(i: &VersionInfo) -> serde_json::Value {
    json!({
        "type": "version",
        "name": i.name,
        "at": format_time(i.at),
        "tidemark": format_time(i.tidemark),
        "created": format_time(i.created),
        "snapshot": i.snapshot,
        "snapshots": i.snapshots,
        "last_seq": i.last_seq,
        "mutations": i.mutations,
        "rows": i.rows(),
        "namespaces": i.namespaces.iter().map(|n| json!({
            "namespace": n.namespace,
            "protocol": n.protocol.as_str(),
            "rows": n.rows,
            "uncertain": n.uncertain,
        })).collect::<Vec<_>>(),
        "gaps": i.gaps.iter().map(|g| json!({
            "flow": g.flow,
            "node": g.node.map(|n| n.to_string()),
            "from": format_time(g.from),
            "to": format_time(g.to),
            "bytes": g.bytes,
        })).collect::<Vec<_>>(),
        "uncertain": i.uncertain.iter().map(|u| json!({
            "namespace": u.namespace,
            "key": u.key,
            "why": u.why,
        })).collect::<Vec<_>>(),
    })
}

fn print_info(w: &mut impl Write, i: &VersionInfo) -> io::Result<()> {
    writeln!(w, "version      {}", i.name)?;
    writeln!(w, "at           {}", format_time(i.at))?;
    writeln!(w, "tidemark     {} (when cut)", format_time(i.tidemark))?;
    writeln!(
        w,
        "snapshot     {}",
        i.snapshot.map(|s| s.to_string()).unwrap_or_else(|| {
            "none (the log alone: what was written before the tap began is absent)".into()
        })
    )?;
    writeln!(
        w,
        "mutations    {} (log up to seq {})",
        i.mutations, i.last_seq
    )?;
    writeln!(w, "{:<40}  {:>10}  {:>9}", "namespace", "rows", "uncertain")?;
    for n in &i.namespaces {
        writeln!(w, "{:<40}  {:>10}  {:>9}", n.namespace, n.rows, n.uncertain)?;
    }
    if !i.gaps.is_empty() {
        writeln!(
            w,
            "gaps accepted ({}): writes inside them may be missing",
            i.gaps.len()
        )?;
        for g in &i.gaps {
            writeln!(
                w,
                "  flow {} {} .. {} ({} bytes)",
                g.flow,
                format_time(g.from),
                format_time(g.to),
                g.bytes
            )?;
        }
    }
    if !i.uncertain.is_empty() {
        writeln!(w, "uncertain ({}):", i.uncertain.len())?;
        for u in &i.uncertain {
            writeln!(w, "  {} {}: {}", u.namespace, u.key, u.why)?;
        }
    }
    Ok(())
}

/// Runs `version create`.
pub fn run_create(a: &VersionCreateArgs) -> anyhow::Result<ExitCode> {
    let at = parse_at(&a.at)?;
    let snapshot = parse_snapshot(a.snapshot.as_deref())?;
    // The side writer: a version is cut while a tap keeps appending (they take
    // turns at LMDB's one writer).
    let store = Store::open_side(&a.store, &StoreOptions::default())?;
    let info = create(
        &store,
        &CreateOptions {
            at,
            name: a.name.clone(),
            allow_gaps: a.allow_gaps,
            snapshot,
        },
    )?;
    let mut w = io::stdout().lock();
    if a.json {
        writeln!(w, "{}", info_json(&info))?;
    } else {
        print_info(&mut w, &info)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn open_read(store: &PathBuf) -> anyhow::Result<Store> {
    Ok(Store::open(store, &StoreOptions::default().read_only())?)
}

fn need(store: &Store, name: &str) -> anyhow::Result<VersionInfo> {
    stored::check_name(name)?;
    match stored::info(store, name)? {
        Some(i) => Ok(i),
        None => bail!(
            "no version {name:?} in {} (see `tidemark version list`)",
            store.path().display()
        ),
    }
}

/// Runs `version list`.
pub fn run_list(store: &PathBuf, json_out: bool) -> anyhow::Result<ExitCode> {
    let store = open_read(store)?;
    let all = stored::list(&store)?;
    let mut w = io::stdout().lock();
    if json_out {
        for i in &all {
            writeln!(w, "{}", info_json(i))?;
        }
    } else {
        writeln!(
            w,
            "{:<32}  {:<27}  {:>10}  {:>9}",
            "name", "at", "rows", "uncertain"
        )?;
        for i in &all {
            writeln!(
                w,
                "{:<32}  {:<27}  {:>10}  {:>9}",
                i.name,
                format_time(i.at),
                i.rows(),
                i.uncertain.len()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `version show V`.
pub fn run_show(store: &PathBuf, name: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    let store = open_read(store)?;
    let info = need(&store, name)?;
    let mut w = io::stdout().lock();
    if json_out {
        writeln!(w, "{}", info_json(&info))?;
    } else {
        print_info(&mut w, &info)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `version diff V1 V2`: exit 0 when equal, 1 when they differ (as `diff`).
pub fn run_diff(store: &PathBuf, a: &str, b: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    let store = open_read(store)?;
    need(&store, a)?;
    need(&store, b)?;
    let mut w = io::BufWriter::new(io::stdout().lock());
    let result = diff(&store, a, b, |c: &RowChange| {
        if json_out {
            writeln!(
                w,
                "{}",
                json!({"type": "row_diff", "namespace": c.namespace, "key": c.key, "change": c.change})
            )?;
        } else {
            let sign = match c.change {
                "added" => '+',
                "removed" => '-',
                _ => '~',
            };
            writeln!(w, "{sign} {} {}", c.namespace, c.key)?;
        }
        Ok(())
    })?;
    for (ns, n) in &result.namespaces {
        if json_out {
            writeln!(
                w,
                "{}",
                json!({"type": "namespace_diff", "namespace": ns, "added": n.added, "removed": n.removed, "changed": n.changed, "unchanged": n.unchanged})
            )?;
        } else {
            writeln!(
                w,
                "{ns}: {} added, {} removed, {} changed, {} unchanged",
                n.added, n.removed, n.changed, n.unchanged
            )?;
        }
    }
    if json_out {
        writeln!(
            w,
            "{}",
            json!({"type": "summary", "from": a, "to": b, "equal": result.is_empty()})
        )?;
    }
    w.flush()?;
    Ok(if result.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `export`.
#[derive(Debug, Clone)]
pub struct ExportArgs {
    pub store: PathBuf,
    pub version: String,
    pub format: String,
    pub out: PathBuf,
    pub json: bool,
}

/// Runs `export`: one file per namespace; a summary on stdout.
pub fn run_export(a: &ExportArgs) -> anyhow::Result<ExitCode> {
    use crate::restore::export::{export, Format};
    let format = Format::parse(&a.format)?;
    let store = open_read(&a.store)?;
    stored::check_name(&a.version)?;
    let done = export(&store, &a.version, format, &a.out)?;
    let mut w = io::stdout().lock();
    for (ns, (file, rows)) in &done.files {
        if a.json {
            writeln!(
                w,
                "{}",
                json!({"type": "export_file", "namespace": ns, "file": file.display().to_string(), "rows": rows})
            )?;
        } else {
            writeln!(w, "{ns}: {rows} rows -> {}", file.display())?;
        }
    }
    if a.json {
        writeln!(
            w,
            "{}",
            json!({"type": "summary", "version": a.version, "files": done.files.len(), "rows": done.files.values().map(|f| f.1).sum::<u64>()})
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
