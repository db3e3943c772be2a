//! Schema from `CREATE TABLE` and `CREATE TYPE` text seen in the capture, for captures
//! (or clusters) where no `system_schema` rows go by: the key columns and column types
//! are all in the statement. Only the column list and PRIMARY KEY are read; options
//! after `WITH` are ignored.

use tidemark_cql::statement::{SchemaAction, SchemaObject, Statement, StatementKind};

use super::schema::{Schema, TableSchema};

/// Learns from a CREATE TABLE / CREATE TYPE statement; other statements are ignored.
pub fn learn(stmt: &Statement<'_>, keyspace: Option<&str>, schema: &mut Schema) {
    let StatementKind::Schema(s) = &stmt.kind else {
        return;
    };
    if s.action != SchemaAction::Create {
        return;
    }
    let Some(target) = s.resolve(keyspace) else {
        return;
    };
    let Some(body) = body(s.text) else { return };
    let parts = split_top(body);
    match s.object {
        SchemaObject::Table => {
            if let Some(t) = table(&parts) {
                schema.add_table(target.keyspace, target.table, t);
            }
        }
        SchemaObject::Type => {
            let fields = parts.iter().filter_map(|p| column(p)).collect();
            schema.add_udt(target.keyspace, target.table, fields);
        }
        _ => {}
    }
}

/// The text between the first `(` and its matching `)`.
fn body(text: &str) -> Option<&str> {
    let start = text.find('(')?;
    let mut depth = 0usize;
    let mut quote = None;
    for (i, c) in text[start..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start + 1..start + i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits at commas outside `<>`, `()` and quotes.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None, 0);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '<') => depth += 1,
            (None, ')' | '>') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out.retain(|p| !p.is_empty());
    out
}

/// A name as Cassandra normalizes it: quoted kept exactly, else lowercased.
fn name(s: &str) -> String {
    let s = s.trim();
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(q) => q.replace("\"\"", "\""),
        None => s.to_ascii_lowercase(),
    }
}

/// `name type [STATIC] [PRIMARY KEY]` → (name, type text).
fn column(def: &str) -> Option<(String, String)> {
    let def = def.trim();
    let split = if let Some(quoted) = def.strip_prefix('"') {
        quoted.find('"').map(|i| i + 2)?
    } else {
        def.find(char::is_whitespace)?
    };
    let (n, rest) = def.split_at(split);
    let mut ty = rest.trim().to_string();
    for suffix in ["primary key", "static"] {
        if ty.to_ascii_lowercase().ends_with(suffix) {
            ty.truncate(ty.len() - suffix.len());
            ty = ty.trim_end().to_string();
        }
    }
    Some((name(n), ty))
}

fn table(parts: &[&str]) -> Option<TableSchema> {
    let mut t = TableSchema::default();
    let mut pk: Vec<String> = Vec::new();
    let mut ck: Vec<String> = Vec::new();
    for p in parts {
        let lower = p.to_ascii_lowercase();
        if lower.starts_with("primary key") {
            let inner = body(p)?;
            let keys = split_top(inner);
            let (first, rest) = keys.split_first()?;
            pk = match body(first) {
                Some(b) if first.trim_start().starts_with('(') => {
                    split_top(b).iter().map(|k| name(k)).collect()
                }
                _ => vec![name(first)],
            };
            ck = rest.iter().map(|k| name(k)).collect();
            continue;
        }
        let (n, ty) = column(p)?;
        if lower.trim_end().ends_with("primary key") {
            pk = vec![n.clone()];
        }
        t.types.insert(n, ty);
    }
    if pk.is_empty() {
        return None;
    }
    Some(TableSchema::with_key(t.types, pk, ck))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_cql::statement::parse_statement;

    #[test]
    fn learns_tables_and_types() {
        let mut s = Schema::default();
        let q = "CREATE TABLE IF NOT EXISTS simplex.playlists (id uuid,title text,album text, artist text,song_id uuid,PRIMARY KEY (id, title, album, artist));";
        learn(&parse_statement(q).unwrap(), None, &mut s);
        let t = s.table("simplex", "playlists").unwrap();
        assert_eq!(t.partition_key, vec!["id"]);
        assert_eq!(t.clustering, vec!["title", "album", "artist"]);
        let q = "CREATE TABLE songs (id uuid PRIMARY KEY, tags set<text>, m map<int, text>)";
        learn(&parse_statement(q).unwrap(), Some("simplex"), &mut s);
        let t = s.table("simplex", "songs").unwrap();
        assert_eq!(t.partition_key, vec!["id"]);
        assert_eq!(t.types["m"], "map<int, text>");
        let q = "CREATE TABLE k.e (\"User\" text, day date, seq int, PRIMARY KEY ((\"User\", day), seq)) WITH x = 1";
        learn(&parse_statement(q).unwrap(), None, &mut s);
        assert_eq!(
            s.table("k", "e").unwrap().partition_key,
            vec!["User", "day"]
        );
        let q = "CREATE TYPE k.address (street text, zip int)";
        learn(&parse_statement(q).unwrap(), None, &mut s);
        assert!(s.parse_type("k", "frozen<address>").is_some());
    }
}
