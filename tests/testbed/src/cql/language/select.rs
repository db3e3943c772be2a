//! SELECT, parsed by the testbed (the `tidemark-cql` parser only classifies it):
//! columns, `*`, `WRITETIME(c)`, `MAXWRITETIME(c)`, `TTL(c)`, `COUNT(*)`, aliases, WHERE with `=`, `IN`
//! and comparisons joined by AND, LIMIT, ALLOW FILTERING.

use super::lex::{Cursor, Tok};
use super::literal::{parse_lit, Lit};

#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    Star,
    Column(String),
    WriteTime(String),
    /// `MAXWRITETIME(c)` (5.0): the latest write time of the column's cells.
    MaxWriteTime(String),
    Ttl(String),
    CountStar,
    /// `token(k1, k2)`: the partition's token, named `system.token(k1, k2)`.
    Token(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    In,
    Lt,
    Le,
    Gt,
    Ge,
    /// `c CONTAINS v`: a list/set element or map value.
    Contains,
    /// `m CONTAINS KEY k`.
    ContainsKey,
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
    /// `PER PARTITION LIMIT n`.
    pub per_partition_limit: Option<Lit>,
    /// Number of bind markers.
    pub markers: usize,
    /// `SELECT JSON`: one `[json]` text column per row.
    pub json: bool,
    /// `SELECT DISTINCT`: one row per partition.
    pub distinct: bool,
    /// `ORDER BY` clustering columns, `true` = DESC.
    pub order_by: Vec<(String, bool)>,
}

pub fn parse_select(text: &str) -> Result<SelectStmt, String> {
    let mut c = Cursor::new(text)?;
    c.expect_kw("select")?;
    let json = c.kw("json");
    let distinct = c.kw("distinct");
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
                    "maxwritetime" => Selector::MaxWriteTime(c.ident()?),
                    "ttl" => Selector::Ttl(c.ident()?),
                    "token" => {
                        let mut cols = vec![c.ident()?];
                        while c.sym(",") {
                            cols.push(c.ident()?);
                        }
                        Selector::Token(cols)
                    }
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
                Some(Tok::Ident {
                    name,
                    quoted: false,
                }) if name == "contains" => {
                    if c.kw("key") {
                        Op::ContainsKey
                    } else {
                        Op::Contains
                    }
                }
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
    let mut order_by = Vec::new();
    if c.kw("order") {
        c.expect_kw("by")?;
        loop {
            let col = c.ident()?;
            let desc = c.kw("desc");
            if !desc {
                c.kw("asc");
            }
            order_by.push((col, desc));
            if !c.sym(",") {
                break;
            }
        }
    }
    let mut per_partition_limit = None;
    if c.kw("per") {
        c.expect_kw("partition")?;
        c.expect_kw("limit")?;
        per_partition_limit = Some(parse_lit(&mut c, &mut markers)?);
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
        per_partition_limit,
        markers,
        json,
        distinct,
        order_by,
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
        let s = parse_select(
            "SELECT JSON DISTINCT k, token(k) FROM t WHERE k = 1 ORDER BY c DESC, d LIMIT 3",
        )
        .unwrap();
        assert!(s.json && s.distinct);
        assert_eq!(
            s.order_by,
            vec![("c".to_string(), true), ("d".to_string(), false)]
        );
        assert_eq!(s.selectors[1].0, Selector::Token(vec!["k".into()]));
        assert!(parse_select("SELECT a FROM t GROUP BY a").is_err());
        let s =
            parse_select("SELECT k FROM t WHERE l CONTAINS 3 AND m CONTAINS KEY ? ALLOW FILTERING")
                .unwrap();
        assert_eq!(
            (s.wheres[0].op, s.wheres[1].op),
            (Op::Contains, Op::ContainsKey)
        );
    }
}
