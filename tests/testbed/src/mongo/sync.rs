//! The secondary side of replication, over real TCP to the primary like
//! mongod's OplogFetcher and Reporter: a tailable awaitData `find` on
//! `local.oplog.rs` then `getMore`s, each batch applied and appended to the
//! member's oplog, the commit point learned from `$replData`, and
//! `replSetUpdatePosition` sent on a second connection after every batch.

use super::oplog::apply_entry;
use super::set::Shared;
use super::store::OpTime;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tidemark_mongo::bson::{doc, Bson, DateTime, Document, RawDocumentBuf};
use tidemark_mongo::{encode_message, Body, Decoder, Doc, Limits, Message, OpMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// How long a sync request may take before the connection is dropped and
/// the fetcher starts over (longer than the awaitData wait).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// awaitData wait asked of the sync source (MongoDB uses half the election timeout).
const AWAIT_MS: i64 = 5000;

/// A minimal command client over the wire protocol.
struct Client {
    sock: TcpStream,
    dec: Decoder,
    next_id: i32,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Result<Client, String> {
        let sock = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let _ = sock.set_nodelay(true);
        let mut c = Client {
            sock,
            dec: Decoder::new(Limits::default()),
            next_id: 0,
        };
        c.command(doc! { "hello": 1, "$db": "admin" }).await?;
        Ok(c)
    }

    async fn command(&mut self, cmd: Document) -> Result<Document, String> {
        self.next_id += 1;
        let raw = RawDocumentBuf::try_from(&cmd).map_err(|e| e.to_string())?;
        let msg = Message::new(self.next_id, 0, Body::Msg(OpMsg::new(Doc::from(raw))));
        let bytes = encode_message(&msg).map_err(|e| e.to_string())?;
        tokio::time::timeout(REQUEST_TIMEOUT, self.round_trip(bytes))
            .await
            .map_err(|_| "request timed out".to_string())?
    }

    async fn round_trip(&mut self, bytes: Vec<u8>) -> Result<Document, String> {
        self.sock
            .write_all(&bytes)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(m) = self.dec.next().map_err(|e| e.to_string())? {
                let Body::Msg(m) = m.body else {
                    return Err("reply is not OP_MSG".into());
                };
                let d = Document::try_from(m.body.raw()).map_err(|e| e.to_string())?;
                if d.get_f64("ok").ok() != Some(1.0) {
                    return Err(format!("command failed: {d}"));
                }
                return Ok(d);
            }
            let n = self.sock.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("sync source closed the connection".into());
            }
            self.dec.feed(&buf[..n]);
        }
    }
}

