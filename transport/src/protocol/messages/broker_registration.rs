//! BrokerRegistration (key 1100): a broker announces itself to the active controller when its
//! process starts, and gets the broker epoch that names this registration (ARCHITECTURE §8).
//!
//! A broker registers fenced: it leads no partition and joins no ISR until a
//! [BrokerHeartbeat](super::BrokerHeartbeatRequest) says it has caught up with the metadata log.
//! Every process start is a new incarnation with a new `incarnation_id`; registering the same
//! incarnation again (a retry after a lost response) gets the same answer. A new incarnation is
//! refused with `DuplicateBrokerRegistration` while the previous one's session is still live.
//! A broker that is not the active controller answers `NotController`.

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

wire_struct! {
    /// BrokerRegistration request, version 0.
    pub struct BrokerRegistrationRequest {
        /// The registering broker's id (not negative).
        pub broker_id: i32,
        /// Names this process start: a new random value every time the broker process starts,
        /// the same for every retry of one start. Tells a restart apart from a resent request.
        pub incarnation_id: i64,
        /// Where clients and other brokers reach the broker's QUIC listener, as `host:port`.
        pub listener: String,
        /// The broker's rack, for rack-aware replica placement, or null for none.
        pub rack: Option<String>,
        /// How many shards (cores) the broker runs; a partition is served by one of them.
        pub shards: i32,
    }
}

wire_struct! {
    /// BrokerRegistration response, version 0.
    pub struct BrokerRegistrationResponse {
        /// Back-off requested by the controller, in milliseconds.
        pub throttle_time_ms: i32,
        /// The outcome: `NotController` (ask another controller), `DuplicateBrokerRegistration`
        /// (another incarnation of this id has a live session), `InvalidRequest` (a bad id,
        /// listener or rack), ...
        pub error_code: ErrorCode,
        /// A human-readable explanation when `error_code` is not None.
        pub error_message: Option<String>,
        /// The broker epoch of this registration: sent with every later BrokerHeartbeat and
        /// AlterPartition, which are refused with `StaleBrokerEpoch` once it is not the current
        /// one. -1 on error.
        pub broker_epoch: i64,
    }
}
