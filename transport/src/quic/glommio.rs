//! A quinn [`Runtime`] for glommio: how a shard runs its own quinn `Endpoint` (ARCHITECTURE §5).
//!
//! quinn wants its runtime, timers and sockets to be `Send + Sync`; glommio's executor, timers and
//! sockets are `!Send` and live on one thread. [`GlommioRuntime`] is created on a shard's executor
//! thread (its *owner*) and drives every endpoint built with it on that thread:
//!
//! - **Tasks**: [`Runtime::spawn`] hands quinn's endpoint and connection drivers to
//!   `glommio::spawn_local` (or `spawn_local_into` a task queue). The futures are `Send`, but they
//!   run on the owner thread only.
//! - **Timers**: a glommio [`Timer`] inside a `ThreadBound`, a wrapper that asserts the owner
//!   thread on every use.
//! - **UDP**: all datagram syscalls go through `quinn_udp::UdpSocketState` on the non-blocking
//!   `std` socket, so GSO, GRO, ECN and `recvmmsg` batching stay as on tokio. Glommio's own
//!   `UdpSocket` copies every datagram through its DMA buffers, so it is used for one thing only:
//!   read readiness. After `recvmmsg` says `EWOULDBLOCK`, a 1-byte `MSG_PEEK` `recvmsg` on a `dup`
//!   of the descriptor goes into glommio's io_uring; it completes when a datagram is queued and
//!   consumes nothing, so the endpoint task sleeps in the ring instead of spinning, then receives
//!   with `recvmmsg` again. Glommio exposes no write readiness, so when a send hits `EWOULDBLOCK`
//!   the socket is marked blocked and [`UdpPoller::poll_writable`] waits [`SEND_RETRY_DELAY`]
//!   before quinn retries.
//! - **Socket buffers**: [`bind_socket`] asks for [`SOCKET_BUFFER_BYTES`] each way (forcing past
//!   `net.core.{r,w}mem_max` when the process may) and reports what the kernel granted.
//!
//! Invariants:
//! 1. Everything that touches glommio state (spawning, creating or polling a timer, wrapping a
//!    socket, polling for readiness) runs on the owner thread; `ThreadBound` and
//!    [`GlommioRuntime`] `assert!` it, because anything else is a bug in the caller (a panic, not
//!    undefined behaviour). So: create endpoints, `connect` and `accept` on the owner shard.
//!    Handles (`Connection`, streams) may be used from other threads: quinn then only locks its
//!    own state and wakes the driver task, and glommio accepts foreign wakes.
//! 2. A thread-bound value dropped on a foreign thread (the last quinn handle of a connection
//!    dropped elsewhere) is leaked, not freed: its `Rc`s may only be touched by the owner.
//! 3. Network input never panics here: receive and send errors are returned to quinn (which
//!    drops `ECONNRESET` and logs send errors), and a readiness wait that fails is replaced by a
//!    short sleep, so a broken descriptor can neither spin the shard nor kill the endpoint.
//! 4. [`AsyncUdpSocket::poll_recv`] never loops unboundedly: at most
//!    [`RECV_ATTEMPTS_MAX`] `recvmmsg` calls per poll, then it yields to the executor.

pub use super::socket::{bind_socket, SocketBuffers, SOCKET_BUFFER_BYTES};
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::mem::ManuallyDrop;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, FromRawFd, IntoRawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use glommio::timer::Timer;
use glommio::TaskQueueHandle;
use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use quinn::{AsyncTimer, AsyncUdpSocket, Runtime, UdpPoller};

/// How long a sender waits after `EWOULDBLOCK` before quinn tries the socket again. Short: the
/// send buffer drains at link speed; long enough that a full buffer does not spin the shard.
pub const SEND_RETRY_DELAY: Duration = Duration::from_micros(100);

/// Pause before the next `recvmmsg` when waiting for read readiness failed (io_uring refused the
/// peek, for instance), instead of spinning on a socket that says neither "data" nor "wait".
pub const READ_RETRY_DELAY: Duration = Duration::from_millis(1);

/// `recvmmsg` attempts in one [`AsyncUdpSocket::poll_recv`] before yielding to the executor; 2
/// would do (one `EWOULDBLOCK`, one retry after a readiness wait that completed at once), the
/// rest is slack for `EINTR`.
pub const RECV_ATTEMPTS_MAX: usize = 4;

// ---------------------------------------------------------------------------------------------
// Public API.

/// quinn's runtime on the calling glommio executor. Build it on the shard that will own the
/// endpoint, then pass it (in an `Arc`) to `quinn::Endpoint::new`, or use [`server_endpoint`] /
/// [`client_endpoint`].
#[derive(Debug, Clone)]
pub struct GlommioRuntime {
    owner: ThreadId,
    task_queue: Option<TaskQueueHandle>,
}

