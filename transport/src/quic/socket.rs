//! UDP sockets for QUIC endpoints, on any runtime: bound with large send and receive buffers
//! (ARCHITECTURE §10: a QUIC stream at full speed overflows the default ones and loses packets).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

/// Send and receive buffer size asked of the kernel for every endpoint socket (ARCHITECTURE §10:
/// below this, loopback QUIC drops packets at full rate).
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// The buffer sizes the kernel granted a socket, as `getsockopt` reports them. Linux reports
/// twice what was set (the second half is its allowance for bookkeeping), so a socket that got
/// the full [`SOCKET_BUFFER_BYTES`] reports `2 * SOCKET_BUFFER_BYTES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketBuffers {
    /// `SO_SNDBUF`, bytes.
    pub send_bytes: usize,
    /// `SO_RCVBUF`, bytes.
    pub recv_bytes: usize,
}

impl SocketBuffers {
    /// Whether the kernel granted less than `wanted_bytes` in either direction (for example
    /// capped by `net.core.rmem_max` in a process without `CAP_NET_ADMIN`).
    pub fn capped(&self, wanted_bytes: usize) -> bool {
        self.send_bytes < wanted_bytes || self.recv_bytes < wanted_bytes
    }
}

/// Binds a UDP socket at `addr` and asks for `buffer_bytes` of send and receive buffer, with
/// `SO_{SND,RCV}BUFFORCE` first (beyond `{w,r}mem_max`, allowed with `CAP_NET_ADMIN`), then the
/// plain options. Returns the socket and what the kernel granted; check
/// [`SocketBuffers::capped`] and say so in the logs.
pub fn bind_socket(
    addr: SocketAddr,
    buffer_bytes: usize,
) -> io::Result<(UdpSocket, SocketBuffers)> {
    let socket = UdpSocket::bind(addr)?;
    let fd = socket.as_raw_fd();
    let send_bytes = set_buffer(fd, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, buffer_bytes)?;
    let recv_bytes = set_buffer(fd, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, buffer_bytes)?;
    Ok((
        socket,
        SocketBuffers {
            send_bytes,
            recv_bytes,
        },
    ))
}

/// Sets one socket buffer to `bytes` with `force_option` (needs `CAP_NET_ADMIN`), falling back to
/// `option`, and returns the size `getsockopt(option)` reports.
fn set_buffer(
    fd: RawFd,
    force_option: libc::c_int,
    option: libc::c_int,
    bytes: usize,
) -> io::Result<usize> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    if setsockopt_int(fd, force_option, value).is_err() {
        setsockopt_int(fd, option, value)?;
    }
    let mut granted: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is an open socket borrowed for the call; `granted` and `len` are valid for
    // writes of the sizes passed.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&mut granted as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(granted).unwrap_or(0))
}

fn setsockopt_int(fd: RawFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `fd` is an open socket borrowed for the call; `value` outlives it and its size is
    // passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
