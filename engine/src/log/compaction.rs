//! Log compaction planning (sans-IO): which records of the sealed segments survive.
//!
//! `cleanup.policy=compact` keeps, for every key, only the record with the highest offset among
//! the sealed segments; a surviving tombstone (null value) is dropped too once its timestamp is
//! older than `now - delete_retention_ms`, which gives consumers that long to see the delete.
//! Records without a key are kept (Kafka refuses them on compacted topics; we do not drop data we
//! cannot reason about). Offsets never change: a rewritten batch keeps its base offset and last
//! offset delta, so offsets only become sparse.

use std::collections::HashMap;

use bytes::Bytes;

/// The latest offset of every key seen so far.
#[derive(Debug, Default)]
pub struct KeyMap {
    latest: HashMap<Bytes, i64>,
}

impl KeyMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `key` appeared at `offset` (records must come in offset order).
    pub fn observe(&mut self, key: &Bytes, offset: i64) {
        self.latest.insert(key.clone(), offset);
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// Whether no key was seen.
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// Whether the record (`key`, `offset`, tombstone if `value_is_null`, `timestamp`) survives.
    pub fn retains(
        &self,
        key: Option<&Bytes>,
        offset: i64,
        value_is_null: bool,
        timestamp: i64,
        tombstone_cutoff_ms: i64,
    ) -> bool {
        let Some(key) = key else { return true };
        match self.latest.get(key) {
            Some(&latest) if latest == offset => {
                !(value_is_null && timestamp < tombstone_cutoff_ms)
            }
            Some(_) => false,
            // Not in the map: the key appeared after the map was built (e.g. in the active
            // segment); keep it.
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_latest_and_young_tombstones() {
        let mut map = KeyMap::new();
        let a = Bytes::from_static(b"a");
        let b = Bytes::from_static(b"b");
        map.observe(&a, 0);
        map.observe(&b, 1);
        map.observe(&a, 2);
        assert!(!map.retains(Some(&a), 0, false, 0, 0));
        assert!(map.retains(Some(&a), 2, false, 0, 0));
        assert!(
            map.retains(Some(&b), 1, true, 100, 50),
            "young tombstone stays"
        );
        assert!(
            !map.retains(Some(&b), 1, true, 10, 50),
            "old tombstone goes"
        );
        assert!(map.retains(None, 7, false, 0, 0));
        assert_eq!(map.len(), 2);
    }
}
