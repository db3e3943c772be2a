//! A statement text parsed once and kept with its parse: prepared statements are
//! parsed when their PREPARE is answered, not on every EXECUTE, and repeated QUERY
//! texts are looked up in a small per-flow cache.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tidemark_cql::statement::{parse_statement, Statement};

/// A parse that borrows from the text it came from.
type Parse<'a> = Result<Statement<'a>, String>;

self_cell::self_cell!(
    /// The text and the parse borrowing from it, kept together without `unsafe`:
    /// `self_cell` guarantees the text outlives the parse and never moves.
    struct TextWithParse {
        owner: Arc<str>,
        #[covariant]
        dependent: Parse,
    }
);

/// A statement text and its parse (the parse error's message when it did not parse).
pub struct ParsedText {
    inner: TextWithParse,
}

impl ParsedText {
    pub fn new(text: impl Into<Arc<str>>) -> Self {
        let inner = TextWithParse::new(text.into(), |t| {
            parse_statement(t).map_err(|e| e.to_string())
        });
        ParsedText { inner }
    }

    pub fn text(&self) -> &str {
        self.inner.borrow_owner()
    }

    /// The text, shared (write lines keep it without a copy).
    pub fn shared(&self) -> &Arc<str> {
        self.inner.borrow_owner()
    }

    /// The shared text, for cache keys.
    fn shared_text(&self) -> Arc<str> {
        self.inner.borrow_owner().clone()
    }

    /// The parse, or the parser's error message.
    pub fn statement(&self) -> Result<&Statement<'_>, &str> {
        match self.inner.borrow_dependent() {
            Ok(s) => Ok(s),
            Err(e) => Err(e.as_str()),
        }
    }
}

impl std::fmt::Debug for ParsedText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedText")
            .field("text", &self.text())
            .field("parsed", &self.statement().is_ok())
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
            let key = p.shared_text();
            self.order.push_back(key.clone());
            self.map.insert(key, p.clone());
        }
        p
    }
}
