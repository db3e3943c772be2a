//! RESULT bodies (spec 4.2.5): Void, Rows (metadata with every flag, paging state, v5
//! new metadata id; row cells kept as one shared slice and decoded lazily), Set_keyspace,
//! Prepared (id, v5 result metadata id, bind metadata with partition-key indexes from
//! v4, result metadata) and Schema_change.

use super::event::SchemaChange;
use crate::error::{ParseError, ParseErrorKind};
use crate::text::Text;
use crate::types::{ColumnType, Value};
use crate::wire::{Reader, Writer};
use bytes::Bytes;

type R<T> = Result<T, ParseError>;

mod mflags {
    pub const GLOBAL_TABLES_SPEC: u32 = 0x01;
    pub const HAS_MORE_PAGES: u32 = 0x02;
    pub const NO_METADATA: u32 = 0x04;
    pub const METADATA_CHANGED: u32 = 0x08;
}

/// A column (or bind marker) description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub keyspace: Text,
    pub table: Text,
    pub name: Text,
    pub ty: ColumnType,
}

fn read_specs(r: &mut Reader, n: usize, global: &Option<(Text, Text)>) -> R<Vec<ColumnSpec>> {
    let mut out = Vec::with_capacity(r.capacity_for(n, 4));
    for _ in 0..n {
        let (keyspace, table) = match global {
            Some((k, t)) => (k.clone(), t.clone()),
            None => (r.string()?, r.string()?),
        };
        let name = r.string()?;
        let ty = ColumnType::decode(r)?;
        out.push(ColumnSpec {
            keyspace,
            table,
            name,
            ty,
        });
    }
    Ok(out)
}

fn write_specs(w: &mut Writer, cols: &[ColumnSpec], global: &Option<(Text, Text)>) {
    if let Some((k, t)) = global {
        w.string(k);
        w.string(t);
    }
    for c in cols {
        if global.is_none() {
            w.string(&c.keyspace);
            w.string(&c.table);
        }
        w.string(&c.name);
        c.ty.encode(w);
    }
}

fn count(r: &mut Reader, what: &'static str) -> R<usize> {
    let pos = r.position();
    let n = r.i32(what)?;
    usize::try_from(n)
        .map_err(|_| ParseError::new(what, pos, ParseErrorKind::InvalidLength(n.into())))
}

/// Result set metadata (`<metadata>` of Rows, `<result_metadata>` of Prepared).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowsMetadata {
    /// Number of columns (also given when `no_metadata` leaves `columns` empty).
    pub columns_count: usize,
    /// Present iff Has_more_pages (`Some(None)`: flag set with a null state).
    pub paging_state: Option<Option<Bytes>>,
    /// v5 Metadata_changed: the new result metadata id.
    pub new_metadata_id: Option<Bytes>,
    /// Set when one keyspace/table applies to all columns (Global_tables_spec).
    pub global_table_spec: Option<(Text, Text)>,
    /// No_metadata: the columns were not sent (the client asked to skip them).
    pub no_metadata: bool,
    /// No_metadata with Global_tables_spec: the skipped columns share one table, but
    /// the spec itself is not sent (protocol spec 4.2.5.2: with No_metadata there is
    /// "no <global_table_spec> nor <col_spec_i>"). Cassandra keeps the flag when an
    /// EXECUTE skips the metadata (flags 0x0005); a decoder can only keep the flag.
    pub global_flag_without_spec: bool,
    pub columns: Vec<ColumnSpec>,
}

