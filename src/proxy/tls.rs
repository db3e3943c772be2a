//! TLS on either side of the proxy (rustls): terminate the clients' TLS with a
//! configured certificate (`--tls-cert`, `--tls-key`, PEM) and re-originate TLS to
//! the node (`--upstream-tls`, trusting `--upstream-ca` PEM or, without it, the
//! Mozilla roots of `webpki-roots`). The decoders see the plaintext the proxy
//! forwards, which is what a passive tap of a TLS cluster can never see.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The proxy's TLS, as configured.
#[derive(Clone, Default)]
pub struct Tls {
    /// Terminates the clients' TLS.
    pub acceptor: Option<TlsAcceptor>,
    /// Re-originates TLS to the node, with the name its certificate must carry.
    pub connector: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("terminate", &self.acceptor.is_some())
            .field("originate", &self.connector.is_some())
            .finish()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The acceptor for a certificate chain and its key (PEM files).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read --tls-cert {}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            anyhow!(
                "--tls-cert {}: not a PEM certificate chain: {e}",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        bail!("--tls-cert {}: no certificate in it", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow!("--tls-key {}: no PEM private key: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| anyhow!("--tls-cert/--tls-key do not make a certificate: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The connector to nodes whose certificates name `server_name`, trusting the CA
/// certificates in `ca` (PEM), else the Mozilla roots.
pub fn connector(
    ca: Option<&Path>,
    server_name: &str,
) -> Result<(TlsConnector, ServerName<'static>)> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(ca) => {
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("cannot read --upstream-ca {}", ca.display()))?
            {
                let c = c.map_err(|e| anyhow!("--upstream-ca {}: {e}", ca.display()))?;
                roots
                    .add(c)
                    .map_err(|e| anyhow!("--upstream-ca {}: {e}", ca.display()))?;
            }
            if roots.is_empty() {
                bail!("--upstream-ca {}: no certificate in it", ca.display());
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| anyhow!("invalid upstream TLS name {server_name:?}: {e}"))?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}
