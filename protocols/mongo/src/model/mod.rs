//! Command, reply and session models over decoded messages.
//!
//! Everything here borrows from a [`crate::Message`]: names, namespaces and
//! documents are `&str`/`&RawDocument` into the message buffer. Building a
//! model allocates only small vectors of references.

pub mod auth;
pub mod command;
pub mod ddl;
pub mod fields;
pub mod legacy;
pub mod reply;
pub mod session;
pub mod write;
mod write_parse;

use bson::spec::ElementType;
use thiserror::Error;

pub use auth::AuthCommand;
pub use command::{classify, Command, CommandKind, CommandOrigin};
pub use ddl::{Ddl, DdlOp};
pub use legacy::GetLastError;
pub use reply::{LastErrorObject, Reply, Upserted, WriteConcernError, WriteError};
pub use session::{ReadConcern, SessionInfo, TransactionOp, WriteConcern, W};
pub use write::{
    DeleteStatement, FindAndModify, Namespace, StatementOp, UpdateSpec, UpdateStatement,
    WriteCommand, WriteKind, WriteStatement,
};

/// A command or reply that does not have the shape its name promises.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ModelError {
    #[error("{context}: field `{field}` should be {expected}, found {}", fields::type_name(*.found))]
    WrongType {
        context: &'static str,
        field: String,
        expected: &'static str,
        found: ElementType,
    },
    #[error("{context}: required field `{field}` is missing")]
    Missing {
        context: &'static str,
        field: &'static str,
    },
    #[error("{context}: invalid BSON: {reason}")]
    Bson {
        context: &'static str,
        reason: String,
    },
    #[error("{context}: {reason}")]
    Invalid {
        context: &'static str,
        reason: String,
    },
}
