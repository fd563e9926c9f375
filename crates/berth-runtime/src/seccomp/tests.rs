//! Tests against the real kernel: every filter is installed in a forked child, which uses
//! only raw syscalls and reports through its exit status (or a socket), since the test
//! harness is multi-threaded.

#![allow(clippy::unwrap_used)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompFilterFlag};
use serde_json::{Value, json};

use super::*;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Parses an OCI `linux.seccomp` object.
fn spec(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

fn compiled(v: Value) -> Program {
    compile(&spec(v)).unwrap()
}

/// The message of a compile error.
fn compile_err(v: Value) -> String {
    compile(&spec(v)).unwrap_err().to_string()
}

/// A raw syscall: the result, or the errno.
fn sys(nr: libc::c_long, a: [libc::c_long; 3]) -> Result<i64, i32> {
    // SAFETY: the callers pass arguments valid for `nr` (pointers to live buffers or none).
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2]) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(-1))
    } else {
        Ok(r)
    }
}

/// getcwd(2) into a stack buffer.
fn getcwd() -> Result<i64, i32> {
    let mut buf = [0u8; 512];
    sys(
        libc::SYS_getcwd,
        [
            buf.as_mut_ptr() as libc::c_long,
            buf.len() as libc::c_long,
            0,
        ],
    )
}

fn personality(p: u64) -> Result<i64, i32> {
    sys(libc::SYS_personality, [p as libc::c_long, 0, 0])
}

/// socket(2); closes the socket it gets.
fn socket(domain: i32, ty: i32) -> Result<i64, i32> {
    let fd = sys(libc::SYS_socket, [domain.into(), ty.into(), 0])?;
    // SAFETY: closing the fd just created.
    unsafe { libc::close(fd as i32) };
    Ok(fd)
}

/// Exit code for "the call succeeded although it should have failed".
const UNEXPECTED_OK: i32 = 200;
/// Exit code for "installing the filter failed".
const INSTALL_FAILED: i32 = 201;

/// Maps "expected `want`" to an exit code: 0 when met, else the errno seen (or 200).
fn expect_errno(r: Result<i64, i32>, want: i32) -> i32 {
    match r {
        Err(e) if e == want => 0,
        Err(e) => e,
        Ok(_) => UNEXPECTED_OK,
    }
}

/// Maps "expected success" to an exit code: 0, or the errno.
fn expect_ok(r: Result<i64, i32>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e,
    }
}

/// The first non-zero exit code of a list of checks, or 0.
fn first_failure(codes: &[i32]) -> i32 {
    codes.iter().copied().find(|&c| c != 0).unwrap_or(0)
}

/// The raw wait status of a forked child that runs `f` and exits with its result.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `f` (raw syscalls, no allocation) and then _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(250);
        // SAFETY: ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    wait(pid)
}

fn wait(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid");
    status
}

#[track_caller]
fn assert_exit(status: i32, what: &str) {
    assert!(
        libc::WIFEXITED(status),
        "{what}: child did not exit normally (signal {})",
        libc::WTERMSIG(status)
    );
    let code = libc::WEXITSTATUS(status);
    assert_eq!(
        code,
        0,
        "{what}: child reported {code} (as an errno: {}; 100+n: check n failed; \
         200: unexpected success; 201: install failed)",
        std::io::Error::from_raw_os_error(code)
    );
}

#[track_caller]
fn assert_signalled(status: i32, sig: i32, what: &str) {
    assert!(
        libc::WIFSIGNALED(status),
        "{what}: child exited with {} instead of dying by signal {sig}",
        libc::WEXITSTATUS(status)
    );
    assert_eq!(libc::WTERMSIG(status), sig, "{what}: wrong signal");
}

/// In the child: sets no_new_privs and installs `p`; the listener fd if any.
fn child_install(p: &Program) -> Result<Option<OwnedFd>, i32> {
    // SAFETY: plain prctl.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(INSTALL_FAILED);
    }
    p.load().map_err(|_| INSTALL_FAILED)
}

/// Runs `checks` in a child under `p` and asserts they all passed.
#[track_caller]
fn run_under(p: &Program, what: &str, checks: impl FnOnce() -> i32) {
    let status = in_child(|| match child_install(p) {
        Ok(_) => checks(),
        Err(e) => e,
    });
    assert_exit(status, what);
}

/// No core dumps from children killed by SIGSYS.
fn no_core() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain setrlimit.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
}

// ---------------------------------------------------------------------------------------
// A classic BPF interpreter, to check the program's decisions for architectures and
// syscall numbers the test machine cannot execute.
// ---------------------------------------------------------------------------------------

fn run_bpf(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = Vec::with_capacity(64);
    data.extend_from_slice(&nr.to_ne_bytes());
    data.extend_from_slice(&arch.to_ne_bytes());
    data.extend_from_slice(&0x1234u64.to_ne_bytes());
    for a in args {
        data.extend_from_slice(&a.to_ne_bytes());
    }
    let word = |k: u32| {
        let k = k as usize;
        u32::from_ne_bytes(data[k..k + 4].try_into().unwrap())
    };
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        let k = i.k;
        let branch = |c: bool| if c { i.jt as usize } else { i.jf as usize };
        match i.code {
            0x20 => a = word(k),
            0x00 => a = k,
            0x01 => x = k,
            0x60 => a = mem[k as usize],
            0x61 => x = mem[k as usize],
            0x02 => mem[k as usize] = a,
            0x03 => mem[k as usize] = x,
            0x04 => a = a.wrapping_add(k),
            0x14 => a = a.wrapping_sub(k),
            0x54 => a &= k,
            0x44 => a |= k,
            0x5c => a &= x,
            0x07 => x = a,
            0x87 => a = x,
            0x05 => pc += k as usize,
            0x15 => pc += branch(a == k),
            0x25 => pc += branch(a > k),
            0x35 => pc += branch(a >= k),
            0x45 => pc += branch(a & k != 0),
            0x1d => pc += branch(a == x),
            0x2d => pc += branch(a > x),
            0x3d => pc += branch(a >= x),
            0x4d => pc += branch(a & x != 0),
            0x06 => return k,
            0x16 => return a,
            code => panic!(
                "interpreter: unsupported BPF opcode {code:#x} at {}",
                pc - 1
            ),
        }
    }
}

