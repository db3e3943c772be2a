//! `version diff V1 V2`: rows and documents added, removed and changed, per namespace.
//!
//! Both versions are read in (namespace, key) order and merged like two sorted lists.
//! A CQL row counts as changed when a column's value (or an element's) differs; a new
//! write timestamp or TTL on the same value is not a change anyone reads. A document
//! is changed when its BSON differs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::model::VersionRow;
use super::stored;
use crate::store::Store;

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowChange {
    pub namespace: String,
    pub key: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
}

/// Counts per namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NamespaceDiff {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    pub unchanged: u64,
}

/// What differs between two versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub namespaces: BTreeMap<String, NamespaceDiff>,
}

impl Diff {
    /// Whether anything differs.
    pub fn is_empty(&self) -> bool {
        self.namespaces
            .values()
            .all(|n| n.added == 0 && n.removed == 0 && n.changed == 0)
    }
}

/// Column, element path and value of one cell.
type CellContent<'a> = (&'a str, Option<&'a [u8]>, &'a [u8]);

/// What a reader sees of a row: column, path and value of each cell (CQL), or the
/// document bytes.
fn content(row: &VersionRow) -> Vec<CellContent<'_>> {
    match row {
        VersionRow::Cql { cells } => cells
            .iter()
            .map(|c| (&*c.column, c.path.as_deref(), c.value.as_ref()))
            .collect(),
        VersionRow::Mongo { document } => vec![("", None, document.as_slice())],
    }
}

/// Whether two versions of a row read differently.
pub fn row_changed(a: &VersionRow, b: &VersionRow) -> bool {
    content(a) != content(b)
}

type Entry = (String, String, VersionRow);

fn collect(store: &Store, name: &str) -> anyhow::Result<Vec<Entry>> {
    let mut out = Vec::new();
    stored::for_each_row(store, name, |ns, key, row| {
        out.push((ns.to_string(), key.to_string(), row));
        Ok(true)
    })?;
    Ok(out)
}

/// Compares version `a` (before) with `b` (after), calling `each` for every
/// difference in (namespace, key) order.
pub fn diff(
    store: &Store,
    a: &str,
    b: &str,
    mut each: impl FnMut(&RowChange) -> anyhow::Result<()>,
) -> anyhow::Result<Diff> {
    let left = collect(store, a)?;
    let right = collect(store, b)?;
    let mut out = Diff::default();
    let (mut i, mut j) = (0, 0);
    let mut note = |ns: &str, key: &str, change: &'static str, out: &mut Diff| {
        let n = out.namespaces.entry(ns.to_string()).or_default();
        match change {
            "added" => n.added += 1,
            "removed" => n.removed += 1,
            "changed" => n.changed += 1,
            _ => {
                n.unchanged += 1;
                return Ok(());
            }
        }
        each(&RowChange {
            namespace: ns.to_string(),
            key: key.to_string(),
            change,
        })
    };
    while i < left.len() || j < right.len() {
        let order = match (left.get(i), right.get(j)) {
            (Some(l), Some(r)) => (&l.0, &l.1).cmp(&(&r.0, &r.1)),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                note(&left[i].0, &left[i].1, "removed", &mut out)?;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                note(&right[j].0, &right[j].1, "added", &mut out)?;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let change = if row_changed(&left[i].2, &right[j].2) {
                    "changed"
                } else {
                    "unchanged"
                };
                note(&left[i].0, &left[i].1, change, &mut out)?;
                i += 1;
                j += 1;
            }
        }
    }
    Ok(out)
}
