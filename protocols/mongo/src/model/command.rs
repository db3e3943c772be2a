//! Commands: what a request asks for, whichever opcode carried it.
//!
//! OP_MSG bodies, OP_QUERY on `db.$cmd` (handshakes, 2.6 write commands)
//! and OP_COMMAND (3.2) all reduce to a [`Command`]: a name, a database, a
//! body document and optional document sequences. Classification by name
//! tells the commit tracker which messages can change data.

use bson::RawDocument;

use super::fields::{self, first_key};
use super::session::{SessionInfo, TransactionOp};
use super::ModelError;
use crate::doc::DocSeq;
use crate::message::{Body, DocSequence, Message, OpCode};

/// What a command does, for routing and for backup relevance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// Reads data or cursors.
    Read,
    /// Changes documents (including transaction commit/abort and getlasterror acks).
    Write,
    /// Changes schema: collections, indexes, databases, options.
    Ddl,
    /// Server administration and diagnostics.
    Admin,
    /// Connection handshake and topology discovery.
    Handshake,
    /// Replica-set internal traffic (heartbeats, oplog fetching, positions).
    Replication,
    /// Authentication.
    Auth,
    /// A name this crate does not know.
    Unknown,
}

impl CommandKind {
    /// Lower-case name for JSON output.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Read => "read",
            CommandKind::Write => "write",
            CommandKind::Ddl => "ddl",
            CommandKind::Admin => "admin",
            CommandKind::Handshake => "handshake",
            CommandKind::Replication => "replication",
            CommandKind::Auth => "auth",
            CommandKind::Unknown => "unknown",
        }
    }
}

const WRITE: &[&str] = &[
    "insert",
    "update",
    "delete",
    "findAndModify",
    "findandmodify",
    "bulkWrite",
    "applyOps",
    "commitTransaction",
    "abortTransaction",
    "getlasterror",
    "getLastError",
    "clearJumboFlag",
];
const DDL: &[&str] = &[
    "create",
    "drop",
    "dropDatabase",
    "renameCollection",
    "createIndexes",
    "dropIndexes",
    "deleteIndexes",
    "collMod",
    "convertToCapped",
    "cloneCollectionAsCapped",
    "emptycapped",
    "reIndex",
    "shardCollection",
    "reshardCollection",
    "createSearchIndexes",
    "dropSearchIndex",
    "updateSearchIndex",
];
const READ: &[&str] = &[
    "find",
    "getMore",
    "aggregate",
    "count",
    "distinct",
    "mapReduce",
    "mapreduce",
    "geoNear",
    "geoSearch",
    "group",
    "killCursors",
    "listCollections",
    "listIndexes",
    "listDatabases",
    "explain",
    "parallelCollectionScan",
    "dataSize",
    "dbHash",
    "collStats",
    "dbStats",
];
const HANDSHAKE: &[&str] = &[
    "hello",
    "isMaster",
    "ismaster",
    "buildinfo",
    "buildInfo",
    "whatsmyuri",
    "ping",
    "getnonce",
    "endSessions",
    "startSession",
    "refreshSessions",
];
const AUTH: &[&str] = &[
    "saslStart",
    "saslContinue",
    "authenticate",
    "logout",
    "copydbsaslstart",
    "copydbgetnonce",
    "createUser",
    "updateUser",
    "dropUser",
    "grantRolesToUser",
    "revokeRolesFromUser",
    "createRole",
    "dropRole",
    "usersInfo",
    "rolesInfo",
];
const REPLICATION: &[&str] = &[
    "replSetHeartbeat",
    "replSetUpdatePosition",
    "replSetGetStatus",
    "replSetGetConfig",
    "replSetRequestVotes",
    "replSetGetRBID",
    "replSetInitiate",
    "replSetReconfig",
    "replSetStepDown",
    "replSetStepUp",
    "replSetFreeze",
    "replSetFresh",
    "replSetElect",
    "replSetSyncFrom",
    "replSetMaintenance",
    "replSetResizeOplog",
    "appendOplogNote",
    "handshake",
    "_getNextSessionMods",
];
const ADMIN: &[&str] = &[
    "serverStatus",
    "hostInfo",
    "getLog",
    "getCmdLineOpts",
    "getParameter",
    "setParameter",
    "killOp",
    "currentOp",
    "shutdown",
    "fsync",
    "fsyncUnlock",
    "logRotate",
    "listCommands",
    "connectionStatus",
    "getShardVersion",
    "setFeatureCompatibilityVersion",
    "killSessions",
    "killAllSessions",
    "top",
    "profile",
    "validate",
    "compact",
    "features",
    "isdbgrid",
    "getDefaultRWConcern",
    "setDefaultRWConcern",
    "connPoolStats",
    "shardingState",
    "_isSelf",
];

