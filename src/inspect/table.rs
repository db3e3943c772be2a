//! The human-readable form of inspect's output: a table of flows, then errors and
//! the summary. Flows are listed in flow-id order at the end, so the table reads the
//! same however flows interleaved.

use std::io::{self, Write};

use crate::decode::records::{FlowRecord, Record, SummaryRecord};

/// Collects records and prints them as a table.
#[derive(Default)]
pub struct TableOutput {
    flows: Vec<FlowRecord>,
    errors: Vec<String>,
    messages: u64,
    /// Writes by outcome, in first-seen order of outcomes.
    writes: Vec<(&'static str, u64)>,
    summary: Option<SummaryRecord>,
}

impl TableOutput {
    pub fn record(&mut self, r: &Record) {
        match r {
            Record::Flow(f) => self.flows.push(f.clone()),
            Record::Error(e) => {
                let place = match (e.flow, e.dir, e.offset) {
                    (Some(f), Some(d), Some(o)) => format!("flow {f} {d} @{o}: "),
                    (Some(f), _, _) => format!("flow {f}: "),
                    _ => String::new(),
                };
                self.errors.push(format!("{place}{}", e.message));
            }
            Record::Message(_) => self.messages += 1,
            Record::Write(wr) => match self
                .writes
                .iter_mut()
                .find(|(o, _)| *o == wr.outcome.as_str())
            {
                Some((_, n)) => *n += 1,
                None => self.writes.push((wr.outcome.as_str(), 1)),
            },
            Record::Summary(s) => self.summary = Some(s.clone()),
            // Replication evidence is for the commit tracker, not inspect's output.
            Record::Replication(_) => {}
        }
    }

    pub fn print(&mut self, w: &mut dyn Write) -> io::Result<()> {
        self.flows.sort_by_key(|f| f.flow);
        let cw = self
            .flows
            .iter()
            .map(|f| f.client.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let sw = self
            .flows
            .iter()
            .map(|f| f.server.len())
            .max()
            .unwrap_or(6)
            .max(6);
        writeln!(
            w,
            "{:>5}  {:<cw$}  {:<sw$}  {:<7}  {:>12}  {:>12}  {:>5}  STATE",
            "FLOW", "CLIENT", "SERVER", "PROTO", "BYTES C→S", "BYTES S→C", "GAPS"
        )?;
        for f in &self.flows {
            writeln!(
                w,
                "{:>5}  {:<cw$}  {:<sw$}  {:<7}  {:>12}  {:>12}  {:>5}  {}",
                f.flow,
                f.client,
                f.server,
                f.protocol.as_str(),
                f.bytes_c2s,
                f.bytes_s2c,
                f.gaps,
                f.state
            )?;
        }
        if self.messages > 0 || !self.writes.is_empty() {
            let total: u64 = self.writes.iter().map(|(_, n)| n).sum();
            let by: Vec<String> = self
                .writes
                .iter()
                .map(|(o, n)| format!("{o} {n}"))
                .collect();
            writeln!(
                w,
                "{} messages; {} writes ({})",
                self.messages,
                total,
                by.join(", ")
            )?;
        }
        for e in &self.errors {
            writeln!(w, "error: {e}")?;
        }
        if let Some(s) = &self.summary {
            writeln!(
                w,
                "{} flows (cql {}, mongo {}, unknown {}); {} packets; {} bytes c→s, {} bytes s→c; {} gaps ({} bytes); {} errors",
                s.flows,
                s.protocols.cql,
                s.protocols.mongo,
                s.protocols.unknown,
                s.capture.packets,
                s.bytes_c2s,
                s.bytes_s2c,
                s.gaps,
                s.gap_bytes,
                s.errors
            )?;
            if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(&s.capture) {
                let nonzero: Vec<String> = m
                    .iter()
                    .filter(|(_, v)| v.as_u64().is_some_and(|n| n > 0))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                writeln!(w, "capture: {}", nonzero.join(" "))?;
            }
        }
        Ok(())
    }
}
