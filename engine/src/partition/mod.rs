//! One partition on the shard that owns it: its [`PartitionLog`] behind a shard-local
//! reader/writer lock, the notifications tailing readers and durable-acks producers wait on,
//! group commit for `flush=always`, and its counters.
//!
//! Lives on its owner shard only (`!Send`). Invariants:
//! - appends, syncs, retention, compaction and reconfiguration hold the write lock, reads the
//!   read lock (glommio's `RwLock` queues fairly, so neither starves the other and no read sees
//!   a half-applied append);
//! - every operation that mutates the log runs in its own detached task, so a caller that gives
//!   up (a dropped request future, a timeout) never cancels a log operation half-way;
//! - the offsets mirrored in `Cell`s (`log_start`, `log_end`, `durable`) are updated under the
//!   write lock right after each mutation, then [`Partition::appended`] / the durable notifier
//!   fire, so a waiter that re-checks a mirror after a notification never misses data;
//! - after a storage failure (write, sync) the partition refuses appends with the failure
//!   message until it is reopened (the log itself refuses them too).

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use glommio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::log::{
    CompactionOutcome, DmaStorage, FlushPolicy, LogConfig, LogError, LogRead, PartitionLog,
    RetentionOutcome,
};
use crate::shard::sync::Notify;

/// Why a partition operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// The partition was closed (topic deleted, shard stopping).
    #[error("partition {0} is closed")]
    Closed(String),
    /// An earlier storage failure took the partition offline.
    #[error("partition {name} is offline after a storage failure: {reason}")]
    Failed {
        /// `topic-partition`.
        name: String,
        /// The first failure.
        reason: String,
        /// Whether it was the device running out of space.
        full: bool,
    },
    /// The log refused the operation. For a produce this includes the idempotent producer's
    /// refusals, which leave the log unchanged: [`LogError::OutOfOrderSequence`],
    /// [`LogError::InvalidProducerEpoch`] and [`LogError::DuplicateSequence`].
    #[error(transparent)]
    Log(#[from] LogError),
    /// The task running the operation was cancelled (the executor is stopping).
    #[error("partition operation cancelled")]
    Cancelled,
}

/// Where a produce landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Offset of the first record of the first batch (where it was appended the first time
    /// if it is a `duplicate`).
    pub base_offset: i64,
    /// The offset after the last record appended or found duplicate (what must be durable for
    /// acks=all).
    pub next_offset: i64,
    /// The log start offset after the append.
    pub log_start_offset: i64,
    /// The first batch was an idempotent producer's retry of a batch appended earlier: it was
    /// not appended again and `base_offset` is the earlier append's (answer with success).
    pub duplicate: bool,
}

/// A read and the offsets it was taken at.
#[derive(Debug, Clone, Default)]
pub struct ReadOutcome {
    /// Whole batches as stored.
    pub batches: Vec<Bytes>,
    /// The log end offset (the high watermark on a single node).
    pub high_watermark: i64,
    /// The log start offset.
    pub log_start_offset: i64,
}

/// Counters and offsets of one partition (plain data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionStats {
    /// Records appended since open.
    pub records_in: u64,
    /// Bytes appended since open.
    pub bytes_in: u64,
    /// First offset kept.
    pub log_start_offset: i64,
    /// Next offset to be written.
    pub log_end_offset: i64,
    /// Every offset below this is durable.
    pub durable_offset: i64,
    /// Bytes over all segments.
    pub size_bytes: u64,
}

/// One open partition. See the module doc.
pub struct Partition {
    topic: String,
    index: i32,
    dir: PathBuf,
    log: RwLock<Option<PartitionLog<DmaStorage>>>,
    flush: Cell<FlushPolicy>,
    log_start: Cell<i64>,
    log_end: Cell<i64>,
    durable: Cell<i64>,
    size_bytes: Cell<u64>,
    /// When the flusher should next call `flush_if_due` (ms since the epoch), if anything waits.
    flush_deadline_ms: Cell<Option<i64>>,
    syncing: Cell<bool>,
    closed: Cell<bool>,
    failure: RefCell<Option<(String, bool)>>,
    appended: Notify,
    durable_changed: Notify,
    records_in: Cell<u64>,
    bytes_in: Cell<u64>,
    /// The high watermark a replicated partition's consumers read up to; `None` on a single
    /// broker, where it is the log end.
    high_watermark: Cell<Option<i64>>,
}

