//! Creating a container and starting processes in it: the runtime (parent) side and the
//! container's init (child) side, kept in one file because each step on one side answers a
//! step on the other.
//!
//! ```text
//! runtime (parent)                         init (child, in new namespaces)
//! ----------------                         -------------------------------
//! validate config, compile seccomp,
//! create cgroup, exec fifo, state dir
//! clone(CLONE_NEW*) ─────────────────────▶ join cgroup (itself), wait
//! write id maps, Proceed ────────────────▶ unshare cgroupns, mounts, devices
//!                                     ◀─── CreateRuntimeHooks
//! run prestart/createRuntime hooks ──────▶ run createContainer hooks, pivot_root,
//!                                          console, masks, sysctl, rlimits, user,
//!                                          capabilities, seccomp
//!                                     ◀─── Ready
//! write state.json and pid file, exit      block opening exec.fifo for writing
//! ...
//! `start`: open exec.fifo, read "0" ─────▶ startContainer hooks, execve
//!          EOF on the fifo = exec done
//! ```
//!
//! A failure on either side before `Ready` tears everything down: the child is killed, the
//! cgroup and state directory removed. Nothing is left behind.

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Process, Spec};

use crate::cgroups::{Cgroup, SelfJoin};
use crate::config;
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::namespaces;
use crate::process::{self, Prepared};
use crate::rootfs;
use crate::seccomp;
use crate::state::{Root, State, Status};
use crate::sync::{self, Channel, Msg};
use crate::tty;
use crate::utils;

/// Options of `create` (and of the create half of `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Keep the pty master ourselves (foreground `run -t` without a console socket).
    pub internal_console: bool,
}

/// A container that `create` made.
pub struct Created {
    pub state: State,
    pub dir: PathBuf,
    /// The pty master, when `internal_console` was asked for.
    pub console: Option<OwnedFd>,
}

/// Undoes a half-made container when dropped, unless disarmed.
struct Cleanup<'a> {
    dir: Option<PathBuf>,
    cgroup: Option<&'a Cgroup>,
    child: Option<i32>,
}

impl Cleanup<'_> {
    fn disarm(&mut self) {
        self.dir = None;
        self.cgroup = None;
        self.child = None;
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.child.take() {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.signal_all(libc::SIGKILL);
            if let Err(e) = cg.destroy() {
                tracing::warn!("cleaning up cgroup {}: {e}", cg.path);
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

/// Forks with `CLONE_NEW*` flags. Returns the child's pid in the parent and 0 in the child.
fn clone(flags: i32) -> Result<i32> {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: a raw clone without CLONE_VM behaves like fork(2): the child gets a copy of the
    // address space and continues on its copy of the stack. The runtime is single-threaded.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if r < 0 {
        let what = if flags & libc::CLONE_NEWUSER != 0 {
            "creating the container process (with a new user namespace)"
        } else {
            "creating the container process"
        };
        return Err(std::io::Error::last_os_error()).ctx(|| what);
    }
    Ok(r as i32)
}

/// Like [`clone`], but with the child born in the cgroup2 directory `cgroup` when the kernel
/// can (`clone3` with `CLONE_INTO_CGROUP`, Linux 5.7). Returns the pid (0 in the child) and
/// whether the child was born there; any `clone3` failure falls back to [`clone`], which
/// reports the error if forking itself is what fails.
fn clone_into(flags: i32, cgroup: Option<BorrowedFd<'_>>) -> Result<(i32, bool)> {
    let Some(cgroup) = cgroup else {
        return Ok((clone(flags)?, false));
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    /// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2).
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: flags as u32 as u64 | CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup.as_raw_fd() as u64,
    };
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork(2), as `clone`
    // does; `args` is a valid clone_args of the size passed. The runtime is single-threaded.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r >= 0 {
        return Ok((r as i32, true));
    }
    tracing::debug!(
        "clone3 into the cgroup failed ({}); forking, then joining",
        std::io::Error::last_os_error()
    );
    Ok((clone(flags)?, false))
}

/// unshare(2) in the single-threaded runtime or its child.
fn unshare(flags: i32) -> std::io::Result<()> {
    // SAFETY: unshare with namespace flags; the process is single-threaded.
    if unsafe { libc::unshare(flags) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Opens a pidfd for `pid` and checks it is still the process with `start_time`.
pub fn pidfd_checked(pid: i32, start_time: u64) -> Result<OwnedFd> {
    let p = rustix::process::Pid::from_raw(pid).ok_or_else(|| Error::msg("invalid pid 0"))?;
    let fd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
        .ctx(|| format!("opening pidfd of process {pid}"))?;
    match utils::proc_stat(pid) {
        Some(st) if st.start_time == start_time => Ok(fd),
        _ => Err(Error::msg(format!("process {pid} has exited"))),
    }
}

/// The container's device-cgroup rules: the config's, then allow the default devices and every
/// device listed in `linux.devices` (as runc does).
fn resources_with_devices(spec: &Spec) -> Option<LinuxResources> {
    let linux = spec.linux().as_ref()?;
    let mut r = linux.resources().clone().unwrap_or_default();
    let mut rules = r.devices().clone().unwrap_or_default();
    rules.extend(rootfs::default_device_rules());
    for d in linux.devices().as_deref().unwrap_or(&[]) {
        let mut rule = oci_spec::runtime::LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(match d.typ() {
            oci_spec::runtime::LinuxDeviceType::B => oci_spec::runtime::LinuxDeviceType::B,
            _ => oci_spec::runtime::LinuxDeviceType::C,
        }));
        rule.set_major(Some(d.major()));
        rule.set_minor(Some(d.minor()));
        rule.set_access(Some("rwm".into()));
        if d.typ() != oci_spec::runtime::LinuxDeviceType::P {
            rules.push(rule);
        }
    }
    r.set_devices(Some(rules));
    Some(r)
}

/// Compiles the config's seccomp filter, reusing a cached compilation when the same filter
/// (same JSON, same libseccomp and kernel) was compiled before: compiling Docker's profile
/// for three architectures takes libseccomp ~17 ms, reading it back ~20 µs.
///
/// A cache file holds the exact key (salt and JSON) it was made for, compared in full on
/// load, so a hash collision can only cost a recompilation.
pub fn compile_seccomp(spec: &Spec, cache_dir: &Path) -> Result<Option<seccomp::Program>> {
    let Some(sc) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let mut key = seccomp::cache_salt().into_bytes();
    key.push(0);
    key.extend_from_slice(&serde_json::to_vec(sc)?);
    let path = cache_dir.join(format!("{:016x}.bpf", fnv1a(&key)));
    if let Ok(bytes) = fs::read(&path)
        && bytes.len() > 8
    {
        let klen = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()) as usize;
        if bytes.len() > 8 + klen
            && bytes[8..8 + klen] == key[..]
            && let Ok(p) = seccomp::Program::from_bytes(&bytes[8 + klen..])
        {
            return Ok(Some(p));
        }
    }
    let p = seccomp::compile(sc)?;
    if fs::create_dir_all(cache_dir).is_ok() {
        let mut data = (key.len() as u64).to_le_bytes().to_vec();
        data.extend_from_slice(&key);
        data.extend_from_slice(&p.to_bytes());
        let _ = utils::write_atomic(&path, &data);
    }
    Ok(Some(p))
}

/// 64-bit FNV-1a, naming cache files.
fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Connects to a console socket; the runtime later sends the pty master over it.
fn connect_console(path: &Path) -> Result<OwnedFd> {
    let s = UnixStream::connect(path).ctx(|| format!("console socket {}", path.display()))?;
    Ok(OwnedFd::from(s))
}

/// Creates user namespaces for idmapped mounts (one per mount that asks), from the host.
fn idmap_namespaces(spec: &Spec) -> Result<Vec<Option<OwnedFd>>> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        let opts = crate::mountopts::MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
        if opts.idmap.is_none() {
            out.push(None);
            continue;
        }
        let fmt = |v: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
            v.as_deref()
                .unwrap_or(&[])
                .iter()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect::<String>()
        };
        let (uid, gid) = (fmt(m.uid_mappings()), fmt(m.gid_mappings()));
        let fd = userns_with_maps(&uid, &gid).map_err(|e| {
            Error::msg(format!(
                "mounts[{i}]: creating the idmap user namespace: {e}"
            ))
        })?;
        out.push(Some(fd));
    }
    Ok(out)
}

