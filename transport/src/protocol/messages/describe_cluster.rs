//! DescribeCluster (key 1104): the cluster as the answering broker sees it: the cluster id, the
//! active controller, how far the broker has applied the metadata log, and its whole metadata
//! image. Admin tools (`quiver cluster status`) and tests ask any broker; comparing brokers'
//! `metadata_offset` shows who lags.
//!
//! The image is opaque here: one version byte, then JSON, as the engine's
//! `ClusterMetadata::encode_image` writes it. It is empty when the broker runs without a
//! cluster (a single broker with no controller quorum).

use bytes::Bytes;

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

wire_struct! {
    /// DescribeCluster request, version 0. No fields.
    pub struct DescribeClusterRequest {}
}

wire_struct! {
    /// DescribeCluster response, version 0.
    pub struct DescribeClusterResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// The outcome.
        pub error_code: ErrorCode,
        /// A human-readable explanation when `error_code` is not None.
        pub error_message: Option<String>,
        /// The cluster's id, if the broker knows it.
        pub cluster_id: Option<String>,
        /// The broker id of the active controller, or -1 if unknown.
        pub controller_id: i32,
        /// Index of the last metadata-log entry the answering broker applied, or -1 if none.
        pub metadata_offset: i64,
        /// The broker's cluster metadata image (a version byte, then JSON); empty when the
        /// broker runs without a cluster.
        pub image: Bytes,
    }
}
