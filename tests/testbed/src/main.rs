//! `tidemark-testbed`: runs a simulated cluster until interrupted.

use clap::{Parser, Subcommand};
use std::net::Ipv4Addr;
use tidemark_testbed::{ClusterConfig, CqlCluster, MongoReplicaSet, ReplSetConfig};

#[derive(Parser)]
#[command(
    about = "Simulated Cassandra cluster and MongoDB replica set speaking the real protocols (tests and demos only)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// A Cassandra-like cluster, one listener per node on consecutive loopback addresses.
    Cql {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value = "127.0.0.1")]
        base_addr: Ipv4Addr,
        #[arg(long, default_value_t = 9042)]
        port: u16,
        #[arg(long, default_value_t = 16)]
        num_tokens: usize,
        #[arg(long, default_value = "datacenter1")]
        datacenter: String,
        /// Require PasswordAuthenticator logins as this user (with --password).
        #[arg(long, requires = "password")]
        user: Option<String>,
        /// The password of --user (a test credential; never use a real one).
        #[arg(long, requires = "user")]
        password: Option<String>,
        /// Serve the control endpoint (JSON over HTTP: stop/start/slow/add/remove
        /// nodes, clock skew, dumps) on this address, e.g. 127.0.0.1:8042.
        #[arg(long)]
        control: Option<std::net::SocketAddr>,
        /// Coordinator write timeout in milliseconds (WriteTimeout after this).
        #[arg(long, default_value_t = 2000)]
        write_timeout_ms: u64,
        /// Node slots kept free for adding nodes through the control endpoint.
        #[arg(long, default_value_t = 2)]
        spare_nodes: usize,
    },
    /// A MongoDB-like replica set, one member per consecutive loopback address;
    /// the first member is primary.
    Mongo {
        #[arg(long, default_value_t = 3)]
        members: usize,
        #[arg(long, default_value = "127.0.0.1")]
        base_addr: Ipv4Addr,
        #[arg(long, default_value_t = 27017)]
        port: u16,
        #[arg(long, default_value = "rs0")]
        set_name: String,
        /// settings.electionTimeoutMillis (a partitioned primary steps down, the others elect, after this).
        #[arg(long, default_value_t = 10_000)]
        election_timeout_ms: u64,
        /// settings.heartbeatIntervalMillis.
        #[arg(long, default_value_t = 2_000)]
        heartbeat_interval_ms: u64,
        /// Serve the control endpoint (JSON over HTTP: stop/start/partition members, ground truth) here.
        #[arg(long)]
        control: Option<std::net::SocketAddr>,
        /// Require SCRAM-SHA-256 as this user; the password is read from the
        /// environment variable TIDEMARK_TESTBED_SCRAM_PASSWORD (never from
        /// the command line, never logged).
        #[arg(long)]
        scram_user: Option<String>,
        /// On shutdown (Ctrl-C / SIGINT), write the ground truth (every
        /// member's oplog and the primary's documents, canonical extended
        /// JSON) to this file.
        #[arg(long)]
        truth_out: Option<std::path::PathBuf>,
    },
    /// A sharded MongoDB-like cluster: a config server replica set, N shard
    /// replica sets and mongos routers, on consecutive loopback addresses
    /// from --base-addr (config servers first, then shard 0, shard 1, ...,
    /// then the routers). Drivers connect to the routers.
    MongoSharded {
        #[arg(long, default_value_t = 2)]
        shards: usize,
        /// Members of each shard replica set and of the config server set.
        #[arg(long, default_value_t = 3)]
        members: usize,
        #[arg(long, default_value_t = 1)]
        routers: usize,
        #[arg(long, default_value = "127.0.0.1")]
        base_addr: Ipv4Addr,
        /// Every set and router listens on this port (0: one free port, used by all).
        #[arg(long, default_value_t = 27017)]
        port: u16,
        /// How long a donor keeps a migrated chunk's orphans.
        #[arg(long, default_value_t = 2_000)]
        range_deleter_delay_ms: u64,
        /// settings.electionTimeoutMillis of every replica set.
        #[arg(long, default_value_t = 10_000)]
        election_timeout_ms: u64,
        /// Serve the control endpoint (JSON over HTTP: balancer, chunk moves,
        /// ground truth, each replica set's routes) here.
        #[arg(long)]
        control: Option<std::net::SocketAddr>,
        /// On shutdown (Ctrl-C), write the cluster's ground truth (chunk-map
        /// history, logical and per-shard state, migrations) as JSON here.
        #[arg(long)]
        truth_out: Option<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().cmd {
        Cmd::Cql {
            nodes,
            base_addr,
            port,
            num_tokens,
            datacenter,
            user,
            password,
            control,
            write_timeout_ms,
            spare_nodes,
        } => {
            let cfg = ClusterConfig {
                nodes,
                base_addr,
                port,
                num_tokens,
                datacenter,
                credentials: user.zip(password),
                write_timeout: std::time::Duration::from_millis(write_timeout_ms),
                spare_nodes,
                ..ClusterConfig::default()
            };
            let cluster = CqlCluster::start(cfg).await?;
            for a in cluster.addresses() {
                println!("node listening on {a}");
            }
            let _control = match control {
                Some(addr) => {
                    let server = cluster.start_control(addr).await.map_err(|e| {
                        anyhow::anyhow!("cannot serve the control endpoint on {addr}: {e}")
                    })?;
                    println!("control endpoint on http://{}", server.local_addr());
                    Some(server)
                }
                None => None,
            };
            tokio::signal::ctrl_c().await?;
            cluster.stop();
        }
        Cmd::Mongo {
            members,
            base_addr,
            port,
            set_name,
            election_timeout_ms,
            heartbeat_interval_ms,
            control,
            scram_user,
            truth_out,
        } => {
            anyhow::ensure!(
                election_timeout_ms > 0 && heartbeat_interval_ms > 0,
                "--election-timeout-ms and --heartbeat-interval-ms must be positive"
            );
            let scram_user = match scram_user {
                None => None,
                Some(u) => {
                    let pw = std::env::var("TIDEMARK_TESTBED_SCRAM_PASSWORD").map_err(|_| {
                        anyhow::anyhow!("--scram-user needs TIDEMARK_TESTBED_SCRAM_PASSWORD set")
                    })?;
                    Some(tidemark_testbed::mongo::scram::ScramUser::new(&u, &pw))
                }
            };
            let cfg = ReplSetConfig {
                members,
                base_addr,
                port,
                set_name,
                election_timeout: std::time::Duration::from_millis(election_timeout_ms),
                heartbeat_interval: std::time::Duration::from_millis(heartbeat_interval_ms),
                scram_user,
                ..ReplSetConfig::default()
            };
            let set = std::sync::Arc::new(MongoReplicaSet::start(cfg).await?);
            for a in set.addresses() {
                println!("member listening on {a}");
            }
            println!("connection string: {}", set.uri());
            let server = match control {
                Some(addr) => {
                    let handler = tidemark_testbed::mongo::server::control::handler(set.clone());
                    let server = tidemark_testbed::control::ControlServer::start(addr, handler)
                        .await
                        .map_err(|e| anyhow::anyhow!("control endpoint on {addr}: {e}"))?;
                    println!("control endpoint: http://{}", server.local_addr());
                    Some(server)
                }
                None => None,
            };
            tokio::signal::ctrl_c().await?;
            if let Some(path) = truth_out {
                let truth = tidemark_testbed::mongo::server::set_truth::ground_truth_json(&set);
                std::fs::write(&path, serde_json::to_string_pretty(&truth)?)
                    .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
                println!("ground truth written to {}", path.display());
            }
            if let Some(s) = server {
                s.stop();
            }
            drop(set);
        }
        Cmd::MongoSharded {
            shards,
            members,
            routers,
            base_addr,
            port,
            range_deleter_delay_ms,
            election_timeout_ms,
            control,
            truth_out,
        } => {
            use tidemark_testbed::mongo::sharded::{
                control as sharded_control, MongoShardedCluster, ShardedConfig,
            };
            anyhow::ensure!(
                shards > 0 && members > 0 && routers > 0,
                "--shards, --members and --routers must be positive"
            );
            anyhow::ensure!(
                election_timeout_ms > 0,
                "--election-timeout-ms must be positive"
            );
            let cfg = ShardedConfig {
                shards,
                members,
                routers,
                base_addr,
                port,
                election_timeout: std::time::Duration::from_millis(election_timeout_ms),
                range_deleter_delay: std::time::Duration::from_millis(range_deleter_delay_ms),
                ..ShardedConfig::default()
            };
            let cluster = std::sync::Arc::new(
                MongoShardedCluster::start(cfg)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot start the sharded cluster: {e}"))?,
            );
            println!("config servers: {}", cluster.config_servers().uri());
            for s in cluster.shards() {
                println!("shard {}: {}", s.id, s.set.uri());
            }
            for a in cluster.router_addresses() {
                println!("router listening on {a}");
            }
            println!("connection string: {}", cluster.uri());
            let server = match control {
                Some(addr) => {
                    let handler = sharded_control::handler(cluster.clone());
                    let server = tidemark_testbed::control::ControlServer::start(addr, handler)
                        .await
                        .map_err(|e| anyhow::anyhow!("control endpoint on {addr}: {e}"))?;
                    println!("control endpoint: http://{}", server.local_addr());
                    Some(server)
                }
                None => None,
            };
            tokio::signal::ctrl_c().await?;
            if let Some(path) = truth_out {
                let truth = sharded_control::truth_json(&cluster);
                std::fs::write(&path, serde_json::to_string_pretty(&truth)?)
                    .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
                println!("ground truth written to {}", path.display());
            }
            if let Some(s) = server {
                s.stop();
            }
            drop(cluster);
        }
    }
    Ok(())
}
