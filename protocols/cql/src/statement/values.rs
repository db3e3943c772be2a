//! Parser for terms (values): constants, collections, UDT and tuple literals,
//! markers, function calls, casts, type hints and arithmetic; and for CQL types.
//!
//! Every recursive parser takes a `depth` and refuses to go deeper than
//! [`MAX_DEPTH`], so hostile input like `[[[[…` ends in an error, never a stack
//! overflow.

use super::error::{fail, fatal, PResult};
use super::lex::{ident, kw, peek_kw, sym, word, ws};
use super::literal::{constant, string_literal};
use super::term::{ArithOp, BindMarker, CqlType, Ident, QualifiedName, Term, NATIVE_TYPES};

/// Maximum nesting of literals, casts, function calls and parenthesized relations.
pub const MAX_DEPTH: usize = 48;

pub(crate) fn check_depth(i: &str, depth: usize) -> PResult<'_, ()> {
    if depth > MAX_DEPTH {
        return fatal(i, "less deeply nested input (nesting limit reached)");
    }
    Ok((i, ()))
}

/// `?` or `:name`. The index is assigned later, in statement order.
pub(crate) fn marker(i: &str) -> PResult<'_, BindMarker<'_>> {
    let (i, ()) = ws(i)?;
    if let Some(rest) = i.strip_prefix('?') {
        return Ok((
            rest,
            BindMarker {
                index: 0,
                name: None,
            },
        ));
    }
    if let Some(rest) = i.strip_prefix(':') {
        let (rest, name) = ident(rest)?;
        return Ok((
            rest,
            BindMarker {
                index: 0,
                name: Some(name),
            },
        ));
    }
    fail(i, "a bind marker")
}

/// A full term: `termAddition` of the grammar.
pub(crate) fn term(i: &str, depth: usize) -> PResult<'_, Term<'_>> {
    check_depth(i, depth)?;
    let (mut i, mut lhs) = term_mul(i, depth)?;
    // Each operator nests the AST one level deeper (left-associative), so a long
    // chain counts against the depth limit like any other nesting.
    let mut depth = depth;
    loop {
        let Some((r, op)) = arith_op(i, &[("+", ArithOp::Add), ("-", ArithOp::Sub)]) else {
            return Ok((i, lhs));
        };
        depth += 1;
        check_depth(r, depth)?;
        // `x + c` where `c` is a column is not arithmetic (list prepend): backtrack.
        match term_mul(r, depth) {
            Ok((r, rhs)) => {
                i = r;
                lhs = Term::BinaryOp {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                };
            }
            Err(nom::Err::Error(_)) => return Ok((i, lhs)),
            Err(e) => return Err(e),
        }
    }
}

