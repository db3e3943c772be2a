//! Building [`WriteCommand`]s from write commands.

use bson::{RawBsonRef, RawDocument};

use super::command::Command;
use super::fields::{self, docs_of};
use super::write::*;
use super::ModelError;
use crate::repl::oplog::OplogEntry;

impl<'a> Command<'a> {
    /// The write this command performs, `Ok(None)` for non-write commands.
    pub fn write(&self) -> Result<Option<WriteCommand<'a>>, ModelError> {
        let kind = match self.name {
            "insert" => WriteKind::Insert,
            "update" => WriteKind::Update,
            "delete" => WriteKind::Delete,
            "findAndModify" | "findandmodify" => WriteKind::FindAndModify,
            "bulkWrite" => WriteKind::BulkWrite,
            "applyOps" => WriteKind::ApplyOps,
            _ => return Ok(None),
        };
        let body = self.body;
        let ns = Namespace {
            db: self.db,
            coll: self.collection().unwrap_or(""),
        };
        let mut statements = Vec::new();
        match kind {
            WriteKind::Insert => {
                for (index, document) in self.documents("documents")?.into_iter().enumerate() {
                    statements.push(WriteStatement {
                        index,
                        ns,
                        op: StatementOp::Insert { document },
                    });
                }
            }
            WriteKind::Update => {
                for (index, d) in self.documents("updates")?.into_iter().enumerate() {
                    statements.push(WriteStatement {
                        index,
                        ns,
                        op: StatementOp::Update(update_statement(d, "q", "u", "update statement")?),
                    });
                }
            }
            WriteKind::Delete => {
                for (index, d) in self.documents("deletes")?.into_iter().enumerate() {
                    statements.push(WriteStatement {
                        index,
                        ns,
                        op: StatementOp::Delete(delete_statement(d, "q", "delete statement")?),
                    });
                }
            }
            WriteKind::FindAndModify => statements.push(WriteStatement {
                index: 0,
                ns,
                op: StatementOp::FindAndModify(find_and_modify(body)?),
            }),
            WriteKind::BulkWrite => statements = self.bulk_write_statements()?,
            WriteKind::ApplyOps => {
                if let Some(ops) = fields::opt_array(body, "applyOps", "applyOps")? {
                    for (index, d) in docs_of(ops, "applyOps", "applyOps")?
                        .into_iter()
                        .enumerate()
                    {
                        let entry = OplogEntry::parse(d)?;
                        statements.push(WriteStatement {
                            index,
                            ns: Namespace::parse(entry.ns),
                            op: StatementOp::Oplog(entry),
                        });
                    }
                }
            }
        }
        Ok(Some(WriteCommand {
            kind,
            db: self.db,
            ordered: fields::opt_bool(body, "ordered", "write command")?.unwrap_or(true),
            bypass_document_validation: fields::opt_bool(
                body,
                "bypassDocumentValidation",
                "write command",
            )?
            .unwrap_or(false),
            statements,
            session: self.session()?,
            legacy: false,
        }))
    }

    /// `bulkWrite` (8.0): `ops` reference namespaces in `nsInfo` by index.
    fn bulk_write_statements(&self) -> Result<Vec<WriteStatement<'a>>, ModelError> {
        const CTX: &str = "bulkWrite";
        let mut namespaces = Vec::new();
        for info in self.documents("nsInfo")? {
            namespaces.push(Namespace::parse(fields::req_str(
                info,
                "ns",
                "bulkWrite nsInfo",
            )?));
        }
        let mut out = Vec::new();
        for (index, op) in self.documents("ops")?.into_iter().enumerate() {
            let (name, target) = fields::first_element(op).ok_or(ModelError::Invalid {
                context: CTX,
                reason: format!("empty operation at index {index}"),
            })?;
            let ns_index = fields::as_i64(target).ok_or(ModelError::WrongType {
                context: CTX,
                field: name.to_owned(),
                expected: "namespace index",
                found: target.element_type(),
            })?;
            let ns = usize::try_from(ns_index)
                .ok()
                .and_then(|i| namespaces.get(i).copied())
                .ok_or_else(|| ModelError::Invalid {
                    context: CTX,
                    reason: format!(
                        "operation {index} names nsInfo index {ns_index}, have {}",
                        namespaces.len()
                    ),
                })?;
            let op = match name {
                "insert" => StatementOp::Insert {
                    document: fields::req_doc(op, "document", CTX)?,
                },
                "update" => StatementOp::Update(update_statement(op, "filter", "updateMods", CTX)?),
                "delete" => {
                    let mut d = delete_statement(op, "filter", CTX)?;
                    d.limit = if fields::opt_bool(op, "multi", CTX)?.unwrap_or(false) {
                        0
                    } else {
                        1
                    };
                    StatementOp::Delete(d)
                }
                other => {
                    return Err(ModelError::Invalid {
                        context: CTX,
                        reason: format!("unknown operation `{other}` at index {index}"),
                    })
                }
            };
            out.push(WriteStatement { index, ns, op });
        }
        Ok(out)
    }
}

