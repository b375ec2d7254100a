//! quiver-transport: the bytes on the wire.
//!
//! This crate will own Quiver's binary protocol (frames, request and response types, error codes
//! with stable numbers), the quinn QUIC endpoints (a glommio runtime adapter for the broker,
//! tokio for clients) and the client SDK (producer, consumer, admin). It depends on nothing of
//! the engine, so the SDK stays free of glommio. It is empty until the broker work starts
//! (ARCHITECTURE §5-§7); the storage engine is usable on its own meanwhile.