const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const RET_ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

fn native_audit() -> u32 {
    native_arch().unwrap().audit
}

// ---------------------------------------------------------------------------------------
// Docker's default profile, converted the way Docker does for a default container.
// ---------------------------------------------------------------------------------------

/// Docker's default capability set.
const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Docker's default profile (its own format), from the shared reference directory.
fn docker_profile() -> Option<Value> {
    let rel = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/docker-seccomp/default.json"
    );
    [rel, "/work/shared/reference/docker-seccomp/default.json"]
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .map(|b| serde_json::from_slice(&b).unwrap())
}

fn kernel_version() -> (u32, u32) {
    let uts = rustix::system::uname();
    let release = uts.release().to_string_lossy().into_owned();
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|s| s.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn parse_version(v: &str) -> (u32, u32) {
    let mut it = v.split('.').map(|s| s.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Converts a Docker profile to the OCI section Docker would generate on this host
/// (amd64 only) for a container with `caps`.
fn docker_to_oci(profile: &Value, caps: &[&str]) -> Value {
    assert_eq!(
        NATIVE_NAME,
        Some("SCMP_ARCH_X86_64"),
        "conversion written for amd64"
    );
    let (native, goarch) = ("SCMP_ARCH_X86_64", "amd64");
    let kernel = kernel_version();
    let mut arches = vec![json!(native)];
    for m in profile["archMap"].as_array().unwrap() {
        if m["architecture"] == native {
            arches.extend(
                m["subArchitectures"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let mut syscalls = Vec::new();
    for call in profile["syscalls"].as_array().unwrap() {
        let (inc, exc) = (&call["includes"], &call["excludes"]);
        if strs(&exc["arches"]).iter().any(|a| a == goarch)
            || strs(&exc["caps"])
                .iter()
                .any(|c| caps.contains(&c.as_str()))
            || exc["minKernel"]
                .as_str()
                .is_some_and(|v| kernel >= parse_version(v))
        {
            continue;
        }
        let inc_arches = strs(&inc["arches"]);
        if (!inc_arches.is_empty() && !inc_arches.iter().any(|a| a == goarch))
            || !strs(&inc["caps"])
                .iter()
                .all(|c| caps.contains(&c.as_str()))
            || inc["minKernel"]
                .as_str()
                .is_some_and(|v| kernel < parse_version(v))
        {
            continue;
        }
        let mut out = json!({"names": call["names"], "action": call["action"]});
        if !call["errnoRet"].is_null() {
            out["errnoRet"] = call["errnoRet"].clone();
        }
        if call["args"].is_array() {
            out["args"] = call["args"].clone();
        }
        syscalls.push(out);
    }
    json!({
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile["defaultErrnoRet"],
        "architectures": arches,
        "syscalls": syscalls,
    })
}

/// A Docker-shaped profile written for these tests, for when Docker's file is absent:
/// default EPERM, an allow list, and Docker's argument rules for socket, personality and
/// clone, plus clone3 answering ENOSYS.
fn docker_like_fixture() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["read", "write", "openat", "close", "fstat", "newfstatat", "lseek",
                       "mmap", "munmap", "mprotect", "brk", "rt_sigaction", "rt_sigprocmask",
                       "rt_sigreturn", "getpid", "getppid", "gettid", "getcwd", "exit",
                       "exit_group", "wait4", "kill", "tgkill", "uname", "fcntl", "dup",
                       "dup3", "pipe2", "getuid", "geteuid", "getrandom", "futex",
                       "set_robust_list", "arch_prctl", "prlimit64", "ptrace",
                       "futex_requeue", "statx", "landlock_create_ruleset", "mseal",
                       "statmount"],
             "action": "SCMP_ACT_ALLOW"},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 38, "op": "SCMP_CMP_LT"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_GT"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                       "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    })
}

/// What a child can still do under Docker's profile (or the fixture), and what it cannot.
fn ordinary_life() -> i32 {
    match ordinary_checks() {
        Ok(()) => 0,
        Err(tag) => 100 + tag,
    }
}

/// The checks of [`ordinary_life`]; the error is the number of the failed one.
fn ordinary_checks() -> Result<(), i32> {
    let path = c"/proc/self/status";
    let mut buf = [0u8; 256];
    {
        let ok = |r: Result<i64, i32>, tag: i32| r.map_err(|_| tag);
        ok(sys(libc::SYS_getpid, [0; 3]), 1)?;
        ok(getcwd(), 2)?;
        let fd = ok(
            sys(
                libc::SYS_openat,
                [
                    libc::AT_FDCWD.into(),
                    path.as_ptr() as libc::c_long,
                    libc::O_RDONLY.into(),
                ],
            ),
            3,
        )?;
        ok(
            sys(libc::SYS_read, [fd, buf.as_mut_ptr() as libc::c_long, 256]),
            4,
        )?;
        ok(sys(libc::SYS_close, [fd, 0, 0]), 5)?;
        ok(socket(libc::AF_UNIX, libc::SOCK_STREAM), 6)?;
        ok(personality(0xffff_ffff), 7)?;
        // A plain fork is a clone without namespace flags: allowed.
        let child = ok(sys(libc::SYS_clone, [libc::SIGCHLD.into(), 0, 0]), 8)?;
        if child == 0 {
            // SAFETY: the grandchild leaves at once.
            unsafe { libc::_exit(0) };
        }
        let mut st = 0;
        ok(
            sys(
                libc::SYS_wait4,
                [child, &mut st as *mut i32 as libc::c_long, 0],
            ),
            9,
        )?;
        // Denied by the default action (EPERM): namespaces, mount, a netlink socket.
        let denied = |r: Result<i64, i32>, want: i32, tag: i32| {
            if r == Err(want) { Ok(()) } else { Err(tag) }
        };
        denied(
            sys(
                libc::SYS_clone,
                [(libc::CLONE_NEWUSER | libc::SIGCHLD).into(), 0, 0],
            ),
            libc::EPERM,
            10,
        )?;
        denied(
            sys(libc::SYS_unshare, [libc::CLONE_NEWNS.into(), 0, 0]),
            libc::EPERM,
            11,
        )?;
        denied(socket(libc::AF_VSOCK, libc::SOCK_STREAM), libc::EPERM, 12)?;
        denied(personality(3), libc::EPERM, 13)?;
        denied(sys(libc::SYS_mount, [0, 0, 0]), libc::EPERM, 17)?;
        // clone3 answers ENOSYS (Docker's rule), so glibc falls back to clone.
        denied(sys(libc::SYS_clone3, [0, 0, 0]), libc::ENOSYS, 14)?;
        // Newer than libseccomp 2.5.4 (statmount = 457): the stub says ENOSYS.
        denied(sys(457, [0, 0, 0]), libc::ENOSYS, 15)?;
        denied(sys(1000, [0, 0, 0]), libc::ENOSYS, 16)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------

#[test]
fn errno_with_custom_value() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": libc::EOPNOTSUPP}]
    }));
    assert!(!p.notify);
    run_under(&p, "getcwd -> EOPNOTSUPP", || {
        first_failure(&[
            expect_errno(getcwd(), libc::EOPNOTSUPP),
            expect_ok(sys(libc::SYS_getpid, [0; 3])),
        ])
    });
}

#[test]
fn errno_without_value_is_eperm() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]
    }));
    run_under(&p, "getcwd -> EPERM", || {
        expect_errno(getcwd(), libc::EPERM)
    });
}

