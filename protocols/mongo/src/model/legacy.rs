//! Pre-command writes: OP_INSERT, OP_UPDATE, OP_DELETE, and the
//! `getlasterror` command that acknowledged them (and 3.2 OP_COMMAND inserts).
//!
//! A legacy write has no reply of its own; its outcome is the reply to the
//! next `getlasterror` on the same connection, with that command's `w`.

use super::command::Command;
use super::session::{SessionInfo, WriteConcern};
use super::write::*;
use super::ModelError;
use crate::message::{Body, Message};

/// `getlasterror` with its write concern (top-level `w`, `j`, `wtimeout`, `fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetLastError<'a> {
    pub db: &'a str,
    pub write_concern: WriteConcern<'a>,
}

impl<'a> Command<'a> {
    /// The getlasterror request, if this is one.
    pub fn get_last_error(&self) -> Result<Option<GetLastError<'a>>, ModelError> {
        if !self.name.eq_ignore_ascii_case("getlasterror") {
            return Ok(None);
        }
        Ok(Some(GetLastError {
            db: self.db,
            write_concern: WriteConcern::parse(self.body)?,
        }))
    }
}

impl Message {
    /// The write this request performs, for every wire form: write commands
    /// (OP_MSG, OP_QUERY `$cmd`, OP_COMMAND) and legacy write opcodes.
    pub fn write(&self) -> Result<Option<WriteCommand<'_>>, ModelError> {
        fn legacy(kind: WriteKind, ns: &str) -> WriteCommand<'_> {
            WriteCommand {
                kind,
                db: Namespace::parse(ns).db,
                ordered: true,
                bypass_document_validation: false,
                statements: Vec::new(),
                session: SessionInfo::default(),
                legacy: true,
            }
        }
        match &self.body {
            Body::Insert(i) => {
                let ns = Namespace::parse(&i.full_collection_name);
                let mut w = legacy(WriteKind::Insert, &i.full_collection_name);
                // ContinueOnError is the legacy spelling of ordered:false
                w.ordered = i.flags & 1 == 0;
                w.statements = i
                    .documents
                    .iter()
                    .enumerate()
                    .map(|(index, document)| WriteStatement {
                        index,
                        ns,
                        op: StatementOp::Insert { document },
                    })
                    .collect();
                Ok(Some(w))
            }
            Body::Update(u) => {
                let ns = Namespace::parse(&u.full_collection_name);
                let mut w = legacy(WriteKind::Update, &u.full_collection_name);
                let spec = UpdateSpec::from_value(bson::RawBsonRef::Document(u.update.raw()))
                    .unwrap_or(UpdateSpec::Replacement(u.update.raw()));
                w.statements.push(WriteStatement {
                    index: 0,
                    ns,
                    op: StatementOp::Update(UpdateStatement {
                        q: u.selector.raw(),
                        u: spec,
                        upsert: u.flags & 1 != 0,
                        multi: u.flags & 2 != 0,
                        array_filters: None,
                        collation: None,
                        hint: None,
                        sort: None,
                        raw: u.update.raw(),
                    }),
                });
                Ok(Some(w))
            }
            Body::Delete(d) => {
                let ns = Namespace::parse(&d.full_collection_name);
                let mut w = legacy(WriteKind::Delete, &d.full_collection_name);
                w.statements.push(WriteStatement {
                    index: 0,
                    ns,
                    op: StatementOp::Delete(DeleteStatement {
                        q: d.selector.raw(),
                        limit: if d.flags & 1 != 0 { 1 } else { 0 },
                        collation: None,
                        hint: None,
                    }),
                });
                Ok(Some(w))
            }
            _ => match self.command() {
                Some(c) => c.write(),
                None => Ok(None),
            },
        }
    }
}
