//! A small CQL lexer and token cursor for the statements the `tidemark-cql` parser
//! only classifies (SELECT, CREATE/DROP KEYSPACE and TABLE). DML goes through the
//! real parser; this one only needs what the testbed interprets.

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Unquoted names are lowercased (CQL is case-insensitive for them); quoted names
    /// keep their case.
    Ident {
        name: String,
        quoted: bool,
    },
    Str(String),
    /// Integer or float literal text, sign included.
    Num(String),
    /// Unquoted UUID.
    Uuid(String),
    /// `0x...` blob literal, prefix included.
    Blob(String),
    /// `?` (None) or `:name`.
    Marker(Option<String>),
    Sym(&'static str),
}

const SYMS: &[&str] = &[
    "<=", ">=", "!=", "(", ")", ",", ";", "*", "=", "<", ">", "{", "}", "[", "]", ":", ".", "+",
    "-",
];

fn is_uuid_at(b: &[u8]) -> bool {
    b.len() >= 36
        && b[..36].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
        && !b
            .get(36)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Splits `s` into tokens; `Err` names the offending position.
pub fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out: Vec<Tok> = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if s[i..].starts_with("--") || s[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if s[i..].starts_with("/*") {
            let end = s[i + 2..].find("*/").ok_or("unterminated comment")?;
            i += end + 4;
        } else if c == b'\'' {
            let mut v = String::new();
            let mut j = i + 1;
            loop {
                let Some(k) = s[j..].find('\'') else {
                    return Err(format!("unterminated string at {i}"));
                };
                v.push_str(&s[j..j + k]);
                j += k + 1;
                if b.get(j) == Some(&b'\'') {
                    v.push('\'');
                    j += 1;
                } else {
                    break;
                }
            }
            out.push(Tok::Str(v));
            i = j;
        } else if c == b'"' {
            let mut v = String::new();
            let mut j = i + 1;
            loop {
                let Some(k) = s[j..].find('"') else {
                    return Err(format!("unterminated quoted name at {i}"));
                };
                v.push_str(&s[j..j + k]);
                j += k + 1;
                if b.get(j) == Some(&b'"') {
                    v.push('"');
                    j += 1;
                } else {
                    break;
                }
            }
            out.push(Tok::Ident {
                name: v,
                quoted: true,
            });
            i = j;
        } else if is_uuid_at(&b[i..]) {
            out.push(Tok::Uuid(s[i..i + 36].to_string()));
            i += 36;
        } else if c == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_hexdigit() {
                j += 1;
            }
            out.push(Tok::Blob(s[i..j].to_string()));
            i = j;
        } else if c.is_ascii_digit()
            || (c == b'-'
                && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())
                && !matches!(
                    out.last(),
                    Some(Tok::Num(_) | Tok::Ident { .. } | Tok::Sym(")"))
                ))
        {
            let mut j = i + 1;
            while j < b.len()
                && (b[j].is_ascii_digit()
                    || b[j] == b'.'
                    || b[j] == b'e'
                    || b[j] == b'E'
                    || ((b[j] == b'-' || b[j] == b'+') && matches!(b[j - 1], b'e' | b'E')))
            {
                j += 1;
            }
            out.push(Tok::Num(s[i..j].to_string()));
            i = j;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            out.push(Tok::Ident {
                name: s[i..j].to_ascii_lowercase(),
                quoted: false,
            });
            i = j;
        } else if c == b'?' {
            out.push(Tok::Marker(None));
            i += 1;
        } else if c == b':' && b.get(i + 1).is_some_and(|d| d.is_ascii_alphabetic()) {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            out.push(Tok::Marker(Some(s[i + 1..j].to_ascii_lowercase())));
            i = j;
        } else if let Some(sym) = SYMS.iter().find(|p| s[i..].starts_with(**p)) {
            out.push(Tok::Sym(sym));
            i += sym.len();
        } else {
            return Err(format!("unexpected character {:?} at {i}", c as char));
        }
    }
    Ok(out)
}

/// A cursor over tokens with the usual parser helpers. Errors are messages for a
/// SyntaxError reply.
pub struct Cursor {
    toks: Vec<Tok>,
    pos: usize,
}

impl Cursor {
    pub fn new(s: &str) -> Result<Cursor, String> {
        Ok(Cursor {
            toks: lex(s)?,
            pos: 0,
        })
    }

    pub fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    pub fn next_tok(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += usize::from(t.is_some());
        t
    }

    /// At the end, ignoring a trailing `;`.
    pub fn at_end(&mut self) -> bool {
        if self.peek() == Some(&Tok::Sym(";")) {
            self.pos += 1;
        }
        self.pos >= self.toks.len()
    }

    /// Consumes the unquoted keyword `k` (lowercase) if it is next.
    pub fn kw(&mut self, k: &str) -> bool {
        match self.peek() {
            Some(Tok::Ident {
                name,
                quoted: false,
            }) if name == k => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    pub fn expect_kw(&mut self, k: &str) -> Result<(), String> {
        if self.kw(k) {
            Ok(())
        } else {
            Err(format!(
                "expected {} near {:?}",
                k.to_uppercase(),
                self.peek()
            ))
        }
    }

    pub fn sym(&mut self, s: &str) -> bool {
        match self.peek() {
            Some(Tok::Sym(x)) if *x == s => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    pub fn expect_sym(&mut self, s: &str) -> Result<(), String> {
        if self.sym(s) {
            Ok(())
        } else {
            Err(format!("expected '{s}' near {:?}", self.peek()))
        }
    }

    pub fn ident(&mut self) -> Result<String, String> {
        match self.next_tok() {
            Some(Tok::Ident { name, .. }) => Ok(name),
            t => Err(format!("expected a name, found {t:?}")),
        }
    }

    /// `name` or `ks.name`.
    pub fn qualified(&mut self) -> Result<(Option<String>, String), String> {
        let a = self.ident()?;
        if self.sym(".") {
            Ok((Some(a), self.ident()?))
        } else {
            Ok((None, a))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexes_the_usual_forms() {
        let t = lex("SELECT \"Mixed\", x FROM ks.t WHERE k = 'it''s' AND n >= -3 AND u = 123e4567-e89b-12d3-a456-426614174000 AND b = 0xff AND m = ? AND z = :zz -- c").unwrap();
        assert!(t.contains(&Tok::Ident {
            name: "Mixed".into(),
            quoted: true
        }));
        assert!(t.contains(&Tok::Str("it's".into())));
        assert!(t.contains(&Tok::Num("-3".into())));
        assert!(t.contains(&Tok::Uuid("123e4567-e89b-12d3-a456-426614174000".into())));
        assert!(t.contains(&Tok::Blob("0xff".into())));
        assert!(t.contains(&Tok::Marker(None)));
        assert!(t.contains(&Tok::Marker(Some("zz".into()))));
        assert!(lex("'open").is_err());
        assert!(lex("a ~ b").is_err());
    }
}
