//! `berth-shim`: one per container. See the library's documentation for the protocol and
//! `berth-shim --help` for the command line.
//!
//! The process the daemon starts daemonizes the shim with a double fork: an intermediate
//! child starts a new session and forks the shim, then exits. The shim (not a session leader,
//! stdio on /dev/null, working directory `/`) becomes the subreaper of everything it starts,
//! creates the container with the runtime, and serves `shim.sock` (see `server`). The first
//! process only waits on a pipe for the shim's one-line report, prints it and exits, so the
//! daemon gets its answer from a process that is gone a moment later and is never the parent
//! of the shim or the container: killing the daemon does not touch them.

mod diag;
mod logs;
mod runtime;
mod server;
mod sys;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use berth_shim::args::{Command, ShimArgs};
use berth_shim::protocol::SpawnReport;
use berth_shim::stdcopy;

use crate::logs::LogSink;
use crate::runtime::{Runtime, read_memfd};
use crate::server::{Container, Paths, Server, Source};

fn main() {
    let args = match ShimArgs::parse(std::env::args_os().skip(1)) {
        Ok(Command::Run(a)) => a,
        Ok(Command::Help) => {
            print!("{}", berth_shim::args::HELP);
            return;
        }
        Ok(Command::Version) => {
            println!("berth-shim {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Err(e) => {
            eprintln!("berth-shim: {e}");
            report(&mut std::io::stdout(), Err(e.to_string()));
            std::process::exit(2);
        }
    };
    let args = match absolutize(args) {
        Ok(a) => a,
        Err(e) => {
            report(&mut std::io::stdout(), Err(e));
            std::process::exit(1);
        }
    };
    let (rx, tx) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            report(
                &mut std::io::stdout(),
                Err(format!("creating the report pipe: {e}")),
            );
            std::process::exit(1);
        }
    };
    // The shim is this process's grandchild: when the intermediate process exits, the shim
    // comes to us (a subreaper until we exit), so that a shim that fails is collected here and
    // leaves not even a zombie; once we exit, it belongs to the next subreaper or to init.
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    match sys::fork() {
        Err(e) => {
            report(
                &mut std::io::stdout(),
                Err(format!("forking the shim: {e}")),
            );
            std::process::exit(1);
        }
        Ok(None) => {
            // The intermediate: a new session (no controlling terminal, out of the daemon's
            // process group), then the shim as a child that is not a session leader and so
            // can never acquire a controlling terminal.
            drop(rx);
            let _ = rustix::process::setsid();
            match sys::fork() {
                Ok(None) => shim_main(args, tx),
                Ok(Some(_)) => sys::exit_now(0),
                Err(e) => {
                    report(
                        &mut std::fs::File::from(tx),
                        Err(format!("forking the shim: {e}")),
                    );
                    sys::exit_now(1)
                }
            }
        }
        Ok(Some(child)) => {
            drop(tx);
            let _ = sys::waitpid(child, false);
            std::process::exit(relay_report(rx))
        }
    }
}

/// Collects the children that come to the first process (the shim after a failure, and what
/// it may have left), for up to 10 s; returns the first wait status seen.
fn collect_children() -> Option<i32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut first = None;
    loop {
        let mut st = 0;
        // SAFETY: waitpid with a valid pointer to an int.
        let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if r > 0 {
            first.get_or_insert(st);
        } else if r == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        } else if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
        } else {
            return first;
        }
    }
}

/// Writes the report line.
fn report(out: &mut impl Write, r: Result<i32, String>) {
    let rep = match r {
        Ok(pid) => SpawnReport {
            pid: Some(pid),
            error: None,
        },
        Err(e) => SpawnReport {
            pid: None,
            error: Some(e),
        },
    };
    let mut line = serde_json::to_vec(&rep)
        .unwrap_or_else(|_| b"{\"error\":\"encoding the report\"}".to_vec());
    line.push(b'\n');
    let _ = out.write_all(&line);
    let _ = out.flush();
}