impl GlommioRuntime {
    /// A runtime owned by the calling thread, spawning into the current task queue.
    ///
    /// # Panics
    /// If the calling thread runs no glommio executor.
    pub fn new() -> GlommioRuntime {
        // Panics with glommio's own message when no executor runs on this thread.
        let _ = glommio::executor().id();
        GlommioRuntime {
            owner: thread::current().id(),
            task_queue: None,
        }
    }

    /// A runtime owned by the calling thread whose quinn tasks run in `task_queue` (so network
    /// work gets its own shares beside storage work).
    ///
    /// # Panics
    /// If the calling thread runs no glommio executor.
    pub fn with_task_queue(task_queue: TaskQueueHandle) -> GlommioRuntime {
        GlommioRuntime {
            task_queue: Some(task_queue),
            ..GlommioRuntime::new()
        }
    }

    #[track_caller]
    fn assert_owner(&self, what: &str) {
        assert!(
            thread::current().id() == self.owner,
            "GlommioRuntime::{what} called off the executor thread that owns it"
        );
    }
}

impl Default for GlommioRuntime {
    fn default() -> Self {
        GlommioRuntime::new()
    }
}

/// A quinn endpoint on `socket`, driven by a new [`GlommioRuntime`] on the calling executor.
///
/// # Panics
/// If the calling thread runs no glommio executor.
pub fn endpoint_on_socket(
    socket: UdpSocket,
    config: quinn::EndpointConfig,
    server: Option<quinn::ServerConfig>,
) -> io::Result<quinn::Endpoint> {
    let runtime: Arc<dyn Runtime> = Arc::new(GlommioRuntime::new());
    quinn::Endpoint::new(config, server, socket, runtime)
}

/// A server endpoint bound at `addr` ([`bind_socket`] with [`SOCKET_BUFFER_BYTES`]) on the calling
/// glommio executor. A port of 0 picks a free one (`Endpoint::local_addr` tells which).
///
/// # Panics
/// If the calling thread runs no glommio executor.
pub fn server_endpoint(
    addr: SocketAddr,
    server: quinn::ServerConfig,
    config: quinn::EndpointConfig,
) -> io::Result<quinn::Endpoint> {
    let (socket, _buffers) = bind_socket(addr, SOCKET_BUFFER_BYTES)?;
    endpoint_on_socket(socket, config, Some(server))
}

/// A client endpoint bound at `addr` (usually port 0) on the calling glommio executor, with
/// `client` as its default for `Endpoint::connect`: broker-to-broker traffic (replication,
/// controller) from a shard.
///
/// # Panics
/// If the calling thread runs no glommio executor.
pub fn client_endpoint(
    addr: SocketAddr,
    client: quinn::ClientConfig,
    config: quinn::EndpointConfig,
) -> io::Result<quinn::Endpoint> {
    let (socket, _buffers) = bind_socket(addr, SOCKET_BUFFER_BYTES)?;
    let mut endpoint = endpoint_on_socket(socket, config, None)?;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

// ---------------------------------------------------------------------------------------------
// quinn's traits.

impl Runtime for GlommioRuntime {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        self.assert_owner("new_timer");
        let timer = Timer::new(deadline.saturating_duration_since(Instant::now()));
        Box::pin(GlommioTimer(ThreadBound::new(timer)))
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.assert_owner("spawn");
        match self.task_queue {
            None => glommio::spawn_local(future).detach(),
            Some(task_queue) => match glommio::spawn_local_into(future, task_queue) {
                Ok(task) => task.detach(),
                // The shard removed the queue its endpoints run in: a bug in the shard.
                Err(e) => panic!("GlommioRuntime::spawn: task queue {task_queue:?}: {e}"),
            },
        };
    }

    fn wrap_udp_socket(&self, socket: UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        self.assert_owner("wrap_udp_socket");
        Ok(Arc::new(GlommioUdpSocket::new(socket)?))
    }
}

/// A glommio [`Timer`] for quinn's connection drivers.
#[derive(Debug)]
struct GlommioTimer(ThreadBound<Timer>);

impl AsyncTimer for GlommioTimer {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let timer = self.get_mut().0.get_mut();
        timer.reset(deadline.saturating_duration_since(Instant::now()));
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context) -> Poll<()> {
        let timer = self.get_mut().0.get_mut();
        Pin::new(timer).poll(cx).map(|_fired_at| ())
    }
}

/// The endpoint's socket: syscalls on `io` through `state`, read readiness from `read`.
struct GlommioUdpSocket {
    io: UdpSocket,
    state: UdpSocketState,
    /// Set when a send hit `EWOULDBLOCK`, cleared by the next send that goes through; while set,
    /// pollers wait [`SEND_RETRY_DELAY`] before reporting the socket writable.
    send_blocked: AtomicBool,
    read: ThreadBound<RefCell<ReadState>>,
}

