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

/// Serializes a capture time as [`rfc3339`] text: records keep times as integers
/// and only their JSON lines spell them out.
pub fn serialize_rfc3339<S: serde::Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ts))
}

/// The inverse of [`rfc3339`] for the form it writes (`YYYY-MM-DDTHH:MM:SS.ffffffZ`,
/// any number of fraction digits up to 9). `None` for anything else: the commit
/// tracker reads back the request times of `write` lines with it.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let rest = s.get(19..)?;
    let frac = match rest.strip_suffix('Z')? {
        "" => 0,
        f => {
            let digits = f.strip_prefix('.')?;
            if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|c| c.is_ascii_digit())
            {
                return None;
            }
            digits.parse::<u64>().ok()? * 10u64.pow(9 - digits.len() as u32)
        }
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs)
        .ok()
        .map(|s| Timestamp(s * 1_000_000_000 + frac))
}

/// (year, month, day) to days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn parses_what_it_formats() {
        for ns in [
            0u64,
            951_827_696_789_012_000,
            1_795_478_400_000_000_000,
            4_102_444_800_123_456_000,
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(Timestamp(ns))), Some(Timestamp(ns)));
        }
        assert_eq!(
            parse_rfc3339("2026-11-24T00:00:00Z"),
            Some(Timestamp(1_795_478_400_000_000_000))
        );
        for bad in [
            "",
            "2026-11-24",
            "2026-13-01T00:00:00Z",
            "2026-11-24T00:00:00.Z",
            "2026-11-24T00:00:00+01:00",
            "２026-11-24T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
