//! Where a proxy listens and where it forwards: `--listen A --upstream B`, or several
//! `--route A=B`; each with the protocol it carries (`auto` sniffs, as the tap does).

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};

/// What a route carries, for the decoders (forwarding never depends on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteProtocol {
    /// Detected from the first bytes (and the default ports).
    Auto,
    Cql,
    Mongo,
}

impl RouteProtocol {
    pub fn parse(s: &str) -> Result<RouteProtocol> {
        match s {
            "auto" => Ok(RouteProtocol::Auto),
            "cql" => Ok(RouteProtocol::Cql),
            "mongo" | "mongodb" => Ok(RouteProtocol::Mongo),
            _ => bail!("invalid --protocol {s:?}: auto, cql or mongo"),
        }
    }
}

/// One listening address and the node it forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub listen: SocketAddr,
    /// `host:port` of the node (resolved when a connection comes).
    pub upstream: String,
}

impl Route {
    /// `LISTEN=UPSTREAM`, e.g. `127.0.0.1:19042=10.0.0.5:9042`.
    pub fn parse(s: &str) -> Result<Route> {
        let Some((listen, upstream)) = s.split_once('=') else {
            bail!(
                "invalid --route {s:?}: expected LISTEN=UPSTREAM (127.0.0.1:19042=10.0.0.5:9042)"
            );
        };
        Route::new(listen, upstream)
    }

    pub fn new(listen: &str, upstream: &str) -> Result<Route> {
        let listen: SocketAddr = listen
            .parse()
            .with_context(|| format!("invalid listen address {listen:?}: expected IP:PORT"))?;
        let Some((host, port)) = upstream.rsplit_once(':') else {
            bail!("invalid upstream {upstream:?}: expected HOST:PORT");
        };
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            bail!("invalid upstream {upstream:?}: expected HOST:PORT");
        }
        Ok(Route {
            listen,
            upstream: upstream.to_string(),
        })
    }

    /// The upstream's port (what the decoders key the protocol on).
    pub fn upstream_port(&self) -> u16 {
        self.upstream
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_bad_ones_are_refused() {
        let r = Route::parse("127.0.0.1:19042=db1.example:9042").unwrap();
        assert_eq!(r.listen, "127.0.0.1:19042".parse().unwrap());
        assert_eq!(r.upstream, "db1.example:9042");
        assert_eq!(r.upstream_port(), 9042);
        let v6 = Route::parse("[::1]:19042=[::1]:9042").unwrap();
        assert_eq!(v6.upstream_port(), 9042);
        for bad in [
            "127.0.0.1:19042",
            "nohost=db:9042",
            "127.0.0.1:1=db",
            "127.0.0.1:1=db:0",
            "127.0.0.1:1=:9042",
            "127.0.0.1:1=db:99999",
        ] {
            assert!(Route::parse(bad).is_err(), "{bad}");
        }
        assert!(RouteProtocol::parse("redis").is_err());
    }
}
