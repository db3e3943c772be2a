//! MongoDB snapshot through the `mongodb` driver: each collection's options and
//! indexes, then every document in `_id` chunks.
//!
//! Where the server answers a `readConcern: {level: "snapshot"}` find with the
//! cluster time it read at (`cursor.atClusterTime`), every chunk of every
//! collection is read at that one time (`atClusterTime`), so the snapshot has no
//! read window to be uncertain about. Otherwise chunks are read with `majority` and
//! each chunk's read window is recorded. A scan longer than the server's snapshot
//! history (`minSnapshotHistoryWindowInSeconds`, 300 s by default) fails with
//! `SnapshotTooOld`; resume then needs a new snapshot.

use anyhow::{anyhow, bail, Context, Result};
use mongodb::{Client, ClientSession};
use tidemark_mongo::bson::{doc, Bson, Document, RawDocument, Timestamp};

use crate::decode::mongo::values;
use crate::snapshot::model::{NamespaceInfo, PartInfo, PartRange, RowData, SnapshotRow};
use crate::snapshot::source::{glob, is_literal, mongo_options, scrub, selected};
use crate::store::OpTime;

/// Documents per `_id` chunk (one part).
pub const CHUNK_DOCS: usize = 1000;

/// Databases a snapshot never reads.
const SYSTEM_DBS: [&str; 3] = ["admin", "local", "config"];

/// A connected deployment and how to read it.
pub struct MongoScan {
    client: Client,
    /// The one cluster time every read uses, when the server has snapshot reads.
    at: Option<Timestamp>,
    /// A `$clusterTime` (signed by the cluster) each read's session gossips: `at`
    /// came from another replica set of the cluster (per-shard takes), and a member
    /// refuses an `atClusterTime` beyond the cluster time it has heard of.
    gossip: Option<mongodb::ClusterTime>,
}

/// What [`connect`] found.
pub struct Plan {
    pub scan: MongoScan,
    pub cluster: String,
    pub namespaces: Vec<NamespaceInfo>,
    pub parts: Vec<PartInfo>,
    pub cluster_time: Option<OpTime>,
}

/// A driver error in one short line: a server's command error as its code, name
/// and message (the driver's own text adds labels and the raw reply).
pub(crate) fn short(e: mongodb::error::Error) -> anyhow::Error {
    match *e.kind {
        mongodb::error::ErrorKind::Command(ref c) => {
            anyhow!("{} ({}): {}", c.code_name, c.code, c.message)
        }
        _ => anyhow!(e),
    }
}

/// A client of the deployment at `uri` (`--from`) and its `hello` reply, which says
/// what it is; connection errors name the URI without its credentials. The
/// options are returned for clients of other members (a per-shard snapshot).
pub(super) async fn connect_and_hello(
    uri: &str,
    redacted: &str,
) -> Result<(Client, Document, mongodb::options::ClientOptions)> {
    let options = mongo_options(uri, redacted, "--from").await?;
    let client = Client::with_options(options.clone()).map_err(|e| {
        anyhow!(
            "cannot connect to {redacted}: {}",
            scrub(e.to_string(), uri)
        )
    })?;
    let hello = command(&client, "admin", doc! {"hello": 1})
        .await
        .map_err(|e| {
            anyhow!(
                "cannot connect to {redacted}: {}",
                scrub(format!("{e:#}"), uri)
            )
        })?;
    Ok((client, hello, options))
}

pub(crate) async fn command(client: &Client, db: &str, cmd: Document) -> Result<Document> {
    client.database(db).run_command(cmd).await.map_err(short)
}

pub(crate) fn first_batch(reply: &Document) -> Vec<Document> {
    reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .map(|a| a.iter().filter_map(|d| d.as_document().cloned()).collect())
        .unwrap_or_default()
}

