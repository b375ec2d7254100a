//! Shard-local synchronisation: a one-shot channel, a broadcast [`Notify`], and combinators
//! that poll several futures together. Everything here is `!Send` and lives on one shard: wakers
//! are only ever woken from the thread that registered them, which is what glommio supports
//! (a reply from another shard arrives through the mesh and is delivered by a task of this
//! shard, never by the other thread).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A boxed shard-local future.
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

struct OneshotState<T> {
    value: Option<T>,
    waker: Option<Waker>,
    sender_alive: bool,
}

/// Sending half of [`oneshot`].
pub struct OneshotSender<T> {
    state: Rc<RefCell<OneshotState<T>>>,
}

/// Receiving half of [`oneshot`]: resolves to the value, or `None` if the sender was dropped
/// without sending.
pub struct OneshotReceiver<T> {
    state: Rc<RefCell<OneshotState<T>>>,
}

/// A shard-local channel for exactly one value.
pub fn oneshot<T>() -> (OneshotSender<T>, OneshotReceiver<T>) {
    let state = Rc::new(RefCell::new(OneshotState {
        value: None,
        waker: None,
        sender_alive: true,
    }));
    (
        OneshotSender {
            state: state.clone(),
        },
        OneshotReceiver { state },
    )
}

impl<T> OneshotSender<T> {
    /// Delivers the value (dropped if the receiver is gone).
    pub fn send(self, value: T) {
        let waker = {
            let mut state = self.state.borrow_mut();
            state.value = Some(value);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for OneshotSender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.state.borrow_mut();
            state.sender_alive = false;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Future for OneshotReceiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.state.borrow_mut();
        if let Some(value) = state.value.take() {
            return Poll::Ready(Some(value));
        }
        if !state.sender_alive {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[derive(Default)]
struct NotifyState {
    generation: u64,
    next_waiter: u64,
    waiters: BTreeMap<u64, Waker>,
}

/// A broadcast notification: [`Notify::notify_all`] bumps a generation and wakes every task
/// waiting in [`Notify::changed`]. Capture [`Notify::generation`] *before* checking the
/// condition you wait for, then wait for a change since it: no wake-up is lost. Waiters are
/// bounded by the tasks waiting (a dropped waiter deregisters itself).
#[derive(Default)]
pub struct Notify {
    state: RefCell<NotifyState>,
}

impl Notify {
    /// A notifier at generation 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.state.borrow().generation
    }

    /// Bumps the generation and wakes every waiter.
    pub fn notify_all(&self) {
        let waiters = {
            let mut state = self.state.borrow_mut();
            state.generation += 1;
            std::mem::take(&mut state.waiters)
        };
        for waker in waiters.into_values() {
            waker.wake();
        }
    }

    /// Resolves once the generation differs from `since`.
    pub fn changed(&self, since: u64) -> Changed<'_> {
        Changed {
            notify: self,
            since,
            id: None,
        }
    }
}

/// Future of [`Notify::changed`].
pub struct Changed<'a> {
    notify: &'a Notify,
    since: u64,
    id: Option<u64>,
}

impl Future for Changed<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.notify.state.borrow_mut();
        if state.generation != self.since {
            if let Some(id) = self.id.take() {
                state.waiters.remove(&id);
            }
            return Poll::Ready(());
        }
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = state.next_waiter;
                state.next_waiter += 1;
                id
            }
        };
        state.waiters.insert(id, cx.waker().clone());
        drop(state);
        self.id = Some(id);
        Poll::Pending
    }
}

impl Drop for Changed<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.notify.state.borrow_mut().waiters.remove(&id);
        }
    }
}

/// Awaits every future, polling them together; results in input order.
pub async fn join_all<'a, T>(mut futures: Vec<LocalBoxFuture<'a, T>>) -> Vec<T> {
    let mut results: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futures.iter_mut().enumerate() {
            if results[i].is_some() {
                continue;
            }
            match f.as_mut().poll(cx) {
                Poll::Ready(v) => results[i] = Some(v),
                Poll::Pending => pending = true,
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// Resolves when any of the futures resolves (immediately for an empty list); the others are
/// dropped.
pub async fn race_all<'a>(mut futures: Vec<LocalBoxFuture<'a, ()>>) {
    if futures.is_empty() {
        return;
    }
    std::future::poll_fn(|cx| {
        for f in futures.iter_mut() {
            if f.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}

/// A flag tasks can wait on: set once, never cleared (e.g. "shutting down").
#[derive(Default)]
pub struct Latch {
    set: Cell<bool>,
    notify: Notify,
}

impl Latch {
    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.set.set(true);
        self.notify.notify_all();
    }

    /// Whether it is set.
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Resolves once the flag is set.
    pub async fn wait(&self) {
        loop {
            let since = self.notify.generation();
            if self.set.get() {
                return;
            }
            self.notify.changed(since).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_wakes_waiters_and_oneshot_delivers() {
        let ex = glommio::LocalExecutorBuilder::default()
            .io_memory(1 << 20)
            .make()
            .expect("executor");
        ex.run(async {
            let notify = Rc::new(Notify::new());
            let since = notify.generation();
            let n2 = notify.clone();
            let task = glommio::spawn_local(async move {
                n2.changed(since).await;
                7
            });
            futures_lite::future::yield_now().await;
            notify.notify_all();
            assert_eq!(task.await, 7);

            let (tx, rx) = oneshot::<u32>();
            tx.send(3);
            assert_eq!(rx.await, Some(3));
            let (tx, rx) = oneshot::<u32>();
            drop(tx);
            assert_eq!(rx.await, None);

            let out = join_all(vec![
                Box::pin(async { 1 }) as LocalBoxFuture<'_, i32>,
                Box::pin(async { 2 }),
            ])
            .await;
            assert_eq!(out, vec![1, 2]);
        });
    }
}