impl RowsMetadata {
    pub(crate) fn read(r: &mut Reader) -> R<Self> {
        let flags = r.u32("metadata flags")?;
        let columns_count = count(r, "columns_count")?;
        let paging_state = if flags & mflags::HAS_MORE_PAGES != 0 {
            Some(r.bytes()?)
        } else {
            None
        };
        let new_metadata_id = if flags & mflags::METADATA_CHANGED != 0 {
            Some(r.short_bytes()?)
        } else {
            None
        };
        let no_metadata = flags & mflags::NO_METADATA != 0;
        let global_flag_without_spec = no_metadata && flags & mflags::GLOBAL_TABLES_SPEC != 0;
        let mut global_table_spec = None;
        let mut columns = Vec::new();
        if !no_metadata {
            if flags & mflags::GLOBAL_TABLES_SPEC != 0 {
                global_table_spec = Some((r.string()?, r.string()?));
            }
            columns = read_specs(r, columns_count, &global_table_spec)?;
        }
        Ok(RowsMetadata {
            columns_count,
            paging_state,
            new_metadata_id,
            global_table_spec,
            no_metadata,
            global_flag_without_spec,
            columns,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        let mut flags = 0;
        // Without metadata the flag still tells that the (unsent) columns share one
        // table, as Cassandra's own encoder keeps it; the spec strings are left out.
        let global = if self.no_metadata {
            self.global_table_spec.is_some() || self.global_flag_without_spec
        } else {
            self.global_table_spec.is_some()
        };
        if global {
            flags |= mflags::GLOBAL_TABLES_SPEC;
        }
        if self.paging_state.is_some() {
            flags |= mflags::HAS_MORE_PAGES;
        }
        if self.no_metadata {
            flags |= mflags::NO_METADATA;
        }
        if self.new_metadata_id.is_some() {
            flags |= mflags::METADATA_CHANGED;
        }
        w.u32(flags);
        w.i32(i32::try_from(self.columns_count).unwrap_or(i32::MAX));
        if let Some(p) = &self.paging_state {
            w.bytes(p.as_deref());
        }
        if let Some(id) = &self.new_metadata_id {
            w.short_bytes(id);
        }
        if !self.no_metadata {
            write_specs(w, &self.columns, &self.global_table_spec);
        }
    }
}

/// A Rows result. Cells stay in one shared slice; iterate with [`Rows::rows`] or decode
/// with [`Rows::typed_rows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows {
    pub metadata: RowsMetadata,
    pub rows_count: usize,
    /// `rows_count * columns_count` `[bytes]` cells, validated at decode.
    pub content: Bytes,
}

impl Rows {
    pub(crate) fn read(r: &mut Reader) -> R<Self> {
        let metadata = RowsMetadata::read(r)?;
        let rows_count = count(r, "rows_count")?;
        let start = r.position();
        let mut probe = r.clone();
        if metadata.columns_count > 0 {
            // Each cell takes at least 4 bytes, so this loop is bounded by the body.
            for _ in 0..rows_count {
                for _ in 0..metadata.columns_count {
                    probe.bytes()?;
                }
            }
        }
        let len = probe.position() - start;
        let content = r.take("rows_content", len)?;
        Ok(Rows {
            metadata,
            rows_count,
            content,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        self.metadata.write(w);
        w.i32(i32::try_from(self.rows_count).unwrap_or(i32::MAX));
        w.raw(&self.content);
    }

    /// Builds a Rows result from cells (for encoders and tests).
    pub fn from_cells(metadata: RowsMetadata, rows: &[Vec<Option<Bytes>>]) -> Rows {
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf);
        for row in rows {
            for c in row {
                w.bytes(c.as_deref());
            }
        }
        Rows {
            metadata,
            rows_count: rows.len(),
            content: Bytes::from(buf),
        }
    }

    /// Iterates rows as raw cells (`None` = null).
    pub fn rows(&self) -> RowIter {
        RowIter {
            r: Reader::new(self.content.clone()),
            left: if self.metadata.columns_count == 0 {
                0
            } else {
                self.rows_count
            },
            cols: self.metadata.columns_count,
        }
    }

    /// Decodes every row with the given column types (the result's own metadata, or the
    /// prepared statement's when the result was sent with No_metadata).
    pub fn typed_rows(&self, types: &[&ColumnType]) -> R<Vec<Vec<Value>>> {
        let mut out = Vec::with_capacity(self.rows_count.min(self.content.len() / 4 + 1));
        for row in self.rows() {
            let row = row?;
            let mut vals = Vec::with_capacity(row.len());
            for (i, cell) in row.iter().enumerate() {
                let ty = types.get(i).copied().unwrap_or(&ColumnType::Blob);
                vals.push(Value::from_bytes(ty, cell.as_ref())?);
            }
            out.push(vals);
        }
        Ok(out)
    }
}

/// Iterator over the rows of a [`Rows`] result.
pub struct RowIter {
    r: Reader,
    left: usize,
    cols: usize,
}

impl Iterator for RowIter {
    type Item = R<Vec<Option<Bytes>>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut row = Vec::with_capacity(self.r.capacity_for(self.cols, 4));
        for _ in 0..self.cols {
            match self.r.bytes() {
                Ok(c) => row.push(c),
                Err(e) => {
                    self.left = 0;
                    return Some(Err(e));
                }
            }
        }
        Some(Ok(row))
    }
}

/// Bind-marker metadata of a Prepared result: what EXECUTE values mean.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreparedMetadata {
    /// Indexes of the bind markers forming the partition key, in key order (v4+).
    pub pk_indexes: Vec<u16>,
    pub global_table_spec: Option<(Text, Text)>,
    /// One per bind marker, in order.
    pub columns: Vec<ColumnSpec>,
}

