//! The CQL the testbed parses itself (the `tidemark-cql` parser only classifies
//! SELECT and DDL): the lexer, literals, SELECT, DDL and type names. Depends on
//! `storage` only (schema objects, value encoding).

pub mod alter_type;
pub mod ddl;
pub mod lex;
pub mod literal;
pub mod literal_text;
pub mod select;
pub mod types;
