//! berth's default seccomp profile.
//!
//! It blocks what Docker's default profile blocks, so that images behave under berth as they
//! do under Docker: the same default action (EPERM), the same allow-list, the same
//! conditions on arguments, capabilities, architectures and kernel versions. The tests
//! check this against Docker's own profile for many containers and hosts.
//!
//! The profile is a deny-by-default allow-list, built from the tables below:
//!
//! 1. [`ALWAYS_ALLOWED`]: what any program needs (files, memory, processes, signals, time,
//!    sockets, IPC, ...), grouped by theme. Absent from it, and so refused with EPERM
//!    unless a capability brings them back: calls that reach outside the container or
//!    into the kernel (mounts, namespaces, modules, clocks, keyrings, io_uring, BPF, ...),
//!    and obsolete calls with a history of bugs.
//! 2. Calls allowed only for some argument values: `socket` (not AF_ALG nor AF_VSOCK),
//!    `personality` (only the harmless personas) and, without CAP_SYS_ADMIN, `clone`
//!    without namespace flags and `clone3` failing with ENOSYS so libc falls back to clone.
//! 3. [`ARCH_SPECIFIC`]: calls that exist, and are needed, on some architectures only.
//! 4. [`CAPABILITY_GATED`]: calls a capability already guards in the kernel, allowed when
//!    the container has that capability (`docker run --cap-add`).

use super::{
    Action, ArchMapEntry, DockerProfile, Filter, KernelVersion, Operator, SyscallArg, SyscallRule,
};

/// The errno of refused calls: EPERM, what a program expects from a call it is not
/// allowed to make.
const EPERM: u32 = 1;
/// The errno of `clone3` without CAP_SYS_ADMIN: ENOSYS, which tells libc to fall back to
/// `clone`, whose flags the filter can see.
const ENOSYS: u32 = 38;

// ---------------------------------------------------------------------------------------
// 1. Always allowed, by theme
// ---------------------------------------------------------------------------------------

/// Paths and inodes: opening, creating, renaming, removing and inspecting files and
/// directories. Permission checks are the kernel's (and the container's user's) business.
/// `name_to_handle_at` only encodes a handle; opening one needs CAP_DAC_READ_SEARCH.
const FILESYSTEM: &[&str] = &[
    "access",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "creat",
    "faccessat",
    "faccessat2",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "ftruncate",
    "ftruncate64",
    "futimesat",
    "getcwd",
    "getdents",
    "getdents64",
    "lchown",
    "lchown32",
    "link",
    "linkat",
    "listmount",
    "lstat",
    "lstat64",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "name_to_handle_at",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "readlink",
    "readlinkat",
    "rename",
    "renameat",
    "renameat2",
    "rmdir",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "truncate",
    "truncate64",
    "umask",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
];

/// Extended attributes, on paths and on descriptors. Security namespaces are guarded by
/// the kernel (CAP_SYS_ADMIN for `trusted.*`, the LSM for `security.*`).
const XATTRS: &[&str] = &[
    "fgetxattr",
    "flistxattr",
    "fremovexattr",
    "fsetxattr",
    "getxattr",
    "getxattrat",
    "lgetxattr",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "lremovexattr",
    "lsetxattr",
    "removexattr",
    "removexattrat",
    "setxattr",
    "setxattrat",
];

/// Reading, writing and managing open descriptors: plain and vectored I/O, seeking,
/// syncing, locking, splicing between descriptors, and `ioctl` (whose requests the
/// drivers check).
const DESCRIPTOR_IO: &[&str] = &[
    "_llseek",
    "cachestat",
    "close",
    "close_range",
    "copy_file_range",
    "dup",
    "dup2",
    "dup3",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "flock",
    "fsync",
    "ioctl",
    "lseek",
    "pipe",
    "pipe2",
    "pread64",
    "preadv",
    "preadv2",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readv",
    "sendfile",
    "sendfile64",
    "splice",
    "sync",
    "sync_file_range",
    "syncfs",
    "tee",
    "vmsplice",
    "write",
    "writev",
];