struct ReadState {
    /// glommio's socket on a `dup` of `io`'s descriptor, used only to peek.
    peek: Rc<glommio::net::UdpSocket>,
    /// The readiness wait in flight, created after `recvmmsg` said `EWOULDBLOCK`.
    waiting: Option<Pin<Box<dyn Future<Output = ()>>>>,
}

impl GlommioUdpSocket {
    /// Wraps `socket`; on the executor thread that will own it.
    fn new(socket: UdpSocket) -> io::Result<GlommioUdpSocket> {
        // Sets O_NONBLOCK (shared with the dup below: one open file description) and the
        // GRO/ECN/PKTINFO options, and probes GSO.
        let state = UdpSocketState::new((&socket).into())?;
        let dup = socket.as_fd().try_clone_to_owned()?;
        // SAFETY: `dup` is a freshly duplicated descriptor of a UDP socket that nothing else
        // owns; `into_raw_fd` hands its ownership to glommio's socket, which closes it.
        let peek = unsafe { glommio::net::UdpSocket::from_raw_fd(dup.into_raw_fd()) };
        Ok(GlommioUdpSocket {
            io: socket,
            state,
            send_blocked: AtomicBool::new(false),
            read: ThreadBound::new(RefCell::new(ReadState {
                peek: Rc::new(peek),
                waiting: None,
            })),
        })
    }
}

impl fmt::Debug for GlommioUdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlommioUdpSocket")
            .field("io", &self.io)
            .field("send_blocked", &self.send_blocked)
            .finish_non_exhaustive()
    }
}

/// Completes when a datagram is queued on `peek`'s socket, without consuming it; when the ring
/// refuses the peek, completes after [`READ_RETRY_DELAY`] instead.
fn readable(peek: Rc<glommio::net::UdpSocket>) -> Pin<Box<dyn Future<Output = ()>>> {
    Box::pin(async move {
        let mut byte = [0u8; 1];
        if peek.peek_from(&mut byte).await.is_err() {
            glommio::timer::sleep(READ_RETRY_DELAY).await;
        }
    })
}

