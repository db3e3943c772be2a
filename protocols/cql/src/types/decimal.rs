//! Exact decimal text: the one canonical form of a decimal number, and the JSON
//! number for it when a 64-bit JSON number holds it exactly. Used by the `SELECT JSON`
//! renderer (varints, decimals) and by the decoder's rendering of CQL literals, so the
//! two cannot disagree on when a number is rounded.

use serde_json::{Number, Value as Json};

/// (negative, significant digits, exponent of the last digit) of decimal text such as
/// `-12.50e3`, or `None` when it is not one; zero is `(false, "", 0)`.
pub fn canonical(s: &str) -> Option<(bool, String, i64)> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (
            s.get(..i)?,
            s.get(i + 1..)?
                .trim_start_matches('+')
                .parse::<i64>()
                .ok()?,
        ),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut digits: String = int.chars().chain(frac.chars()).collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
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

/// A JSON number for exact decimal text when JSON (an i64, u64 or f64 that prints
/// back to the same decimal) holds it exactly, else the text as a string: nothing is
/// silently rounded.
pub fn exact_number(text: &str) -> Json {
    if let Ok(i) = text.parse::<i64>() {
        return Json::Number(i.into());
    }
    if let Ok(u) = text.parse::<u64>() {
        return Json::Number(u.into());
    }
    if let Ok(f) = text.parse::<f64>() {
        if f.is_finite() && canonical(text) == canonical(&format!("{f:e}")) {
            if let Some(n) = Number::from_f64(f) {
                return Json::Number(n);
            }
        }
    }
    Json::String(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_canonical_form_for_equal_decimals() {
        assert_eq!(canonical("12.50"), canonical("1.25e1"));
        assert_eq!(canonical("+0.0"), Some((false, String::new(), 0)));
        assert_eq!(canonical("-0012"), Some((true, "12".into(), 0)));
        assert_eq!(canonical(""), None);
        assert_eq!(canonical("1x"), None);
    }

    #[test]
    fn only_exact_numbers_become_json_numbers() {
        assert_eq!(exact_number("42"), Json::from(42));
        assert_eq!(exact_number("0.5"), Json::from(0.5));
        assert_eq!(exact_number("0.1"), Json::from(0.1));
        assert_eq!(
            exact_number("123456789012345678901234567890"),
            Json::String("123456789012345678901234567890".into())
        );
        assert_eq!(exact_number("NaN"), Json::String("NaN".into()));
    }
}