/// Waiting on descriptors and the descriptors made to be waited on: poll/select/epoll,
/// eventfd, signalfd, timerfd, inotify, and `fanotify_mark` (useless without
/// `fanotify_init`, which needs CAP_SYS_ADMIN).
const EVENTS: &[&str] = &[
    "_newselect",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "fanotify_mark",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "poll",
    "ppoll",
    "ppoll_time64",
    "pselect6",
    "pselect6_time64",
    "select",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
];

/// Linux native asynchronous I/O (not io_uring, which stays blocked) and I/O priorities.
const ASYNC_IO: &[&str] = &[
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "ioprio_get",
    "ioprio_set",
];

/// The process's own memory: mapping, protecting, locking (bounded by RLIMIT_MEMLOCK),
/// advising, sealing, protection keys, shadow stacks and secret memory.
const MEMORY: &[&str] = &[
    "brk",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mremap",
    "mseal",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "remap_file_pages",
];

/// Processes and threads: starting programs, forking (`clone` is conditional, below),
/// waiting, exiting, process groups and sessions, futexes and the thread-library
/// plumbing, resource limits and usage, capabilities of the process itself, pidfds, and
/// the calls the kernel or libc make on a program's behalf (signal and restart
/// trampolines, uprobe returns).
const PROCESSES: &[&str] = &[
    "capget",
    "capset",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "fork",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "get_robust_list",
    "get_thread_area",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getrlimit",
    "getrusage",
    "getsid",
    "gettid",
    "pidfd_open",
    "pidfd_send_signal",
    "prctl",
    "prlimit64",
    "process_mrelease",
    "restart_syscall",
    "rseq",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setpgid",
    "setrlimit",
    "setsid",
    "times",
    "ugetrlimit",
    "uretprobe",
    "vfork",
    "wait4",
    "waitid",
    "waitpid",
];

/// Signals: sending them (to processes the kernel lets the caller signal), handling,
/// masking and waiting for them, and the alarm.
const SIGNALS: &[&str] = &[
    "alarm",
    "kill",
    "pause",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "sigprocmask",
    "sigreturn",
    "tgkill",
    "tkill",
];

/// Reading clocks, sleeping and the process's timers. `adjtimex` and `clock_adjtime` are
/// here because they also read the clock state; changing it needs CAP_SYS_TIME, which the
/// kernel checks. Setting the clocks is in the CAP_SYS_TIME group.
const TIME: &[&str] = &[
    "adjtimex",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "getitimer",
    "gettimeofday",
    "nanosleep",
    "setitimer",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
];

/// User and group identities. Changing them is guarded by CAP_SETUID / CAP_SETGID.
const CREDENTIALS: &[&str] = &[
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getuid",
    "getuid32",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setuid",
    "setuid32",
];

/// Scheduling policy, priority and CPU affinity; raising priorities needs CAP_SYS_NICE,
/// which the kernel checks.
const SCHEDULING: &[&str] = &[
    "getcpu",
    "getpriority",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "setpriority",
];

/// Using sockets. Creating one (`socket`) is conditional, below; `socketcall` is the
/// multiplexer 32-bit x86 and some other ABIs use for all of these.
const SOCKETS: &[&str] = &[
    "accept",
    "accept4",
    "bind",
    "connect",
    "getpeername",
    "getsockname",
    "getsockopt",
    "listen",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "send",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setsockopt",
    "shutdown",
    "socketcall",
    "socketpair",
];

/// System V IPC (message queues, semaphores, shared memory, and their `ipc` multiplexer)
/// and POSIX message queues; the container has its own IPC namespace.
const IPC: &[&str] = &[
    "ipc",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
];

/// Facts about the system a program may ask for: its name and release, load and memory,
/// random bytes, RISC-V hardware features.
const SYSTEM_INFO: &[&str] = &["getrandom", "riscv_hwprobe", "sysinfo", "uname"];

/// Ways for a program to restrict itself further: its own seccomp filters and Landlock
/// rulesets.
const SELF_SANDBOXING: &[&str] = &[
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "seccomp",
];