impl AsyncUdpSocket for GlommioUdpSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(GlommioUdpPoller {
            socket: self,
            backoff: ThreadBound::new(None),
        })
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        // `send` returns only `WouldBlock`; other errors are logged by quinn-udp and dropped
        // (UDP is lossy and QUIC retransmits).
        match self.state.send((&self.io).into(), transmit) {
            Ok(()) => {
                if self.send_blocked.load(Ordering::Relaxed) {
                    self.send_blocked.store(false, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::WouldBlock {
                    self.send_blocked.store(true, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut read = self.read.get().borrow_mut();
        for _ in 0..RECV_ATTEMPTS_MAX {
            // A wait in flight was armed after an `EWOULDBLOCK`: until it completes nothing
            // arrived, so no syscall is needed to know the answer is "pending".
            if let Some(waiting) = read.waiting.as_mut() {
                if waiting.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                read.waiting = None;
            }
            match self.state.recv((&self.io).into(), bufs, meta) {
                Ok(messages) => return Poll::Ready(Ok(messages)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    read.waiting = Some(readable(Rc::clone(&read.peek)));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        // Readiness said "data" yet `recvmmsg` found none, repeatedly: let other tasks run.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.state.gro_segments()
    }

    fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }
}

/// One connection's wait for its socket to take sends again.
struct GlommioUdpPoller {
    socket: Arc<GlommioUdpSocket>,
    /// The pause in flight while the socket is marked blocked.
    backoff: ThreadBound<Option<Timer>>,
}

impl fmt::Debug for GlommioUdpPoller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlommioUdpPoller")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl UdpPoller for GlommioUdpPoller {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // quinn asks before every send: the common answer costs one relaxed load. A pause left
        // over from an earlier block is reused (it has fired, or fires early): harmless.
        if !this.socket.send_blocked.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        let backoff = this.backoff.get_mut();
        let timer = backoff.get_or_insert_with(|| Timer::new(SEND_RETRY_DELAY));
        match Pin::new(timer).poll(cx) {
            Poll::Ready(_) => {
                // Writable as far as we can tell; the next send either clears the mark or sets
                // it again and brings quinn back here for another pause.
                *backoff = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Thread binding.

/// A `!Send` value made `Send + Sync` by refusing every use off the thread that created it.
///
/// Safety argument: the only ways to reach the value are [`ThreadBound::get`] and
/// [`ThreadBound::get_mut`], and both `assert!` that the caller is the owner thread, so the value
/// (its `Rc` counts, `RefCell` flags, glommio handles) is only ever read, written or dropped by
/// the thread that created it, exactly as if it had never left. Moving the wrapper to another
/// thread moves bytes, not access. [`Drop`] frees the value only on the owner thread; elsewhere
/// it leaks it, since running its destructor there would touch the `Rc`s concurrently with the
/// owner.
struct ThreadBound<T> {
    owner: ThreadId,
    value: ManuallyDrop<T>,
}

// SAFETY: see the type's documentation: every access asserts the owner thread.
unsafe impl<T> Send for ThreadBound<T> {}
// SAFETY: `&ThreadBound<T>` gives access to `&T` only on the owner thread (asserted).
unsafe impl<T> Sync for ThreadBound<T> {}

impl<T> ThreadBound<T> {
    fn new(value: T) -> ThreadBound<T> {
        ThreadBound {
            owner: thread::current().id(),
            value: ManuallyDrop::new(value),
        }
    }

    #[track_caller]
    fn assert_owner(&self) {
        assert!(
            thread::current().id() == self.owner,
            "a glommio-bound quinn object was used off its executor thread"
        );
    }

    #[track_caller]
    fn get(&self) -> &T {
        self.assert_owner();
        &self.value
    }

    #[track_caller]
    fn get_mut(&mut self) -> &mut T {
        self.assert_owner();
        &mut self.value
    }
}

impl<T> Drop for ThreadBound<T> {
    fn drop(&mut self) {
        if thread::current().id() == self.owner {
            // SAFETY: dropped once, here, on the owner thread; `value` is not used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.value) };
        }
        // Else leaked on purpose (see the type's documentation); never panic in `drop`.
    }
}

impl<T: fmt::Debug> fmt::Debug for ThreadBound<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if thread::current().id() == self.owner {
            f.debug_tuple("ThreadBound").field(&*self.value).finish()
        } else {
            f.debug_struct("ThreadBound")
                .field("owner", &self.owner)
                .finish_non_exhaustive()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn on_executor<T: 'static>(work: impl Future<Output = T> + 'static) -> T {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(1 << 20)
            .make()
            .expect("executor")
            .run(work)
    }

    #[test]
    fn poller_pauses_only_while_sends_would_block() {
        on_executor(async {
            let runtime = GlommioRuntime::new();
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let wrapped = runtime
                .wrap_udp_socket(socket.try_clone().unwrap())
                .unwrap();
            assert!(wrapped.local_addr().unwrap() == socket.local_addr().unwrap());
            let socket = Arc::new(GlommioUdpSocket::new(socket).unwrap());
            let mut poller = socket.clone().create_io_poller();
            let waker = std::task::Waker::noop();
            let mut cx = Context::from_waker(waker);
            assert!(poller.as_mut().poll_writable(&mut cx).is_ready());

            socket.send_blocked.store(true, Ordering::Relaxed);
            let start = Instant::now();
            assert!(poller.as_mut().poll_writable(&mut cx).is_pending());
            std::future::poll_fn(|cx| poller.as_mut().poll_writable(cx))
                .await
                .unwrap();
            assert!(start.elapsed() >= SEND_RETRY_DELAY);
            // Still marked (no send went through): the next ask pauses again.
            assert!(poller.as_mut().poll_writable(&mut cx).is_pending());
        });
    }

    #[test]
    fn runtime_spawns_and_times_on_its_executor() {
        let fired = on_executor(async {
            let runtime = GlommioRuntime::new();
            let count = Arc::new(AtomicUsize::new(0));
            let seen = count.clone();
            let deadline = Instant::now() + Duration::from_millis(5);
            let mut timer = runtime.new_timer(Instant::now() + Duration::from_secs(60));
            timer.as_mut().reset(deadline);
            runtime.spawn(Box::pin(async move {
                seen.fetch_add(1, Ordering::Relaxed);
            }));
            std::future::poll_fn(|cx| timer.as_mut().poll(cx)).await;
            assert!(Instant::now() >= deadline);
            count.load(Ordering::Relaxed)
        });
        assert_eq!(fired, 1);
    }

    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    #[test]
    fn thread_bound_refuses_other_threads_and_leaks_there() {
        let dropped = Arc::new(AtomicBool::new(false));
        let bound = ThreadBound::new(DropFlag(dropped.clone()));
        let bound = thread::spawn(move || {
            let used = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = bound.get();
            }));
            assert!(used.is_err(), "a foreign thread reached the value");
            bound
        })
        .join()
        .unwrap();
        let _ = bound.get();
        thread::spawn(move || drop(bound)).join().unwrap();
        assert!(
            !dropped.load(Ordering::Relaxed),
            "dropped off its owner thread"
        );

        let bound = ThreadBound::new(DropFlag(dropped.clone()));
        drop(bound);
        assert!(dropped.load(Ordering::Relaxed));
    }
}
