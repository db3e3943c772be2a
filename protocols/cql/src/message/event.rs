//! EVENT bodies and schema changes (spec 4.2.6), shared with RESULT Schema_change.

use crate::error::{ParseError, ParseErrorKind};
use crate::text::Text;
use crate::wire::{Reader, Writer};
use std::net::SocketAddr;

/// What a schema change touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaTarget {
    Keyspace {
        keyspace: Text,
    },
    Table {
        keyspace: Text,
        name: Text,
    },
    Type {
        keyspace: Text,
        name: Text,
    },
    Function {
        keyspace: Text,
        name: Text,
        arg_types: Vec<Text>,
    },
    Aggregate {
        keyspace: Text,
        name: Text,
        arg_types: Vec<Text>,
    },
}

impl SchemaTarget {
    /// The target as the spec spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            SchemaTarget::Keyspace { .. } => "KEYSPACE",
            SchemaTarget::Table { .. } => "TABLE",
            SchemaTarget::Type { .. } => "TYPE",
            SchemaTarget::Function { .. } => "FUNCTION",
            SchemaTarget::Aggregate { .. } => "AGGREGATE",
        }
    }

    pub fn keyspace(&self) -> &Text {
        match self {
            SchemaTarget::Keyspace { keyspace }
            | SchemaTarget::Table { keyspace, .. }
            | SchemaTarget::Type { keyspace, .. }
            | SchemaTarget::Function { keyspace, .. }
            | SchemaTarget::Aggregate { keyspace, .. } => keyspace,
        }
    }
}

/// `<change_type><target><options>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    /// `CREATED`, `UPDATED` or `DROPPED`.
    pub change_type: Text,
    pub target: SchemaTarget,
}

impl SchemaChange {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, ParseError> {
        let change_type = r.string()?;
        let pos = r.position();
        let kind = r.string()?;
        let target = match kind.as_str() {
            "KEYSPACE" => SchemaTarget::Keyspace {
                keyspace: r.string()?,
            },
            "TABLE" => SchemaTarget::Table {
                keyspace: r.string()?,
                name: r.string()?,
            },
            "TYPE" => SchemaTarget::Type {
                keyspace: r.string()?,
                name: r.string()?,
            },
            "FUNCTION" => SchemaTarget::Function {
                keyspace: r.string()?,
                name: r.string()?,
                arg_types: r.string_list()?,
            },
            "AGGREGATE" => SchemaTarget::Aggregate {
                keyspace: r.string()?,
                name: r.string()?,
                arg_types: r.string_list()?,
            },
            _ => {
                return Err(ParseError::new(
                    "schema change target",
                    pos,
                    ParseErrorKind::Invalid("unknown target"),
                ))
            }
        };
        Ok(SchemaChange {
            change_type,
            target,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.string(&self.change_type);
        w.string(self.target.kind());
        match &self.target {
            SchemaTarget::Keyspace { keyspace } => w.string(keyspace),
            SchemaTarget::Table { keyspace, name } | SchemaTarget::Type { keyspace, name } => {
                w.string(keyspace);
                w.string(name);
            }
            SchemaTarget::Function {
                keyspace,
                name,
                arg_types,
            }
            | SchemaTarget::Aggregate {
                keyspace,
                name,
                arg_types,
            } => {
                w.string(keyspace);
                w.string(name);
                w.string_list(arg_types);
            }
        }
    }
}

/// An EVENT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `NEW_NODE` / `REMOVED_NODE` (and `MOVED_NODE` from older servers).
    TopologyChange {
        change: Text,
        node: SocketAddr,
    },
    /// `UP` / `DOWN`.
    StatusChange {
        change: Text,
        node: SocketAddr,
    },
    SchemaChange(SchemaChange),
}

impl Event {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, ParseError> {
        let pos = r.position();
        let kind = r.string()?;
        Ok(match kind.as_str() {
            "TOPOLOGY_CHANGE" => Event::TopologyChange {
                change: r.string()?,
                node: r.inet()?,
            },
            "STATUS_CHANGE" => Event::StatusChange {
                change: r.string()?,
                node: r.inet()?,
            },
            "SCHEMA_CHANGE" => Event::SchemaChange(SchemaChange::read(r)?),
            _ => {
                return Err(ParseError::new(
                    "event type",
                    pos,
                    ParseErrorKind::Invalid("unknown event type"),
                ))
            }
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        match self {
            Event::TopologyChange { change, node } => {
                w.string("TOPOLOGY_CHANGE");
                w.string(change);
                w.inet(node);
            }
            Event::StatusChange { change, node } => {
                w.string("STATUS_CHANGE");
                w.string(change);
                w.inet(node);
            }
            Event::SchemaChange(s) => {
                w.string("SCHEMA_CHANGE");
                s.write(w);
            }
        }
    }
}
