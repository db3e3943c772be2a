//! `tidemark snapshot import`: a snapshot made from files instead of a live read.
//!
//! - `--node-dump FILE…`: node-local copies of CQL tables, one `sstabledump` JSON
//!   per replica ([`sstabledump`]); every replica's copy of a cell is merged by the
//!   reconcile rules ([`merge`]), which is the deduplication of replicas.
//! - `--mongodump DIR` / `--archive FILE`: mongodump's output ([`mongodump`]).
//!
//! Everything is read and checked before the store is touched, so bad input
//! (missing files, garbage JSON or BSON, an unknown table) writes nothing. The
//! snapshot has one part per input file ([`PartRange::File`]: its size and the
//! value bytes it held); a file's read window is its mtime, both ends: a dump says
//! nothing about when each of its cells was read, and it was complete when last
//! written, so a version at or after every file's mtime is safe and one before is
//! refused, as for a live snapshot's read window.

pub mod merge;
pub mod mongodump;
pub mod schema;
pub mod sstabledump;
pub mod value;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use tidemark_mongo::bson::RawDocument;

use super::model::{NamespaceInfo, PartInfo, PartRange, RowData, SnapshotInfo, SnapshotRow};
use super::progress::{FileProgress, Progress};
use super::store as snapstore;
use super::take::now_ns;
use crate::decode::mongo::values;
use crate::store::{Protocol, Store, StoreError, StoreOptions};

/// What `snapshot import` was asked.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub store: PathBuf,
    /// `FILE` or `keyspace.table=FILE`.
    pub node_dumps: Vec<String>,
    /// CQL `CREATE` statements for the dumps' tables.
    pub schema: Option<PathBuf>,
    /// The table of dumps given without `keyspace.table=`.
    pub table: Option<String>,
    pub mongodump: Option<PathBuf>,
    pub archive: Option<PathBuf>,
    /// The cluster name recorded (a dump names none).
    pub cluster: Option<String>,
    pub json: bool,
}

/// Rows written per store transaction.
const ROWS_PER_WRITE: usize = 1000;

fn mtime_ns(path: &Path) -> u64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

fn file_part(
    namespace: &str,
    path: &Path,
    input_bytes: u64,
    value_bytes: u64,
    rows: u64,
) -> PartInfo {
    let t = mtime_ns(path);
    PartInfo {
        namespace: namespace.to_string(),
        range: PartRange::File {
            path: path.display().to_string(),
            input_bytes,
            value_bytes,
        },
        read_start: t,
        read_end: Some(t),
        rows,
    }
}

/// A read and merged import, ready to store.
struct Prepared {
    source: String,
    protocol: Protocol,
    namespaces: Vec<NamespaceInfo>,
    parts: Vec<PartInfo>,
    rows: Vec<SnapshotRow>,
}

fn cql_tables(o: &ImportOptions, store: Option<&Store>) -> Result<Vec<schema::TableDef>> {
    if let Some(p) = &o.schema {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read --schema {}", p.display()))?;
        return schema::from_text(&text).with_context(|| format!("--schema {}", p.display()));
    }
    // No --schema: the CREATE statements of the store's newest CQL snapshot.
    let newest = match store {
        Some(s) => snapstore::list_snapshots(s)?
            .into_iter()
            .rev()
            .find(|s| s.protocol == Protocol::Cql && !s.namespaces.is_empty()),
        None => None,
    };
    if let Some(snap) = newest {
        let text: Vec<&str> = snap.namespaces.iter().map(|n| n.schema.as_str()).collect();
        return schema::from_text(&text.join("\n"))
            .with_context(|| format!("the schema of snapshot {}", snap.id));
    }
    // Else the log's CREATE TABLEs of the tables the arguments name.
    let mut names: Vec<String> = o.table.iter().cloned().collect();
    for d in &o.node_dumps {
        if let Some((ns, _)) = d.split_once('=').filter(|(ns, _)| ns.contains('.')) {
            if !names.iter().any(|n| n == ns) {
                names.push(ns.to_string());
            }
        }
    }
    match (store, names.is_empty()) {
        (Some(s), false) => {
            let learned = crate::decode::cql::stored_schema::from_store(s)?;
            schema::from_schema(&learned, &names).context("the store's log")
        }
        _ => bail!(
            "no --schema, no CQL snapshot in the store, and no table named (--table or \
             keyspace.table=FILE) to find in its log: the dumps' schema is unknown"
        ),
    }
}

