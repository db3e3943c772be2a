//! The `--from` URI: which cluster to read, and the same without credentials, the
//! only form that is ever stored, printed or logged.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use mongodb::options::ClientOptions;

/// A parsed `--from`.
pub enum Source {
    /// `cql://[user:password@]host[:port][,host[:port]…][/]`.
    Cql {
        /// `host:port` contact points (port 9042 when not given).
        hosts: Vec<String>,
        /// User name and password, for the driver only.
        credentials: Option<(String, String)>,
    },
    /// A `mongodb://` or `mongodb+srv://` connection string, as given (the driver
    /// parses it).
    Mongo {
        /// The whole URI, credentials included: for the driver only.
        uri: String,
    },
}

impl Source {
    /// Parses `--from`; errors never repeat the URI's user information.
    pub fn parse(from: &str) -> Result<Source> {
        if let Some(rest) = from.strip_prefix("cql://") {
            let (userinfo, rest) = split_userinfo(rest);
            let credentials = match userinfo {
                None => None,
                Some(u) => match u.split_once(':') {
                    Some((user, pass)) => Some((percent_decode(user), percent_decode(pass))),
                    None => bail!("invalid --from: cql:// user information needs user:password"),
                },
            };
            let rest = rest.split(['/', '?']).next().unwrap_or_default();
            let mut hosts = Vec::new();
            for h in rest.split(',') {
                hosts.push(host_port(h)?);
            }
            return Ok(Source::Cql { hosts, credentials });
        }
        if from.starts_with("mongodb://") || from.starts_with("mongodb+srv://") {
            return Ok(Source::Mongo {
                uri: from.to_string(),
            });
        }
        bail!(
            "invalid --from {:?}: expected cql://host[:port][,host…] or mongodb://…",
            redact(from)
        )
    }
}

/// `host[:port]` with the CQL default port; IPv6 as `[addr]:port`.
fn host_port(h: &str) -> Result<String> {
    if h.is_empty() {
        bail!("invalid --from: empty host in the cql:// host list");
    }
    let has_port = match h.strip_prefix('[') {
        Some(v6) => v6.contains("]:"),
        None => h.contains(':'),
    };
    if !has_port {
        return Ok(format!("{h}:9042"));
    }
    let port = h.rsplit(':').next().unwrap_or_default();
    if port.parse::<u16>().is_err() {
        bail!("invalid --from: bad port {port:?} in the cql:// host list");
    }
    Ok(h.to_string())
}

/// (user information, the rest) of `authority...` after the scheme.
fn split_userinfo(rest: &str) -> (Option<&str>, &str) {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    }
}

/// Percent-decoding of URI user information.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URI without user information (`scheme://user:pw@hosts/...` →
/// `scheme://hosts/...`): what a snapshot records as its source.
pub fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return match uri.rfind('@') {
            Some(at) => uri[at + 1..].to_string(),
            None => uri.to_string(),
        };
    };
    let (_, rest) = split_userinfo(rest);
    format!("{scheme}://{rest}")
}

/// Replaces the URI's password and user name (as written and percent-decoded) in a
/// MongoDB driver message. User names shorter than 3 characters stay: replacing
/// them would garble the message more than it hides.
pub fn scrub(msg: String, uri: &str) -> String {
    let userinfo = uri
        .split_once("://")
        .map(|(_, r)| r)
        .and_then(|r| r.split(['/', '?']).next())
        .and_then(|auth| auth.rsplit_once('@'))
        .map(|(userinfo, _)| userinfo);
    let Some(userinfo) = userinfo else { return msg };
    let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let mut secrets: Vec<String> = Vec::new();
    for (part, min) in [(pass, 1), (user, 3)] {
        for form in [part.to_string(), percent_decode(part)] {
            if form.len() >= min {
                secrets.push(form);
            }
        }
    }
    // Longest first, so a secret holding another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
        .iter()
        .fold(msg, |m, secret| m.replace(secret.as_str(), "***"))
}

/// How long the MongoDB driver looks for a server (and a connection takes) before
/// it gives up, unless the URI says otherwise (the driver's default server
/// selection waits 30 s, which makes an unreachable cluster look like a hang).
const MONGO_TIMEOUT: Duration = Duration::from_secs(5);

/// The driver's options for `uri`, with [`MONGO_TIMEOUT`] where the URI sets no
/// server selection or connect timeout. A parse error names `flag` and the
/// `redacted` URI and is scrubbed of the credentials.
pub async fn mongo_options(uri: &str, redacted: &str, flag: &str) -> Result<ClientOptions> {
    let mut options = ClientOptions::parse(uri)
        .await
        .map_err(|e| anyhow!("invalid {flag} {redacted}: {}", scrub(e.to_string(), uri)))?;
    options
        .server_selection_timeout
        .get_or_insert(MONGO_TIMEOUT);
    options.connect_timeout.get_or_insert(MONGO_TIMEOUT);
    Ok(options)
}

/// Whether `name` matches the glob `pattern` (`*` any run, `?` one character).
pub fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// Whether a filter pattern names exactly one thing (no glob characters), so a
/// match on nothing is an error rather than an empty selection.
pub fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?'])
}

/// Whether `ns` (`a.b`) passes the filters: `outer` patterns against `a`, `inner`
/// patterns against `a.b` when they hold a dot, else against `b`. No patterns pass
/// everything.
pub fn selected(outer: &[String], inner: &[String], ns: &str) -> bool {
    let (a, b) = ns.split_once('.').unwrap_or((ns, ""));
    (outer.is_empty() || outer.iter().any(|p| glob(p, a)))
        && (inner.is_empty()
            || inner.iter().any(|p| {
                if p.contains('.') {
                    glob(p, ns)
                } else {
                    glob(p, b)
                }
            }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_user_information() {
        assert_eq!(
            redact("mongodb://u:p%40ss@h1:27017,h2/?replicaSet=rs"),
            "mongodb://h1:27017,h2/?replicaSet=rs"
        );
        assert_eq!(redact("cql://cassandra:s3cret@10.0.0.1"), "cql://10.0.0.1");
        assert_eq!(redact("cql://10.0.0.1:9043"), "cql://10.0.0.1:9043");
    }

    #[test]
    fn scrubs_user_and_password() {
        let uri = "mongodb://u:hunter2@h:27017/?replicaSet=rs";
        assert_eq!(
            scrub("auth failed for hunter2".into(), uri),
            "auth failed for ***"
        );
        let uri = "mongodb://backup%40corp:p%3Aw@h/";
        assert_eq!(
            scrub("user backup@corp: bad password p:w".into(), uri),
            "user ***: bad password ***"
        );
    }

    #[test]
    fn parses_cql_hosts_and_credentials() {
        let Source::Cql { hosts, credentials } =
            Source::parse("cql://u:p%3Aw@a,b:9043,[::1]:9044/").unwrap()
        else {
            panic!("cql")
        };
        assert_eq!(hosts, ["a:9042", "b:9043", "[::1]:9044"]);
        assert_eq!(credentials, Some(("u".into(), "p:w".into())));
        assert!(Source::parse("cql://a:port").is_err());
        assert!(Source::parse("http://a").is_err());
        assert!(Source::parse("cql://").is_err());
    }

    #[test]
    fn globs_and_filters() {
        assert!(glob("shop*", "shop_eu"));
        assert!(!glob("shop?", "shop"));
        assert!(selected(&[], &["orders".into()], "shop.orders"));
        assert!(selected(
            &["sh*".into()],
            &["shop.ord*".into()],
            "shop.orders"
        ));
        assert!(!selected(&["other".into()], &[], "shop.orders"));
    }
}
