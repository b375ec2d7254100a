//! The cross-shard message mesh: one bounded single-producer single-consumer glommio
//! `shared_channel` from every shard to every other shard (a full mesh), carrying owned,
//! `Send` messages (`Bytes`, owned structs), never references.
//!
//! Calls and replies: [`Mesh::call`] sends `Envelope::Call { from, id, call }` and parks the
//! calling task on a shard-local one-shot registered under `id`; the callee's receive loop
//! spawns one task per incoming call (the loop itself never blocks on anything but `recv`), and
//! that task sends `Envelope::Reply { id, reply }` back through the mesh. The caller's own
//! receive loop (a task of the caller's shard) completes the one-shot, so every waker is woken
//! on the thread that owns it; no foreign-thread wake-up is needed.
//!
//! Why not `glommio::channels::channel_mesh`: its peer index follows executor creation order
//! (not our shard numbers), and its `MeshBuilder` clones an `Rc` across threads. The same full
//! mesh built by hand from `shared_channel::new_bounded` in [`full_mesh`], indexed by shard,
//! avoids both; the channels, their wake-ups and their back-pressure are glommio's.
//!
//! Bounds and deadlock freedom:
//! - each channel holds at most `capacity` envelopes; a sender waits for room;
//! - each shard has at most [`CALLS_IN_FLIGHT_MAX`] calls outstanding per peer (a semaphore
//!   taken by the calling task, never by a receive loop), which also bounds the tasks a peer's
//!   calls can spawn here;
//! - receive loops only pop and spawn (or complete a one-shot), so every channel keeps draining
//!   even when two shards call each other at the same moment.
//!
//! When a peer closes (shutdown), its receive loop ends and every call waiting on it fails
//! with [`MeshError::Unreachable`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};
use glommio::sync::Semaphore;

use super::sync::{oneshot, LocalBoxFuture, OneshotSender};

/// Calls one shard may have outstanding towards one peer.
pub const CALLS_IN_FLIGHT_MAX: u64 = 1024;
/// Default envelopes a mesh channel holds.
pub const MESH_CHANNEL_CAPACITY_DEFAULT: usize = 1024;

/// What travels on a mesh channel.
pub enum Envelope<C, R> {
    /// A request from shard `from`, to be answered with a `Reply` carrying `id`.
    Call {
        /// The calling shard.
        from: usize,
        /// Chosen by the caller.
        id: u64,
        /// The request.
        call: C,
    },
    /// The answer to the call `id`.
    Reply {
        /// The call's id.
        id: u64,
        /// The answer.
        reply: R,
    },
}

/// One shard's ends of the mesh, before its executor connects them. `Send`.
pub struct MeshSeed<C: Send + 'static, R: Send + 'static> {
    shard: usize,
    senders: Vec<Option<SharedSender<Envelope<C, R>>>>,
    receivers: Vec<Option<SharedReceiver<Envelope<C, R>>>>,
}

impl<C: Send + 'static, R: Send + 'static> MeshSeed<C, R> {
    /// The shard these ends belong to.
    pub fn shard(&self) -> usize {
        self.shard
    }
}

/// Builds a full mesh between `shard_count` shards: element `s` of the result is shard `s`'s.
pub fn full_mesh<C: Send + 'static, R: Send + 'static>(
    shard_count: usize,
    capacity: usize,
) -> Vec<MeshSeed<C, R>> {
    let mut seeds: Vec<MeshSeed<C, R>> = (0..shard_count)
        .map(|shard| MeshSeed {
            shard,
            senders: (0..shard_count).map(|_| None).collect(),
            receivers: (0..shard_count).map(|_| None).collect(),
        })
        .collect();
    for from in 0..shard_count {
        for to in 0..shard_count {
            if from != to {
                let (tx, rx) = shared_channel::new_bounded(capacity.max(1));
                seeds[from].senders[to] = Some(tx);
                seeds[to].receivers[from] = Some(rx);
            }
        }
    }
    seeds
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    /// The peer is stopping or stopped: its channel is closed.
    #[error("shard {0} is not reachable (stopped or stopping)")]
    Unreachable(usize),
    /// No such shard, or the caller itself.
    #[error("shard {0} is not a peer of this shard")]
    NotAPeer(usize),
}

