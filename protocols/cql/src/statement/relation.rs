//! WHERE relations and IF conditions.
//!
//! Relations decide what a write touches: `=`/`IN` on key columns fix rows,
//! comparisons on clustering columns make ranges, `token(...)` makes partition
//! ranges; CONTAINS/LIKE are filters (see [`super::ast::RelationKind`]).

use nom::branch::alt;
use nom::bytes::complete::tag;
use nom::combinator::value;
use nom::Parser;

use super::ast::{ColumnCondition, ColumnRef, Condition, Operator, Relation, RelationLhs, Rhs};
use super::error::{fail, PResult};
use super::lex::{ident, ident_tuple, kw, peek_kw, sym, ws};
use super::term::Term;
use super::values::{check_depth, list_of, marker, term};

/// `relation (AND relation)*`.
pub(crate) fn where_clause(i: &str) -> PResult<'_, Vec<Relation<'_>>> {
    let (mut i, first) = relation(i, 0)?;
    let mut out = vec![first];
    while let Ok((r, _)) = kw("AND")(i) {
        let (r, rel) = relation(r, 0)?;
        out.push(rel);
        i = r;
    }
    Ok((i, out))
}

/// `= < <= > >= !=`, longest first.
fn comparison(i: &str) -> PResult<'_, Operator> {
    let (i, ()) = ws(i)?;
    let mut ops = alt((
        value(Operator::Lte, tag("<=")),
        value(Operator::Gte, tag(">=")),
        value(Operator::Neq, tag("!=")),
        value(Operator::Eq, tag("=")),
        value(Operator::Lt, tag("<")),
        value(Operator::Gt, tag(">")),
    ));
    let parsed: PResult<'_, Operator> = ops.parse(i);
    match parsed {
        Ok(ok) => Ok(ok),
        Err(_) => fail(i, "a comparison operator"),
    }
}

/// `IN`/`NOT IN` followed by `(terms)` or a marker (which binds the whole list).
fn in_values(i: &str, depth: usize) -> PResult<'_, Rhs<'_>> {
    let (i, ()) = ws(i)?;
    if i.starts_with('(') {
        let (r, items) = list_of(i, "(", ")", depth)?;
        return Ok((r, Rhs::List(items)));
    }
    let (r, m) = marker(i)?;
    Ok((r, Rhs::Term(Term::Bind(m))))
}

/// The operator and right side after a single column (or element/field).
/// `allow_where_only` enables BETWEEN, LIKE and IS NOT NULL, which conditions lack.
fn op_and_rhs(i: &str, depth: usize, allow_where_only: bool) -> PResult<'_, (Operator, Rhs<'_>)> {
    if let Ok((r, op)) = comparison(i) {
        let (r, t) = term(r, depth)?;
        return Ok((r, (op, Rhs::Term(t))));
    }
    if let Ok((r, _)) = kw("IN")(i) {
        let (r, rhs) = in_values(r, depth)?;
        return Ok((r, (Operator::In, rhs)));
    }
    if let Ok((r, _)) = kw("NOT")(i) {
        if let Ok((r, _)) = kw("IN")(r) {
            let (r, rhs) = in_values(r, depth)?;
            return Ok((r, (Operator::NotIn, rhs)));
        }
        let (r, _) = kw("CONTAINS")(r)?;
        let (r, key) = opt_kw(r, "KEY");
        let (r, t) = term(r, depth)?;
        let op = if key {
            Operator::NotContainsKey
        } else {
            Operator::NotContains
        };
        return Ok((r, (op, Rhs::Term(t))));
    }
    if let Ok((r, _)) = kw("CONTAINS")(i) {
        let (r, key) = opt_kw(r, "KEY");
        let (r, t) = term(r, depth)?;
        let op = if key {
            Operator::ContainsKey
        } else {
            Operator::Contains
        };
        return Ok((r, (op, Rhs::Term(t))));
    }
    if allow_where_only {
        if let Ok((r, _)) = kw("BETWEEN")(i) {
            let (r, a) = term(r, depth)?;
            let (r, _) = kw("AND")(r)?;
            let (r, b) = term(r, depth)?;
            return Ok((r, (Operator::Between, Rhs::Between(a, b))));
        }
        if let Ok((r, _)) = kw("LIKE")(i) {
            let (r, t) = term(r, depth)?;
            return Ok((r, (Operator::Like, Rhs::Term(t))));
        }
        if let Ok((r, _)) = kw("IS")(i) {
            let (r, _) = kw("NOT")(r)?;
            let (r, _) = kw("NULL")(r)?;
            return Ok((r, (Operator::IsNotNull, Rhs::None)));
        }
    }
    fail(i, "a relation operator")
}

