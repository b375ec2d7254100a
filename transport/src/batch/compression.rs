//! Compression codecs of the records section: the [`Compression`] enum (attribute bits 0-2) and
//! the bounded compress/decompress functions behind it.
//!
//! Formats are Kafka's: gzip (RFC 1952, multi-member accepted), snappy in xerial framing (raw
//! snappy blocks also accepted when decoding), the LZ4 frame format with independent 64 KiB
//! blocks, and zstd frames decoded as a stream because producers may omit the content size.
//! Decompression never yields more than [`DECOMPRESSED_BYTES_MAX`] bytes: hostile input fails
//! with [`BatchError::DecompressedTooLarge`] instead of exhausting memory.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use super::header::ATTR_COMPRESSION_MASK;
use super::BatchError;

/// Most bytes the records section of one batch may decompress to (64 MiB). Kafka's default
/// `message.max.bytes` is 1 MiB, so any honest batch is far below this.
pub const DECOMPRESSED_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Magic that opens a xerial snappy stream (`\x82SNAPPY\x00`).
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// Xerial header: magic, version i32, min-compatible-version i32.
const XERIAL_HEADER_LEN: usize = 16;
/// Xerial stream version we write (what snappy-java writes).
const XERIAL_VERSION: i32 = 1;
/// Uncompressed bytes per xerial block we write (snappy-java's default block size, 32 KiB).
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;
/// Largest zstd window accepted when decoding: 2^26 = 64 MiB, the decompressed cap, so a hostile
/// frame header cannot make the decoder reserve more than one batch may produce.
const ZSTD_WINDOW_LOG_MAX: u32 = 26;
/// zstd level we compress with (Kafka's default, 3).
const ZSTD_LEVEL: i32 = 3;

/// Codec of a batch's records section, attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Records stored as is (0).
    #[default]
    None,
    /// gzip (1).
    Gzip,
    /// Snappy, xerial framing (2).
    Snappy,
    /// LZ4 frame format (3).
    Lz4,
    /// zstd (4).
    Zstd,
}

impl Compression {
    /// Codec named by bits 0-2 of `attributes`.
    pub fn from_attributes(attributes: i16) -> Result<Self, BatchError> {
        let id = (attributes & ATTR_COMPRESSION_MASK) as u8;
        Self::from_id(id)
    }

    /// Codec with Kafka's numeric id (0 none .. 4 zstd).
    pub fn from_id(id: u8) -> Result<Self, BatchError> {
        match id {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }

    /// Kafka's numeric id of this codec.
    pub fn id(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// This codec as attribute bits (bits 0-2; OR it into the other attributes).
    pub fn to_bits(self) -> i16 {
        i16::from(self.id())
    }

    /// Lowercase name, as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    /// Compress an uncompressed records section.
    pub fn compress(self, raw: &[u8]) -> Result<Vec<u8>, BatchError> {
        let err = |e: std::io::Error| BatchError::Compress(format!("{self}: {e}"));
        match self {
            Self::None => Ok(raw.to_vec()),
            Self::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(raw).map_err(err)?;
                enc.finish().map_err(err)
            }
            Self::Snappy => snappy_xerial_compress(raw),
            Self::Lz4 => {
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB)
                    .block_mode(lz4_flex::frame::BlockMode::Independent);
                let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
                enc.write_all(raw).map_err(err)?;
                enc.finish()
                    .map_err(|e| BatchError::Compress(format!("lz4: {e}")))
            }
            Self::Zstd => zstd::stream::encode_all(raw, ZSTD_LEVEL).map_err(err),
        }
    }

    /// Decompress a records section, failing beyond [`DECOMPRESSED_BYTES_MAX`] bytes.
    pub fn decompress(self, data: &[u8]) -> Result<Vec<u8>, BatchError> {
        self.decompress_max(data, DECOMPRESSED_BYTES_MAX)
    }

    /// Decompress a records section, failing beyond `max` bytes of output.
    pub fn decompress_max(self, data: &[u8], max: usize) -> Result<Vec<u8>, BatchError> {
        match self {
            Self::None => {
                if data.len() > max {
                    return Err(BatchError::DecompressedTooLarge { max });
                }
                Ok(data.to_vec())
            }
            Self::Gzip => read_bounded(self, flate2::read::MultiGzDecoder::new(data), max),
            Self::Snappy => snappy_decompress(data, max),
            Self::Lz4 => read_bounded(self, lz4_flex::frame::FrameDecoder::new(data), max),
            Self::Zstd => {
                let err = |e: std::io::Error| BatchError::Decompress(format!("zstd: {e}"));
                let mut dec = zstd::stream::read::Decoder::new(data).map_err(err)?;
                dec.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(err)?;
                read_bounded(self, dec, max)
            }
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A codec name that is not one of "none", "gzip", "snappy", "lz4", "zstd".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression {0:?} (expected none, gzip, snappy, lz4 or zstd)")]
pub struct ParseCompressionError(pub String);

impl FromStr for Compression {
    type Err = ParseCompressionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "gzip" => Ok(Self::Gzip),
            "snappy" => Ok(Self::Snappy),
            "lz4" => Ok(Self::Lz4),
            "zstd" => Ok(Self::Zstd),
            other => Err(ParseCompressionError(other.to_owned())),
        }
    }
}

/// Read `codec`'s decoder to the end, but stop with `DecompressedTooLarge` past `max` bytes.
fn read_bounded(codec: Compression, reader: impl Read, max: usize) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    // One byte more than allowed tells "exactly max" from "too large".
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| BatchError::Decompress(format!("{codec}: {e}")))?;
    if out.len() > max {
        return Err(BatchError::DecompressedTooLarge { max });
    }
    Ok(out)
}

