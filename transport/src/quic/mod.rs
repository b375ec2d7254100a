//! QUIC endpoints: the transport settings every Quiver endpoint shares, TLS identities and trust
//! ([`tls`]), frame IO over quinn streams ([`stream`]), and (feature `glommio`) the quinn runtime
//! adapter the broker's shards run on and the request client they call other brokers with
//! (`peers`).
//!
//! One bidirectional QUIC stream carries one request frame and its response frame (ARCHITECTURE
//! §6). Back-pressure per connection is QUIC's own: a peer may open at most
//! [`Tuning::bidi_streams_max`] streams at once, so at most that many requests are in flight per
//! connection; further `open_bi` calls wait for a slot.
//!
//! Both sides must use the same [`ALPN`]; a peer speaking anything else fails the handshake.

use std::sync::Arc;
use std::time::Duration;

pub mod socket;
pub mod stream;
pub mod tls;

#[cfg(feature = "glommio")]
pub mod glommio;
#[cfg(feature = "glommio")]
pub mod peers;

pub use tls::{Identity, TlsError, Trust};

/// The ALPN protocol id of Quiver's protocol over QUIC.
pub const ALPN: &[u8] = b"quiver/0";

/// Transport knobs shared by brokers and clients. Defaults follow ARCHITECTURE §10: quinn's
/// 1452-byte MTU ceiling (raise it on jumbo-frame networks after measuring), windows large enough
/// for one stream to fill a fast link, and a bounded number of requests in flight.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Upper bound for path-MTU discovery, bytes of UDP payload.
    pub mtu_upper_bound: u16,
    /// Receive window of one stream, bytes.
    pub stream_receive_window: u32,
    /// Receive window of a whole connection, bytes.
    pub receive_window: u32,
    /// Send window of a whole connection, bytes.
    pub send_window: u64,
    /// Bidirectional streams (= requests in flight) a peer may open at once.
    pub bidi_streams_max: u32,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Keep-alive interval, so an idle but healthy connection is not closed.
    pub keep_alive: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            mtu_upper_bound: 1452,
            stream_receive_window: 16 << 20,
            receive_window: 64 << 20,
            send_window: 64 << 20,
            bidi_streams_max: 256,
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
        }
    }
}

impl Tuning {
    /// The quinn transport configuration for these settings.
    pub fn transport_config(&self) -> quinn::TransportConfig {
        let mut t = quinn::TransportConfig::default();
        t.stream_receive_window(quinn::VarInt::from_u32(self.stream_receive_window));
        t.receive_window(quinn::VarInt::from_u32(self.receive_window));
        t.send_window(self.send_window);
        t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(self.bidi_streams_max));
        t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
        t.keep_alive_interval(Some(self.keep_alive));
        // The idle timeout is a VarInt of milliseconds; anything this struct can hold fits.
        let idle_ms = u32::try_from(self.idle_timeout.as_millis()).unwrap_or(u32::MAX);
        t.max_idle_timeout(Some(quinn::VarInt::from_u32(idle_ms).into()));
        let mut mtu = quinn::MtuDiscoveryConfig::default();
        mtu.upper_bound(self.mtu_upper_bound);
        t.mtu_discovery_config(Some(mtu));
        t
    }
}

/// Server configuration for a broker endpoint: its identity, [`ALPN`], and `tuning`.
pub fn server_config(
    identity: &Identity,
    tuning: &Tuning,
) -> Result<quinn::ServerConfig, TlsError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Rustls)?
        .with_no_client_auth()
        .with_single_cert(identity.cert_chain.clone(), identity.key.clone_key())
        .map_err(TlsError::Rustls)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(tuning.transport_config()));
    Ok(config)
}

/// Client configuration: whom to trust, [`ALPN`], and `tuning`.
pub fn client_config(trust: &Trust, tuning: &Tuning) -> Result<quinn::ClientConfig, TlsError> {
    let mut tls = tls::client_tls(trust)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(tuning.transport_config()));
    Ok(config)
}
