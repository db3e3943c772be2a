//! Classification of schema (CREATE/ALTER/DROP) and access (GRANT/REVOKE)
//! statements: which object, in which keyspace, with which IF flags.
//!
//! A backup records these as events with their text; it needs the object's
//! identity, not the full definition, so the body after the header is skipped
//! lexically (strings and comments stay intact, nothing is interpreted).

use super::ast::{AccessChange, Resource, SchemaAction, SchemaChange, SchemaObject};
use super::error::{fail, PResult};
use super::lex::{
    ident, ident_or_string, if_exists, if_not_exists, kw, peek_kw, qualified_name, skip_to_end,
    skip_token, sym, word, ws,
};
use super::term::{Ident, QualifiedName};

/// The object keyword after CREATE/ALTER/DROP.
fn object(i: &str) -> PResult<'_, SchemaObject> {
    for (w, o) in [
        ("KEYSPACE", SchemaObject::Keyspace),
        ("SCHEMA", SchemaObject::Keyspace),
        ("TABLE", SchemaObject::Table),
        ("COLUMNFAMILY", SchemaObject::Table),
        ("INDEX", SchemaObject::Index),
        ("TYPE", SchemaObject::Type),
        ("FUNCTION", SchemaObject::Function),
        ("AGGREGATE", SchemaObject::Aggregate),
        ("TRIGGER", SchemaObject::Trigger),
        ("ROLE", SchemaObject::Role),
        ("USER", SchemaObject::User),
        ("IDENTITY", SchemaObject::Identity),
    ] {
        if let Ok((r, _)) = kw(w)(i) {
            return Ok((r, o));
        }
    }
    if let Ok((r, _)) = kw("MATERIALIZED")(i) {
        let (r, _) = kw("VIEW")(r)?;
        return Ok((r, SchemaObject::MaterializedView));
    }
    fail(
        ws(i)?.0,
        "a schema object (KEYSPACE, TABLE, INDEX, TYPE, ...)",
    )
}

/// After CREATE, ALTER or DROP (or ADD for `ADD IDENTITY`). The caller fills in
/// `text` once the statement's end is known.
pub(crate) fn schema_change(i: &str, action: SchemaAction) -> PResult<'_, SchemaChange<'_>> {
    let (r, or_replace) = match kw("OR")(i) {
        Ok((r, _)) if action == SchemaAction::Create => (kw("REPLACE")(r)?.0, true),
        _ => (i, false),
    };
    let (r, custom) = match kw("CUSTOM")(r) {
        Ok((r2, _)) if action == SchemaAction::Create && peek_kw(r2, "INDEX") => (r2, true),
        _ => (r, false),
    };
    let (r, object) = object(r)?;
    if custom && object != SchemaObject::Index {
        return fail(r, "INDEX");
    }
    let (r, if_not_exists) = if action == SchemaAction::Create {
        if_not_exists(r)?
    } else {
        (r, false)
    };
    let (r, if_exists) = if action == SchemaAction::Create {
        (r, false)
    } else {
        if_exists(r)?
    };
    let mut change = SchemaChange {
        action,
        object,
        keyspace: None,
        name: None,
        on: None,
        if_exists,
        if_not_exists,
        or_replace,
        text: "",
    };
    let r = match object {
        SchemaObject::Keyspace => {
            let (r, ks) = ident(r)?;
            change.keyspace = Some(ks);
            r
        }
        SchemaObject::Role | SchemaObject::User | SchemaObject::Identity => {
            let (r, name) = ident_or_string(r)?;
            change.name = Some(name);
            r
        }
        SchemaObject::Index if action == SchemaAction::Create => {
            let r = if peek_kw(r, "ON") {
                r
            } else {
                let (r, name) = ident(r)?;
                change.name = Some(name);
                r
            };
            let (r, _) = kw("ON")(r)?;
            let (r, table) = qualified_name(r)?;
            change.on = Some(table);
            r
        }
        SchemaObject::Trigger => {
            let (r, name) = ident(r)?;
            change.name = Some(name);
            let (r, _) = kw("ON")(r)?;
            let (r, table) = qualified_name(r)?;
            change.on = Some(table);
            r
        }
        _ => {
            let (r, q) = qualified_name(r)?;
            change.keyspace = q.keyspace;
            change.name = Some(q.name);
            r
        }
    };
    let r = match object {
        SchemaObject::Table if action == SchemaAction::Create && peek_kw(r, "LIKE") => {
            let (r, _) = kw("LIKE")(r)?;
            let (r, source) = qualified_name(r)?;
            change.on = Some(source);
            r
        }
        SchemaObject::MaterializedView if action == SchemaAction::Create => {
            let (r, source) = view_base_table(r)?;
            change.on = Some(source);
            r
        }
        _ => r,
    };
    let (r, ()) = skip_to_end(r)?;
    Ok((r, change))
}

/// `AS SELECT ... FROM base ...`: the base table of a materialized view.
fn view_base_table(i: &str) -> PResult<'_, QualifiedName<'_>> {
    let (r, _) = kw("AS")(i)?;
    let (r, _) = kw("SELECT")(r)?;
    let (r, ()) = skip_until_kw(r, "FROM")?;
    let (r, _) = kw("FROM")(r)?;
    qualified_name(r)
}

/// Skips tokens (outside parentheses) until the keyword `w` is next.
pub(crate) fn skip_until_kw<'a>(mut i: &'a str, w: &'static str) -> PResult<'a, ()> {
    let mut depth = 0usize;
    loop {
        if depth == 0 && peek_kw(i, w) {
            return Ok((i, ()));
        }
        let (r, ()) = ws(i)?;
        if r.is_empty() || r.starts_with(';') {
            return fail(r, w);
        }
        let (r, tok) = skip_token(r)?;
        match tok {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth = depth.saturating_sub(1),
            _ => {}
        }
        i = r;
    }
}

