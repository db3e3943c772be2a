//! Lexical layer: whitespace and comments, keywords, punctuation and identifiers.
//!
//! The parser is scannerless: every token parser first skips whitespace and
//! comments, so grammar code never has to think about them. Keywords are matched
//! case-insensitively and only on a word boundary (`INTO` does not match `INTOx`).

use std::borrow::Cow;

use nom::multi::separated_list1;
use nom::sequence::delimited;
use nom::Parser;

use super::error::{fail, fatal, PResult};
use super::term::Ident;

/// Keywords that can never be identifiers (Cassandra's reserved_keywords.txt), plus
/// the literal words that lex as constants (`true`, `false`, `NaN`, `Infinity`).
/// Every other keyword is usable as a name, as in Cassandra.
const RESERVED: &[&str] = &[
    "ADD",
    "ALLOW",
    "ALTER",
    "AND",
    "APPLY",
    "ASC",
    "AUTHORIZE",
    "BATCH",
    "BEGIN",
    "BY",
    "COLUMNFAMILY",
    "CREATE",
    "DELETE",
    "DESC",
    "DESCRIBE",
    "DROP",
    "ENTRIES",
    "EXECUTE",
    "FROM",
    "FULL",
    "GRANT",
    "IF",
    "IN",
    "INDEX",
    "INFINITY",
    "INSERT",
    "INTO",
    "IS",
    "KEYSPACE",
    "LIMIT",
    "MATERIALIZED",
    "MODIFY",
    "NAN",
    "NORECURSIVE",
    "NOT",
    "NULL",
    "OF",
    "ON",
    "OR",
    "ORDER",
    "PRIMARY",
    "RENAME",
    "REVOKE",
    "SCHEMA",
    "SELECT",
    "SET",
    "TABLE",
    "TO",
    "TOKEN",
    "TRUNCATE",
    "UNLOGGED",
    "UPDATE",
    "USE",
    "USING",
    "VIEW",
    "WHERE",
    "WITH",
    "TRUE",
    "FALSE",
];

/// True if `word` cannot be used as an unquoted identifier.
pub(crate) fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

pub(crate) fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Skips whitespace and comments (`-- …`, `// …` to end of line, `/* … */`).
/// An unterminated block comment is a fatal error.
pub(crate) fn ws(mut i: &str) -> PResult<'_, ()> {
    loop {
        let t = i.trim_start_matches([' ', '\t', '\n', '\r']);
        if t.starts_with("--") || t.starts_with("//") {
            i = match t.find(['\n', '\r']) {
                Some(n) => &t[n..],
                None => "",
            };
        } else if let Some(body) = t.strip_prefix("/*") {
            match body.find("*/") {
                Some(n) => i = &body[n + 2..],
                None => return fatal(t, "end of comment '*/'"),
            }
        } else {
            return Ok((t, ()));
        }
    }
}

/// A case-insensitive keyword on a word boundary.
pub(crate) fn kw(word: &'static str) -> impl Fn(&str) -> PResult<'_, &str> {
    move |i| {
        let (i, ()) = ws(i)?;
        let n = word.len();
        match i.get(..n) {
            Some(head) if head.eq_ignore_ascii_case(word) && !i[n..].starts_with(is_ident_char) => {
                Ok((&i[n..], head))
            }
            _ => fail(i, word),
        }
    }
}

/// True if the next token is the keyword `word` (consumes nothing).
pub(crate) fn peek_kw(i: &str, word: &'static str) -> bool {
    kw(word)(i).is_ok()
}

/// Punctuation. Callers order alternatives longest first (`<=` before `<`).
pub(crate) fn sym(s: &'static str) -> impl Fn(&str) -> PResult<'_, &str> {
    move |i| {
        let (i, ()) = ws(i)?;
        match i.strip_prefix(s) {
            Some(rest) => Ok((rest, &i[..s.len()])),
            None => fail(i, s),
        }
    }
}

/// A raw unquoted word `[A-Za-z][A-Za-z0-9_]*` (no reserved check, no lowercasing).
pub(crate) fn word(i: &str) -> PResult<'_, &str> {
    let (i, ()) = ws(i)?;
    if !i.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return fail(i, "an identifier");
    }
    let n = i.find(|c: char| !is_ident_char(c)).unwrap_or(i.len());
    Ok((&i[n..], &i[..n]))
}

/// Lowercases an unquoted name, borrowing when it is already lowercase.
pub(crate) fn lower(w: &str) -> Cow<'_, str> {
    if w.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(w.to_ascii_lowercase())
    } else {
        Cow::Borrowed(w)
    }
}

/// A quoted name `"…"` with `""` escapes. Empty names are rejected.
pub(crate) fn quoted_name(i: &str) -> PResult<'_, Cow<'_, str>> {
    let (i, ()) = ws(i)?;
    let Some(body) = i.strip_prefix('"') else {
        return fail(i, "a quoted name");
    };
    let (rest, content) =
        quoted_body(body, '"').ok_or(nom::Err::Failure(super::error::PError {
            input: i,
            expected: "closing '\"'",
        }))?;
    if content.is_empty() {
        return fatal(i, "a non-empty quoted name");
    }
    Ok((rest, content))
}

