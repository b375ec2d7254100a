//! quiver-transport: the bytes on the wire.
//!
//! This crate owns the RecordBatch v2 format ([`batch`]: the bytes producers build and the broker stores
//! and serves as received), Quiver's binary protocol ([`protocol`]: frames, request and response types,
//! error codes with stable numbers) and will own the quinn QUIC endpoints (a glommio runtime
//! adapter for the broker, tokio for clients) and the client SDK (producer, consumer, admin). It
//! depends on nothing of the engine and on no async runtime, so the engine can use
//! [`protocol`] on its shards and the SDK stays free of glommio (ARCHITECTURE §5-§7).

pub mod batch;
pub mod protocol;
pub mod quic;