#[test]
fn default_errno_ret() {
    let base = |extra: Value| {
        let mut v = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["exit_group", "exit", "rt_sigreturn", "getpid"],
                          "action": "SCMP_ACT_ALLOW"}]
        });
        if let Value::Object(m) = extra {
            v.as_object_mut().unwrap().extend(m);
        }
        compiled(v)
    };
    let p = base(json!({"defaultErrnoRet": libc::ENODATA}));
    run_under(&p, "default ERRNO(ENODATA)", || {
        first_failure(&[
            expect_errno(getcwd(), libc::ENODATA),
            expect_ok(sys(libc::SYS_getpid, [0; 3])),
        ])
    });
    let p = base(json!({}));
    run_under(&p, "default ERRNO without value", || {
        expect_errno(getcwd(), libc::EPERM)
    });
}

#[test]
fn kill_process_kills_with_sigsys() {
    for action in [
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
    ] {
        let p = compiled(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": action}]
        }));
        let status = in_child(|| {
            no_core();
            if child_install(&p).is_err() {
                return INSTALL_FAILED;
            }
            let _ = getcwd();
            0
        });
        assert_signalled(status, libc::SIGSYS, action);
    }
}

static TRAP_CODE: AtomicI32 = AtomicI32::new(-1);
static TRAP_NR: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo; for SIGSYS the union holds
    // { void *call_addr; int syscall; unsigned arch; } at offset 16 on 64-bit Linux.
    unsafe {
        TRAP_CODE.store((*info).si_code, Ordering::SeqCst);
        let nr = (info as *const u8).add(16 + size_of::<usize>()) as *const i32;
        TRAP_NR.store(*nr, Ordering::SeqCst);
    }
}

#[test]
fn trap_delivers_sigsys() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_TRAP"}]
    }));
    let status = in_child(|| {
        // SAFETY: installing a handler that only stores to atomics.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigsys as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            if libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) != 0 {
                return 1;
            }
        }
        if child_install(&p).is_err() {
            return INSTALL_FAILED;
        }
        let _ = getcwd();
        const SYS_SECCOMP: i32 = 1;
        if TRAP_CODE.load(Ordering::SeqCst) != SYS_SECCOMP {
            return 2;
        }
        if TRAP_NR.load(Ordering::SeqCst) != libc::SYS_getcwd as i32 {
            return 3;
        }
        0
    });
    assert_exit(status, "trap");
}

#[test]
fn log_allows() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_LOG"}]
    }));
    run_under(&p, "log", || expect_ok(getcwd()));
    // LOG as the default action allows everything too, and needs no -ENOSYS stub.
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_LOG",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7}]
    }));
    run_under(&p, "default log", || {
        first_failure(&[
            expect_ok(getcwd()),
            expect_errno(sys(libc::SYS_getppid, [0; 3]), 7),
        ])
    });
}

