//! Real replication traffic, recorded: the testbed's replica set (tidemark-testbed)
//! runs in-process on its own loopback addresses while libpcap records `lo`; its
//! secondaries fetch the oplog from the primary over real TCP (tailable `find`, then
//! `getMore`s carrying `$replData`/`$oplogQueryData`) and report their positions with
//! `replSetUpdatePosition`. The recording goes through `inspect_all` (the capture
//! path), and its `replication` records must equal the testbed's ground truth: each
//! fetcher's oplog entries are the primary's oplog, byte for byte; the last commit
//! point each fetcher saw, and the hello reply's `majorityOpTime`, are the set's commit
//! point; each secondary's last reported durable optime is what the primary recorded.
//! The client's insert lines carry, as raw BSON, exactly the documents the oplog has.
//!
//! Needs capture rights on `lo` (root or CAP_NET_RAW), through `require`.

mod require;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark::decode::records::{Record, ReplicationEvent};
use tidemark::decode::registry::default_registry;
use tidemark::inspect::{inspect_all, InspectOptions};
use tidemark::store::envelope::{MongoOp, MongoOpKind, OpTime};
use tidemark_testbed::mongo::tidemark_mongo::bson::{doc, Bson, Document, RawDocumentBuf};
use tidemark_testbed::mongo::tidemark_mongo::{
    encode_message, Body, Decoder, Doc, Limits, Message, OpMsg,
};
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bound for anything the set must do (a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(60);
const BASE: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 1);

/// Records `lo` traffic of 127.0.77.0/24 into a pcap file on a thread.
struct Recorder {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<u64, String>>,
}