/// Connects, reads the selected collections' options and indexes, finds out
/// whether snapshot reads work, and splits each collection into `_id` chunks.
/// `resume`: the snapshot being resumed (`Some(cluster time)` if it had one): its
/// parts stand, so no chunks are planned, and reads stay at its cluster time.
/// `majority`: never use snapshot reads.
pub async fn connect(
    uri: &str,
    redacted: &str,
    (dbs, collections): (&[String], &[String]),
    resume: Option<Option<OpTime>>,
    majority: bool,
) -> Result<Plan> {
    let (client, hello, _) = connect_and_hello(uri, redacted).await?;
    // A sharded cluster's router has no set name: it says `msg: "isdbgrid"`.
    let cluster = match (hello.get_str("setName"), hello.get_str("msg")) {
        (Ok(set), _) => set.to_string(),
        (_, Ok("isdbgrid")) => "sharded".to_string(),
        _ => "standalone".to_string(),
    };

    let found = discover(&client, dbs, collections).await?;

    let at = match resume {
        Some(at) => at.map(|t| Timestamp {
            time: (t.ts >> 32) as u32,
            increment: t.ts as u32,
        }),
        None if majority => None,
        None => match found.first() {
            Some((db, coll, _)) => snapshot_time(&client, db, coll).await,
            None => None,
        },
    };
    let scan = MongoScan {
        client,
        at,
        gossip: None,
    };
    let mut namespaces = Vec::new();
    let mut parts = Vec::new();
    for (db, coll, schema) in found {
        let ns = format!("{db}.{coll}");
        let ranges = match resume {
            Some(_) => Vec::new(),
            None => scan.chunks(&db, &coll).await?,
        };
        for range in ranges {
            parts.push(PartInfo {
                namespace: ns.clone(),
                range,
                read_start: 0,
                read_end: None,
                rows: 0,
            });
        }
        namespaces.push(NamespaceInfo {
            name: ns,
            schema,
            rows: 0,
            bytes: 0,
        });
    }
    let cluster_time = at.map(|t| OpTime {
        ts: (u64::from(t.time) << 32) | u64::from(t.increment),
        t: -1,
    });
    Ok(Plan {
        scan,
        cluster,
        namespaces,
        parts,
        cluster_time,
    })
}

/// The selected collections (`(db, collection, schema)`, by name): every
/// non-system database and collection passing the `--db`/`--collection` globs, with
/// its options and indexes as the schema; a literal filter matching nothing is an
/// error.
pub(crate) async fn discover(
    client: &Client,
    dbs: &[String],
    collections: &[String],
) -> Result<Vec<(String, String, String)>> {
    let listed = command(client, "admin", doc! {"listDatabases": 1, "nameOnly": true}).await?;
    let mut names: Vec<String> = listed
        .get_array("databases")
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_document()?.get_str("name").ok().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.retain(|n| !SYSTEM_DBS.contains(&n.as_str()));
    names.sort();
    let mut found: Vec<(String, String, String)> = Vec::new();
    for db in names {
        if !dbs.is_empty() && !dbs.iter().any(|p| glob(p, &db)) {
            continue;
        }
        let reply = command(client, &db, doc! {"listCollections": 1}).await?;
        let mut colls = first_batch(&reply);
        colls.sort_by(|a, b| a.get_str("name").ok().cmp(&b.get_str("name").ok()));
        for c in colls {
            let Ok(name) = c.get_str("name") else {
                continue;
            };
            let kind = c.get_str("type").unwrap_or("collection");
            let ns = format!("{db}.{name}");
            if kind != "collection"
                || name.starts_with("system.")
                || !selected(&[], collections, &ns)
            {
                continue;
            }
            let indexes = command(client, &db, doc! {"listIndexes": name}).await?;
            let schema = serde_json::json!({
                "options": values::doc(&raw(&c.get_document("options").cloned().unwrap_or_default())?),
                "indexes": first_batch(&indexes)
                    .iter()
                    .map(|d| raw(d).map(|r| values::doc(&r)))
                    .collect::<Result<Vec<_>>>()?,
            });
            found.push((db.clone(), name.to_string(), schema.to_string()));
        }
    }
    for p in dbs.iter().filter(|p| is_literal(p)) {
        if !found.iter().any(|(db, _, _)| db == p) {
            bail!("unknown database {p:?} (or it has no collections)");
        }
    }
    for p in collections.iter().filter(|p| is_literal(p)) {
        let hit = found.iter().any(|(db, c, _)| {
            if p.contains('.') {
                *p == format!("{db}.{c}")
            } else {
                p == c
            }
        });
        if !hit {
            bail!("unknown collection {p:?}");
        }
    }

    Ok(found)
}

