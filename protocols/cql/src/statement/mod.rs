//! CQL statement parser (nom): what a statement changes, for write extraction.
//!
//! Text in, AST out; self-contained (no dependency on the frame or value modules).
//! [`parse_statement`] parses one statement; [`parse_statements`] a script of
//! several separated by `;`. DML (INSERT, UPDATE, DELETE, BATCH) is parsed fully:
//! target table, assignments, WHERE relations, USING, IF conditions, and every bind
//! marker numbered in order with what it binds to ([`BindInfo`]). TRUNCATE and USE
//! are parsed fully too. SELECT, DDL and GRANT/REVOKE are classified (object,
//! keyspace, name, IF flags) without interpreting their bodies.
//!
//! The grammar follows Cassandra's `Parser.g`/`Lexer.g` (5.0): case-insensitive
//! keywords, reserved vs. unreserved keywords, `--`/`//`/`/* */` comments, all
//! literal forms. Parsing never panics, and recursion is bounded by [`MAX_DEPTH`].
//!
//! ```
//! use tidemark_cql::statement::*;
//! let s = parse_statement("UPDATE ks.t SET v = ? WHERE k = ? IF EXISTS").unwrap();
//! assert_eq!(s.bind_markers[0].target, BindTarget::Column(Ident::new("v")));
//! assert_eq!(s.table().unwrap().resolve(None).unwrap().to_string(), "ks.t");
//! ```

mod ast;
mod batch;
mod binds;
mod ddl;
mod dml;
mod error;
mod lex;
mod literal;
mod relation;
mod render;
mod term;
mod values;

pub use ast::*;
pub use binds::{number_bind_markers, BindInfo, BindTarget};
pub use error::StatementError;
pub use term::{ArithOp, BindMarker, CqlType, Ident, QualifiedName, TableRef, Term, NATIVE_TYPES};
pub use values::MAX_DEPTH;

use error::{fail, PResult};
use lex::{ident, kw, qualified_name, skip_to_end, skip_token, sym, ws};

/// Parses exactly one statement (an optional trailing `;` and comments allowed).
pub fn parse_statement(text: &str) -> Result<Statement<'_>, StatementError> {
    let (rest, stmt) = statement(text).map_err(|e| to_error(text, e))?;
    let end = sym(";")(rest).map(|(r, _)| r).unwrap_or(rest);
    match ws(end) {
        Ok(("", ())) => Ok(stmt),
        Ok((r, ())) => Err(StatementError::at(
            text,
            text.len() - r.len(),
            "end of statement",
        )),
        Err(e) => Err(to_error(text, e)),
    }
}

/// Parses a script of statements separated by `;`. Each entry is the statement's
/// text (trimmed, without `;`) and its parse result; after a malformed statement,
/// parsing resumes after the next `;` (or after `APPLY BATCH` for a batch).
pub fn parse_statements(text: &str) -> Vec<(&str, Result<Statement<'_>, StatementError>)> {
    let mut out = Vec::new();
    let mut i = text;
    loop {
        let Ok((r, ())) = ws(i) else {
            // Unterminated comment: report it and stop.
            let offset = text.len() - i.len();
            let e = StatementError::at(text, offset, "end of comment '*/'");
            out.push((i.trim(), Err(e)));
            return out;
        };
        if r.is_empty() {
            return out;
        }
        if let Some(r2) = r.strip_prefix(';') {
            i = r2;
            continue;
        }
        let start = r;
        let base = text.len() - start.len();
        match statement(start) {
            Ok((rest, stmt)) if at_end(rest) => {
                let body = &start[..start.len() - rest.len()];
                out.push((body.trim_end(), Ok(stmt)));
                i = rest;
            }
            result => {
                let err = match result {
                    Ok((rest, _)) => StatementError::at(text, text.len() - rest.len(), "';'"),
                    Err(e) => shift(to_error(start, e), base, text),
                };
                let rest = recover(start);
                let body = &start[..start.len() - rest.len()];
                out.push((body.trim_end(), Err(err)));
                i = rest;
            }
        }
    }
}

fn at_end(rest: &str) -> bool {
    match ws(rest) {
        Ok((r, ())) => r.is_empty() || r.starts_with(';'),
        Err(_) => false,
    }
}

fn shift(mut e: StatementError, base: usize, whole: &str) -> StatementError {
    e = StatementError::at(whole, e.offset + base, e.expected);
    e
}

