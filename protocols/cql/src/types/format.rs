//! Text forms of CQL values exactly as Cassandra (Java) prints them: dates, times,
//! timestamps, UUIDs, inet addresses (`InetAddress.getHostAddress`), durations
//! (`Duration.toString`), varints and decimals (`BigInteger`/`BigDecimal.toString`) and
//! floats (`Float/Double.toString`). The JSON renderer builds on these.

use std::fmt::Write;
use std::net::IpAddr;

/// Varints longer than this are printed in hex: decimal conversion is quadratic, and a
/// hostile multi-megabyte varint must not stall the decoder.
pub const MAX_DECIMAL_VARINT_BYTES: usize = 8 * 1024;

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm), valid over the whole i64-days range we feed it.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn push_year(out: &mut String, y: i64) {
    // java.time.LocalDate: 4 digits, '-' below year 0, '+' above 9999.
    if y > 9999 {
        let _ = write!(out, "+{y}");
    } else if y < 0 {
        let _ = write!(out, "-{:04}", y.unsigned_abs());
    } else {
        push_padded(out, y as u64, 4);
    }
}

/// A CQL `date` (days, epoch at 2^31) as `yyyy-mm-dd`.
pub fn date(days: u32) -> String {
    let (y, m, d) = civil_from_days(i64::from(days) - (1i64 << 31));
    let mut s = String::with_capacity(10);
    push_year(&mut s, y);
    let _ = write!(s, "-{m:02}-{d:02}");
    s
}

/// A CQL `time` (nanoseconds since midnight) as `HH:MM:SS.nnnnnnnnn`.
pub fn time(nanos: i64) -> String {
    let n = nanos.rem_euclid(86_400_000_000_000);
    let secs = n / 1_000_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        n % 1_000_000_000
    )
}

/// A CQL `timestamp` (ms since epoch) as Cassandra's JSON form
/// `yyyy-mm-dd HH:MM:SS.sssZ` (UTC).
pub fn timestamp(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let mut s = String::with_capacity(24);
    push_year(&mut s, y);
    let secs = (rem / 1000) as u64;
    // Pushed digit by digit rather than through `write!`: this runs per value.
    s.push('-');
    push_padded(&mut s, u64::from(m), 2);
    s.push('-');
    push_padded(&mut s, u64::from(d), 2);
    s.push(' ');
    push_padded(&mut s, secs / 3600, 2);
    s.push(':');
    push_padded(&mut s, (secs / 60) % 60, 2);
    s.push(':');
    push_padded(&mut s, secs % 60, 2);
    s.push('.');
    push_padded(&mut s, (rem % 1000) as u64, 3);
    s.push('Z');
    s
}

/// A UUID in the canonical lowercase 8-4-4-4-12 form.
pub fn uuid(u: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    // A table lookup per nibble, not `write!` per byte (uuids are on most write lines).
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Pushes `n` (< 10^width) zero-padded to `width` digits.
fn push_padded(out: &mut String, n: u64, width: u32) {
    let mut d = 10u64.pow(width - 1);
    while d > 0 {
        out.push(char::from(b'0' + ((n / d) % 10) as u8));
        d /= 10;
    }
}

/// An address as Java's `getHostAddress` prints it: IPv6 as eight hex groups without
/// zero compression, and IPv4-mapped IPv6 as plain IPv4 (Java returns an Inet4Address).
pub fn inet(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return v4.to_string();
            }
            let g = a.segments();
            g.iter()
                .map(|x| format!("{x:x}"))
                .collect::<Vec<_>>()
                .join(":")
        }
    }
}

/// Lowercase hex with a `0x` prefix, as Cassandra prints blobs.
pub fn blob(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 + 2 * b.len());
    s.push_str("0x");
    // A table lookup per nibble: blobs and ids are rendered on every write line, and
    // `write!` per byte was a visible share of inspect's time.
    for x in b {
        s.push(char::from(HEX[usize::from(x >> 4)]));
        s.push(char::from(HEX[usize::from(x & 0xf)]));
    }
    s
}

