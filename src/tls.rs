//! The rustls client configuration for navbat's outgoing HTTPS clients (the SMS gateway,
//! the Telegram bot API): the ring provider, safe protocol versions, the Mozilla roots and an
//! optional private CA. A leaf, so the configuration can check a CA file at start-up without
//! depending on the clients that use it.

/// Why the TLS client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file cannot be read or holds no certificate.
    #[error("sms.gateway.ca_file {path}: {detail}; fix: give a readable PEM file with the CA certificate")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS client: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The rustls client configuration: ring, safe protocol versions, Mozilla roots and `ca_file`.
pub fn tls_config(
    ca_file: Option<&std::path::Path>,
) -> Result<std::sync::Arc<rustls::ClientConfig>, TlsSetupError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let err = |detail: String| TlsSetupError::CaFile {
            path: path.to_path_buf(),
            detail,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no certificate in the file".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| err(e.to_string()))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}