fn prepare_cql(
    o: &ImportOptions,
    store: Option<&Store>,
    progress: &mut dyn FnMut(u64),
) -> Result<Prepared> {
    let tables = cql_tables(o, store)?;
    let mut m = merge::Merge::default();
    for t in &tables {
        m.table(&t.namespace, t.clustering.clone());
    }
    let mut parts = Vec::new();
    let mut used: Vec<&schema::TableDef> = Vec::new();
    for (i, arg) in o.node_dumps.iter().enumerate() {
        let (wanted, file) = match arg.split_once('=') {
            Some((ns, f)) if tables.iter().any(|t| t.namespace == ns) => (Some(ns), f),
            _ => (o.table.as_deref(), arg.as_str()),
        };
        let t = schema::pick(&tables, wanted)?;
        let path = PathBuf::from(file);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read --node-dump {}", path.display()))?;
        let part = u32::try_from(i).map_err(|_| anyhow!("too many files"))?;
        let stats = sstabledump::read(&bytes, t, part, &mut m).with_context(|| {
            format!("{}: not an sstabledump of {}", path.display(), t.namespace)
        })?;
        parts.push(file_part(
            &t.namespace,
            &path,
            bytes.len() as u64,
            0,
            stats.rows,
        ));
        if !used.iter().any(|u| u.namespace == t.namespace) {
            used.push(t);
        }
        progress(stats.rows);
    }
    let (rows, held) = m.rows();
    for (i, p) in parts.iter_mut().enumerate() {
        if let PartRange::File { value_bytes, .. } = &mut p.range {
            *value_bytes = held.per_part.get(&(i as u32)).copied().unwrap_or(0);
        }
    }
    let namespaces = used
        .iter()
        .map(|t| NamespaceInfo {
            name: t.namespace.clone(),
            schema: t.schema_text.clone(),
            rows: rows.iter().filter(|r| r.namespace == t.namespace).count() as u64,
            // Each live value once (static cells once per partition, not per row):
            // the denominator of the dedup ratio.
            bytes: held.logical.get(&t.namespace).copied().unwrap_or(0),
        })
        .collect();
    Ok(Prepared {
        source: format!("import:node-dump ({} files)", o.node_dumps.len()),
        protocol: Protocol::Cql,
        namespaces,
        parts,
        rows,
    })
}

fn prepare_mongo(o: &ImportOptions, progress: &mut dyn FnMut(u64)) -> Result<Prepared> {
    let (colls, source) = match (&o.mongodump, &o.archive) {
        (Some(d), None) => (
            mongodump::read_dir(d)?,
            format!("import:mongodump {}", d.display()),
        ),
        (None, Some(a)) => (
            mongodump::read_archive(a)?,
            format!("import:archive {}", a.display()),
        ),
        _ => bail!("give one of --mongodump DIR and --archive FILE"),
    };
    let mut namespaces = Vec::new();
    let mut parts = Vec::new();
    let mut rows = Vec::new();
    for (i, c) in colls.into_iter().enumerate() {
        let part = u32::try_from(i).map_err(|_| anyhow!("too many collections"))?;
        let mut bytes = 0u64;
        let mut keys = std::collections::HashSet::new();
        for d in c.documents {
            let doc = RawDocument::from_bytes(&d).map_err(|e| anyhow!("{}: {e}", c.namespace))?;
            let id = doc
                .get("_id")
                .map_err(|e| anyhow!("{}: {e}", c.namespace))?
                .ok_or_else(|| anyhow!("{}: a document without _id", c.namespace))?;
            let key = values::id_key(id).to_string();
            bytes += d.len() as u64;
            if !keys.insert(key.clone()) {
                bail!("{}: _id {key} twice", c.namespace);
            }
            rows.push(SnapshotRow {
                namespace: c.namespace.clone(),
                key,
                part,
                data: RowData::Mongo { document: d },
            });
        }
        let n = keys.len() as u64;
        parts.push(file_part(&c.namespace, &c.source, c.input_bytes, bytes, n));
        namespaces.push(NamespaceInfo {
            name: c.namespace,
            schema: c.schema,
            rows: n,
            bytes,
        });
    }
    // The dump (directory or archive) is one input as far as progress goes.
    progress(rows.len() as u64);
    Ok(Prepared {
        source,
        protocol: Protocol::Mongo,
        namespaces,
        parts,
        rows,
    })
}