/// Reads up to the closing `quote`, unescaping doubled quotes. Returns the rest after
/// the closing quote and the content; `None` if unterminated.
pub(crate) fn quoted_body(body: &str, quote: char) -> Option<(&str, Cow<'_, str>)> {
    let mut owned: Option<String> = None;
    let mut start = 0;
    let mut pos = 0;
    loop {
        let n = body[pos..].find(quote)? + pos;
        if body[n + 1..].starts_with(quote) {
            // Doubled quote: an escaped quote character.
            let s = owned.get_or_insert_with(String::new);
            s.push_str(&body[start..=n]);
            pos = n + 2;
            start = pos;
        } else {
            let content = match owned {
                Some(mut s) => {
                    s.push_str(&body[start..n]);
                    Cow::Owned(s)
                }
                None => Cow::Borrowed(&body[..n]),
            };
            return Some((&body[n + 1..], content));
        }
    }
}

/// An identifier (column, table, keyspace, field name): an unreserved word,
/// lowercased, or a quoted name kept as is.
pub(crate) fn ident(i: &str) -> PResult<'_, Ident<'_>> {
    let (i, ()) = ws(i)?;
    if i.starts_with('"') {
        let (rest, name) = quoted_name(i)?;
        return Ok((rest, Ident(name)));
    }
    let (rest, w) = word(i)?;
    if is_reserved(w) {
        return fail(i, "an identifier (this word is reserved)");
    }
    if super::literal::is_duration_word(w) {
        return fail(i, "an identifier (this word is a duration)");
    }
    Ok((rest, Ident(lower(w))))
}

/// An identifier that may also be a string literal (role and user names).
pub(crate) fn ident_or_string(i: &str) -> PResult<'_, Ident<'_>> {
    let (i, ()) = ws(i)?;
    if i.starts_with('\'') || i.starts_with("$$") {
        let (rest, s) = super::literal::string_literal(i)?;
        return Ok((rest, Ident(s)));
    }
    ident(i)
}

/// `[ks.]name`.
pub(crate) fn qualified_name(i: &str) -> PResult<'_, super::term::QualifiedName<'_>> {
    let (i, first) = ident(i)?;
    match sym(".")(i) {
        Ok((rest, _)) => {
            let (rest, name) = ident(rest)?;
            Ok((
                rest,
                super::term::QualifiedName {
                    keyspace: Some(first),
                    name,
                },
            ))
        }
        Err(_) => Ok((
            i,
            super::term::QualifiedName {
                keyspace: None,
                name: first,
            },
        )),
    }
}

/// `(a, b, c)`: one or more names in parentheses (column lists, multi-column
/// relations).
pub(crate) fn ident_tuple(i: &str) -> PResult<'_, Vec<Ident<'_>>> {
    delimited(sym("("), separated_list1(sym(","), ident), sym(")")).parse(i)
}

/// `IF NOT EXISTS` present?
pub(crate) fn if_not_exists(i: &str) -> PResult<'_, bool> {
    match kw("IF")(i) {
        Ok((r, _)) if peek_kw(r, "NOT") => {
            let (r, _) = kw("NOT")(r)?;
            let (r, _) = kw("EXISTS")(r)?;
            Ok((r, true))
        }
        _ => Ok((i, false)),
    }
}

/// `IF EXISTS` present?
pub(crate) fn if_exists(i: &str) -> PResult<'_, bool> {
    match kw("IF")(i) {
        Ok((r, _)) if peek_kw(r, "EXISTS") => Ok((kw("EXISTS")(r)?.0, true)),
        _ => Ok((i, false)),
    }
}

/// Skips one lexical token of any kind (used to pass over the parts of DDL and
/// SELECT statements that classification does not need). Strings, quoted names and
/// comments are skipped whole so that their content is never mistaken for syntax.
pub(crate) fn skip_token(i: &str) -> PResult<'_, &str> {
    let (i, ()) = ws(i)?;
    let mut chars = i.chars();
    let Some(c) = chars.next() else {
        return fail(i, "a token");
    };
    let n = if c == '\'' || (c == '$' && i.starts_with("$$")) {
        let (rest, _) = super::literal::string_literal(i)?;
        i.len() - rest.len()
    } else if c == '"' {
        let (rest, _) = quoted_name(i)?;
        i.len() - rest.len()
    } else if is_ident_char(c) {
        i.find(|c: char| !is_ident_char(c) && c != '-' && c != '.')
            .unwrap_or(i.len())
    } else {
        c.len_utf8()
    };
    Ok((&i[n..], &i[..n]))
}

/// Skips to the end of the statement: the end of input or a `;` (not consumed).
pub(crate) fn skip_to_end(mut i: &str) -> PResult<'_, ()> {
    loop {
        let (r, ()) = ws(i)?;
        if r.is_empty() || r.starts_with(';') {
            return Ok((r, ()));
        }
        i = skip_token(r)?.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_whitespace() {
        assert_eq!(ws("  -- x\n /* y */ // z\r\nA").unwrap().0, "A");
        assert_eq!(ws("-- only").unwrap().0, "");
        assert!(matches!(ws("/* open"), Err(nom::Err::Failure(_))));
    }

    #[test]
    fn keywords_need_boundary() {
        assert!(kw("INTO")("into t").is_ok());
        assert!(kw("INTO")(" InTo(").is_ok());
        assert!(kw("INTO")("intox").is_err());
    }

    #[test]
    fn identifiers() {
        assert_eq!(ident("FooBar").unwrap().1, Ident::new("foobar"));
        assert_eq!(ident("\"Foo\"\"Bar\"").unwrap().1, Ident::new("Foo\"Bar"));
        assert!(ident("select").is_err());
        assert_eq!(ident("ttl").unwrap().1, Ident::new("ttl"));
        assert!(ident("\"\"").is_err());
    }
}
