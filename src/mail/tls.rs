//! The rustls client used for IMAPS and IMAP STARTTLS: the ring provider, rustls' safe
//! protocol versions, the Mozilla roots and, when configured, a private CA.

use super::MailError;
use rustls::pki_types::{pem::PemObject, CertificateDer};
use std::path::Path;
use std::sync::Arc;

/// The certificates of `ca_file` (PEM), for lettre and for our own root store.
pub(crate) fn read_ca_file(server: &str, path: &Path) -> Result<Vec<u8>, MailError> {
    let err = |detail: String| MailError::TlsSetup {
        server: server.to_string(),
        detail: format!("{}: {detail}", path.display()),
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let count = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?
        .len();
    if count == 0 {
        return Err(err("no certificate in the file".into()));
    }
    Ok(pem)
}

/// A client configuration trusting the Mozilla roots and the certificates in `ca_file`.
pub(crate) fn client_config(
    server: &str,
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, MailError> {
    let setup = |detail: String| MailError::TlsSetup {
        server: server.to_string(),
        detail,
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem = read_ca_file(server, path)?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| setup(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| setup(format!("{}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_names_the_file() {
        let e = client_config("imap:993", Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_config("imap:993", Some(&empty)).unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
    }

    #[test]
    fn the_mozilla_roots_alone_build() {
        client_config("imap:993", None).unwrap();
    }
}