fn arith_op<'a>(i: &'a str, ops: &[(&'static str, ArithOp)]) -> Option<(&'a str, ArithOp)> {
    let (i, ()) = ws(i).ok()?;
    for &(s, op) in ops {
        if let Some(r) = i.strip_prefix(s) {
            // `+=` / `-=` are assignment operators, not arithmetic.
            if !r.starts_with('=') {
                return Some((r, op));
            }
        }
    }
    None
}

fn term_mul(i: &str, depth: usize) -> PResult<'_, Term<'_>> {
    let (mut i, mut lhs) = term_group(i, depth)?;
    let mut depth = depth;
    loop {
        let ops = [
            ("*", ArithOp::Mul),
            ("/", ArithOp::Div),
            ("%", ArithOp::Rem),
        ];
        let Some((r, op)) = arith_op(i, &ops) else {
            return Ok((i, lhs));
        };
        depth += 1;
        check_depth(r, depth)?;
        match term_group(r, depth) {
            Ok((r, rhs)) => {
                i = r;
                lhs = Term::BinaryOp {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                };
            }
            Err(nom::Err::Error(_)) => return Ok((i, lhs)),
            Err(e) => return Err(e),
        }
    }
}

/// A simple term, or `- simpleTerm` when the sign is not part of a literal.
fn term_group(i: &str, depth: usize) -> PResult<'_, Term<'_>> {
    let (i, ()) = ws(i)?;
    match simple_term(i, depth) {
        Err(nom::Err::Error(e)) => match i.strip_prefix('-') {
            Some(r) => {
                let (r, t) = simple_term(r, depth + 1)?;
                Ok((r, Term::Negate(Box::new(t))))
            }
            None => Err(nom::Err::Error(e)),
        },
        other => other,
    }
}

/// `simpleTerm` of the grammar: value, function call, type hint or CAST.
pub(crate) fn simple_term(i: &str, depth: usize) -> PResult<'_, Term<'_>> {
    check_depth(i, depth)?;
    let (i, ()) = ws(i)?;
    let d = depth + 1;
    match i.as_bytes().first() {
        None => fail(i, "a term"),
        Some(b'?') | Some(b':') => marker(i).map(|(r, m)| (r, Term::Bind(m))),
        Some(b'[') => {
            let (r, items) = list_of(i, "[", "]", d)?;
            Ok((r, Term::List(items)))
        }
        Some(b'{') => brace_literal(i, d),
        Some(b'(') => paren_term(i, d),
        _ => {
            match constant(i) {
                Err(nom::Err::Error(_)) => {}
                other => return other,
            }
            if let Ok((r, _)) = kw("NULL")(i) {
                return Ok((r, Term::Null));
            }
            if peek_kw(i, "CAST") && sym("(")(kw("CAST")(i)?.0).is_ok() {
                return cast(i, d);
            }
            function_call(i, d)
        }
    }
}

/// `(type) term` type hint, or `(a, b)` tuple literal.
///
/// The type hint is tried first because a bare type is never a term: whichever
/// branch goes deep, the other fails at once, so nested parentheses cost linear
/// time (trying the tuple first would re-parse every level twice: exponential).
///
/// Exception: `('x')` is a tuple of a string, not the custom-type hint `('x')`, so a
/// string right after `(` means tuple (strings do not nest, so this stays linear).
fn paren_term(i: &str, depth: usize) -> PResult<'_, Term<'_>> {
    let (r, _) = sym("(")(i)?;
    let starts_with_string = ws(r).is_ok_and(|(r2, ())| r2.starts_with(['\'', '$']));
    if starts_with_string {
        if let Ok((r2, items)) = list_of(i, "(", ")", depth) {
            if !items.is_empty() {
                return Ok((r2, Term::Tuple(items)));
            }
        }
    }
    let hint = cql_type(r, depth).and_then(|(r2, ty)| Ok((sym(")")(r2)?.0, ty)));
    if let Err(e @ nom::Err::Failure(_)) = hint {
        return Err(e);
    }
    if let Ok((r2, ty)) = hint {
        match simple_term(r2, depth + 1) {
            Ok((r3, t)) => {
                let term = Box::new(t);
                return Ok((r3, Term::TypeHint { ty, term }));
            }
            Err(e @ nom::Err::Failure(_)) => return Err(e),
            Err(nom::Err::Error(_)) | Err(nom::Err::Incomplete(_)) => {}
        }
    }
    let (r, items) = list_of(i, "(", ")", depth)?;
    if items.is_empty() {
        return fail(i, "a term");
    }
    Ok((r, Term::Tuple(items)))
}

/// `CAST(term AS type)`.
fn cast(i: &str, depth: usize) -> PResult<'_, Term<'_>> {
    let (r, _) = kw("CAST")(i)?;
    let (r, _) = sym("(")(r)?;
    let (r, t) = simple_term(r, depth)?;
    let (r, _) = kw("AS")(r)?;
    let (r, ty) = cql_type(r, depth)?;
    let (r, _) = sym(")")(r)?;
    Ok((
        r,
        Term::Cast {
            term: Box::new(t),
            ty,
        },
    ))
}

/// `[ks.]name(args)`. Function names may be keywords such as `token` or `count`.
fn function_call(i: &str, depth: usize) -> PResult<'_, Term<'_>> {
    let (r, first) = function_ident(i)?;
    let (r, name) = match sym(".")(r) {
        Ok((r2, _)) => {
            let (r2, n) = function_ident(r2)?;
            (
                r2,
                QualifiedName {
                    keyspace: Some(first),
                    name: n,
                },
            )
        }
        Err(_) => (
            r,
            QualifiedName {
                keyspace: None,
                name: first,
            },
        ),
    };
    if sym("(")(r).is_err() {
        return fail(i, "a term");
    }
    let (r, args) = list_of(r, "(", ")", depth)?;
    Ok((r, Term::Function { name, args }))
}

fn function_ident(i: &str) -> PResult<'_, Ident<'_>> {
    match ident(i) {
        Ok(ok) => Ok(ok),
        Err(nom::Err::Error(_)) => {
            // `token` is reserved but still a function name.
            let (r, w) = kw("TOKEN")(i)?;
            Ok((r, Ident::new(super::lex::lower(w))))
        }
        Err(e) => Err(e),
    }
}

/// `open term, term, ... close` (possibly empty).
pub(crate) fn list_of<'a>(
    i: &'a str,
    open: &'static str,
    close: &'static str,
    depth: usize,
) -> PResult<'a, Vec<Term<'a>>> {
    check_depth(i, depth)?;
    let (mut r, _) = sym(open)(i)?;
    let mut items = Vec::new();
    if let Ok((r2, _)) = sym(close)(r) {
        return Ok((r2, items));
    }
    loop {
        let (r2, t) = term(r, depth + 1)?;
        items.push(t);
        if let Ok((r3, _)) = sym(",")(r2) {
            r = r3;
            continue;
        }
        let (r3, _) = sym(close)(r2)?;
        return Ok((r3, items));
    }
}

