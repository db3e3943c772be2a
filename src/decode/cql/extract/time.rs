//! Parsing the text forms Cassandra accepts for timestamp, date, time and duration
//! literals, so a literal can be rendered as the value Cassandra stores.

use tidemark_cql::types::format::days_from_civil;

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `yyyy-mm-dd` → days since the epoch.
fn ymd(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut it = s.splitn(3, '-');
    let y = num(it.next()?)?;
    let m = u32::try_from(num(it.next()?)?).ok()?;
    let d = u32::try_from(num(it.next()?)?).ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(if neg { -y } else { y }, m, d))
}

/// A `date` literal: `yyyy-mm-dd` or the raw unsigned day number (epoch at 2^31).
pub fn parse_date(s: &str) -> Option<u32> {
    if let Some(n) = num(s) {
        return u32::try_from(n).ok();
    }
    u32::try_from(ymd(s)? + (1i64 << 31)).ok()
}

/// A `time` literal: `HH:MM:SS[.fffffffff]` → nanoseconds since midnight.
pub fn parse_time(s: &str) -> Option<i64> {
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut it = hms.split(':');
    let h = num(it.next()?)?;
    let m = num(it.next()?)?;
    let sec = it.next().map(num).unwrap_or(Some(0))?;
    if it.next().is_some() || h > 23 || m > 59 || sec > 59 || frac.len() > 9 {
        return None;
    }
    let f = if frac.is_empty() {
        0
    } else {
        num(frac)? * 10i64.pow(9 - frac.len() as u32)
    };
    Some(((h * 60 + m) * 60 + sec) * 1_000_000_000 + f)
}

/// A `timestamp` literal: milliseconds as an integer, or `yyyy-mm-dd[( |T)HH:MM[:SS[.fff]]][zone]`
/// with zone `Z`, `±hh`, `±hhmm` or `±hh:mm` (UTC when absent, the usual coordinator
/// default) → milliseconds since the epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let date_len = s
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == ' ' || *c == 'T' || *c == 'Z' || *c == '+')
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    // A trailing `-hhmm` zone after a bare date is ambiguous with the date itself;
    // Cassandra's formats all put a time before a numeric zone, so only take the first
    // three dash-separated fields as the date.
    let (date, rest) = s.split_at(date_len);
    let days = ymd(date)?;
    let rest = rest.trim_start_matches([' ', 'T']);
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zone_at);
    let time = time.trim();
    let nanos = if time.is_empty() {
        0
    } else {
        parse_time(time)?
    };
    let offset_min = parse_zone(zone.trim())?;
    let ms = days * 86_400_000 + nanos / 1_000_000 - offset_min * 60_000;
    if time.split_once('.').is_some_and(|(_, f)| f.len() > 3) {
        return None;
    }
    Some(ms)
}

fn parse_zone(z: &str) -> Option<i64> {
    if z.is_empty()
        || z.eq_ignore_ascii_case("z")
        || z.eq_ignore_ascii_case("utc")
        || z.eq_ignore_ascii_case("gmt")
    {
        return Some(0);
    }
    let (sign, rest) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    let (h, m) = match digits.len() {
        2 => (num(&digits)?, 0),
        4 => (num(&digits[..2])?, num(&digits[2..])?),
        _ => return None,
    };
    Some(sign * (h * 60 + m))
}

/// A duration literal (`1y2mo3w4d5h6m7s8ms9us10ns`, ISO 8601 `P1Y2M3DT4H5M6S`, `P2W`,
/// or `P0001-02-03T04:05:06`), optionally negative → (months, days, nanoseconds).
pub fn parse_duration(s: &str) -> Option<(i32, i32, i64)> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (months, days, nanos) = if let Some(iso) = body.strip_prefix(['P', 'p']) {
        iso_duration(iso)?
    } else {
        unit_duration(body)?
    };
    let sign = if neg { -1 } else { 1 };
    Some((
        i32::try_from(months * sign).ok()?,
        i32::try_from(days * sign).ok()?,
        nanos.checked_mul(sign)?,
    ))
}