/// Exclusive access to an open partition's log (from [`Partition::write_log`]).
struct OpenLogWrite<'a>(RwLockWriteGuard<'a, Option<PartitionLog<DmaStorage>>>);

impl std::ops::Deref for OpenLogWrite<'_> {
    type Target = PartitionLog<DmaStorage>;
    fn deref(&self) -> &Self::Target {
        self.0
            .as_ref()
            .expect("checked open when the guard was taken")
    }
}

impl std::ops::DerefMut for OpenLogWrite<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0
            .as_mut()
            .expect("checked open when the guard was taken")
    }
}

/// Shared access to an open partition's log (from [`Partition::read_log`]).
struct OpenLogRead<'a>(RwLockReadGuard<'a, Option<PartitionLog<DmaStorage>>>);

impl std::ops::Deref for OpenLogRead<'_> {
    type Target = PartitionLog<DmaStorage>;
    fn deref(&self) -> &Self::Target {
        self.0
            .as_ref()
            .expect("checked open when the guard was taken")
    }
}

impl Partition {
    /// Waits for exclusive access to the log; `Closed` once the partition was closed.
    async fn write_log(&self) -> Result<OpenLogWrite<'_>, PartitionError> {
        let guard = self
            .log
            .write()
            .await
            .map_err(|_| PartitionError::Closed(self.name()))?;
        if guard.is_none() {
            return Err(PartitionError::Closed(self.name()));
        }
        Ok(OpenLogWrite(guard))
    }

    /// Waits for shared access to the log; `Closed` once the partition was closed.
    async fn read_log(&self) -> Result<OpenLogRead<'_>, PartitionError> {
        let guard = self
            .log
            .read()
            .await
            .map_err(|_| PartitionError::Closed(self.name()))?;
        if guard.is_none() {
            return Err(PartitionError::Closed(self.name()));
        }
        Ok(OpenLogRead(guard))
    }
}

