//! RaftMessage (key 1103): one message of the controller quorum's Raft protocol, sent from one
//! controller's shard 0 to another's (ARCHITECTURE §8): votes, appends, heartbeats, snapshots and
//! their answers.
//!
//! The body is one raft-rs `eraftpb::Message` encoded with protobuf. This crate carries the bytes
//! and never decodes them (it does not depend on raft); the receiving controller decodes them and
//! steps its Raft node. Raft's answers travel as RaftMessages of their own, so the response only
//! says whether the message was taken: `NotController` from a broker that is not a controller,
//! `InvalidRequest` for bytes that are not a Raft message.

use bytes::Bytes;

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

wire_struct! {
    /// RaftMessage request, version 0.
    pub struct RaftMessageRequest {
        /// One `eraftpb::Message`, protobuf-encoded.
        pub message: Bytes,
    }
}

wire_struct! {
    /// RaftMessage response, version 0.
    pub struct RaftMessageResponse {
        /// Whether the receiver took the message (None), or why not.
        pub error_code: ErrorCode,
    }
}
