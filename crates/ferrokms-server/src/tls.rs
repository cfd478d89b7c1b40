//! HTTPS: rustls on aws-lc-rs, TLS 1.2 and 1.3 with forward-secret suites only, and a
//! certificate that SIGHUP reloads without dropping the connections already made.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::ServerError;

/// Where the certificate chain and its private key are (PEM).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The TLS settings connections are accepted with; replaced whole on reload.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

fn tls_error(msg: String) -> ServerError {
    ServerError::Config(msg)
}

/// A suite is forward secret when its key exchange is ephemeral: every TLS 1.3 suite, and
/// the TLS 1.2 suites with (EC)DHE (rustls offers no other kind; the rule is kept here).
fn forward_secret(suite: &rustls::SupportedCipherSuite) -> bool {
    match suite {
        rustls::SupportedCipherSuite::Tls13(_) => true,
        rustls::SupportedCipherSuite::Tls12(s) => matches!(
            s.kx,
            rustls::crypto::KeyExchangeAlgorithm::ECDHE | rustls::crypto::KeyExchangeAlgorithm::DHE
        ),
    }
}

fn server_config(files: &TlsFiles) -> Result<ServerConfig, ServerError> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(format!("reading {}: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(tls_error(format!(
            "{} holds no certificate",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| tls_error(format!("reading {}: {e}", files.key.display())))?;
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.retain(forward_secret);
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls_error(format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            tls_error(format!(
                "{} and {} do not make a usable certificate and key: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl Tls {
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, ServerError> {
        let config = server_config(&files)?;
        Ok(Arc::new(Tls {
            files,
            current: RwLock::new(Arc::new(config)),
        }))
    }

    /// Reads the files again; new connections get the new certificate, open ones keep
    /// theirs. On error the old certificate stays.
    pub fn reload(&self) -> Result<(), ServerError> {
        let config = Arc::new(server_config(&self.files)?);
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        Ok(())
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        TlsAcceptor::from(config)
    }

    /// Reloads on every SIGHUP, for as long as the process runs.
    pub fn reload_on_sighup(self: &Arc<Self>) -> Result<(), ServerError> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup())
            .map_err(|e| ServerError::Io(format!("listening for SIGHUP: {e}")))?;
        let tls = self.clone();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => {
                        tracing::warn!(cert = %tls.files.cert.display(), "TLS certificate reloaded")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS certificate not reloaded; the old one stays")
                    }
                }
            }
        });
        Ok(())
    }
}

/// For `serve --dev --dev-tls`: a self-signed certificate for localhost and 127.0.0.1 in
/// `dir` (made once, then reused so that clients keep trusting it), and its SHA-256
/// fingerprint.
pub fn dev_certificate(dir: &Path) -> Result<(TlsFiles, String), ServerError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let files = TlsFiles {
        cert: dir.join("dev-tls-cert.pem"),
        key: dir.join("dev-tls-key.pem"),
    };
    if !(files.cert.is_file() && files.key.is_file()) {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .map_err(|e| tls_error(format!("making a self-signed certificate: {e}")))?;
        let write = |path: &Path, text: &str, mode: u32| {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode)
                .open(path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|e| ServerError::Io(format!("writing {}: {e}", path.display())))
        };
        write(
            &files.key,
            &zeroize::Zeroizing::new(made.signing_key.serialize_pem()),
            0o600,
        )?;
        write(&files.cert, &made.cert.pem(), 0o644)?;
    }
    let der = CertificateDer::from_pem_file(&files.cert)
        .map_err(|e| tls_error(format!("reading {}: {e}", files.cert.display())))?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der.as_ref());
    let fingerprint = digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok((files, fingerprint))
}