const PERMISSIONS: &[&str] = &[
    "CREATE",
    "ALTER",
    "DROP",
    "SELECT_MASKED",
    "SELECT",
    "MODIFY",
    "AUTHORIZE",
    "DESCRIBE",
    "EXECUTE",
    "UNMASK",
];

/// `ALL [PERMISSIONS]` or `perm [PERMISSION], ...`, then `ON`.
fn permissions(i: &str) -> PResult<'_, Vec<&'static str>> {
    if let Ok((r, _)) = kw("ALL")(i) {
        let r = kw("PERMISSIONS")(r).map(|(r, _)| r).unwrap_or(r);
        return Ok((r, vec!["ALL"]));
    }
    let mut out = Vec::new();
    let mut r = i;
    loop {
        let Some(p) = PERMISSIONS.iter().find(|p| peek_kw(r, p)) else {
            return fail(ws(r)?.0, "a permission");
        };
        r = kw(p)(r)?.0;
        r = kw("PERMISSION")(r).map(|(r, _)| r).unwrap_or(r);
        out.push(*p);
        match sym(",")(r) {
            Ok((r2, _)) => r = r2,
            Err(_) => return Ok((r, out)),
        }
    }
}

fn resource(i: &str) -> PResult<'_, Resource<'_>> {
    if let Ok((r, _)) = kw("ALL")(i) {
        if let Ok((r, _)) = kw("KEYSPACES")(r) {
            return Ok((r, Resource::AllKeyspaces));
        }
        if let Ok((r, _)) = kw("ROLES")(r) {
            return Ok((r, Resource::AllRoles));
        }
        if let Ok((r, _)) = kw("MBEANS")(r) {
            return Ok((r, Resource::AllMbeans));
        }
        if let Ok((r, _)) = kw("TABLES")(r) {
            let (r, _) = kw("IN")(r)?;
            let (r, _) = kw("KEYSPACE")(r)?;
            let (r, ks) = ident(r)?;
            return Ok((r, Resource::AllTablesIn(ks)));
        }
        let (r, _) = kw("FUNCTIONS")(r)?;
        if let Ok((r, _)) = kw("IN")(r) {
            let (r, _) = kw("KEYSPACE")(r)?;
            let (r, ks) = ident(r)?;
            return Ok((r, Resource::AllFunctions(Some(ks))));
        }
        return Ok((r, Resource::AllFunctions(None)));
    }
    if let Ok((r, _)) = kw("KEYSPACE")(i) {
        let (r, ks) = ident(r)?;
        return Ok((r, Resource::Keyspace(ks)));
    }
    if let Ok((r, _)) = kw("ROLE")(i) {
        let (r, role) = ident_or_string(r)?;
        return Ok((r, Resource::Role(role)));
    }
    if let Ok((r, _)) = kw("FUNCTION")(i) {
        let (r, name) = qualified_name(r)?;
        let (r, ()) = skip_until_kw(r, "TO").or_else(|_| skip_until_kw(r, "FROM"))?;
        return Ok((r, Resource::Function(name)));
    }
    for w in ["MBEAN", "MBEANS"] {
        if let Ok((r, _)) = kw(w)(i) {
            let (r, s) = super::literal::string_literal(r)?;
            return Ok((r, Resource::Mbean(s)));
        }
    }
    let r = kw("TABLE")(i).map(|(r, _)| r).unwrap_or(i);
    let (r, t) = qualified_name(r)?;
    Ok((r, Resource::Table(t)))
}

/// After GRANT (`grant`) or REVOKE.
/// The caller fills in `text`.
pub(crate) fn access_change(i: &str, grant: bool) -> PResult<'_, AccessChange<'_>> {
    let to = if grant { "TO" } else { "FROM" };
    let with_perms = permissions(i).and_then(|(r, p)| Ok((kw("ON")(r)?.0, p)));
    let (r, permissions, resource, role) = match with_perms {
        Ok((r, perms)) => {
            let (r, res) = resource(r)?;
            (r, perms, Some(res), None)
        }
        Err(_) => {
            let (r, role) = ident_or_string(i)?;
            (r, Vec::new(), None, Some(role))
        }
    };
    let (r, _) = kw(to)(r)?;
    let (r, grantee): (&str, Ident<'_>) = ident_or_string(r)?;
    let (r, ()) = skip_to_end(r)?;
    Ok((
        r,
        AccessChange {
            grant,
            permissions,
            resource,
            role,
            grantee,
            text: "",
        },
    ))
}

/// `SELECT [JSON] ... FROM table ...`: the table read.
pub(crate) fn select(i: &str) -> PResult<'_, super::ast::Select<'_>> {
    // `json` is also a valid column name: `SELECT json FROM t`.
    let json = match kw("JSON")(i) {
        Ok((r, _)) => !peek_kw(r, "FROM") && !r.trim_start().starts_with(','),
        Err(_) => false,
    };
    let (r, ()) = skip_until_kw(i, "FROM")?;
    let (r, _) = kw("FROM")(r)?;
    let (r, table) = qualified_name(r)?;
    let (r, ()) = skip_to_end(r)?;
    Ok((
        r,
        super::ast::Select {
            table,
            json,
            text: "",
        },
    ))
}

/// The leading word of a statement, for dispatch and error messages.
pub(crate) fn leading_word(i: &str) -> Option<&str> {
    word(i).ok().map(|(_, w)| w)
}
