//! Authentication commands, with their secrets represented as redacted.
//!
//! The decoder already blanked SASL payloads in the bytes (see
//! `wire::redact`); this model never exposes a payload field at all, only
//! its size, so no consumer can store it by accident.

use super::command::Command;
use super::fields;

/// A redacted secret: only its length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redacted {
    pub len: usize,
}

/// `saslStart`, `saslContinue`, `authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCommand<'a> {
    pub name: &'a str,
    pub db: &'a str,
    pub mechanism: Option<&'a str>,
    pub conversation_id: Option<i64>,
    /// X.509 / MONGODB-CR user name (never a password).
    pub user: Option<&'a str>,
    pub payload: Option<Redacted>,
}

impl<'a> Command<'a> {
    /// The authentication step this command is, if any.
    pub fn auth(&self) -> Option<AuthCommand<'a>> {
        if !matches!(self.name, "saslStart" | "saslContinue" | "authenticate") {
            return None;
        }
        let b = self.body;
        let payload = b.get("payload").ok().flatten().map(|v| Redacted {
            len: match v {
                bson::RawBsonRef::Binary(bin) => bin.bytes.len(),
                bson::RawBsonRef::String(s) => s.len(),
                _ => 0,
            },
        });
        Some(AuthCommand {
            name: self.name,
            db: self.db,
            mechanism: fields::opt_str(b, "mechanism", "auth").ok().flatten(),
            conversation_id: fields::opt_i64(b, "conversationId", "auth").ok().flatten(),
            user: fields::opt_str(b, "user", "auth").ok().flatten(),
            payload,
        })
    }
}