/// The cluster time a `readConcern: snapshot` read picks, if the server has
/// snapshot reads (it names the time in `cursor.atClusterTime`).
pub(crate) async fn snapshot_time(client: &Client, db: &str, coll: &str) -> Option<Timestamp> {
    let cmd = doc! {
        "find": coll, "filter": {}, "projection": {"_id": 1}, "batchSize": 0,
        "readConcern": {"level": "snapshot"},
    };
    let reply = command(client, db, cmd).await.ok()?;
    let cursor = reply.get_document("cursor").ok()?;
    let at = cursor.get_timestamp("atClusterTime").ok();
    if let Ok(id) = cursor.get_i64("id") {
        if id != 0 {
            let _ = command(client, db, doc! {"killCursors": coll, "cursors": [id]}).await;
        }
    }
    at
}

fn raw(d: &Document) -> Result<tidemark_mongo::bson::RawDocumentBuf> {
    Ok(tidemark_mongo::bson::RawDocumentBuf::from_bytes(
        d.to_vec()?,
    )?)
}

/// A BSON value as a part bound: its element type byte, then its value bytes.
pub fn bound_bytes(v: &Bson) -> Result<Vec<u8>> {
    let bytes = doc! {"": v.clone()}.to_vec()?;
    // i32 length, type, "" (one NUL), value, document NUL.
    Ok([&bytes[4..5], &bytes[6..bytes.len() - 1]].concat())
}

/// The value of a part bound written by [`bound_bytes`].
pub fn bound_value(b: &[u8]) -> Result<Bson> {
    let (ty, value) = b.split_first().ok_or_else(|| anyhow!("empty _id bound"))?;
    let len = (4 + 1 + 1 + value.len() + 1) as i32;
    let mut bytes = len.to_le_bytes().to_vec();
    bytes.push(*ty);
    bytes.push(0);
    bytes.extend_from_slice(value);
    bytes.push(0);
    let d = Document::from_reader(&bytes[..])?;
    d.get("").cloned().ok_or_else(|| anyhow!("bad _id bound"))
}

/// MongoDB compares values of different BSON type classes by class first, and a
/// `$gte`/`$lt` range only matches its own class: chunks by `_id` work only when
/// every `_id` is in one class.
fn type_class(v: &Bson) -> u8 {
    match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 1,
        Bson::String(_) | Bson::Symbol(_) => 2,
        Bson::Document(_) => 3,
        Bson::Array(_) => 4,
        Bson::Binary(_) => 5,
        Bson::ObjectId(_) => 6,
        Bson::Boolean(_) => 7,
        Bson::DateTime(_) => 8,
        Bson::Timestamp(_) => 9,
        _ => 0,
    }
}

impl MongoScan {
    /// Ends the client's sessions and connections.
    pub async fn close(self) {
        self.client.shutdown().await;
    }

    fn read_concern(&self) -> Document {
        match self.at {
            Some(t) => doc! {"level": "snapshot", "atClusterTime": t},
            None => doc! {"level": "majority"},
        }
    }

    /// Runs `find` and every `getMore` of its cursor in one session, handing each
    /// batch to `each`.
    pub(crate) async fn find_all(
        &self,
        db: &str,
        coll: &str,
        mut find: Document,
        each: &mut (dyn FnMut(Vec<Document>) -> Result<()> + Send),
    ) -> Result<()> {
        let mut session: ClientSession = self.client.start_session().await?;
        if let Some(ct) = &self.gossip {
            session.advance_cluster_time(ct);
        }
        let database = self.client.database(db);
        find.insert("readConcern", self.read_concern());
        let reply = database
            .run_command(find)
            .session(&mut session)
            .await
            .map_err(short)
            .with_context(|| format!("reading {db}.{coll}"))?;
        each(first_batch(&reply))?;
        let mut id = reply
            .get_document("cursor")
            .and_then(|c| c.get_i64("id"))
            .unwrap_or(0);
        while id != 0 {
            let reply = database
                .run_command(
                    doc! {"getMore": id, "collection": coll, "batchSize": CHUNK_DOCS as i32},
                )
                .session(&mut session)
                .await
                .map_err(short)
                .with_context(|| format!("reading {db}.{coll}"))?;
            let cursor = reply.get_document("cursor")?;
            let batch = cursor
                .get_array("nextBatch")
                .map(|a| a.iter().filter_map(|d| d.as_document().cloned()).collect())
                .unwrap_or_default();
            each(batch)?;
            id = cursor.get_i64("id").unwrap_or(0);
        }
        Ok(())
    }