/// The first process: prints the shim's report and returns the exit status.
fn relay_report(rx: OwnedFd) -> i32 {
    let mut f = std::fs::File::from(rx);
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    while !buf.contains(&b'\n') {
        match f.read(&mut b) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let line = buf.split(|&c| c == b'\n').next().unwrap_or_default();
    let rep: Option<SpawnReport> = serde_json::from_slice(line).ok();
    let mut out = std::io::stdout();
    match rep {
        Some(SpawnReport {
            pid: Some(pid),
            error: None,
        }) => {
            report(&mut out, Ok(pid));
            0
        }
        Some(SpawnReport { error: Some(e), .. }) => {
            // The shim exits right after a failure report: collect it.
            collect_children();
            report(&mut out, Err(e));
            1
        }
        _ => {
            let status = match collect_children() {
                Some(st) => runtime::describe_status(st),
                None => "unknown status".into(),
            };
            report(
                &mut out,
                Err(format!("berth-shim exited before reporting ({status})")),
            );
            1
        }
    }
}

/// Makes every path absolute: the shim changes its working directory to `/`.
fn absolutize(mut a: ShimArgs) -> Result<ShimArgs, String> {
    let abs =
        |p: &Path| std::path::absolute(p).map_err(|e| format!("resolving {}: {e}", p.display()));
    a.bundle = abs(&a.bundle)?;
    a.state_dir = abs(&a.state_dir)?;
    if a.runtime.components().count() > 1 {
        a.runtime = abs(&a.runtime)?;
    }
    if let Some(r) = &a.runtime_root {
        a.runtime_root = Some(abs(r)?);
    }
    if let Some(l) = &mut a.log {
        l.path = abs(&l.path)?;
    }
    Ok(a)
}

/// The shim: creates the container, reports, serves.
fn shim_main(args: ShimArgs, report_fd: OwnedFd) -> ! {
    let mut report_file = std::fs::File::from(report_fd);
    match create(&args) {
        Ok((server, pid)) => {
            report(&mut report_file, Ok(pid));
            drop(report_file);
            server.run()
        }
        Err(e) => {
            report(&mut report_file, Err(e));
            drop(report_file);
            std::process::exit(1)
        }
    }
}

/// Undoes a failed create: runtime state, files, the state directory if the shim made it.
struct Undo<'a> {
    paths: &'a Paths,
    rt: Option<&'a Runtime>,
    made_dir: bool,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(rt) = self.rt {
            rt.delete_force();
        }
        // The init (if any) was killed by the runtime and is our child by now: collect it.
        for _ in 0..50 {
            if !matches!(sys::waitpid(-1, true), Ok(Some(_))) {
                break;
            }
        }
        for p in self.paths.all() {
            let _ = std::fs::remove_file(p);
        }
        if self.made_dir {
            let _ = std::fs::remove_dir(&self.paths.dir);
        }
    }
}

