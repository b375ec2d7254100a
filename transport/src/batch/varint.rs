//! Kafka's zigzag varints: `varint` (i32, at most 5 bytes) and `varlong` (i64, at most 10
//! bytes), as used by every variable-length field of a v2 record.
//!
//! A value is zigzag-mapped to unsigned (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) and written
//! little-endian in 7-bit groups, the high bit of each byte meaning "more follows". Decoding is
//! strict: an encoding longer than the maximum, or whose last byte carries bits beyond the
//! type's width, is rejected rather than silently truncated.

/// Longest encoding of an i32 varint.
pub const VARINT_LEN_MAX: usize = 5;
/// Longest encoding of an i64 varlong.
pub const VARLONG_LEN_MAX: usize = 10;

/// Why a varint could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    /// The input ended before the last byte (one without the continuation bit).
    #[error("varint truncated")]
    Truncated,
    /// More bytes than the type allows, or bits beyond its width in the last byte.
    #[error("varint too long for its type")]
    Overlong,
}

/// Zigzag-map an i32 to u32.
pub fn zigzag32(value: i32) -> u32 {
    ((value << 1) ^ (value >> 31)) as u32
}

/// Inverse of [`zigzag32`].
pub fn unzigzag32(value: u32) -> i32 {
    ((value >> 1) as i32) ^ -((value & 1) as i32)
}

/// Zigzag-map an i64 to u64.
pub fn zigzag64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Inverse of [`zigzag64`].
pub fn unzigzag64(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Bytes [`put_varint`] writes for `value`.
pub fn varint_len(value: i32) -> usize {
    unsigned_len(u64::from(zigzag32(value)))
}

/// Bytes [`put_varlong`] writes for `value`.
pub fn varlong_len(value: i64) -> usize {
    unsigned_len(zigzag64(value))
}

/// Append the zigzag varint encoding of `value` to `out`.
pub fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_unsigned(out, u64::from(zigzag32(value)));
}

/// Append the zigzag varlong encoding of `value` to `out`.
pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    put_unsigned(out, zigzag64(value));
}

/// Decode a zigzag varint from the start of `buf`; returns the value and the bytes it used.
pub fn get_varint(buf: &[u8]) -> Result<(i32, usize), VarintError> {
    let (raw, used) = get_unsigned(buf, 32)?;
    // get_unsigned guarantees raw < 2^32.
    Ok((unzigzag32(raw as u32), used))
}

/// Decode a zigzag varlong from the start of `buf`; returns the value and the bytes it used.
pub fn get_varlong(buf: &[u8]) -> Result<(i64, usize), VarintError> {
    let (raw, used) = get_unsigned(buf, 64)?;
    Ok((unzigzag64(raw), used))
}

fn unsigned_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

fn put_unsigned(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Decode an unsigned LEB128 value of at most `bits` bits (32 or 64).
fn get_unsigned(buf: &[u8], bits: u32) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    let mut shift: u32 = 0;
    for (i, &byte) in buf.iter().enumerate() {
        let group = u64::from(byte & 0x7f);
        // Bits of this group that land at or beyond `bits` must be zero.
        let room = bits - shift;
        if room < 7 && group >> room != 0 {
            return Err(VarintError::Overlong);
        }
        value |= group << shift;
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
        shift += 7;
        if shift >= bits {
            return Err(VarintError::Overlong);
        }
    }
    Err(VarintError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc32(v: i32) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn rejects_continuation_past_max() {
        assert_eq!(
            get_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Err(VarintError::Overlong)
        );
        // Fifth byte of an i32 may carry only 4 bits.
        assert_eq!(
            get_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(VarintError::Overlong)
        );
        assert_eq!(
            get_varint(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Ok((i32::MIN, 5))
        );
        assert_eq!(get_varint(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(get_varint(&[]), Err(VarintError::Truncated));
        // Tenth byte of an i64 may carry only 1 bit.
        let mut long = vec![0xff; 9];
        long.push(0x03);
        assert_eq!(get_varlong(&long), Err(VarintError::Overlong));
        long[9] = 0x01;
        assert_eq!(get_varlong(&long), Ok((i64::MIN, 10)));
    }

    #[test]
    fn len_matches_encoding() {
        for v in [0, 1, -1, 63, -64, 64, -65, 8191, 8192, i32::MAX, i32::MIN] {
            assert_eq!(varint_len(v), enc32(v).len(), "value {v}");
        }
    }
}
