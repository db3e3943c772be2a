//! `mongodump` output: the directory layout (`DIR/db/coll.bson` with
//! `coll.metadata.json`, both `.gz` under `--gzip`) and the archive format
//! (`--archive`, optionally gzip'd), read into one [`Collection`] per namespace.
//!
//! The archive, as mongo-tools' `common/archive` writes it (and its
//! `archive-spec.md` describes): the magic number `0x8199e26d` (little-endian), a
//! header document, one metadata document per collection (`db`, `collection`,
//! `metadata`: the `metadata.json` text, `size`), the terminator `ff ff ff ff`, then
//! segments in any interleaving: a namespace header document (`db`, `collection`,
//! `EOF`, `CRC`), that namespace's documents, the terminator; an `EOF: true` header
//! is followed by the terminator alone.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value as Json};
use tidemark_mongo::bson::RawDocument;

/// The archive's magic number as it appears on disk.
const MAGIC: [u8; 4] = [0x6d, 0xe2, 0x99, 0x81];
const TERMINATOR: [u8; 4] = [0xff; 4];
/// A decompressed input larger than this is refused (a gzip bomb must not fill memory).
const MAX_INFLATED: u64 = 8 << 30;

/// One collection of a dump.
#[derive(Debug, Default)]
pub struct Collection {
    /// `db.collection`.
    pub namespace: String,
    /// `{"options": …, "indexes": […]}` as `metadata.json` has them.
    pub schema: String,
    /// Every document, raw BSON, in dump order.
    pub documents: Vec<Vec<u8>>,
    /// Bytes read for it (the `.bson` file as stored, or its archive segments).
    pub input_bytes: u64,
    /// Where it came from (file path), for the part.
    pub source: PathBuf,
}

fn gunzip_if_needed(bytes: Vec<u8>, what: &Path) -> Result<Vec<u8>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .take(MAX_INFLATED)
        .read_to_end(&mut out)
        .with_context(|| format!("{}: bad gzip", what.display()))?;
    Ok(out)
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// One BSON document at the start of `b`: its length, checked and validated
/// (every top-level element parses).
fn doc_len(b: &[u8]) -> Result<usize> {
    let len = b
        .get(..4)
        .map(|l| i32::from_le_bytes([l[0], l[1], l[2], l[3]]))
        .ok_or_else(|| anyhow!("truncated document length"))?;
    let len = usize::try_from(len).map_err(|_| anyhow!("negative document length"))?;
    let body = b
        .get(..len)
        .ok_or_else(|| anyhow!("document of {len} bytes past the end"))?;
    let doc = RawDocument::from_bytes(body).map_err(|e| anyhow!("bad BSON document: {e}"))?;
    for el in doc {
        el.map_err(|e| anyhow!("bad BSON document: {e}"))?;
    }
    Ok(len)
}

/// A `.bson` file: documents back to back.
fn split_documents(b: &[u8], what: &Path) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let n = doc_len(&b[at..]).with_context(|| format!("{} at byte {at}", what.display()))?;
        out.push(b[at..at + n].to_vec());
        at += n;
    }
    Ok(out)
}

/// `metadata.json`'s `options` and `indexes`, the snapshot's schema of a collection.
fn schema_of(metadata: &str, what: &Path) -> Result<String> {
    if metadata.trim().is_empty() {
        return Ok(json!({"options": {}, "indexes": []}).to_string());
    }
    let m: Json = serde_json::from_str(metadata)
        .with_context(|| format!("{}: metadata is not JSON", what.display()))?;
    // Kept as mongodump wrote them (canonical Extended JSON): the root crate's
    // `bson` has no Extended JSON parser to re-render them relaxed.
    let relaxed = |v: Option<&Json>, empty: Json| v.cloned().unwrap_or(empty);
    Ok(json!({
        "options": relaxed(m.get("options"), json!({})),
        "indexes": relaxed(m.get("indexes"), json!([])),
    })
    .to_string())
}

/// Collections of a system namespace are the server's, not the user's data.
fn is_system(coll: &str) -> bool {
    coll.starts_with("system.")
}

/// A `mongodump --out DIR` directory (`--gzip` or not).
pub fn read_dir(dir: &Path) -> Result<Vec<Collection>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?;
    let mut out = Vec::new();
    let mut dbs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dbs.sort();
    for db_dir in dbs {
        let db = db_dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow!("{}: not a UTF-8 name", db_dir.display()))?
            .to_string();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&db_dir)
            .with_context(|| format!("cannot read directory {}", db_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for f in files {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let Some(coll) = name
                .strip_suffix(".bson.gz")
                .or_else(|| name.strip_suffix(".bson"))
            else {
                continue;
            };
            if is_system(coll) {
                continue;
            }
            let raw = read_file(&f)?;
            let input_bytes = raw.len() as u64;
            let bytes = gunzip_if_needed(raw, &f)?;
            let documents = split_documents(&bytes, &f)?;
            let meta = [".metadata.json", ".metadata.json.gz"]
                .iter()
                .map(|s| db_dir.join(format!("{coll}{s}")))
                .find(|p| p.exists());
            let schema = match meta {
                Some(m) => {
                    let text = gunzip_if_needed(read_file(&m)?, &m)?;
                    let text = String::from_utf8(text)
                        .map_err(|_| anyhow!("{}: not UTF-8", m.display()))?;
                    schema_of(&text, &m)?
                }
                None => schema_of("", &f)?,
            };
            out.push(Collection {
                namespace: format!("{db}.{coll}"),
                schema,
                documents,
                input_bytes,
                source: f.clone(),
            });
        }
    }
    if out.is_empty() {
        bail!(
            "{}: no db/collection.bson files (not a mongodump directory)",
            dir.display()
        );
    }
    Ok(out)
}