/// Sets the shim up and creates the container; returns the server and the init's pid.
fn create(args: &ShimArgs) -> Result<(Server, i32), String> {
    // Leave the daemon's stdio (it reads our parent's stdout to its end) and its session.
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("opening /dev/null: {e}"))?;
    for fd in 0..3 {
        // SAFETY: dup2 of an open fd onto a standard descriptor.
        unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) };
    }
    drop(null);
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| format!("becoming a subreaper: {e}"))?;
    let _ = std::env::set_current_dir("/");
    sys::ignore_signals();

    let paths = Paths::new(args.state_dir.clone());
    let made_dir = !paths.dir.exists();
    if made_dir {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&paths.dir)
            .map_err(|e| format!("creating state directory {}: {e}", paths.dir.display()))?;
    }
    let rt = Runtime::new(args, paths.runtime_log.clone());
    let mut undo = Undo {
        paths: &paths,
        rt: None,
        made_dir,
        armed: true,
    };
    diag::init(&paths.shim_log);

    // A live shim already owns this directory: leave everything as it is.
    if UnixStream::connect(&paths.sock).is_ok() {
        undo.armed = false;
        return Err(format!(
            "state directory {} already has a running shim",
            paths.dir.display()
        ));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&paths.shim_pid)
        .and_then(|mut f| f.write_all(std::process::id().to_string().as_bytes()))
        .map_err(|e| format!("writing {}: {e}", paths.shim_pid.display()))?;
    let listener = bind_private(&paths.sock)?;
    let sigfd = sys::sigchld_fd().map_err(|e| format!("signalfd: {e}"))?;

    // The container's stdio.
    let mut c = Container {
        pid: 0,
        out: [None, None],
        stdin: None,
        master: None,
        started_at: None,
        paused: false,
        exit: None,
    };
    let logged = args.log.is_some();
    let (sin, sout, serr, console, captured) = if args.tty {
        let l = bind_private(&paths.console)?;
        let m = rustix::fs::memfd_create("runtime-stderr", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| format!("memfd: {e}"))?;
        let serr = Stdio::from(m.try_clone().map_err(|e| format!("memfd: {e}"))?);
        (Stdio::null(), Stdio::null(), serr, Some(l), Some(m))
    } else {
        let p = |what: &str| {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| format!("creating the {what} pipe: {e}"))
        };
        let (or, ow) = p("stdout")?;
        let (er, ew) = p("stderr")?;
        for fd in [&or, &er] {
            sys::set_nonblocking(fd.as_fd()).map_err(|e| format!("stdio pipe: {e}"))?;
        }
        c.out = [
            Some(Source::new(or, stdcopy::STDOUT, logged)),
            Some(Source::new(er, stdcopy::STDERR, logged)),
        ];
        let sin = if args.stdin {
            let (ir, iw) = p("stdin")?;
            sys::set_nonblocking(iw.as_fd()).map_err(|e| format!("stdin pipe: {e}"))?;
            c.stdin = Some(iw);
            Stdio::from(ir)
        } else {
            Stdio::null()
        };
        (sin, Stdio::from(ow), Stdio::from(ew), None, None)
    };

    let mut a: Vec<OsString> = vec![
        "create".into(),
        "--bundle".into(),
        args.bundle.clone().into(),
    ];
    a.extend(["--pid-file".into(), paths.init_pid.clone().into()]);
    if args.tty {
        a.extend(["--console-socket".into(), paths.console.clone().into()]);
    }
    a.push(args.id.clone().into());
    let offset = rt.log_len();
    let mut cmd = rt.command(&a);
    cmd.stdin(sin).stdout(sout).stderr(serr);
    let spawned = cmd.spawn();
    drop(cmd);
    let child = spawned.map_err(|e| format!("running {}: {e}", rt.bin().display()))?;
    undo.rt = Some(&rt);
    let status = match sys::waitpid(child.id() as i32, false) {
        Ok(Some((_, st))) => st,
        Ok(None) => 0,
        Err(e) => return Err(format!("waiting for {} create: {e}", rt.bin().display())),
    };
    if status != 0 {
        let mut text = captured
            .as_ref()
            .map(|m| read_memfd(m.as_fd()))
            .unwrap_or_default();
        if let Some(Some(s)) = c.out.get(1) {
            let mut b = [0u8; 4096];
            while let Ok(n) = sys::read_fd(s.fd(), &mut b) {
                if n == 0 || text.len() > 64 << 10 {
                    break;
                }
                text.extend_from_slice(&b[..n]);
            }
        }
        return Err(rt.error_since("create", offset, &text, status));
    }
    let pid_text = std::fs::read_to_string(&paths.init_pid)
        .map_err(|e| format!("reading {}: {e}", paths.init_pid.display()))?;
    c.pid = pid_text
        .trim()
        .parse()
        .map_err(|_| format!("{}: not a pid: {pid_text:?}", paths.init_pid.display()))?;
    if let Some(l) = console {
        l.set_nonblocking(true)
            .map_err(|e| format!("console socket: {e}"))?;
        let (sock, _) = l.accept().map_err(|e| {
            format!(
                "the runtime sent no pty master to {}: {e}",
                paths.console.display()
            )
        })?;
        let master =
            sys::recv_fd(sock.as_fd()).map_err(|e| format!("receiving the pty master: {e}"))?;
        drop(l);
        let _ = std::fs::remove_file(&paths.console);
        sys::set_nonblocking(master.as_fd()).map_err(|e| format!("pty master: {e}"))?;
        let dup = |m: &OwnedFd| m.try_clone().map_err(|e| format!("pty master: {e}"));
        c.stdin = Some(dup(&master)?);
        c.master = Some(dup(&master)?);
        c.out[0] = Some(Source::new(master, stdcopy::STDOUT, logged));
    }
    let sink = match &args.log {
        Some(cfg) => Some(
            LogSink::start(cfg).map_err(|e| format!("opening log {}: {e}", cfg.path.display()))?,
        ),
        None => None,
    };
    undo.armed = false;
    drop(undo);
    let pid = c.pid;
    Ok((
        Server::new(args.clone(), paths, rt, listener, sigfd, c, sink),
        pid,
    ))
}

/// Binds a unix socket only its owner can connect to (mode 0600 from the start).
fn bind_private(path: &PathBuf) -> Result<UnixListener, String> {
    let _ = std::fs::remove_file(path);
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let r = UnixListener::bind(path);
    rustix::process::umask(old);
    let l = r.map_err(|e| format!("binding {}: {e}", path.display()))?;
    l.set_nonblocking(true)
        .map_err(|e| format!("socket {}: {e}", path.display()))?;
    Ok(l)
}