#[test]
fn trace_without_tracer_is_enosys() {
    // With no tracer attached the kernel fails SECCOMP_RET_TRACE syscalls with ENOSYS.
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_TRACE", "errnoRet": 5}]
    }));
    run_under(&p, "trace", || expect_errno(getcwd(), libc::ENOSYS));
    let ret = run_bpf(&p.filter, native_audit(), libc::SYS_getcwd as u32, [0; 6]);
    assert_eq!(ret, libc::SECCOMP_RET_TRACE | 5, "trace value");
}

/// Sends `fd` over the unix socket `sock` (SCM_RIGHTS), without allocating.
fn send_fd(sock: RawFd, fd: RawFd) -> bool {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cmsg = [0u64; 8];
    // SAFETY: msghdr over stack buffers; CMSG_* stay within `cmsg`.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(size_of::<RawFd>() as u32) as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
        libc::sendmsg(sock, &msg, 0) == 1
    }
}

/// Receives an fd sent by [`send_fd`].
fn recv_fd(sock: RawFd) -> OwnedFd {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cmsg = [0u64; 8];
    // SAFETY: msghdr over stack buffers; the received fd is ours.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cmsg) as _;
        assert_eq!(libc::recvmsg(sock, &mut msg, 0), 1, "recvmsg");
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(!c.is_null(), "no fd received");
        assert_eq!((*c).cmsg_type, libc::SCM_RIGHTS);
        OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>()))
    }
}

#[test]
fn notify_returns_listener_and_parent_answers() {
    // All flags at once: TSYNC with a listener needs (and gets) TSYNC_ESRCH.
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                  "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    assert!(p.notify);
    let all = FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_TSYNC_ESRCH;
    let supported = kernel::supported_flags();
    if supported & FLAG_WAIT_KILLABLE_RECV != 0 {
        assert_eq!(p.flags, all | FLAG_WAIT_KILLABLE_RECV);
    }

    let mut socks = [0; 2];
    // SAFETY: plain socketpair into a stack array.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            socks.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0, "socketpair");
    // SAFETY: fresh fds we own.
    let (parent_sock, child_sock) = unsafe {
        (
            OwnedFd::from_raw_fd(socks[0]),
            OwnedFd::from_raw_fd(socks[1]),
        )
    };
    let child_raw = child_sock.as_raw_fd();

    // SAFETY: the child only makes raw syscalls, then _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = match child_install(&p) {
            Ok(Some(listener)) => {
                if !send_fd(child_raw, listener.as_raw_fd()) {
                    3
                } else {
                    match sys(libc::SYS_getppid, [0; 3]) {
                        Ok(4242) => 0,
                        Ok(_) => 4,
                        Err(e) => e,
                    }
                }
            }
            Ok(None) => 2,
            Err(e) => e,
        };
        // SAFETY: leaving the child.
        unsafe { libc::_exit(code) };
    }
    drop(child_sock);
    let listener = recv_fd(parent_sock.as_raw_fd());

    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polling one fd for at most 10 s.
    assert_eq!(
        unsafe { libc::poll(&mut pfd, 1, 10_000) },
        1,
        "no notification"
    );
    // SAFETY: SECCOMP_IOCTL_NOTIF_RECV fills a zeroed seccomp_notif.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut req,
        )
    };
    assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    assert_eq!(req.pid as i32, pid, "notifying pid");
    assert_eq!(req.data.nr, libc::SYS_getppid as i32, "notified syscall");
    assert_eq!(req.data.arch, native_audit(), "notified arch");
    let resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 4242,
        error: 0,
        flags: 0,
    };
    // SAFETY: answering the notification just received.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
    assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    assert_exit(wait(pid), "notify");
}

// ---------------------------------------------------------------------------------------
// Argument conditions
// ---------------------------------------------------------------------------------------

#[test]
fn argument_comparison() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ECHILD,
             "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_NE"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EAFNOSUPPORT,
             "args": [{"index": 0, "value": libc::AF_NETLINK, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    run_under(&p, "personality and socket conditions", || {
        first_failure(&[
            expect_ok(personality(0xffff_ffff)),
            expect_errno(personality(8), libc::ECHILD),
            expect_ok(socket(libc::AF_UNIX, libc::SOCK_STREAM)),
            expect_errno(socket(libc::AF_NETLINK, libc::SOCK_RAW), libc::EAFNOSUPPORT),
        ])
    });
}

#[test]
fn every_operator_decides_right() {
    // One rule per operator on personality's argument, checked at the boundaries by the
    // interpreter (the kernel runs the same program; `argument_comparison` shows that).
    type Holds = fn(u64, u64) -> bool;
    let cases: [(&str, u64, Holds); 6] = [
        ("SCMP_CMP_NE", 100, |a, v| a != v),
        ("SCMP_CMP_LT", 100, |a, v| a < v),
        ("SCMP_CMP_LE", 100, |a, v| a <= v),
        ("SCMP_CMP_EQ", 100, |a, v| a == v),
        ("SCMP_CMP_GE", 100, |a, v| a >= v),
        ("SCMP_CMP_GT", 100, |a, v| a > v),
    ];
    let nr = libc::SYS_personality as u32;
    for (op, v, holds) in cases {
        let p = compiled(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9,
                          "args": [{"index": 0, "value": v, "op": op}]}]
        }));
        for a in [0, 99, 100, 101, 1 << 32, u64::MAX] {
            let want = if holds(a, v) {
                libc::SECCOMP_RET_ERRNO | 9
            } else {
                libc::SECCOMP_RET_ALLOW
            };
            let got = run_bpf(&p.filter, native_audit(), nr, [a, 0, 0, 0, 0, 0]);
            assert_eq!(got, want, "{op} {v} on {a:#x}");
        }
    }
}

