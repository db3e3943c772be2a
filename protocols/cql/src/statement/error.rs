//! Errors: the internal nom error that tracks the furthest failure, and the public
//! [`StatementError`] with a byte offset, what was expected and what was found.
//!
//! Parsers fail with a static description of what they wanted; when alternatives
//! fail, the one that got furthest into the input wins, because that is almost
//! always the branch the author meant and the most useful thing to report.

use std::fmt;

use nom::error::{ErrorKind, ParseError};

/// Internal parse error: where parsing stopped and what it wanted there.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PError<'a> {
    pub input: &'a str,
    pub expected: &'static str,
}

/// Result type of every internal parser.
pub(crate) type PResult<'a, O> = nom::IResult<&'a str, O, PError<'a>>;

impl<'a> ParseError<&'a str> for PError<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        // Only nom's own combinators get here; our parsers name what they expect.
        PError {
            input,
            expected: "valid syntax",
        }
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        // Keep the failure that consumed more input (less remaining).
        if other.input.len() <= self.input.len() {
            other
        } else {
            self
        }
    }
}

/// A recoverable failure: lets `alt`/`opt` try something else.
pub(crate) fn fail<'a, O>(input: &'a str, expected: &'static str) -> PResult<'a, O> {
    Err(nom::Err::Error(PError { input, expected }))
}

/// An unrecoverable failure: the statement is certainly malformed here.
pub(crate) fn fatal<'a, O>(input: &'a str, expected: &'static str) -> PResult<'a, O> {
    Err(nom::Err::Failure(PError { input, expected }))
}

/// Why a statement could not be parsed. The caller can still record the statement
/// as "unknown" with its text; the offset points into that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementError {
    /// Byte offset in the statement text where parsing stopped.
    pub offset: usize,
    /// What the parser wanted at that offset (e.g. `"VALUES"`, `"a term"`).
    pub expected: &'static str,
    /// Up to 24 characters of the text at the offset, or `"end of input"`.
    pub found: String,
}

impl StatementError {
    /// Builds the public error from an internal one, against the whole statement text.
    pub(crate) fn from_perror(whole: &str, e: &PError<'_>) -> Self {
        Self::at(whole, whole.len().saturating_sub(e.input.len()), e.expected)
    }

    pub(crate) fn at(whole: &str, offset: usize, expected: &'static str) -> Self {
        let offset = offset.min(whole.len());
        let rest = whole.get(offset..).unwrap_or("");
        let found = if rest.is_empty() {
            "end of input".to_string()
        } else {
            rest.chars().take(24).collect()
        };
        StatementError {
            offset,
            expected,
            found,
        }
    }
}

impl fmt::Display for StatementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CQL syntax error at byte {}: expected {}, found {:?}",
            self.offset, self.expected, self.found
        )
    }
}

impl std::error::Error for StatementError {}