/// Makes a user namespace with the given maps: a child unshares it and waits while we write
/// the maps and open its namespace file.
fn userns_with_maps(uid_map: &str, gid_map: &str) -> Result<OwnedFd> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ctx(|| "pipe")?;
    let pid = clone(libc::CLONE_NEWUSER)?;
    if pid == 0 {
        drop(w);
        let mut b = [0u8; 1];
        let _ = rustix::io::read(&r, &mut b);
        // SAFETY: leaving the helper child.
        unsafe { libc::_exit(0) };
    }
    drop(r);
    let res = (|| {
        fs::write(format!("/proc/{pid}/uid_map"), uid_map).ctx(|| "writing uid_map")?;
        fs::write(format!("/proc/{pid}/gid_map"), gid_map).ctx(|| "writing gid_map")?;
        let f = fs::File::open(format!("/proc/{pid}/ns/user")).ctx(|| "opening the namespace")?;
        Ok(OwnedFd::from(f))
    })();
    drop(w);
    // SAFETY: reaping our helper child.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    res
}

/// Namespace files of our own, to come back after joining a container's namespaces.
struct SavedNs(Vec<(LinuxNamespaceType, OwnedFd)>);

impl SavedNs {
    fn save(types: &[LinuxNamespaceType]) -> Result<SavedNs> {
        let mut v = Vec::new();
        for t in types {
            let name = match t {
                LinuxNamespaceType::Pid => "pid_for_children",
                LinuxNamespaceType::Time => "time_for_children",
                t => config::ns_name(*t),
            };
            let f = fs::File::open(format!("/proc/self/ns/{name}"))
                .ctx(|| format!("opening /proc/self/ns/{name}"))?;
            v.push((*t, OwnedFd::from(f)));
        }
        Ok(SavedNs(v))
    }
    fn restore(self) -> Result<()> {
        for (t, fd) in self.0 {
            namespaces::setns(&fd, t, Path::new("(own namespace)"))?;
        }
        Ok(())
    }
}

