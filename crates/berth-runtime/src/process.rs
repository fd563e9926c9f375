//! The last steps before the user's program runs, shared by a container's init and by `exec`:
//! resource limits, identity, capabilities, no_new_privs, seccomp, working directory,
//! environment, file descriptors, and the exec itself.
//!
//! Everything that can be computed before the fork is computed in [`Prepared::new`], in the
//! runtime's own process, so errors in the config are reported before anything is created and
//! the forked child only performs system calls.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{PosixRlimitType, Process};

use crate::caps;
use crate::error::{Context, Error, Result};
use crate::seccomp;

/// The PATH used to find the program when the process environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One resource limit, ready for prlimit(2).
#[derive(Debug, Clone)]
pub struct Rlimit {
    pub resource: libc::__rlimit_resource_t,
    pub soft: u64,
    pub hard: u64,
    pub name: String,
}

/// A process, prepared for the child to become it.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub caps: caps::Sets,
    pub no_new_privileges: bool,
    pub rlimits: Vec<Rlimit>,
    pub seccomp: Option<seccomp::Program>,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub oom_score_adj: Option<i32>,
    pub scheduler: Option<oci_spec::runtime::Scheduler>,
    pub io_priority: Option<oci_spec::runtime::LinuxIOPriority>,
    /// The number of fds beyond stdio passed through (`--preserve-fds`).
    pub preserve_fds: u32,
    /// Where the JSON path of this process in config.json starts (`process`), for messages.
    pub field: String,
}

fn cstring(s: &str, what: impl Fn() -> String) -> Result<CString> {
    CString::new(s).map_err(|_| Error::msg(format!("{}: contains a NUL byte", what())))
}

