//! The demo's clusters: the testbed's Cassandra cluster and MongoDB replica set on
//! loopback addresses of their own (127.0.77.x, 127.0.78.x) and ports the system
//! picks, so nothing real on 9042 or 27017 is touched.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, Result};
use tidemark_testbed::{ClusterConfig, CqlCluster, MongoReplicaSet, ReplSetConfig};

/// Both clusters, stopped when dropped with the runtime that serves them.
pub struct Clusters {
    pub cql: CqlCluster,
    pub mongo: MongoReplicaSet,
}

impl Clusters {
    pub async fn start() -> Result<Clusters> {
        let cql = CqlCluster::start(ClusterConfig {
            nodes: 3,
            base_addr: Ipv4Addr::new(127, 0, 77, 1),
            port: 0,
            cluster_name: "tidemark-demo".into(),
            ..ClusterConfig::default()
        })
        .await
        .context("start the Cassandra testbed")?;
        let mongo = MongoReplicaSet::start(ReplSetConfig {
            base_addr: Ipv4Addr::new(127, 0, 78, 1),
            port: 0,
            max_await: Duration::from_secs(1),
            election_timeout: Duration::from_secs(2),
            heartbeat_interval: Duration::from_millis(250),
            ..ReplSetConfig::default()
        })
        .await
        .context("start the MongoDB testbed")?;
        Ok(Clusters { cql, mongo })
    }

    pub fn cql_port(&self) -> u16 {
        self.cql.addresses()[0].port()
    }

    pub fn mongo_port(&self) -> u16 {
        self.mongo.addresses()[0].port()
    }

    /// `cql://` of every node up now.
    pub fn cql_uri(&self) -> String {
        let hosts: Vec<String> = self.cql.addresses().iter().map(|a| a.to_string()).collect();
        format!("cql://{}", hosts.join(","))
    }

    pub fn stop(self) {
        self.cql.stop();
        self.mongo.stop();
    }
}
