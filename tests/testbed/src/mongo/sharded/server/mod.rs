//! The running sharded cluster, the top layer: starting and stopping it
//! ([`cluster`]), its ground truth ([`truth`]) and the control endpoint's
//! routes ([`control`]).

pub mod cluster;
pub mod control;
pub mod truth;
