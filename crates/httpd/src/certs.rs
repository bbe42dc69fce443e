//! Certificates for TLS: a certificate authority and a certificate per
//! host, as `dmo certs init` makes them (rcgen, ECDSA P-256).

use std::net::IpAddr;
use std::path::Path;

/// Making certificates failed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate could not be made.
    #[error("making a certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

fn io(path: &Path, source: std::io::Error) -> CertError {
    CertError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `contents` to `path`, readable by its owner alone.
fn write_private(path: &Path, contents: &str) -> Result<(), CertError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(path, e))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io(path, e))?;
    file.write_all(contents.as_bytes()).map_err(|e| io(path, e))
}

/// Writes a CA (`ca.pem`, `ca.key`) and, signed by it, a certificate and
/// key per host (`HOST.pem`, `HOST.key`) into `dir`, each valid for `days`
/// days for the host's name, its addresses, `localhost` and 127.0.0.1,
/// for serving and for client authentication. Keys are its owner's alone.
pub fn init(dir: &Path, hosts: &[(String, Vec<IpAddr>)], days: u32) -> Result<(), CertError> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::days(i64::from(days));
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "dist-ml-orch CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (ca.not_before, ca.not_after) = (now, until);
    let ca_key = KeyPair::generate()?;
    write_private(&dir.join("ca.key"), &ca_key.serialize_pem())?;
    let issuer = CertifiedIssuer::self_signed(ca, ca_key)?;
    let ca_pem = dir.join("ca.pem");
    std::fs::write(&ca_pem, issuer.pem()).map_err(|e| io(&ca_pem, e))?;
    for (name, ips) in hosts {
        let mut params = CertificateParams::new(vec![name.clone(), "localhost".to_owned()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, name.as_str());
        let loopback = IpAddr::from([127, 0, 0, 1]);
        for ip in ips.iter().chain(std::iter::once(&loopback)) {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        (params.not_before, params.not_after) = (now, until);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        let pem = dir.join(format!("{name}.pem"));
        std::fs::write(&pem, cert.pem()).map_err(|e| io(&pem, e))?;
        write_private(&dir.join(format!("{name}.key")), &key.serialize_pem())?;
    }
    Ok(())
}