    /// The collection's `_id` chunks of [`CHUNK_DOCS`] documents (one chunk when
    /// its `_id`s are of several type classes).
    pub(crate) async fn chunks(&self, db: &str, coll: &str) -> Result<Vec<PartRange>> {
        let mut bounds: Vec<Bson> = Vec::new();
        let mut classes = std::collections::BTreeSet::new();
        let mut seen = 0usize;
        let find = doc! {
            "find": coll, "filter": {}, "projection": {"_id": 1}, "sort": {"_id": 1},
            "batchSize": 10 * CHUNK_DOCS as i32,
        };
        self.find_all(db, coll, find, &mut |batch| {
            for d in batch {
                if let Some(id) = d.get("_id") {
                    classes.insert(type_class(id));
                    if seen > 0 && seen.is_multiple_of(CHUNK_DOCS) {
                        bounds.push(id.clone());
                    }
                    seen += 1;
                }
            }
            Ok(())
        })
        .await?;
        if classes.len() > 1 || classes.contains(&0) {
            return Ok(vec![PartRange::IdChunk {
                from: None,
                to: None,
            }]);
        }
        let bytes = bounds.iter().map(bound_bytes).collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(bytes.len() + 1);
        let mut from = None;
        for b in bytes {
            out.push(PartRange::IdChunk {
                from: from.take(),
                to: Some(b.clone()),
            });
            from = Some(b);
        }
        out.push(PartRange::IdChunk { from, to: None });
        Ok(out)
    }

    /// A scan of `client`'s deployment, reading at `at` when given (else majority).
    pub(crate) fn new(
        client: Client,
        at: Option<Timestamp>,
        gossip: Option<mongodb::ClusterTime>,
    ) -> MongoScan {
        MongoScan { client, at, gossip }
    }

    /// Reads part `index`, handing each batch's documents to `sink`; the documents read.
    pub async fn scan(
        &self,
        index: u32,
        part: &PartInfo,
        sink: &mut (dyn FnMut(Vec<SnapshotRow>) -> Result<()> + Send),
    ) -> Result<u64> {
        let PartRange::IdChunk { from, to } = &part.range else {
            bail!("part {index} is not an _id chunk");
        };
        let (kept, _) = self
            .scan_range(index, &part.namespace, (from, to), &|_| Ok(true), sink)
            .await?;
        Ok(kept)
    }

    /// Reads the documents of `ns` with `from <= _id < to` as rows of part `index`,
    /// handing to `sink` those `keep` accepts; (kept, left out).
    pub(crate) async fn scan_range(
        &self,
        index: u32,
        ns: &str,
        (from, to): (&Option<Vec<u8>>, &Option<Vec<u8>>),
        keep: &(dyn Fn(&Document) -> Result<bool> + Sync),
        sink: &mut (dyn FnMut(Vec<SnapshotRow>) -> Result<()> + Send),
    ) -> Result<(u64, u64)> {
        let (db, coll) = ns
            .split_once('.')
            .ok_or_else(|| anyhow!("bad namespace {ns}"))?;
        let mut range = Document::new();
        if let Some(f) = from {
            range.insert("$gte", bound_value(f)?);
        }
        if let Some(t) = to {
            range.insert("$lt", bound_value(t)?);
        }
        let filter = if range.is_empty() {
            doc! {}
        } else {
            doc! {"_id": range}
        };
        let find = doc! {
            "find": coll, "filter": filter, "sort": {"_id": 1},
            "batchSize": CHUNK_DOCS as i32,
        };
        let mut total = 0u64;
        let mut left_out = 0u64;
        self.find_all(db, coll, find, &mut |batch| {
            let mut rows = Vec::with_capacity(batch.len());
            for d in batch {
                if !keep(&d)? {
                    left_out += 1;
                    continue;
                }
                let bytes = d.to_vec()?;
                let doc = RawDocument::from_bytes(&bytes[..])?;
                let id = doc
                    .get("_id")?
                    .ok_or_else(|| anyhow!("{ns}: a document without _id"))?;
                rows.push(SnapshotRow {
                    namespace: ns.to_string(),
                    key: values::id_key(id).to_string(),
                    part: index,
                    data: RowData::Mongo {
                        document: bytes.clone(),
                    },
                });
            }
            total += rows.len() as u64;
            sink(rows)
        })
        .await?;
        Ok((total, left_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_round_trip() {
        for v in [
            Bson::Int32(7),
            Bson::String("k-10".into()),
            Bson::ObjectId(tidemark_mongo::bson::oid::ObjectId::from_bytes([3; 12])),
        ] {
            assert_eq!(bound_value(&bound_bytes(&v).unwrap()).unwrap(), v);
        }
    }
}