#[test]
fn masked_eq() {
    // Deny non-blocking sockets: (type & SOCK_NONBLOCK) == SOCK_NONBLOCK.
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
                      "args": [{"index": 1, "value": libc::SOCK_NONBLOCK,
                                "valueTwo": libc::SOCK_NONBLOCK, "op": "SCMP_CMP_MASKED_EQ"}]}]
    }));
    run_under(&p, "masked_eq", || {
        first_failure(&[
            expect_ok(socket(libc::AF_UNIX, libc::SOCK_STREAM)),
            expect_errno(
                socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK),
                libc::EACCES,
            ),
        ])
    });
    // Without valueTwo the masked bits must be zero (Docker's clone rule).
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 0x7e02_0000u64, "op": "SCMP_CMP_MASKED_EQ"}]}]
    }));
    let clone = libc::SYS_clone as u32;
    let allow = run_bpf(
        &p.filter,
        native_audit(),
        clone,
        [libc::SIGCHLD as u64, 0, 0, 0, 0, 0],
    );
    let deny = run_bpf(
        &p.filter,
        native_audit(),
        clone,
        [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0],
    );
    assert_eq!(allow, libc::SECCOMP_RET_ALLOW);
    assert_eq!(deny, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
}

#[test]
fn same_index_conditions_are_ored_distinct_ones_anded() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOMSG,
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOMSG,
             "args": [{"index": 0, "value": libc::AF_UNIX, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": libc::SOCK_DGRAM, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    run_under(&p, "OR on one index, AND across indexes", || {
        first_failure(&[
            expect_errno(personality(1), libc::ENOMSG),
            expect_errno(personality(2), libc::ENOMSG),
            expect_ok(personality(0xffff_ffff)),
            expect_errno(socket(libc::AF_UNIX, libc::SOCK_DGRAM), libc::ENOMSG),
            expect_ok(socket(libc::AF_UNIX, libc::SOCK_STREAM)),
            expect_ok(socket(libc::AF_INET, libc::SOCK_DGRAM)),
        ])
    });
}

// ---------------------------------------------------------------------------------------
// Names, rules, validation
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_syscall_names_are_skipped() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall_at_all", "getcwd", "mseal"],
                      "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG}]
    }));
    run_under(&p, "unknown names", || expect_errno(getcwd(), libc::E2BIG));
    // Names of other architectures' syscalls (libseccomp's pseudo-syscalls) in a filter
    // for the native architecture only are accepted too, and change nothing.
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["chown32", "socketcall", "ipc", "_newselect", "getcwd"],
                      "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG}]
    }));
    run_under(&p, "foreign names", || {
        first_failure(&[
            expect_errno(getcwd(), libc::E2BIG),
            expect_ok(sys(libc::SYS_getpid, [0; 3])),
        ])
    });
}

#[test]
fn rules_equal_to_the_default_are_skipped() {
    // KILL is KILL_THREAD; ERRNO(EPERM) without errnoRet equals the default ERRNO(1).
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "syscalls": [
            {"names": ["exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}
        ]
    }));
    run_under(&p, "redundant rule", || expect_errno(getcwd(), libc::EPERM));
    compiled(json!({
        "defaultAction": "SCMP_ACT_KILL",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_KILL_THREAD"}]
    }));
}

#[test]
fn invalid_specs_name_the_field() {
    let msg = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["getpid"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]
    }));
    assert!(
        msg.contains("linux.seccomp.syscalls[1].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE"),
        "{msg}"
    );
    let msg = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 3}));
    assert!(msg.contains("linux.seccomp.defaultErrnoRet:"), "{msg}");
    let msg = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]
    }));
    assert!(
        msg.contains("syscalls[0].errnoRet: 70000 does not fit"),
        "{msg}"
    );
    let msg = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                               {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    }));
    assert!(
        msg.contains("linux.seccomp.syscalls[0].args[1].index: 6"),
        "{msg}"
    );
    let msg = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd", ""], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert!(
        msg.contains("linux.seccomp.syscalls[0].names[1]: empty"),
        "{msg}"
    );
    let msg = compile_err(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    assert!(
        msg.contains("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY"),
        "{msg}"
    );
    let msg = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    assert!(
        msg.contains("linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY"),
        "{msg}"
    );
    // libseccomp 2.5 lacks loongarch64; newer versions accept it.
    match compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_LOONGARCH64"]
    }))) {
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(
                    "linux.seccomp.architectures[1]: SCMP_ARCH_LOONGARCH64 cannot be filtered"
                ),
                "{msg}"
            );
            assert!(
                !features()
                    .archs
                    .iter()
                    .any(|a| a == "SCMP_ARCH_LOONGARCH64")
            );
        }
        Ok(_) => assert!(
            features()
                .archs
                .iter()
                .any(|a| a == "SCMP_ARCH_LOONGARCH64")
        ),
    }
    // Conflicting actions for one syscall: libseccomp refuses, the error names the name.
    if let Err(e) = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["getcwd"], "action": "SCMP_ACT_KILL"}]
    }))) {
        assert!(
            e.to_string().contains("linux.seccomp.syscalls[1].names[0]"),
            "{e}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------

#[test]
fn unsupported_flag_is_a_clear_error() {
    use LinuxSeccompFilterFlag::*;
    let msg = resolve_flags(
        Some(&[SeccompFilterFlagSpecAllow, SeccompFilterFlagLog]),
        FLAG_SPEC_ALLOW,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains(
            "linux.seccomp.flags[1]: SECCOMP_FILTER_FLAG_LOG is not supported by the running kernel"
        ),
        "{msg}"
    );
    let msg = resolve_flags(Some(&[SeccompFilterFlagTsync]), FLAG_TSYNC, true)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("TSYNC_ESRCH"), "{msg}");
    // An unknown flag never reaches compile: the spec's type refuses it.
    let bad = serde_json::from_value::<LinuxSeccomp>(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]
    }));
    assert!(bad.is_err());
}

