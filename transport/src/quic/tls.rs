//! TLS for QUIC: a broker's identity (certificate chain and key) and a client's trust.
//!
//! QUIC always encrypts (ARCHITECTURE §5). A broker started without `--tls-cert/--tls-key`
//! creates a self-signed certificate under `<data-dir>/tls/` on first start and reuses it
//! afterwards; clients trust it by reading the same `cert.pem` as their CA. Deployments pass a
//! real chain and key, and clients the CA that signed it.
//!
//! A local cluster shares one CA instead ([`ClusterCerts`], written by `quiver cluster certs`):
//! every broker shows a certificate the CA signed, and brokers and clients trust the CA.
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
    #[error("creating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A certificate was asked for without any host name or address to name.
    #[error("a certificate needs at least one host name or address")]
    NoHosts,
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

/// A certificate authority for a local cluster and one broker certificate it signed, all PEM.
/// Every broker of the cluster can use the same broker certificate (it names every host given).
pub struct ClusterCerts {
    /// The CA's self-signed certificate: what brokers and clients trust.
    pub ca_cert_pem: String,
    /// The CA's private key (to sign more certificates later).
    pub ca_key_pem: String,
    /// The broker certificate, then the CA's: a broker serves the chain, and trusting this one
    /// file (a broker without `--tls-ca`) trusts the CA.
    pub broker_chain_pem: String,
    /// The broker certificate's private key.
    pub broker_key_pem: String,
}

impl fmt::Debug for ClusterCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterCerts").finish_non_exhaustive()
    }
}

impl ClusterCerts {
    /// Creates a CA and a broker certificate for `hosts` (DNS names or IP addresses; at least
    /// one), valid for both server and client authentication.
    pub fn generate(hosts: &[String]) -> Result<ClusterCerts, TlsError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        if hosts.is_empty() {
            return Err(TlsError::NoHosts);
        }
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Quiver local cluster CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate()?;
        let ca = ca_params.self_signed(&ca_key)?;

        let mut params = CertificateParams::new(hosts.to_vec())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "Quiver broker");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let broker = params.signed_by(&key, &ca, &ca_key)?;
        Ok(ClusterCerts {
            ca_cert_pem: ca.pem(),
            ca_key_pem: ca_key.serialize_pem(),
            broker_chain_pem: format!("{}{}", broker.pem(), ca.pem()),
            broker_key_pem: key.serialize_pem(),
        })
    }
}

/// Writes a PEM file whole or not at all (a temporary file renamed into place, then synced),
/// with permission bits `mode` (0o600 for private keys).
pub fn write_pem_file(path: &Path, pem: &str, mode: u32) -> Result<(), TlsError> {
    write_atomically(path, pem.as_bytes(), mode).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
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
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    // `mode` applies only when the file is created: a leftover temporary file keeps its own.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
        rustls_pemfile::certs(&mut pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("PEM certificates parse")
    }

    /// Verifies the chain in `chain_pem` for `name` with `roots_pem` as the only roots.
    fn verify(roots_pem: &str, chain_pem: &str, name: &str) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in pem_certs(roots_pem) {
            roots.add(cert).expect("a root certificate");
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .expect("a verifier");
        let chain = pem_certs(chain_pem);
        let name = ServerName::try_from(name.to_string()).expect("a server name");
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn cluster_certs_verify_against_the_ca_for_their_hosts_only() {
        let hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let certs = ClusterCerts::generate(&hosts).expect("certificates");
        assert_eq!(pem_certs(&certs.broker_chain_pem).len(), 2, "leaf, then CA");
        for host in &hosts {
            verify(&certs.ca_cert_pem, &certs.broker_chain_pem, host).expect("trusted via the CA");
            // Trusting the broker's own chain file trusts the CA in it.
            verify(&certs.broker_chain_pem, &certs.broker_chain_pem, host)
                .expect("trusted via its own file");
        }
        assert!(verify(&certs.ca_cert_pem, &certs.broker_chain_pem, "127.0.0.2").is_err());
        assert!(verify(&certs.ca_cert_pem, &certs.broker_chain_pem, "example.com").is_err());
        // Another CA does not vouch for it.
        let other = ClusterCerts::generate(&hosts).expect("certificates");
        assert!(verify(&other.ca_cert_pem, &certs.broker_chain_pem, "127.0.0.1").is_err());
        assert!(matches!(
            ClusterCerts::generate(&[]),
            Err(TlsError::NoHosts)
        ));
    }
}