/// Runs member `me`'s replication for as long as the set runs: whenever
/// another member is primary, fetch from it; retry after errors.
pub async fn run(shared: Arc<Shared>, me: usize, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let source = shared.topology().primary.filter(|p| *p != me);
        let step = async {
            if let Some(p) = source {
                if let Err(e) = fetch_from(&shared, me, p).await {
                    tracing::debug!(member = me, source = p, "oplog fetcher restarts: {e}");
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        tokio::select! {
            _ = step => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn learn(shared: &Shared, me: usize, reply: &Document) {
    if let Some(c) = reply
        .get_document("$replData")
        .ok()
        .and_then(|r| r.get_document("lastOpCommitted").ok())
        .and_then(OpTime::from_doc)
    {
        shared.members[me].learn_commit_point(c);
    }
}

async fn fetch_from(shared: &Shared, me: usize, source: usize) -> Result<(), String> {
    let addr = shared.members[source].addr;
    let mut fetcher = Client::connect(addr).await?;
    let mut reporter = Client::connect(addr).await?;
    let m = &shared.members[me];
    let last = m.store().last_op_time();
    let term = shared.topology().term;
    let reply = fetcher
        .command(doc! {
            "find": "oplog.rs",
            "filter": { "ts": { "$gte": last.timestamp() } },
            "oplogReplay": true,
            "tailable": true,
            "awaitData": true,
            "maxTimeMS": 60000,
            "batchSize": 13_981_010,
            "term": term,
            "readConcern": { "level": "local", "afterClusterTime": last.timestamp() },
            "$db": "local",
            "$replData": 1,
            "$oplogQueryData": 1,
            "$readPreference": { "mode": "secondaryPreferred" },
        })
        .await?;
    let cursor = reply.get_document("cursor").map_err(|e| e.to_string())?;
    let id = cursor.get_i64("id").map_err(|e| e.to_string())?;
    apply_batch(
        shared,
        me,
        cursor.get_array("firstBatch").map_err(|e| e.to_string())?,
    )?;
    learn(shared, me, &reply);
    report(shared, me, &mut reporter).await?;
    if id == 0 {
        return Err("sync source closed the oplog cursor".into());
    }
    loop {
        let reply = fetcher
            .command(doc! {
                "getMore": id,
                "collection": "oplog.rs",
                "batchSize": 13_981_010,
                "maxTimeMS": AWAIT_MS,
                "term": term,
                "lastKnownCommittedOpTime": m.commit_point().to_doc(),
                "$db": "local",
            })
            .await?;
        let cursor = reply.get_document("cursor").map_err(|e| e.to_string())?;
        let batch = cursor.get_array("nextBatch").map_err(|e| e.to_string())?;
        let applied = apply_batch(shared, me, batch)?;
        learn(shared, me, &reply);
        if applied > 0 {
            report(shared, me, &mut reporter).await?;
        }
    }
}

/// Applies the entries after this member's last optime; returns how many.
fn apply_batch(shared: &Shared, me: usize, batch: &[Bson]) -> Result<usize, String> {
    let m = &shared.members[me];
    let mut n = 0;
    {
        let mut store = m.store();
        for e in batch {
            let Bson::Document(e) = e else {
                return Err("oplog batch entry is not a document".into());
            };
            let Some(t) = e.get_timestamp("ts").ok() else {
                return Err("oplog entry without ts".into());
            };
            let t = OpTime {
                t: e.get_i64("t").unwrap_or(0),
                ts: (t.time, t.increment),
            };
            if t <= store.last_op_time() {
                continue; // the $gte query returns the last fetched entry again
            }
            apply_entry(&mut store, e)?;
            store.push_replicated(e.clone())?;
            n += 1;
        }
    }
    if n > 0 {
        m.publish_oplog(shared);
    }
    Ok(n)
}

/// `replSetUpdatePosition` with this member's applied and durable optimes
/// (equal: there is no journal).
async fn report(shared: &Shared, me: usize, reporter: &mut Client) -> Result<(), String> {
    let m = &shared.members[me];
    let (last, wall) = {
        let s = m.store();
        (s.last_op_time(), s.last_write_millis())
    };
    let reply = reporter
        .command(doc! {
            "replSetUpdatePosition": 1,
            "optimes": [{
                "durableOpTime": last.to_doc(),
                "durableWallTime": DateTime::from_millis(wall),
                "appliedOpTime": last.to_doc(),
                "appliedWallTime": DateTime::from_millis(wall),
                "memberId": me as i32,
                "cfgver": shared.topology().set_version,
            }],
            "$replData": repl_data_request(shared, me),
            "$db": "admin",
        })
        .await?;
    learn(shared, me, &reply);
    Ok(())
}

/// The `$replData` a secondary attaches to its own requests.
fn repl_data_request(shared: &Shared, me: usize) -> Document {
    let topo = shared.topology();
    doc! {
        "term": topo.term,
        "lastOpCommitted": shared.members[me].commit_point().to_doc(),
        "configVersion": topo.set_version,
        "replicaSetId": shared.replica_set_id,
        "syncSourceIndex": topo.primary.map_or(-1, |p| p as i32),
    }
}