/// The end of a malformed statement: the next top-level `;` (past `APPLY BATCH` for
/// a batch), lexically, so `;` inside strings or comments does not count.
fn recover(start: &str) -> &str {
    let batch = kw("BEGIN")(start).is_ok();
    let mut i = start;
    let mut seen_apply = false;
    loop {
        let Ok((r, ())) = ws(i) else { return "" };
        if r.is_empty() {
            return r;
        }
        if r.starts_with(';') && (!batch || seen_apply) {
            return r;
        }
        if kw("APPLY")(r).is_ok() {
            seen_apply = true;
        }
        i = match skip_token(r) {
            Ok((r2, _)) => r2,
            // A broken string or name: nothing after it can be trusted.
            Err(_) => return "",
        };
    }
}

fn to_error(text: &str, e: nom::Err<error::PError<'_>>) -> StatementError {
    match e {
        nom::Err::Error(p) | nom::Err::Failure(p) => StatementError::from_perror(text, &p),
        nom::Err::Incomplete(_) => StatementError::at(text, text.len(), "more input"),
    }
}

/// One statement, without its trailing `;`.
fn statement(i: &str) -> PResult<'_, Statement<'_>> {
    let (start, ()) = ws(i)?;
    let (r, mut kind) = statement_kind(start)?;
    let text = start[..start.len() - r.len()].trim_end();
    match &mut kind {
        StatementKind::Schema(s) => s.text = text,
        StatementKind::Access(a) => a.text = text,
        StatementKind::Other(o) => o.text = text,
        StatementKind::Select(s) => s.text = text,
        _ => {}
    }
    let bind_markers = number_bind_markers(&mut kind);
    Ok((r, Statement { kind, bind_markers }))
}

fn statement_kind(i: &str) -> PResult<'_, StatementKind<'_>> {
    let Some(w) = ddl::leading_word(i) else {
        return fail(i, "a statement");
    };
    let r = &i[w.len()..];
    let upper = w.to_ascii_uppercase();
    match upper.as_str() {
        "INSERT" => {
            dml::insert(r).map(|(r, s)| (r, StatementKind::Modification(Modification::Insert(s))))
        }
        "UPDATE" => {
            dml::update(r).map(|(r, s)| (r, StatementKind::Modification(Modification::Update(s))))
        }
        "DELETE" => {
            dml::delete(r).map(|(r, s)| (r, StatementKind::Modification(Modification::Delete(s))))
        }
        "BEGIN" => batch::batch(r).map(|(r, b)| (r, StatementKind::Batch(b))),
        "TRUNCATE" => {
            let r = kw("TABLE")(r)
                .or_else(|_| kw("COLUMNFAMILY")(r))
                .map(|(r, _)| r)
                .unwrap_or(r);
            let (r, t) = qualified_name(r)?;
            Ok((r, StatementKind::Truncate(t)))
        }
        "USE" => {
            let (r, ks) = ident(r)?;
            Ok((r, StatementKind::Use(ks)))
        }
        "SELECT" => ddl::select(r).map(|(r, s)| (r, StatementKind::Select(s))),
        "CREATE" | "ALTER" | "DROP" => {
            let action = match upper.as_str() {
                "CREATE" => SchemaAction::Create,
                "ALTER" => SchemaAction::Alter,
                _ => SchemaAction::Drop,
            };
            ddl::schema_change(r, action).map(|(r, s)| (r, StatementKind::Schema(s)))
        }
        "ADD" if kw("IDENTITY")(r).is_ok() => {
            ddl::schema_change(r, SchemaAction::Create).map(|(r, s)| (r, StatementKind::Schema(s)))
        }
        "GRANT" | "REVOKE" => {
            ddl::access_change(r, upper == "GRANT").map(|(r, a)| (r, StatementKind::Access(a)))
        }
        "LIST" | "DESCRIBE" | "DESC" => {
            let verb = match upper.as_str() {
                "LIST" => "LIST",
                _ => "DESCRIBE",
            };
            let (r, ()) = skip_to_end(r)?;
            Ok((r, StatementKind::Other(OtherStatement { verb, text: "" })))
        }
        _ => fail(
            i,
            "a statement (INSERT, UPDATE, DELETE, BEGIN BATCH, SELECT, CREATE, ...)",
        ),
    }
}