fn unit_duration(s: &str) -> Option<(i64, i64, i64)> {
    let lower = s.to_ascii_lowercase();
    let b = lower.as_bytes();
    let (mut months, mut days, mut nanos) = (0i64, 0i64, 0i64);
    let mut i = 0;
    if b.is_empty() {
        return None;
    }
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n = num(&lower[start..i])?;
        let ustart = i;
        while i < b.len() && !b[i].is_ascii_digit() {
            i += 1;
        }
        let unit = &lower[ustart..i];
        let ns = |mult: i64| n.checked_mul(mult);
        match unit {
            "y" => months = months.checked_add(n.checked_mul(12)?)?,
            "mo" => months = months.checked_add(n)?,
            "w" => days = days.checked_add(n.checked_mul(7)?)?,
            "d" => days = days.checked_add(n)?,
            "h" => nanos = nanos.checked_add(ns(3_600_000_000_000)?)?,
            "m" => nanos = nanos.checked_add(ns(60_000_000_000)?)?,
            "s" => nanos = nanos.checked_add(ns(1_000_000_000)?)?,
            "ms" => nanos = nanos.checked_add(ns(1_000_000)?)?,
            "us" | "µs" => nanos = nanos.checked_add(ns(1_000)?)?,
            "ns" => nanos = nanos.checked_add(n)?,
            _ => return None,
        }
    }
    Some((months, days, nanos))
}

fn iso_duration(s: &str) -> Option<(i64, i64, i64)> {
    let upper = s.to_ascii_uppercase();
    if upper.contains('-') {
        // Alternative form P0001-02-03T04:05:06.
        let (date, time) = upper.split_once('T').unwrap_or((&upper, "00:00:00"));
        let mut d = date.split('-');
        let (y, mo, dd) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
        let mut t = time.split(':');
        let (h, mi, se) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
        let nanos = ((h * 60 + mi) * 60 + se).checked_mul(1_000_000_000)?;
        return Some((y * 12 + mo, dd, nanos));
    }
    let (date, time) = upper.split_once('T').unwrap_or((&upper, ""));
    let (mut months, mut days, mut nanos) = (0i64, 0i64, 0i64);
    for (n, unit) in designators(date)? {
        match unit {
            'Y' => months += n.checked_mul(12)?,
            'M' => months += n,
            'W' => days += n.checked_mul(7)?,
            'D' => days += n,
            _ => return None,
        }
    }
    for (n, unit) in designators(time)? {
        nanos += match unit {
            'H' => n.checked_mul(3_600_000_000_000)?,
            'M' => n.checked_mul(60_000_000_000)?,
            'S' => n.checked_mul(1_000_000_000)?,
            _ => return None,
        };
    }
    Some((months, days, nanos))
}

fn designators(s: &str) -> Option<Vec<(i64, char)>> {
    let mut out = Vec::new();
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            out.push((num(&digits)?, c));
            digits.clear();
        }
    }
    digits.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.5+0000"), Some(1500));
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.500+0000"), Some(1500));
        assert_eq!(parse_timestamp("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_timestamp("1970-01-02"), Some(86_400_000));
        assert_eq!(
            parse_timestamp("2024-01-02 03:04:05.678Z"),
            Some(1_704_164_645_678)
        );
        assert_eq!(parse_timestamp("12345"), Some(12345));
        assert_eq!(parse_timestamp("not a time"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("1mo2d3h"),
            Some((1, 2, 3 * 3_600_000_000_000))
        );
        assert_eq!(parse_duration("-P2W"), Some((0, -14, 0)));
        assert_eq!(
            parse_duration("P1Y2M3DT4H5M6S"),
            Some((14, 3, 14_706_000_000_000))
        );
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(parse_date("1970-01-01"), Some(1 << 31));
        assert_eq!(parse_time("23:59:59.999999999"), Some(86_399_999_999_999));
        assert_eq!(parse_time("25:00:00"), None);
    }
}