fn opt_kw<'a>(i: &'a str, w: &'static str) -> (&'a str, bool) {
    match kw(w)(i) {
        Ok((r, _)) => (r, true),
        Err(_) => (i, false),
    }
}

/// One relation (may be wrapped in parentheses).
pub(crate) fn relation(i: &str, depth: usize) -> PResult<'_, Relation<'_>> {
    check_depth(i, depth)?;
    let (i, ()) = ws(i)?;
    if peek_kw(i, "TOKEN") {
        let (r, _) = kw("TOKEN")(i)?;
        let (r, cols) = ident_tuple(r)?;
        let (r, (op, rhs)) = op_and_rhs(r, depth, true)?;
        if !matches!(rhs, Rhs::Term(_) | Rhs::Between(..)) {
            return fail(r, "a token comparison");
        }
        return Ok((
            r,
            Relation {
                lhs: RelationLhs::Token(cols),
                op,
                rhs,
            },
        ));
    }
    if i.starts_with('(') {
        if let Ok((r, cols)) = ident_tuple(i) {
            let (r, (op, rhs)) = op_and_rhs(r, depth, true)?;
            return Ok((
                r,
                Relation {
                    lhs: RelationLhs::Tuple(cols),
                    op,
                    rhs,
                },
            ));
        }
        let (r, _) = sym("(")(i)?;
        let (r, rel) = relation(r, depth + 1)?;
        let (r, _) = sym(")")(r)?;
        return Ok((r, rel));
    }
    let (r, col) = ident(i)?;
    if let Ok((r2, _)) = sym("[")(r) {
        let (r2, key) = term(r2, depth)?;
        let (r2, _) = sym("]")(r2)?;
        let (r2, op) = comparison(r2)?;
        let (r2, t) = term(r2, depth)?;
        return Ok((
            r2,
            Relation {
                lhs: RelationLhs::Element(col, key),
                op,
                rhs: Rhs::Term(t),
            },
        ));
    }
    let (r, (op, rhs)) = op_and_rhs(r, depth, true)?;
    Ok((
        r,
        Relation {
            lhs: RelationLhs::Column(col),
            op,
            rhs,
        },
    ))
}

/// After `IF`: `EXISTS` or `cond (AND cond)*`.
pub(crate) fn condition(i: &str) -> PResult<'_, Condition<'_>> {
    if let Ok((r, _)) = kw("EXISTS")(i) {
        return Ok((r, Condition::Exists));
    }
    let (mut i, first) = column_condition(i)?;
    let mut out = vec![first];
    while let Ok((r, _)) = kw("AND")(i) {
        let (r, c) = column_condition(r)?;
        out.push(c);
        i = r;
    }
    Ok((i, Condition::Columns(out)))
}

fn column_condition(i: &str) -> PResult<'_, ColumnCondition<'_>> {
    let (r, target) = column_ref(i)?;
    let (r, (op, rhs)) = op_and_rhs(r, 0, false)?;
    Ok((r, ColumnCondition { target, op, rhs }))
}

/// `c`, `c[term]` or `c.field`.
pub(crate) fn column_ref(i: &str) -> PResult<'_, ColumnRef<'_>> {
    let (r, col) = ident(i)?;
    if let Ok((r2, _)) = sym("[")(r) {
        let (r2, key) = term(r2, 0)?;
        let (r2, _) = sym("]")(r2)?;
        return Ok((r2, ColumnRef::Element(col, key)));
    }
    if let Ok((r2, _)) = sym(".")(r) {
        let (r2, field) = ident(r2)?;
        return Ok((r2, ColumnRef::Field(col, field)));
    }
    Ok((r, ColumnRef::Column(col)))
}
