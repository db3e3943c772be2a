//! `<query_parameters>` of QUERY and EXECUTE (spec 4.1.4): consistency, flags, bound
//! values (positional or named; null and unset), skip_metadata, page size, paging
//! state, serial consistency, default timestamp, and in v5 keyspace and now_in_seconds.
//! Flags are one byte before v5 and an `[int]` in v5.

use super::result::ColumnSpec;
use crate::error::ParseError;
use crate::text::Text;
use crate::types::{ColumnType, Value};
use crate::wire::{Consistency, Reader, WireValue, Writer};
use bytes::Bytes;

pub(crate) mod qflags {
    pub const VALUES: u32 = 0x01;
    pub const SKIP_METADATA: u32 = 0x02;
    pub const PAGE_SIZE: u32 = 0x04;
    pub const PAGING_STATE: u32 = 0x08;
    pub const SERIAL_CONSISTENCY: u32 = 0x10;
    pub const DEFAULT_TIMESTAMP: u32 = 0x20;
    pub const NAMES: u32 = 0x40;
    pub const KEYSPACE: u32 = 0x80;
    pub const NOW_IN_SECONDS: u32 = 0x100;
}

/// Bound values of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum QueryValues {
    /// The Values flag is not set.
    #[default]
    None,
    Positional(Vec<WireValue>),
    Named(Vec<(Text, WireValue)>),
}