/// Every always-allowed group, each becoming one rule, with the comment it carries.
const ALWAYS_ALLOWED: &[(&str, &[&str])] = &[
    ("files and directories", FILESYSTEM),
    ("extended attributes", XATTRS),
    ("I/O on open descriptors", DESCRIPTOR_IO),
    ("waiting for events", EVENTS),
    ("asynchronous I/O", ASYNC_IO),
    ("the process's memory", MEMORY),
    ("processes and threads", PROCESSES),
    ("signals", SIGNALS),
    ("reading clocks and timers", TIME),
    ("user and group identities", CREDENTIALS),
    ("scheduling", SCHEDULING),
    ("using sockets", SOCKETS),
    ("System V and POSIX IPC", IPC),
    ("system information", SYSTEM_INFO),
    ("self-sandboxing", SELF_SANDBOXING),
];

// ---------------------------------------------------------------------------------------
// 2. Allowed for some argument values
// ---------------------------------------------------------------------------------------

/// `AF_ALG`: the kernel crypto API, a large attack surface containers rarely need.
const AF_ALG: u64 = 38;
/// `AF_VSOCK`: host-guest sockets, which would let a container reach a hypervisor's or a
/// VM's services.
const AF_VSOCK: u64 = 40;
// The rules below allow the one family between the two.
const _: () = assert!(AF_VSOCK == AF_ALG + 2);

/// The personas `personality` may set: Linux (0), 32-bit Linux (`PER_LINUX32`, 0x8),
/// either with an old kernel version in uname (`UNAME26`, 0x20000), and 0xffffffff, which
/// only queries. The other flags (`ADDR_NO_RANDOMIZE`, `READ_IMPLIES_EXEC`, ...) weaken
/// the process's hardening.
const PERSONAS: &[u64] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// The clone flags that create namespaces: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
/// NEWPID and NEWNET. Without CAP_SYS_ADMIN a container may clone only without them (user
/// namespaces being the usual road to kernel attack surface).
const NAMESPACE_CLONE_FLAGS: u64 = 0x0002_0000 // CLONE_NEWNS
    | 0x0200_0000 // CLONE_NEWCGROUP
    | 0x0400_0000 // CLONE_NEWUTS
    | 0x0800_0000 // CLONE_NEWIPC
    | 0x1000_0000 // CLONE_NEWUSER
    | 0x2000_0000 // CLONE_NEWPID
    | 0x4000_0000; // CLONE_NEWNET

/// Docker's names of the architectures whose `clone` takes the stack first and the flags
/// second.
const STACK_FIRST_CLONE: &[&str] = &["s390", "s390x"];

/// ptrace and the process_vm calls, allowed from kernel 4.8 on: before it, a traced
/// process could be made to skip its seccomp filter.
const PTRACE_CALLS: &[&str] = &["process_vm_readv", "process_vm_writev", "ptrace"];
/// The first kernel whose seccomp ptrace cannot get around.
const PTRACE_SAFE_KERNEL: KernelVersion = KernelVersion::new(4, 8);

// ---------------------------------------------------------------------------------------
// 3. Architecture-specific
// ---------------------------------------------------------------------------------------

/// Calls only some architectures have, with those architectures (Docker's names).
const ARCH_SPECIFIC: &[(&[&str], &[&str], &str)] = &[
    (
        &["ppc64le"],
        &["swapcontext", "sync_file_range2"],
        "POWER: user context switching and its sync_file_range",
    ),
    (
        &["arm", "arm64"],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "breakpoint",
            "cacheflush",
            "set_tls",
            "sync_file_range2",
        ],
        "ARM: the 32-bit ABI's private calls and argument orders",
    ),
    (
        &["amd64", "x32"],
        &["arch_prctl"],
        "x86-64: setting the FS and GS bases for thread-local storage",
    ),
    (
        &["amd64", "x32", "x86"],
        &["modify_ldt"],
        "x86: local descriptor tables, which 16-bit and Wine code needs",
    ),
    (
        &["s390", "s390x"],
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
        "IBM Z: PCI MMIO access and runtime instrumentation",
    ),
    (
        &["riscv64"],
        &["riscv_flush_icache"],
        "RISC-V: flushing the instruction cache after writing code (JITs)",
    ),
];

// ---------------------------------------------------------------------------------------
// 4. Capability-gated
// ---------------------------------------------------------------------------------------