fn rlimit_resource(t: PosixRlimitType) -> (libc::__rlimit_resource_t, &'static str) {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => (libc::RLIMIT_CPU, "RLIMIT_CPU"),
        RlimitFsize => (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        RlimitData => (libc::RLIMIT_DATA, "RLIMIT_DATA"),
        RlimitStack => (libc::RLIMIT_STACK, "RLIMIT_STACK"),
        RlimitCore => (libc::RLIMIT_CORE, "RLIMIT_CORE"),
        RlimitRss => (libc::RLIMIT_RSS, "RLIMIT_RSS"),
        RlimitNproc => (libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
        RlimitNofile => (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        RlimitMemlock => (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        RlimitAs => (libc::RLIMIT_AS, "RLIMIT_AS"),
        RlimitLocks => (libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        RlimitSigpending => (libc::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        RlimitMsgqueue => (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        RlimitNice => (libc::RLIMIT_NICE, "RLIMIT_NICE"),
        RlimitRtprio => (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        RlimitRttime => (libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    }
}

impl Prepared {
    /// Prepares `p` (the JSON section at `field`). `seccomp` is the container's compiled filter.
    pub fn new(p: &Process, field: &str, seccomp: Option<seccomp::Program>) -> Result<Prepared> {
        let args = p
            .args()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .map(|(i, a)| cstring(a, || format!("{field}.args[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let env = p
            .env()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .map(|(i, e)| cstring(e, || format!("{field}.env[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let rlimits = p
            .rlimits()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|r| {
                let (resource, name) = rlimit_resource(r.typ());
                Rlimit {
                    resource,
                    soft: r.soft(),
                    hard: r.hard(),
                    name: name.to_string(),
                }
            })
            .collect();
        let user = p.user();
        Ok(Prepared {
            args,
            env,
            cwd: p.cwd().clone(),
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask(),
            caps: caps::Sets::from_oci(p.capabilities().as_ref()),
            no_new_privileges: p.no_new_privileges().unwrap_or(false),
            rlimits,
            seccomp,
            terminal: p.terminal().unwrap_or(false),
            console_size: p.console_size().as_ref().map(|b| {
                (
                    b.height().min(u16::MAX as u64) as u16,
                    b.width().min(u16::MAX as u64) as u16,
                )
            }),
            oom_score_adj: p.oom_score_adj(),
            scheduler: p.scheduler().clone(),
            io_priority: *p.io_priority(),
            preserve_fds: 0,
            field: field.to_string(),
        })
    }

    /// The value of `name` in the process environment.
    pub fn getenv(&self, name: &str) -> Option<&[u8]> {
        self.env.iter().find_map(|e| {
            let b = e.as_bytes();
            (b.len() > name.len() && b.starts_with(name.as_bytes()) && b[name.len()] == b'=')
                .then(|| &b[name.len() + 1..])
        })
    }
}

/// Applies the resource limits (before the uid switch, while raising is still allowed).
pub fn apply_rlimits(p: &Prepared) -> Result<()> {
    for (i, r) in p.rlimits.iter().enumerate() {
        let lim = libc::rlimit64 {
            rlim_cur: r.soft,
            rlim_max: r.hard,
        };
        // SAFETY: prlimit64 on ourselves with a valid struct.
        if unsafe { libc::prlimit64(0, r.resource, &lim, std::ptr::null_mut()) } != 0 {
            let e = std::io::Error::last_os_error();
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                " (raising a hard limit needs CAP_SYS_RESOURCE)"
            } else {
                ""
            };
            return Err(Error::msg(format!(
                "{}.rlimits[{i}] ({} soft {} hard {}): {e}{hint}",
                p.field, r.name, r.soft, r.hard
            )));
        }
    }
    Ok(())
}

/// Sets scheduler policy and I/O priority (cheap, and only when asked for).
pub fn apply_scheduling(p: &Prepared) -> Result<()> {
    if let Some(s) = &p.scheduler {
        use oci_spec::runtime::LinuxSchedulerPolicy::*;
        let policy = match s.policy() {
            SchedOther => 0,
            SchedFifo => 1,
            SchedRr => 2,
            SchedBatch => 3,
            SchedIso => 4,
            SchedIdle => 5,
            SchedDeadline => 6,
        };
        let mut flags: u64 = 0;
        for f in s.flags().as_deref().unwrap_or(&[]) {
            use oci_spec::runtime::LinuxSchedulerFlag::*;
            flags |= match f {
                SchedResetOnFork => 0x01,
                SchedFlagReclaim => 0x02,
                SchedFlagDLOverrun => 0x04,
                SchedFlagKeepPolicy => 0x08,
                SchedFlagKeepParams => 0x10,
                SchedFlagUtilClampMin => 0x20,
                SchedFlagUtilClampMax => 0x40,
            };
        }
        #[repr(C)]
        struct SchedAttr {
            size: u32,
            policy: u32,
            flags: u64,
            nice: i32,
            priority: u32,
            runtime: u64,
            deadline: u64,
            period: u64,
        }
        let a = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy,
            flags,
            nice: s.nice().unwrap_or(0),
            priority: s.priority().unwrap_or(0) as u32,
            runtime: s.runtime().unwrap_or(0),
            deadline: s.deadline().unwrap_or(0),
            period: s.period().unwrap_or(0),
        };
        // SAFETY: sched_setattr on ourselves with a sized struct.
        if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0) } != 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("{}.scheduler: sched_setattr", p.field));
        }
    }
    if let Some(io) = &p.io_priority {
        use oci_spec::runtime::IOPriorityClass::*;
        let class: i64 = match io.class() {
            IoprioClassRt => 1,
            IoprioClassBe => 2,
            IoprioClassIdle => 3,
        };
        let prio = (class << 13) | (io.priority() & 0x1fff);
        // SAFETY: ioprio_set(IOPRIO_WHO_PROCESS, self, prio).
        if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, prio) } != 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("{}.ioPriority: ioprio_set", p.field));
        }
    }
    Ok(())
}

/// Whether `setgroups(2)` is denied in our user namespace.
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "deny")
        .unwrap_or(false)
}

/// Drops the bounding set, switches to the process's uid/gid/groups keeping the permitted
/// capabilities, then sets the final capability sets.
pub fn switch_identity(p: &Prepared) -> Result<()> {
    caps::drop_bounding(&p.caps)?;
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    if !setgroups_denied() {
        let groups: Vec<libc::gid_t> = p.additional_gids.clone();
        // SAFETY: a valid array of gids.
        if unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| {
                format!(
                    "{}.user.additionalGids: setgroups {:?}",
                    p.field, p.additional_gids
                )
            });
        }
    }
    // Raw system calls: the process is single-threaded, no need for libc's all-thread dance.
    // SAFETY: setresgid/setresuid with plain integers.
    if unsafe { libc::syscall(libc::SYS_setresgid, p.gid, p.gid, p.gid) } != 0 {
        return Err(std::io::Error::last_os_error())
            .ctx(|| format!("{}.user.gid: setting gid {}", p.field, p.gid));
    }
    // SAFETY: as above.
    if unsafe { libc::syscall(libc::SYS_setresuid, p.uid, p.uid, p.uid) } != 0 {
        return Err(std::io::Error::last_os_error())
            .ctx(|| format!("{}.user.uid: setting uid {}", p.field, p.uid));
    }
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    caps::apply(&p.caps).map_err(|e| Error::msg(format!("{}.capabilities: {e}", p.field)))
}

