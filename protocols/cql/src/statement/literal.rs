//! Constant literals: strings, numbers, durations, UUIDs, blobs, booleans, NaN and
//! Infinity, following Cassandra's Lexer.g.
//!
//! Cassandra's lexer is longest-match, so the order of attempts here matters:
//! blob (`0x…`) and UUID before integers (a UUID may start with digits), durations
//! before integers (`1h` is a duration), and UUIDs before identifiers (a UUID may
//! start with letters).

use std::borrow::Cow;

use super::error::{fail, fatal, PError, PResult};
use super::lex::{is_ident_char, quoted_body, ws};
use super::term::Term;

/// `'…'` with `''` escapes, or `$$…$$` taken verbatim.
pub(crate) fn string_literal(i: &str) -> PResult<'_, Cow<'_, str>> {
    let (i, ()) = ws(i)?;
    if let Some(body) = i.strip_prefix("$$") {
        return match body.find("$$") {
            Some(n) => Ok((&body[n + 2..], Cow::Borrowed(&body[..n]))),
            None => fatal(i, "closing '$$'"),
        };
    }
    let Some(body) = i.strip_prefix('\'') else {
        return fail(i, "a string literal");
    };
    quoted_body(body, '\'').ok_or(nom::Err::Failure(PError {
        input: i,
        expected: "closing quote",
    }))
}

fn digits(s: &str) -> usize {
    s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len())
}

/// A constant literal (not NULL, not a marker).
pub(crate) fn constant(i: &str) -> PResult<'_, Term<'_>> {
    let (i, ()) = ws(i)?;
    if i.starts_with('\'') || i.starts_with("$$") {
        let (rest, s) = string_literal(i)?;
        return Ok((rest, Term::Str(s)));
    }
    if let Some(n) = hex_len(i) {
        return Ok((&i[n..], Term::Blob(&i[..n])));
    }
    if let Some(n) = uuid_len(i) {
        return Ok((&i[n..], Term::Uuid(&i[..n])));
    }
    if let Some(n) = duration_len(i) {
        return Ok((&i[n..], Term::Duration(&i[..n])));
    }
    if let Some((n, float)) = number_len(i) {
        let text = &i[..n];
        return Ok((
            &i[n..],
            if float {
                Term::Float(text)
            } else {
                Term::Integer(text)
            },
        ));
    }
    for (w, t) in [
        ("true", Term::Bool(true)),
        ("false", Term::Bool(false)),
        ("NaN", Term::Float("NaN")),
        ("-NaN", Term::Float("-NaN")),
        ("Infinity", Term::Float("Infinity")),
        ("-Infinity", Term::Float("-Infinity")),
    ] {
        if let Some(head) = i.get(..w.len()) {
            if head.eq_ignore_ascii_case(w) && !i[w.len()..].starts_with(is_ident_char) {
                let t = match t {
                    Term::Float(_) => Term::Float(head),
                    other => other,
                };
                return Ok((&i[w.len()..], t));
            }
        }
    }
    fail(i, "a constant")
}

/// True if a whole word lexes as a duration (`P1D`, `PT5M`): Cassandra's lexer
/// prefers DURATION over IDENT for the same text, so such a word is never a name.
pub(crate) fn is_duration_word(w: &str) -> bool {
    w.starts_with('P') && duration_len(w) == Some(w.len())
}

/// `0x` followed by hex digits (possibly none, as in Cassandra).
fn hex_len(i: &str) -> Option<usize> {
    let b = i.as_bytes();
    if b.len() >= 2 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X') {
        let n = 2 + i[2..]
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(i.len() - 2);
        // `0x12g` is not a blob followed by an identifier; let it fail as a whole.
        if i[n..].starts_with(is_ident_char) {
            return None;
        }
        return Some(n);
    }
    None
}

/// `8-4-4-4-12` hex digits.
fn uuid_len(i: &str) -> Option<usize> {
    let b = i.as_bytes();
    if b.len() < 36 {
        return None;
    }
    for (k, &c) in b[..36].iter().enumerate() {
        let ok = if matches!(k, 8 | 13 | 18 | 23) {
            c == b'-'
        } else {
            c.is_ascii_hexdigit()
        };
        if !ok {
            return None;
        }
    }
    if b.len() > 36 && is_ident_char(b[36] as char) {
        return None;
    }
    Some(36)
}