/// Everything the init child needs, computed by the parent before the fork.
struct InitCtx<'a> {
    id: &'a str,
    spec: &'a Spec,
    rootfs: &'a Path,
    cgroup: &'a Cgroup,
    /// How the init enters `cgroup` by itself (single-stage only), and whether it was forked
    /// into its cgroup2 directory already.
    self_join: Option<(&'a SelfJoin, bool)>,
    proc: &'a Prepared,
    sync: Channel,
    fifo: OwnedFd,
    console: Option<OwnedFd>,
    joins: &'a namespaces::Joins,
    idmaps: &'a [Option<OwnedFd>],
    new_flags: i32,
    no_pivot: bool,
    no_new_keyring: bool,
    /// Generic path: the child joins user/mount namespaces, unshares, and forks again.
    two_stage: bool,
}

/// Creates the container: everything up to the point where its init waits for `start`.
pub fn create(root: &Root, opts: &CreateOpts) -> Result<Created> {
    let bundle = fs::canonicalize(&opts.bundle)
        .map_err(|e| Error::msg(format!("bundle {}: {e}", opts.bundle.display())))?;
    let spec = config::load(&bundle)?;
    config::validate(&spec, &bundle)?;
    let rootfs = fs::canonicalize(config::rootfs(&spec, &bundle)?)
        .map_err(|e| Error::config("root.path", e.to_string()))?;
    let process_spec = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing"))?;
    if process_spec.terminal().unwrap_or(false)
        && opts.console_socket.is_none()
        && !opts.internal_console
    {
        return Err(Error::msg(
            "process.terminal is true: pass --console-socket so the pty master has somewhere to go",
        ));
    }
    if !process_spec.terminal().unwrap_or(false) && opts.console_socket.is_some() {
        return Err(Error::msg(
            "--console-socket given but process.terminal is false",
        ));
    }
    let seccomp = compile_seccomp(&spec, &root.path().join(".seccomp-cache"))?;
    let mut prepared = Prepared::new(process_spec, "process", seccomp)?;
    prepared.preserve_fds = opts.preserve_fds;
    let cgroups_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    let cgroup = Cgroup::new(cgroups_path.as_deref(), &opts.id)?;
    // A cgroup with processes in it belongs to someone else (another container): using it
    // would change their limits, and undoing a failed create would kill them. runc refuses too.
    let busy = cgroup.pids()?;
    if !busy.is_empty() {
        return Err(Error::config(
            "linux.cgroupsPath",
            format!(
                "the cgroup {} is not empty: {} process(es) found",
                cgroup.path,
                busy.len()
            ),
        ));
    }
    let joins = namespaces::open_joins(&spec)?;
    let new_flags = namespaces::new_flags(&spec);
    if joins.mount.is_some() && new_flags & libc::CLONE_NEWUSER != 0 {
        return Err(Error::config(
            "linux.namespaces",
            "joining a mount namespace by path together with a new user namespace is not supported",
        ));
    }
    let two_stage = joins.user.is_some();

    let dir = root.reserve(&opts.id)?;
    let mut cleanup = Cleanup {
        dir: Some(dir.clone()),
        cgroup: None,
        child: None,
    };

    let mut state = State {
        id: opts.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: utils::rfc3339_nano(SystemTime::now()),
        owner: utils::user_name(rustix::process::geteuid().as_raw()),
        cgroup: cgroup.clone(),
        config: spec.clone(),
    };
    state.save(&dir)?;

    let resources = resources_with_devices(&spec);
    cgroup.create(resources.as_ref())?;
    cleanup.cgroup = Some(&cgroup);

    let fifo_path = dir.join("exec.fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo_path,
        rustix::fs::Mode::from_raw_mode(0o622),
    )
    .ctx(|| format!("creating {}", fifo_path.display()))?;
    // mkfifo honours the umask: set the mode exactly. The container's root (and, through the
    // "others" bits, any user it switches to) must be able to open it for writing.
    rustix::fs::chmod(&fifo_path, rustix::fs::Mode::from_raw_mode(0o622))
        .ctx(|| format!("chmod {}", fifo_path.display()))?;
    let (root_uid, root_gid) = host_ids_of_root(&spec);
    rustix::fs::chown(
        &fifo_path,
        Some(rustix::fs::Uid::from_raw(root_uid)),
        Some(rustix::fs::Gid::from_raw(root_gid)),
    )
    .ctx(|| format!("chown {}", fifo_path.display()))?;
    let fifo = rustix::fs::open(
        &fifo_path,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| format!("opening {}", fifo_path.display()))?;

    let (console, our_console) = if let Some(p) = &opts.console_socket {
        (Some(connect_console(p)?), None)
    } else if opts.internal_console && prepared.terminal {
        let (a, b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .ctx(|| "creating the console socket pair")?;
        (Some(b), Some(a))
    } else {
        (None, None)
    };

    let idmaps = idmap_namespaces(&spec)?;
    let (parent_ch, child_ch) = sync::pair()?;

    // Namespaces joined by path: entered for the clone, left right after, so that hooks and
    // everything else the runtime does stay in the runtime's own namespaces.
    let early: Vec<LinuxNamespaceType> = joins.early.iter().map(|(t, _, _)| *t).collect();
    let new_time = !two_stage && new_flags & libc::CLONE_NEWTIME != 0;
    let mut saved_types = early.clone();
    if new_time && !saved_types.contains(&LinuxNamespaceType::Time) {
        saved_types.push(LinuxNamespaceType::Time);
    }
    let saved = SavedNs::save(&saved_types)?;
    for (t, path, fd) in &joins.early {
        namespaces::setns(fd, *t, path)?;
    }
    if new_time {
        unshare(libc::CLONE_NEWTIME).ctx(|| "creating the time namespace")?;
        namespaces::write_time_offsets(std::process::id() as i32, &spec)?;
    }
    let clone_flags = if two_stage {
        0
    } else {
        new_flags & !(libc::CLONE_NEWCGROUP | libc::CLONE_NEWTIME)
    };
    // The single-stage init moves itself into its cgroup (see `SelfJoin`); the two-stage one
    // forks again in other namespaces, and the runtime moves that grandchild.
    let self_join = if two_stage {
        None
    } else {
        Some(cgroup.prepare_self_join()?)
    };
    let (pid, born_in_cgroup2) = clone_into(
        clone_flags,
        self_join.as_ref().and_then(|j| j.cgroup2_dir()),
    )?;
    if pid == 0 {
        drop(parent_ch);
        drop(our_console);
        let ctx = InitCtx {
            id: &opts.id,
            spec: &spec,
            rootfs: &rootfs,
            cgroup: &cgroup,
            self_join: self_join.as_ref().map(|j| (j, born_in_cgroup2)),
            proc: &prepared,
            sync: child_ch,
            fifo,
            console,
            joins: &joins,
            idmaps: &idmaps,
            new_flags,
            no_pivot: opts.no_pivot,
            no_new_keyring: opts.no_new_keyring,
            two_stage,
        };
        init_main(ctx);
    }
    cleanup.child = Some(pid);
    drop(child_ch);
    drop(console);
    drop(fifo);
    drop(self_join);
    saved.restore()?;

    let mut init_pid = pid;
    if !two_stage {
        if new_flags & libc::CLONE_NEWUSER != 0 {
            namespaces::write_id_maps(pid, &spec)?;
        }
        if let Some(adj) = prepared.oom_score_adj {
            fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
                .ctx(|| format!("process.oomScoreAdj: setting {adj}"))?;
        }
    }
    parent_ch.send(&Msg::Proceed)?;
    if two_stage {
        // The first child joined the user namespace and forked the real init; it sends a
        // pidfd for it, from which we learn its pid in our namespace.
        let fd = parent_ch
            .expect(&Msg::Pid(0))?
            .ok_or_else(|| Error::msg("no pidfd for the container init"))?;
        init_pid = pid_of_pidfd(fd.as_fd())?;
        // SAFETY: reaping the first-stage child.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        cleanup.child = Some(init_pid);
        if let Some(adj) = prepared.oom_score_adj {
            fs::write(format!("/proc/{init_pid}/oom_score_adj"), adj.to_string())
                .ctx(|| format!("process.oomScoreAdj: setting {adj}"))?;
        }
        cgroup.add_task(init_pid)?;
        parent_ch.send(&Msg::Proceed)?;
    }
    state.pid = init_pid;
    state.pid_start = utils::proc_stat(init_pid)
        .map(|s| s.start_time)
        .unwrap_or(0);
    let hook_state = serde_json::to_string(&state.oci_state(Status::Creating))?;
    let created_state = serde_json::to_string(&state.oci_state(Status::Created))?;
    parent_ch.send(&Msg::HookState(created_state.clone()))?;

    let hooks = spec.hooks().as_ref();
    loop {
        match parent_ch.recv()? {
            Some((Msg::CreateRuntimeHooks, _)) => {
                if let Some(h) = hooks {
                    #[allow(deprecated)]
                    let pre = h.prestart().as_deref().unwrap_or(&[]);
                    // Legacy prestart hooks see "created", as with crun and as the OCI
                    // runtime-tools suite (hooks_stdin) requires; createRuntime sees
                    // "creating", as with runc.
                    hooks::run("hooks.prestart", pre, &created_state)?;
                    hooks::run(
                        "hooks.createRuntime",
                        h.create_runtime().as_deref().unwrap_or(&[]),
                        &hook_state,
                    )?;
                }
                parent_ch.send(&Msg::HooksDone)?;
            }
            Some((Msg::SeccompFd, Some(fd))) => send_to_seccomp_agent(&spec, &state, fd)?,
            Some((Msg::Ready, _)) => break,
            Some((Msg::Error(e), _)) => return Err(Error::Msg(e)),
            Some((m, _)) => return Err(Error::msg(format!("sync socket: unexpected {m:?}"))),
            None => {
                return Err(Error::msg(
                    "the container's init exited while the container was being created",
                ));
            }
        }
    }
    let console_master = match our_console {
        Some(s) => Some(sync::recv_fd(s.as_fd())?),
        None => None,
    };
    state.save(&dir)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, init_pid)?;
    }
    cleanup.disarm();
    Ok(Created {
        state,
        dir,
        console: console_master,
    })
}

