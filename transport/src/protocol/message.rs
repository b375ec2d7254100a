//! [`Request`] and [`Response`]: one enum variant per api, dispatch by api key and version, and
//! the whole-frame entry points ([`encode_request_frame`], [`decode_request_frame`],
//! [`encode_response_frame`], [`decode_response_frame`]).
//!
//! Invariants:
//! - Decoding consumes the whole frame or fails ([`DecodeError::TrailingBytes`]), and every
//!   encodable value has exactly one encoding, so `encode(decode(frame)) == frame` for every frame
//!   that decodes (the fuzz target checks this).
//! - A [`Response::Rejected`] is a response header with a non-zero `error_code` and an empty
//!   body: the broker's answer to a request it refused as a whole. A typed response always has
//!   `error_code` 0 in its header.
//! - A request whose header cannot be decoded gets no response: the broker closes the stream.

use bytes::Bytes;

use super::api_key::ApiKey;
use super::codec::{DecodeError, EncodeError, Encoder, Reader, Wire};
use super::error_code::ErrorCode;
use super::frame::{RequestHeader, RequestHeaderFixed, ResponseHeader, ResponseHeaderFixed};
use super::messages::*;

macro_rules! apis {
    ($($variant:ident => $req:ident, $resp:ident;)*) => {
        /// A decoded request body, one variant per api.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Request {
            $(
                #[doc = concat!("[`ApiKey::", stringify!($variant), "`] request.")]
                $variant($req),
            )*
        }

        /// A decoded response body, one variant per api, plus the api-less rejection.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Response {
            $(
                #[doc = concat!("[`ApiKey::", stringify!($variant), "`] response.")]
                $variant($resp),
            )*
            /// The request was refused as a whole (unknown api, unsupported version, malformed
            /// body, throttled, ...): the header's non-zero error code, with no body.
            Rejected(ErrorCode),
        }

        impl Request {
            /// The api of this request.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $(Request::$variant(_) => ApiKey::$variant,)*
                }
            }

            /// Decodes a whole request body of `version`; fails on trailing bytes.
            pub fn decode(api_key: ApiKey, version: u16, r: &mut Reader) -> Result<Self, DecodeError> {
                if !api_key.supports(version) {
                    return Err(DecodeError::UnsupportedVersion { api_key: api_key.code(), version });
                }
                let request = match api_key {
                    $(ApiKey::$variant => Request::$variant(
                        <$req as Wire>::decode(r, version, stringify!($req))?),)*
                };
                r.finish()?;
                Ok(request)
            }

            /// Encodes the body in `version`.
            pub fn encode(&self, w: &mut Encoder, version: u16) {
                let api_key = self.api_key();
                if !api_key.supports(version) {
                    w.fail(EncodeError::UnsupportedVersion { api_key: api_key.code(), version });
                    return;
                }
                match self {
                    $(Request::$variant(body) => body.encode(w, version, stringify!($req)),)*
                }
            }
        }

        impl Response {
            /// The api of this response; `None` for [`Response::Rejected`].
            pub fn api_key(&self) -> Option<ApiKey> {
                match self {
                    $(Response::$variant(_) => Some(ApiKey::$variant),)*
                    Response::Rejected(_) => None,
                }
            }

            /// Decodes a whole typed response body to a request of `api_key` and `version`;
            /// fails on trailing bytes. (A rejection has no body: see
            /// [`decode_response_frame`].)
            pub fn decode(api_key: ApiKey, version: u16, r: &mut Reader) -> Result<Self, DecodeError> {
                if !api_key.supports(version) {
                    return Err(DecodeError::UnsupportedVersion { api_key: api_key.code(), version });
                }
                let response = match api_key {
                    $(ApiKey::$variant => Response::$variant(
                        <$resp as Wire>::decode(r, version, stringify!($resp))?),)*
                };
                r.finish()?;
                Ok(response)
            }

            /// Encodes the body in `version`; a [`Response::Rejected`] has no body and writes
            /// nothing.
            pub fn encode(&self, w: &mut Encoder, version: u16) {
                if let Some(api_key) = self.api_key() {
                    if !api_key.supports(version) {
                        w.fail(EncodeError::UnsupportedVersion { api_key: api_key.code(), version });
                        return;
                    }
                }
                match self {
                    $(Response::$variant(body) => body.encode(w, version, stringify!($resp)),)*
                    Response::Rejected(_) => {}
                }
            }

            /// The error code the response header carries: `None` for a typed response.
            pub fn header_error_code(&self) -> ErrorCode {
                match self {
                    Response::Rejected(error_code) => *error_code,
                    _ => ErrorCode::None,
                }
            }
        }

        $(
            impl From<$req> for Request {
                fn from(body: $req) -> Self {
                    Request::$variant(body)
                }
            }

            impl From<$resp> for Response {
                fn from(body: $resp) -> Self {
                    Response::$variant(body)
                }
            }
        )*
    };
}

