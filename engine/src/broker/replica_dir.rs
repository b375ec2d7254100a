//! Which topic a replica directory belongs to, in a cluster.
//!
//! Partition directories are named `<topic>-<p>`, but a topic can be deleted and created
//! again under the same name while a broker is down or behind on metadata. The directory
//! then holds records of the old topic. Serving them as the new topic's records would be
//! wrong, and truncating by leader epoch does not help, because the new topic's epochs start
//! again at 0. So each replica directory carries a mark, `partition.metadata`, with the id of
//! the topic it holds and the metadata offset of the image that opened it.
//!
//! A directory whose mark names another topic id is wiped, but only by an image at least as
//! new as the mark. An older image (say from a controller that is behind) says nothing about
//! a topic created after it, so the directory is left alone until a newer image arrives.
//! The same rule removes directories of topics deleted while the broker was down.

use std::io::{self, Write};
use std::path::Path;

use crate::cluster::metadata::TopicId;

/// The mark's file name (as Kafka names its own).
pub const MARK_FILE: &str = "partition.metadata";
const MARK_VERSION: u32 = 1;

/// What a replica directory's mark says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirMark {
    /// The topic the directory's records belong to.
    pub topic_id: TopicId,
    /// Offset of the metadata image that opened the directory. That image included the
    /// topic, so the topic was created at or before this offset.
    pub metadata_offset: i64,
}

/// What to do with a replica directory, given an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It holds the image's topic (or has no mark yet): open it.
    Keep,
    /// It holds a topic the image no longer has here: remove it.
    Wipe,
    /// The image is older than the mark: decide on a newer one.
    Wait,
}

/// Judges a directory with `mark` against an image at `image_offset` in which this broker
/// hosts the partition as topic `hosted` (`None`: the image has no such partition here).
pub fn judge(mark: Option<&DirMark>, hosted: Option<TopicId>, image_offset: i64) -> Verdict {
    let Some(mark) = mark else {
        // A directory from before marks existed, or one created just now.
        return Verdict::Keep;
    };
    if hosted == Some(mark.topic_id) {
        Verdict::Keep
    } else if image_offset >= mark.metadata_offset {
        Verdict::Wipe
    } else {
        Verdict::Wait
    }
}

/// Reads the mark in `dir`: `None` if there is none; an `InvalidData` error if it does not
/// parse (never guessed). Blocking.
pub fn read(dir: &Path) -> io::Result<Option<DirMark>> {
    let text = match std::fs::read_to_string(dir.join(MARK_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    parse(&text).map(Some).map_err(|why| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {why}", dir.join(MARK_FILE).display()),
        )
    })
}

fn parse(text: &str) -> Result<DirMark, String> {
    let mut version = None;
    let mut topic_id = None;
    let mut metadata_offset = None;
    for line in text.lines() {
        let (key, value) = line
            .split_once(": ")
            .ok_or_else(|| format!("line '{line}' is not 'key: value'"))?;
        match key {
            "version" => version = value.parse::<u32>().ok(),
            "topic_id" => topic_id = TopicId::try_from(value.to_string()).ok(),
            "metadata_offset" => metadata_offset = value.parse::<i64>().ok(),
            _ => return Err(format!("unknown key '{key}'")),
        }
    }
    if version != Some(MARK_VERSION) {
        return Err(format!("version is not {MARK_VERSION}"));
    }
    Ok(DirMark {
        topic_id: topic_id.ok_or("no valid topic_id")?,
        metadata_offset: metadata_offset.ok_or("no valid metadata_offset")?,
    })
}

/// Writes `mark` into `dir` (created if missing) atomically and durably: a temporary file,
/// fsynced, renamed over the mark, the directory fsynced. Blocking.
pub fn write(dir: &Path, mark: &DirMark) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{MARK_FILE}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    write!(
        file,
        "version: {MARK_VERSION}\ntopic_id: {}\nmetadata_offset: {}\n",
        mark.topic_id, mark.metadata_offset
    )?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(MARK_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: TopicId = TopicId(7);
    const NEW: TopicId = TopicId(9);

    fn mark(id: TopicId, offset: i64) -> DirMark {
        DirMark {
            topic_id: id,
            metadata_offset: offset,
        }
    }

    #[test]
    fn a_directory_of_another_topic_is_wiped_only_by_an_image_as_new_as_its_mark() {
        let m = mark(OLD, 40);
        assert_eq!(judge(Some(&m), Some(OLD), 10), Verdict::Keep);
        assert_eq!(judge(Some(&m), Some(NEW), 40), Verdict::Wipe);
        assert_eq!(judge(Some(&m), Some(NEW), 90), Verdict::Wipe);
        assert_eq!(judge(Some(&m), None, 41), Verdict::Wipe);
        // An image from before the mark may simply not know the topic yet.
        assert_eq!(judge(Some(&m), Some(NEW), 39), Verdict::Wait);
        assert_eq!(judge(Some(&m), None, -1), Verdict::Wait);
        assert_eq!(judge(None, Some(NEW), 5), Verdict::Keep);
    }

    #[test]
    fn marks_round_trip_and_damage_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replica = dir.path().join("t-0");
        assert_eq!(read(&replica).expect("read"), None);
        let m = mark(TopicId(0x1234_5678_9abc_def0_1122_3344_5566_7788), 123);
        write(&replica, &m).expect("write");
        assert_eq!(read(&replica).expect("read"), Some(m));
        write(&replica, &mark(NEW, 124)).expect("rewrite");
        assert_eq!(read(&replica).expect("read"), Some(mark(NEW, 124)));
        assert!(!replica.join(format!("{MARK_FILE}.tmp")).exists());
        for damaged in [
            "version: 1\ntopic_id: 12\nmetadata_offset: 5\n",
            "version: 2\ntopic_id: 00000000000000000000000000000009\nmetadata_offset: 5\n",
            "version: 1\ntopic_id: 00000000000000000000000000000009\n",
            "version: 1\ntopic_id: 00000000000000000000000000000009\nmetadata_offset: x\n",
            "garbage",
            "",
        ] {
            std::fs::write(replica.join(MARK_FILE), damaged).expect("write");
            let e = read(&replica).expect_err(damaged);
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{damaged}: {e}");
        }
    }
}