impl PreparedMetadata {
    pub(crate) fn read(r: &mut Reader, version: u8) -> R<Self> {
        let flags = r.u32("prepared metadata flags")?;
        let n = count(r, "columns_count")?;
        let mut pk_indexes = Vec::new();
        if version >= 4 {
            let pk = count(r, "pk_count")?;
            pk_indexes.reserve(r.capacity_for(pk, 2));
            for _ in 0..pk {
                pk_indexes.push(r.u16("pk_index")?);
            }
        }
        let global_table_spec = if flags & mflags::GLOBAL_TABLES_SPEC != 0 {
            Some((r.string()?, r.string()?))
        } else {
            None
        };
        let columns = read_specs(r, n, &global_table_spec)?;
        Ok(PreparedMetadata {
            pk_indexes,
            global_table_spec,
            columns,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer, version: u8) {
        w.u32(if self.global_table_spec.is_some() {
            mflags::GLOBAL_TABLES_SPEC
        } else {
            0
        });
        w.i32(i32::try_from(self.columns.len()).unwrap_or(i32::MAX));
        if version >= 4 {
            w.i32(i32::try_from(self.pk_indexes.len()).unwrap_or(i32::MAX));
            for i in &self.pk_indexes {
                w.u16(*i);
            }
        }
        write_specs(w, &self.columns, &self.global_table_spec);
    }
}

/// A Prepared result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub id: Bytes,
    /// v5 only.
    pub result_metadata_id: Option<Bytes>,
    /// Bind markers (types of EXECUTE values, partition-key indexes).
    pub metadata: PreparedMetadata,
    /// Columns the statement returns (often empty / No_metadata for writes).
    pub result_metadata: RowsMetadata,
}

/// The RESULT kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultBody {
    Void,
    Rows(Rows),
    SetKeyspace(Text),
    Prepared(Prepared),
    SchemaChange(SchemaChange),
}

impl ResultBody {
    /// The kind name as the spec spells it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ResultBody::Void => "Void",
            ResultBody::Rows(_) => "Rows",
            ResultBody::SetKeyspace(_) => "Set_keyspace",
            ResultBody::Prepared(_) => "Prepared",
            ResultBody::SchemaChange(_) => "Schema_change",
        }
    }

    pub(crate) fn read(r: &mut Reader, version: u8) -> R<Self> {
        let pos = r.position();
        let kind = r.i32("result kind")?;
        Ok(match kind {
            1 => ResultBody::Void,
            2 => ResultBody::Rows(Rows::read(r)?),
            3 => ResultBody::SetKeyspace(r.string()?),
            4 => {
                let id = r.short_bytes()?;
                let result_metadata_id = if version >= 5 {
                    Some(r.short_bytes()?)
                } else {
                    None
                };
                let metadata = PreparedMetadata::read(r, version)?;
                let result_metadata = RowsMetadata::read(r)?;
                ResultBody::Prepared(Prepared {
                    id,
                    result_metadata_id,
                    metadata,
                    result_metadata,
                })
            }
            5 => ResultBody::SchemaChange(SchemaChange::read(r)?),
            k => {
                return Err(ParseError::new(
                    "result kind",
                    pos,
                    ParseErrorKind::UnknownTag(k as u32),
                ))
            }
        })
    }

    pub(crate) fn write(&self, w: &mut Writer, version: u8) {
        match self {
            ResultBody::Void => w.i32(1),
            ResultBody::Rows(rows) => {
                w.i32(2);
                rows.write(w);
            }
            ResultBody::SetKeyspace(k) => {
                w.i32(3);
                w.string(k);
            }
            ResultBody::Prepared(p) => {
                w.i32(4);
                w.short_bytes(&p.id);
                if version >= 5 {
                    w.short_bytes(p.result_metadata_id.as_deref().unwrap_or_default());
                }
                p.metadata.write(w, version);
                p.result_metadata.write(w);
            }
            ResultBody::SchemaChange(s) => {
                w.i32(5);
                s.write(w);
            }
        }
    }
}