/// The host uid and gid that the container's root maps to (0 without a user namespace).
fn host_ids_of_root(spec: &Spec) -> (u32, u32) {
    let Some(linux) = spec.linux().as_ref() else {
        return (0, 0);
    };
    if !config::new_namespace(spec, LinuxNamespaceType::User) {
        return (0, 0);
    }
    let find = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.as_deref()
            .unwrap_or(&[])
            .iter()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
            .unwrap_or(0)
    };
    (find(linux.uid_mappings()), find(linux.gid_mappings()))
}

/// Writes a pid file atomically (callers poll for it).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ctx(|| "getcwd")?.join(path)
    };
    utils::write_atomic(&path, pid.to_string().as_bytes())
}

/// The pid (in our pid namespace) of the process a pidfd refers to.
fn pid_of_pidfd(fd: BorrowedFd<'_>) -> Result<i32> {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
        .ctx(|| "reading pidfd info")?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:").and_then(|v| v.trim().parse().ok()))
        .filter(|p: &i32| *p > 0)
        .ok_or_else(|| Error::msg("the container init is not visible from the runtime"))
}

/// Hands a seccomp notify listener to the agent at `linux.seccomp.listenerPath`.
fn send_to_seccomp_agent(spec: &Spec, state: &State, fd: OwnedFd) -> Result<()> {
    let sc = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let Some(path) = sc.and_then(|s| s.listener_path().as_ref()) else {
        return Err(Error::config(
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY is used, so a listener path is required",
        ));
    };
    let msg = serde_json::json!({
        "ociVersion": config::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": state.pid,
        "metadata": sc.and_then(|s| s.listener_metadata().clone()).unwrap_or_default(),
        "state": state.oci_state(Status::Creating),
    });
    let s = UnixStream::connect(path).ctx(|| {
        format!(
            "linux.seccomp.listenerPath: connecting to {}",
            path.display()
        )
    })?;
    sync::send_fd_over(s.as_fd(), &msg.to_string(), fd.as_fd())
}

