//! Helpers shared by the inspect integration tests: where captures are, and running
//! `tidemark inspect --json` through the library to get its lines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use tidemark::decode::registry::default_registry;
use tidemark::inspect::{inspect, InspectOptions};

/// A capture this project recorded (`captures/NAME`).
pub fn own_capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

/// Options for `inspect --json FILE`.
pub fn json_options(file: &Path) -> InspectOptions {
    InspectOptions {
        files: vec![file.to_path_buf()],
        json: true,
        ..InspectOptions::default()
    }
}

/// Every line `inspect --json` prints for `options`, exactly as printed.
pub fn inspect_lines(options: &InspectOptions) -> Vec<String> {
    let mut lines = Vec::new();
    inspect(options, default_registry(), |r| {
        lines.push(serde_json::to_string(r).map_err(std::io::Error::other)?);
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{:?}: {e:#}", options.files));
    lines
}

/// Every record `inspect --json` prints for `options`, as JSON values.
pub fn inspect_records(options: &InspectOptions) -> Vec<Value> {
    inspect_lines(options)
        .iter()
        .map(|l| serde_json::from_str(l).expect("inspect prints JSON"))
        .collect()
}
