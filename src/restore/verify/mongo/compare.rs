//! One chunk of a collection compared: a hash over the version's documents and one
//! over the target's first (equal hashes: the chunk is equal), then document by
//! document where they differ. Both hashes are over (key, document with `_id`
//! first) in key order, so they are equal exactly when the documents are equal by
//! [`crate::restore::mongo::same`] (byte equality, `_id` moved first). The hash is
//! std's SipHash: both sides are hashed in this one process, so it never has to be
//! stable across builds.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use crate::restore::mongo::same::{describe, normalized, same};
use crate::restore::mongo::write::Doc;

/// Hash of documents in key order.
fn hash<'a>(docs: impl Iterator<Item = (&'a str, &'a [u8])>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (k, d) in docs {
        k.hash(&mut h);
        normalized(d).hash(&mut h);
    }
    h.finish()
}

/// What differs in one chunk: `(key, kind, detail)`.
pub fn chunk(
    version: &[Doc],
    target: &HashMap<String, Vec<u8>>,
) -> Vec<(String, &'static str, String)> {
    let mut want: Vec<&Doc> = version.iter().collect();
    want.sort_by(|a, b| a.key.cmp(&b.key));
    let got: BTreeMap<&str, &[u8]> = target
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let hv = hash(want.iter().map(|d| (d.key.as_str(), d.bytes.as_slice())));
    let ht = hash(got.iter().map(|(k, v)| (*k, *v)));
    if hv == ht && want.len() == got.len() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for d in want {
        match got.get(d.key.as_str()) {
            None => out.push((d.key.clone(), "missing", "not in the target".to_string())),
            Some(t) if !same(&d.bytes, t) => {
                out.push((d.key.clone(), "different", describe(&d.bytes, t)))
            }
            Some(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_mongo::bson::doc;

    fn d(key: i32, v: i32) -> Doc {
        Doc {
            key: format!("{{\"_id\":{key}}}"),
            bytes: doc! {"_id": key, "v": v}.to_vec().unwrap(),
        }
    }

    #[test]
    fn names_missing_and_different_documents() {
        let version = [d(1, 1), d(2, 2), d(3, 3)];
        let mut target: HashMap<String, Vec<u8>> = version
            .iter()
            .map(|x| (x.key.clone(), x.bytes.clone()))
            .collect();
        assert!(chunk(&version, &target).is_empty());
        target.remove("{\"_id\":2}");
        target.insert("{\"_id\":3}".into(), d(3, 4).bytes);
        let diff = chunk(&version, &target);
        assert_eq!(diff.len(), 2);
        assert_eq!((diff[0].0.as_str(), diff[0].1), ("{\"_id\":2}", "missing"));
        assert_eq!(
            (diff[1].1, diff[1].2.as_str()),
            ("different", "v: version 3, target 4")
        );
    }
}
