//! The wall clock in the units Cassandra stores: write timestamps in microseconds,
//! TTLs and local deletion times in seconds, both since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub fn now_secs() -> i32 {
    (now_micros() / 1_000_000) as i32
}
