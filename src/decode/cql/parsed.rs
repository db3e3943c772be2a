//! A statement text parsed once and kept with its parse: prepared statements are
//! parsed when their PREPARE is answered, not on every EXECUTE, and repeated QUERY
//! texts are looked up in a small per-flow cache.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tidemark_cql::statement::{parse_statement, Statement};

/// A statement text and its parse (the parse error's message when it did not parse).
pub struct ParsedText {
    // Declared before `text`: dropped first, since it borrows from it.
    stmt: Result<Statement<'static>, String>,
    text: Arc<str>,
}

impl ParsedText {
    pub fn new(text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        // SAFETY: the parse borrows the heap string `text` points to. That string is
        // never mutated or freed while `self` exists (the `Arc` is private and dropped
        // after `stmt`, see the field order), and moving an `Arc` does not move its
        // data. The `'static` lifetime never escapes: `statement` hands the parse out
        // with the lifetime of `&self`.
        let s: &'static str = unsafe { &*(text.as_ref() as *const str) };
        let stmt = parse_statement(s).map_err(|e| e.to_string());
        ParsedText { stmt, text }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parse, or the parser's error message.
    pub fn statement(&self) -> Result<&Statement<'_>, &str> {
        match &self.stmt {
            Ok(s) => Ok(s),
            Err(e) => Err(e.as_str()),
        }
    }
}

impl std::fmt::Debug for ParsedText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedText")
            .field("text", &self.text)
            .field("parsed", &self.stmt.is_ok())
            .finish()
    }
}

/// Texts longer than this are parsed every time (not worth keeping).
const MAX_CACHED_LEN: usize = 16 << 10;

/// A small FIFO-evicted cache of parsed QUERY texts.
#[derive(Debug)]
pub struct TextCache {
    map: HashMap<Arc<str>, Arc<ParsedText>>,
    order: VecDeque<Arc<str>>,
    cap: usize,
}

impl TextCache {
    pub fn new(cap: usize) -> Self {
        TextCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    /// The parse of `text`, from the cache or parsed now.
    pub fn get(&mut self, text: &str) -> Arc<ParsedText> {
        if let Some(p) = self.map.get(text) {
            return p.clone();
        }
        let p = Arc::new(ParsedText::new(text));
        if text.len() <= MAX_CACHED_LEN && self.cap > 0 {
            if self.map.len() >= self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
            let key = p.text.clone();
            self.order.push_back(key.clone());
            self.map.insert(key, p.clone());
        }
        p
    }
}
