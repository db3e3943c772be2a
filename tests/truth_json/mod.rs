//! Reading the truth files of `captures/`: the drivers wrote big varints and decimals
//! as bare JSON numbers that a double cannot hold, so the text is made exact (such
//! numbers become strings of their digits) before it is parsed. Shared by the tests
//! that compare tidemark's output with those files.
#![allow(dead_code)]

/// (negative, significant digits, exponent) of decimal text.
pub fn canonical(s: &str) -> Option<(bool, String, i64)> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (
            &s[..i],
            s[i + 1..].trim_start_matches('+').parse::<i64>().ok()?,
        ),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut digits: String = int.chars().chain(frac.chars()).collect();
    let mut exp = exp - frac.len() as i64;
    while digits.ends_with('0') {
        digits.pop();
        exp += 1;
    }
    let digits = digits.trim_start_matches('0').to_string();
    if digits.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((neg, digits, exp))
}

/// JSON text with every number that a 64-bit integer or an exact double cannot hold
/// turned into a string of its digits, so it compares exactly.
pub fn exactify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    let (mut in_str, mut escaped) = (false, false);
    while let Some((i, c)) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        if c == '-' || c.is_ascii_digit() {
            let mut end = i + 1;
            while let Some(&(j, d)) = chars.peek() {
                if !matches!(d, '-' | '+' | '.' | 'e' | 'E' | '0'..='9') {
                    break;
                }
                end = j + 1;
                chars.next();
            }
            let tok = &text[i..end];
            let exact = tok.parse::<i64>().is_ok()
                || tok.parse::<u64>().is_ok()
                || tok
                    .parse::<f64>()
                    .is_ok_and(|f| canonical(tok) == canonical(&format!("{f:e}")));
            if exact {
                out.push_str(tok);
            } else {
                out.push('"');
                out.push_str(tok);
                out.push('"');
            }
            continue;
        }
        in_str = c == '"';
        out.push(c);
    }
    out
}

/// Parses a truth file's text exactly (see the module docs).
pub fn parse_exact(text: &str) -> serde_json::Value {
    serde_json::from_str(&exactify(text)).expect("truth parses")
}