fn snappy_xerial_compress(raw: &[u8]) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + raw.len() / 2 + 64);
    out.extend_from_slice(XERIAL_MAGIC);
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes()); // minimum compatible version
    let mut enc = snap::raw::Encoder::new();
    for chunk in raw.chunks(XERIAL_BLOCK_BYTES) {
        let block = enc
            .compress_vec(chunk)
            .map_err(|e| BatchError::Compress(format!("snappy: {e}")))?;
        // A block holds at most XERIAL_BLOCK_BYTES input, so its compressed size fits an i32.
        let len =
            i32::try_from(block.len()).map_err(|_| BatchError::TooLarge { len: block.len() })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&block);
    }
    Ok(out)
}

/// Decode xerial-framed snappy, or a single raw snappy block if the framing magic is absent.
fn snappy_decompress(data: &[u8], max: usize) -> Result<Vec<u8>, BatchError> {
    let is_xerial = data.len() >= XERIAL_HEADER_LEN && data.starts_with(XERIAL_MAGIC);
    if !is_xerial {
        let mut out = Vec::new();
        snappy_raw_block(data, max, &mut out)?;
        return Ok(out);
    }
    let mut out = Vec::new();
    let mut rest = &data[XERIAL_HEADER_LEN..];
    while !rest.is_empty() {
        let Some((len_bytes, after)) = rest.split_first_chunk::<4>() else {
            return Err(BatchError::Decompress(format!(
                "snappy: {} stray bytes where a block length belongs",
                rest.len()
            )));
        };
        let len = i32::from_be_bytes(*len_bytes);
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= after.len())
            .ok_or_else(|| {
                BatchError::Decompress(format!(
                    "snappy: block length {len} with {} bytes left",
                    after.len()
                ))
            })?;
        let (block, next) = after.split_at(len);
        snappy_raw_block(block, max, &mut out)?;
        rest = next;
    }
    Ok(out)
}

/// Append the decompression of one raw snappy block to `out`, unless `out` would then exceed
/// `max` bytes.
fn snappy_raw_block(block: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), BatchError> {
    let err = |e: snap::Error| BatchError::Decompress(format!("snappy: {e}"));
    // The length comes from the block's preamble and is checked before anything is allocated.
    let len = snap::raw::decompress_len(block).map_err(err)?;
    if len > max.saturating_sub(out.len()) {
        return Err(BatchError::DecompressedTooLarge { max });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(err)?;
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn names_and_ids_round_trip() {
        for c in ALL {
            assert_eq!(c.name().parse::<Compression>(), Ok(c));
            assert_eq!(c.to_string(), c.name());
            assert_eq!(Compression::from_id(c.id()), Ok(c));
            assert_eq!(Compression::from_attributes(c.to_bits() | 0x30), Ok(c));
        }
        assert_eq!(
            Compression::from_attributes(5),
            Err(BatchError::UnknownCompression(5))
        );
        assert!("LZ4".parse::<Compression>().is_err());
    }

    #[test]
    fn codecs_round_trip_multi_block() {
        // 100 KiB: several xerial and lz4 blocks.
        let raw: Vec<u8> = (0..100 * 1024u32)
            .map(|i| (i % 251) as u8 ^ (i / 977) as u8)
            .collect();
        for c in ALL {
            let packed = c.compress(&raw).unwrap();
            assert_eq!(c.decompress(&packed).unwrap(), raw, "{c}");
        }
    }

    #[test]
    fn decompress_respects_cap() {
        let raw = vec![7u8; 10_000];
        for c in ALL {
            let packed = c.compress(&raw).unwrap();
            assert_eq!(
                c.decompress_max(&packed, 10_000).unwrap().len(),
                10_000,
                "{c}"
            );
            assert!(
                matches!(
                    c.decompress_max(&packed, 9_999),
                    Err(BatchError::DecompressedTooLarge { .. })
                ),
                "{c}"
            );
        }
    }

    #[test]
    fn snappy_accepts_raw_block() {
        let raw = b"hello hello hello hello snappy".to_vec();
        let block = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        assert_eq!(Compression::Snappy.decompress(&block).unwrap(), raw);
    }

    #[test]
    fn snappy_xerial_rejects_bad_block_length() {
        let mut packed = Compression::Snappy.compress(b"abcdefgh").unwrap();
        packed[XERIAL_HEADER_LEN..XERIAL_HEADER_LEN + 4].copy_from_slice(&1000i32.to_be_bytes());
        assert!(matches!(
            Compression::Snappy.decompress(&packed),
            Err(BatchError::Decompress(_))
        ));
    }
}