/// `{}` (empty set), `{a, b}` set, `{k: v}` map, `{field: v}` UDT.
fn brace_literal(i: &str, depth: usize) -> PResult<'_, Term<'_>> {
    let (r, _) = sym("{")(i)?;
    if let Ok((r2, _)) = sym("}")(r) {
        return Ok((r2, Term::Set(Vec::new())));
    }
    // A key that is a plain identifier followed by ':' makes this a UDT literal
    // (unless the word lexes as a constant, like the duration `P1D`).
    if constant(r).is_err() {
        if let Ok((r2, field)) = ident(r) {
            if let Ok((r3, _)) = sym(":")(r2) {
                return udt_rest(r3, field, depth + 1);
            }
        }
    }
    let (r, first) = term(r, depth + 1)?;
    if let Ok((mut r, _)) = sym(":")(r) {
        let mut entries = Vec::new();
        let mut key = first;
        loop {
            let (r2, v) = term(r, depth + 1)?;
            entries.push((key, v));
            if let Ok((r3, _)) = sym(",")(r2) {
                let (r3, k) = term(r3, depth + 1)?;
                let (r3, _) = sym(":")(r3)?;
                key = k;
                r = r3;
                continue;
            }
            let (r2, _) = sym("}")(r2)?;
            return Ok((r2, Term::Map(entries)));
        }
    }
    let mut items = vec![first];
    let mut r = r;
    loop {
        if let Ok((r2, _)) = sym(",")(r) {
            let (r2, t) = term(r2, depth + 1)?;
            items.push(t);
            r = r2;
            continue;
        }
        let (r2, _) = sym("}")(r)?;
        return Ok((r2, Term::Set(items)));
    }
}

fn udt_rest<'a>(mut r: &'a str, first: Ident<'a>, depth: usize) -> PResult<'a, Term<'a>> {
    let mut fields = Vec::new();
    let mut name = first;
    loop {
        let (r2, v) = term(r, depth)?;
        fields.push((name, v));
        if let Ok((r3, _)) = sym(",")(r2) {
            let (r3, f) = ident(r3)?;
            let (r3, _) = sym(":")(r3)?;
            name = f;
            r = r3;
            continue;
        }
        let (r2, _) = sym("}")(r2)?;
        return Ok((r2, Term::Udt(fields)));
    }
}

/// A CQL type (`comparatorType`).
pub(crate) fn cql_type(i: &str, depth: usize) -> PResult<'_, CqlType<'_>> {
    check_depth(i, depth)?;
    let (i, ()) = ws(i)?;
    if i.starts_with('\'') {
        let (r, s) = string_literal(i)?;
        return Ok((r, CqlType::Custom(s)));
    }
    let d = depth + 1;
    if i.starts_with('"') {
        let (r, name) = super::lex::qualified_name(i)?;
        return Ok((r, CqlType::Udt(name)));
    }
    let (r, w) = word(i)?;
    if super::literal::is_duration_word(w) {
        return fail(i, "a type");
    }
    let lw = w.to_ascii_lowercase();
    let generic = |n: usize| -> PResult<'_, Vec<CqlType<'_>>> {
        let (mut r2, _) = sym("<")(r)?;
        let mut args = Vec::new();
        loop {
            let (r3, t) = cql_type(r2, d)?;
            args.push(t);
            if args.len() < n || n == 0 {
                if let Ok((r4, _)) = sym(",")(r3) {
                    r2 = r4;
                    continue;
                }
            }
            let (r3, _) = sym(">")(r3)?;
            if n != 0 && args.len() != n {
                return fail(r3, "a type argument");
            }
            return Ok((r3, args));
        }
    };
    match lw.as_str() {
        "list" | "set" | "frozen" if sym("<")(r).is_ok() => {
            let (r, args) = generic(1)?;
            let Some(t) = first_boxed(args) else {
                return fail(r, "a type");
            };
            Ok((
                r,
                match lw.as_str() {
                    "list" => CqlType::List(t),
                    "set" => CqlType::Set(t),
                    _ => CqlType::Frozen(t),
                },
            ))
        }
        "map" if sym("<")(r).is_ok() => {
            let (r, args) = generic(2)?;
            let mut it = args.into_iter();
            match (it.next(), it.next()) {
                (Some(k), Some(v)) => Ok((r, CqlType::Map(Box::new(k), Box::new(v)))),
                _ => fail(r, "a map value type"),
            }
        }
        "tuple" if sym("<")(r).is_ok() => {
            let (r, args) = generic(0)?;
            Ok((r, CqlType::Tuple(args)))
        }
        "vector" if sym("<")(r).is_ok() => {
            let (r2, _) = sym("<")(r)?;
            let (r2, t) = cql_type(r2, d)?;
            let (r2, _) = sym(",")(r2)?;
            let (r2, ()) = ws(r2)?;
            let n = r2.find(|c: char| !c.is_ascii_digit()).unwrap_or(r2.len());
            if n == 0 {
                return fail(r2, "a vector dimension");
            }
            let (dim, r2) = r2.split_at(n);
            let (r2, _) = sym(">")(r2)?;
            Ok((r2, CqlType::Vector(Box::new(t), dim)))
        }
        _ => {
            let qualified = sym(".")(r).is_ok();
            if let Some(n) = NATIVE_TYPES.iter().find(|n| **n == lw && !qualified) {
                return Ok((r, CqlType::Native(n)));
            }
            let (r, name) = super::lex::qualified_name(i)?;
            Ok((r, CqlType::Udt(name)))
        }
    }
}

fn first_boxed(v: Vec<CqlType<'_>>) -> Option<Box<CqlType<'_>>> {
    v.into_iter().next().map(Box::new)
}
