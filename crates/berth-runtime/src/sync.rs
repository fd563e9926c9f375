//! The channel between the runtime (parent) and the process it forks into the container.
//!
//! A `SOCK_SEQPACKET` socket pair keeps message boundaries, so each message is one JSON
//! document; file descriptors (a seccomp listener, a pty master) travel as `SCM_RIGHTS`
//! ancillary data. Both ends are close-on-exec: when the child execs the container's program
//! the parent sees end-of-file, which is how it learns that the exec succeeded.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// Messages between the runtime and the container's first process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// Parent → child: the id maps are written and the child is in its cgroup; go on.
    Proceed,
    /// Parent → child: the OCI state JSON to give hooks on stdin.
    HookState(String),
    /// Child → parent: mounts are done, pivot_root is next; run prestart/createRuntime hooks.
    CreateRuntimeHooks,
    /// Parent → child: hooks ran; go on.
    HooksDone,
    /// Child → parent: a seccomp notify listener fd follows as ancillary data.
    SeccompFd,
    /// Child → parent: the pid of a process forked in a later stage (host pid namespace view).
    Pid(i32),
    /// Child → parent: set-up finished; the child now waits for `start` (create) or execs.
    Ready,
    /// Either way: something failed; the text is the error, ready for the user.
    Error(String),
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Creates a connected pair of channel ends.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .ctx(|| "creating the sync socket pair")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

const MAX_MSG: usize = 64 * 1024;

impl Channel {
    /// Wraps an already connected socket.
    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    /// The underlying socket.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Sends one message.
    pub fn send(&self, msg: &Msg) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    /// Sends one message with an optional file descriptor attached.
    pub fn send_with_fd(&self, msg: &Msg, fd: Option<BorrowedFd<'_>>) -> Result<()> {
        let data = serde_json::to_vec(msg)?;
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = SendAncillaryBuffer::new(&mut space);
        let fds;
        if let Some(fd) = fd {
            fds = [fd];
            anc.push(SendAncillaryMessage::ScmRights(&fds));
        }
        loop {
            match rustix::net::sendmsg(
                &self.fd,
                &[IoSlice::new(&data)],
                &mut anc,
                SendFlags::NOSIGNAL,
            ) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e).ctx(|| "sending on the sync socket"),
            }
        }
    }

    /// Receives one message; `Ok(None)` at end-of-file (the peer exited or exec'd).
    pub fn recv(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; MAX_MSG];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let n = loop {
            match rustix::net::recvmsg(
                &self.fd,
                &mut [IoSliceMut::new(&mut buf)],
                &mut anc,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(r) => break r.bytes,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e).ctx(|| "receiving on the sync socket"),
            }
        };
        let mut received = None;
        for m in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                for fd in fds {
                    received.get_or_insert(fd);
                }
            }
        }
        if n == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..n])
            .map_err(|e| Error::msg(format!("sync socket: malformed message: {e}")))?;
        Ok(Some((msg, received)))
    }

    /// Receives a message and checks it is `want`; a peer's `Error` becomes our error.
    pub fn expect(&self, want: &Msg) -> Result<Option<OwnedFd>> {
        match self.recv()? {
            Some((m, fd)) if &m == want => Ok(fd),
            Some((Msg::Error(e), _)) => Err(Error::Msg(e)),
            Some((m, _)) => Err(Error::msg(format!(
                "sync socket: expected {want:?}, got {m:?}"
            ))),
            None => Err(Error::msg(format!(
                "sync socket: peer exited while we waited for {want:?}"
            ))),
        }
    }
}

/// Sends `fd` to the unix socket at `fd_socket` (already connected) with `name` as payload;
/// used to hand a pty master to a console socket, as runc does.
pub fn send_fd_over(socket: BorrowedFd<'_>, name: &str, fd: BorrowedFd<'_>) -> Result<()> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    anc.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(name.as_bytes())],
        &mut anc,
        SendFlags::NOSIGNAL,
    )
    .ctx(|| "sending the pty master to the console socket")?;
    Ok(())
}

/// Receives one fd sent with [`send_fd_over`] (or by any SCM_RIGHTS sender).
pub fn recv_fd(socket: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut buf)],
        &mut anc,
        RecvFlags::CMSG_CLOEXEC,
    )
    .ctx(|| "receiving a file descriptor")?;
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    Err(Error::msg("no file descriptor received"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_fds_cross() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Pid(42)).unwrap();
        assert_eq!(b.recv().unwrap().unwrap().0, Msg::Pid(42));
        let f = std::fs::File::open("/dev/null").unwrap();
        b.send_with_fd(&Msg::SeccompFd, Some(f.as_fd())).unwrap();
        let fd = a.expect(&Msg::SeccompFd).unwrap().unwrap();
        let st = rustix::fs::fstat(&fd).unwrap();
        assert_eq!(st.st_rdev, rustix::fs::makedev(1, 3));
        b.send(&Msg::Error("boom".into())).unwrap();
        assert_eq!(a.expect(&Msg::Ready).unwrap_err().to_string(), "boom");
        drop(b);
        assert!(a.recv().unwrap().is_none());
    }
}