#[test]
fn flag_defaults_and_rewrites() {
    use LinuxSeccompFilterFlag::*;
    let all = FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_TSYNC_ESRCH | FLAG_WAIT_KILLABLE_RECV;
    // Absent: SPEC_ALLOW when the kernel has it (runc's default); empty: nothing.
    assert_eq!(resolve_flags(None, all, false).unwrap(), FLAG_SPEC_ALLOW);
    assert_eq!(resolve_flags(None, FLAG_LOG, false).unwrap(), 0);
    assert_eq!(resolve_flags(Some(&[]), all, false).unwrap(), 0);
    // WAIT_KILLABLE_RECV only with a listener; TSYNC with a listener brings TSYNC_ESRCH.
    assert_eq!(
        resolve_flags(Some(&[SeccompFilterFlagWaitKillableRecv]), all, false).unwrap(),
        0
    );
    assert_eq!(
        resolve_flags(
            Some(&[SeccompFilterFlagWaitKillableRecv, SeccompFilterFlagTsync]),
            all,
            true
        )
        .unwrap(),
        FLAG_WAIT_KILLABLE_RECV | FLAG_TSYNC | FLAG_TSYNC_ESRCH
    );
    assert_eq!(
        resolve_flags(Some(&[SeccompFilterFlagTsync]), all, false).unwrap(),
        FLAG_TSYNC
    );
    // Through compile, with this kernel's support.
    let p = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    assert_eq!(p.flags, kernel::supported_flags() & FLAG_SPEC_ALLOW);
    let p = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": []}));
    assert_eq!(p.flags, 0);
}

#[test]
fn flags_install_on_this_kernel() {
    let supported = kernel::supported_flags();
    let names: Vec<&str> = kernel::KNOWN_FLAGS
        .iter()
        .filter(|(n, bit)| supported & bit != 0 && !n.ends_with("WAIT_KILLABLE_RECV"))
        .map(|(n, _)| *n)
        .collect();
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": names,
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3}]
    }));
    run_under(&p, "flags", || expect_errno(getcwd(), 3));
}

#[test]
fn install_without_no_new_privs_or_cap_sys_admin_says_why() {
    let p = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": []}));
    let status = in_child(|| {
        // Drop every capability by becoming nobody, and do not set no_new_privs.
        // SAFETY: plain uid change in the child.
        if unsafe { libc::getuid() } == 0 && unsafe { libc::setresuid(65534, 65534, 65534) } != 0 {
            return 1;
        }
        match p.load() {
            Err(LoadError::Errno(e)) => e,
            Err(LoadError::Tsync(_)) => 2,
            Ok(_) => 3,
        }
    });
    assert!(libc::WIFEXITED(status));
    assert_eq!(libc::WEXITSTATUS(status), libc::EACCES);
    let msg = LoadError::Errno(libc::EACCES).into_error(0).to_string();
    assert!(msg.contains("no_new_privs or CAP_SYS_ADMIN"), "{msg}");
}

// ---------------------------------------------------------------------------------------
// The -ENOSYS stub
// ---------------------------------------------------------------------------------------

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    // getpid is the highest number named that libseccomp knows; mseal (462 on every
    // arch) is beyond libseccomp 2.5.4's table and is skipped.
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getpid", "mseal", "brand_new_syscall"],
                      "action": "SCMP_ACT_ALLOW"}]
    }));
    let gp = libc::SYS_getpid as u32;
    assert_eq!(
        run_bpf(&p.filter, native_audit(), gp, [0; 6]),
        libc::SECCOMP_RET_ALLOW
    );
    assert_eq!(
        run_bpf(&p.filter, native_audit(), gp + 1, [0; 6]),
        RET_ENOSYS
    );
    assert_eq!(
        run_bpf(&p.filter, native_audit(), gp - 1, [0; 6]),
        libc::SECCOMP_RET_ERRNO | libc::EPERM as u32
    );
    // On the real kernel, with what the child needs to exit.
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "syscalls": [{"names": ["exit_group", "exit", "getpid", "mseal"],
                      "action": "SCMP_ACT_ALLOW"}]
    }));
    run_under(&p, "enosys stub", || {
        first_failure(&[
            expect_errno(sys(462, [0, 0, 0]), libc::ENOSYS), // mseal, unknown to libseccomp
            expect_errno(sys(600, [0, 0, 0]), libc::ENOSYS),
            expect_errno(getcwd(), libc::EPERM), // below the highest name: the default
            expect_ok(sys(libc::SYS_getpid, [0; 3])),
        ])
    });
}

