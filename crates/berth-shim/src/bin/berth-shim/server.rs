//! The shim's single loop: one `poll(2)` over the SIGCHLD signalfd, the listening socket, the
//! container's and execs' output, their stdin when input is pending, the clients, and the
//! pipe to the log writer thread (the shim's only other thread, see `logs`). No async
//! runtime: every fd is non-blocking, and runtime commands run as children whose exit (seen
//! through SIGCHLD) completes the request that started them, so a slow `start` hook never
//! stops output from being drained.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use berth_shim::args::ShimArgs;
use berth_shim::protocol::{
    self, ErrorReply, ExecStarted, ExecState, Exit, Request, State, Status,
};
use berth_shim::stdcopy;

use crate::diag::warning;
use crate::logs::{LogSink, Splitter, rfc3339_nano};
use crate::runtime::{Runtime, read_memfd};
use crate::sys;

/// Size of one read from a process's output or a client.
const CHUNK: usize = 32 << 10;
/// Stop reading a process's output while a client of it has this much unsent.
const HIGH_WATER: usize = 256 << 10;
/// Longest request line.
const MAX_REQUEST: usize = 4 << 20;
/// Most bytes read from one output when draining it after an exit.
const DRAIN_MAX: usize = 4 << 20;
/// Exits of unknown children remembered (an exec that exits before its runtime returns).
const RECENT_EXITS: usize = 64;

/// The files of the shim's state directory.
pub struct Paths {
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub shim_pid: PathBuf,
    pub init_pid: PathBuf,
    pub exit: PathBuf,
    pub runtime_log: PathBuf,
    pub shim_log: PathBuf,
    pub console: PathBuf,
}

impl Paths {
    pub fn new(dir: PathBuf) -> Paths {
        Paths {
            sock: dir.join(protocol::SOCKET),
            shim_pid: dir.join(protocol::SHIM_PID_FILE),
            init_pid: dir.join(protocol::INIT_PID_FILE),
            exit: dir.join(protocol::EXIT_FILE),
            runtime_log: dir.join(protocol::RUNTIME_LOG),
            shim_log: dir.join(protocol::SHIM_LOG),
            console: dir.join(protocol::CONSOLE_SOCKET),
            dir,
        }
    }

    /// A per-exec file: `exec-<id>.<ext>`.
    fn exec_file(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("exec-{id}.{ext}"))
    }

    /// The `n`th exec console socket. Its name is a short counter, not the exec id: a
    /// socket's path must fit in a `sockaddr_un` (108 bytes) and the directory already
    /// holds a 64-character container id.
    fn exec_socket(&self, n: u64) -> PathBuf {
        self.dir.join(format!("c{n}"))
    }

    /// Every file the shim may have created (the container log is not among them).
    pub fn all(&self) -> Vec<PathBuf> {
        vec![
            self.sock.clone(),
            self.shim_pid.clone(),
            self.init_pid.clone(),
            self.exit.clone(),
            self.runtime_log.clone(),
            self.shim_log.clone(),
            self.console.clone(),
        ]
    }
}

/// One output of a process: a pipe, or a pty master.
pub struct Source {
    fd: OwnedFd,
    /// stdcopy stream byte (1 stdout, 2 stderr).
    stream: u8,
    /// Cuts the container's output into log messages (none for execs).
    split: Option<Splitter>,
}

impl Source {
    pub fn new(fd: OwnedFd, stream: u8, logged: bool) -> Source {
        Source {
            fd,
            stream,
            split: logged.then(Splitter::default),
        }
    }

