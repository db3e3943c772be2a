//! The cluster below statement execution: the state every node and connection
//! shares (`state`), consistency-level arithmetic, replica faults, hints and the
//! write coordinator.

pub mod consistency;
pub mod coordinator;
pub mod faults;
pub mod hints;
pub mod state;