/// Runs one incoming call on the callee and produces its reply: `(from, call) -> reply`.
pub type CallHandler<C, R> = Rc<dyn Fn(usize, C) -> LocalBoxFuture<'static, R>>;

type Inbox<C, R> = ConnectedReceiver<Envelope<C, R>>;

type Pending<R> = RefCell<HashMap<u64, (usize, OneshotSender<Result<R, MeshError>>)>>;

/// One shard's connected mesh. Lives on its shard (`!Send`).
pub struct Mesh<C: Send + 'static, R: Send + 'static> {
    shard: usize,
    senders: Vec<Option<ConnectedSender<Envelope<C, R>>>>,
    permits: Vec<Semaphore>,
    pending: Pending<R>,
    next_id: Cell<u64>,
    receivers: RefCell<Vec<(usize, Inbox<C, R>)>>,
    /// Peers whose channel to this shard closed: they stopped, or are stopping and will
    /// not answer (a call to one fails at once instead of waiting for a reply).
    gone: Vec<Cell<bool>>,
}

impl<C: Send + 'static, R: Send + 'static> Mesh<C, R> {
    /// Connects this shard's ends; resolves once every peer has connected its ends too (so all
    /// shards must call this concurrently).
    pub async fn connect(seed: MeshSeed<C, R>) -> Rc<Self> {
        let shard_count = seed.senders.len();
        let mut sender_tasks = Vec::new();
        for (peer, tx) in seed.senders.into_iter().enumerate() {
            if let Some(tx) = tx {
                sender_tasks.push((peer, glommio::spawn_local(tx.connect()).detach()));
            }
        }
        let mut receiver_tasks = Vec::new();
        for (peer, rx) in seed.receivers.into_iter().enumerate() {
            if let Some(rx) = rx {
                receiver_tasks.push((peer, glommio::spawn_local(rx.connect()).detach()));
            }
        }
        let mut senders: Vec<Option<ConnectedSender<Envelope<C, R>>>> =
            (0..shard_count).map(|_| None).collect();
        for (peer, task) in sender_tasks {
            senders[peer] = task.await;
        }
        let mut receivers = Vec::new();
        for (peer, task) in receiver_tasks {
            if let Some(rx) = task.await {
                receivers.push((peer, rx));
            }
        }
        Rc::new(Mesh {
            shard: seed.shard,
            senders,
            permits: (0..shard_count)
                .map(|_| Semaphore::new(CALLS_IN_FLIGHT_MAX))
                .collect(),
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
            receivers: RefCell::new(receivers),
            gone: (0..shard_count).map(|_| Cell::new(false)).collect(),
        })
    }

    /// This shard's index.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Starts one receive loop per peer, running `handler` for every incoming call. Call once.
    pub fn serve(self: &Rc<Self>, handler: CallHandler<C, R>) {
        let receivers = std::mem::take(&mut *self.receivers.borrow_mut());
        for (peer, rx) in receivers {
            let mesh = Rc::clone(self);
            let handler = handler.clone();
            glommio::spawn_local(async move {
                while let Some(envelope) = rx.recv().await {
                    match envelope {
                        Envelope::Call { from, id, call } => {
                            let run = handler(from, call);
                            let mesh = mesh.clone();
                            glommio::spawn_local(async move {
                                let reply = run.await;
                                // A peer that stopped meanwhile no longer wants the answer.
                                let _ = mesh.send(from, Envelope::Reply { id, reply }).await;
                            })
                            .detach();
                        }
                        Envelope::Reply { id, reply } => {
                            let waiter = mesh.pending.borrow_mut().remove(&id);
                            if let Some((_, tx)) = waiter {
                                tx.send(Ok(reply));
                            }
                        }
                    }
                }
                mesh.gone[peer].set(true);
                mesh.fail_pending(peer);
            })
            .detach();
        }
    }

