//! INSERT, UPDATE and DELETE, and their USING clauses.

use nom::branch::alt;
use nom::combinator::{cut, opt, value as to};
use nom::sequence::preceded;
use nom::Parser;

use super::ast::{
    AssignOp, Assignment, Delete, Insert, InsertValues, JsonDefault, Update, UsingParam,
};
use super::error::{fail, fatal, PResult};
use super::lex::{ident, ident_tuple, if_not_exists, kw, qualified_name, sym, ws};
use super::literal::string_literal;
use super::relation::{column_ref, condition, where_clause};
use super::term::Term;
use super::values::{list_of, marker, term};

/// An integer literal or a marker (`intValue` of the grammar).
fn int_value(i: &str) -> PResult<'_, Term<'_>> {
    let (i, ()) = ws(i)?;
    if let Ok((r, m)) = marker(i) {
        return Ok((r, Term::Bind(m)));
    }
    match super::literal::constant(i) {
        Ok((r, t @ Term::Integer(_))) => Ok((r, t)),
        _ => fail(i, "an integer or a bind marker"),
    }
}

/// `USING TIMESTAMP x AND TTL y` (either order, each optional but at least one).
pub(crate) fn using_clause(i: &str) -> PResult<'_, Vec<UsingParam<'_>>> {
    let Ok((mut r, _)) = kw("USING")(i) else {
        return Ok((i, Vec::new()));
    };
    let mut out = Vec::new();
    loop {
        let (r2, p) = if let Ok((r2, _)) = kw("TIMESTAMP")(r) {
            let (r2, t) = int_value(r2)?;
            (r2, UsingParam::Timestamp(t))
        } else if let Ok((r2, _)) = kw("TTL")(r) {
            let (r2, t) = int_value(r2)?;
            (r2, UsingParam::Ttl(t))
        } else {
            return fatal(r, "TIMESTAMP or TTL");
        };
        out.push(p);
        match kw("AND")(r2) {
            Ok((r3, _)) => r = r3,
            Err(_) => return Ok((r2, out)),
        }
    }
}

/// After `INSERT`.
pub(crate) fn insert(i: &str) -> PResult<'_, Insert<'_>> {
    let (r, _) = kw("INTO")(i)?;
    let (r, table) = qualified_name(r)?;
    let (r, values) = if let Ok((r, _)) = kw("JSON")(r) {
        let (r, ()) = ws(r)?;
        let (r, value) = match marker(r) {
            Ok((r, m)) => (r, Term::Bind(m)),
            Err(_) => {
                let (r, s) = string_literal(r)?;
                (r, Term::Str(s))
            }
        };
        let default_kind = alt((
            to(JsonDefault::Null, kw("NULL")),
            to(JsonDefault::Unset, kw("UNSET")),
        ));
        let (r, default) = opt(preceded(kw("DEFAULT"), cut(default_kind))).parse(r)?;
        (r, InsertValues::Json { value, default })
    } else {
        let (r, cols) = ident_tuple(r)?;
        let (r, _) = kw("VALUES")(r)?;
        let at = r;
        let (r, vals) = list_of(r, "(", ")", 0)?;
        if vals.len() != cols.len() {
            return fatal(at, "as many values as columns");
        }
        (
            r,
            InsertValues::Columns(cols.into_iter().zip(vals).collect()),
        )
    };
    let (r, if_not_exists) = if_not_exists(r)?;
    let (r, using) = using_clause(r)?;
    Ok((
        r,
        Insert {
            table,
            values,
            if_not_exists,
            using,
        },
    ))
}

/// After `UPDATE`.
pub(crate) fn update(i: &str) -> PResult<'_, Update<'_>> {
    let (r, table) = qualified_name(i)?;
    let (r, using) = using_clause(r)?;
    let (mut r, _) = kw("SET")(r)?;
    let mut assignments = Vec::new();
    loop {
        let (r2, a) = assignment(r)?;
        assignments.push(a);
        match sym(",")(r2) {
            Ok((r3, _)) => r = r3,
            Err(_) => {
                r = r2;
                break;
            }
        }
    }
    let (r, _) = kw("WHERE")(r)?;
    let (r, where_clause) = where_clause(r)?;
    let (r, cond) = opt_condition(r)?;
    Ok((
        r,
        Update {
            table,
            using,
            assignments,
            where_clause,
            condition: cond,
        },
    ))
}

