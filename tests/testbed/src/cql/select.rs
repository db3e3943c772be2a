//! SELECT, parsed by the testbed (the `tidemark-cql` parser only classifies it):
//! columns, `*`, `WRITETIME(c)`, `TTL(c)`, `COUNT(*)`, aliases, WHERE with `=`, `IN`
//! and comparisons joined by AND, LIMIT, ALLOW FILTERING.

use super::lex::{Cursor, Tok};
use super::literal::{parse_lit, Lit};

#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    Star,
    Column(String),
    WriteTime(String),
    Ttl(String),
    CountStar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    In,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Where {
    /// The column, or for `token(a, b)` the partition key columns joined by `,`.
    pub column: String,
    /// A `token(...)` relation: compared with the partition's token (bigint).
    pub token: bool,
    pub op: Op,
    /// One value, or several for `IN (...)`.
    pub values: Vec<Lit>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SelectStmt {
    pub keyspace: Option<String>,
    pub table: String,
    pub selectors: Vec<(Selector, Option<String>)>,
    pub wheres: Vec<Where>,
    pub limit: Option<Lit>,
    /// Number of bind markers.
    pub markers: usize,
}

pub fn parse_select(text: &str) -> Result<SelectStmt, String> {
    let mut c = Cursor::new(text)?;
    c.expect_kw("select")?;
    if c.kw("json") || c.kw("distinct") {
        return Err("SELECT JSON and DISTINCT are not supported by the testbed yet".into());
    }
    let mut selectors = Vec::new();
    loop {
        let sel = if c.sym("*") {
            Selector::Star
        } else {
            let name = c.ident()?;
            if c.sym("(") {
                let s = match name.as_str() {
                    "count" if c.sym("*") => Selector::CountStar,
                    "count" if c.kw("1") => Selector::CountStar,
                    "writetime" => Selector::WriteTime(c.ident()?),
                    "ttl" => Selector::Ttl(c.ident()?),
                    f => return Err(format!("unsupported function {f}")),
                };
                c.expect_sym(")")?;
                s
            } else {
                Selector::Column(name)
            }
        };
        let alias = if c.kw("as") { Some(c.ident()?) } else { None };
        selectors.push((sel, alias));
        if !c.sym(",") {
            break;
        }
    }
    c.expect_kw("from")?;
    let (keyspace, table) = c.qualified()?;
    let mut markers = 0;
    let mut wheres = Vec::new();
    if c.kw("where") {
        loop {
            let mut column = c.ident()?;
            let mut token = false;
            if column == "token" && c.sym("(") {
                let mut cols = vec![c.ident()?];
                while c.sym(",") {
                    cols.push(c.ident()?);
                }
                c.expect_sym(")")?;
                column = cols.join(",");
                token = true;
            }
            let op = match c.next_tok() {
                Some(Tok::Sym("=")) => Op::Eq,
                Some(Tok::Sym("<")) => Op::Lt,
                Some(Tok::Sym("<=")) => Op::Le,
                Some(Tok::Sym(">")) => Op::Gt,
                Some(Tok::Sym(">=")) => Op::Ge,
                Some(Tok::Ident {
                    name,
                    quoted: false,
                }) if name == "in" => Op::In,
                t => return Err(format!("unsupported relation operator {t:?}")),
            };
            let values = if op == Op::In && c.sym("(") {
                let mut v = Vec::new();
                if !c.sym(")") {
                    loop {
                        v.push(parse_lit(&mut c, &mut markers)?);
                        if c.sym(")") {
                            break;
                        }
                        c.expect_sym(",")?;
                    }
                }
                v
            } else {
                vec![parse_lit(&mut c, &mut markers)?]
            };
            wheres.push(Where {
                column,
                token,
                op,
                values,
            });
            if !c.kw("and") {
                break;
            }
        }
    }
    let mut limit = None;
    if c.kw("limit") {
        limit = Some(parse_lit(&mut c, &mut markers)?);
    }
    if c.kw("allow") {
        c.expect_kw("filtering")?;
    }
    if !c.at_end() {
        return Err(format!("unsupported SELECT clause near {:?}", c.peek()));
    }
    Ok(SelectStmt {
        keyspace,
        table,
        selectors,
        wheres,
        limit,
        markers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_driver_queries() {
        let s = parse_select("SELECT * FROM system.local WHERE key='local'").unwrap();
        assert_eq!(s.keyspace.as_deref(), Some("system"));
        assert_eq!(s.wheres[0].values, vec![Lit::Str("local".into())]);
        let s = parse_select(
            "select k, writetime(v) as wt, TTL(v) from t where k = ? and c in (?, 3) limit ?",
        )
        .unwrap();
        assert_eq!(
            s.selectors[1],
            (Selector::WriteTime("v".into()), Some("wt".into()))
        );
        assert_eq!(s.markers, 3);
        assert_eq!(s.wheres[1].op, Op::In);
        assert_eq!(s.limit, Some(Lit::Marker(2, None)));
        assert!(parse_select("SELECT count(*) FROM t").is_ok());
        let s = parse_select("SELECT k FROM t WHERE token(k, j) > ? AND token(k, j) <= 5").unwrap();
        assert!(s.wheres[0].token && s.wheres[1].token);
        assert_eq!(s.wheres[0].column, "k,j");
        assert!(parse_select("SELECT a FROM t ORDER BY a").is_err());
    }
}