fn str_field(d: &RawDocument, k: &str) -> Result<String> {
    Ok(d.get_str(k)
        .map_err(|_| anyhow!("archive header without {k}"))?
        .to_string())
}

/// A `mongodump --archive=FILE` file (`--gzip` or not).
pub fn read_archive(path: &Path) -> Result<Vec<Collection>> {
    parse_archive(read_file(path)?, path)
}

/// [`read_archive`] on bytes already read (`path` names them in errors).
pub fn parse_archive(raw: Vec<u8>, path: &Path) -> Result<Vec<Collection>> {
    let input_len = raw.len() as u64;
    let b = gunzip_if_needed(raw, path)?;
    if !b.starts_with(&MAGIC) {
        bail!(
            "{}: not a mongodump archive (no magic number)",
            path.display()
        );
    }
    let ctx = |at: usize| format!("{} at byte {at}", path.display());
    let mut at = 4;
    let header_len = doc_len(&b[at..]).with_context(|| ctx(at))?;
    at += header_len;
    let mut colls: BTreeMap<String, Collection> = BTreeMap::new();
    let mut order = Vec::new();
    // Collection metadata documents up to the terminator.
    loop {
        if b[at..].starts_with(&TERMINATOR) {
            at += 4;
            break;
        }
        let n = doc_len(&b[at..]).with_context(|| ctx(at))?;
        let d = RawDocument::from_bytes(&b[at..at + n]).map_err(|e| anyhow!("{e}"))?;
        let ns = format!("{}.{}", str_field(d, "db")?, str_field(d, "collection")?);
        let meta = d.get_str("metadata").unwrap_or_default();
        colls.insert(
            ns.clone(),
            Collection {
                namespace: ns.clone(),
                schema: schema_of(meta, path)?,
                source: path.to_path_buf(),
                ..Collection::default()
            },
        );
        order.push(ns);
        at += n;
    }
    // Namespace segments.
    while at < b.len() {
        let n = doc_len(&b[at..]).with_context(|| ctx(at))?;
        let h = RawDocument::from_bytes(&b[at..at + n]).map_err(|e| anyhow!("{e}"))?;
        let ns = format!("{}.{}", str_field(h, "db")?, str_field(h, "collection")?);
        let eof = h.get_bool("EOF").unwrap_or(false);
        let start = at;
        at += n;
        let c = colls
            .get_mut(&ns)
            .ok_or_else(|| anyhow!("{}: segment of {ns}, which has no metadata", ctx(start)))?;
        if !eof {
            while !b[at..].starts_with(&TERMINATOR) {
                if at >= b.len() {
                    bail!("{}: segment of {ns} without a terminator", ctx(start));
                }
                let d = doc_len(&b[at..]).with_context(|| ctx(at))?;
                c.documents.push(b[at..at + d].to_vec());
                at += d;
            }
        }
        if !b[at..].starts_with(&TERMINATOR) {
            bail!("{}: no terminator after the {ns} segment", ctx(at));
        }
        at += 4;
        c.input_bytes += (at - start) as u64;
    }
    let total: u64 = colls.values().map(|c| c.input_bytes).sum();
    let mut out: Vec<Collection> = order
        .into_iter()
        .filter_map(|ns| colls.remove(&ns))
        .filter(|c| !is_system(c.namespace.split_once('.').map_or("", |x| x.1)))
        .collect();
    // Compressed archives: share the file's size out by each collection's part.
    if total > 0 && input_len != total {
        for c in &mut out {
            c.input_bytes =
                (u128::from(c.input_bytes) * u128::from(input_len) / u128::from(total)) as u64;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let p = Path::new("x");
        assert!(split_documents(&[5, 0, 0, 0], p).is_err());
        assert!(split_documents(&[0xff, 0xff, 0xff, 0xff, 0], p).is_err());
        assert!(split_documents(&[5, 0, 0, 0, 1], p).is_err());
        assert_eq!(split_documents(&[5, 0, 0, 0, 0], p).unwrap().len(), 1);
        assert!(gunzip_if_needed(vec![0x1f, 0x8b, 1, 2], p).is_err());
    }
}
