//! Schema changes a backup must record to restore a version faithfully.

use bson::{RawBsonRef, RawDocument};

use super::command::Command;
use super::fields;
use super::session::SessionInfo;
use super::write::Namespace;
use super::ModelError;

/// One DDL operation.
#[derive(Debug, Clone, PartialEq)]
pub enum DdlOp<'a> {
    /// `create` (collection or view); `options` is the whole command body.
    Create {
        collection: &'a str,
        view_on: Option<&'a str>,
        options: &'a RawDocument,
    },
    Drop {
        collection: &'a str,
    },
    DropDatabase,
    RenameCollection {
        from: Namespace<'a>,
        to: Namespace<'a>,
        drop_target: bool,
    },
    CreateIndexes {
        collection: &'a str,
        indexes: Vec<&'a RawDocument>,
    },
    /// `index` is a name, `"*"`, an array of names or a key pattern.
    DropIndexes {
        collection: &'a str,
        index: Option<RawBsonRef<'a>>,
    },
    CollMod {
        collection: &'a str,
        options: &'a RawDocument,
    },
    /// Other schema commands (convertToCapped, reIndex, ...), kept whole.
    Other {
        name: &'a str,
        body: &'a RawDocument,
    },
}

/// A DDL command.
#[derive(Debug, Clone, PartialEq)]
pub struct Ddl<'a> {
    pub db: &'a str,
    pub op: DdlOp<'a>,
    pub session: SessionInfo<'a>,
}

impl<'a> Command<'a> {
    /// The DDL this command performs, `Ok(None)` for other commands.
    pub fn ddl(&self) -> Result<Option<Ddl<'a>>, ModelError> {
        if self.kind != super::CommandKind::Ddl {
            return Ok(None);
        }
        let body = self.body;
        let coll = || -> Result<&'a str, ModelError> {
            self.collection().ok_or(ModelError::WrongType {
                context: "DDL command",
                field: self.name.to_owned(),
                expected: "collection name",
                found: fields::first_element(body)
                    .map(|(_, v)| v.element_type())
                    .unwrap_or(bson::spec::ElementType::Null),
            })
        };
        let op = match self.name {
            "create" => DdlOp::Create {
                collection: coll()?,
                view_on: fields::opt_str(body, "viewOn", "create")?,
                options: body,
            },
            "drop" => DdlOp::Drop {
                collection: coll()?,
            },
            "dropDatabase" => DdlOp::DropDatabase,
            "renameCollection" => DdlOp::RenameCollection {
                from: Namespace::parse(coll()?),
                to: Namespace::parse(fields::req_str(body, "to", "renameCollection")?),
                drop_target: fields::opt_bool(body, "dropTarget", "renameCollection")?
                    .unwrap_or(false),
            },
            "createIndexes" => DdlOp::CreateIndexes {
                collection: coll()?,
                indexes: self.documents("indexes")?,
            },
            "dropIndexes" | "deleteIndexes" => DdlOp::DropIndexes {
                collection: coll()?,
                index: fields::get(body, "index", "dropIndexes")?,
            },
            "collMod" => DdlOp::CollMod {
                collection: coll()?,
                options: body,
            },
            name => DdlOp::Other { name, body },
        };
        Ok(Some(Ddl {
            db: self.db,
            op,
            session: self.session()?,
        }))
    }
}
