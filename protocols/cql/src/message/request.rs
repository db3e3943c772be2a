//! Request bodies (spec 4.1): STARTUP, AUTH_RESPONSE, QUERY, PREPARE, EXECUTE, BATCH,
//! REGISTER (OPTIONS has no body).

use super::params::{qflags, QueryParameters, QueryValues};
use crate::error::{ParseError, ParseErrorKind};
use crate::frame::Compression;
use crate::text::Text;
use crate::wire::{Consistency, Reader, Writer};
use bytes::Bytes;
use std::fmt;

type R<T> = Result<T, ParseError>;

/// STARTUP: a `[string map]` of options, order kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Startup {
    pub options: Vec<(Text, Text)>,
}

impl Startup {
    /// An option's value by case-sensitive key (`CQL_VERSION`, `COMPRESSION`, ...).
    pub fn option(&self, key: &str) -> Option<&Text> {
        self.options.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The negotiated body compression.
    pub fn compression(&self) -> Compression {
        self.option("COMPRESSION")
            .map(|c| Compression::from_name(c))
            .unwrap_or(Compression::None)
    }
}

/// AUTH_RESPONSE. The SASL token carries credentials, so decoding drops it: a decoded
/// message never holds it and it cannot leak into logs or the store. Only the encoder
/// (testbed, restore) sets one, and `Debug` never prints it.
#[derive(Clone, Eq)]
pub struct AuthResponse {
    token: Option<Bytes>,
    /// Length of the token that was on the wire (-1 for null), for diagnostics.
    pub token_len: i32,
}

/// Equality ignores `token_len`: it describes the wire, not the message, and a decoded
/// response (token dropped) must equal itself after re-encoding.
impl PartialEq for AuthResponse {
    fn eq(&self, other: &Self) -> bool {
        self.token == other.token
    }
}

impl Default for AuthResponse {
    /// A response with a null token.
    fn default() -> Self {
        AuthResponse::with_token(None)
    }
}

impl AuthResponse {
    /// A response carrying `token`, for encoding.
    pub fn with_token(token: Option<Bytes>) -> Self {
        let token_len = token
            .as_ref()
            .map(|t| i32::try_from(t.len()).unwrap_or(i32::MAX))
            .unwrap_or(-1);
        AuthResponse { token, token_len }
    }

    /// The token, only ever set on messages built for encoding.
    pub fn token(&self) -> Option<&Bytes> {
        self.token.as_ref()
    }

    pub(crate) fn read(r: &mut Reader) -> R<Self> {
        let token_len = r.bytes()?.map(|t| t.len() as i32).unwrap_or(-1);
        Ok(AuthResponse {
            token: None,
            token_len,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(self.token.as_deref());
    }
}

impl fmt::Debug for AuthResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthResponse")
            .field("token_len", &self.token_len)
            .finish_non_exhaustive()
    }
}

/// QUERY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub query: Text,
    pub params: QueryParameters,
}

impl Query {
    pub(crate) fn read(r: &mut Reader, version: u8) -> R<Self> {
        let query = r.long_string()?;
        let params = QueryParameters::read(r, version)?;
        Ok(Query { query, params })
    }

    pub(crate) fn write(&self, w: &mut Writer, version: u8) {
        w.long_string(&self.query);
        self.params.write(w, version);
    }
}

/// PREPARE (v5 adds flags and an optional keyspace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepare {
    pub query: Text,
    /// v5 only.
    pub keyspace: Option<Text>,
}

impl Prepare {
    pub(crate) fn read(r: &mut Reader, version: u8) -> R<Self> {
        let query = r.long_string()?;
        let mut keyspace = None;
        if version >= 5 && !r.is_empty() {
            let flags = r.u32("prepare flags")?;
            if flags & 0x01 != 0 {
                keyspace = Some(r.string()?);
            }
        }
        Ok(Prepare { query, keyspace })
    }

    pub(crate) fn write(&self, w: &mut Writer, version: u8) {
        w.long_string(&self.query);
        if version >= 5 {
            w.u32(u32::from(self.keyspace.is_some()));
            if let Some(k) = &self.keyspace {
                w.string(k);
            }
        }
    }
}

/// EXECUTE (v5 adds the result metadata id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execute {
    pub id: Bytes,
    /// v5 only.
    pub result_metadata_id: Option<Bytes>,
    pub params: QueryParameters,
}

impl Execute {
    pub(crate) fn read(r: &mut Reader, version: u8) -> R<Self> {
        let id = r.short_bytes()?;
        let result_metadata_id = if version >= 5 {
            Some(r.short_bytes()?)
        } else {
            None
        };
        let params = QueryParameters::read(r, version)?;
        Ok(Execute {
            id,
            result_metadata_id,
            params,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer, version: u8) {
        w.short_bytes(&self.id);
        if version >= 5 {
            w.short_bytes(self.result_metadata_id.as_deref().unwrap_or_default());
        }
        self.params.write(w, version);
    }
}

/// The kind of a BATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchType {
    Logged,
    Unlogged,
    Counter,
}

impl BatchType {
    pub fn name(self) -> &'static str {
        match self {
            BatchType::Logged => "LOGGED",
            BatchType::Unlogged => "UNLOGGED",
            BatchType::Counter => "COUNTER",
        }
    }
}

/// One statement of a BATCH: a query string or a prepared id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchQuery {
    Query(Text),
    Prepared(Bytes),
}

