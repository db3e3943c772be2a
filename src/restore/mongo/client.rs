//! The connection a restore or verify talks through: the `mongodb` driver with short
//! timeouts (its default server selection waits 30 s, which makes an unreachable
//! target look like a hang), and driver errors in one line without credentials.

use anyhow::{anyhow, Result};
use mongodb::error::{Error, ErrorKind};
use mongodb::Client;
use tidemark_mongo::bson::{doc, Document};

use crate::snapshot::source::{mongo_options, scrub};

/// Connects to `uri` and runs `hello` (which authenticates), so a target that is
/// unreachable, refuses the credentials or is not MongoDB fails here, before
/// anything is written. `flag` names the option the URI came from.
pub async fn connect(uri: &str, redacted: &str, flag: &str) -> Result<Client> {
    let mut options = mongo_options(uri, redacted, flag).await?;
    options.app_name.get_or_insert_with(|| "tidemark".into());
    let client = Client::with_options(options).map_err(|e| {
        anyhow!(
            "cannot connect to {redacted}: {}",
            scrub(e.to_string(), uri)
        )
    })?;
    if let Err(e) = client
        .database("admin")
        .run_command(doc! {"hello": 1})
        .await
    {
        client.clone().shutdown().await;
        return Err(anyhow!(
            "cannot connect to {redacted}: {}",
            scrub(one_line(&e), uri)
        ));
    }
    Ok(client)
}

/// Whether the target is a sharded cluster's router (`hello` says `msg: "isdbgrid"`),
/// where a collection that was sharded in the source is sharded again.
pub async fn is_router(client: &Client) -> Result<bool> {
    let hello = client
        .database("admin")
        .run_command(doc! {"hello": 1})
        .await
        .map_err(|e| anyhow!("hello: {}", one_line(&e)))?;
    Ok(hello.get_str("msg").ok() == Some("isdbgrid"))
}

/// Refuses a numeric `--write-concern` larger than the deployment's data-bearing
/// members (`hello.hosts`; a standalone is one), which no write could satisfy, before
/// anything is written.
pub async fn check_write_concern(client: &Client, w: &Document) -> Result<()> {
    let Ok(n) = w.get_i32("w") else {
        return Ok(());
    };
    let hello = client
        .database("admin")
        .run_command(doc! {"hello": 1})
        .await
        .map_err(|e| anyhow!("hello: {}", one_line(&e)))?;
    let members = hello.get_array("hosts").map_or(1, |h| h.len().max(1));
    if n as usize > members {
        return Err(anyhow!(
            "invalid --write-concern {n}: the target has {members} data-bearing member{}",
            if members == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

/// A driver error in one short line: a server's command error as its name, code and
/// message (the driver's own text adds labels and the raw reply).
pub fn one_line(e: &Error) -> String {
    let text = match &*e.kind {
        ErrorKind::Command(c) => format!("{} ({}): {}", c.code_name, c.code, c.message),
        _ => e.to_string(),
    };
    text.replace('\n', " ")
}

/// Server error codes that say "try again": the primary stepped down or is being
/// elected, the node is shutting down or unreachable, a write concern timed out
/// (writes here are idempotent, so repeating one is safe).
const RETRYABLE_CODES: [i32; 16] = [
    6, 7, 64, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 134, 133, 50,
];

/// Whether repeating the command may succeed: network errors, server selection
/// during an election, not-primary and shutdown codes, retryable labels.
pub fn retryable(e: &Error) -> bool {
    if e.contains_label("RetryableWriteError") || e.contains_label("NetworkError") {
        return true;
    }
    match &*e.kind {
        ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::ServerSelection { .. } => true,
        ErrorKind::Command(c) => RETRYABLE_CODES.contains(&c.code),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteConcernError(w)) => {
            RETRYABLE_CODES.contains(&w.code)
        }
        _ => false,
    }
}

/// Whether a code from a reply's `writeErrors` / `writeConcernError` is retryable.
pub fn retryable_code(code: i32) -> bool {
    RETRYABLE_CODES.contains(&code)
}

/// The write concern document of `--write-concern`: a number of members, or a
/// mode name (`majority`, a tag set), with a bound on how long a write waits for it.
pub fn write_concern(w: &str) -> Result<Document> {
    let w = w.trim();
    if w.is_empty() {
        return Err(anyhow!(
            "invalid --write-concern \"\": majority or a number"
        ));
    }
    Ok(match w.parse::<i32>() {
        Ok(n) if n >= 0 => doc! {"w": n, "wtimeout": 60_000},
        Ok(_) => return Err(anyhow!("invalid --write-concern {w}: majority or a number")),
        Err(_) => doc! {"w": w, "wtimeout": 60_000},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_concerns() {
        assert_eq!(
            write_concern("majority").unwrap().get_str("w").unwrap(),
            "majority"
        );
        assert_eq!(write_concern("2").unwrap().get_i32("w").unwrap(), 2);
        assert!(write_concern("-1").is_err());
        assert!(write_concern("").is_err());
    }
}