/// The init child: runs the set-up and execs, or reports the error and exits.
fn init_main(ctx: InitCtx<'_>) -> ! {
    let err = match init_setup(&ctx) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = ctx.sync.send(&Msg::Error(err.to_string()));
    // SAFETY: leaving the child without running the parent's destructors or atexit handlers.
    unsafe { libc::_exit(1) }
}

enum Never {}

fn sethostname(name: &str, domain: bool) -> Result<()> {
    let b = name.as_bytes();
    // SAFETY: a valid buffer and its length.
    let r = unsafe {
        if domain {
            libc::setdomainname(b.as_ptr().cast(), b.len())
        } else {
            libc::sethostname(b.as_ptr().cast(), b.len())
        }
    };
    if r != 0 {
        let field = if domain { "domainname" } else { "hostname" };
        return Err(std::io::Error::last_os_error()).ctx(|| format!("{field}: setting {name:?}"));
    }
    Ok(())
}

fn join_session_keyring(id: &str) -> Result<()> {
    let name = CString::new(format!("_ses.{id}")).unwrap_or_default();
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl with a valid C string.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // Keyrings may be unavailable (ENOSYS) or denied by seccomp on the host: not fatal.
        if !matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EACCES) | Some(libc::EPERM)
        ) {
            return Err(e).ctx(|| "joining a new session keyring");
        }
    }
    Ok(())
}

