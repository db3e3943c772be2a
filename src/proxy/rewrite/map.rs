//! The address mapping: node address → the sidecar address clients should use.
//!
//! Drivers learn node addresses from the nodes themselves (CQL `system.peers`,
//! MongoDB `hello`) and would connect to them directly, around the sidecars; the
//! rewriters swap each mapped node address for its sidecar's. Nodes are matched by
//! IP and port when the message carries a port, by IP alone when it does not (CQL
//! `system.peers` has no port column) — and then only if exactly one node has that
//! IP, so an ambiguous address is left as the node said it.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use anyhow::{bail, Context, Result};

/// One mapped node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The node as configured (`host:port`, what MongoDB names it in `hosts`).
    pub node: String,
    /// The node's resolved address (what CQL names it in `inet` columns).
    pub node_addr: Option<SocketAddr>,
    /// Where clients should go instead.
    pub sidecar: SocketAddr,
}

/// Every mapped node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrMap {
    pub entries: Vec<Mapping>,
}

fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some((host, port))
}

impl AddrMap {
    /// Adds `node` (`host:port`) → `sidecar`; the node's name is resolved once, now
    /// (an unresolvable name still maps by name for MongoDB).
    pub fn add(&mut self, node: &str, sidecar: SocketAddr) -> Result<()> {
        let Some((host, port)) = split_host_port(node) else {
            bail!("invalid node address {node:?}: expected HOST:PORT");
        };
        if sidecar.ip().is_unspecified() || sidecar.port() == 0 {
            bail!("sidecar address {sidecar} is not one a client can connect to");
        }
        let node_addr = match host.parse::<IpAddr>() {
            Ok(ip) => Some(SocketAddr::new(ip, port)),
            Err(_) => (host, port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next()),
        };
        self.entries.push(Mapping {
            node: node.to_string(),
            node_addr,
            sidecar,
        });
        Ok(())
    }

    /// `NODE=SIDECAR`, as `--map` takes it.
    pub fn add_arg(&mut self, s: &str) -> Result<()> {
        let Some((node, sidecar)) = s.split_once('=') else {
            bail!("invalid --map {s:?}: expected NODE=SIDECAR (10.0.0.5:9042=127.0.0.1:19042)");
        };
        let sidecar: SocketAddr = sidecar
            .parse()
            .with_context(|| format!("invalid --map {s:?}: the sidecar must be IP:PORT"))?;
        self.add(node, sidecar)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sidecar for a node address (IP, and port when the message has one).
    /// Without a port, or when no node has that exact port, the IP must be unique.
    pub fn by_ip(&self, ip: IpAddr, port: Option<u16>) -> Option<&Mapping> {
        let ip = canonical(ip);
        let same_ip = || {
            self.entries
                .iter()
                .filter(move |m| m.node_addr.is_some_and(|a| canonical(a.ip()) == ip))
        };
        if let Some(p) = port {
            if let Some(m) = same_ip().find(|m| m.node_addr.is_some_and(|a| a.port() == p)) {
                return Some(m);
            }
        }
        let mut it = same_ip();
        let first = it.next()?;
        it.next().is_none().then_some(first)
    }

    /// The sidecar for a MongoDB `host:port` string: by name as configured, else by
    /// the resolved address when the string is an IP literal.
    pub fn by_host_port(&self, s: &str) -> Option<&Mapping> {
        if let Some(m) = self.entries.iter().find(|m| m.node.eq_ignore_ascii_case(s)) {
            return Some(m);
        }
        let (host, port) = split_host_port(s)?;
        let ip = canonical(host.parse::<IpAddr>().ok()?);
        self.entries.iter().find(|m| {
            m.node_addr
                .is_some_and(|a| canonical(a.ip()) == ip && a.port() == port)
        })
    }
}

/// IPv4-mapped IPv6 addresses compare as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `host:port` as MongoDB writes it (IPv6 in brackets).
pub fn host_port(a: SocketAddr) -> String {
    a.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_by_ip_port_and_name() {
        let mut m = AddrMap::default();
        m.add("10.0.0.1:9042", "127.0.0.1:19042".parse().unwrap())
            .unwrap();
        m.add("10.0.0.2:9042", "127.0.0.2:19042".parse().unwrap())
            .unwrap();
        m.add_arg("10.0.0.2:9043=127.0.0.3:19042").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            m.by_ip(ip("10.0.0.1"), None).unwrap().sidecar.to_string(),
            "127.0.0.1:19042"
        );
        // Two nodes on 10.0.0.2: only a port tells them apart.
        assert!(m.by_ip(ip("10.0.0.2"), None).is_none());
        assert_eq!(
            m.by_ip(ip("10.0.0.2"), Some(9043))
                .unwrap()
                .sidecar
                .to_string(),
            "127.0.0.3:19042"
        );
        assert!(m.by_ip(ip("10.0.0.9"), Some(9042)).is_none());
        assert_eq!(
            m.by_ip(ip("::ffff:10.0.0.1"), Some(9042)).unwrap().node,
            "10.0.0.1:9042"
        );
        assert_eq!(
            m.by_host_port("10.0.0.2:9043").unwrap().sidecar.to_string(),
            "127.0.0.3:19042"
        );
        assert!(m.by_host_port("10.0.0.2:1").is_none());
        for bad in ["x", "a=b", "10.0.0.1:0=127.0.0.1:1", "10.0.0.1:1=0.0.0.0:5"] {
            assert!(AddrMap::default().add_arg(bad).is_err(), "{bad}");
        }
    }
}