fn open_store(dir: &Path) -> Result<Store> {
    match Store::open_side(dir, &StoreOptions::default()) {
        Err(StoreError::Missing { .. }) => {
            drop(Store::create(dir, &StoreOptions::default())?);
            Ok(Store::open_side(dir, &StoreOptions::default())?)
        }
        other => Ok(other?),
    }
}

/// Imports; the snapshot as stored.
pub fn run(o: &ImportOptions) -> Result<SnapshotInfo> {
    let kinds = [
        !o.node_dumps.is_empty(),
        o.mongodump.is_some(),
        o.archive.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        bail!("give exactly one of --node-dump FILE…, --mongodump DIR, --archive FILE");
    }
    // The store is read (schema) only when it exists; it is created only once the
    // input has been read and found good.
    let existing = Store::open(&o.store, &StoreOptions::default().read_only()).ok();
    let files = if o.node_dumps.is_empty() {
        1
    } else {
        o.node_dumps.len()
    };
    let mut reading = FileProgress::new(o.json, files);
    let mut tick = |rows: u64| reading.file_done(rows);
    let prepared = if o.node_dumps.is_empty() {
        prepare_mongo(o, &mut tick)
    } else {
        prepare_cql(o, existing.as_ref(), &mut tick)
    };
    reading.finish();
    let prepared = prepared?;
    drop(existing);
    let store = open_store(&o.store)?;
    let started = now_ns();
    let mut info = SnapshotInfo {
        id: 0,
        source: prepared.source,
        cluster: o.cluster.clone().unwrap_or_else(|| "imported".to_string()),
        protocol: prepared.protocol,
        started,
        finished: None,
        namespaces: prepared.namespaces,
        parts: prepared.parts,
        cluster_time: None,
    };
    info.id = snapstore::insert_info(&store, &info)?;
    for chunk in prepared.rows.chunks(ROWS_PER_WRITE) {
        snapstore::put_rows(&store, info.id, chunk, None)?;
    }
    info.finished = Some(now_ns());
    snapstore::put_info(&store, &info)?;
    Progress::new(o.json, info.parts.len(), info.parts.len()).finish(&info);
    tracing::info!(snapshot = info.id, rows = info.rows(), "snapshot import");
    Ok(info)
}

/// Input and logical bytes of an import (`None` for a live snapshot): the value
/// bytes every input copy held, and what is stored after deduplication.
pub fn dedup(info: &SnapshotInfo) -> Option<(u64, u64, u64)> {
    let mut file_bytes = 0;
    let mut input = 0;
    let mut any = false;
    for p in &info.parts {
        if let PartRange::File {
            input_bytes,
            value_bytes,
            ..
        } = &p.range
        {
            any = true;
            file_bytes += input_bytes;
            input += value_bytes;
        }
    }
    let logical: u64 = info.namespaces.iter().map(|n| n.bytes).sum();
    any.then_some((file_bytes, input, logical))
}