fn opt_condition(i: &str) -> PResult<'_, Option<super::ast::Condition<'_>>> {
    match kw("IF")(i) {
        Ok((r, _)) => {
            let (r, c) = condition(r)?;
            Ok((r, Some(c)))
        }
        Err(_) => Ok((i, None)),
    }
}

/// One SET item (`columnOperation` of the grammar).
fn assignment(i: &str) -> PResult<'_, Assignment<'_>> {
    let (r, column) = ident(i)?;
    if let Ok((r2, _)) = sym("[")(r) {
        let (r2, key) = term(r2, 0)?;
        let (r2, _) = sym("]")(r2)?;
        let (r2, _) = sym("=")(r2)?;
        let (r2, value) = term(r2, 0)?;
        return Ok((
            r2,
            Assignment {
                column,
                op: AssignOp::SetElement { key, value },
            },
        ));
    }
    if let Ok((r2, _)) = sym(".")(r) {
        let (r2, field) = ident(r2)?;
        let (r2, _) = sym("=")(r2)?;
        let (r2, value) = term(r2, 0)?;
        return Ok((
            r2,
            Assignment {
                column,
                op: AssignOp::SetField { field, value },
            },
        ));
    }
    if let Ok((r2, _)) = sym("+=")(r) {
        let (r2, t) = term(r2, 0)?;
        return Ok((
            r2,
            Assignment {
                column,
                op: AssignOp::Add(t),
            },
        ));
    }
    if let Ok((r2, _)) = sym("-=")(r) {
        let (r2, t) = term(r2, 0)?;
        return Ok((
            r2,
            Assignment {
                column,
                op: AssignOp::Subtract(t),
            },
        ));
    }
    let (r, _) = sym("=")(r)?;
    // `c = c + v` / `c = c - v`: the right side starts with the column itself
    // (a word that lexes as a constant, like the duration `P1D`, is a value).
    if super::literal::constant(r).is_err() {
        if let Ok((r2, same)) = ident(r) {
            let sign = sym("+")(r2)
                .map(|(r3, _)| (r3, true))
                .or_else(|_| sym("-")(r2).map(|(r3, _)| (r3, false)));
            if let Ok((r3, plus)) = sign {
                if same != column {
                    return fatal(r, "the assigned column (only `c = c + v` / `c = c - v`)");
                }
                let (r3, t) = term(r3, 0)?;
                let op = if plus {
                    AssignOp::Add(t)
                } else {
                    AssignOp::Subtract(t)
                };
                return Ok((r3, Assignment { column, op }));
            }
        }
    }
    let (r, t) = term(r, 0)?;
    // `c = v + c`: prepend.
    if let Ok((r2, _)) = sym("+")(r) {
        let at = r2;
        let (r2, same) = ident(r2)?;
        if same != column {
            return fatal(at, "the assigned column (only `c = v + c`)");
        }
        return Ok((
            r2,
            Assignment {
                column,
                op: AssignOp::Prepend(t),
            },
        ));
    }
    Ok((
        r,
        Assignment {
            column,
            op: AssignOp::Set(t),
        },
    ))
}

/// After `DELETE`.
pub(crate) fn delete(i: &str) -> PResult<'_, Delete<'_>> {
    let mut columns = Vec::new();
    let mut r = i;
    if kw("FROM")(i).is_err() {
        loop {
            let (r2, c) = column_ref(r)?;
            columns.push(c);
            match sym(",")(r2) {
                Ok((r3, _)) => r = r3,
                Err(_) => {
                    r = r2;
                    break;
                }
            }
        }
    }
    let (r, _) = kw("FROM")(r)?;
    let (r, table) = qualified_name(r)?;
    let (r, timestamp) = match kw("USING")(r) {
        Ok((r2, _)) => {
            let (r2, _) = kw("TIMESTAMP")(r2)?;
            let (r2, t) = int_value(r2)?;
            (r2, Some(t))
        }
        Err(_) => (r, None),
    };
    let (r, _) = kw("WHERE")(r)?;
    let (r, where_clause) = where_clause(r)?;
    let (r, cond) = opt_condition(r)?;
    Ok((
        r,
        Delete {
            columns,
            table,
            timestamp,
            where_clause,
            condition: cond,
        },
    ))
}
