//! Producer ids for InitProducerId: never handed out twice, across restarts and crashes.
//!
//! Ids are reserved in blocks of [`PRODUCER_ID_BLOCK`]: before the first id of a block is
//! handed out, the block's upper bound (exclusive) is made durable in `<meta_dir>/producer_ids`
//! (written to a temporary name, fsynced, renamed, directory fsynced). On open, allocation
//! starts at the persisted bound, so a restart (even after kill -9 mid-block) skips the rest of
//! the previous block and never reuses an id. The file holds the bound as decimal text and a
//! newline. Calls are rare (one per producer session) and run on shard 0, so plain blocking
//! `std::fs` is fine.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Name of the file holding the reserved bound.
pub const PRODUCER_IDS_FILE: &str = "producer_ids";
/// Ids reserved per durable write.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// Hands out producer ids. See the module doc.
#[derive(Debug)]
pub struct ProducerIdAllocator {
    dir: PathBuf,
    /// The next id to hand out.
    next: i64,
    /// Ids below this are reserved durably.
    reserved: i64,
}

impl ProducerIdAllocator {
    /// Opens the allocator persisted in `meta_dir` (created if missing); a fresh directory
    /// starts at id 0. A file that does not hold a valid bound is an error, never a reset.
    pub fn open(meta_dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(meta_dir)?;
        let path = meta_dir.join(PRODUCER_IDS_FILE);
        let start = match fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|&b| b >= 0)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} does not hold a producer id bound", path.display()),
                    )
                })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ProducerIdAllocator {
            dir: meta_dir.to_path_buf(),
            next: start,
            reserved: start,
        })
    }

    /// The next unused producer id, reserving (durably) a new block first when needed.
    pub fn allocate(&mut self) -> io::Result<i64> {
        if self.next >= self.reserved {
            let bound = self
                .next
                .checked_add(PRODUCER_ID_BLOCK)
                .ok_or_else(|| io::Error::other("producer ids are exhausted"))?;
            self.persist(bound)?;
            self.reserved = bound;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }

    fn persist(&self, bound: i64) -> io::Result<()> {
        let tmp = self.dir.join(format!("{PRODUCER_IDS_FILE}.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(format!("{bound}\n").as_bytes())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, self.dir.join(PRODUCER_IDS_FILE))?;
        File::open(&self.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut seen = Vec::new();
        for round in 0..4 {
            let mut a = ProducerIdAllocator::open(dir.path()).expect("open");
            // A few ids, then (for some rounds) past a block boundary.
            let n = if round % 2 == 0 {
                3
            } else {
                PRODUCER_ID_BLOCK as usize + 2
            };
            for _ in 0..n {
                let id = a.allocate().expect("allocate");
                assert!(
                    seen.last().is_none_or(|&l| id > l),
                    "round {round}: {id} after {:?}",
                    seen.last()
                );
                seen.push(id);
            }
            // Dropped without any shutdown step, as a kill -9 would.
        }
        assert_eq!(seen[0], 0);
        let text = fs::read_to_string(dir.path().join(PRODUCER_IDS_FILE)).expect("file");
        let bound: i64 = text.trim().parse().expect("bound");
        assert!(bound > *seen.last().expect("ids"));
        assert!(!dir.path().join(format!("{PRODUCER_IDS_FILE}.tmp")).exists());
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(PRODUCER_IDS_FILE), "garbage").expect("write");
        assert!(ProducerIdAllocator::open(dir.path()).is_err());
        fs::write(dir.path().join(PRODUCER_IDS_FILE), "-5\n").expect("write");
        assert!(ProducerIdAllocator::open(dir.path()).is_err());
        fs::write(dir.path().join(PRODUCER_IDS_FILE), "4000\n").expect("write");
        let mut a = ProducerIdAllocator::open(dir.path()).expect("open");
        assert_eq!(a.allocate().expect("id"), 4000);
    }
}
