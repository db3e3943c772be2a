//! Command-line entry point: argument parsing only. Every command is a library call.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tidemark",
    version,
    about = "Point-in-time backup and restore for Cassandra and MongoDB by watching the wire"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode captures (or a live interface) and report flows, messages and writes.
    Inspect(InspectArgs),
}

#[derive(Args)]
struct InspectArgs {
    /// pcap or pcapng files, read in time order as one capture.
    #[arg(
        value_name = "FILE",
        required_unless_present = "interface",
        conflicts_with = "interface"
    )]
    files: Vec<PathBuf>,
    /// Capture live from this network interface instead of files.
    #[arg(long, value_name = "IF")]
    interface: Option<String>,
    /// With --interface: stop after this many seconds.
    #[arg(long, value_name = "S", requires = "interface")]
    duration: Option<f64>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// A port that carries CQL (repeatable; default 9042).
    #[arg(long = "cql-port", value_name = "PORT")]
    cql_ports: Vec<u16>,
    /// A port that carries the MongoDB wire protocol (repeatable; default 27017).
    #[arg(long = "mongo-port", value_name = "PORT")]
    mongo_ports: Vec<u16>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tidemark::logging::init();
    let result = match cli.command {
        Command::Inspect(a) => tidemark::inspect::run(tidemark::inspect::InspectOptions {
            files: a.files,
            interface: a.interface,
            duration: a.duration.map(std::time::Duration::from_secs_f64),
            json: a.json,
            cql_ports: a.cql_ports,
            mongo_ports: a.mongo_ports,
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tidemark: {e:#}");
            ExitCode::from(2)
        }
    }
}