apis! {
    ApiVersions => ApiVersionsRequest, ApiVersionsResponse;
    Metadata => MetadataRequest, MetadataResponse;
    Produce => ProduceRequest, ProduceResponse;
    Fetch => FetchRequest, FetchResponse;
    ListOffsets => ListOffsetsRequest, ListOffsetsResponse;
    CreateTopics => CreateTopicsRequest, CreateTopicsResponse;
    DeleteTopics => DeleteTopicsRequest, DeleteTopicsResponse;
    DescribeTopics => DescribeTopicsRequest, DescribeTopicsResponse;
    ListTopics => ListTopicsRequest, ListTopicsResponse;
    AlterTopicConfigs => AlterTopicConfigsRequest, AlterTopicConfigsResponse;
    FindCoordinator => FindCoordinatorRequest, FindCoordinatorResponse;
    ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse;
    ListGroups => ListGroupsRequest, ListGroupsResponse;
    DescribeGroups => DescribeGroupsRequest, DescribeGroupsResponse;
    DeleteGroups => DeleteGroupsRequest, DeleteGroupsResponse;
    OffsetCommit => OffsetCommitRequest, OffsetCommitResponse;
    OffsetFetch => OffsetFetchRequest, OffsetFetchResponse;
    InitProducerId => InitProducerIdRequest, InitProducerIdResponse;
    OffsetForLeaderEpoch => OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse;
    BrokerRegistration => BrokerRegistrationRequest, BrokerRegistrationResponse;
    BrokerHeartbeat => BrokerHeartbeatRequest, BrokerHeartbeatResponse;
    AlterPartition => AlterPartitionRequest, AlterPartitionResponse;
    RaftMessage => RaftMessageRequest, RaftMessageResponse;
    DescribeCluster => DescribeClusterRequest, DescribeClusterResponse;
}

/// A request frame that failed to decode, with its header when that much was readable so the
/// broker can answer with [`Response::Rejected`] and the correlation id.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{error}")]
pub struct RequestDecodeError {
    /// The header, if it decoded; `None` means the stream should be closed without an answer.
    pub header: Option<RequestHeader>,
    /// What went wrong.
    pub error: DecodeError,
}

/// Encodes a whole request frame (length prefix, header, body) as chunks ready for QUIC
/// `write_chunks`. Fails if the frame would exceed `frame_bytes_max` (after the prefix).
///
/// # Panics
/// If `header.api_key` is not the request's api: a caller bug.
pub fn encode_request_frame(
    header: &RequestHeader,
    request: &Request,
    frame_bytes_max: u32,
) -> Result<Vec<Bytes>, EncodeError> {
    assert_eq!(
        header.api_key,
        request.api_key().code(),
        "request header names a different api than the body"
    );
    let mut w = Encoder::new_frame();
    w.fixed(&RequestHeaderFixed {
        api_key: header.api_key.into(),
        api_version: header.api_version.into(),
        correlation_id: header.correlation_id.into(),
    });
    w.nullable_string(header.client_id.as_deref(), "client_id");
    request.encode(&mut w, header.api_version);
    finish_frame(w, frame_bytes_max)
}

/// Decodes a request frame (as yielded by [`super::FrameDecoder`]): header, then the body of the
/// header's api and version.
pub fn decode_request_frame(frame: Bytes) -> Result<(RequestHeader, Request), RequestDecodeError> {
    let mut r = Reader::new(frame);
    let header = RequestHeader::decode(&mut r).map_err(|error| RequestDecodeError {
        header: None,
        error,
    })?;
    let body = match ApiKey::from_code(header.api_key) {
        None => Err(DecodeError::UnknownApiKey(header.api_key)),
        Some(api_key) => Request::decode(api_key, header.api_version, &mut r),
    };
    match body {
        Ok(request) => Ok((header, request)),
        Err(error) => Err(RequestDecodeError {
            header: Some(header),
            error,
        }),
    }
}

/// Encodes a whole response frame (length prefix, header, body) as chunks ready for QUIC
/// `write_chunks`; large record payloads stay separate chunks. Fails if the frame would exceed
/// `frame_bytes_max` (after the prefix), or for `Response::Rejected(ErrorCode::None)`, which has
/// no wire form (a zero header code announces a typed body).
pub fn encode_response_frame(
    header: &ResponseHeader,
    api_version: u16,
    response: &Response,
    frame_bytes_max: u32,
) -> Result<Vec<Bytes>, EncodeError> {
    let mut w = Encoder::new_frame();
    let error_code = response.header_error_code();
    if matches!(response, Response::Rejected(_)) && error_code.is_ok() {
        w.fail(EncodeError::InvalidValue {
            what: "rejection error_code",
            value: 0,
        });
    }
    w.fixed(&ResponseHeaderFixed {
        correlation_id: header.correlation_id.into(),
        error_code: error_code.code().into(),
    });
    response.encode(&mut w, api_version);
    finish_frame(w, frame_bytes_max)
}

/// Decodes a response frame to a request of `api_key` and `api_version` (found from the
/// correlation id with [`ResponseHeader::peek`]). A non-zero header error code gives
/// [`Response::Rejected`] (and the body must be empty); zero gives the api's typed response.
pub fn decode_response_frame(
    frame: Bytes,
    api_key: ApiKey,
    api_version: u16,
) -> Result<(ResponseHeader, Response), DecodeError> {
    let mut r = Reader::new(frame);
    let fixed: ResponseHeaderFixed = r.fixed("response header")?;
    let header = ResponseHeader {
        correlation_id: fixed.correlation_id.get(),
    };
    let error_code = ErrorCode::from_code(fixed.error_code.get());
    if !error_code.is_ok() {
        r.finish()?;
        return Ok((header, Response::Rejected(error_code)));
    }
    let response = Response::decode(api_key, api_version, &mut r)?;
    Ok((header, response))
}

fn finish_frame(w: Encoder, frame_bytes_max: u32) -> Result<Vec<Bytes>, EncodeError> {
    let frame_bytes = w.len_bytes() - super::frame::FRAME_LEN_PREFIX_BYTES;
    let chunks = w.finish()?;
    if frame_bytes > usize::try_from(frame_bytes_max).unwrap_or(usize::MAX) {
        return Err(EncodeError::FrameTooLarge {
            frame_bytes,
            frame_bytes_max,
        });
    }
    Ok(chunks)
}
