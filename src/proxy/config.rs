//! `tidemark proxy --config FILE`: the routes, the address map, TLS and metrics of a
//! sidecar in a TOML file, for deployments that template one file per node rather
//! than a command line. Flags given on the command line add routes and map entries
//! and win over the file's single values.
//!
//! ```toml
//! protocol = "cql"
//! metrics = "127.0.0.1:9100"
//! tls_cert = "/etc/tidemark/proxy.pem"
//! tls_key = "/etc/tidemark/proxy.key"
//! upstream_tls = "node1.example"
//! upstream_ca = "/etc/tidemark/ca.pem"
//!
//! [[route]]
//! listen = "10.0.0.11:9042"
//! upstream = "127.0.0.1:19042"
//!
//! [map]
//! "10.0.1.2:9042" = "10.0.0.12:9042"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use serde::Deserialize;

/// One `[[route]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    pub listen: String,
    pub upstream: String,
}

/// The file's contents; every field optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    #[serde(default)]
    pub route: Vec<RouteEntry>,
    /// Node address → sidecar address.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    pub protocol: Option<String>,
    pub metrics: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub upstream_tls: Option<String>,
    pub upstream_ca: Option<PathBuf>,
    pub no_rewrite: Option<bool>,
}

impl ProxyConfig {
    /// Reads and checks `path`; errors name the file and what is wrong in it.
    pub fn load(path: &Path) -> Result<ProxyConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read --config {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow!("--config {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<ProxyConfig> {
        toml::from_str(text).map_err(|e| anyhow!("{}", e.message()))
    }

    /// The map as `NODE=SIDECAR` entries, as `--map` gives them.
    pub fn map_entries(&self) -> Vec<String> {
        self.map.iter().map(|(n, s)| format!("{n}={s}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_file_parses_and_unknown_or_mistyped_keys_are_named() {
        let c = ProxyConfig::parse(
            r#"
protocol = "mongo"
metrics = "127.0.0.1:9100"
[[route]]
listen = "127.0.0.1:27019"
upstream = "db1:27017"
[[route]]
listen = "127.0.0.1:27020"
upstream = "db2:27017"
[map]
"db1:27017" = "127.0.0.1:27019"
"#,
        )
        .unwrap();
        assert_eq!(c.route.len(), 2);
        assert_eq!(c.route[1].upstream, "db2:27017");
        assert_eq!(c.protocol.as_deref(), Some("mongo"));
        assert_eq!(c.map_entries(), ["db1:27017=127.0.0.1:27019"]);
        let e = ProxyConfig::parse("lisen = 1").unwrap_err().to_string();
        assert!(e.contains("lisen"), "{e}");
        let e = ProxyConfig::parse("[[route]]\nlisten = 5\nupstream = \"x:1\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("string"), "{e}");
        assert!(ProxyConfig::parse("[[route]]\nlisten = \"a\"").is_err());
        assert_eq!(ProxyConfig::parse("").unwrap(), ProxyConfig::default());
    }
}
