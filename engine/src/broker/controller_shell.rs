//! The controller quorum member's IO shell, on shard 0 of a controller broker: one task owns the
//! [`QuorumNode`] and its [`MetadataLog`], and everything else talks to it through a queue.
//!
//! The task ticks Raft every [`RAFT_TICK`] (elections after 10 ticks without a leader's word,
//! leader heartbeats every 2), steps messages from peers, runs decisions of the active
//! controller (registration, heartbeats, ISR changes, topic changes: each a closure over the
//! [`Controller`] that returns the records to propose), persists and applies through
//! [`QuorumNode::advance`], sends Raft messages to peers as RaftMessage requests (fire and
//! forget: Raft resends what is lost), and publishes a [`ClusterSnapshot`] after every applied
//! entry or leader change. A decision's caller waits until its entry is applied (then the
//! image shows its effect) or learns that this member is not, or stopped being, the leader.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use protobuf::Message as _;
use quiver_transport::protocol::{RaftMessageRequest, Request};
use raft::eraftpb::Message;

use super::replica::ClusterSnapshot;
use super::Peers;
use crate::cluster::controller::{Controller, ControllerConfig, ControllerError};
use crate::cluster::metadata::MetadataRecord;
use crate::cluster::metadata_log::MetadataLog;
use crate::cluster::quorum::QuorumNode;
use crate::log::DmaStorage;
use crate::shard::sync::{oneshot, Latch, Notify, OneshotSender};

/// One Raft tick.
pub const RAFT_TICK: Duration = Duration::from_millis(100);
/// Bound on sending one Raft message.
const RAFT_SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// Directory of the metadata log under `<data-dir>/meta/`.
pub const METADATA_LOG_DIR: &str = "cluster-metadata";

/// Raft ids start at 1 (0 means "none" to raft-rs): broker `id` is Raft node `id + 1`.
pub fn raft_id(broker: i32) -> u64 {
    u64::try_from(broker).unwrap_or(0) + 1
}

fn broker_of(raft: u64) -> i32 {
    i32::try_from(raft.saturating_sub(1)).unwrap_or(-1)
}

/// Why a decision was not carried out.
#[derive(Debug, Clone)]
pub enum DecideError {
    /// This member is not (or stopped being) the active controller.
    NotController,
    /// The controller refused it.
    Refused(ControllerError),
}

type Decision =
    Box<dyn FnOnce(&mut Controller, i64) -> Result<Vec<MetadataRecord>, ControllerError>>;

type Reply = OneshotSender<Result<(), DecideError>>;

enum Input {
    Step(Message),
    Decide(Decision, Reply),
}

/// A controller quorum member. See the module doc.
pub struct ControllerShell {
    inputs: RefCell<VecDeque<Input>>,
    wake: Notify,
    snapshot: RefCell<Arc<ClusterSnapshot>>,
    /// Notified when `snapshot` changes.
    pub changed: Notify,
    is_leader: Cell<bool>,
}

