//! ApiVersions (key 0): the handshake. The client names itself; the broker lists, for every api
//! it implements, the versions it speaks, and its frame limit. A client sends it first on a new
//! connection and uses [`ApiVersionsResponse::negotiate`] to pick versions.
//!
//! Invariant: ApiVersions request version 0 is the one request every broker, old or new, must
//! always accept, so a client can always find out what else it may send. A client that tried a
//! newer ApiVersions version and got [`ErrorCode::UnsupportedVersion`](super::super::ErrorCode)
//! back retries with version 0.

use super::super::api_key::ApiKey;
use super::super::codec::wire_struct;

wire_struct! {
    /// ApiVersions request, version 0.
    pub struct ApiVersionsRequest {
        /// Client library name, for logs and metrics (e.g. `quiver-sdk`).
        pub client_software_name: String,
        /// Client library version.
        pub client_software_version: String,
    }
}

wire_struct! {
    /// The versions of one api a broker speaks.
    pub struct ApiVersionRange {
        /// Raw api key: a newer broker may list apis this build does not know.
        pub api_key: u16,
        /// Oldest version spoken.
        pub version_min: u16,
        /// Newest version spoken.
        pub version_max: u16,
    }
}

wire_struct! {
    /// ApiVersions response, version 0.
    pub struct ApiVersionsResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// One entry per api the broker implements.
        pub api_versions: Vec<ApiVersionRange>,
        /// Largest frame (after the length prefix) the broker accepts; larger requests are
        /// refused and the stream closed.
        pub frame_bytes_max: u32,
    }
}

impl ApiVersionRange {
    /// The api, if this build knows the key.
    pub fn api(&self) -> Option<ApiKey> {
        ApiKey::from_code(self.api_key)
    }
}

impl ApiVersionsResponse {
    /// The response describing this build: every api in [`ApiKey::ALL`] with its versions.
    pub fn for_this_build(frame_bytes_max: u32) -> Self {
        ApiVersionsResponse {
            throttle_time_ms: 0,
            api_versions: ApiKey::ALL
                .iter()
                .map(|api| ApiVersionRange {
                    api_key: api.code(),
                    version_min: api.version_min(),
                    version_max: api.version_max(),
                })
                .collect(),
            frame_bytes_max,
        }
    }

    /// The newest version of `api` both this build and the peer speak, or `None`.
    pub fn negotiate(&self, api: ApiKey) -> Option<u16> {
        let theirs = self.api_versions.iter().find(|r| r.api_key == api.code())?;
        let version_max = theirs.version_max.min(api.version_max());
        let version_min = theirs.version_min.max(api.version_min());
        (version_min <= version_max).then_some(version_max)
    }
}
