//! `BEGIN [UNLOGGED | COUNTER] BATCH [USING ...] stmt; ... APPLY BATCH`.
//!
//! Members are INSERT, UPDATE or DELETE; the `;` between them is optional, as in
//! Cassandra's grammar.

use nom::branch::alt;
use nom::combinator::{opt, value};
use nom::Parser;

use super::ast::{Batch, BatchKind, Modification};
use super::dml::{delete, insert, update, using_clause};
use super::error::PResult;
use super::lex::{kw, sym};

/// After `BEGIN`.
pub(crate) fn batch(i: &str) -> PResult<'_, Batch<'_>> {
    let kind = alt((
        value(BatchKind::Unlogged, kw("UNLOGGED")),
        value(BatchKind::Counter, kw("COUNTER")),
    ));
    let (r, kind) = opt(kind).parse(i)?;
    let kind = kind.unwrap_or(BatchKind::Logged);
    let (r, _) = kw("BATCH")(r)?;
    let (mut r, using) = using_clause(r)?;
    let mut statements = Vec::new();
    loop {
        if let Ok((r2, _)) = kw("APPLY")(r) {
            let (r2, _) = kw("BATCH")(r2)?;
            return Ok((
                r2,
                Batch {
                    kind,
                    using,
                    statements,
                },
            ));
        }
        let (r2, m) = member(r)?;
        statements.push(m);
        r = sym(";")(r2).map(|(r3, _)| r3).unwrap_or(r2);
    }
}

fn member(i: &str) -> PResult<'_, Modification<'_>> {
    if let Ok((r, _)) = kw("INSERT")(i) {
        let (r, s) = insert(r)?;
        return Ok((r, Modification::Insert(s)));
    }
    if let Ok((r, _)) = kw("UPDATE")(i) {
        let (r, s) = update(r)?;
        return Ok((r, Modification::Update(s)));
    }
    let (r, _) = kw("DELETE")(i).map_err(|_| {
        nom::Err::Error(super::error::PError {
            input: super::lex::ws(i).map(|(r, _)| r).unwrap_or(i),
            expected: "INSERT, UPDATE, DELETE or APPLY BATCH",
        })
    })?;
    let (r, s) = delete(r)?;
    Ok((r, Modification::Delete(s)))
}
