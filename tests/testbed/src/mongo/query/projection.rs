//! `find` projections: inclusion (`{a: 1, "b.c": 1}`, `_id` kept unless
//! `_id: 0`) or exclusion (`{a: 0}`), on top-level and dotted fields, with
//! the source document's field order kept as MongoDB keeps it. Projection
//! operators (`$slice`, `$elemMatch`, `a.$`) and expressions are refused.

use std::collections::BTreeMap;
use tidemark_mongo::bson::{Bson, Document};

#[derive(Debug, Default)]
struct Node {
    leaf: bool,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn add(&mut self, path: &str) {
        match path.split_once('.') {
            None => self.children.entry(path.to_string()).or_default().leaf = true,
            Some((h, r)) => self.children.entry(h.to_string()).or_default().add(r),
        }
    }
}

/// A parsed projection.
#[derive(Debug)]
pub struct Projection {
    inclusion: bool,
    keep_id: bool,
    tree: Node,
}

fn truthy(v: &Bson) -> Option<bool> {
    match v {
        Bson::Boolean(b) => Some(*b),
        Bson::Int32(i) => Some(*i != 0),
        Bson::Int64(i) => Some(*i != 0),
        Bson::Double(d) => Some(*d != 0.0),
        _ => None,
    }
}

impl Projection {
    /// Parses `spec`; `Ok(None)` for an empty projection (whole documents).
    pub fn parse(spec: &Document) -> Result<Option<Projection>, String> {
        let mut keep_id = true;
        let mut mode: Option<bool> = None;
        let mut tree = Node::default();
        for (k, v) in spec {
            if k.contains('$') {
                return Err(format!(
                    "positional projection '{k}' is not supported by the testbed"
                ));
            }
            let Some(on) = truthy(v) else {
                return Err(format!(
                    "projection of '{k}': operators and expressions are not supported by the testbed"
                ));
            };
            if k == "_id" {
                keep_id = on;
                continue;
            }
            match mode {
                Some(m) if m != on => {
                    let what = if m { "exclusion" } else { "inclusion" };
                    let mode_name = if m { "inclusion" } else { "exclusion" };
                    return Err(format!(
                        "Cannot do {what} on field {k} in {mode_name} projection"
                    ));
                }
                _ => mode = Some(on),
            }
            tree.add(k);
        }
        if spec.is_empty() {
            return Ok(None);
        }
        // `{_id: 1}` alone includes only `_id`; `{_id: 0}` alone excludes it
        Ok(Some(Projection {
            inclusion: mode.unwrap_or(keep_id),
            keep_id,
            tree,
        }))
    }

    /// `d` as the projection shows it.
    pub fn apply(&self, d: &Document) -> Document {
        let mut out = if self.inclusion {
            include(d, &self.tree)
        } else {
            exclude(d, &self.tree)
        };
        if self.inclusion && self.keep_id {
            if let Some(id) = d.get("_id") {
                let mut with_id = Document::new();
                with_id.insert("_id", id.clone());
                with_id.extend(out);
                out = with_id;
            }
        }
        if !self.keep_id {
            out.remove("_id");
        }
        out
    }
}

fn include(d: &Document, tree: &Node) -> Document {
    let mut out = Document::new();
    for (k, v) in d {
        let Some(node) = tree.children.get(k) else {
            continue;
        };
        if node.leaf {
            out.insert(k.clone(), v.clone());
            continue;
        }
        match v {
            Bson::Document(sub) => {
                out.insert(k.clone(), include(sub, node));
            }
            Bson::Array(a) => {
                let items: Vec<Bson> = a
                    .iter()
                    .filter_map(|e| match e {
                        Bson::Document(sub) => Some(Bson::Document(include(sub, node))),
                        _ => None,
                    })
                    .collect();
                out.insert(k.clone(), items);
            }
            _ => {}
        }
    }
    out
}

fn exclude(d: &Document, tree: &Node) -> Document {
    let mut out = Document::new();
    for (k, v) in d {
        match tree.children.get(k) {
            Some(node) if node.leaf => {}
            Some(node) => match v {
                Bson::Document(sub) => {
                    out.insert(k.clone(), exclude(sub, node));
                }
                Bson::Array(a) => {
                    let items: Vec<Bson> = a
                        .iter()
                        .map(|e| match e {
                            Bson::Document(sub) => Bson::Document(exclude(sub, node)),
                            other => other.clone(),
                        })
                        .collect();
                    out.insert(k.clone(), items);
                }
                other => {
                    out.insert(k.clone(), other.clone());
                }
            },
            None => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_mongo::bson::doc;

    #[test]
    fn inclusion_exclusion_and_refusals() {
        let d = doc! { "_id": 1, "a": 1, "n": { "x": 1, "y": 2 }, "arr": [ { "k": 1, "v": 2 }, 3 ], "z": 0 };
        let p = Projection::parse(&doc! { "z": 1, "n.y": 1, "arr.k": 1 })
            .unwrap()
            .unwrap();
        assert_eq!(
            p.apply(&d),
            doc! { "_id": 1, "n": { "y": 2 }, "arr": [ { "k": 1 } ], "z": 0 }
        );
        let p = Projection::parse(&doc! { "a": 0, "n.x": 0, "_id": 0 })
            .unwrap()
            .unwrap();
        assert_eq!(
            p.apply(&d),
            doc! { "n": { "y": 2 }, "arr": [ { "k": 1, "v": 2 }, 3 ], "z": 0 }
        );
        let p = Projection::parse(&doc! { "a": 1, "_id": 0 })
            .unwrap()
            .unwrap();
        assert_eq!(p.apply(&d), doc! { "a": 1 });
        assert!(Projection::parse(&doc! {}).unwrap().is_none());
        let p = Projection::parse(&doc! { "_id": 1 }).unwrap().unwrap();
        assert_eq!(p.apply(&d), doc! { "_id": 1 });
        let p = Projection::parse(&doc! { "_id": 0 }).unwrap().unwrap();
        assert_eq!(p.apply(&doc! { "_id": 1, "a": 2 }), doc! { "a": 2 });
        assert!(Projection::parse(&doc! { "a": 1, "z": 0 }).is_err());
        assert!(Projection::parse(&doc! { "arr": { "$slice": 1 } }).is_err());
        assert!(Projection::parse(&doc! { "arr.$": 1 }).is_err());
    }
}
