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
        } => {
            let cfg = ReplSetConfig {
                members,
                base_addr,
                port,
                set_name,
                ..ReplSetConfig::default()
            };
            let set = MongoReplicaSet::start(cfg).await?;
            for a in set.addresses() {
                println!("member listening on {a}");
            }
            println!("connection string: {}", set.uri());
            tokio::signal::ctrl_c().await?;
            set.stop();
        }
    }
    Ok(())
}