impl Recorder {
    /// `None` when `lo` cannot be captured here (no rights, no libpcap).
    fn start(path: &Path) -> Option<Recorder> {
        let cap = pcap::Capture::from_device("lo").and_then(|c| {
            c.immediate_mode(true)
                .snaplen(65535)
                .buffer_size(32 << 20)
                .open()
        });
        let cap = match cap {
            Ok(c) => c,
            Err(e) => {
                require::missing(
                    "live capture on lo",
                    &e.to_string(),
                    "run the tests as root or with CAP_NET_RAW; scripts/setup.sh installs libpcap",
                );
                return None;
            }
        };
        let mut cap = cap;
        cap.filter("tcp and net 127.0.77.0/24", true)
            .expect("BPF filter compiles");
        let mut save = cap.savefile(path).expect("pcap file");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // Non-blocking reads: a blocking read's timeout is not honoured everywhere.
        let mut cap = cap.setnonblock().expect("non-blocking capture");
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            let mut quiet_after_stop = 0;
            loop {
                match cap.next_packet() {
                    Ok(p) => {
                        save.write(&p);
                        n += 1;
                        quiet_after_stop = 0;
                    }
                    // Loopback packets reach the capture ring during the send itself:
                    // once stopped, a few empty polls mean everything is recorded.
                    Err(pcap::Error::TimeoutExpired) => {
                        if flag.load(Ordering::SeqCst) {
                            quiet_after_stop += 1;
                            if quiet_after_stop > 5 {
                                break;
                            }
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            save.flush().map_err(|e| e.to_string())?;
            // A dropped packet would show up below as a confusing mismatch.
            match cap.stats() {
                Ok(st) if st.dropped > 0 => {
                    Err(format!("the capture dropped {} packets", st.dropped))
                }
                _ => Ok(n),
            }
        });
        Some(Recorder { stop, thread })
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .join()
            .expect("recorder thread")
            .expect("recording")
    }
}

/// A minimal OP_MSG client.
struct Client {
    sock: TcpStream,
    dec: Decoder,
    next_id: i32,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let sock = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Client {
            sock,
            dec: Decoder::new(Limits::default()),
            next_id: 0,
        }
    }

    async fn command(&mut self, cmd: Document) -> Document {
        self.next_id += 1;
        let raw = RawDocumentBuf::try_from(&cmd).unwrap();
        let m = Message::new(self.next_id, 0, Body::Msg(OpMsg::new(Doc::from(raw))));
        self.sock
            .write_all(&encode_message(&m).unwrap())
            .await
            .unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let reply = loop {
            if let Some(r) = self.dec.next().expect("reply decodes") {
                break r;
            }
            let n = tokio::time::timeout(WAIT, self.sock.read(&mut buf))
                .await
                .expect("reply in time")
                .expect("read");
            assert!(n > 0, "server closed");
            self.dec.feed(&buf[..n]);
        };
        assert_eq!(reply.response_to, self.next_id);
        Document::try_from(reply.reply_document().expect("reply document")).unwrap()
    }
}

fn store_optime(o: tidemark_testbed::mongo::OpTime) -> OpTime {
    OpTime {
        ts: (u64::from(o.ts.0) << 32) | u64::from(o.ts.1),
        t: o.t,
    }
}

fn bytes(d: &Document) -> Vec<u8> {
    RawDocumentBuf::try_from(d).unwrap().into_bytes()
}

/// The record an oplog entry of the ground truth must become.
fn expected_entry(d: &Document) -> ReplicationEvent {
    let ts = d.get_timestamp("ts").unwrap();
    let at = OpTime {
        ts: (u64::from(ts.time) << 32) | u64::from(ts.increment),
        t: d.get_i64("t").unwrap(),
    };
    let op = match d.get_str("op").unwrap() {
        "i" => MongoOpKind::Insert,
        "u" => MongoOpKind::Update,
        "d" => MongoOpKind::Delete,
        "c" => MongoOpKind::Command,
        _ => MongoOpKind::Noop,
    };
    ReplicationEvent::OplogEntry {
        optime: at,
        wall: d.get_datetime("wall").ok().map(|w| w.timestamp_millis()),
        op: MongoOp {
            op,
            ns: d.get_str("ns").unwrap().to_owned(),
            o: bytes(d.get_document("o").unwrap()).into(),
            o2: d.get_document("o2").ok().map(|o| bytes(o).into()),
            optime: Some(at),
            // The session fields the testbed writes for retryable writes (as mongod).
            lsid: d.get_document("lsid").ok().and_then(|l| match l.get("id") {
                Some(Bson::Binary(b)) => <[u8; 16]>::try_from(b.bytes.as_slice()).ok(),
                _ => None,
            }),
            txn_number: d.get_i64("txnNumber").ok(),
            stmt_id: d.get_i32("stmtId").ok(),
        },
    }
}

/// What the test did and what the set says is true, read before it stops.
struct Truth {
    oplog: Vec<Document>,
    commit: OpTime,
    progress: Vec<OpTime>,
    primary_host: String,
    inserted: Vec<Document>,
    port: u16,
}

async fn run_set_traffic() -> Truth {
    let set = MongoReplicaSet::start(ReplSetConfig {
        base_addr: BASE,
        port: 0,
        max_await: Duration::from_millis(200),
        ..ReplSetConfig::default()
    })
    .await
    .expect("replica set starts");
    let primary = set.addresses()[0];
    let mut c = Client::connect(primary).await;
    let lsid = doc! {"id": Bson::Binary(tidemark_testbed::mongo::tidemark_mongo::bson::Binary {
        subtype: tidemark_testbed::mongo::tidemark_mongo::bson::spec::BinarySubtype::Uuid,
        bytes: vec![5; 16],
    })};
    let inserted: Vec<Document> = (0..4)
        .map(|i| doc! {"_id": i, "name": format!("item{i}"), "price": 1.5 * f64::from(i), "qty": 10_i64 * i64::from(i)})
        .collect();
    let r = c
        .command(doc! {
            "insert": "items", "documents": inserted.clone(), "lsid": lsid.clone(),
            "txnNumber": 1_i64, "writeConcern": {"w": "majority"}, "$db": "shop",
        })
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(4), "{r}");
    let r = c
        .command(doc! {
            "update": "items", "updates": [{"q": {"_id": 1}, "u": {"$set": {"qty": 99}}}],
            "lsid": lsid.clone(), "txnNumber": 2_i64, "$db": "shop",
        })
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(1), "{r}");
    let r = c
        .command(doc! {
            "delete": "items", "deletes": [{"q": {"_id": 2}, "limit": 1}],
            "writeConcern": {"w": "majority"}, "$db": "shop",
        })
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(1), "{r}");
    // bounded wait: every member knows the commit point at the primary's last entry
    let deadline = Instant::now() + WAIT;
    let last = set.last_applied(0).expect("primary has an oplog");
    while (0..3).any(|m| set.commit_point(m) != Some(last) || set.last_applied(m) != Some(last)) {
        assert!(
            Instant::now() < deadline,
            "members did not converge in {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hello = c.command(doc! {"hello": 1, "$db": "admin"}).await;
    let truth = Truth {
        oplog: set.oplog(0),
        commit: store_optime(set.commit_point(0).unwrap()),
        progress: set
            .shared()
            .progress()
            .into_iter()
            .map(store_optime)
            .collect(),
        primary_host: hello.get_str("primary").unwrap().to_owned(),
        inserted,
        port: primary.port(),
    };
    assert_eq!(truth.commit, store_optime(last));
    set.stop();
    truth
}

fn events_by_flow(records: &[Record]) -> std::collections::BTreeMap<u64, Vec<&ReplicationEvent>> {
    let mut m = std::collections::BTreeMap::new();
    for r in records {
        if let Record::Replication(x) = r {
            m.entry(x.flow).or_insert_with(Vec::new).push(&x.event);
        }
    }
    m
}

/// The `lastOpCommitted` commit points among `events`, in order.
fn commit_points(events: &[&ReplicationEvent]) -> Vec<OpTime> {
    events
        .iter()
        .filter_map(|e| match e {
            ReplicationEvent::CommitPoint {
                optime,
                source: "lastOpCommitted",
            } => Some(*optime),
            _ => None,
        })
        .collect()
}

#[test]
fn recorded_replication_matches_the_testbed_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let pcap_path: PathBuf = dir.path().join("replset.pcap");
    let Some(recorder) = Recorder::start(&pcap_path) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let truth = rt.block_on(run_set_traffic());
    // let the stopped set's sockets close before the recorder stops
    rt.shutdown_timeout(Duration::from_secs(5));
    let packets = recorder.finish();
    assert!(packets > 0, "nothing recorded");

    let options = InspectOptions {
        files: vec![pcap_path],
        mongo_ports: vec![truth.port],
        json: true,
        ..InspectOptions::default()
    };
    let mut records = Vec::new();
    inspect_all(&options, default_registry(), |r| {
        records.push(r.clone());
        Ok(())
    })
    .expect("the recording inspects");
    let errors: Vec<&Record> = records
        .iter()
        .filter(|r| matches!(r, Record::Error(_)))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");

    let want_entries: Vec<ReplicationEvent> = truth.oplog.iter().map(expected_entry).collect();
    assert!(
        want_entries.len() >= 5,
        "create + 4 inserts + update + delete"
    );
    let by_flow = events_by_flow(&records);
    let mut fetchers = 0;
    for events in by_flow.values() {
        let mut entries: Vec<&ReplicationEvent> = Vec::new();
        for e in events
            .iter()
            .filter(|e| matches!(e, ReplicationEvent::OplogEntry { .. }))
        {
            // a fetcher that restarted its cursor sees entries again: keep the first
            if !entries.contains(e) {
                entries.push(e);
            }
        }
        if entries.is_empty() {
            continue;
        }
        fetchers += 1;
        let entries: Vec<ReplicationEvent> = entries.into_iter().cloned().collect();
        assert_eq!(entries, want_entries, "a fetcher's oplog is the primary's");
        let commits = commit_points(events);
        assert!(commits.iter().all(|c| *c <= truth.commit), "{commits:?}");
    }
    assert_eq!(fetchers, 2, "both secondaries fetch from the primary");

    // The last commit point a secondary learns comes from its fetcher's or its
    // reporter's replies (all from 127.0.0.1, so not told apart by address): the
    // highest seen on any flow is the set's, every flow's rise to at most it.
    let mut highest = None;
    for events in by_flow.values() {
        let commits = commit_points(events);
        assert!(commits.windows(2).all(|w| w[0] <= w[1]), "{commits:?}");
        highest = highest.max(commits.last().copied());
    }
    assert_eq!(highest, Some(truth.commit));

    // replSetUpdatePosition: each secondary's last durable optime is the primary's record
    for member in 1..3usize {
        let last = records.iter().rev().find_map(|r| match r {
            Record::Replication(x) => match &x.event {
                ReplicationEvent::MemberPositions { durable } => durable
                    .iter()
                    .find(|(id, _)| *id == member as i64)
                    .map(|(_, o)| *o),
                _ => None,
            },
            _ => None,
        });
        assert_eq!(last, Some(truth.progress[member]), "member {member}");
    }

    // hello replies: the topology, and the client's last hello's majorityOpTime
    let all: Vec<&ReplicationEvent> = by_flow.values().flatten().copied().collect();
    let topo = ReplicationEvent::Topology {
        set_name: Some("rs0".into()),
        hosts: Vec::new(), // not compared: the members' addresses are the testbed's
        members: 3,
        primary: Some(truth.primary_host.clone()),
        term: Some(1),
        arbiters: 0,
        max_wire_version: Some(17),
    };
    let topologies: Vec<&&ReplicationEvent> = all
        .iter()
        .filter(|e| matches!(e, ReplicationEvent::Topology { .. }))
        .collect();
    assert!(!topologies.is_empty());
    // A member that has not written in the current term yet may report the term of
    // its last write (0 before any); the highest term reported is the set's.
    let same_but_term = |e: &ReplicationEvent| match (e, &topo) {
        (
            ReplicationEvent::Topology {
                set_name,
                members,
                primary,
                term,
                ..
            },
            ReplicationEvent::Topology {
                set_name: s,
                members: m,
                primary: p,
                ..
            },
        ) => set_name == s && members == m && primary == p && term.is_some_and(|t| t <= 1),
        _ => false,
    };
    assert!(
        topologies.iter().all(|e| same_but_term(e)),
        "{topologies:?}"
    );
    // The highest term, and every member named (hosts are the testbed's addresses).
    assert!(
        topologies.iter().any(|e| {
            let mut e = (***e).clone();
            let named_all = match &mut e {
                ReplicationEvent::Topology { hosts, .. } => std::mem::take(hosts).len() == 3,
                _ => false,
            };
            named_all && e == topo
        }),
        "{topologies:?}"
    );
    let majority: Vec<OpTime> = all
        .iter()
        .filter_map(|e| match e {
            ReplicationEvent::CommitPoint {
                optime,
                source: "majorityOpTime",
            } => Some(*optime),
            _ => None,
        })
        .collect();
    // the client's hello came after convergence; no earlier one can be ahead of it
    assert_eq!(majority.iter().max(), Some(&truth.commit), "{majority:?}");

    // the client's insert lines carry the documents the oplog has, byte for byte
    let inserts: Vec<&MongoOp> = records
        .iter()
        .filter_map(|r| match r {
            Record::Write(w) if w.op == "insert" => w.extras.mongo_op.as_ref(),
            _ => None,
        })
        .collect();
    let want: Vec<Vec<u8>> = truth.inserted.iter().map(bytes).collect();
    let got: Vec<Vec<u8>> = inserts.iter().map(|o| o.o.to_vec()).collect();
    assert_eq!(got, want);
    for (i, o) in inserts.iter().enumerate() {
        assert_eq!(
            (o.lsid, o.txn_number, o.stmt_id),
            (Some([5; 16]), Some(1), Some(i as i32))
        );
        let in_oplog = want_entries.iter().any(|e| {
            matches!(e, ReplicationEvent::OplogEntry { op, .. } if op.op == MongoOpKind::Insert && op.o == o.o)
        });
        assert!(in_oplog, "insert {i} is in the oplog");
    }
}
