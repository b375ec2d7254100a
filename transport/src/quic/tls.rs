//! TLS for QUIC: a broker's identity (certificate chain and key) and a client's trust.
//!
//! QUIC always encrypts (ARCHITECTURE §5). A broker started without `--tls-cert/--tls-key`
//! creates a self-signed certificate under `<data-dir>/tls/` on first start and reuses it
//! afterwards; clients trust it by reading the same `cert.pem` as their CA. Deployments pass a
//! real chain and key, and clients the CA that signed it.
//!
//! [`Trust::InsecureSkipVerify`] still checks the handshake signature (so the peer holds the key
//! of the certificate it showed) but accepts any certificate: for development only.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// File name of the certificate (chain) in a TLS directory.
pub const CERT_FILE: &str = "cert.pem";
/// File name of the private key in a TLS directory.
pub const KEY_FILE: &str = "key.pem";

/// Why a TLS identity or trust could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a PEM file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Creating a certificate failed.
    #[error("creating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(rustls::Error),
    /// quinn refused the TLS configuration.
    #[error("QUIC TLS configuration: {0}")]
    Config(String),
}

/// The crypto provider every Quiver endpoint uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A broker's certificate chain and private key.
pub struct Identity {
    /// Leaf first.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("certs", &self.cert_chain.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let cert_chain = read_certs(cert)?;
        let pem = read(key)?;
        let key_der = rustls_pemfile::private_key(&mut pem.as_slice())
            .map_err(|source| TlsError::Io {
                path: key.to_owned(),
                source,
            })?
            .ok_or_else(|| TlsError::Pem {
                path: key.to_owned(),
                what: "no private key found".into(),
            })?;
        Ok(Identity {
            cert_chain,
            key: key_der,
        })
    }

    /// Loads `dir/cert.pem` and `dir/key.pem`, creating a self-signed certificate there first if
    /// neither exists. `names` are extra DNS names or IP addresses for the certificate besides
    /// `localhost`, `127.0.0.1` and `::1`. Returns the identity and whether it was created now.
    pub fn load_or_create_self_signed(
        dir: &Path,
        names: &[String],
    ) -> Result<(Identity, bool), TlsError> {
        let cert = dir.join(CERT_FILE);
        let key = dir.join(KEY_FILE);
        if cert.exists() || key.exists() {
            return Ok((Identity::load(&cert, &key)?, false));
        }
        let mut sans = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        for name in names {
            if !sans.contains(name) {
                sans.push(name.clone());
            }
        }
        let generated = rcgen::generate_simple_self_signed(sans)?;
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| TlsError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        // Key first, so a crash leaves either nothing usable (no cert: regenerate) or both.
        write_atomically(&key, generated.key_pair.serialize_pem().as_bytes(), 0o600)
            .map_err(io_err(&key))?;
        write_atomically(&cert, generated.cert.pem().as_bytes(), 0o644).map_err(io_err(&cert))?;
        Ok((Identity::load(&cert, &key)?, true))
    }
}

/// Whom a client trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Certificates signed by (or equal to) one of these.
    Roots(Vec<CertificateDer<'static>>),
    /// Any certificate (the handshake signature is still checked). Development only.
    InsecureSkipVerify,
}

impl Trust {
    /// Trusts every certificate in a PEM file (a CA, or a broker's self-signed certificate).
    pub fn from_pem_file(path: &Path) -> Result<Trust, TlsError> {
        Ok(Trust::Roots(read_certs(path)?))
    }
}

/// The rustls client configuration for `trust` (no ALPN set).
pub fn client_tls(trust: &Trust) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Rustls)?;
    let config = match trust {
        Trust::Roots(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots.add(cert.clone()).map_err(TlsError::Rustls)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::InsecureSkipVerify => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
            .with_no_client_auth(),
    };
    Ok(config)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Io {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "no certificate found".into(),
        });
    }
    Ok(certs)
}

fn write_atomically(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(data)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Accepts any certificate but checks that the peer signed the handshake with its key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