    /// Sends `call` to shard `to` and waits for its reply. Dropping the future abandons the
    /// call (the callee still runs it; its reply is discarded).
    pub async fn call(&self, to: usize, call: C) -> Result<R, MeshError> {
        if self.senders.get(to).is_none_or(|s| s.is_none()) {
            return Err(MeshError::NotAPeer(to));
        }
        if self.gone[to].get() {
            return Err(MeshError::Unreachable(to));
        }
        let _permit = self.permits[to]
            .acquire_permit(1)
            .await
            .map_err(|_| MeshError::Unreachable(to))?;
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (tx, rx) = oneshot();
        self.pending.borrow_mut().insert(id, (to, tx));
        let _forget = ForgetOnDrop {
            pending: &self.pending,
            id,
        };
        self.send(
            to,
            Envelope::Call {
                from: self.shard,
                id,
                call,
            },
        )
        .await?;
        rx.await.unwrap_or(Err(MeshError::Unreachable(to)))
    }

    async fn send(&self, to: usize, envelope: Envelope<C, R>) -> Result<(), MeshError> {
        let Some(Some(sender)) = self.senders.get(to) else {
            return Err(MeshError::NotAPeer(to));
        };
        sender
            .send(envelope)
            .await
            .map_err(|_| MeshError::Unreachable(to))
    }

    /// Closes this shard's sending ends (peers' receive loops then end) and fails every call
    /// still waiting.
    pub fn close(&self) {
        for sender in self.senders.iter().flatten() {
            sender.close();
        }
        for permits in &self.permits {
            permits.close();
        }
        let waiting: Vec<_> = self.pending.borrow_mut().drain().collect();
        for (_, (peer, tx)) in waiting {
            tx.send(Err(MeshError::Unreachable(peer)));
        }
    }

    fn fail_pending(&self, peer: usize) {
        let ids: Vec<u64> = self
            .pending
            .borrow()
            .iter()
            .filter(|(_, (p, _))| *p == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let waiter = self.pending.borrow_mut().remove(&id);
            if let Some((_, tx)) = waiter {
                tx.send(Err(MeshError::Unreachable(peer)));
            }
        }
    }
}

struct ForgetOnDrop<'a, R> {
    pending: &'a Pending<R>,
    id: u64,
}

impl<R> Drop for ForgetOnDrop<'_, R> {
    fn drop(&mut self) {
        self.pending.borrow_mut().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rt::ExecutorConfig;
    use std::time::Duration;

    /// A shard that closed its side of the mesh but still runs (it is shutting down) takes
    /// calls it can no longer answer: the caller must get `Unreachable`, not wait forever.
    #[test]
    fn a_call_to_a_shard_that_closed_its_mesh_fails() {
        let seeds = full_mesh::<u32, u32>(2, 8);
        let threads: Vec<_> = seeds
            .into_iter()
            .map(|seed| {
                std::thread::spawn(move || {
                    let config = ExecutorConfig {
                        name: format!("mesh-test-{}", seed.shard),
                        cpu: None,
                        io_memory_bytes: 1 << 20,
                    };
                    config
                        .spawn(move || async move {
                            let mesh = Mesh::connect(seed).await;
                            let handler: CallHandler<u32, u32> =
                                Rc::new(|_, c| Box::pin(async move { c + 1 }));
                            mesh.serve(handler);
                            if mesh.shard() == 1 {
                                mesh.close();
                                // Still alive: incoming calls are received, never answered.
                                glommio::timer::sleep(Duration::from_secs(2)).await;
                                return None;
                            }
                            glommio::timer::sleep(Duration::from_millis(300)).await;
                            let outcome = futures_lite::future::or(
                                async { Some(mesh.call(1, 41).await) },
                                async {
                                    glommio::timer::sleep(Duration::from_secs(1)).await;
                                    None
                                },
                            )
                            .await;
                            Some(outcome)
                        })
                        .expect("executor")
                })
            })
            .collect();
        let outcomes: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("shard thread"))
            .collect();
        assert_eq!(
            outcomes[0],
            Some(Some(Err(MeshError::Unreachable(1)))),
            "the call neither failed nor was answered (None: it hung)"
        );
    }
}
