//! The primitive encoding rules at their edges: string and null limits, UTF-8, nulls where none
//! is allowed, encode-side limits, and the chunking of the encoder's output.

use bytes::Bytes;
use quiver_transport::protocol::*;

fn reader(bytes: &[u8]) -> Reader {
    Reader::new(Bytes::copy_from_slice(bytes))
}

#[test]
fn strings_up_to_the_limit_encode_and_longer_ones_fail() {
    let longest = "s".repeat(STRING_BYTES_MAX);
    let mut w = Encoder::new();
    w.string(&longest, "name");
    let encoded = concat_chunks(&w.finish().unwrap());
    assert_eq!(&encoded[..2], &[0xFF, 0xFE]);
    assert_eq!(reader(&encoded).string("name").unwrap(), longest);

    let too_long = "s".repeat(STRING_BYTES_MAX + 1);
    let mut w = Encoder::new();
    w.i32(1);
    w.string(&too_long, "name");
    w.i32(2); // later writes do not hide the first problem
    assert_eq!(
        w.finish(),
        Err(EncodeError::StringTooLong {
            what: "name",
            len: STRING_BYTES_MAX + 1
        })
    );
}

#[test]
fn nulls_and_invalid_values_are_typed_errors() {
    assert_eq!(reader(&[0xFF, 0xFF]).nullable_string("s"), Ok(None));
    assert_eq!(
        reader(&[0xFF, 0xFF]).string("s"),
        Err(DecodeError::UnexpectedNull { what: "s" })
    );
    assert_eq!(
        reader(&[0xFF; 4]).bytes("records"),
        Err(DecodeError::UnexpectedNull { what: "records" })
    );
    assert_eq!(reader(&[0xFF; 4]).nullable_bytes("b"), Ok(None));
    assert_eq!(
        reader(&[0, 2, 0xC3, 0x28]).string("s"),
        Err(DecodeError::InvalidUtf8 { what: "s" })
    );
    assert_eq!(
        reader(&[0, 3, b'a']).string("s"),
        Err(DecodeError::Truncated {
            what: "s",
            need: 3,
            have: 1
        })
    );
    assert_eq!(
        reader(&[0xFF; 4]).array::<i32>(0, "replicas"),
        Err(DecodeError::UnexpectedNull { what: "replicas" })
    );
    assert_eq!(
        reader(&[0, 0, 0, 2, 0, 0, 0, 1]).array::<i32>(0, "replicas"),
        Err(DecodeError::ArrayTooLong {
            what: "replicas",
            count: 2,
            remaining: 4
        })
    );
    assert_eq!(
        reader(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFD]).i64("t"),
        Ok(-3)
    );
    let mut r = reader(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFD]);
    assert_eq!(
        OffsetSpec::decode(&mut r, 0, "timestamp"),
        Err(DecodeError::InvalidValue {
            what: "timestamp",
            value: -3
        })
    );
    let mut r = reader(&[2]);
    assert!(matches!(
        IsolationLevel::decode(&mut r, 0, "isolation_level"),
        Err(DecodeError::InvalidValue { value: 2, .. })
    ));
}

#[test]
fn invalid_values_fail_to_encode() {
    let mut w = Encoder::new();
    OffsetSpec::Timestamp(-5).encode(&mut w, 0, "timestamp");
    assert_eq!(
        w.finish(),
        Err(EncodeError::InvalidValue {
            what: "timestamp",
            value: -5
        })
    );
}

#[test]
fn frames_over_the_limit_fail_to_encode() {
    let request = Request::from(ProduceRequest {
        topics: vec![ProduceTopic {
            name: "t".into(),
            partitions: vec![ProducePartition {
                partition: 0,
                records: Bytes::from(vec![0; 10_000]),
            }],
        }],
        ..Default::default()
    });
    let header = RequestHeader {
        api_key: ApiKey::Produce.code(),
        ..Default::default()
    };
    let frame_bytes = concat_chunks(&encode_request_frame(&header, &request, u32::MAX).unwrap())
        .len()
        - FRAME_LEN_PREFIX_BYTES;
    let limit = u32::try_from(frame_bytes).unwrap();
    assert!(encode_request_frame(&header, &request, limit).is_ok());
    assert_eq!(
        encode_request_frame(&header, &request, limit - 1),
        Err(EncodeError::FrameTooLarge {
            frame_bytes,
            frame_bytes_max: limit - 1
        })
    );
}

