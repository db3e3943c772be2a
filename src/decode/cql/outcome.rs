//! The outcome of a CQL write from the response it got, by ARCHITECTURE.md's "Outcome
//! rules" (each rule is named in a comment where it is applied).

use crate::decode::records::WireOutcome;
use tidemark_cql::message::{error_code as code, ErrorBody, ErrorDetails, ResultBody};
use tidemark_cql::{ColumnType, Message, Value};

use crate::decode::reason::{Reason, WriteReason};

/// `(outcome, reason)` of a write line.
pub type Decision = (WireOutcome, Option<WriteReason>);

/// A reason with nothing after its words.
fn just(r: Reason) -> Option<WriteReason> {
    Some(WriteReason::new(r))
}

/// Decides the outcome of a write request from its response message. `lwt` says the
/// statement was conditional (its Rows result carries `[applied]`).
pub fn decide(response: &Message, lwt: bool) -> Decision {
    match response {
        Message::Result(r) => result(r, lwt),
        Message::Error(e) => error(e),
        // Anything else answering a write is not a decision the rules know.
        _ => (WireOutcome::InDoubt, just(Reason::UnexpectedResponse)),
    }
}

fn result(r: &ResultBody, lwt: bool) -> Decision {
    // RESULT (Void, Rows for LWT, Schema_change) → committed, except an LWT whose
    // `[applied]` column is false → rejected.
    // A write answered with an `[applied]` column was an LWT even if its statement
    // is not known (an unresolved EXECUTE).
    if let ResultBody::Rows(rows) = r {
        let named = rows
            .metadata
            .columns
            .iter()
            .any(|c| c.name.as_str() == "[applied]");
        if (lwt || named) && applied(rows) == Some(false) {
            return (WireOutcome::Rejected, just(Reason::NotApplied));
        }
    }
    (WireOutcome::Committed, None)
}

/// The `[applied]` cell of an LWT result's first row.
pub fn applied(rows: &tidemark_cql::message::Rows) -> Option<bool> {
    let col = rows
        .metadata
        .columns
        .iter()
        .position(|c| c.name.as_str() == "[applied]")
        .unwrap_or(0);
    let row = rows.rows().next()?.ok()?;
    let cell = row.get(col)?.as_ref()?;
    match Value::decode(&ColumnType::Boolean, cell).ok()? {
        Value::Boolean(b) => Some(b),
        _ => None,
    }
}

fn timeout(write_type: &str, received: i32, block_for: i32) -> Decision {
    match write_type {
        // The batchlog was written, so the logged batch will be replayed.
        "BATCH" => (WireOutcome::Committed, just(Reason::BatchlogWritten)),
        // The batchlog write itself timed out.
        "BATCH_LOG" => (WireOutcome::InDoubt, just(Reason::Batchlog)),
        // Some partitions may have landed: each member is in doubt.
        "UNLOGGED_BATCH" => (WireOutcome::InDoubt, just(Reason::Timeout)),
        "CAS" => (WireOutcome::InDoubt, just(Reason::CasUnknown)),
        // SIMPLE, COUNTER, VIEW, CDC: a replica applied it and will propagate it.
        _ if received >= 1 => (
            WireOutcome::Committed,
            Some(WriteReason::with(
                Reason::Partial,
                format_args!(" {received}/{block_for}"),
            )),
        ),
        _ => (WireOutcome::InDoubt, just(Reason::Timeout)),
    }
}

fn error(e: &ErrorBody) -> Decision {
    match &e.details {
        ErrorDetails::WriteTimeout {
            received,
            block_for,
            write_type,
            ..
        } => timeout(write_type.as_str(), *received, *block_for),
        // WriteFailure → like WriteTimeout using its received count.
        ErrorDetails::WriteFailure {
            received,
            block_for,
            write_type,
            ..
        } => timeout(write_type.as_str(), *received, *block_for),
        ErrorDetails::CasWriteUnknown { .. } => (WireOutcome::InDoubt, just(Reason::CasUnknown)),
        _ => {
            let reason = match e.code {
                code::UNAVAILABLE => Reason::Unavailable,
                code::OVERLOADED => Reason::Overloaded,
                code::IS_BOOTSTRAPPING => Reason::IsBootstrapping,
                code::UNPREPARED => Reason::Unprepared,
                code::SYNTAX_ERROR => Reason::SyntaxError,
                code::INVALID => Reason::Invalid,
                code::UNAUTHORIZED => Reason::Unauthorized,
                code::CONFIG_ERROR => Reason::ConfigError,
                code::ALREADY_EXISTS => Reason::AlreadyExists,
                code::PROTOCOL_ERROR => Reason::ProtocolError,
                code::BAD_CREDENTIALS => Reason::BadCredentials,
                code::FUNCTION_FAILURE => Reason::FunctionFailure,
                // Not in the rules: the coordinator may have applied part of it.
                code::SERVER_ERROR => return (WireOutcome::InDoubt, just(Reason::ServerError)),
                code::TRUNCATE_ERROR => return (WireOutcome::InDoubt, just(Reason::TruncateError)),
                code::READ_TIMEOUT | code::READ_FAILURE => {
                    // Only an LWT reads before writing; its Paxos round did not finish.
                    return (WireOutcome::InDoubt, just(Reason::Timeout));
                }
                code::CDC_WRITE_FAILURE => Reason::CdcWriteFailure,
                _ => {
                    return (
                        WireOutcome::InDoubt,
                        Some(WriteReason::with(
                            Reason::ErrorCode,
                            format_args!(" 0x{:04x}", e.code),
                        )),
                    )
                }
            };
            // Unavailable, Overloaded, IsBootstrapping, Unprepared, syntax/invalid/
            // unauthorized → rejected (not attempted).
            (WireOutcome::Rejected, just(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_cql::wire::Consistency;

    fn wto(t: &str, received: i32) -> Message {
        Message::Error(ErrorBody {
            code: code::WRITE_TIMEOUT,
            message: "t".into(),
            details: ErrorDetails::WriteTimeout {
                consistency: Consistency::Quorum,
                received,
                block_for: 2,
                write_type: t.into(),
                contentions: None,
            },
        })
    }

    /// A decision as the line prints it.
    fn printed(d: Decision) -> (WireOutcome, Option<String>) {
        (d.0, d.1.map(|r| r.to_string()))
    }

    #[test]
    fn write_timeouts_by_type() {
        assert_eq!(decide(&wto("BATCH", 0), false).0, WireOutcome::Committed);
        assert_eq!(
            printed(decide(&wto("BATCH_LOG", 0), false)),
            (WireOutcome::InDoubt, Some("batchlog".into()))
        );
        assert_eq!(
            printed(decide(&wto("UNLOGGED_BATCH", 1), false)),
            (WireOutcome::InDoubt, Some("timeout".into()))
        );
        assert_eq!(
            printed(decide(&wto("CAS", 1), true)),
            (WireOutcome::InDoubt, Some("cas_unknown".into()))
        );
        assert_eq!(
            printed(decide(&wto("SIMPLE", 1), false)),
            (WireOutcome::Committed, Some("partial 1/2".into()))
        );
        assert_eq!(
            printed(decide(&wto("COUNTER", 0), false)),
            (WireOutcome::InDoubt, Some("timeout".into()))
        );
        assert_eq!(
            printed(decide(&Message::Result(ResultBody::Void), false)),
            (WireOutcome::Committed, None)
        );
        // The words are typed where they are decided, whatever follows them.
        let partial = decide(&wto("SIMPLE", 1), false).1.unwrap();
        assert_eq!(partial.word(), Reason::Partial);
    }
}
