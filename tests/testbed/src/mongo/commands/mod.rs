//! Client commands on a member: dispatch and the authentication gate, reads,
//! writes, `findAndModify`, cursors, admin and index commands, transactions.

pub mod admin;
pub mod admin_index;
pub mod cursor;
pub mod dispatch;
pub mod famod;
pub mod find;
pub mod snapshot_read;
pub mod txn;
pub mod write;