/// Calls administering the system: mounts and the new mount API, namespaces, host and
/// domain names, quotas, the kernel log, BPF, perf, LSM attributes, fanotify, and clone
/// with namespace flags.
const SYS_ADMIN_CALLS: &[&str] = &[
    "bpf",
    "clone",
    "clone3",
    "fanotify_init",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "lookup_dcookie",
    "lsm_get_self_attr",
    "lsm_list_modules",
    "lsm_set_self_attr",
    "mount",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "perf_event_open",
    "quotactl",
    "quotactl_fd",
    "setdomainname",
    "sethostname",
    "setns",
    "syslog",
    "umount",
    "umount2",
    "unshare",
];

/// Calls reaching into other processes.
const SYS_PTRACE_CALLS: &[&str] = &[
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
];

/// Capabilities, the calls each brings back, and why they are otherwise blocked.
const CAPABILITY_GATED: &[(&str, &[&str], &str)] = &[
    (
        "CAP_DAC_READ_SEARCH",
        &["open_by_handle_at"],
        "opening files by handle bypasses path permission checks (and the mount namespace)",
    ),
    ("CAP_SYS_ADMIN", SYS_ADMIN_CALLS, "system administration"),
    ("CAP_SYS_BOOT", &["reboot"], "rebooting"),
    ("CAP_SYS_CHROOT", &["chroot"], "changing the root directory"),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "finit_module", "init_module"],
        "loading and unloading kernel modules",
    ),
    ("CAP_SYS_PACCT", &["acct"], "process accounting"),
    (
        "CAP_SYS_PTRACE",
        SYS_PTRACE_CALLS,
        "tracing and inspecting other processes",
    ),
    ("CAP_SYS_RAWIO", &["ioperm", "iopl"], "raw I/O port access"),
    (
        "CAP_SYS_TIME",
        &["clock_settime", "clock_settime64", "settimeofday", "stime"],
        "setting the system clocks, which are not namespaced",
    ),
    (
        "CAP_SYS_TTY_CONFIG",
        &["vhangup"],
        "hanging up the terminal",
    ),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        "NUMA memory placement",
    ),
    (
        "CAP_SYSLOG",
        &["syslog"],
        "reading and controlling the kernel log",
    ),
    ("CAP_BPF", &["bpf"], "BPF programs and maps"),
    (
        "CAP_PERFMON",
        &["perf_event_open"],
        "performance monitoring",
    ),
];

// ---------------------------------------------------------------------------------------
// Assembly
// ---------------------------------------------------------------------------------------