impl ControllerShell {
    /// Opens member `node_id` of the quorum `voters` (broker id, `host:port`) from the
    /// metadata log in `dir`, and starts its task. Stops when `stopping` is set.
    pub async fn start(
        node_id: i32,
        voters: &[(i32, String)],
        dir: &std::path::Path,
        config: ControllerConfig,
        peers: Rc<dyn Peers>,
        stopping: Rc<Latch>,
    ) -> Result<Rc<ControllerShell>, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let storage = DmaStorage::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let log = MetadataLog::open(storage, crate::rt::now_ms())
            .await
            .map_err(|e| format!("opening the metadata log in {}: {e}", dir.display()))?;
        let ids: Vec<u64> = voters.iter().map(|(id, _)| raft_id(*id)).collect();
        let quorum = QuorumNode::open(raft_id(node_id), &ids, &log, config)
            .await
            .map_err(|e| format!("starting the controller quorum member: {e}"))?;
        let addrs: BTreeMap<u64, String> = voters
            .iter()
            .map(|(id, addr)| (raft_id(*id), addr.clone()))
            .collect();
        let shell = Rc::new(ControllerShell {
            inputs: RefCell::new(VecDeque::new()),
            wake: Notify::new(),
            // The image the metadata log's snapshot holds, as of that snapshot's index.
            snapshot: RefCell::new(Arc::new(ClusterSnapshot {
                image: quorum.metadata().clone(),
                controller_id: -1,
                metadata_offset: i64::try_from(quorum.applied_index()).unwrap_or(-1),
            })),
            changed: Notify::new(),
            is_leader: Cell::new(false),
        });
        let driver = shell.clone();
        glommio::spawn_local(async move {
            if let Err(e) = driver.run(quorum, log, addrs, peers, stopping).await {
                eprintln!("quiver: controller stopped: {e}");
            }
        })
        .detach();
        Ok(shell)
    }

    /// The latest published snapshot.
    pub fn snapshot(&self) -> Arc<ClusterSnapshot> {
        self.snapshot.borrow().clone()
    }

    /// Whether this member is the active controller.
    pub fn is_leader(&self) -> bool {
        self.is_leader.get()
    }

    /// A Raft message from a peer (bytes of an `eraftpb::Message`).
    pub fn receive(&self, bytes: &[u8]) -> Result<(), String> {
        let message = Message::parse_from_bytes(bytes).map_err(|e| e.to_string())?;
        self.inputs.borrow_mut().push_back(Input::Step(message));
        self.wake.notify_all();
        Ok(())
    }

    /// Runs `decide` on the active controller and waits until the records it returns are
    /// committed and applied (at once if it returns none).
    pub async fn decide(
        &self,
        decide: impl FnOnce(&mut Controller, i64) -> Result<Vec<MetadataRecord>, ControllerError>
            + 'static,
    ) -> Result<(), DecideError> {
        let (tx, rx) = oneshot();
        self.inputs
            .borrow_mut()
            .push_back(Input::Decide(Box::new(decide), tx));
        self.wake.notify_all();
        rx.await.unwrap_or(Err(DecideError::NotController))
    }

    async fn run(
        self: Rc<Self>,
        mut quorum: QuorumNode,
        mut log: MetadataLog<DmaStorage>,
        addrs: BTreeMap<u64, String>,
        peers: Rc<dyn Peers>,
        stopping: Rc<Latch>,
    ) -> Result<(), String> {
        let mut next_tick = Instant::now() + RAFT_TICK;
        // Proposed decisions waiting for their entry: (index, term, reply).
        let mut waiting: Vec<(u64, u64, Reply)> = Vec::new();
        let mut published_leader = None;
        let mut published_applied = u64::MAX;
        loop {
            let since = self.wake.generation();
            if stopping.is_set() {
                break;
            }
            let now_ms = crate::rt::now_ms();
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + RAFT_TICK;
                quorum.tick();
                if quorum.is_leader() {
                    if let Ok(records) = quorum.controller_mut().tick(now_ms) {
                        if !records.is_empty() {
                            let _ = quorum.propose(&records);
                        }
                    }
                }
            }
            let inputs: Vec<Input> = self.inputs.borrow_mut().drain(..).collect();
            for input in inputs {
                match input {
                    // A malformed or misdirected message is dropped, as a lost one would be.
                    Input::Step(message) => drop(quorum.step(message)),
                    Input::Decide(decide, reply) => {
                        if !quorum.is_leader() {
                            reply.send(Err(DecideError::NotController));
                            continue;
                        }
                        match decide(quorum.controller_mut(), now_ms) {
                            Err(e) => reply.send(Err(DecideError::Refused(e))),
                            Ok(records) if records.is_empty() => reply.send(Ok(())),
                            Ok(records) => match quorum.propose(&records) {
                                Ok(()) => {
                                    waiting.push((quorum.last_index(), quorum.term(), reply));
                                }
                                Err(_) => reply.send(Err(DecideError::NotController)),
                            },
                        }
                    }
                }
            }
            let (messages, _applied) = quorum
                .advance(&mut log, now_ms)
                .await
                .map_err(|e| format!("metadata log: {e}"))?;
            for message in messages {
                let Some(addr) = addrs.get(&message.to).cloned() else {
                    continue;
                };
                let Ok(bytes) = message.write_to_bytes() else {
                    continue;
                };
                let peers = peers.clone();
                glommio::spawn_local(async move {
                    let request = Request::RaftMessage(RaftMessageRequest {
                        message: Bytes::from(bytes),
                    });
                    // Lost messages are Raft's to resend.
                    let _ = peers.request(&addr, request, RAFT_SEND_TIMEOUT).await;
                })
                .detach();
            }
            let leader = quorum.leader();
            let applied = quorum.applied_index();
            self.is_leader.set(quorum.is_leader());
            if leader != published_leader || applied != published_applied {
                published_leader = leader;
                published_applied = applied;
                *self.snapshot.borrow_mut() = Arc::new(ClusterSnapshot {
                    image: quorum.metadata().clone(),
                    controller_id: leader.map_or(-1, broker_of),
                    metadata_offset: i64::try_from(applied).unwrap_or(i64::MAX),
                });
                self.changed.notify_all();
            }
            let term = quorum.term();
            let is_leader = quorum.is_leader();
            let mut still = Vec::new();
            for (index, proposed_term, reply) in waiting.drain(..) {
                if applied >= index {
                    if quorum.entry_term(index) == Some(proposed_term) {
                        reply.send(Ok(()));
                    } else {
                        reply.send(Err(DecideError::NotController));
                    }
                } else if !is_leader || term != proposed_term {
                    reply.send(Err(DecideError::NotController));
                } else {
                    still.push((index, proposed_term, reply));
                }
            }
            waiting = still;
            if !self.inputs.borrow().is_empty() {
                continue;
            }
            let wait = next_tick.saturating_duration_since(Instant::now());
            futures_lite::future::or(
                futures_lite::future::or(glommio::timer::sleep(wait), self.wake.changed(since)),
                stopping.wait(),
            )
            .await;
        }
        for (_, _, reply) in waiting {
            reply.send(Err(DecideError::NotController));
        }
        log.close()
            .await
            .map_err(|e| format!("closing the metadata log: {e}"))
    }
}