#[test]
fn no_stub_when_the_default_already_allows_or_is_enosys() {
    // A high number then gets the default action itself, not the stub's ENOSYS.
    for (default, want) in [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW"}),
            libc::SECCOMP_RET_ALLOW,
        ),
        (
            json!({"defaultAction": "SCMP_ACT_LOG"}),
            libc::SECCOMP_RET_LOG,
        ),
        (
            json!({"defaultAction": "SCMP_ACT_TRACE"}),
            libc::SECCOMP_RET_TRACE | libc::EPERM as u32,
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": libc::ENOSYS}),
            RET_ENOSYS,
        ),
    ] {
        let mut v = default.clone();
        v["syscalls"] = json!([{"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"}]);
        let p = compiled(v);
        assert_eq!(
            run_bpf(&p.filter, native_audit(), 900, [0; 6]),
            want,
            "{default}"
        );
        // libseccomp's program starts by loading the architecture: no stub in front.
        let stubless = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
        assert_eq!(p.filter[0].k, stubless.filter[0].k);
        assert_eq!(p.filter[1].code, stubless.filter[1].code);
    }
    // And KILL_PROCESS / TRAP defaults do get it.
    for action in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_KILL"] {
        let p = compiled(json!({
            "defaultAction": action,
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]
        }));
        assert_eq!(
            run_bpf(&p.filter, native_audit(), 900, [0; 6]),
            RET_ENOSYS,
            "{action}"
        );
    }
}

#[test]
fn stub_covers_every_architecture_of_the_filter() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["getpid", "read", "clone3"], "action": "SCMP_ACT_ALLOW"}]
    }));
    if NATIVE_NAME != Some("SCMP_ARCH_X86_64") {
        return;
    }
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let allow = libc::SECCOMP_RET_ALLOW;
    let x86_64 = bpf::AUDIT_ARCH_X86_64;
    let x32 = bpf::X32_SYSCALL_BIT;
    let cases = [
        // x86_64: getpid 39, clone3 435 is the highest.
        (x86_64, 39, allow),
        (x86_64, 435, allow),
        (x86_64, 436, RET_ENOSYS),
        (x86_64, 100, eperm),
        // i386: getpid 20, clone3 435.
        (AUDIT_ARCH_I386, 20, allow),
        (AUDIT_ARCH_I386, 436, RET_ENOSYS),
        (AUDIT_ARCH_I386, 100, eperm),
        // x32: numbers carry the x32 bit; getpid 39, clone3 435.
        (x86_64, x32 | 39, allow),
        (x86_64, x32 | 435, allow),
        (x86_64, x32 | 600, RET_ENOSYS),
        (x86_64, x32 | 100, eperm),
        // An architecture outside the filter: libseccomp's bad-arch action (kill thread).
        (AUDIT_ARCH_AARCH64, 20, libc::SECCOMP_RET_KILL_THREAD),
        (AUDIT_ARCH_AARCH64, 5000, libc::SECCOMP_RET_KILL_THREAD),
    ];
    for (arch, nr, want) in cases {
        assert_eq!(
            run_bpf(&p.filter, arch, nr, [0; 6]),
            want,
            "arch {arch:#x} nr {nr:#x}"
        );
    }
    // Without x32 in the filter, x32 numbers are left to libseccomp, which kills them.
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_ne!(run_bpf(&p.filter, x86_64, x32 | 600, [0; 6]), RET_ENOSYS);
    assert_eq!(run_bpf(&p.filter, x86_64, 600, [0; 6]), RET_ENOSYS);
}

#[test]
fn stub_layout_for_other_architectures() {
    // s390x also answers ENOSYS for syscall 0 (the multiplexer for unknown numbers);
    // several sections keep their jumps straight.
    let limits = [
        bpf::ArchLimit {
            audit_arch: 0x8000_0016,
            max: Some(400),
            max_x32: None,
        },
        bpf::ArchLimit {
            audit_arch: AUDIT_ARCH_AARCH64,
            max: Some(300),
            max_x32: None,
        },
        bpf::ArchLimit {
            audit_arch: bpf::AUDIT_ARCH_X86_64,
            max: None,
            max_x32: Some(bpf::X32_SYSCALL_BIT | 50),
        },
    ];
    let mut prog = bpf::enosys_stub(&limits).unwrap();
    const FALLTHROUGH: u32 = 0x7fff_1234;
    prog.push(libc::sock_filter {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: FALLTHROUGH,
    });
    let x32 = bpf::X32_SYSCALL_BIT;
    let cases = [
        (0x8000_0016, 0, RET_ENOSYS),
        (0x8000_0016, 400, FALLTHROUGH),
        (0x8000_0016, 401, RET_ENOSYS),
        (AUDIT_ARCH_AARCH64, 0, FALLTHROUGH),
        (AUDIT_ARCH_AARCH64, 301, RET_ENOSYS),
        (bpf::AUDIT_ARCH_X86_64, 9999, FALLTHROUGH),
        (bpf::AUDIT_ARCH_X86_64, x32 | 50, FALLTHROUGH),
        (bpf::AUDIT_ARCH_X86_64, x32 | 51, RET_ENOSYS),
        (AUDIT_ARCH_I386, 9999, FALLTHROUGH),
    ];
    for (arch, nr, want) in cases {
        assert_eq!(
            run_bpf(&prog, arch, nr, [0; 6]),
            want,
            "arch {arch:#x} nr {nr:#x}"
        );
    }
    assert!(bpf::enosys_stub(&[]).unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

#[test]
fn to_bytes_from_bytes_round_trip() {
    let p = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"},
                     {"names": ["exit_group", "getcwd"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let bytes = p.to_bytes();
    let q = Program::from_bytes(&bytes).unwrap();
    assert_eq!(q.flags, p.flags);
    assert_eq!(q.notify, p.notify);
    assert_eq!(q.filter.len(), p.filter.len());
    assert_eq!(q.to_bytes(), bytes);
    for (a, b) in p.filter.iter().zip(&q.filter) {
        assert_eq!((a.code, a.jt, a.jf, a.k), (b.code, b.jt, b.jf, b.k));
    }
    // The decoded program works.
    let q = Program::from_bytes(
        &compiled(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11}]
        }))
        .to_bytes(),
    )
    .unwrap();
    run_under(&q, "decoded program", || expect_errno(getcwd(), 11));

    // Damage is refused.
    let err = |b: &[u8]| Program::from_bytes(b).unwrap_err().to_string();
    assert!(err(&bytes[..bytes.len() - 1]).contains("checksum"));
    assert!(err(&bytes[..10]).contains("too short"));
    let mut flipped = bytes.clone();
    flipped[30] ^= 0x40;
    assert!(err(&flipped).contains("checksum"));
    let mut other = bytes.clone();
    other[0] = b'X';
    assert!(err(&other).contains("not a berth seccomp program"));
    let mut version = bytes.clone();
    version[4] = 99;
    assert!(err(&version).contains("encoding version 99"));
    let foreign = bpf::encode(&p.filter, p.flags, p.notify, native_audit() ^ 1);
    assert!(err(&foreign).contains("compiled for architecture"));
    assert!(cache_salt().starts_with("berth-seccomp/1;libseccomp/"));
}

