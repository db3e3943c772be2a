//! What a store says, for people and programs: `tidemark log` (the mutations) and
//! `tidemark status` (tidemark, counts, undecided writes, gaps, policy).
//!
//! Both open the store read-only, so they work while `tap` writes it.

pub mod chunk_map;
mod log;
mod status;
pub mod version;

pub use log::{run_log, LogOptions};
pub use status::{run_status, status, Status, StatusOptions};

use crate::capture::Timestamp;
use crate::decode::time::{parse_rfc3339, rfc3339};

/// Parses a `--since`/`--until` time: RFC 3339 UTC (`2026-11-24T10:00:00Z`, with
/// optional fraction) or seconds since the epoch (`1795478400.5`).
pub fn parse_time(s: &str) -> anyhow::Result<u64> {
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t.0);
    }
    match s.parse::<f64>() {
        Ok(secs) if (0.0..1e11).contains(&secs) => {
            Ok((secs * 1e9).round() as u64)
        }
        _ => anyhow::bail!(
            "invalid time {s:?}: give RFC 3339 UTC (2026-11-24T10:00:00Z) or seconds since the epoch"
        ),
    }
}

/// A capture time for output.
pub fn format_time(ns: u64) -> String {
    rfc3339(Timestamp(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_both_forms_and_garbage_is_an_error() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z").unwrap(), 1_000_000_000);
        assert_eq!(parse_time("1.5").unwrap(), 1_500_000_000);
        for bad in ["", "yesterday", "-1", "NaN", "1e300"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
