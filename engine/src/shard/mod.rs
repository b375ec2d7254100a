//! Shards: partition → shard placement, the cross-shard message mesh, and the shard-local
//! synchronisation primitives the broker is built from.
//!
//! A shard is one glommio executor (one core) that owns its partitions outright (ARCHITECTURE
//! §1, §5). Work for another shard travels through the [`mesh`] as owned `Send` messages; the
//! placement function [`shard_for`] says which shard owns which partition and must stay stable
//! across releases (it decides where data lives on disk and which port clients send to).

pub mod mesh;
pub mod sync;

pub use mesh::{full_mesh, Mesh, MeshError, MeshSeed};

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The shard that owns partition `partition` of `topic` among `shard_count` shards.
///
/// The hash is FNV-1a 64-bit (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) over the
/// topic name's UTF-8 bytes followed by the partition number as a big-endian `u32` (its two's
/// complement bits), reduced modulo `shard_count`. It is part of Quiver's on-disk and wire
/// contract: brokers of a cluster run the same shard count, so a partition sits on the same
/// shard index on every replica. Never change it.
///
/// # Panics
/// If `shard_count` is 0 (a configuration bug caught at start-up).
pub fn shard_for(topic: &str, partition: i32, shard_count: usize) -> usize {
    assert!(shard_count > 0, "a broker has at least one shard");
    let mut hash = FNV_OFFSET_BASIS;
    for &byte in topic
        .as_bytes()
        .iter()
        .chain((partition as u32).to_be_bytes().iter())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    (hash % shard_count as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_is_fnv1a_and_stable() {
        // Golden values, computed independently: changing them moves partitions between shards
        // (and their data on disk).
        assert_eq!(
            shard_for("a", 0, usize::MAX),
            0x6de9_d1fe_51c9_cb4c % usize::MAX
        );
        assert_eq!(
            (0..8)
                .map(|p| shard_for("orders", p, 4))
                .collect::<Vec<_>>(),
            vec![0, 3, 2, 1, 0, 3, 2, 1]
        );
        assert_eq!(
            (0..4).map(|p| shard_for("t", p, 2)).collect::<Vec<_>>(),
            vec![1, 0, 1, 0]
        );
        assert_eq!(shard_for("x", 3, 1), 0);
    }
}