/// Integer or float: `-?\d+(\.\d*)?([eE][+-]?\d+)?`. Returns (length, is_float).
fn number_len(i: &str) -> Option<(usize, bool)> {
    let sign = usize::from(i.starts_with('-'));
    let int = digits(&i[sign..]);
    if int == 0 {
        return None;
    }
    let mut n = sign + int;
    let mut float = false;
    // `1..2` is a range in collection slices: the dot belongs to `..`.
    if i[n..].starts_with('.') && !i[n..].starts_with("..") {
        float = true;
        n += 1 + digits(&i[n + 1..]);
    }
    let rest = &i[n..];
    if rest.starts_with(['e', 'E']) {
        let r = &rest[1..];
        let s = usize::from(r.starts_with(['+', '-']));
        let e = digits(&r[s..]);
        if e > 0 {
            float = true;
            n += 1 + s + e;
        }
    }
    Some((n, float))
}

/// Duration units, longest first so `ms` wins over `m` and `mo` over `m`.
const UNITS: &[&str] = &["mo", "ms", "us", "µs", "ns", "y", "w", "d", "h", "m", "s"];

/// Any of Cassandra's duration forms: `1h30m`, `P1Y2M`, `PT1H`, `P2W`,
/// `P0001-02-03T04:05:06`, each with an optional leading `-`.
fn duration_len(i: &str) -> Option<usize> {
    let sign = usize::from(i.starts_with('-'));
    let s = &i[sign..];
    let n = if s.starts_with('P') {
        iso_duration_len(s)?
    } else {
        unit_duration_len(s)?
    };
    if s[n..].starts_with(is_ident_char) {
        return None;
    }
    Some(sign + n)
}

fn unit_duration_len(s: &str) -> Option<usize> {
    let mut n = 0;
    loop {
        let d = digits(&s[n..]);
        if d == 0 {
            break;
        }
        let rest = &s[n + d..];
        let unit = UNITS.iter().find(|u| {
            rest.get(..u.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(u))
        })?;
        n += d + unit.len();
    }
    (n > 0).then_some(n)
}

/// `s` starts with `P`.
fn iso_duration_len(s: &str) -> Option<usize> {
    // Alternative format P0001-02-03T04:05:06.
    let alt = s.as_bytes().get(1..20).is_some_and(|b| {
        b.iter().enumerate().all(|(k, &c)| match k {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            _ => c.is_ascii_digit(),
        })
    });
    if alt {
        return Some(20);
    }
    // Designators: number-letter groups with letters in a fixed order.
    let mut n = 1;
    let take = |n: usize, letters: &[u8]| -> Option<(usize, u8)> {
        let d = digits(&s[n..]);
        let c = *s.as_bytes().get(n + d)?;
        (d > 0 && letters.contains(&c)).then_some((n + d + 1, c))
    };
    // Week form P<n>W stands alone.
    if let Some((m, b'W')) = take(n, b"W") {
        return Some(m);
    }
    let mut order = b"YMD".as_slice();
    let mut any = false;
    while let Some((m, c)) = take(n, order) {
        let pos = order.iter().position(|&x| x == c)?;
        order = &order[pos + 1..];
        n = m;
        any = true;
    }
    if s[n..].starts_with('T') {
        let mut order = b"HMS".as_slice();
        let mut t = n + 1;
        let mut time = false;
        while let Some((m, c)) = take(t, order) {
            let pos = order.iter().position(|&x| x == c)?;
            order = &order[pos + 1..];
            t = m;
            time = true;
        }
        if !time {
            return None;
        }
        n = t;
        any = true;
    }
    any.then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Term<'_> {
        let (rest, t) = constant(s).unwrap();
        assert_eq!(rest, "", "unconsumed input for {s}");
        t
    }

    #[test]
    fn numbers() {
        assert_eq!(c("-12"), Term::Integer("-12"));
        assert_eq!(c("1.5e-3"), Term::Float("1.5e-3"));
        assert_eq!(c("1."), Term::Float("1."));
        assert_eq!(c("-Infinity"), Term::Float("-Infinity"));
        assert_eq!(c("nan"), Term::Float("nan"));
    }

    #[test]
    fn durations() {
        for d in [
            "1h30m",
            "1mo2d",
            "3ms",
            "12µs",
            "-2w",
            "P1Y2M3D",
            "P1DT2H",
            "PT5M",
            "P2W",
            "P0001-02-03T04:05:06",
            "-P1D",
        ] {
            assert_eq!(c(d), Term::Duration(d), "{d}");
        }
        assert!(duration_len("P").is_none());
        assert!(duration_len("PT").is_none());
    }

    #[test]
    fn strings_and_ids() {
        assert_eq!(c("'it''s'"), Term::Str("it's".into()));
        assert_eq!(c("$$a'b$$"), Term::Str("a'b".into()));
        let u = "756716f7-2e54-4715-9f00-91dcbea6cf50";
        assert_eq!(c(u), Term::Uuid(u));
        assert_eq!(c("0xCAFE"), Term::Blob("0xCAFE"));
        assert!(matches!(constant("'open"), Err(nom::Err::Failure(_))));
    }
}