// ---------------------------------------------------------------------------------------
// Docker's profile
// ---------------------------------------------------------------------------------------

#[test]
fn docker_profile_compiles_and_ordinary_syscalls_run() {
    if NATIVE_NAME != Some("SCMP_ARCH_X86_64") {
        return;
    }
    let oci = match docker_profile() {
        Some(profile) => docker_to_oci(&profile, &DOCKER_CAPS),
        None => {
            eprintln!("Docker's default.json not found: using the Docker-like fixture");
            docker_like_fixture()
        }
    };
    let p = compiled(oci);
    eprintln!(
        "docker profile: {} BPF instructions, flags {:#x}",
        p.filter.len(),
        p.flags
    );
    assert!(!p.notify);
    run_under(&p, "docker profile", ordinary_life);
    // i386 and x32 calls are filtered too (checked by the interpreter).
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    assert_eq!(
        run_bpf(&p.filter, AUDIT_ARCH_I386, 20, [0; 6]),
        libc::SECCOMP_RET_ALLOW
    );
    assert_eq!(
        run_bpf(&p.filter, AUDIT_ARCH_I386, 26, [0; 6]),
        libc::SECCOMP_RET_ALLOW
    ); // ptrace
    assert_eq!(run_bpf(&p.filter, AUDIT_ARCH_I386, 21, [0; 6]), eperm); // mount
    assert_eq!(run_bpf(&p.filter, AUDIT_ARCH_I386, 999, [0; 6]), RET_ENOSYS);
    assert_eq!(
        run_bpf(
            &p.filter,
            bpf::AUDIT_ARCH_X86_64,
            bpf::X32_SYSCALL_BIT | 39,
            [0; 6]
        ),
        libc::SECCOMP_RET_ALLOW
    );
}

#[test]
fn docker_like_fixture_compiles_and_ordinary_syscalls_run() {
    if NATIVE_NAME != Some("SCMP_ARCH_X86_64") {
        return;
    }
    let p = compiled(docker_like_fixture());
    run_under(&p, "docker-like fixture", ordinary_life);
}

/// Times `compile` on Docker's default profile: `cargo test --release -- --ignored
/// --nocapture bench_compile`.
#[test]
#[ignore]
fn bench_compile_docker_profile() {
    let Some(profile) = docker_profile() else {
        eprintln!("Docker's default.json not found");
        return;
    };
    let three = docker_to_oci(&profile, &DOCKER_CAPS);
    let mut native_only = three.clone();
    native_only["architectures"] = json!([NATIVE_NAME]);
    for (what, v) in [("x86_64+x86+x32", three), ("native only", native_only)] {
        let oci = spec(v);
        let mut times = Vec::new();
        let mut len = 0;
        for _ in 0..100 {
            let t = std::time::Instant::now();
            len = compile(&oci).unwrap().filter.len();
            times.push(t.elapsed());
        }
        times.sort();
        let p = compile(&oci).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..100 {
            Program::from_bytes(&p.to_bytes()).unwrap();
        }
        let cached = t.elapsed() / 100;
        eprintln!(
            "{what}: compile median {:?} (min {:?}, max {:?}); {len} instructions; \
             to_bytes+from_bytes {cached:?}",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        );
    }
}

// ---------------------------------------------------------------------------------------
// Features
// ---------------------------------------------------------------------------------------

#[test]
fn features_report() {
    let f = features();
    assert!(f.enabled);
    assert!(f.actions.contains(&"SCMP_ACT_NOTIFY".to_string()));
    assert_eq!(f.operators.len(), 7);
    assert!(f.archs.contains(&NATIVE_NAME.unwrap().to_string()));
    if NATIVE_NAME == Some("SCMP_ARCH_X86_64") {
        assert!(f.archs.contains(&"SCMP_ARCH_X86".to_string()));
        assert!(f.archs.contains(&"SCMP_ARCH_X32".to_string()));
    }
    assert_eq!(f.known_flags.len(), 4);
    // Linux >= 5.19 has all four.
    if kernel_version() >= (5, 19) {
        assert_eq!(f.supported_flags, f.known_flags);
    }
    let json = serde_json::to_value(&f).unwrap();
    for key in [
        "enabled",
        "actions",
        "operators",
        "archs",
        "knownFlags",
        "supportedFlags",
    ] {
        assert!(json.get(key).is_some(), "features.json lacks {key}");
    }
}