fn init_setup(ctx: &InitCtx<'_>) -> Result<Never> {
    crate::foreground::reset_signals();
    let spec = ctx.spec;
    if let Some((join, born_in_cgroup2)) = ctx.self_join {
        // First of all, while the runtime writes id maps and the like.
        join.join(born_in_cgroup2)?;
    }
    ctx.sync.expect(&Msg::Proceed)?;

    if ctx.two_stage {
        // Join the user namespace first (for the privileges it grants), then the mount
        // namespace, then create the new ones and fork the real init.
        if let Some((path, fd)) = &ctx.joins.user {
            namespaces::setns(fd, LinuxNamespaceType::User, path)?;
        }
        if let Some((path, fd)) = &ctx.joins.mount {
            namespaces::setns(fd, LinuxNamespaceType::Mount, path)?;
        }
        let flags = ctx.new_flags & !libc::CLONE_NEWCGROUP & !libc::CLONE_NEWUSER;
        // SAFETY: unshare with namespace flags in a single-threaded process.
        if unsafe { libc::unshare(flags) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "creating namespaces");
        }
        if flags & libc::CLONE_NEWTIME != 0 {
            namespaces::write_time_offsets(std::process::id() as i32, spec)?;
        }
        let child = clone(0)?;
        if child != 0 {
            let pidfd = rustix::process::pidfd_open(
                rustix::process::Pid::from_raw(child).ok_or_else(|| Error::msg("bad pid"))?,
                rustix::process::PidfdFlags::empty(),
            )
            .ctx(|| "opening a pidfd for the container init")?;
            ctx.sync.send_with_fd(&Msg::Pid(0), Some(pidfd.as_fd()))?;
            // SAFETY: the first stage is done; the init carries on without us.
            unsafe { libc::_exit(0) };
        }
        ctx.sync.expect(&Msg::Proceed)?;
    } else if let Some((path, fd)) = &ctx.joins.mount {
        namespaces::setns(fd, LinuxNamespaceType::Mount, path)?;
    }
    let hook_state = match ctx.sync.recv()? {
        Some((Msg::HookState(s), _)) => s,
        _ => return Err(Error::msg("sync socket: expected the hook state")),
    };

    if ctx.new_flags & libc::CLONE_NEWUSER != 0 {
        // The maps are written: become root of the new user namespace.
        // SAFETY: plain integer system calls.
        unsafe {
            libc::syscall(libc::SYS_setresgid, 0, 0, 0);
            libc::syscall(libc::SYS_setresuid, 0, 0, 0);
        }
    }
    if ctx.new_flags & libc::CLONE_NEWCGROUP != 0 {
        // Now that we are in our cgroup, it becomes the root of the new cgroup namespace.
        unshare(libc::CLONE_NEWCGROUP).ctx(|| "creating the cgroup namespace")?;
    }
    if !ctx.no_new_keyring {
        join_session_keyring(ctx.id)?;
    }

    let own_mounts = ctx.new_flags & libc::CLONE_NEWNS != 0 && ctx.joins.mount.is_none();
    if own_mounts {
        rootfs::prepare_root(spec, ctx.rootfs)?;
        let setup = rootfs::Setup {
            spec,
            rootfs: ctx.rootfs,
            cgroup: ctx.cgroup,
            new_cgroupns: config::new_namespace(spec, LinuxNamespaceType::Cgroup),
            userns: config::has_namespace(spec, LinuxNamespaceType::User),
            idmap_userns: ctx.idmaps,
        };
        rootfs::mount_all(&setup)?;
    }
    if config::has_namespace(spec, LinuxNamespaceType::Uts) {
        if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            sethostname(h, false)?;
        }
        if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
            sethostname(d, true)?;
        }
    }

    let hooks = spec.hooks().as_ref();
    #[allow(deprecated)]
    let runtime_hooks = hooks.is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    if runtime_hooks {
        ctx.sync.send(&Msg::CreateRuntimeHooks)?;
        ctx.sync.expect(&Msg::HooksDone)?;
    }
    if let Some(h) = hooks.and_then(|h| h.create_container().as_deref()) {
        hooks::run("hooks.createContainer", h, &hook_state)?;
    }

    if own_mounts {
        rootfs::pivot(ctx.rootfs, ctx.no_pivot)?;
    } else if ctx.new_flags & libc::CLONE_NEWNS == 0 && ctx.joins.mount.is_none() {
        // No mount namespace of its own: the container shares the runtime's root.
        tracing::debug!("no mount namespace: the container keeps the host's root");
    }

    if ctx.proc.terminal {
        let pty = tty::open(ctx.proc.console_size)?;
        if own_mounts {
            rootfs::mount_console(pty.slave.as_fd())?;
        }
        let sock = ctx
            .console
            .as_ref()
            .ok_or_else(|| Error::msg("process.terminal: no console socket"))?;
        tty::hand_over(pty, sock.as_fd())?;
    }
    // Sysctls go through /proc/sys, which the default readonlyPaths make read-only: write
    // them first, as runc does.
    rootfs::apply_sysctl(spec)?;
    if own_mounts {
        rootfs::finish(spec)?;
    }
    set_personality(spec)?;
    finish_process(ctx.proc, &ctx.sync)?;

    let program = process::find_program(ctx.proc)?;
    let env = process::final_env(ctx.proc);
    let fifo_path = format!("/proc/self/fd/{}", ctx.fifo.as_raw_fd());
    // Probe the fifo now, while errors still reach the runtime: without a reader, an open
    // that passes the permission check fails with ENXIO instead of blocking.
    match rustix::fs::open(
        fifo_path.as_str(),
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        Ok(_) | Err(rustix::io::Errno::NXIO) => {}
        Err(e) => return Err(e).ctx(|| "opening the exec fifo"),
    }
    ctx.sync.send(&Msg::Ready)?;
    // Wait for `start`: opening the fifo for writing blocks until `start` opens it to read.
    let fd = rustix::fs::open(
        fifo_path.as_str(),
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| "opening the exec fifo")?;
    let mut fifo = fs::File::from(fd);
    fifo.write_all(b"0").ctx(|| "writing to the exec fifo")?;
    let res: Result<()> = (|| {
        if let Some(h) = hooks.and_then(|h| h.start_container().as_deref()) {
            let started = hook_state.replace("\"status\":\"created\"", "\"status\":\"running\"");
            hooks::run("hooks.startContainer", h, &started)?;
        }
        Err(process::exec(&program, ctx.proc, &env))
    })();
    if let Err(e) = res {
        let _ = fifo.write_all(e.to_string().as_bytes());
    }
    // SAFETY: exec failed; leave without unwinding.
    unsafe { libc::_exit(127) }
}

fn set_personality(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        let persona: libc::c_ulong = match p.domain() {
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0x0000,
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
        };
        // SAFETY: personality with a constant.
        if unsafe { libc::personality(persona) } < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "linux.personality");
        }
    }
    Ok(())
}

/// Resource limits, scheduling, umask, identity, capabilities and seccomp, in the order the
/// kernel's permission checks require; shared by init and exec.
fn finish_process(p: &Prepared, sync: &Channel) -> Result<()> {
    process::apply_rlimits(p)?;
    process::apply_scheduling(p)?;
    process::apply_umask(p);
    process::set_no_new_privs(p)?;
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it before dropping it.
    if let Some(sc) = p.seccomp.as_ref().filter(|_| !p.no_new_privileges) {
        install_seccomp(sc, sync)?;
    }
    process::switch_identity(p)?;
    process::enter_cwd(p)?;
    process::seal_fds(p)?;
    // With no_new_privs, install as late as possible so the runtime's own calls are not filtered.
    if let Some(sc) = p.seccomp.as_ref().filter(|_| p.no_new_privileges) {
        install_seccomp(sc, sync)?;
    }
    Ok(())
}

fn install_seccomp(sc: &seccomp::Program, sync: &Channel) -> Result<()> {
    if let Some(fd) = sc.install()? {
        sync.send_with_fd(&Msg::SeccompFd, Some(fd.as_fd()))?;
    }
    Ok(())
}

/// Result of opening a created container's exec fifo.
pub enum StartResult {
    Started,
    Failed(String),
}

