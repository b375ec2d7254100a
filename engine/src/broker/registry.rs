//! The topic registry: which topics exist, with their partition counts and config overrides,
//! persisted as `<data>/meta/topics.json`. Shard 0 owns it; every shard holds a read-only copy
//! of the [`TopicTable`].
//!
//! Durability: the file is written to `topics.json.tmp`, fsynced, renamed over
//! `topics.json`, and the directory fsynced, so a crash leaves the old or the new table.
//!
//! Deleting a topic survives a crash at any point without resurrecting it or leaking its data
//! into a later topic of the same name:
//! 1. the topic moves from `topics` to `deleting` and the registry is persisted (from here on
//!    it is gone: never served again, its name free once step 3 finished);
//! 2. its partitions are closed on their shards;
//! 3. each `<topic>-<p>` directory is renamed to `<topic>-<p>.<nanos>.deleted` (the directory
//!    fsynced), then removed recursively;
//! 4. the topic leaves `deleting` and the registry is persisted again.
//!
//! At start-up ([`Registry::load`]), pending `deleting` entries are finished (steps 3-4) and any
//! `*.deleted` directory left by a crash in step 3 is removed, before any shard opens a
//! partition. Creating a topic also clears stray `<topic>-<p>` directories before registering
//! it, so a new topic always starts empty.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Directory under the data dir holding broker metadata.
pub const META_DIR: &str = "meta";
/// The registry file in [`META_DIR`].
pub const REGISTRY_FILE: &str = "topics.json";
/// Suffix of a partition directory being deleted.
pub const DELETED_SUFFIX: &str = ".deleted";
/// Longest topic name (Kafka's limit).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Most partitions per topic.
pub const PARTITIONS_MAX: i32 = 10_000;
/// Format version of the registry file.
const REGISTRY_VERSION: u32 = 1;

/// One topic as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// Number of partitions.
    pub partitions: i32,
    /// Replicas per partition (1 on a single node).
    pub replication_factor: i16,
    /// Config overrides, canonical text by key.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
    /// In a cluster, the topic's id in the controller's image (`None` on a single node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<crate::cluster::metadata::TopicId>,
}

/// Every topic by name. Plain data (`Clone + Send`): what shard 0 sends to the others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicTable {
    /// The topics.
    pub topics: BTreeMap<String, TopicMeta>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RegistryFile {
    version: u32,
    topics: BTreeMap<String, TopicMeta>,
    /// Topics being deleted: name → partition count.
    #[serde(default)]
    deleting: BTreeMap<String, i32>,
}

/// The persisted registry (shard 0's copy).
#[derive(Debug, Clone)]
pub struct Registry {
    data_dir: PathBuf,
    /// The topics.
    pub table: TopicTable,
    /// Topics whose deletion is under way: name → partition count.
    pub deleting: BTreeMap<String, i32>,
}

/// `<data>/<topic>-<partition>`.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// Checks a topic name: 1..=249 bytes of `[A-Za-z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!(
            "topic name is {} bytes, more than {TOPIC_NAME_BYTES_MAX}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("topic name '{name}' is not allowed"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name contains '{}': only ASCII letters, digits, '.', '_' and '-' are allowed",
            c.escape_default()
        ));
    }
    Ok(())
}

