//! The real drivers through `tidemark proxy` in front of testbed nodes: what they
//! get is what the nodes answered, and the proxy's store holds exactly their writes
//! as committed — checked against the testbed's own ground truth, not against
//! tidemark — and its Prometheus endpoint counts them.

mod proxy_support;
mod ready_support;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use proxy_support::{free_port, sample, scrape, start_proxy, stop};
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::statement::unprepared::Statement;
use scylla::statement::Consistency;
use tidemark_testbed::{ClusterConfig, CqlCluster, MongoReplicaSet, ReplSetConfig};

#[test]
fn drivers_through_the_proxy_get_the_nodes_answers_and_the_store_holds_their_writes() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cluster = rt
        .block_on(CqlCluster::start(ClusterConfig {
            nodes: 1,
            base_addr: Ipv4Addr::new(127, 0, 89, 1),
            port: 0,
            ..ClusterConfig::default()
        }))
        .unwrap();
    let set = rt
        .block_on(MongoReplicaSet::start(ReplSetConfig {
            members: 1,
            base_addr: Ipv4Addr::new(127, 0, 89, 11),
            port: 0,
            ..ReplSetConfig::default()
        }))
        .unwrap();
    let ip = Ipv4Addr::new(127, 0, 89, 100);
    let (cql_listen, mongo_listen, metrics) = (
        SocketAddr::from((ip, free_port(ip))),
        SocketAddr::from((ip, free_port(ip))),
        SocketAddr::from((ip, free_port(ip))),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (proxy, err) = start_proxy(
        &[
            "--route".into(),
            format!("{cql_listen}={}", cluster.addresses()[0]),
            "--route".into(),
            format!("{mongo_listen}={}", set.addresses()[0]),
            "--metrics".into(),
            metrics.to_string(),
        ],
        &store,
        &[],
    );

    let (cql_rows, mongo_docs) = (200i32, 100i32);
    rt.block_on(async {
        let session = SessionBuilder::new()
            .known_node(cql_listen.to_string())
            .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
            .build()
            .await
            .expect("connect through the proxy");
        for q in [
            "CREATE KEYSPACE px WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
            "CREATE TABLE px.t (id int PRIMARY KEY, v text)",
        ] {
            session.query_unpaged(q, ()).await.expect(q);
        }
        let mut insert = session
            .prepare("INSERT INTO px.t (id, v) VALUES (?, ?)")
            .await
            .unwrap();
        insert.set_consistency(Consistency::One);
        for i in 0..cql_rows {
            session
                .execute_unpaged(&insert, (i, format!("v{i}")))
                .await
                .expect("insert through the proxy");
        }
        // What the driver reads back through the proxy is what the node holds.
        let mut count = Statement::new("SELECT COUNT(*) FROM px.t");
        count.set_consistency(Consistency::One);
        let (n,): (i64,) = session
            .query_unpaged(count, ())
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .single_row()
            .unwrap();
        assert_eq!(n, i64::from(cql_rows));

        let client = mongodb::Client::with_uri_str(format!(
            "mongodb://{mongo_listen}/?directConnection=true&serverSelectionTimeoutMS=20000"
        ))
        .await
        .unwrap();
        let coll = client.database("pxdb").collection::<Document>("c");
        for i in 0..mongo_docs {
            coll.insert_one(doc! { "_id": i, "v": format!("d{i}") })
                .await
                .expect("insert through the proxy");
        }
        let back = coll.count_documents(doc! {}).await.unwrap();
        assert_eq!(back, mongo_docs as u64);
        client.shutdown().await;
    });

    // The proxy's metrics count the connections, bytes and, once decided, the writes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = scrape(metrics);
        if sample(&text, "tidemark_proxy_appended_total") >= f64::from(cql_rows + mongo_docs) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the writes were never appended: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        sample(&text, "tidemark_proxy_connections_total") >= 2.0,
        "{text}"
    );
    assert!(sample(&text, "tidemark_proxy_bytes_total{direction=\"c2s\"}") > 10_000.0);
    assert!(sample(&text, "tidemark_proxy_bytes_total{direction=\"s2c\"}") > 10_000.0);
    assert_eq!(sample(&text, "tidemark_proxy_gap_bytes_total"), 0.0);
    assert!(
        sample(&text, "tidemark_proxy_tidemark_lag_seconds") < 60.0,
        "{text}"
    );
    assert!(
        sample(&text, "tidemark_proxy_writes_total{outcome=\"committed\"}")
            >= f64::from(cql_rows + mongo_docs),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "tidemark_proxy_messages_total{protocol=\"cql\",opcode=\"EXECUTE\"}"
        ) >= f64::from(cql_rows),
        "{text}"
    );
    assert_eq!(
        sample(&text, "tidemark_proxy_decode_errors_total"),
        0.0,
        "{text}"
    );

    let (status, out, rest) = stop(proxy, err);
    assert!(status.success(), "{out} {rest:?}");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["gap_bytes"], 0);

    // The store: exactly the drivers' writes, committed; compared with the nodes'
    // own state.
    let log = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["log", "--json", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(log.status.success());
    let mut cql_keys = BTreeSet::new();
    let mut mongo_keys = BTreeSet::new();
    for line in String::from_utf8_lossy(&log.stdout).lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        if m["type"] != "mutation" {
            continue;
        }
        assert_eq!(m["outcome"], "committed", "{m}");
        match m["namespace"].as_str() {
            Some("px.t") if m["op"] == "insert" => {
                cql_keys.insert(m["key"]["id"].as_i64().unwrap());
            }
            Some("pxdb.c") if m["op"] == "insert" => {
                mongo_keys.insert(m["key"]["_id"].as_i64().unwrap());
            }
            _ => {}
        }
    }
    let truth_cql: BTreeSet<i64> = cluster
        .logical_state()
        .into_iter()
        .filter(|c| c.keyspace == "px" && c.table == "t")
        // The testbed names keys by their serialized bytes in hex (an int: 4 bytes).
        .map(|c| i64::from(u32::from_str_radix(&c.partition_key[0], 16).unwrap() as i32))
        .collect();
    assert_eq!(truth_cql.len(), cql_rows as usize);
    assert_eq!(cql_keys, truth_cql);
    let truth_mongo: BTreeSet<i64> = set
        .committed_state_at(set.newest_commit_point())
        .expect("committed state")
        .get("pxdb.c")
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|d| d.get_i32("_id").unwrap().into())
        .collect();
    assert_eq!(truth_mongo.len(), mongo_docs as usize);
    assert_eq!(mongo_keys, truth_mongo);
    cluster.stop();
    set.stop();
}