/// Classifies a command name.
pub fn classify(name: &str) -> CommandKind {
    let is = |list: &[&str]| list.contains(&name);
    if is(WRITE) {
        CommandKind::Write
    } else if is(DDL) {
        CommandKind::Ddl
    } else if is(READ) {
        CommandKind::Read
    } else if is(HANDSHAKE) {
        CommandKind::Handshake
    } else if is(AUTH) {
        CommandKind::Auth
    } else if is(REPLICATION) {
        CommandKind::Replication
    } else if is(ADMIN) || name.starts_with('_') {
        CommandKind::Admin
    } else {
        CommandKind::Unknown
    }
}

/// Which opcode carried a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOrigin {
    OpMsg,
    /// OP_QUERY on `db.$cmd`.
    OpQuery,
    OpCommand,
}

/// A command request, borrowed from its message.
#[derive(Debug, Clone)]
pub struct Command<'a> {
    /// The first key of the body, as sent.
    pub name: &'a str,
    pub kind: CommandKind,
    /// `$db`, or the database of the OP_QUERY namespace / OP_COMMAND.
    pub db: &'a str,
    pub body: &'a RawDocument,
    /// OP_MSG kind-1 sections.
    pub sequences: &'a [DocSequence],
    /// OP_COMMAND input documents.
    pub input_docs: Option<&'a DocSeq>,
    pub origin: CommandOrigin,
    /// The request was sent with moreToCome (no reply will come).
    pub more_to_come: bool,
}

impl<'a> Command<'a> {
    /// Extracts the command from a request message, if it carries one.
    pub fn from_message(msg: &'a Message) -> Option<Command<'a>> {
        match &msg.body {
            Body::Msg(m) => {
                let body = m.body.raw();
                let name = first_key(body)?;
                let db = fields::opt_str(body, "$db", "command")
                    .ok()
                    .flatten()
                    .unwrap_or("");
                Some(
                    Command::new(name, db, body, &m.sequences, None, CommandOrigin::OpMsg)
                        .with_more_to_come(m.flags.more_to_come()),
                )
            }
            Body::Query(q) => {
                let db = q.full_collection_name.strip_suffix(".$cmd")?;
                let mut body = q.query.raw();
                // mongos and old drivers wrap: {$query: {...}, $readPreference: ...}
                if let Some((k, v)) = fields::first_element(body) {
                    if k == "$query" || k == "query" {
                        if let Some(inner) = v.as_document() {
                            body = inner;
                        }
                    }
                }
                let name = first_key(body)?;
                Some(Command::new(
                    name,
                    db,
                    body,
                    &[],
                    None,
                    CommandOrigin::OpQuery,
                ))
            }
            Body::Command(c) => {
                let body = c.command_args.raw();
                let name = first_key(body).unwrap_or(c.command_name.as_str());
                Some(Command::new(
                    name,
                    c.database.as_str(),
                    body,
                    &[],
                    Some(&c.input_docs),
                    CommandOrigin::OpCommand,
                ))
            }
            _ => None,
        }
    }

    fn new(
        name: &'a str,
        db: &'a str,
        body: &'a RawDocument,
        sequences: &'a [DocSequence],
        input_docs: Option<&'a DocSeq>,
        origin: CommandOrigin,
    ) -> Command<'a> {
        let mut kind = classify(name);
        // Oplog fetching by secondaries is replication traffic, not a user read.
        if matches!(name, "find" | "getMore") && db == "local" {
            let coll = match name {
                "find" => fields::opt_str(body, "find", "find").ok().flatten(),
                _ => fields::opt_str(body, "collection", "getMore")
                    .ok()
                    .flatten(),
            };
            if coll == Some("oplog.rs") || coll == Some("oplog.$main") {
                kind = CommandKind::Replication;
            }
        }
        Command {
            name,
            kind,
            db,
            body,
            sequences,
            input_docs,
            origin,
            more_to_come: false,
        }
    }