/// Cassandra's `Duration.toString`: `1y2mo3d4h5m6s7ms8us9ns`, a leading `-` when
/// negative, and the empty string for a zero duration.
pub fn duration(months: i32, days: i32, nanos: i64) -> String {
    fn unit(s: &mut String, dividend: u64, divisor: u64, name: &str) -> u64 {
        if dividend == 0 || dividend < divisor {
            return dividend;
        }
        let _ = write!(s, "{}{}", dividend / divisor, name);
        dividend % divisor
    }
    let mut s = String::new();
    if months < 0 || days < 0 || nanos < 0 {
        s.push('-');
    }
    let rem = unit(&mut s, u64::from(months.unsigned_abs()), 12, "y");
    unit(&mut s, rem, 1, "mo");
    unit(&mut s, u64::from(days.unsigned_abs()), 1, "d");
    if nanos != 0 {
        let mut rem = nanos.unsigned_abs();
        for (div, name) in [
            (3_600_000_000_000u64, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
        ] {
            rem = unit(&mut s, rem, div, name);
        }
        unit(&mut s, rem, 1, "ns");
    }
    s
}

/// Magnitude (big-endian) and sign of a two's complement varint.
fn varint_magnitude(b: &[u8]) -> (bool, Vec<u8>) {
    let negative = b.first().is_some_and(|x| x & 0x80 != 0);
    let mut mag = b.to_vec();
    if negative {
        // Two's complement negate: invert and add one.
        for x in mag.iter_mut() {
            *x = !*x;
        }
        for x in mag.iter_mut().rev() {
            let (v, carry) = x.overflowing_add(1);
            *x = v;
            if !carry {
                break;
            }
        }
    }
    (negative, mag)
}

/// Decimal digits of a big-endian magnitude.
fn magnitude_digits(mag: &[u8]) -> String {
    let mut limbs: Vec<u32> = Vec::with_capacity(mag.len() / 4 + 1);
    // Big-endian base-2^32 limbs.
    let lead = mag.len() % 4;
    if lead > 0 {
        limbs.push(
            mag[..lead]
                .iter()
                .fold(0u32, |a, x| (a << 8) | u32::from(*x)),
        );
    }
    for c in mag[lead..].chunks(4) {
        limbs.push(c.iter().fold(0u32, |a, x| (a << 8) | u32::from(*x)));
    }
    let mut chunks: Vec<u32> = Vec::new();
    let mut start = limbs.iter().position(|x| *x != 0).unwrap_or(limbs.len());
    while start < limbs.len() {
        let mut rem: u64 = 0;
        for l in limbs[start..].iter_mut() {
            let cur = (rem << 32) | u64::from(*l);
            *l = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
        while start < limbs.len() && limbs[start] == 0 {
            start += 1;
        }
    }
    let mut s = String::new();
    match chunks.split_last() {
        None => s.push('0'),
        Some((first, rest)) => {
            let _ = write!(s, "{first}");
            for c in rest.iter().rev() {
                let _ = write!(s, "{c:09}");
            }
        }
    }
    s
}

/// A varint in decimal (`BigInteger.toString`); very large ones in hex (see
/// [`MAX_DECIMAL_VARINT_BYTES`]).
pub fn varint(b: &[u8]) -> String {
    if b.len() > MAX_DECIMAL_VARINT_BYTES {
        return blob(b);
    }
    let (neg, mag) = varint_magnitude(b);
    let digits = magnitude_digits(&mag);
    if neg {
        format!("-{digits}")
    } else {
        digits
    }
}

/// A decimal as `BigDecimal.toString`: plain when the scale is non-negative and the
/// adjusted exponent is at least -6, scientific (`1.23E+5`) otherwise.
pub fn decimal(scale: i32, unscaled: &[u8]) -> String {
    if unscaled.len() > MAX_DECIMAL_VARINT_BYTES {
        return blob(unscaled);
    }
    let (neg, mag) = varint_magnitude(unscaled);
    let coeff = magnitude_digits(&mag);
    let len = coeff.len() as i64;
    let scale = i64::from(scale);
    let adjusted = -scale + (len - 1);
    let mut s = String::with_capacity(coeff.len() + 8);
    if neg {
        s.push('-');
    }
    if scale >= 0 && adjusted >= -6 {
        if scale == 0 {
            s.push_str(&coeff);
        } else if len > scale {
            let (a, b) = coeff.split_at((len - scale) as usize);
            s.push_str(a);
            s.push('.');
            s.push_str(b);
        } else {
            s.push_str("0.");
            for _ in 0..(scale - len) {
                s.push('0');
            }
            s.push_str(&coeff);
        }
    } else {
        let (a, b) = coeff.split_at(1);
        s.push_str(a);
        if !b.is_empty() {
            s.push('.');
            s.push_str(b);
        }
        s.push('E');
        if adjusted > 0 {
            s.push('+');
        }
        let _ = write!(s, "{adjusted}");
    }
    s
}

/// Shortest round-trip digits and decimal exponent of a finite non-zero float, from
/// Rust's `{:e}` (e.g. `1.25e3` -> ("125", 3)).
fn digits_exp(sci: &str) -> (String, i64) {
    let (mant, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Java's `Double.toString`/`Float.toString` layout applied to shortest digits: plain
/// with at least one fractional digit for 1e-3 <= |x| < 1e7, else `d.dddE[-]n`.
fn java_float(neg: bool, sci: &str, is_zero: bool) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if is_zero {
        s.push_str("0.0");
        return s;
    }
    let (digits, exp) = digits_exp(sci);
    if (-3..7).contains(&exp) {
        if exp >= 0 {
            let int_len = (exp + 1) as usize;
            if digits.len() > int_len {
                s.push_str(&digits[..int_len]);
                s.push('.');
                s.push_str(&digits[int_len..]);
            } else {
                s.push_str(&digits);
                for _ in digits.len()..int_len {
                    s.push('0');
                }
                s.push_str(".0");
            }
        } else {
            s.push_str("0.");
            for _ in 0..(-exp - 1) {
                s.push('0');
            }
            s.push_str(&digits);
        }
    } else {
        s.push_str(&digits[..1]);
        s.push('.');
        if digits.len() > 1 {
            s.push_str(&digits[1..]);
        } else {
            s.push('0');
        }
        let _ = write!(s, "E{exp}");
    }
    s
}

/// `Double.toString`, with `NaN`, `Infinity`, `-Infinity` for the non-finite values.
pub fn double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    java_float(x.is_sign_negative(), &format!("{:e}", x.abs()), x == 0.0)
}

/// `Float.toString` (shortest digits of the f32, not of its f64 widening).
pub fn float(x: f32) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    java_float(x.is_sign_negative(), &format!("{:e}", x.abs()), x == 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        assert_eq!(date(1 << 31), "1970-01-01");
        assert_eq!(date(0), "-5877641-06-23");
        assert_eq!(date(u32::MAX), "+5881580-07-11");
        assert_eq!(timestamp(0), "1970-01-01 00:00:00.000Z");
        assert_eq!(timestamp(1_614_834_367_123), "2021-03-04 05:06:07.123Z");
        assert_eq!(timestamp(-1), "1969-12-31 23:59:59.999Z");
        assert_eq!(time(3_723_000_000_004), "01:02:03.000000004");
        assert_eq!(days_from_civil(2021, 3, 4), 18_690);
        assert_eq!(civil_from_days(18_690), (2021, 3, 4));
    }

    #[test]
    fn numbers() {
        assert_eq!(varint(&[0x00]), "0");
        assert_eq!(varint(&[0x00, 0x80]), "128");
        assert_eq!(varint(&[0xff, 0x7f]), "-129");
        assert_eq!(varint(&[0x80]), "-128");
        assert_eq!(
            varint(&[0x01, 0, 0, 0, 0, 0, 0, 0, 0]),
            "18446744073709551616"
        );
        assert_eq!(decimal(2, &[0x30, 0x39]), "123.45");
        assert_eq!(decimal(0, &[0x01]), "1");
        assert_eq!(decimal(-3, &[0x01]), "1E+3");
        assert_eq!(decimal(10, &[0x01]), "1E-10");
        assert_eq!(decimal(7, &[0x01]), "1E-7");
        assert_eq!(decimal(6, &[0x01]), "0.000001");
        assert_eq!(decimal(3, &[0xff]), "-0.001");
        assert_eq!(double(1.0), "1.0");
        assert_eq!(double(1e10), "1.0E10");
        assert_eq!(double(1.5e-5), "1.5E-5");
        assert_eq!(double(0.001), "0.001");
        assert_eq!(double(123.25), "123.25");
        assert_eq!(double(-0.0), "-0.0");
        assert_eq!(float(1.1), "1.1");
        assert_eq!(float(f32::NAN), "NaN");
        assert_eq!(double(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn durations_and_addresses() {
        assert_eq!(duration(1, 2, 3 * 3_600_000_000_000), "1mo2d3h");
        assert_eq!(duration(14, 0, 0), "1y2mo");
        assert_eq!(duration(0, -1, -1_500_000), "-1d1ms500us");
        assert_eq!(duration(0, 0, 0), "");
        assert_eq!(inet(&"::1".parse().unwrap()), "0:0:0:0:0:0:0:1");
        assert_eq!(inet(&"::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(uuid(&[0x12; 16]), "12121212-1212-1212-1212-121212121212");
    }
}