/// Releases a created container's init (the `start` half): reads the fifo, removes it, waits
/// until the program was exec'd or failed.
pub fn start(dir: &Path, state: &State) -> Result<StartResult> {
    let fifo_path = dir.join("exec.fifo");
    let pidfd = pidfd_checked(state.pid, state.pid_start).map_err(|_| Error::State {
        id: state.id.clone(),
        status: "stopped".into(),
        reason: "cannot start a container that has stopped".into(),
    })?;
    let fd = rustix::fs::open(
        &fifo_path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::NOENT => Error::State {
            id: state.id.clone(),
            status: "running".into(),
            reason: "cannot start an already running container".into(),
        },
        e => Error::Io {
            what: format!("opening {}", fifo_path.display()),
            err: e.into(),
        },
    })?;
    // Wait for the init's "0" (or its death).
    let mut got = Vec::new();
    loop {
        let mut fds = [
            rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN),
            rustix::event::PollFd::new(&pidfd, rustix::event::PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).ctx(|| "waiting on the exec fifo"),
        }
        let fifo_ready = !fds[0].revents().is_empty();
        let dead = !fds[1].revents().is_empty();
        if fifo_ready {
            let mut buf = [0u8; 4096];
            match rustix::io::read(&fd, &mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    break;
                }
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e).ctx(|| "reading the exec fifo"),
            }
        }
        if dead && !fifo_ready {
            return Err(Error::msg("the container's init exited before start"));
        }
        if dead {
            break;
        }
    }
    let _ = fs::remove_file(&fifo_path);
    // Now read until EOF: the init's end closes on a successful exec; anything more is an error.
    let mut f = fs::File::from(fd);
    set_blocking(f.as_fd())?;
    let _ = f.read_to_end(&mut got);
    if got.first() != Some(&b'0') {
        return Err(Error::msg("the container's init exited before start"));
    }
    if got.len() > 1 {
        return Ok(StartResult::Failed(
            String::from_utf8_lossy(&got[1..]).into_owned(),
        ));
    }
    Ok(StartResult::Started)
}

fn set_blocking(fd: BorrowedFd<'_>) -> Result<()> {
    let fl = rustix::fs::fcntl_getfl(fd).ctx(|| "fcntl")?;
    rustix::fs::fcntl_setfl(fd, fl & !rustix::fs::OFlags::NONBLOCK).ctx(|| "fcntl")
}

/// Runs the poststart hooks of a container that just started.
pub fn poststart(state: &State) {
    if let Some(h) = state
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().as_deref())
    {
        let s = serde_json::to_string(&state.oci_state(Status::Running)).unwrap_or_default();
        hooks::run_warn("hooks.poststart", h, &s);
    }
}

/// Kills what is left of a container and removes its cgroup and state; runs poststop hooks.
pub fn destroy(dir: &Path, state: &State) -> Result<()> {
    if state.init_alive()
        && let Ok(fd) = pidfd_checked(state.pid, state.pid_start)
    {
        let _ = rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL);
        wait_exit(fd.as_fd(), Duration::from_secs(10));
    }
    // Without its own pid namespace, the container's other processes outlive the init.
    let _ = state.cgroup.signal_all(libc::SIGKILL);
    let mut last = Ok(());
    for _ in 0..50 {
        last = state.cgroup.destroy();
        if last.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    last?;
    fs::remove_dir_all(dir).ctx(|| format!("removing {}", dir.display()))?;
    if let Some(h) = state
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststop().as_deref())
    {
        let s = serde_json::to_string(&state.oci_state(Status::Stopped)).unwrap_or_default();
        hooks::run_warn("hooks.poststop", h, &s);
    }
    Ok(())
}

