//! Text forms of literals that Cassandra converts on write: dates, timestamps,
//! times, durations (`1mo2d3h`), decimals and integers too big for 64 bits. Each
//! returns the serialized value, or `None` for text the type does not accept.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `yyyy-mm-dd` → days since the epoch.
fn civil_days(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mut it = body.splitn(3, '-');
    let y: i64 = num(it.next()?)?;
    let m: u32 = num(it.next()?)?;
    let d: u32 = num(it.next()?)?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y > 100_000_000 {
        return None;
    }
    Some(days_from_civil(if neg { -y } else { y }, m, d))
}

/// A `date` value: days with the epoch at 2^31.
pub fn date(s: &str) -> Option<Vec<u8>> {
    let days = civil_days(s)?;
    let v = u32::try_from(days + (1i64 << 31)).ok()?;
    Some(v.to_be_bytes().to_vec())
}

/// `HH:MM:SS[.fffffffff]` → nanoseconds since midnight.
fn time_nanos(s: &str) -> Option<i64> {
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut it = hms.split(':');
    let h: i64 = num(it.next()?)?;
    let m: i64 = num(it.next()?)?;
    let sec: i64 = it.next().map_or(Some(0), num)?;
    if it.next().is_some() || h > 23 || m > 59 || sec > 59 || frac.len() > 9 {
        return None;
    }
    let frac_ns: i64 = if frac.is_empty() {
        0
    } else {
        num::<i64>(frac)? * 10i64.pow(9 - frac.len() as u32)
    };
    Some(((h * 60 + m) * 60 + sec) * 1_000_000_000 + frac_ns)
}

pub fn time(s: &str) -> Option<Vec<u8>> {
    Some(time_nanos(s)?.to_be_bytes().to_vec())
}

/// `yyyy-mm-dd[( |T)HH:MM[:SS[.fff]]][Z|(+|-)hh[:]mm]` → milliseconds (UTC when no zone).
pub fn timestamp(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    let (date_part, rest) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let days = civil_days(date_part)?;
    let (clock, zone_min) = if rest.is_empty() {
        ("00:00:00", 0)
    } else if let Some(c) = rest.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let z = rest[i + 1..].replace(':', "");
        let (hh, mm) = (
            num::<i64>(z.get(..2)?)?,
            num::<i64>(z.get(2..).filter(|x| !x.is_empty()).unwrap_or("0"))?,
        );
        let sign = if &rest[i..=i] == "-" { -1 } else { 1 };
        (&rest[..i], sign * (hh.min(99) * 60 + mm.min(99)))
    } else {
        (rest, 0)
    };
    let clock = if clock.matches(':').count() == 1 {
        format!("{clock}:00")
    } else {
        clock.to_string()
    };
    let nanos = time_nanos(&clock)?;
    let ms = days
        .checked_mul(86_400_000)?
        .checked_add(nanos / 1_000_000 - zone_min * 60_000)?;
    Some(ms.to_be_bytes().to_vec())
}

/// Cassandra's unsigned vint: the count of extra bytes as leading 1 bits.
fn vint(v: u64, out: &mut Vec<u8>) {
    let bits = 64 - v.leading_zeros() as usize;
    let extra = (1..=8)
        .find(|n| bits <= 7 * (n + 1))
        .map_or(0, |n| n)
        .min(8);
    let extra = if bits <= 7 { 0 } else { extra };
    let size = extra + 1;
    let mut bytes = vec![0u8; size];
    for (i, b) in bytes.iter_mut().enumerate() {
        let shift = 8 * (size - 1 - i);
        *b = if shift < 64 { (v >> shift) as u8 } else { 0 };
    }
    bytes[0] |= !(0xffu8.checked_shr(extra as u32).unwrap_or(0));
    out.extend(bytes);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// `[-]1y2mo3w4d5h6m7s8ms9us10ns` → months, days, nanoseconds as Cassandra's vints.
pub fn duration(s: &str) -> Option<Vec<u8>> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if rest.is_empty() {
        return None;
    }
    let (mut months, mut days, mut nanos) = (0i64, 0i64, 0i64);
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: i64 = num(&rest[..n_end])?;
        rest = &rest[n_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest[..unit_end].to_ascii_lowercase();
        rest = &rest[unit_end..];
        let (field, per): (&mut i64, i64) = match unit.as_str() {
            "y" => (&mut months, 12),
            "mo" => (&mut months, 1),
            "w" => (&mut days, 7),
            "d" => (&mut days, 1),
            "h" => (&mut nanos, 3_600_000_000_000),
            "m" => (&mut nanos, 60_000_000_000),
            "s" => (&mut nanos, 1_000_000_000),
            "ms" => (&mut nanos, 1_000_000),
            "us" | "µs" => (&mut nanos, 1_000),
            "ns" => (&mut nanos, 1),
            _ => return None,
        };
        *field = field.checked_add(n.checked_mul(per)?)?;
    }
    if i32::try_from(months).is_err() || i32::try_from(days).is_err() {
        return None;
    }
    let sign = if neg { -1 } else { 1 };
    let mut out = Vec::new();
    for v in [sign * months, sign * days, sign * nanos] {
        vint(zigzag(v), &mut out);
    }
    Some(out)
}

