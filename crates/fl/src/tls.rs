//! TLS of the Flower transport: the server's certificate and key, and the
//! root certificates a client trusts (Flower's `certificates` and
//! `root_certificates`). PEM files, as `dmo certs init` writes them.

use std::path::Path;

/// Largest PEM file read.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// A PEM file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct PemError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// Reads a PEM file holding a block of `kind` (`CERTIFICATE`, `PRIVATE KEY`).
fn read_pem(path: &Path, kind: &str) -> Result<Vec<u8>, PemError> {
    let fail = |problem: String| PemError {
        path: path.display().to_string(),
        problem,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .len();
    if size > MAX_PEM_BYTES {
        return Err(fail(format!("larger than {MAX_PEM_BYTES} bytes")));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("-----BEGIN ") || !text.contains(kind) {
        return Err(fail(format!(
            "not a PEM file with a {kind} block (`dmo certs init` writes them)"
        )));
    }
    Ok(bytes)
}

/// The server side: its certificate chain and private key.
#[derive(Clone)]
pub struct ServerTls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls(certificate, key redacted)")
    }
}

impl ServerTls {
    /// Reads the certificate and key files.
    pub fn read(cert: &Path, key: &Path) -> Result<Self, PemError> {
        Ok(Self {
            cert_pem: read_pem(cert, "CERTIFICATE")?,
            key_pem: read_pem(key, "PRIVATE KEY")?,
        })
    }

    /// tonic's server configuration.
    pub(crate) fn config(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(
            &self.cert_pem,
            &self.key_pem,
        ))
    }
}

/// The client side: the roots it trusts and the name the server's
/// certificate must hold.
#[derive(Debug, Clone)]
pub struct ClientTls {
    ca_pem: Vec<u8>,
    /// The name checked against the server's certificate (default: the
    /// host of the server address).
    pub domain: Option<String>,
}

impl ClientTls {
    /// Reads the root certificates file.
    pub fn read(root_certificates: &Path) -> Result<Self, PemError> {
        Ok(Self {
            ca_pem: read_pem(root_certificates, "CERTIFICATE")?,
            domain: None,
        })
    }

    /// tonic's client configuration for a server whose address has host `host`.
    pub(crate) fn config(&self, host: &str) -> tonic::transport::ClientTlsConfig {
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.ca_pem))
            .domain_name(self.domain.clone().unwrap_or_else(|| host.to_owned()))
    }
}