impl Partition {
    /// Opens (recovering if needed) the partition's log in `dir`, with leader epoch 0.
    pub async fn open(
        dir: &Path,
        topic: &str,
        index: i32,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<Rc<Self>, LogError> {
        let storage = DmaStorage::open(dir)?;
        let flush = config.flush;
        let mut log = PartitionLog::open(storage, config, now_ms).await?;
        log.set_leader_epoch(0);
        let partition = Partition {
            topic: topic.to_string(),
            index,
            dir: dir.to_path_buf(),
            flush: Cell::new(flush),
            log_start: Cell::new(log.log_start_offset()),
            log_end: Cell::new(log.next_offset()),
            durable: Cell::new(log.durable_offset()),
            size_bytes: Cell::new(log.size_bytes()),
            flush_deadline_ms: Cell::new(None),
            syncing: Cell::new(false),
            closed: Cell::new(false),
            failure: RefCell::new(None),
            appended: Notify::new(),
            durable_changed: Notify::new(),
            records_in: Cell::new(0),
            bytes_in: Cell::new(0),
            high_watermark: Cell::new(None),
            log: RwLock::new(Some(log)),
        };
        Ok(Rc::new(partition))
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition number.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `topic-partition`, for messages.
    pub fn name(&self) -> String {
        format!("{}-{}", self.topic, self.index)
    }

    /// The flush policy in force.
    pub fn flush_policy(&self) -> FlushPolicy {
        self.flush.get()
    }

    /// First offset kept.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start.get()
    }

    /// Next offset to be written (the high watermark on a single node).
    pub fn log_end_offset(&self) -> i64 {
        self.log_end.get()
    }

    /// What consumers may read up to: the high watermark of a replicated partition, the log
    /// end otherwise.
    pub fn high_watermark(&self) -> i64 {
        let end = self.log_end.get();
        self.high_watermark.get().map_or(end, |hw| hw.min(end))
    }

    /// Sets the high watermark (replication); `None` makes it follow the log end again.
    /// Wakes fetches waiting for data when it moves.
    pub fn set_high_watermark(&self, hw: Option<i64>) {
        if self.high_watermark.replace(hw) != hw {
            self.appended.notify_all();
        }
    }

    /// The replication high watermark, if one was set.
    pub fn replicated_high_watermark(&self) -> Option<i64> {
        self.high_watermark.get()
    }

    /// Raises the high watermark to `hw` (a follower taking its leader's); it never goes back.
    pub fn raise_high_watermark(&self, hw: i64) {
        let current = self.high_watermark.get().unwrap_or(0);
        self.set_high_watermark(Some(current.max(hw)));
    }

    /// Where this log must be cut so it agrees with the leader's, given the leader's answer
    /// to OffsetForLeaderEpoch for `requested` (see
    /// [`crate::cluster::replication::truncation_offset`]).
    pub async fn truncation_point(
        &self,
        requested: i32,
        answer: (i32, i64),
    ) -> Result<i64, PartitionError> {
        let guard = self.read_log().await?;
        Ok(crate::cluster::replication::truncation_offset(
            guard.epochs(),
            guard.next_offset(),
            self.high_watermark(),
            requested,
            answer,
        ))
    }

    /// Every offset below this survives a crash.
    pub fn durable_offset(&self) -> i64 {
        self.durable.get()
    }

    /// Whether the partition was closed.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// When the flusher should next look at this partition, if anything awaits a sync.
    pub fn flush_deadline_ms(&self) -> Option<i64> {
        self.flush_deadline_ms.get()
    }

    /// Counters and offsets.
    pub fn stats(&self) -> PartitionStats {
        PartitionStats {
            records_in: self.records_in.get(),
            bytes_in: self.bytes_in.get(),
            log_start_offset: self.log_start.get(),
            log_end_offset: self.log_end.get(),
            durable_offset: self.durable.get(),
            size_bytes: self.size_bytes.get(),
        }
    }

    /// Notified after every append (and at close).
    pub fn appended(&self) -> &Notify {
        &self.appended
    }

    fn check_failed(&self) -> Result<(), PartitionError> {
        match &*self.failure.borrow() {
            Some((reason, full)) => Err(PartitionError::Failed {
                name: self.name(),
                reason: reason.clone(),
                full: *full,
            }),
            None => Ok(()),
        }
    }

    fn record_failure(&self, error: &LogError) {
        if let LogError::Io(e) = error {
            let full = is_storage_full(e);
            self.failure
                .borrow_mut()
                .get_or_insert_with(|| (e.to_string(), full));
        }
    }

    fn refresh(&self, log: &PartitionLog<DmaStorage>) {
        let durable_before = self.durable.get();
        self.log_start.set(log.log_start_offset());
        self.log_end.set(log.next_offset());
        self.durable.set(log.durable_offset());
        self.size_bytes.set(log.size_bytes());
        let deadline = match log.config().flush {
            // Enough bytes waiting: due now, whatever the time says.
            FlushPolicy::Interval { bytes, .. } if log.unsynced_bytes() >= bytes => {
                log.next_flush_deadline_ms().map(|_| i64::MIN)
            }
            _ => log.next_flush_deadline_ms(),
        };
        self.flush_deadline_ms.set(deadline);
        if self.durable.get() != durable_before {
            self.durable_changed.notify_all();
        }
    }

    /// Appends already-validated batches (one produce to this partition) in order, in a task
    /// of its own. Returns where they landed. The caller wakes the flusher if
    /// [`Partition::flush_deadline_ms`] became due.
    ///
    /// Idempotent producers' batches are checked by the log: a retry of a recent batch is not
    /// appended again (`duplicate`, with the original offset); a batch out of sequence or from
    /// a fenced epoch fails with [`PartitionError::Log`] and leaves the log as the batches
    /// before it left it.
    pub async fn append(
        self: &Rc<Self>,
        batches: Vec<Bytes>,
        now_ms: i64,
    ) -> Result<AppendOutcome, PartitionError> {
        let this = Rc::clone(self);
        glommio::spawn_local(async move { this.append_now(batches, now_ms).await })
            .detach()
            .await
            .unwrap_or(Err(PartitionError::Cancelled))
    }

    async fn append_now(
        &self,
        batches: Vec<Bytes>,
        now_ms: i64,
    ) -> Result<AppendOutcome, PartitionError> {
        let mut guard = self.write_log().await?;
        let log = &mut *guard;
        self.check_failed()?;
        let mut first: Option<(i64, bool)> = None;
        let mut appended = false;
        let mut duplicate_end = i64::MIN;
        let mut result = Ok(());
        for batch in batches {
            let len = batch.len() as u64;
            let records = records_count(&batch);
            // The log stamps the base offset in place: one copy out of the request frame.
            match log.append(BytesMut::from(&batch[..]), now_ms).await {
                Ok(info) => {
                    first.get_or_insert((info.base_offset, info.duplicate));
                    if info.duplicate {
                        duplicate_end = duplicate_end.max(info.last_offset + 1);
                    } else {
                        appended = true;
                        self.records_in.set(self.records_in.get() + records);
                        self.bytes_in.set(self.bytes_in.get() + len);
                    }
                }
                Err(e) => {
                    self.record_failure(&e);
                    result = Err(e);
                    break;
                }
            }
        }
        self.refresh(log);
        let outcome = AppendOutcome {
            base_offset: first.map_or(-1, |f| f.0),
            // Only duplicates: what their first appends need, not the log end.
            next_offset: if appended || duplicate_end == i64::MIN {
                log.next_offset()
            } else {
                duplicate_end
            },
            log_start_offset: log.log_start_offset(),
            duplicate: first.is_some_and(|f| f.1),
        };
        drop(guard);
        if appended {
            self.appended.notify_all();
        }
        result?;
        Ok(outcome)
    }

    /// Reads whole batches from `offset`, up to about `max_bytes` (at least one batch if any).
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadOutcome, PartitionError> {
        let guard = self.read_log().await?;
        let log = &*guard;
        let LogRead { batches, .. } = log.read(offset, max_bytes).await?;
        Ok(ReadOutcome {
            batches,
            high_watermark: log.next_offset(),
            log_start_offset: log.log_start_offset(),
        })
    }

    /// Resolves once the high watermark (`replica`: the log end) is past `offset`, or the
    /// partition closed.
    pub async fn wait_for_data(&self, offset: i64, replica: bool) {
        loop {
            let since = self.appended.generation();
            let end = if replica {
                self.log_end.get()
            } else {
                self.high_watermark()
            };
            if self.closed.get() || end > offset {
                return;
            }
            self.appended.changed(since).await;
        }
    }

    /// Stamps later appends with leader epoch `epoch` (this replica now leads in it).
    pub async fn set_leader_epoch(&self, epoch: i32) -> Result<(), PartitionError> {
        let mut guard = self.write_log().await?;
        guard.set_leader_epoch(epoch);
        Ok(())
    }

    /// The latest leader epoch in this log's history, if any.
    pub async fn latest_epoch(&self) -> Result<Option<i32>, PartitionError> {
        let guard = self.read_log().await?;
        Ok(guard.epochs().latest().map(|e| e.epoch))
    }

    /// Appends batches fetched from the leader as they are (offsets and epochs kept; see
    /// [`PartitionLog::append_replicated`]), in a task of its own. Returns the new log end.
    pub async fn append_replicated(
        self: &Rc<Self>,
        batches: Vec<Bytes>,
        now_ms: i64,
    ) -> Result<i64, PartitionError> {
        let this = Rc::clone(self);
        glommio::spawn_local(async move {
            let mut guard = this.write_log().await?;
            let log = &mut *guard;
            this.check_failed()?;
            let mut result = Ok(());
            let mut appended = false;
            for batch in batches {
                let len = batch.len() as u64;
                let records = records_count(&batch);
                match log
                    .append_replicated(BytesMut::from(&batch[..]), now_ms)
                    .await
                {
                    Ok(_) => {
                        appended = true;
                        this.records_in.set(this.records_in.get() + records);
                        this.bytes_in.set(this.bytes_in.get() + len);
                    }
                    Err(e) => {
                        this.record_failure(&e);
                        result = Err(e);
                        break;
                    }
                }
            }
            this.refresh(log);
            let end = log.next_offset();
            drop(guard);
            if appended {
                this.appended.notify_all();
            }
            result?;
            Ok(end)
        })
        .detach()
        .await
        .unwrap_or(Err(PartitionError::Cancelled))
    }

    /// Cuts the log so it ends at `offset` (a follower dropping what diverged from its new
    /// leader; see [`PartitionLog::truncate_to`]). Durable on return.
    pub async fn truncate_to(
        self: &Rc<Self>,
        offset: i64,
        now_ms: i64,
    ) -> Result<(), PartitionError> {
        let this = Rc::clone(self);
        glommio::spawn_local(async move {
            let mut guard = this.write_log().await?;
            let log = &mut *guard;
            let offset = offset.max(log.log_start_offset());
            let result = log.truncate_to(offset, now_ms).await;
            if let Err(e) = &result {
                this.record_failure(e);
            }
            this.refresh(log);
            result.map_err(PartitionError::from)
        })
        .detach()
        .await
        .unwrap_or(Err(PartitionError::Cancelled))
    }

    /// Empties the log and starts it again at `offset` (a follower whose log ends before its
    /// leader's log start; see [`PartitionLog::reset_to`]). Durable on return.
    pub async fn reset_to(self: &Rc<Self>, offset: i64, now_ms: i64) -> Result<(), PartitionError> {
        let this = Rc::clone(self);
        glommio::spawn_local(async move {
            let mut guard = this.write_log().await?;
            let log = &mut *guard;
            let result = log.reset_to(offset, now_ms).await;
            if let Err(e) = &result {
                this.record_failure(e);
            }
            this.refresh(log);
            result.map_err(PartitionError::from)
        })
        .detach()
        .await
        .unwrap_or(Err(PartitionError::Cancelled))
    }

    /// Resolves once every offset below `next_offset` is durable (the flusher or a group
    /// commit made it so), or fails if the partition closed or failed first.
    pub async fn wait_durable(&self, next_offset: i64) -> Result<(), PartitionError> {
        loop {
            let since = self.durable_changed.generation();
            if self.durable.get() >= next_offset {
                return Ok(());
            }
            self.check_failed()?;
            if self.closed.get() {
                return Err(PartitionError::Closed(self.name()));
            }
            self.durable_changed.changed(since).await;
        }
    }

    /// Group commit (`flush=always`): makes every offset below `next_offset` durable. If a sync
    /// is already running, waits for it and then, if still needed, one waiter starts the next
    /// one, covering every append made meanwhile: concurrent producers share one `fdatasync`.
    pub async fn sync_through(self: &Rc<Self>, next_offset: i64) -> Result<(), PartitionError> {
        loop {
            let since = self.durable_changed.generation();
            if self.durable.get() >= next_offset {
                return Ok(());
            }
            self.check_failed()?;
            if self.closed.get() {
                return Err(PartitionError::Closed(self.name()));
            }
            if self.syncing.get() {
                self.durable_changed.changed(since).await;
                continue;
            }
            self.syncing.set(true);
            let this = Rc::clone(self);
            let synced = glommio::spawn_local(async move {
                let result = this.sync_now().await;
                this.syncing.set(false);
                // Wake the other waiters even if nothing changed (e.g. on failure).
                this.durable_changed.notify_all();
                result
            })
            .detach()
            .await
            .unwrap_or(Err(PartitionError::Cancelled));
            synced?;
        }
    }

    async fn sync_now(&self) -> Result<(), PartitionError> {
        let mut guard = self.write_log().await?;
        let log = &mut *guard;
        if log.durable_offset() == log.next_offset() {
            return Ok(());
        }
        let result = log.sync(crate::rt::now_ms()).await;
        if let Err(e) = &result {
            self.record_failure(e);
        }
        self.refresh(log);
        result.map_err(PartitionError::from)
    }

    /// Applies the flush policy now (the shard's flusher calls this when
    /// [`Partition::flush_deadline_ms`] is due). Returns whether it synced.
    pub async fn flush_if_due(self: &Rc<Self>, now_ms: i64) -> Result<bool, PartitionError> {
        let this = Rc::clone(self);
        glommio::spawn_local(async move {
            let mut guard = this.write_log().await?;
            let log = &mut *guard;
            // The log applies both limits of `interval` (time and unsynced bytes) itself.
            let result = log.flush_if_due(now_ms).await;
            if let Err(e) = &result {
                this.record_failure(e);
                // Nothing will make it durable now: stop asking.
                this.flush_deadline_ms.set(None);
                this.durable_changed.notify_all();
                return result.map_err(PartitionError::from);
            }
            this.refresh(log);
            result.map_err(PartitionError::from)
        })
        .detach()
        .await
        .unwrap_or(Err(PartitionError::Cancelled))
    }

    /// Where leader epoch `epoch` ends in this partition's log (OffsetForLeaderEpoch; see
    /// [`PartitionLog::end_offset_for_epoch`]).
    pub async fn end_offset_for_epoch(&self, epoch: i32) -> Result<(i32, i64), PartitionError> {
        let guard = self.read_log().await?;
        Ok(guard.end_offset_for_epoch(epoch))
    }

    /// The first offset whose record timestamp is at or after `timestamp_ms`, with that
    /// timestamp; `None` if every record is older.
    pub async fn offset_for_timestamp(
        self: &Rc<Self>,
        timestamp_ms: i64,
    ) -> Result<Option<(i64, i64)>, PartitionError> {
        let this = Rc::clone(self);
        glommio::spawn_local(async move {
            let mut guard = this.write_log().await?;
            let log = &mut *guard;
            Ok(log.offset_for_timestamp(timestamp_ms).await?)
        })
        .detach()
        .await
        .unwrap_or(Err(PartitionError::Cancelled))
    }

    /// Replaces the log configuration (a topic config was altered).
    pub async fn set_config(self: &Rc<Self>, config: LogConfig) -> Result<(), PartitionError> {
        let this = Rc::clone(self);
        glommio::spawn_local(async move {
            let mut guard = this.write_log().await?;
            let log = &mut *guard;
            let flush = config.flush;
            log.set_config(config)?;
            this.flush.set(flush);
            this.refresh(log);
            Ok(())
        })
        .detach()
        .await
        .unwrap_or(Err(PartitionError::Cancelled))
    }

    /// One background maintenance pass: retention, then compaction (each a no-op unless the
    /// cleanup policy asks for it).
    pub async fn maintain(
        self: &Rc<Self>,
        now_ms: i64,
    ) -> Result<(RetentionOutcome, CompactionOutcome), PartitionError> {
        let this = Rc::clone(self);
        glommio::spawn_local(async move {
            let mut guard = this.write_log().await?;
            let log = &mut *guard;
            let retention = log.enforce_retention(now_ms).await;
            let compaction = match retention {
                Ok(_) => log.compact(now_ms).await,
                Err(_) => Ok(CompactionOutcome::default()),
            };
            this.refresh(log);
            Ok((retention?, compaction?))
        })
        .detach()
        .await
        .unwrap_or(Err(PartitionError::Cancelled))
    }

    /// Closes the log cleanly (synced, clean-shutdown marker written) once the operations in
    /// flight finish; later operations fail with [`PartitionError::Closed`] and waiters wake.
    pub async fn close(self: &Rc<Self>) -> Result<(), PartitionError> {
        let this = Rc::clone(self);
        glommio::spawn_local(async move {
            let log = {
                let mut guard = this
                    .log
                    .write()
                    .await
                    .map_err(|_| PartitionError::Closed(this.name()))?;
                this.closed.set(true);
                guard.take()
            };
            this.appended.notify_all();
            this.durable_changed.notify_all();
            match log {
                Some(log) => Ok(log.close().await?),
                None => Ok(()),
            }
        })
        .detach()
        .await
        .unwrap_or(Err(PartitionError::Cancelled))
    }
}

/// `recordsCount` from a batch header (bytes 57..61), without decoding records; 0 if short.
pub fn records_count(batch: &[u8]) -> u64 {
    batch
        .get(57..61)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, |b| u64::try_from(i32::from_be_bytes(b)).unwrap_or(0))
}

/// Whether an IO error means the device (or quota) is full.
pub fn is_storage_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}
