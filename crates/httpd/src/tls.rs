//! HTTPS for the REST servers and their clients: a server's certificate
//! and key (PEM, as `dmo certs init` writes them) and the roots a client
//! trusts. rustls with the ring provider.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Largest PEM file read.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// TLS settings that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct TlsError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    let fail = |problem: String| TlsError {
        path: path.display().to_string(),
        problem,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .len();
    if size > MAX_PEM_BYTES {
        return Err(fail(format!("larger than {MAX_PEM_BYTES} bytes")));
    }
    std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError {
            path: path.display().to_string(),
            problem: format!("not PEM certificates: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError {
            path: path.display().to_string(),
            problem: "holds no certificate (`dmo certs init` writes them)".to_owned(),
        });
    }
    Ok(certs)
}

/// The ring crypto provider, which every TLS config here uses.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server's TLS configuration from its certificate chain and key files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certificates(cert)?;
    let key_bytes = read(key)?;
    let fail = |problem: String| TlsError {
        path: key.display().to_string(),
        problem,
    };
    let private = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|e| fail(format!("not a PEM private key: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| fail(format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The root certificates (PEM) a client trusts, read once.
#[derive(Clone)]
pub struct Roots {
    pem: Vec<u8>,
}

impl std::fmt::Debug for Roots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Roots(PEM)")
    }
}

impl Roots {
    /// Reads the roots file (the CA's `ca.pem`).
    pub fn read(path: &Path) -> Result<Self, TlsError> {
        certificates(path)?;
        Ok(Self { pem: read(path)? })
    }

    /// The PEM bytes.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }

    /// The roots as reqwest certificates.
    fn reqwest_roots(&self) -> Result<Vec<reqwest::Certificate>, TlsError> {
        reqwest::Certificate::from_pem_bundle(&self.pem).map_err(|e| TlsError {
            path: "(roots)".to_owned(),
            problem: e.to_string(),
        })
    }

    /// `builder` trusting these roots only (no system roots).
    pub fn client(
        &self,
        builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, TlsError> {
        let builder = builder.use_rustls_tls().tls_built_in_root_certs(false);
        Ok(self
            .reqwest_roots()?
            .into_iter()
            .fold(builder, |b, cert| b.add_root_certificate(cert)))
    }

    /// The same for a blocking client.
    pub fn blocking_client(
        &self,
        builder: reqwest::blocking::ClientBuilder,
    ) -> Result<reqwest::blocking::ClientBuilder, TlsError> {
        let builder = builder.use_rustls_tls().tls_built_in_root_certs(false);
        Ok(self
            .reqwest_roots()?
            .into_iter()
            .fold(builder, |b, cert| b.add_root_certificate(cert)))
    }
}
