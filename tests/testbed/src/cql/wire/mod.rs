//! The client side: one connection's frames and segments, and authentication.

pub mod auth;
pub mod conn;
pub mod type_options;