    /// The pipe or pty master.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The container's init process and its stdio.
pub struct Container {
    pub pid: i32,
    /// stdout and stderr (with a tty: the master, as stdout, and nothing).
    pub out: [Option<Source>; 2],
    /// Where attached input goes: the stdin pipe, or (a dup of) the pty master.
    pub stdin: Option<OwnedFd>,
    /// (A dup of) the pty master, for resizing.
    pub master: Option<OwnedFd>,
    pub started_at: Option<String>,
    pub paused: bool,
    pub exit: Option<Exit>,
}

/// A process started with `exec`.
struct ExecProc {
    pid: i32,
    starting: bool,
    tty: bool,
    out: [Option<Source>; 2],
    stdin: Option<OwnedFd>,
    master: Option<OwnedFd>,
    console: Option<UnixListener>,
    /// The console socket's path, removed once the runtime has connected to it.
    console_path: Option<PathBuf>,
    exit: Option<Exit>,
    conn: Option<u64>,
}

/// What a stream connection is attached to.
#[derive(Clone, Debug)]
struct Spec {
    exec: Option<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

enum Phase {
    /// Reading the request line.
    Request,
    /// A runtime command is running for it.
    Busy,
    /// `wait`: answered at exit.
    Waiting,
    /// attach/exec byte stream.
    Stream(Spec),
    /// Sending the last bytes, then closed.
    Closing,
}

struct Conn {
    sock: UnixStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    phase: Phase,
    rd_closed: bool,
    stdin_pending: Vec<u8>,
    close_stdin_after: bool,
}

impl Conn {
    fn unsent(&self) -> usize {
        self.wbuf.len() - self.wpos
    }
}

enum OpKind {
    Start,
    Pause,
    Resume,
    Plain,
    Exec(String),
    Delete,
}

/// A running runtime command.
struct Op {
    pid: i32,
    conn: u64,
    kind: OpKind,
    what: &'static str,
    /// The runtime's stderr (a memfd), when it is not an exec's own stderr pipe.
    stderr: Option<OwnedFd>,
    log_offset: u64,
}

#[derive(Clone)]
enum Tag {
    Sig,
    Listen,
    Out(Option<String>, usize),
    Stdin(Option<String>),
    Conn(u64),
    Log,
}

/// The shim once its container is created.
pub struct Server {
    args: ShimArgs,
    paths: Paths,
    rt: Runtime,
    listener: UnixListener,
    sigfd: OwnedFd,
    c: Container,
    sink: Option<LogSink>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    ops: Vec<Op>,
    execs: BTreeMap<String, ExecProc>,
    /// Ids of exited execs, oldest first: only the last [`KEEP_EXITED_EXECS`] are kept, so a
    /// container probed by a health check every few seconds does not grow its shim.
    exited_execs: VecDeque<String>,
    /// Exec console sockets made so far (their names).
    consoles: u64,
    recent: VecDeque<(i32, i32)>,
    /// When the init exited (monotonic), for `--linger`.
    exited_mono: Option<Instant>,
}

/// Exited execs whose exit codes the shim still answers for.
const KEEP_EXITED_EXECS: usize = 32;

fn now() -> String {
    rfc3339_nano(SystemTime::now())
}

fn line_of<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut l =
        serde_json::to_vec(v).unwrap_or_else(|_| b"{\"error\":\"encoding the reply\"}".to_vec());
    l.push(b'\n');
    l
}

fn ok_line() -> Vec<u8> {
    line_of(&protocol::Ok { ok: true })
}

fn err_line(msg: impl Into<String>) -> Vec<u8> {
    line_of(&ErrorReply { error: msg.into() })
}

fn memfd() -> io::Result<OwnedFd> {
    Ok(rustix::fs::memfd_create(
        "runtime-stderr",
        rustix::fs::MemfdFlags::CLOEXEC,
    )?)
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

fn resize(fd: Option<&OwnedFd>, height: u16, width: u16, what: &str) -> Result<(), String> {
    let fd = fd.ok_or_else(|| format!("{what} has no tty"))?;
    let ws = rustix::termios::Winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(fd, ws).map_err(|e| format!("resizing the tty of {what}: {e}"))
}

/// Writes `data` to `path` atomically (temporary file, rename). Not fsynced: the file lives
/// in the exec root (tmpfs on most hosts) and only has to outlive the daemon, not the machine;
/// after a host crash the container is gone anyway, and an fsync here sat on the path of every
/// `run --rm` between the container's exit and the daemon learning of it.
fn write_atomic(path: &std::path::Path, data: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    std::fs::rename(&tmp, path)
}

impl Server {
    pub fn new(
        args: ShimArgs,
        paths: Paths,
        rt: Runtime,
        listener: UnixListener,
        sigfd: OwnedFd,
        c: Container,
        sink: Option<LogSink>,
    ) -> Server {
        Server {
            args,
            paths,
            rt,
            listener,
            sigfd,
            c,
            sink,
            conns: BTreeMap::new(),
            next_conn: 1,
            ops: Vec::new(),
            execs: BTreeMap::new(),
            exited_execs: VecDeque::new(),
            consoles: 0,
            recent: VecDeque::new(),
            exited_mono: None,
        }
    }

    /// Serves until `delete` or `shutdown`, then exits the process.
    pub fn run(mut self) -> ! {
        // Children that exited before the loop started (e.g. a container killed right away).
        self.reap();
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut tags: Vec<Tag> = Vec::new();
        loop {
            fds.clear();
            tags.clear();
            self.poll_set(&mut fds, &mut tags);
            // SAFETY: poll on a valid array of pollfd of the given length.
            let r = unsafe {
                libc::poll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    self.poll_timeout(),
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    warning!("poll: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
            for i in 0..fds.len() {
                let rev = fds[i].revents;
                if rev != 0 {
                    self.handle(tags[i].clone(), rev);
                }
            }
        }
    }

    /// The poll timeout in milliseconds: -1 (none) unless `--linger` is counting down, in
    /// which case the shim ends (as on `shutdown`) once it has run out.
    fn poll_timeout(&mut self) -> i32 {
        let (Some(linger), Some(at)) = (self.args.linger, self.exited_mono) else {
            return -1;
        };
        let left = linger.saturating_sub(at.elapsed());
        if left.is_zero() {
            self.finish(false, None);
        }
        // Round up so that the deadline has passed when poll returns.
        i32::try_from(left.as_millis() + 1).unwrap_or(i32::MAX)
    }

    fn poll_set(&self, fds: &mut Vec<libc::pollfd>, tags: &mut Vec<Tag>) {
        let mut add = |fd: BorrowedFd<'_>, events: i16, tag: Tag| {
            fds.push(libc::pollfd {
                fd: fd.as_raw_fd(),
                events,
                revents: 0,
            });
            tags.push(tag);
        };
        add(self.sigfd.as_fd(), libc::POLLIN, Tag::Sig);
        add(self.listener.as_fd(), libc::POLLIN, Tag::Listen);
        if !self.blocked(None) {
            for (i, s) in self.c.out.iter().enumerate() {
                if let Some(s) = s {
                    add(s.fd.as_fd(), libc::POLLIN, Tag::Out(None, i));
                }
            }
        }
        for (id, e) in &self.execs {
            if e.starting {
                continue;
            }
            if !self.blocked(Some(id)) {
                for (i, s) in e.out.iter().enumerate() {
                    if let Some(s) = s {
                        add(s.fd.as_fd(), libc::POLLIN, Tag::Out(Some(id.clone()), i));
                    }
                }
            }
        }
        let mut want_stdin: Vec<Option<&String>> = Vec::new();
        for (&id, c) in &self.conns {
            let mut ev = 0;
            match &c.phase {
                Phase::Request | Phase::Waiting => ev |= libc::POLLIN,
                Phase::Stream(spec) => {
                    if !c.rd_closed && c.stdin_pending.is_empty() {
                        ev |= libc::POLLIN;
                    }
                    if !c.stdin_pending.is_empty() && !want_stdin.contains(&spec.exec.as_ref()) {
                        want_stdin.push(spec.exec.as_ref());
                    }
                }
                Phase::Busy | Phase::Closing => {}
            }
            if c.unsent() > 0 {
                ev |= libc::POLLOUT;
            }
            add(c.sock.as_fd(), ev, Tag::Conn(id));
        }
        for target in want_stdin {
            let fd = match target {
                None => self.c.stdin.as_ref(),
                Some(id) => self.execs.get(id).and_then(|e| e.stdin.as_ref()),
            };
            if let Some(fd) = fd {
                add(fd.as_fd(), libc::POLLOUT, Tag::Stdin(target.cloned()));
            }
        }
        if let Some(fd) = self.sink.as_ref().and_then(|s| s.pending_fd()) {
            add(fd, libc::POLLOUT, Tag::Log);
        }
    }

    /// Whether a client of the process (`None`: the container) is too far behind to read
    /// more of its output.
    fn blocked(&self, exec: Option<&String>) -> bool {
        self.conns.values().any(|c| {
            matches!(&c.phase, Phase::Stream(s) if s.exec.as_ref() == exec)
                && c.unsent() > HIGH_WATER
        })
    }

    fn handle(&mut self, tag: Tag, rev: i16) {
        match tag {
            Tag::Sig => {
                sys::drain_signalfd(self.sigfd.as_fd());
                self.reap();
            }
            Tag::Listen => self.accept(),
            Tag::Out(target, i) => {
                self.read_output(target.as_ref(), i);
            }
            Tag::Stdin(target) => {
                let ids: Vec<u64> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| {
                        matches!(&c.phase, Phase::Stream(s) if s.exec == target)
                            && !c.stdin_pending.is_empty()
                    })
                    .map(|(&id, _)| id)
                    .collect();
                for id in ids {
                    self.flush_stdin(id);
                }
            }
            Tag::Conn(id) => {
                if rev & libc::POLLOUT != 0 {
                    self.try_write(id);
                }
                if rev & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                    self.conn_readable(id, rev);
                }
            }
            Tag::Log => {
                if let Some(s) = &mut self.sink {
                    s.flush_some();
                }
            }
        }
    }

    // ---- children ----

    fn reap(&mut self) {
        loop {
            match sys::waitpid(-1, true) {
                Ok(Some((pid, status))) => self.child_exited(pid, status),
                Ok(None) => break,
                Err(e) => {
                    warning!("waitpid: {e}");
                    break;
                }
            }
        }
    }

    fn child_exited(&mut self, pid: i32, status: i32) {
        if pid == self.c.pid && self.c.exit.is_none() {
            self.init_exited(sys::exit_code(status));
        } else if let Some(i) = self.ops.iter().position(|o| o.pid == pid) {
            let op = self.ops.swap_remove(i);
            self.op_done(op, status);
        } else if let Some(id) = self
            .execs
            .iter()
            .find(|(_, e)| e.pid == pid && e.exit.is_none())
            .map(|(id, _)| id.clone())
        {
            self.exec_exited(&id, sys::exit_code(status));
        } else {
            if self.recent.len() == RECENT_EXITS {
                self.recent.pop_front();
            }
            self.recent.push_back((pid, status));
        }
    }

    fn init_exited(&mut self, code: i32) {
        let exit = Exit {
            exit_code: code,
            exited_at: now(),
        };
        if let Err(e) = write_atomic(&self.paths.exit, &line_of(&exit)) {
            warning!("writing {}: {e}", self.paths.exit.display());
        }
        self.c.exit = Some(exit.clone());
        self.exited_mono = Some(Instant::now());
        for i in 0..2 {
            self.drain(None, i);
        }
        self.c.stdin = None;
        let line = line_of(&exit);
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            match &c.phase {
                Phase::Waiting => {
                    c.wbuf.extend_from_slice(&line);
                    c.phase = Phase::Closing;
                }
                Phase::Stream(s) if s.exec.is_none() => c.phase = Phase::Closing,
                _ => continue,
            }
            self.try_write(id);
        }
    }

