//! `replSetUpdatePosition`: secondaries report each member's applied and
//! durable optimes upstream; a majority of durable optimes is the commit point.

use bson::{DateTime, RawBsonRef, RawDocument};

use super::optime::OpTime;
use crate::model::fields::{self, docs_of};
use crate::model::ModelError;

/// One member's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberPosition {
    pub member_id: Option<i64>,
    pub cfgver: Option<i64>,
    pub applied_op_time: Option<OpTime>,
    pub durable_op_time: Option<OpTime>,
    pub applied_wall_time: Option<DateTime>,
    pub durable_wall_time: Option<DateTime>,
}

/// The command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePosition {
    pub optimes: Vec<MemberPosition>,
}

fn date(d: &RawDocument, key: &str) -> Option<DateTime> {
    match d.get(key).ok().flatten() {
        Some(RawBsonRef::DateTime(t)) => Some(t),
        _ => None,
    }
}

impl UpdatePosition {
    pub fn parse(d: &RawDocument) -> Result<UpdatePosition, ModelError> {
        const C: &str = "replSetUpdatePosition";
        let mut optimes = Vec::new();
        if let Some(arr) = fields::opt_array(d, "optimes", C)? {
            for m in docs_of(arr, "optimes", C)? {
                optimes.push(MemberPosition {
                    member_id: fields::opt_i64(m, "memberId", C)?,
                    cfgver: fields::opt_i64(m, "cfgver", C)?,
                    applied_op_time: OpTime::field(m, "appliedOpTime", C)?,
                    durable_op_time: OpTime::field(m, "durableOpTime", C)?,
                    applied_wall_time: date(m, "appliedWallTime"),
                    durable_wall_time: date(m, "durableWallTime"),
                });
            }
        }
        Ok(UpdatePosition { optimes })
    }

    /// The highest durable optime reached by at least `majority` members.
    pub fn majority_durable(&self, majority: usize) -> Option<OpTime> {
        let mut durable: Vec<OpTime> = self
            .optimes
            .iter()
            .filter_map(|m| m.durable_op_time)
            .collect();
        if majority == 0 || durable.len() < majority {
            return None;
        }
        durable.sort_unstable_by(|a, b| b.cmp(a));
        durable.get(majority - 1).copied()
    }
}
