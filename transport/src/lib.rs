//! quiver-transport: the bytes on the wire.
//!
//! This crate owns the RecordBatch v2 format ([`batch`]: the bytes producers build and the broker stores
//! and serves as received), Quiver's binary protocol ([`protocol`]: frames, request and response types,
//! error codes with stable numbers), the quinn QUIC endpoints ([`quic`]: a glommio runtime
//! adapter for the broker, tokio for clients) and the client SDK ([`client`]: admin, producer and
//! consumer on tokio). It depends on nothing of the engine; [`batch`] and [`protocol`] use no
//! async runtime, so the engine can use them on its shards, and the SDK stays free of glommio
//! (ARCHITECTURE §5-§7).

pub mod batch;
pub mod client;
pub mod protocol;
pub mod quic;
