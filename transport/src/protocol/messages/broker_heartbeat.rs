//! BrokerHeartbeat (key 1101): a registered broker's periodic heartbeat to the active
//! controller (ARCHITECTURE §8). It keeps the broker's session alive, reports how far the broker
//! has applied the metadata log, and carries the broker's wishes to be fenced or to shut down;
//! the answer says whether the broker is caught up, fenced, and may stop.
//!
//! A broker that misses heartbeats for the session timeout is fenced: taken out of every ISR
//! and replaced as leader. A fenced broker is unfenced by its first heartbeat after it has
//! caught up with the metadata log. A controlled shutdown is a heartbeat with `want_shutdown`:
//! the controller moves the broker's leaderships away and answers `should_shutdown` once the
//! broker may stop without making a partition unavailable.

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

wire_struct! {
    /// BrokerHeartbeat request, version 0.
    pub struct BrokerHeartbeatRequest {
        /// The broker's id.
        pub broker_id: i32,
        /// The broker epoch its BrokerRegistration returned.
        pub broker_epoch: i64,
        /// The incarnation it registered with (see BrokerRegistration); another incarnation
        /// is an old process and is refused.
        pub incarnation_id: i64,
        /// How far the broker has applied the metadata log: the offset of the last record it
        /// applied, or -1 if it has applied none.
        pub metadata_offset: i64,
        /// The broker asks to be fenced (it cannot serve, e.g. its storage failed); false to
        /// ask to be, or stay, unfenced.
        pub want_fence: bool,
        /// The broker asks for a controlled shutdown: move its leaderships away, then let it
        /// stop.
        pub want_shutdown: bool,
    }
}

wire_struct! {
    /// BrokerHeartbeat response, version 0.
    pub struct BrokerHeartbeatResponse {
        /// Back-off requested by the controller, in milliseconds.
        pub throttle_time_ms: i32,
        /// The outcome: `NotController` (ask another controller), `StaleBrokerEpoch` (an old
        /// registration or incarnation: register again), `BrokerIdNotRegistered` (register
        /// first), ...
        pub error_code: ErrorCode,
        /// A human-readable explanation when `error_code` is not None.
        pub error_message: Option<String>,
        /// Whether the broker has caught up with the metadata log (its `metadata_offset`
        /// reached what the controller requires); false on error.
        pub is_caught_up: bool,
        /// Whether the broker is fenced after this heartbeat: it leads no partition and is in
        /// no ISR. True on error.
        pub is_fenced: bool,
        /// Whether a controlled shutdown the broker asked for is complete, so it may stop now;
        /// false on error.
        pub should_shutdown: bool,
    }
}