fn hint<'a>(d: &'a RawDocument, ctx: &'static str) -> Result<Option<RawBsonRef<'a>>, ModelError> {
    fields::get(d, "hint", ctx)
}

/// An update statement; `q_key`/`u_key` differ between `update` and `bulkWrite`.
pub(crate) fn update_statement<'a>(
    d: &'a RawDocument,
    q_key: &'static str,
    u_key: &'static str,
    ctx: &'static str,
) -> Result<UpdateStatement<'a>, ModelError> {
    let q = fields::req_doc(d, q_key, ctx)?;
    let u_val = fields::get(d, u_key, ctx)?.ok_or(ModelError::Missing {
        context: ctx,
        field: u_key,
    })?;
    let u = UpdateSpec::from_value(u_val).ok_or(ModelError::WrongType {
        context: ctx,
        field: u_key.to_owned(),
        expected: "document or pipeline",
        found: u_val.element_type(),
    })?;
    Ok(UpdateStatement {
        q,
        u,
        upsert: fields::opt_bool(d, "upsert", ctx)?.unwrap_or(false),
        multi: fields::opt_bool(d, "multi", ctx)?.unwrap_or(false),
        array_filters: fields::opt_array(d, "arrayFilters", ctx)?,
        collation: fields::opt_doc(d, "collation", ctx)?,
        hint: hint(d, ctx)?,
        sort: fields::opt_doc(d, "sort", ctx)?,
        raw: d,
    })
}

pub(crate) fn delete_statement<'a>(
    d: &'a RawDocument,
    q_key: &'static str,
    ctx: &'static str,
) -> Result<DeleteStatement<'a>, ModelError> {
    Ok(DeleteStatement {
        q: fields::req_doc(d, q_key, ctx)?,
        limit: fields::opt_i64(d, "limit", ctx)?.unwrap_or(0),
        collation: fields::opt_doc(d, "collation", ctx)?,
        hint: hint(d, ctx)?,
    })
}

fn find_and_modify(body: &RawDocument) -> Result<FindAndModify<'_>, ModelError> {
    const CTX: &str = "findAndModify";
    let update = match fields::get(body, "update", CTX)? {
        None | Some(RawBsonRef::Null) => None,
        Some(v) => Some(UpdateSpec::from_value(v).ok_or(ModelError::WrongType {
            context: CTX,
            field: "update".into(),
            expected: "document or pipeline",
            found: v.element_type(),
        })?),
    };
    let remove = fields::opt_bool(body, "remove", CTX)?.unwrap_or(false);
    if remove == update.is_some() {
        return Err(ModelError::Invalid {
            context: CTX,
            reason: "exactly one of `update` and `remove:true` is required".into(),
        });
    }
    Ok(FindAndModify {
        query: fields::opt_doc(body, "query", CTX)?,
        sort: fields::opt_doc(body, "sort", CTX)?,
        update,
        remove,
        upsert: fields::opt_bool(body, "upsert", CTX)?.unwrap_or(false),
        new: fields::opt_bool(body, "new", CTX)?.unwrap_or(false),
        fields: fields::opt_doc(body, "fields", CTX)?,
        array_filters: fields::opt_array(body, "arrayFilters", CTX)?,
        collation: fields::opt_doc(body, "collation", CTX)?,
        hint: hint(body, CTX)?,
    })
}