    fn with_more_to_come(mut self, v: bool) -> Self {
        self.more_to_come = v;
        self
    }

    /// The command's first value when it is a string (the collection for
    /// most collection commands).
    pub fn collection(&self) -> Option<&'a str> {
        fields::first_element(self.body).and_then(|(_, v)| v.as_str())
    }

    /// Documents of a command argument, from the body array and from any
    /// kind-1 section of that name (both may be present), and for OP_COMMAND
    /// `documents`, from the input documents.
    pub fn documents(&self, field: &str) -> Result<Vec<&'a RawDocument>, ModelError> {
        let mut out = match fields::opt_array(self.body, field, "command")? {
            Some(arr) => fields::docs_of(arr, field, "command")?,
            None => Vec::new(),
        };
        for s in self.sequences.iter().filter(|s| s.identifier == field) {
            out.extend(s.documents.iter());
        }
        if field == "documents" {
            if let Some(extra) = self.input_docs {
                out.extend(extra.iter());
            }
        }
        Ok(out)
    }

    /// Session, transaction and concern arguments.
    pub fn session(&self) -> Result<SessionInfo<'a>, ModelError> {
        SessionInfo::parse(self.body)
    }

    /// `commitTransaction` / `abortTransaction`.
    pub fn transaction_op(&self) -> Option<TransactionOp> {
        match self.name {
            "commitTransaction" => Some(TransactionOp::Commit),
            "abortTransaction" => Some(TransactionOp::Abort),
            _ => None,
        }
    }
}

impl Message {
    /// The command this request carries (OP_MSG, OP_QUERY on `$cmd`, OP_COMMAND).
    pub fn command(&self) -> Option<Command<'_>> {
        Command::from_message(self)
    }

    /// Classification of any request: commands by name, legacy opcodes by
    /// what they do. `None` for replies.
    pub fn classify(&self) -> Option<CommandKind> {
        match &self.body {
            Body::Msg(_) | Body::Command(_) => self.command().map(|c| c.kind),
            Body::Query(q) => match self.command() {
                Some(c) => Some(c.kind),
                None if q.full_collection_name == "local.oplog.rs" => {
                    Some(CommandKind::Replication)
                }
                None => Some(CommandKind::Read),
            },
            Body::Insert(_) | Body::Update(_) | Body::Delete(_) => Some(CommandKind::Write),
            Body::GetMore(g) if g.full_collection_name == "local.oplog.rs" => {
                Some(CommandKind::Replication)
            }
            Body::GetMore(_) | Body::KillCursors(_) => Some(CommandKind::Read),
            Body::Reply(_) | Body::CommandReply(_) => None,
        }
    }

    /// True when this opcode can only be a reply.
    pub fn is_reply_opcode(&self) -> bool {
        matches!(self.opcode(), OpCode::Reply | OpCode::CommandReply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(classify("insert"), CommandKind::Write);
        assert_eq!(classify("createIndexes"), CommandKind::Ddl);
        assert_eq!(classify("find"), CommandKind::Read);
        assert_eq!(classify("isMaster"), CommandKind::Handshake);
        assert_eq!(classify("saslStart"), CommandKind::Auth);
        assert_eq!(classify("replSetHeartbeat"), CommandKind::Replication);
        assert_eq!(classify("serverStatus"), CommandKind::Admin);
        assert_eq!(classify("frobnicate"), CommandKind::Unknown);
    }
}