/// Waits up to `t` for the process behind a pidfd to exit.
pub fn wait_exit(fd: BorrowedFd<'_>, t: Duration) -> bool {
    let ts = rustix::event::Timespec {
        tv_sec: t.as_secs() as i64,
        tv_nsec: t.subsec_nanos() as i64,
    };
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    matches!(rustix::event::poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
}

/// Options of `exec`.
pub struct ExecOpts {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub internal_console: bool,
    /// A sub-cgroup (v1 `controller:path` or a plain v2 path) to put the process in.
    pub sub_cgroup: Option<String>,
}

/// A process started by `exec`.
pub struct Executed {
    pub pid: i32,
    pub console: Option<OwnedFd>,
}

/// Starts a new process in a running container.
pub fn exec(root: &Root, state: &State, opts: &ExecOpts) -> Result<Executed> {
    config::validate_process(&opts.process, "process")?;
    let terminal = opts.process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !opts.internal_console {
        return Err(Error::msg(
            "--tty needs --console-socket when the runtime detaches",
        ));
    }
    let seccomp = compile_seccomp(&state.config, &root.path().join(".seccomp-cache"))?;
    let mut prepared = Prepared::new(&opts.process, "process", seccomp)?;
    prepared.preserve_fds = opts.preserve_fds;
    let pidfd = pidfd_checked(state.pid, state.pid_start)?;

    let mut join_flags = 0;
    for t in namespaces::JOIN_ORDER {
        if !namespaces::same_as_self(state.pid, config::ns_name(t)) {
            join_flags |= namespaces::clone_flag(t);
        }
    }
    let (console, our_console) = if let Some(p) = &opts.console_socket {
        (Some(connect_console(p)?), None)
    } else if opts.internal_console && terminal {
        let (a, b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .ctx(|| "creating the console socket pair")?;
        (Some(b), Some(a))
    } else {
        (None, None)
    };
    let (parent_ch, child_ch) = sync::pair()?;

    // pid and time namespaces apply to children: enter them for the fork.
    let for_children = join_flags & (libc::CLONE_NEWPID | libc::CLONE_NEWTIME);
    if for_children != 0 {
        // SAFETY: setns on a valid pidfd.
        if unsafe { libc::setns(pidfd.as_raw_fd(), for_children) } != 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| "joining the container's pid namespace");
        }
    }
    // The process moves itself into the container's cgroup (see `SelfJoin`), unless it goes
    // to a sub-cgroup, which the runtime creates and moves it to.
    let self_join = match &opts.sub_cgroup {
        None => Some(state.cgroup.prepare_self_join()?),
        Some(_) => None,
    };
    let (pid, born_in_cgroup2) = clone_into(0, self_join.as_ref().and_then(|j| j.cgroup2_dir()))?;
    if pid == 0 {
        drop(parent_ch);
        drop(our_console);
        let err = match exec_child(
            &prepared,
            self_join.as_ref().map(|j| (j, born_in_cgroup2)),
            &child_ch,
            pidfd.as_fd(),
            join_flags & !for_children,
            console,
        ) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        let _ = child_ch.send(&Msg::Error(err.to_string()));
        // SAFETY: leaving the child.
        unsafe { libc::_exit(1) };
    }
    drop(child_ch);
    drop(console);
    let kill_child = |pid: i32| {
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    };
    drop(self_join);
    let res: Result<()> = (|| {
        if let Some(sub) = &opts.sub_cgroup {
            state.cgroup.add_task(pid)?;
            add_to_sub_cgroup(&state.cgroup, pid, sub)?;
        }
        parent_ch.send(&Msg::Proceed)?;
        loop {
            match parent_ch.recv()? {
                Some((Msg::SeccompFd, Some(fd))) => {
                    send_to_seccomp_agent(&state.config, state, fd)?
                }
                Some((Msg::Ready, _)) => break,
                Some((Msg::Error(e), _)) => return Err(Error::Msg(e)),
                Some((m, _)) => return Err(Error::msg(format!("sync socket: unexpected {m:?}"))),
                None => return Err(Error::msg("the exec'd process exited during set-up")),
            }
        }
        // After Ready comes either EOF (exec succeeded: the socket was close-on-exec) or an error.
        match parent_ch.recv()? {
            None => Ok(()),
            Some((Msg::Error(e), _)) => Err(Error::Msg(e)),
            Some((m, _)) => Err(Error::msg(format!("sync socket: unexpected {m:?}"))),
        }
    })();
    if let Err(e) = res {
        kill_child(pid);
        return Err(e);
    }
    let console_master = match our_console {
        Some(s) => Some(sync::recv_fd(s.as_fd())?),
        None => None,
    };
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok(Executed {
        pid,
        console: console_master,
    })
}

/// Moves `pid` into a sub-cgroup of the container: `controller:path` (v1) or `path` (v2 and
/// every v1 hierarchy), as `runc exec --cgroup` does.
fn add_to_sub_cgroup(cg: &Cgroup, pid: i32, sub: &str) -> Result<()> {
    let (ctrl, path) = match sub.split_once(':') {
        Some((c, p)) => (Some(c), p),
        None => (None, sub),
    };
    let rel = Path::new(path.trim_start_matches('/'));
    if rel
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(Error::msg(format!(
            "--cgroup {sub}: the path must stay inside the container's cgroup"
        )));
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (name, dir) in &cg.v1 {
        if ctrl.is_none_or(|c| name.split(',').any(|n| n == c)) {
            dirs.push(dir.join(rel));
        }
    }
    if ctrl.is_none()
        && let Some(v2) = &cg.v2
    {
        dirs.push(v2.join(rel));
    }
    if dirs.is_empty() {
        return Err(Error::msg(format!("--cgroup {sub}: no such controller")));
    }
    for d in dirs {
        fs::write(d.join("cgroup.procs"), pid.to_string())
            .ctx(|| format!("--cgroup {sub}: joining {}", d.display()))?;
    }
    Ok(())
}

fn exec_child(
    p: &Prepared,
    self_join: Option<(&SelfJoin, bool)>,
    sync: &Channel,
    pidfd: BorrowedFd<'_>,
    flags: i32,
    console: Option<OwnedFd>,
) -> Result<Never> {
    crate::foreground::reset_signals();
    if let Some((join, born_in_cgroup2)) = self_join {
        join.join(born_in_cgroup2)?;
    }
    sync.expect(&Msg::Proceed)?;
    if flags != 0 {
        // SAFETY: setns on a valid pidfd with namespace flags; joins them all at once.
        if unsafe { libc::setns(pidfd.as_raw_fd(), flags) } != 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| "joining the container's namespaces");
        }
    }
    if p.terminal {
        let pty = tty::open(p.console_size)?;
        let sock = console
            .as_ref()
            .ok_or_else(|| Error::msg("process.terminal: no console socket"))?;
        tty::hand_over(pty, sock.as_fd())?;
    }
    drop(console);
    finish_process(p, sync)?;
    let program = process::find_program(p)?;
    let env = process::final_env(p);
    sync.send(&Msg::Ready)?;
    Err(process::exec(&program, p, &env))
}
