//! Errors of the capture layer. Each names the source it came from, because the CLI
//! prints them as one line and the user has to know which file or interface failed.

use std::path::PathBuf;

/// Why a capture source could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no capture files given")]
    NoInput,
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },
    #[error("{path}: not a pcap or pcapng capture ({reason})")]
    NotACapture { path: PathBuf, reason: String },
    #[error("{path}: cannot open: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("{source_name}: unsupported link type {dlt} ({name})")]
    UnsupportedLinkType {
        source_name: String,
        dlt: i32,
        name: String,
    },
    #[error("interface {name}: no such interface")]
    NoSuchInterface { name: String },
    #[error("interface {name}: permission denied (capturing needs root or CAP_NET_RAW): {reason}")]
    Permission { name: String, reason: String },
    #[error("interface {name}: {reason}")]
    Live { name: String, reason: String },
    #[error("{source_name}: read error: {reason}")]
    Read { source_name: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