impl Registry {
    /// Loads `<data>/meta/topics.json` (an empty registry if absent), finishes interrupted
    /// deletions and removes `*.deleted` leftovers. Blocking file IO: call before the shards
    /// start.
    pub fn load(data_dir: &Path) -> io::Result<Registry> {
        let meta = data_dir.join(META_DIR);
        std::fs::create_dir_all(&meta)?;
        let path = meta.join(REGISTRY_FILE);
        let mut registry = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: RegistryFile = serde_json::from_slice(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                })?;
                if file.version != REGISTRY_VERSION {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: registry version {} (this build reads {REGISTRY_VERSION})",
                            path.display(),
                            file.version
                        ),
                    ));
                }
                Registry {
                    data_dir: data_dir.to_path_buf(),
                    table: TopicTable {
                        topics: file.topics,
                    },
                    deleting: file.deleting,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Registry {
                data_dir: data_dir.to_path_buf(),
                table: TopicTable::default(),
                deleting: BTreeMap::new(),
            },
            Err(e) => return Err(e),
        };
        for (name, meta) in &registry.table.topics {
            if validate_topic_name(name).is_err()
                || !(1..=PARTITIONS_MAX).contains(&meta.partitions)
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: topic '{name}' with {} partitions is invalid",
                        path.display(),
                        meta.partitions
                    ),
                ));
            }
        }
        if !registry.deleting.is_empty() {
            for (name, &partitions) in &registry.deleting {
                remove_partition_dirs(data_dir, name, partitions)?;
            }
            registry.deleting.clear();
            registry.persist_blocking()?;
        }
        sweep_deleted(data_dir)?;
        Ok(registry)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The bytes [`Registry::persist_blocking`] writes.
    pub fn encode(&self) -> Vec<u8> {
        let file = RegistryFile {
            version: REGISTRY_VERSION,
            topics: self.table.topics.clone(),
            deleting: self.deleting.clone(),
        };
        // Serialising maps of strings and integers cannot fail.
        serde_json::to_vec_pretty(&file).unwrap_or_default()
    }

    /// Writes the registry durably (tmp file, fsync, rename, fsync dir). Blocking.
    pub fn persist_blocking(&self) -> io::Result<()> {
        write_durably(&self.data_dir, &self.encode())
    }
}

/// Writes registry bytes durably under `<data>/meta/`. Blocking.
pub fn write_durably(data_dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let meta = data_dir.join(META_DIR);
    let tmp = meta.join(format!("{REGISTRY_FILE}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, meta.join(REGISTRY_FILE))?;
    std::fs::File::open(&meta)?.sync_all()
}

/// Removes the directories of `topic`'s partitions `0..partitions` crash-safely: each is first
/// renamed to a `.deleted` name (directory fsynced), then removed. Blocking.
pub fn remove_partition_dirs(data_dir: &Path, topic: &str, partitions: i32) -> io::Result<()> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut doomed = Vec::new();
    for p in 0..partitions.max(0) {
        let dir = partition_dir(data_dir, topic, p);
        if dir.exists() {
            let target = data_dir.join(format!("{topic}-{p}.{nanos}{DELETED_SUFFIX}"));
            std::fs::rename(&dir, &target)?;
            doomed.push(target);
        }
    }
    if doomed.is_empty() {
        return Ok(());
    }
    std::fs::File::open(data_dir)?.sync_all()?;
    for dir in doomed {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::File::open(data_dir)?.sync_all()
}

/// Removes one partition directory `dir` (under `data_dir`) crash-safely, as
/// [`remove_partition_dirs`] does. Blocking.
pub fn remove_partition_dir(data_dir: &Path, dir: &Path) -> io::Result<()> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = dir
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no directory name"))?;
    let target = data_dir.join(format!(
        "{}.{nanos}{DELETED_SUFFIX}",
        name.to_string_lossy()
    ));
    std::fs::rename(dir, &target)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    std::fs::remove_dir_all(&target)?;
    std::fs::File::open(data_dir)?.sync_all()
}

/// Removes every `*.deleted` directory under `data_dir`. Blocking.
pub fn sweep_deleted(data_dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type()?.is_dir() && name.to_string_lossy().ends_with(DELETED_SUFFIX) {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name(".").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name("é").is_err());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }

    #[test]
    fn interrupted_deletion_is_finished_at_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut registry = Registry::load(dir.path()).expect("load");
        registry.table.topics.insert(
            "keep".into(),
            TopicMeta {
                partitions: 1,
                replication_factor: 1,
                configs: BTreeMap::new(),
                id: None,
            },
        );
        registry.deleting.insert("gone".into(), 2);
        registry.persist_blocking().expect("persist");
        std::fs::create_dir_all(partition_dir(dir.path(), "gone", 0)).expect("mkdir");
        std::fs::create_dir_all(partition_dir(dir.path(), "keep", 0)).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("gone-1.5.deleted/x")).expect("mkdir");
        let again = Registry::load(dir.path()).expect("reload");
        assert!(again.deleting.is_empty());
        assert!(again.table.topics.contains_key("keep"));
        assert!(!partition_dir(dir.path(), "gone", 0).exists());
        assert!(!dir.path().join("gone-1.5.deleted").exists());
        assert!(partition_dir(dir.path(), "keep", 0).exists());
        let third = Registry::load(dir.path()).expect("reload");
        assert!(third.deleting.is_empty());
    }
}
