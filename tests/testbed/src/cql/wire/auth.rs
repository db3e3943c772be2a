//! PasswordAuthenticator: after STARTUP the node answers AUTHENTICATE with
//! Cassandra's authenticator class; the client's AUTH_RESPONSE carries a SASL PLAIN
//! token (`authzid \0 user \0 password`), checked against the configured user.
//! Neither the token nor the password is ever logged.

use crate::cql::cluster::state::ClusterConfig;
use bytes::Bytes;
use tidemark_cql::message::{error_code as code, ErrorBody, ErrorDetails};

pub const AUTHENTICATOR: &str = "org.apache.cassandra.auth.PasswordAuthenticator";

/// The `[bytes]` token of an AUTH_RESPONSE body (the protocol decoder drops it so it
/// can never leak into logs; the testbed needs it to check the password).
pub fn token_from_body(body: &Bytes) -> Option<Bytes> {
    let len = i32::from_be_bytes(body.get(..4)?.try_into().ok()?);
    let len = usize::try_from(len).ok()?;
    (body.len() == 4 + len).then(|| body.slice(4..4 + len))
}

/// Checks a SASL PLAIN token; the error is Cassandra's AuthenticationError.
pub fn check(config: &ClusterConfig, token: Option<&Bytes>) -> Result<(), ErrorBody> {
    let bad = |msg: String| ErrorBody {
        code: code::BAD_CREDENTIALS,
        message: msg.into(),
        details: ErrorDetails::None,
    };
    let Some((user, password)) = &config.credentials else {
        return Ok(());
    };
    let token = token.ok_or_else(|| bad("Authentication failed: empty token".into()))?;
    let mut parts = token.split(|b| *b == 0);
    let (Some(_authzid), Some(u), Some(p), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(
            "Authentication failed: malformed SASL PLAIN token".into()
        ));
    };
    if u == user.as_bytes() && p == password.as_bytes() {
        tracing::debug!("client authenticated");
        return Ok(());
    }
    let shown = String::from_utf8_lossy(u).into_owned();
    Err(bad(format!(
        "Provided username {shown} and/or password are incorrect"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tokens() {
        let cfg = ClusterConfig {
            credentials: Some(("alice".into(), "s3cret".into())),
            ..ClusterConfig::default()
        };
        assert!(check(&cfg, Some(&Bytes::from_static(b"\0alice\0s3cret"))).is_ok());
        let e = check(&cfg, Some(&Bytes::from_static(b"\0alice\0nope"))).unwrap_err();
        assert_eq!(e.code, code::BAD_CREDENTIALS);
        assert!(!e.message.contains("nope"));
        assert!(check(&cfg, Some(&Bytes::from_static(b"alice"))).is_err());
        assert!(check(&cfg, None).is_err());
        assert!(check(&ClusterConfig::default(), None).is_ok());
        let body = Bytes::from_static(b"\0\0\0\x03\0ab");
        assert_eq!(token_from_body(&body), Some(Bytes::from_static(b"\0ab")));
        assert_eq!(token_from_body(&Bytes::from_static(b"\0\0\0\x09ab")), None);
        assert_eq!(
            token_from_body(&Bytes::from_static(b"\xff\xff\xff\xff")),
            None
        );
    }
}
