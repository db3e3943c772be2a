//! `tidemark inspect`: read captures (or a live interface), reassemble TCP, detect
//! each flow's protocol, run its decoder, and report flows, decoded records and a
//! summary, as a table or as JSON lines.
//!
//! [`inspect`] is the library entry point (records go to a callback, so tests and
//! other commands can use it); [`run`] is the CLI's, printing to stdout. The decoding
//! itself (detection, the per-flow seam, the session, the records) lives in
//! [`crate::decode`]; this module only drives it and prints.

mod table;

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::capture::{
    Assembler, AssemblerConfig, Next, ReassemblyConfig, Source, SourceSpec, Timestamp,
};
use crate::decode::detect::PortMap;
use crate::decode::records::Record;
use crate::decode::registry::{default_registry, DecoderRegistry};
use crate::decode::session::Session;
use table::TableOutput;

/// How long a live inspection waits for a packet before looking again whether it
/// has ended (inspect has no timed work of its own).
const QUIET_POLL: Duration = Duration::from_millis(500);

/// What `tidemark inspect` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct InspectOptions {
    pub files: Vec<PathBuf>,
    pub interface: Option<String>,
    pub duration: Option<Duration>,
    pub json: bool,
    /// Ports carrying CQL, in addition to 9042.
    pub cql_ports: Vec<u16>,
    /// Ports carrying MongoDB, in addition to 27017.
    pub mongo_ports: Vec<u16>,
}

/// How a finished inspection went, beyond its records.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Errors met while reading sources after they opened (e.g. a file cut off
    /// mid-packet); everything before them was inspected.
    pub read_errors: Vec<String>,
}

impl InspectOptions {
    /// Where the frames come from.
    pub fn source(&self) -> SourceSpec {
        SourceSpec {
            files: self.files.clone(),
            interface: self.interface.clone(),
            duration: self.duration,
        }
    }
}

/// Runs an inspection, handing every record `inspect` prints to `sink` as it is
/// produced. `replication` records are not among them (ARCHITECTURE.md fixes the
/// output vocabulary); [`inspect_all`] includes them.
pub fn inspect(
    options: &InspectOptions,
    registry: DecoderRegistry,
    mut sink: impl FnMut(&Record) -> io::Result<()>,
) -> anyhow::Result<Outcome> {
    inspect_all(options, registry, |r| match r {
        Record::Replication(_) => Ok(()),
        other => sink(other),
    })
}

/// Like [`inspect`], but every record the decoders produce goes to `sink`, the
/// MongoDB `replication` records included (for the commit tracker and its tests).
pub fn inspect_all(
    options: &InspectOptions,
    registry: DecoderRegistry,
    mut sink: impl FnMut(&Record) -> io::Result<()>,
) -> anyhow::Result<Outcome> {
    let ports = PortMap::new(&options.cql_ports, &options.mongo_ports);
    let mut source = Source::open(&options.source(), &ports.all())?;
    if let Some(name) = &options.interface {
        // The capture is open and its SIGINT/SIGTERM handlers are installed: whoever
        // drives a live inspection (a person, a test) can start traffic and signal
        // from here on without guessing how long startup takes.
        eprintln!("tidemark: capturing on {name}");
    }
    let mut assembler = Assembler::new(AssemblerConfig {
        reassembly: ReassemblyConfig {
            server_ports: ports.all(),
            ..ReassemblyConfig::default()
        },
        ..AssemblerConfig::default()
    });
    let mut session = Session::new(ports, registry);
    let mut events = Vec::new();
    let mut records = Vec::new();
    let mut last_ts = Timestamp(0);
    let mut read_errors = Vec::new();
    loop {
        let pkt = match source.next_until(std::time::Instant::now() + QUIET_POLL) {
            Next::Packet(p) => p,
            Next::Quiet => continue,
            Next::End => break,
            Next::Failed(e) => {
                read_errors.push(e);
                break;
            }
        };
        last_ts = last_ts.max(pkt.ts);
        assembler.packet(&pkt, &mut events);
        drain(&mut session, &mut events, &mut records, &mut sink)?;
    }
    assembler.finish(&mut events);
    drain(&mut session, &mut events, &mut records, &mut sink)?;
    read_errors.extend(source.take_errors());
    assembler.stats_mut().read_errors += read_errors.len() as u64;
    for e in &read_errors {
        records.push(session.capture_error(e.clone()));
    }
    session.finish(assembler.stats(), last_ts, &mut records);
    for r in records.drain(..) {
        sink(&r).context("writing output")?;
    }
    Ok(Outcome { read_errors })
}

fn drain(
    session: &mut Session,
    events: &mut Vec<crate::capture::StreamEvent>,
    records: &mut Vec<Record>,
    sink: &mut impl FnMut(&Record) -> io::Result<()>,
) -> anyhow::Result<()> {
    for ev in events.drain(..) {
        session.event(ev, records);
    }
    for r in records.drain(..) {
        sink(&r).context("writing output")?;
    }
    Ok(())
}

/// Runs an inspection for the CLI and returns the process exit code: 0, or 1 when a
/// source failed part-way (its error is reported and everything before it was
/// inspected). Errors that stop the run before it starts are returned.
pub fn run(options: InspectOptions) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    let mut table = TableOutput::default();
    let json = options.json;
    // A live capture's lines go out as they are decoded (a reader follows the
    // traffic as it happens); a file's stay buffered for speed.
    let live = options.interface.is_some();
    let result = inspect(&options, default_registry(), |r| {
        if json {
            serde_json::to_writer(&mut w, r).map_err(io::Error::from)?;
            w.write_all(b"\n")?;
            if live {
                w.flush()?;
            }
            Ok(())
        } else {
            table.record(r);
            Ok(())
        }
    });
    let outcome = match result {
        Ok(o) => o,
        Err(e) if is_broken_pipe(&e) => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e),
    };
    let printed = if json { Ok(()) } else { table.print(&mut w) }.and_then(|_| w.flush());
    match printed {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        other => other.context("writing output")?,
    }
    for e in &outcome.read_errors {
        eprintln!("tidemark: {e}");
    }
    Ok(if outcome.read_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
}