/// The native architectures berth knows and the other ABIs their kernels run, so that
/// 32-bit programs in a 64-bit container get the same filter.
const ARCH_MAP: &[(&str, &[&str])] = &[
    ("SCMP_ARCH_X86_64", &["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    ("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM"]),
    (
        "SCMP_ARCH_MIPS64",
        &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"],
    ),
    (
        "SCMP_ARCH_MIPS64N32",
        &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"],
    ),
    (
        "SCMP_ARCH_MIPSEL64",
        &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"],
    ),
    (
        "SCMP_ARCH_MIPSEL64N32",
        &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"],
    ),
    ("SCMP_ARCH_S390X", &["SCMP_ARCH_S390"]),
    ("SCMP_ARCH_RISCV64", &[]),
    ("SCMP_ARCH_LOONGARCH64", &[]),
];

/// berth's default seccomp profile, in Docker's format: resolve it for a container with
/// [`to_oci`](super::to_oci). Its semantics are those of Docker's default profile.
pub fn default_profile() -> DockerProfile {
    let mut rules: Vec<SyscallRule> = ALWAYS_ALLOWED
        .iter()
        .map(|(why, names)| allow(names, why))
        .collect();

    rules.push(
        allow(
            PTRACE_CALLS,
            "tracing, once the kernel keeps seccomp in force under it",
        )
        .if_kernel_at_least(PTRACE_SAFE_KERNEL),
    );

    // Three rules, as conditions within one rule are ANDed: below AF_ALG, between the two,
    // above AF_VSOCK.
    let socket = |op, family| {
        allow(
            &["socket"],
            "creating sockets of any family but AF_ALG and AF_VSOCK",
        )
        .with_arg(0, op, family)
    };
    rules.push(socket(Operator::LessThan, AF_ALG));
    rules.push(socket(Operator::Equal, AF_ALG + 1));
    rules.push(socket(Operator::GreaterThan, AF_VSOCK));

    for &persona in PERSONAS {
        rules.push(
            allow(&["personality"], "the harmless execution domains").with_arg(
                0,
                Operator::Equal,
                persona,
            ),
        );
    }

    for &(arches, names, why) in ARCH_SPECIFIC {
        rules.push(allow(names, why).if_arch(arches));
    }

    for &(cap, names, why) in CAPABILITY_GATED {
        rules.push(allow(names, why).if_cap(cap));
    }

    // Without CAP_SYS_ADMIN: clone only without namespace flags (where the flags are)...
    let plain_clone = |index| {
        allow(&["clone"], "forking without creating namespaces")
            .with_masked_arg(index, NAMESPACE_CLONE_FLAGS, 0)
            .unless_cap("CAP_SYS_ADMIN")
    };
    rules.push(plain_clone(0).unless_arch(STACK_FIRST_CLONE));
    rules.push(plain_clone(1).if_arch(STACK_FIRST_CLONE));
    // ... and clone3, whose flags are behind a pointer the filter cannot follow, fails
    // with ENOSYS so that libc falls back to clone.
    rules.push(
        SyscallRule {
            names: strings(&["clone3"]),
            action: Action::Errno,
            errno_ret: Some(ENOSYS),
            comment: "clone3 hides its flags from the filter: make libc fall back to clone"
                .to_string(),
            ..SyscallRule::default()
        }
        .unless_cap("CAP_SYS_ADMIN"),
    );

    DockerProfile {
        default_action: Some(Action::Errno),
        default_errno_ret: Some(EPERM),
        arch_map: ARCH_MAP
            .iter()
            .map(|(arch, subs)| ArchMapEntry {
                architecture: arch.to_string(),
                sub_architectures: strings(subs),
            })
            .collect(),
        syscalls: rules,
        ..DockerProfile::default()
    }
}

/// Owned copies of `names`.
fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A rule allowing `names`, commented with `why`.
fn allow(names: &[&str], why: &str) -> SyscallRule {
    SyscallRule {
        names: strings(names),
        action: Action::Allow,
        comment: why.to_string(),
        ..SyscallRule::default()
    }
}

/// Builders for the conditions of the default profile's rules.
impl SyscallRule {
    /// Adds the condition `arg[index] op value`.
    fn with_arg(mut self, index: u32, op: Operator, value: u64) -> Self {
        self.args.push(SyscallArg {
            index,
            value,
            value_two: 0,
            op,
        });
        self
    }

    /// Adds the condition `arg[index] & mask == equals`.
    fn with_masked_arg(mut self, index: u32, mask: u64, equals: u64) -> Self {
        self.args.push(SyscallArg {
            index,
            value: mask,
            value_two: equals,
            op: Operator::MaskedEqual,
        });
        self
    }

    /// Only for containers with `cap`.
    fn if_cap(mut self, cap: &str) -> Self {
        self.includes.caps.push(cap.to_string());
        self
    }

    /// Only for containers without `cap`.
    fn unless_cap(mut self, cap: &str) -> Self {
        self.excludes.caps.push(cap.to_string());
        self
    }

    /// Only on hosts of one of `arches`.
    fn if_arch(mut self, arches: &[&str]) -> Self {
        self.includes.arches.extend(strings(arches));
        self
    }

    /// Only on hosts of none of `arches`.
    fn unless_arch(mut self, arches: &[&str]) -> Self {
        self.excludes.arches.extend(strings(arches));
        self
    }

    /// Only on kernels from `version` on.
    fn if_kernel_at_least(mut self, version: KernelVersion) -> Self {
        self.includes = Filter {
            min_kernel: Some(version),
            ..self.includes
        };
        self
    }
}

/// The syscalls allowed whatever the container and host, for tests.
#[cfg(test)]
pub(super) fn always_allowed() -> impl Iterator<Item = &'static str> {
    ALWAYS_ALLOWED
        .iter()
        .flat_map(|(_, names)| names.iter().copied())
}
