//! Capture times as RFC 3339 strings, the form every JSON line uses.

use crate::capture::Timestamp;

/// `2026-11-24T17:41:19.123456Z`: UTC, microseconds (what pcap files carry).
pub fn rfc3339(ts: Timestamp) -> String {
    let secs = (ts.0 / 1_000_000_000) as i64;
    let micros = (ts.0 % 1_000_000_000) / 1_000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(Timestamp(0)), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 12:34:56.789012 UTC = 951827696 s
        assert_eq!(
            rfc3339(Timestamp(951_827_696_789_012_345)),
            "2000-02-29T12:34:56.789012Z"
        );
        // 2026-11-24 00:00:00 UTC = 1795478400 s
        assert_eq!(
            rfc3339(Timestamp(1_795_478_400_000_000_000)),
            "2026-11-24T00:00:00.000000Z"
        );
    }
}
