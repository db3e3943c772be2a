//! Statement execution on a coordinator: dispatch, modifications (mutations, row
//! operations, INSERT JSON, lightweight transactions, batches), reads (SELECT,
//! projection, paging), DDL and the system tables.

pub mod cell_times;
pub mod ctx;
pub mod ddl_exec;
pub mod ddl_type;
pub mod dispatch;
pub mod invalidate;
pub mod json;
pub mod lwt;
pub mod lwt_batch;
pub mod modify;
pub mod mutation;
pub mod paging;
pub mod project;
pub mod read;
pub mod result_metadata;
pub mod rowop;
pub mod system;
pub mod values;
pub mod warnings;
pub mod write;