#[test]
fn unsupported_versions_fail_to_encode() {
    let header = RequestHeader {
        api_key: ApiKey::ListTopics.code(),
        api_version: 1,
        ..Default::default()
    };
    assert_eq!(
        encode_request_frame(&header, &ListTopicsRequest::default().into(), u32::MAX),
        Err(EncodeError::UnsupportedVersion {
            api_key: 13,
            version: 1
        })
    );
}

#[test]
#[should_panic(expected = "different api")]
fn a_header_naming_another_api_is_a_bug() {
    let header = RequestHeader {
        api_key: ApiKey::Fetch.code(),
        ..Default::default()
    };
    let _ = encode_request_frame(&header, &ListTopicsRequest::default().into(), u32::MAX);
}

#[test]
fn frame_length_prefix_is_patched_across_chunks() {
    let mut w = Encoder::new_frame();
    w.u16(0xABCD);
    w.payload(&Bytes::from(vec![1; PAYLOAD_INLINE_BYTES_MAX + 1]));
    w.u16(0x1234);
    let chunks = w.finish().unwrap();
    assert_eq!(chunks.len(), 3);
    let total: usize = chunks.iter().map(Bytes::len).sum();
    assert_eq!(
        &chunks[0][..],
        &[
            &u32::try_from(total - 4).unwrap().to_be_bytes()[..],
            &[0xAB, 0xCD]
        ]
        .concat()[..]
    );
    assert_eq!(&chunks[2][..], &[0x12, 0x34]);
}

#[test]
fn records_equality_ignores_chunking() {
    let a = Records::from(vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cde")]);
    let b = Records::from(vec![
        Bytes::from_static(b"a"),
        Bytes::new(),
        Bytes::from_static(b"bcd"),
        Bytes::from_static(b"e"),
    ]);
    assert_eq!(a, b);
    assert_eq!(b.chunks().len(), 3, "empty chunks are dropped");
    assert_ne!(a, Records::from(Bytes::from_static(b"abcdf")));
    assert_ne!(a, Records::from(Bytes::from_static(b"abcd")));
    assert_eq!(a.to_bytes(), Bytes::from_static(b"abcde"));
}

/// Floods of tiny elements (2 wire bytes, 24 heap bytes each) hit the decode allocation budget
/// instead of allocating 12× the frame; realistic messages stay far below it.
#[test]
fn decoding_allocates_at_most_a_fixed_multiple_of_the_input() {
    fn describe_frame(names: &[String]) -> Bytes {
        let header = RequestHeader {
            api_key: ApiKey::DescribeTopics.code(),
            ..Default::default()
        };
        let request = Request::from(DescribeTopicsRequest {
            names: names.to_vec(),
        });
        concat_chunks(&encode_request_frame(&header, &request, u32::MAX).unwrap())
            .slice(FRAME_LEN_PREFIX_BYTES..)
    }

    let empty_names = vec![String::new(); 1_000_000];
    let frame = describe_frame(&empty_names);
    let error = decode_request_frame(frame.clone()).unwrap_err().error;
    // The header (null client id) allocated nothing, so the whole budget was left.
    assert_eq!(
        error,
        DecodeError::AllocationLimit {
            what: "names",
            need_bytes: 1_000_000 * std::mem::size_of::<String>(),
            budget_bytes: decode_alloc_bytes_max(frame.len()),
        }
    );
    assert_eq!(error.error_code(), ErrorCode::InvalidRequest);

    let real_names: Vec<String> = (0..20_000).map(|i| format!("orders.region-{i}")).collect();
    let (_, request) = decode_request_frame(describe_frame(&real_names)).unwrap();
    assert_eq!(
        request,
        Request::from(DescribeTopicsRequest { names: real_names })
    );
}

#[test]
fn bools_are_one_byte_zero_or_one() {
    for (v, byte) in [(false, 0x00), (true, 0x01)] {
        let mut w = Encoder::new();
        v.encode(&mut w, 0, "flag");
        assert_eq!(concat_chunks(&w.finish().unwrap()), [byte][..]);
        assert_eq!(reader(&[byte]).bool("flag"), Ok(v));
        assert_eq!(bool::decode(&mut reader(&[byte]), 0, "flag"), Ok(v));
    }
    for (byte, value) in [(0x02, 2), (0x7F, 127), (0x80, -128), (0xFF, -1)] {
        assert_eq!(
            bool::decode(&mut reader(&[byte]), 0, "flag"),
            Err(DecodeError::InvalidValue {
                what: "flag",
                value
            }),
            "{byte:#04x}"
        );
    }
    assert_eq!(
        reader(&[]).bool("flag"),
        Err(DecodeError::Truncated {
            what: "flag",
            need: 1,
            have: 0
        })
    );
}