/// Sets no_new_privs when asked.
pub fn set_no_new_privs(p: &Prepared) -> Result<()> {
    if p.no_new_privileges {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("{}.noNewPrivileges", p.field));
        }
    }
    Ok(())
}

/// Changes to the working directory and makes sure it is inside the container: a directory
/// reached through a leaked host fd (`/proc/self/fd/N`) would let the process escape.
pub fn enter_cwd(p: &Prepared) -> Result<()> {
    std::env::set_current_dir(&p.cwd).map_err(|e| {
        Error::msg(format!(
            "{}.cwd: cannot enter {}: {e}",
            p.field,
            p.cwd.display()
        ))
    })?;
    match rustix::process::getcwd(Vec::new()) {
        Ok(c) if c.as_bytes().first() == Some(&b'/') => Ok(()),
        _ => Err(Error::msg(format!(
            "{}.cwd: {} is outside the container's root",
            p.field,
            p.cwd.display()
        ))),
    }
}

/// Marks every fd above stdio and the preserved ones close-on-exec, and clears close-on-exec
/// on the preserved ones, so the program inherits exactly what it should.
pub fn seal_fds(p: &Prepared) -> Result<()> {
    let first = 3 + p.preserve_fds;
    // SAFETY: close_range with the CLOEXEC flag only changes fd flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        // Kernels before 5.11: walk /proc/self/fd.
        for e in std::fs::read_dir("/proc/self/fd")
            .ctx(|| "listing /proc/self/fd")?
            .flatten()
        {
            if let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok())
                && fd >= first as i32
            {
                // SAFETY: setting FD_CLOEXEC on an fd number; harmless if it was just closed.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
    for fd in 3..first {
        // SAFETY: clearing FD_CLOEXEC on a preserved fd.
        unsafe { libc::fcntl(fd as i32, libc::F_SETFD, 0) };
    }
    Ok(())
}

/// The environment with HOME filled in from the container's /etc/passwd when missing.
pub fn final_env(p: &Prepared) -> Vec<CString> {
    let mut env = p.env.clone();
    if p.getenv("HOME").is_none() {
        let home = home_of(p.uid).unwrap_or_else(|| "/".to_string());
        if let Ok(c) = CString::new(format!("HOME={home}")) {
            env.push(c);
        }
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let data = std::fs::read_to_string("/etc/passwd").ok()?;
    data.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
    })
}

/// Finds the program: a name with a slash is used as is; otherwise PATH is searched in the
/// container, as `execvp` would. Errors read like runc's, which tools match on.
pub fn find_program(p: &Prepared) -> Result<CString> {
    let arg0 = p
        .args
        .first()
        .ok_or_else(|| Error::config(format!("{}.args", p.field), "must not be empty"))?;
    let name = arg0.as_bytes();
    let is_exec = |path: &Path| {
        rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_ok()
            && std::fs::metadata(path)
                .map(|m| m.is_file())
                .unwrap_or(false)
    };
    if name.contains(&b'/') {
        let path = Path::new(OsStr::from_bytes(name));
        return match std::fs::metadata(path) {
            Err(e) => Err(Error::msg(format!(
                "exec: {:?}: {e}",
                path.display().to_string()
            ))),
            Ok(m) if m.is_dir() => Err(Error::msg(format!(
                "exec: {:?}: is a directory",
                path.display().to_string()
            ))),
            Ok(_) if !is_exec(path) => Err(Error::msg(format!(
                "exec: {:?}: permission denied",
                path.display().to_string()
            ))),
            Ok(_) => Ok(arg0.clone()),
        };
    }
    let path_var = p.getenv("PATH").unwrap_or(DEFAULT_PATH.as_bytes());
    for dir in path_var.split(|b| *b == b':') {
        let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
        let mut cand = PathBuf::from(OsStr::from_bytes(dir));
        cand.push(OsStr::from_bytes(name));
        if is_exec(&cand) {
            return CString::new(cand.as_os_str().as_bytes())
                .map_err(|_| Error::msg("program path contains a NUL byte"));
        }
    }
    Err(Error::msg(format!(
        "exec: {:?}: executable file not found in $PATH",
        String::from_utf8_lossy(name)
    )))
}

/// Replaces the process with the program. Returns only on failure.
pub fn exec(program: &CString, p: &Prepared, env: &[CString]) -> Error {
    let mut argv: Vec<*const libc::c_char> = p.args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: NULL-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let e = std::io::Error::last_os_error();
    Error::msg(format!("exec {:?}: {e}", program.to_string_lossy()))
}

/// Applies the process's umask (0022 when it sets none, as runc does).
pub fn apply_umask(p: &Prepared) {
    let m = p.umask.unwrap_or(0o022);
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(m & 0o777));
}
