//! One client connection: framing, compression and the handshake.

pub mod conn;