    fn exec_exited(&mut self, id: &str, code: i32) {
        let Some(e) = self.execs.get_mut(id) else {
            return;
        };
        e.exit = Some(Exit {
            exit_code: code,
            exited_at: now(),
        });
        self.exited_execs.push_back(id.to_string());
        while self.exited_execs.len() > KEEP_EXITED_EXECS {
            if let Some(old) = self.exited_execs.pop_front() {
                self.execs.remove(&old);
            }
        }
        let target = Some(id.to_string());
        for i in 0..2 {
            self.drain(target.as_ref(), i);
        }
        let Some(e) = self.execs.get_mut(id) else {
            return;
        };
        e.out = [None, None];
        e.stdin = None;
        e.master = None;
        if let Some(cid) = e.conn.take()
            && let Some(c) = self.conns.get_mut(&cid)
        {
            c.phase = Phase::Closing;
            self.try_write(cid);
        }
    }

    // ---- runtime commands ----

    fn spawn_op(
        &mut self,
        conn: u64,
        kind: OpKind,
        what: &'static str,
        args: Vec<OsString>,
        stdin: Option<OwnedFd>,
    ) {
        let offset = self.rt.log_len();
        let res = (|| -> io::Result<(i32, OwnedFd)> {
            let err = memfd()?;
            let mut cmd = self.rt.command(&args);
            cmd.stderr(Stdio::from(err.try_clone()?));
            if let Some(i) = stdin {
                cmd.stdin(Stdio::from(i));
            }
            let child = cmd.spawn()?;
            Ok((child.id() as i32, err))
        })();
        match res {
            Ok((pid, err)) => {
                self.ops.push(Op {
                    pid,
                    conn,
                    kind,
                    what,
                    stderr: Some(err),
                    log_offset: offset,
                });
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.phase = Phase::Busy;
                }
            }
            Err(e) => self.reply(
                conn,
                err_line(format!("running {} {what}: {e}", self.rt.bin().display())),
                Phase::Closing,
            ),
        }
    }

    fn op_done(&mut self, op: Op, status: i32) {
        let err = if status == 0 {
            None
        } else {
            let captured = match (&op.stderr, &op.kind) {
                (Some(fd), _) => read_memfd(fd.as_fd()),
                (None, OpKind::Exec(id)) => self.read_exec_stderr(id),
                (None, _) => Vec::new(),
            };
            Some(
                self.rt
                    .error_since(op.what, op.log_offset, &captured, status),
            )
        };
        match op.kind {
            OpKind::Start if err.is_none() => self.c.started_at = Some(now()),
            OpKind::Pause if err.is_none() => self.c.paused = true,
            OpKind::Resume if err.is_none() => self.c.paused = false,
            OpKind::Exec(id) => return self.exec_started(op.conn, &id, err),
            OpKind::Delete if err.is_none() => self.finish(true, Some(op.conn)),
            _ => {}
        }
        let line = match err {
            None => ok_line(),
            Some(e) => err_line(e),
        };
        self.reply(op.conn, line, Phase::Closing);
    }

    fn read_exec_stderr(&mut self, id: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(Some(s)) = self.execs.get(id).map(|e| &e.out[1]) {
            let mut buf = [0u8; 4096];
            while let Ok(n) = sys::read_fd(&s.fd, &mut buf) {
                if n == 0 || out.len() > 64 << 10 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
        }
        out
    }

    // ---- exec ----

    fn start_exec(
        &mut self,
        conn: u64,
        id: String,
        mut process: serde_json::Value,
        tty: bool,
        stdin: bool,
    ) {
        if !protocol::valid_exec_id(&id) {
            return self.reply(
                conn,
                err_line(format!(
                    "exec id {id:?}: only letters, digits, _ . - are allowed"
                )),
                Phase::Closing,
            );
        }
        if self.execs.contains_key(&id) {
            return self.reply(
                conn,
                err_line(format!("exec {id} already exists")),
                Phase::Closing,
            );
        }
        if self.c.exit.is_some() {
            return self.reply(
                conn,
                err_line(format!("container {} is not running", self.rt.id)),
                Phase::Closing,
            );
        }
        let Some(obj) = process.as_object_mut() else {
            return self.reply(
                conn,
                err_line(format!("exec {id}: process must be a JSON object")),
                Phase::Closing,
            );
        };
        obj.insert("terminal".into(), serde_json::Value::Bool(tty));
        let proc_file = self.paths.exec_file(&id, "json");
        let pid_file = self.paths.exec_file(&id, "pid");
        self.consoles += 1;
        let sock_file = self.paths.exec_socket(self.consoles);
        let res = (|| -> io::Result<(ExecProc, Vec<OsString>, std::process::Command, Option<OwnedFd>)> {
            let data = serde_json::to_vec(&process).map_err(io::Error::other)?;
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&proc_file)?.write_all(&data)?;
            let mut args: Vec<OsString> = vec!["exec".into(), "--detach".into(), "--pid-file".into(), pid_file.clone().into()];
            args.extend(["--process".into(), proc_file.clone().into()]);
            let mut e = ExecProc { pid: 0, starting: true, tty, out: [None, None], stdin: None, master: None, console: None, console_path: None, exit: None, conn: Some(conn) };
            let mut memfd_err = None;
            let (sin, sout, serr): (Stdio, Stdio, Stdio);
            if tty {
                let _ = std::fs::remove_file(&sock_file);
                let l = UnixListener::bind(&sock_file)?;
                l.set_nonblocking(true)?;
                e.console = Some(l);
                e.console_path = Some(sock_file.clone());
                args.extend(["--console-socket".into(), sock_file.clone().into()]);
                let m = memfd()?;
                serr = Stdio::from(m.try_clone()?);
                memfd_err = Some(m);
                sin = Stdio::null();
                sout = Stdio::null();
            } else {
                let (or, ow) = pipe()?;
                let (er, ew) = pipe()?;
                sys::set_nonblocking(or.as_fd())?;
                sys::set_nonblocking(er.as_fd())?;
                e.out = [Some(Source::new(or, stdcopy::STDOUT, false)), Some(Source::new(er, stdcopy::STDERR, false))];
                sout = Stdio::from(ow);
                serr = Stdio::from(ew);
                sin = if stdin {
                    let (ir, iw) = pipe()?;
                    sys::set_nonblocking(iw.as_fd())?;
                    e.stdin = Some(iw);
                    Stdio::from(ir)
                } else {
                    Stdio::null()
                };
            }
            args.push(self.rt.id.clone().into());
            let mut cmd = self.rt.command(&args);
            cmd.stdin(sin).stdout(sout).stderr(serr);
            Ok((e, args, cmd, memfd_err))
        })();
        let (e, _args, mut cmd, memfd_err) = match res {
            Ok(v) => v,
            Err(err) => {
                self.remove_exec_files(&id);
                return self.reply(
                    conn,
                    err_line(format!("exec {id}: setting up: {err}")),
                    Phase::Closing,
                );
            }
        };
        let offset = self.rt.log_len();
        let spawned = cmd.spawn();
        drop(cmd);
        match spawned {
            Ok(child) => {
                self.ops.push(Op {
                    pid: child.id() as i32,
                    conn,
                    kind: OpKind::Exec(id.clone()),
                    what: "exec",
                    stderr: memfd_err,
                    log_offset: offset,
                });
                self.execs.insert(id, e);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.phase = Phase::Busy;
                }
            }
            Err(err) => {
                self.remove_exec_files(&id);
                self.reply(
                    conn,
                    err_line(format!("running {} exec: {err}", self.rt.bin().display())),
                    Phase::Closing,
                );
            }
        }
    }

    fn remove_exec_files(&self, id: &str) {
        for ext in ["json", "pid", "sock"] {
            let _ = std::fs::remove_file(self.paths.exec_file(id, ext));
        }
    }

    fn exec_started(&mut self, conn: u64, id: &str, err: Option<String>) {
        // The runtime has exited: it has connected to the console socket if it ever will.
        if let Some(p) = self.execs.get_mut(id).and_then(|e| e.console_path.take()) {
            let _ = std::fs::remove_file(p);
        }
        let pid_file = self.paths.exec_file(id, "pid");
        let res = match err {
            Some(e) => Err(e),
            None => (|| -> Result<i32, String> {
                let s = std::fs::read_to_string(&pid_file)
                    .map_err(|e| format!("exec {id}: reading {}: {e}", pid_file.display()))?;
                let pid: i32 = s
                    .trim()
                    .parse()
                    .map_err(|_| format!("exec {id}: bad pid file {s:?}"))?;
                let e = self
                    .execs
                    .get_mut(id)
                    .ok_or_else(|| format!("exec {id} vanished"))?;
                e.pid = pid;
                if let Some(l) = e.console.take() {
                    let (sock, _) = l
                        .accept()
                        .map_err(|err| format!("exec {id}: the runtime sent no pty: {err}"))?;
                    let master = sys::recv_fd(sock.as_fd())
                        .map_err(|err| format!("exec {id}: receiving the pty: {err}"))?;
                    sys::set_nonblocking(master.as_fd())
                        .map_err(|err| format!("exec {id}: {err}"))?;
                    let dup = master
                        .try_clone()
                        .map_err(|err| format!("exec {id}: {err}"))?;
                    e.stdin = Some(dup.try_clone().map_err(|err| format!("exec {id}: {err}"))?);
                    e.master = Some(dup);
                    e.out[0] = Some(Source::new(master, stdcopy::STDOUT, false));
                }
                Ok(pid)
            })(),
        };
        self.remove_exec_files(id);
        match res {
            Err(msg) => {
                if let Some(e) = self.execs.remove(id)
                    && e.pid > 0
                {
                    // SAFETY: kill(2) of our own (not yet reaped) child.
                    unsafe { libc::kill(e.pid, libc::SIGKILL) };
                }
                self.reply(conn, err_line(msg), Phase::Closing);
            }
            Ok(pid) => {
                let Some(e) = self.execs.get_mut(id) else {
                    return;
                };
                e.starting = false;
                let spec = Spec {
                    exec: Some(id.to_string()),
                    stdin: e.stdin.is_some(),
                    stdout: true,
                    stderr: true,
                };
                if self.conns.contains_key(&conn) {
                    self.reply(conn, line_of(&ExecStarted { pid }), Phase::Stream(spec));
                    self.take_early_stdin(conn);
                } else if let Some(e) = self.execs.get_mut(id) {
                    e.conn = None;
                }
                if let Some(i) = self.recent.iter().position(|&(p, _)| p == pid) {
                    let (_, status) = self.recent.remove(i).unwrap_or((pid, 0));
                    self.exec_exited(id, sys::exit_code(status));
                }
            }
        }
    }

    // ---- output ----

    fn read_output(&mut self, target: Option<&String>, i: usize) -> usize {
        let mut buf = [0u8; CHUNK];
        let src = match target {
            None => self.c.out[i].as_ref(),
            Some(id) => self.execs.get(id).and_then(|e| e.out[i].as_ref()),
        };
        let Some(src) = src else { return 0 };
        match sys::read_fd(&src.fd, &mut buf) {
            Ok(0) => {
                self.source_eof(target, i);
                0
            }
            Ok(n) => {
                self.dispatch(target, i, &buf[..n]);
                n
            }
            Err(e) if sys::would_block(&e) => 0,
            Err(e) => {
                warning!("reading output: {e}");
                self.source_eof(target, i);
                0
            }
        }
    }

    /// Reads what is already in an output (after its process exited).
    fn drain(&mut self, target: Option<&String>, i: usize) {
        let mut total = 0;
        while total < DRAIN_MAX {
            let n = self.read_output(target, i);
            if n == 0 {
                break;
            }
            total += n;
        }
    }

    fn source_eof(&mut self, target: Option<&String>, i: usize) {
        match target {
            None => {
                if let Some(mut s) = self.c.out[i].take()
                    && let Some(split) = &mut s.split
                {
                    let name = if s.stream == stdcopy::STDERR {
                        "stderr"
                    } else {
                        "stdout"
                    };
                    let time = now();
                    if let Some(sink) = &mut self.sink {
                        split.finish(&mut |l, p| sink.entry(name, l, p, &time));
                    }
                }
            }
            Some(id) => {
                if let Some(e) = self.execs.get_mut(id) {
                    e.out[i] = None;
                }
            }
        }
    }

    fn dispatch(&mut self, target: Option<&String>, i: usize, data: &[u8]) {
        let (stream, raw) = match target {
            None => {
                let Some(s) = &mut self.c.out[i] else { return };
                let stream = s.stream;
                if let (Some(split), Some(sink)) = (&mut s.split, &mut self.sink) {
                    let name = if stream == stdcopy::STDERR {
                        "stderr"
                    } else {
                        "stdout"
                    };
                    let time = now();
                    split.push(data, &mut |l, p| sink.entry(name, l, p, &time));
                }
                (stream, self.args.tty)
            }
            Some(id) => {
                let Some(e) = self.execs.get(id) else { return };
                let Some(s) = &e.out[i] else { return };
                (s.stream, e.tty)
            }
        };
        let mut framed = Vec::new();
        if !raw {
            framed.reserve(data.len() + stdcopy::HEADER_LEN);
            stdcopy::push_frame(&mut framed, stream, data);
        }
        let payload: &[u8] = if raw { data } else { &framed };
        let ids: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| match &c.phase {
                Phase::Stream(s) => {
                    s.exec.as_ref() == target
                        && if stream == stdcopy::STDERR {
                            s.stderr
                        } else {
                            s.stdout
                        }
                }
                _ => false,
            })
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            if let Some(c) = self.conns.get_mut(&id) {
                if c.wpos > 0 && c.wpos == c.wbuf.len() {
                    c.wbuf.clear();
                    c.wpos = 0;
                }
                c.wbuf.extend_from_slice(payload);
                self.try_write(id);
            }
        }
    }

    // ---- clients ----

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let id = self.next_conn;
                    self.next_conn += 1;
                    self.conns.insert(
                        id,
                        Conn {
                            sock,
                            rbuf: Vec::new(),
                            wbuf: Vec::new(),
                            wpos: 0,
                            phase: Phase::Request,
                            rd_closed: false,
                            stdin_pending: Vec::new(),
                            close_stdin_after: false,
                        },
                    );
                }
                Err(e) if sys::would_block(&e) => break,
                Err(e) => {
                    warning!("accepting on {}: {e}", self.paths.sock.display());
                    break;
                }
            }
        }
    }

    fn reply(&mut self, id: u64, line: Vec<u8>, next: Phase) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.wbuf.extend_from_slice(&line);
        c.phase = next;
        self.try_write(id);
    }

    fn try_write(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        while c.wpos < c.wbuf.len() {
            match (&c.sock).write(&c.wbuf[c.wpos..]) {
                Ok(n) => c.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return self.drop_conn(id),
            }
        }
        c.wbuf.clear();
        c.wpos = 0;
        if c.wbuf.capacity() > CHUNK * 2 {
            c.wbuf = Vec::new();
        }
        if matches!(c.phase, Phase::Closing) {
            self.drop_conn(id);
        }
    }

    fn drop_conn(&mut self, id: u64) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        if let Phase::Stream(spec) = &c.phase {
            if spec.stdin && !c.rd_closed {
                self.stdin_eof(spec);
            }
            if let Some(eid) = &spec.exec
                && let Some(e) = self.execs.get_mut(eid)
                && e.conn == Some(id)
            {
                e.conn = None;
            }
        }
        if matches!(c.phase, Phase::Busy) {
            for e in self.execs.values_mut() {
                if e.conn == Some(id) {
                    e.conn = None;
                }
            }
        }
    }

    /// A stream client ended its input.
    fn stdin_eof(&mut self, spec: &Spec) {
        match &spec.exec {
            Some(eid) => {
                if let Some(e) = self.execs.get_mut(eid)
                    && !e.tty
                {
                    e.stdin = None;
                }
            }
            None => {
                if self.args.stdin_once && !self.args.tty {
                    self.c.stdin = None;
                }
            }
        }
    }

    fn conn_readable(&mut self, id: u64, rev: i16) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        match &c.phase {
            Phase::Request => self.read_request(id),
            Phase::Waiting => {
                let mut b = [0u8; 256];
                match (&c.sock).read(&mut b) {
                    Ok(0) => self.drop_conn(id),
                    Err(e) if !sys::would_block(&e) => self.drop_conn(id),
                    _ => {}
                }
            }
            Phase::Stream(_) => {
                if c.rd_closed || !c.stdin_pending.is_empty() {
                    if rev & (libc::POLLHUP | libc::POLLERR) != 0 {
                        self.drop_conn(id);
                    }
                    return;
                }
                let mut b = [0u8; CHUNK];
                match (&c.sock).read(&mut b) {
                    Ok(0) => {
                        c.rd_closed = true;
                        if c.stdin_pending.is_empty() {
                            if let Phase::Stream(spec) = &c.phase {
                                let spec = spec.clone();
                                if spec.stdin {
                                    self.stdin_eof(&spec);
                                }
                            }
                        } else {
                            c.close_stdin_after = true;
                        }
                    }
                    Ok(n) => {
                        c.stdin_pending.extend_from_slice(&b[..n]);
                        self.flush_stdin(id);
                    }
                    Err(e) if sys::would_block(&e) => {}
                    Err(_) => self.drop_conn(id),
                }
            }
            Phase::Busy | Phase::Closing => {
                if rev & (libc::POLLHUP | libc::POLLERR) != 0 {
                    self.drop_conn(id);
                }
            }
        }
    }

    /// Moves bytes the client sent right after its request line to its stdin.
    fn take_early_stdin(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.rbuf.is_empty() {
            return;
        }
        let early = std::mem::take(&mut c.rbuf);
        c.stdin_pending.extend_from_slice(&early);
        self.flush_stdin(id);
    }

    fn flush_stdin(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let Phase::Stream(spec) = &c.phase else {
            return;
        };
        let spec = spec.clone();
        let target = if !spec.stdin {
            None
        } else {
            match &spec.exec {
                None => self.c.stdin.as_ref(),
                Some(eid) => self.execs.get(eid).and_then(|e| e.stdin.as_ref()),
            }
        };
        let mut broken = false;
        match target {
            None => c.stdin_pending.clear(),
            Some(fd) => {
                let mut done = 0;
                while done < c.stdin_pending.len() {
                    match rustix::io::write(fd, &c.stdin_pending[done..]) {
                        Ok(n) => done += n,
                        Err(rustix::io::Errno::INTR) => {}
                        Err(rustix::io::Errno::AGAIN) => break,
                        Err(_) => {
                            broken = true;
                            done = c.stdin_pending.len();
                        }
                    }
                }
                c.stdin_pending.drain(..done);
            }
        }
        let close_now = c.stdin_pending.is_empty() && c.close_stdin_after;
        if close_now {
            c.close_stdin_after = false;
        }
        if broken {
            match &spec.exec {
                None => self.c.stdin = None,
                Some(eid) => {
                    if let Some(e) = self.execs.get_mut(eid) {
                        e.stdin = None;
                    }
                }
            }
        }
        if close_now && spec.stdin {
            self.stdin_eof(&spec);
        }
    }

    fn read_request(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut b = [0u8; 8192];
        loop {
            match (&c.sock).read(&mut b) {
                Ok(0) => return self.drop_conn(id),
                Ok(n) => {
                    c.rbuf.extend_from_slice(&b[..n]);
                    if c.rbuf.contains(&b'\n') || c.rbuf.len() > MAX_REQUEST {
                        break;
                    }
                }
                Err(e) if sys::would_block(&e) => return,
                Err(_) => return self.drop_conn(id),
            }
        }
        let Some(nl) = c.rbuf.iter().position(|&b| b == b'\n') else {
            return self.reply(id, err_line("request line too long"), Phase::Closing);
        };
        let line: Vec<u8> = c.rbuf.drain(..=nl).collect();
        match serde_json::from_slice::<Request>(&line) {
            Ok(req) => self.request(id, req),
            Err(e) => self.reply(id, err_line(format!("bad request: {e}")), Phase::Closing),
        }
    }

    fn state(&self) -> State {
        let c = &self.c;
        let status = if c.exit.is_some() {
            Status::Stopped
        } else if c.paused {
            Status::Paused
        } else if c.started_at.is_some() {
            Status::Running
        } else {
            Status::Created
        };
        State {
            status,
            pid: c.pid,
            exit_code: c.exit.as_ref().map(|e| e.exit_code),
            exited_at: c.exit.as_ref().map(|e| e.exited_at.clone()),
            started_at: c.started_at.clone(),
        }
    }

    fn request(&mut self, id: u64, req: Request) {
        let cid: OsString = self.rt.id.clone().into();
        match req {
            Request::Start => {
                self.spawn_op(id, OpKind::Start, "start", vec!["start".into(), cid], None)
            }
            Request::Kill { signal, all } => {
                let mut a: Vec<OsString> = vec!["kill".into()];
                if all {
                    a.push("--all".into());
                }
                a.extend([cid, signal.to_string().into()]);
                self.spawn_op(id, OpKind::Plain, "kill", a, None);
            }
            Request::Pause => {
                self.spawn_op(id, OpKind::Pause, "pause", vec!["pause".into(), cid], None)
            }
            Request::Resume => self.spawn_op(
                id,
                OpKind::Resume,
                "resume",
                vec!["resume".into(), cid],
                None,
            ),
            Request::Update { resources } => {
                let data = serde_json::to_vec(&resources).unwrap_or_default();
                // The resources go through a pipe filled before the runtime starts: they
                // must fit in its buffer so that this never blocks.
                let input = (|| -> io::Result<OwnedFd> {
                    let (r, w) = pipe()?;
                    sys::set_nonblocking(w.as_fd())?;
                    let n = rustix::io::write(&w, &data)?;
                    if n < data.len() {
                        return Err(io::Error::other("resources too large"));
                    }
                    Ok(r)
                })();
                match input {
                    Ok(r) => self.spawn_op(
                        id,
                        OpKind::Plain,
                        "update",
                        vec!["update".into(), "-r".into(), "-".into(), cid],
                        Some(r),
                    ),
                    Err(e) => self.reply(
                        id,
                        err_line(format!("update of container {}: {e}", self.rt.id)),
                        Phase::Closing,
                    ),
                }
            }
            Request::Resize { height, width } => {
                let what = format!("container {}", self.rt.id);
                let line = match resize(self.c.master.as_ref(), height, width, &what) {
                    Ok(()) => ok_line(),
                    Err(e) => err_line(e),
                };
                self.reply(id, line, Phase::Closing);
            }
            Request::State => {
                let line = line_of(&self.state());
                self.reply(id, line, Phase::Closing);
            }
            Request::Wait => match &self.c.exit {
                Some(e) => {
                    let line = line_of(e);
                    self.reply(id, line, Phase::Closing);
                }
                None => {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.phase = Phase::Waiting;
                    }
                }
            },
            Request::Delete => self.spawn_op(
                id,
                OpKind::Delete,
                "delete",
                vec!["delete".into(), "--force".into(), cid],
                None,
            ),
            Request::Shutdown => self.finish(false, Some(id)),
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                if self.c.exit.is_some() {
                    return self.reply(id, ok_line(), Phase::Closing);
                }
                let spec = Spec {
                    exec: None,
                    stdin: stdin && self.c.stdin.is_some(),
                    stdout,
                    stderr,
                };
                self.reply(id, ok_line(), Phase::Stream(spec));
                self.take_early_stdin(id);
            }
            Request::Exec {
                exec_id,
                process,
                tty,
                stdin,
            } => self.start_exec(id, exec_id, process, tty, stdin),
            Request::ExecState { exec_id } => {
                let line = match self.execs.get(&exec_id) {
                    Some(e) => line_of(&ExecState {
                        pid: e.pid,
                        running: e.exit.is_none(),
                        exit_code: e.exit.as_ref().map(|x| x.exit_code),
                        exited_at: e.exit.as_ref().map(|x| x.exited_at.clone()),
                    }),
                    None => err_line(format!("exec {exec_id} not found")),
                };
                self.reply(id, line, Phase::Closing);
            }
            Request::ExecResize {
                exec_id,
                height,
                width,
            } => {
                let line = match self.execs.get(&exec_id) {
                    Some(e) => {
                        match resize(e.master.as_ref(), height, width, &format!("exec {exec_id}")) {
                            Ok(()) => ok_line(),
                            Err(e) => err_line(e),
                        }
                    }
                    None => err_line(format!("exec {exec_id} not found")),
                };
                self.reply(id, line, Phase::Closing);
            }
            Request::ExecKill { exec_id, signal } => {
                let line = match self.execs.get(&exec_id) {
                    Some(e) if e.exit.is_none() && e.pid > 0 => {
                        // SAFETY: kill(2) of a child we have not reaped, so its pid is not reused.
                        if unsafe { libc::kill(e.pid, signal) } == 0 {
                            ok_line()
                        } else {
                            err_line(format!(
                                "signalling exec {exec_id}: {}",
                                io::Error::last_os_error()
                            ))
                        }
                    }
                    Some(_) => err_line(format!("exec {exec_id} is not running")),
                    None => err_line(format!("exec {exec_id} not found")),
                };
                self.reply(id, line, Phase::Closing);
            }
        }
    }

    // ---- the end ----

    /// `delete` (after the runtime deleted the container) or `shutdown`: completes the log,
    /// removes the shim's files, answers `conn` and exits.
    fn finish(&mut self, delete: bool, conn: Option<u64>) -> ! {
        if delete {
            // The runtime killed the container; collect the init to record its exit.
            for _ in 0..200 {
                self.reap();
                if self.c.exit.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        for i in 0..2 {
            self.drain(None, i);
            if delete {
                self.source_eof(None, i);
            }
        }
        if let Some(s) = &mut self.sink {
            s.finish();
        }
        // The socket goes first: nobody can connect to a shim that is leaving.
        let _ = std::fs::remove_file(&self.paths.sock);
        if let Some(c) = conn.and_then(|id| self.conns.remove(&id)) {
            let mut sock = c.sock;
            let _ = sock.set_nonblocking(false);
            let _ = sock.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = sock.write_all(&c.wbuf[c.wpos..]);
            let _ = sock.write_all(&ok_line());
        }
        // The other files after the answer: the log is complete and the exit recorded, and
        // removing files can take milliseconds on a disk mounted with `discard`.
        if delete {
            for p in self.paths.all() {
                let _ = std::fs::remove_file(p);
            }
            let ids: Vec<String> = self.execs.keys().cloned().collect();
            for id in ids {
                self.remove_exec_files(&id);
            }
        } else {
            let _ = std::fs::remove_file(&self.paths.shim_pid);
        }
        self.reap();
        std::process::exit(0)
    }
}