impl QueryValues {
    pub fn len(&self) -> usize {
        match self {
            QueryValues::None => 0,
            QueryValues::Positional(v) => v.len(),
            QueryValues::Named(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values in order, without names.
    pub fn values(&self) -> Vec<&WireValue> {
        match self {
            QueryValues::None => Vec::new(),
            QueryValues::Positional(v) => v.iter().collect(),
            QueryValues::Named(v) => v.iter().map(|(_, v)| v).collect(),
        }
    }

    /// Decodes the values with the bind markers' types from a Prepared result's
    /// metadata (`Prepared::metadata.columns`): positional values by index, named ones
    /// by marker name. Values beyond the metadata are decoded as blobs.
    pub fn typed(&self, columns: &[ColumnSpec]) -> Result<Vec<Value>, ParseError> {
        let blob = ColumnType::Blob;
        let type_at = |i: usize| columns.get(i).map(|c| &c.ty).unwrap_or(&blob);
        match self {
            QueryValues::None => Ok(Vec::new()),
            QueryValues::Positional(v) => v
                .iter()
                .enumerate()
                .map(|(i, x)| Value::from_wire(type_at(i), x))
                .collect(),
            QueryValues::Named(v) => v
                .iter()
                .enumerate()
                .map(|(i, (name, x))| {
                    let ty = columns
                        .iter()
                        .find(|c| c.name == *name)
                        .map(|c| &c.ty)
                        .unwrap_or(type_at(i));
                    Value::from_wire(ty, x)
                })
                .collect(),
        }
    }

    /// Reads `n` values, with names if `named`.
    pub(crate) fn read(r: &mut Reader, named: bool) -> Result<QueryValues, ParseError> {
        let n = r.u16("values count")? as usize;
        if named {
            let mut out = Vec::with_capacity(r.capacity_for(n, 6));
            for _ in 0..n {
                let name = r.string()?;
                out.push((name, r.value()?));
            }
            Ok(QueryValues::Named(out))
        } else {
            let mut out = Vec::with_capacity(r.capacity_for(n, 4));
            for _ in 0..n {
                out.push(r.value()?);
            }
            Ok(QueryValues::Positional(out))
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        let n = u16::try_from(self.len()).unwrap_or(u16::MAX);
        w.u16(n);
        match self {
            QueryValues::None => {}
            QueryValues::Positional(v) => v.iter().take(n.into()).for_each(|x| w.value(x)),
            QueryValues::Named(v) => v.iter().take(n.into()).for_each(|(k, x)| {
                w.string(k);
                w.value(x)
            }),
        }
    }
}

/// Query parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParameters {
    pub consistency: Consistency,
    pub values: QueryValues,
    pub skip_metadata: bool,
    pub page_size: Option<i32>,
    /// The paging state (`None` inside means a null `[bytes]` with the flag set).
    pub paging_state: Option<Option<Bytes>>,
    pub serial_consistency: Option<Consistency>,
    /// Default write timestamp in microseconds.
    pub timestamp: Option<i64>,
    /// v5 only.
    pub keyspace: Option<Text>,
    /// v5 only.
    pub now_in_seconds: Option<i32>,
}

impl Default for QueryParameters {
    fn default() -> Self {
        QueryParameters {
            consistency: Consistency::One,
            values: QueryValues::None,
            skip_metadata: false,
            page_size: None,
            paging_state: None,
            serial_consistency: None,
            timestamp: None,
            keyspace: None,
            now_in_seconds: None,
        }
    }
}

impl QueryParameters {
    pub(crate) fn read(r: &mut Reader, version: u8) -> Result<QueryParameters, ParseError> {
        let consistency = r.consistency()?;
        let flags = if version >= 5 {
            r.u32("query flags")?
        } else {
            r.u8("query flags")?.into()
        };
        let has = |f: u32| flags & f != 0;
        let values = if has(qflags::VALUES) {
            QueryValues::read(r, has(qflags::NAMES))?
        } else {
            QueryValues::None
        };
        let page_size = if has(qflags::PAGE_SIZE) {
            Some(r.i32("result_page_size")?)
        } else {
            None
        };
        let paging_state = if has(qflags::PAGING_STATE) {
            Some(r.bytes()?)
        } else {
            None
        };
        let serial_consistency = if has(qflags::SERIAL_CONSISTENCY) {
            Some(r.consistency()?)
        } else {
            None
        };
        let timestamp = if has(qflags::DEFAULT_TIMESTAMP) {
            Some(r.i64("timestamp")?)
        } else {
            None
        };
        let keyspace = if version >= 5 && has(qflags::KEYSPACE) {
            Some(r.string()?)
        } else {
            None
        };
        let now_in_seconds = if version >= 5 && has(qflags::NOW_IN_SECONDS) {
            Some(r.i32("now_in_seconds")?)
        } else {
            None
        };
        Ok(QueryParameters {
            consistency,
            values,
            skip_metadata: has(qflags::SKIP_METADATA),
            page_size,
            paging_state,
            serial_consistency,
            timestamp,
            keyspace,
            now_in_seconds,
        })
    }

    /// The flags these parameters encode to (v5 fields dropped below v5).
    pub fn flags(&self, version: u8) -> u32 {
        let mut f = 0;
        let mut set = |c: bool, bit: u32| {
            if c {
                f |= bit
            }
        };
        set(!matches!(self.values, QueryValues::None), qflags::VALUES);
        set(matches!(self.values, QueryValues::Named(_)), qflags::NAMES);
        set(self.skip_metadata, qflags::SKIP_METADATA);
        set(self.page_size.is_some(), qflags::PAGE_SIZE);
        set(self.paging_state.is_some(), qflags::PAGING_STATE);
        set(
            self.serial_consistency.is_some(),
            qflags::SERIAL_CONSISTENCY,
        );
        set(self.timestamp.is_some(), qflags::DEFAULT_TIMESTAMP);
        if version >= 5 {
            set(self.keyspace.is_some(), qflags::KEYSPACE);
            set(self.now_in_seconds.is_some(), qflags::NOW_IN_SECONDS);
        }
        f
    }

    pub(crate) fn write(&self, w: &mut Writer, version: u8) {
        w.consistency(self.consistency);
        let flags = self.flags(version);
        if version >= 5 {
            w.u32(flags);
        } else {
            w.u8(flags as u8);
        }
        if flags & qflags::VALUES != 0 {
            self.values.write(w);
        }
        if let Some(p) = self.page_size {
            w.i32(p);
        }
        if let Some(p) = &self.paging_state {
            w.bytes(p.as_deref());
        }
        if let Some(c) = self.serial_consistency {
            w.consistency(c);
        }
        if let Some(t) = self.timestamp {
            w.i64(t);
        }
        if version >= 5 {
            if let Some(k) = &self.keyspace {
                w.string(k);
            }
            if let Some(n) = self.now_in_seconds {
                w.i32(n);
            }
        }
    }
}
