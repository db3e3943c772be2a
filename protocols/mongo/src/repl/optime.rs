//! `OpTime {ts, t}`: a position in the replicated oplog.

use std::cmp::Ordering;

use bson::{RawBsonRef, RawDocument, Timestamp};

use crate::model::fields;
use crate::model::ModelError;

/// An oplog position. Ordered as mongod orders them: by term, then by
/// timestamp (time, then increment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpTime {
    pub ts: Timestamp,
    /// Election term; -1 under protocol version 0 (no terms).
    pub t: i64,
}

impl OpTime {
    /// The "uninitialized term" of protocol version 0 optimes.
    pub const UNINITIALIZED_TERM: i64 = -1;

    pub fn new(time: u32, increment: u32, t: i64) -> OpTime {
        OpTime {
            ts: Timestamp { time, increment },
            t,
        }
    }

    /// Reads `{ts: Timestamp, t: long}`.
    pub fn from_doc(d: &RawDocument) -> Result<OpTime, ModelError> {
        let ts = fields::opt_timestamp(d, "ts", "opTime")?.ok_or(ModelError::Missing {
            context: "opTime",
            field: "ts",
        })?;
        let t = fields::opt_i64(d, "t", "opTime")?.unwrap_or(Self::UNINITIALIZED_TERM);
        Ok(OpTime { ts, t })
    }

    /// Reads either a `{ts, t}` document or a bare timestamp (old servers).
    pub fn from_value(v: RawBsonRef<'_>) -> Result<Option<OpTime>, ModelError> {
        match v {
            RawBsonRef::Document(d) => Ok(Some(OpTime::from_doc(d)?)),
            RawBsonRef::Timestamp(ts) => Ok(Some(OpTime {
                ts,
                t: Self::UNINITIALIZED_TERM,
            })),
            RawBsonRef::Null => Ok(None),
            other => Err(ModelError::WrongType {
                context: "opTime",
                field: "opTime".into(),
                expected: "{ts, t} or timestamp",
                found: other.element_type(),
            }),
        }
    }

    /// Reads field `key` of `doc` as an optime.
    pub fn field(
        doc: &RawDocument,
        key: &str,
        ctx: &'static str,
    ) -> Result<Option<OpTime>, ModelError> {
        match fields::get(doc, key, ctx)? {
            Some(v) => OpTime::from_value(v),
            None => Ok(None),
        }
    }
}

impl Ord for OpTime {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.t, self.ts.time, self.ts.increment).cmp(&(o.t, o.ts.time, o.ts.increment))
    }
}

impl PartialOrd for OpTime {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_term_then_timestamp() {
        assert!(OpTime::new(5, 1, 1) < OpTime::new(5, 2, 1));
        assert!(OpTime::new(6, 0, 1) > OpTime::new(5, 9, 1));
        assert!(OpTime::new(1, 0, 2) > OpTime::new(9, 0, 1));
    }
}
