//! Resolving the positional forms of an update path into concrete paths:
//! `$` (the first array element the statement's query matched), `$[]`
//! (every element) and `$[id]` (the elements its `arrayFilters` entry for
//! `id` accepts), as MongoDB's update driver does.

use super::matcher::{field_matches, get_path, matches};
use super::update::{err, UpdateError, UpdateOpts};
use tidemark_mongo::bson::{Bson, Document};

/// The concrete dotted paths `path` stands for in `doc`.
pub fn resolve_paths(
    doc: &Document,
    path: &str,
    opts: &UpdateOpts,
) -> Result<Vec<String>, UpdateError> {
    if !path.split('.').any(|p| p.starts_with('$')) {
        return Ok(vec![path.to_string()]);
    }
    let parts: Vec<&str> = path.split('.').collect();
    let root = Bson::Document(doc.clone());
    let mut out = Vec::new();
    expand(Some(&root), &parts, String::new(), opts, &mut out)?;
    Ok(out)
}

fn join(prefix: &str, part: &str) -> String {
    if prefix.is_empty() {
        part.to_string()
    } else {
        format!("{prefix}.{part}")
    }
}

fn expand(
    cur: Option<&Bson>,
    parts: &[&str],
    prefix: String,
    opts: &UpdateOpts,
    out: &mut Vec<String>,
) -> Result<(), UpdateError> {
    let Some((&p, rest)) = parts.split_first() else {
        out.push(prefix);
        return Ok(());
    };
    if !p.starts_with('$') {
        let next = match cur {
            Some(Bson::Document(d)) => d.get(p),
            Some(Bson::Array(a)) => p.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        return expand(next, rest, join(&prefix, p), opts, out);
    }
    let Some(Bson::Array(a)) = cur else {
        return Err(err(
            2,
            "BadValue",
            format!(
                "The path '{prefix}' must exist in the document in order to apply array updates."
            ),
        ));
    };
    let indexes: Vec<usize> = if p == "$" {
        vec![positional_index(&prefix, a, opts.query)?]
    } else if p == "$[]" {
        (0..a.len()).collect()
    } else if let Some(id) = p.strip_prefix("$[").and_then(|s| s.strip_suffix(']')) {
        let filters: Vec<&Document> = opts
            .array_filters
            .iter()
            .filter(|f| {
                f.keys()
                    .any(|k| k == id || k.starts_with(&format!("{id}.")))
            })
            .collect();
        if filters.is_empty() {
            return Err(err(
                2,
                "BadValue",
                format!("No array filter found for identifier '{id}' in path '{prefix}.{p}'"),
            ));
        }
        let mut hits = Vec::new();
        for (i, e) in a.iter().enumerate() {
            let mut wrapped = Document::new();
            wrapped.insert(id, e.clone());
            let mut ok = true;
            for f in &filters {
                ok &= matches(&wrapped, f).map_err(|m| err(2, "BadValue", m))?;
            }
            if ok {
                hits.push(i);
            }
        }
        hits
    } else {
        return Err(err(
            2,
            "BadValue",
            format!("unsupported positional path component '{p}'"),
        ));
    };
    for i in indexes {
        expand(a.get(i), rest, join(&prefix, &i.to_string()), opts, out)?;
    }
    Ok(())
}

/// The index of the first element of `arr` (at `prefix`) that satisfies
/// every query condition on `prefix` or below it.
fn positional_index(
    prefix: &str,
    arr: &[Bson],
    query: Option<&Document>,
) -> Result<usize, UpdateError> {
    let not_found = || {
        err(
            2,
            "BadValue",
            "The positional operator did not find the match needed from the query.",
        )
    };
    let query = query.ok_or_else(not_found)?;
    let below = format!("{prefix}.");
    let conds: Vec<(&str, &Bson)> = query
        .iter()
        .filter_map(|(k, v)| {
            if k == prefix {
                Some(("", v))
            } else {
                k.strip_prefix(&below).map(|rest| (rest, v))
            }
        })
        .collect();
    if conds.is_empty() {
        return Err(not_found());
    }
    for (i, e) in arr.iter().enumerate() {
        let mut all = true;
        for (rest, cond) in &conds {
            let ok = if rest.is_empty() {
                match cond {
                    Bson::Document(c) if c.contains_key("$elemMatch") => {
                        let inner = c.get("$elemMatch").cloned().unwrap_or(Bson::Null);
                        element_matches(e, &inner)
                    }
                    _ => field_matches(Some(e), cond),
                }
            } else {
                match e {
                    Bson::Document(d) => field_matches(get_path(d, rest), cond),
                    _ => Ok(false),
                }
            };
            all &= ok.map_err(|m| err(2, "BadValue", m))?;
        }
        if all {
            return Ok(i);
        }
    }
    Err(not_found())
}

/// `$elemMatch`'s test of one element: operators apply to the element, a
/// plain document is a query on a document element.
pub fn element_matches(e: &Bson, cond: &Bson) -> Result<bool, String> {
    match cond {
        Bson::Document(c) if c.keys().next().is_some_and(|k| k.starts_with('$')) => {
            field_matches(Some(e), cond)
        }
        Bson::Document(c) => match e {
            Bson::Document(d) => matches(d, c),
            _ => Ok(false),
        },
        _ => Err("$elemMatch needs an object".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mongo::query::update::apply_update;
    use tidemark_mongo::bson::doc;

    #[test]
    fn positional_all_and_filtered() {
        let d = doc! { "_id": 1, "grades": [80, 90, 95], "items": [ { "k": "a", "q": 1 }, { "k": "b", "q": 2 } ] };
        let q = doc! { "grades": 90, "items.k": "b" };
        let opts = UpdateOpts {
            query: Some(&q),
            ..Default::default()
        };
        let r = apply_update(&d, &doc! { "$set": { "grades.$": 91 } }, &opts).unwrap();
        assert_eq!(r.get_array("grades").unwrap()[1], Bson::Int32(91));
        let r = apply_update(&d, &doc! { "$inc": { "items.$.q": 10 } }, &opts).unwrap();
        assert_eq!(
            r.get_array("items").unwrap()[1],
            Bson::Document(doc! { "k": "b", "q": 12 })
        );
        let r = apply_update(&d, &doc! { "$inc": { "grades.$[]": 1 } }, &opts).unwrap();
        assert_eq!(
            r.get_array("grades").unwrap(),
            &vec![Bson::Int32(81), Bson::Int32(91), Bson::Int32(96)]
        );
        let filters = vec![doc! { "g": { "$gte": 90 } }, doc! { "it.k": "a" }];
        let opts = UpdateOpts {
            query: None,
            array_filters: &filters,
            inserting: false,
        };
        let r = apply_update(
            &d,
            &doc! { "$set": { "grades.$[g]": 100, "items.$[it].q": 0 } },
            &opts,
        )
        .unwrap();
        assert_eq!(
            r.get_array("grades").unwrap(),
            &vec![Bson::Int32(80), Bson::Int32(100), Bson::Int32(100)]
        );
        assert_eq!(
            r.get_array("items").unwrap()[0],
            Bson::Document(doc! { "k": "a", "q": 0 })
        );
        // no query match for `$`, and an identifier without a filter
        assert!(apply_update(
            &d,
            &doc! { "$set": { "grades.$": 1 } },
            &UpdateOpts::default()
        )
        .is_err());
        assert!(apply_update(&d, &doc! { "$set": { "grades.$[x]": 1 } }, &opts).is_err());
    }
}