/// Decimal digits (optionally signed) → minimal big-endian two's complement.
pub fn big_integer(s: &str) -> Option<Vec<u8>> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut mag: Vec<u8> = vec![0];
    for d in digits.bytes() {
        let mut carry = u32::from(d - b'0');
        for b in mag.iter_mut().rev() {
            let v = u32::from(*b) * 10 + carry;
            *b = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.insert(0, carry as u8);
            carry >>= 8;
        }
    }
    // Room for the sign bit.
    mag.insert(0, 0);
    if neg {
        for b in mag.iter_mut() {
            *b = !*b;
        }
        for b in mag.iter_mut().rev() {
            let (v, overflow) = b.overflowing_add(1);
            *b = v;
            if !overflow {
                break;
            }
        }
    }
    let mut i = 0;
    while i + 1 < mag.len()
        && ((mag[i] == 0 && mag[i + 1] & 0x80 == 0) || (mag[i] == 0xff && mag[i + 1] & 0x80 != 0))
    {
        i += 1;
    }
    Some(mag[i..].to_vec())
}

/// `[-]digits[.digits][e[-]n]` → `int scale` + varint unscaled.
pub fn decimal(s: &str) -> Option<Vec<u8>> {
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (
            &s[..i],
            s[i + 1..].trim_start_matches('+').parse::<i64>().ok()?,
        ),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = format!("{int}{frac}");
    let scale = i32::try_from(frac.len() as i64 - exp).ok()?;
    let mut out = scale.to_be_bytes().to_vec();
    out.extend(big_integer(&digits)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_times_and_timestamps() {
        assert_eq!(
            date("1970-01-01"),
            Some(0x8000_0000u32.to_be_bytes().to_vec())
        );
        assert_eq!(
            date("1969-12-31"),
            Some(0x7fff_ffffu32.to_be_bytes().to_vec())
        );
        assert_eq!(
            time("00:00:01.5"),
            Some(1_500_000_000i64.to_be_bytes().to_vec())
        );
        let ms = |s: &str| i64::from_be_bytes(timestamp(s).unwrap()[..].try_into().unwrap());
        assert_eq!(ms("2024-01-02 03:04:05.678+0000"), 1_704_164_645_678);
        assert_eq!(ms("2024-01-02T04:04:05.678+01:00"), 1_704_164_645_678);
        assert_eq!(ms("2024-01-02"), 1_704_153_600_000);
        assert!(timestamp("yesterday").is_none());
        assert!(date("2024-13-01").is_none());
    }

    #[test]
    fn durations_and_big_numbers() {
        // 1 month, 2 days, 3 h: zigzag 2, 4, 21600000000000 (a 7-byte vint).
        let d = duration("1mo2d3h").unwrap();
        assert_eq!(&d[..2], &[2, 4]);
        assert_eq!(d.len(), 2 + 7);
        assert_eq!(duration("-1d").unwrap(), vec![0, 1, 0]);
        assert!(duration("3 parsecs").is_none());
        assert!(
            duration("99999999999999999y").is_none(),
            "overflow is an error"
        );
        assert!(timestamp("99999999999999-01-01").is_none());
        assert_eq!(big_integer("-1").unwrap(), vec![0xff]);
        assert_eq!(big_integer("128").unwrap(), vec![0x00, 0x80]);
        assert_eq!(
            big_integer("123456789012345678901234567890").unwrap(),
            vec![0x01, 0x8e, 0xe9, 0x0f, 0xf6, 0xc3, 0x73, 0xe0, 0xee, 0x4e, 0x3f, 0x0a, 0xd2]
        );
        assert_eq!(decimal("-0.5").unwrap(), vec![0, 0, 0, 1, 0xfb]);
        assert_eq!(decimal("1.5e3").unwrap(), vec![0xff, 0xff, 0xff, 0xfe, 15]);
    }
}