/// A BATCH member with its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchStatement {
    pub query: BatchQuery,
    /// `Positional` normally; `Named` when the batch has the names flag.
    pub values: QueryValues,
}

/// BATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub batch_type: BatchType,
    pub statements: Vec<BatchStatement>,
    pub consistency: Consistency,
    pub serial_consistency: Option<Consistency>,
    pub timestamp: Option<i64>,
    /// v5 only.
    pub keyspace: Option<Text>,
    /// v5 only.
    pub now_in_seconds: Option<i32>,
}

impl Batch {
    /// Values come before the flags that say whether they carry names, so the body is
    /// parsed assuming no names (what drivers send; the batch names flag is documented
    /// as unusable, CASSANDRA-10246), and again with names if that reading does not
    /// account for the whole body with the names flag clear. Both readings can succeed
    /// on the same bytes (an empty name and an empty value look like a longer length),
    /// so the reading that ends exactly at the end of the body and agrees with its own
    /// flag wins.
    pub(crate) fn read(r: &mut Reader, version: u8) -> R<Self> {
        let mut plain = r.clone();
        let plain_read = Self::read_with(&mut plain, version, false);
        let plain_clear = matches!(&plain_read, Ok((_, flags)) if flags & qflags::NAMES == 0);
        if plain_clear && plain.is_empty() {
            *r = plain;
            return plain_read.map(|(batch, _)| batch);
        }
        let mut named = r.clone();
        if let Ok((batch, flags)) = Self::read_with(&mut named, version, true) {
            if flags & qflags::NAMES != 0 {
                *r = named;
                return Ok(batch);
            }
        }
        match plain_read {
            Ok((batch, _)) if plain_clear => {
                *r = plain;
                Ok(batch)
            }
            Ok(_) => Err(r.err("batch", ParseErrorKind::Invalid("inconsistent names flag"))),
            Err(e) => Err(e),
        }
    }

    fn read_with(r: &mut Reader, version: u8, named: bool) -> R<(Self, u32)> {
        let start = r.position();
        let batch_type = match r.u8("batch type")? {
            0 => BatchType::Logged,
            1 => BatchType::Unlogged,
            2 => BatchType::Counter,
            t => {
                return Err(ParseError::new(
                    "batch type",
                    start,
                    ParseErrorKind::UnknownTag(t.into()),
                ))
            }
        };
        let n = r.u16("batch statement count")? as usize;
        let mut statements = Vec::with_capacity(r.capacity_for(n, 7));
        for _ in 0..n {
            let kpos = r.position();
            let query = match r.u8("batch query kind")? {
                0 => BatchQuery::Query(r.long_string()?),
                1 => BatchQuery::Prepared(r.short_bytes()?),
                k => {
                    return Err(ParseError::new(
                        "batch query kind",
                        kpos,
                        ParseErrorKind::UnknownTag(k.into()),
                    ))
                }
            };
            let values = QueryValues::read(r, named)?;
            statements.push(BatchStatement { query, values });
        }
        let consistency = r.consistency()?;
        let flags = if version >= 5 {
            r.u32("batch flags")?
        } else {
            r.u8("batch flags")?.into()
        };
        let serial_consistency = if flags & qflags::SERIAL_CONSISTENCY != 0 {
            Some(r.consistency()?)
        } else {
            None
        };
        let timestamp = if flags & qflags::DEFAULT_TIMESTAMP != 0 {
            Some(r.i64("batch timestamp")?)
        } else {
            None
        };
        let keyspace = if version >= 5 && flags & qflags::KEYSPACE != 0 {
            Some(r.string()?)
        } else {
            None
        };
        let now_in_seconds = if version >= 5 && flags & qflags::NOW_IN_SECONDS != 0 {
            Some(r.i32("now_in_seconds")?)
        } else {
            None
        };
        let batch = Batch {
            batch_type,
            statements,
            consistency,
            serial_consistency,
            timestamp,
            keyspace,
            now_in_seconds,
        };
        Ok((batch, flags))
    }

    pub(crate) fn write(&self, w: &mut Writer, version: u8) {
        w.u8(match self.batch_type {
            BatchType::Logged => 0,
            BatchType::Unlogged => 1,
            BatchType::Counter => 2,
        });
        let n = u16::try_from(self.statements.len()).unwrap_or(u16::MAX);
        w.u16(n);
        let named = self
            .statements
            .iter()
            .any(|s| matches!(s.values, QueryValues::Named(_)));
        for s in self.statements.iter().take(n.into()) {
            match &s.query {
                BatchQuery::Query(q) => {
                    w.u8(0);
                    w.long_string(q);
                }
                BatchQuery::Prepared(id) => {
                    w.u8(1);
                    w.short_bytes(id);
                }
            }
            s.values.write(w);
        }
        w.consistency(self.consistency);
        let mut flags = 0u32;
        if self.serial_consistency.is_some() {
            flags |= qflags::SERIAL_CONSISTENCY;
        }
        if self.timestamp.is_some() {
            flags |= qflags::DEFAULT_TIMESTAMP;
        }
        if named {
            flags |= qflags::NAMES;
        }
        if version >= 5 {
            if self.keyspace.is_some() {
                flags |= qflags::KEYSPACE;
            }
            if self.now_in_seconds.is_some() {
                flags |= qflags::NOW_IN_SECONDS;
            }
            w.u32(flags);
        } else {
            w.u8(flags as u8);
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

/// REGISTER: event types to receive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Register {
    pub events: Vec<Text>,
}
