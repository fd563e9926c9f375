//! Seccomp: turns the OCI `linux.seccomp` section into a BPF program and installs it.
//!
//! The work is split in two so that the container's init process does as little as possible:
//!
//! * [`compile`] runs in the runtime's parent process, before fork. It builds the filter with
//!   libseccomp, exports it as classic BPF, prepends the -ENOSYS stub runc uses (see below)
//!   and returns a [`Program`]: plain instructions plus the seccomp(2) flags to load them with.
//!   A program can be cached with [`Program::to_bytes`] / [`Program::from_bytes`], keyed by a
//!   hash of the seccomp JSON and of [`cache_salt`].
//! * [`Program::install`] runs in the container's init process just before exec. It is a
//!   single seccomp(2) call: no libseccomp, and no allocation unless it fails.
//!
//! Semantics follow the OCI runtime spec, and runc where the spec is silent:
//!
//! * `SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`. `errnoRet` (rules) and `defaultErrnoRet`
//!   (default action) set the errno of `SCMP_ACT_ERRNO` and the trace value of
//!   `SCMP_ACT_TRACE`, EPERM when absent; as the spec requires (and crun does), giving one
//!   for any other action is an error.
//! * The native architecture is always in the filter; `architectures` adds more.
//! * `flags` absent means `SECCOMP_FILTER_FLAG_SPEC_ALLOW` when the kernel supports it (as
//!   runc); `flags: []` means none. A flag the kernel does not support is an error.
//! * Syscall names libseccomp does not know are skipped (logged at debug level): profiles
//!   list syscalls newer than the library.
//! * A rule whose action equals the default action is skipped (libseccomp refuses it).
//! * Conditions on distinct argument indexes are ANDed in one rule; if any index appears
//!   more than once, every condition becomes a rule of its own (so they are ORed), as runc.
//! * `SCMP_CMP_MASKED_EQ` matches `(arg & value) == valueTwo`.
//! * `SCMP_ACT_NOTIFY` can be neither the default action nor the action for `write`: the
//!   init process would block on its own syscalls before it could hand the listener over.
//! * The -ENOSYS stub: unless the default action allows the call anyway (`ALLOW`, `LOG`,
//!   `TRACE`) or already is `ERRNO(ENOSYS)`, a syscall whose number is above the highest one
//!   the profile names (per architecture, counting only names libseccomp knows) fails with
//!   ENOSYS instead of taking the default action, so that programs fall back from syscalls
//!   newer than the profile (glibc from clone3, for instance) instead of failing with EPERM.

mod bpf;
mod kernel;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    ScmpVersion,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};
use serde::Serialize;

use crate::error::Context;
use crate::{Error, Result};

/// `SECCOMP_FILTER_FLAG_TSYNC`: synchronise all threads of the process to the filter.
pub const FLAG_TSYNC: u32 = 1 << 0;
/// `SECCOMP_FILTER_FLAG_LOG`: log every action but `SECCOMP_RET_ALLOW`.
pub const FLAG_LOG: u32 = 1 << 1;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: do not force the speculative store bypass mitigation.
pub const FLAG_SPEC_ALLOW: u32 = 1 << 2;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: return a user-notification listener fd.
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;
/// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`: report TSYNC failure as ESRCH (needed with a listener).
pub const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`: a notifying task waits killably.
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// Every flag a [`Program`] may carry (NEW_LISTENER is added by [`Program::install`]).
const PROGRAM_FLAGS: u32 =
    FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_TSYNC_ESRCH | FLAG_WAIT_KILLABLE_RECV;

/// The most argument conditions a syscall has (and the highest index plus one).
const MAX_ARGS: usize = 6;

/// A compiled seccomp filter, ready to install in the container's init process.
#[derive(Debug, Clone)]
pub struct Program {
    /// The classic-BPF instructions, as the kernel's `struct sock_filter` array.
    pub filter: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` bits to pass to seccomp(2) ([`FLAG_TSYNC`] and friends).
    /// `SECCOMP_FILTER_FLAG_NEW_LISTENER` is not among them: [`Program::install`] adds it
    /// when [`Program::notify`] is set.
    pub flags: u32,
    /// Whether some rule uses SCMP_ACT_NOTIFY, so installing returns a listener fd.
    pub notify: bool,
}

/// One architecture libseccomp can filter, with every name it goes by.
#[derive(Debug)]
struct ArchInfo {
    /// The OCI spelling.
    oci: Arch,
    /// The `SCMP_ARCH_*` name, for messages and `features`.
    name: &'static str,
    /// libseccomp's token.
    scmp: ScmpArch,
    /// The AUDIT_ARCH_* value the kernel reports for its syscalls.
    audit: u32,
    /// x32: reported as x86_64, with the x32 bit in the syscall number.
    x32: bool,
}

macro_rules! arch {
    ($oci:ident, $name:literal, $scmp:ident, $audit:literal) => {
        arch!($oci, $name, $scmp, $audit, false)
    };
    ($oci:ident, $name:literal, $scmp:ident, $audit:literal, $x32:literal) => {
        ArchInfo {
            oci: Arch::$oci,
            name: $name,
            scmp: ScmpArch::$scmp,
            audit: $audit,
            x32: $x32,
        }
    };
}

/// Every architecture of the OCI spec but `SCMP_ARCH_NATIVE`.
static ARCHES: [ArchInfo; 23] = [
    arch!(ScmpArchX86, "SCMP_ARCH_X86", X86, 0x4000_0003),
    arch!(ScmpArchX86_64, "SCMP_ARCH_X86_64", X8664, 0xc000_003e),
    arch!(ScmpArchX32, "SCMP_ARCH_X32", X32, 0xc000_003e, true),
    arch!(ScmpArchArm, "SCMP_ARCH_ARM", Arm, 0x4000_0028),
    arch!(ScmpArchAarch64, "SCMP_ARCH_AARCH64", Aarch64, 0xc000_00b7),
    arch!(ScmpArchMips, "SCMP_ARCH_MIPS", Mips, 0x0000_0008),
    arch!(ScmpArchMips64, "SCMP_ARCH_MIPS64", Mips64, 0x8000_0008),
    arch!(
        ScmpArchMips64n32,
        "SCMP_ARCH_MIPS64N32",
        Mips64N32,
        0xa000_0008
    ),
    arch!(ScmpArchMipsel, "SCMP_ARCH_MIPSEL", Mipsel, 0x4000_0008),
    arch!(
        ScmpArchMipsel64,
        "SCMP_ARCH_MIPSEL64",
        Mipsel64,
        0xc000_0008
    ),
    arch!(
        ScmpArchMipsel64n32,
        "SCMP_ARCH_MIPSEL64N32",
        Mipsel64N32,
        0xe000_0008
    ),
    arch!(ScmpArchPpc, "SCMP_ARCH_PPC", Ppc, 0x0000_0014),
    arch!(ScmpArchPpc64, "SCMP_ARCH_PPC64", Ppc64, 0x8000_0015),
    arch!(ScmpArchPpc64le, "SCMP_ARCH_PPC64LE", Ppc64Le, 0xc000_0015),
    arch!(ScmpArchS390, "SCMP_ARCH_S390", S390, 0x0000_0016),
    arch!(ScmpArchS390x, "SCMP_ARCH_S390X", S390X, 0x8000_0016),
    arch!(ScmpArchParisc, "SCMP_ARCH_PARISC", Parisc, 0x0000_000f),
    arch!(
        ScmpArchParisc64,
        "SCMP_ARCH_PARISC64",
        Parisc64,
        0x8000_000f
    ),
    arch!(ScmpArchRiscv64, "SCMP_ARCH_RISCV64", Riscv64, 0xc000_00f3),
    arch!(
        ScmpArchLoongarch64,
        "SCMP_ARCH_LOONGARCH64",
        Loongarch64,
        0xc000_0102
    ),
    arch!(ScmpArchM68k, "SCMP_ARCH_M68K", M68k, 0x0000_0004),
    arch!(ScmpArchSh, "SCMP_ARCH_SH", Sh, 0x4000_002a),
    arch!(ScmpArchSheb, "SCMP_ARCH_SHEB", Sheb, 0x0000_002a),
];

/// The `SCMP_ARCH_*` name of the architecture this binary runs as (libseccomp's native).
const NATIVE_NAME: Option<&str> = if cfg!(all(target_arch = "x86_64", target_pointer_width = "32"))
{
    Some("SCMP_ARCH_X32")
} else if cfg!(target_arch = "x86_64") {
    Some("SCMP_ARCH_X86_64")
} else if cfg!(target_arch = "x86") {
    Some("SCMP_ARCH_X86")
} else if cfg!(target_arch = "aarch64") {
    Some("SCMP_ARCH_AARCH64")
} else if cfg!(target_arch = "arm") {
    Some("SCMP_ARCH_ARM")
} else if cfg!(target_arch = "riscv64") {
    Some("SCMP_ARCH_RISCV64")
} else if cfg!(target_arch = "s390x") {
    Some("SCMP_ARCH_S390X")
} else if cfg!(target_arch = "loongarch64") {
    Some("SCMP_ARCH_LOONGARCH64")
} else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
    Some("SCMP_ARCH_PPC64LE")
} else if cfg!(target_arch = "powerpc64") {
    Some("SCMP_ARCH_PPC64")
} else if cfg!(target_arch = "powerpc") {
    Some("SCMP_ARCH_PPC")
} else {
    None
};

/// The native architecture, or an error on one this module does not know.
fn native_arch() -> Result<&'static ArchInfo> {
    NATIVE_NAME
        .and_then(|n| ARCHES.iter().find(|a| a.name == n))
        .ok_or_else(|| Error::msg("seccomp: unsupported host architecture"))
}

/// An action with its data, the unit runc compares to skip rules equal to the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    KillThread,
    KillProcess,
    Trap,
    Errno(u16),
    Trace(u16),
    Allow,
    Log,
    Notify,
}

impl Act {
    fn to_scmp(self) -> ScmpAction {
        match self {
            Act::KillThread => ScmpAction::KillThread,
            Act::KillProcess => ScmpAction::KillProcess,
            Act::Trap => ScmpAction::Trap,
            Act::Errno(e) => ScmpAction::Errno(i32::from(e)),
            Act::Trace(v) => ScmpAction::Trace(v),
            Act::Allow => ScmpAction::Allow,
            Act::Log => ScmpAction::Log,
            Act::Notify => ScmpAction::Notify,
        }
    }

    /// The `SECCOMP_RET_*` value, to ask the kernel whether it knows the action.
    fn ret(self) -> u32 {
        match self {
            Act::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Act::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Act::Trap => libc::SECCOMP_RET_TRAP,
            Act::Errno(_) => libc::SECCOMP_RET_ERRNO,
            Act::Trace(_) => libc::SECCOMP_RET_TRACE,
            Act::Allow => libc::SECCOMP_RET_ALLOW,
            Act::Log => libc::SECCOMP_RET_LOG,
            Act::Notify => libc::SECCOMP_RET_USER_NOTIF,
        }
    }
}

/// The spec's name for an action.
fn action_name(a: LinuxSeccompAction) -> &'static str {
    match a {
        LinuxSeccompAction::ScmpActKill => "SCMP_ACT_KILL",
        LinuxSeccompAction::ScmpActKillThread => "SCMP_ACT_KILL_THREAD",
        LinuxSeccompAction::ScmpActKillProcess => "SCMP_ACT_KILL_PROCESS",
        LinuxSeccompAction::ScmpActTrap => "SCMP_ACT_TRAP",
        LinuxSeccompAction::ScmpActErrno => "SCMP_ACT_ERRNO",
        LinuxSeccompAction::ScmpActNotify => "SCMP_ACT_NOTIFY",
        LinuxSeccompAction::ScmpActTrace => "SCMP_ACT_TRACE",
        LinuxSeccompAction::ScmpActLog => "SCMP_ACT_LOG",
        LinuxSeccompAction::ScmpActAllow => "SCMP_ACT_ALLOW",
    }
}

/// Every action the spec defines, sorted, for `features`.
const ACTIONS: [&str; 9] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

/// Every comparison operator the spec defines, sorted, for `features`.
const OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// Converts an action and its optional errno; `at` is the JSON path of the action field,
/// `errno_at` that of the errno field.
fn convert_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    at: &str,
    errno_at: &str,
) -> Result<Act> {
    let data = |default: i32| -> Result<u16> {
        let value = errno_ret.unwrap_or(default as u32);
        u16::try_from(value)
            .map_err(|_| Error::config(errno_at, format!("{value} does not fit in 16 bits")))
    };
    let act = match action {
        LinuxSeccompAction::ScmpActErrno => Act::Errno(data(libc::EPERM)?),
        LinuxSeccompAction::ScmpActTrace => Act::Trace(data(libc::EPERM)?),
        other => {
            if errno_ret.is_some() {
                return Err(Error::config(
                    errno_at,
                    format!(
                        "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not {}",
                        action_name(other)
                    ),
                ));
            }
            match other {
                LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
                    Act::KillThread
                }
                LinuxSeccompAction::ScmpActKillProcess => Act::KillProcess,
                LinuxSeccompAction::ScmpActTrap => Act::Trap,
                LinuxSeccompAction::ScmpActLog => Act::Log,
                LinuxSeccompAction::ScmpActNotify => Act::Notify,
                _ => Act::Allow,
            }
        }
    };
    if !kernel::action_available(act.ret()) {
        return Err(Error::config(
            at,
            format!(
                "{} is not supported by the running kernel",
                action_name(action)
            ),
        ));
    }
    Ok(act)
}

/// Converts one argument condition; `at` is its JSON path.
fn convert_arg(arg: &LinuxSeccompArg, at: &str) -> Result<ScmpArgCompare> {
    let index = arg.index();
    if index >= MAX_ARGS {
        return Err(Error::config(
            format!("{at}.index"),
            format!("{index} is not a syscall argument index (0 to 5)"),
        ));
    }
    let (value, value_two) = (arg.value(), arg.value_two());
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // (arg & value) == valueTwo: libseccomp takes the mask first.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return Ok(ScmpArgCompare::new(
                index as u32,
                ScmpCompareOp::MaskedEqual(value),
                value_two.unwrap_or(0),
            ));
        }
    };
    Ok(ScmpArgCompare::new(index as u32, op, value))
}

/// Turns the conditions of one syscall entry into the condition sets of its rules: one
/// rule ANDing them all, or, if an argument index repeats, one rule per condition (runc).
fn rule_conditions(args: &[LinuxSeccompArg], at: &str) -> Result<Vec<Vec<ScmpArgCompare>>> {
    let mut seen = [0usize; MAX_ARGS];
    let mut conds = Vec::with_capacity(args.len());
    for (k, arg) in args.iter().enumerate() {
        conds.push(convert_arg(arg, &format!("{at}.args[{k}]"))?);
        seen[arg.index()] += 1;
    }
    if conds.is_empty() {
        return Ok(vec![Vec::new()]);
    }
    if seen.iter().any(|&n| n > 1) {
        Ok(conds.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![conds])
    }
}

/// The spec's name for a filter flag, and its bit.
fn flag_bit(flag: LinuxSeccompFilterFlag) -> (&'static str, u32) {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => ("SECCOMP_FILTER_FLAG_LOG", FLAG_LOG),
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ("SECCOMP_FILTER_FLAG_TSYNC", FLAG_TSYNC),
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
            ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", FLAG_SPEC_ALLOW)
        }
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => (
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            FLAG_WAIT_KILLABLE_RECV,
        ),
    }
}

/// Resolves `flags` against the flags the kernel supports (`supported`).
///
/// Absent flags mean SPEC_ALLOW when supported, as in runc; TSYNC with a notify listener
/// needs TSYNC_ESRCH, which is added; WAIT_KILLABLE_RECV without one is dropped, since the
/// kernel refuses it there and it would change nothing.
fn resolve_flags(
    flags: Option<&[LinuxSeccompFilterFlag]>,
    supported: u32,
    notify: bool,
) -> Result<u32> {
    let Some(flags) = flags else {
        return Ok(supported & FLAG_SPEC_ALLOW);
    };
    let mut bits = 0;
    for (i, &flag) in flags.iter().enumerate() {
        let (name, bit) = flag_bit(flag);
        let at = format!("linux.seccomp.flags[{i}]");
        if supported & bit == 0 {
            let why = kernel::flag_refusal(bit)
                .map(|e| format!(" ({})", std::io::Error::from_raw_os_error(e)))
                .unwrap_or_default();
            return Err(Error::config(
                at,
                format!("{name} is not supported by the running kernel{why}"),
            ));
        }
        if bit == FLAG_TSYNC && notify {
            if supported & FLAG_TSYNC_ESRCH == 0 {
                return Err(Error::config(
                    at,
                    "SECCOMP_FILTER_FLAG_TSYNC with SCMP_ACT_NOTIFY rules needs \
                     SECCOMP_FILTER_FLAG_TSYNC_ESRCH, which the running kernel lacks",
                ));
            }
            bits |= FLAG_TSYNC_ESRCH;
        }
        if bit == FLAG_WAIT_KILLABLE_RECV && !notify {
            tracing::debug!("seccomp: {name} ignored: no rule uses SCMP_ACT_NOTIFY");
            continue;
        }
        bits |= bit;
    }
    Ok(bits)
}

/// Phrases a libseccomp error: lower-case, with the errno when there is one.
fn scmp_err(e: &libseccomp::error::SeccompError) -> String {
    let msg = e.to_string();
    let mut chars = msg.chars();
    let msg = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => msg,
    };
    match e.errno() {
        Some(errno) => format!("libseccomp: {msg} ({errno:?})"),
        None => format!("libseccomp: {msg}"),
    }
}

/// Compiles the OCI seccomp section. Errors name the offending field.
///
/// Probes the running kernel (actions and flags), so run it on the machine that installs
/// the program. Nearly all the cost is libseccomp's: for Docker's default profile about
/// 2.5 ms with the native architecture alone and 15-18 ms with x86 and x32 added (x86_64,
/// libseccomp 2.5.4), which is why programs are worth caching ([`Program::to_bytes`]).
pub fn compile(spec: &LinuxSeccomp) -> Result<Program> {
    let native = native_arch()?;
    let default = convert_action(
        spec.default_action(),
        spec.default_errno_ret(),
        "linux.seccomp.defaultAction",
        "linux.seccomp.defaultErrnoRet",
    )?;
    if default == Act::Notify {
        return Err(Error::config(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }

    let mut ctx = ScmpFilterContext::new(default.to_scmp())
        .map_err(|e| Error::msg(format!("seccomp: creating the filter: {}", scmp_err(&e))))?;

    // The filter's architectures: the native one, then those the spec adds.
    let mut arches: Vec<&'static ArchInfo> = vec![native];
    for (i, &arch) in spec.architectures().iter().flatten().enumerate() {
        if arch == Arch::ScmpArchNative {
            continue;
        }
        let at = format!("linux.seccomp.architectures[{i}]");
        let info = ARCHES
            .iter()
            .find(|a| a.oci == arch)
            .ok_or_else(|| Error::config(&at, "unknown architecture"))?;
        if arches.iter().any(|a| a.scmp == info.scmp) {
            continue;
        }
        ctx.add_arch(info.scmp).map_err(|e| {
            Error::config(
                &at,
                format!("{} cannot be filtered: {}", info.name, scmp_err(&e)),
            )
        })?;
        arches.push(info);
    }

    let syscalls = spec.syscalls().as_deref().unwrap_or_default();
    let mut notify = false;
    let mut rules = 0usize;
    // Every name libseccomp knows, rule added or not, for the -ENOSYS stub.
    let mut known: Vec<&str> = Vec::new();
    for (i, sc) in syscalls.iter().enumerate() {
        let at = format!("linux.seccomp.syscalls[{i}]");
        let act = convert_action(
            sc.action(),
            sc.errno_ret(),
            &format!("{at}.action"),
            &format!("{at}.errnoRet"),
        )?;
        let conditions = rule_conditions(sc.args().as_deref().unwrap_or_default(), &at)?;
        for (j, name) in sc.names().iter().enumerate() {
            let name_at = || format!("{at}.names[{j}]");
            if name.is_empty() {
                return Err(Error::config(name_at(), "empty syscall name"));
            }
            if act == Act::Notify {
                if name == "write" {
                    return Err(Error::config(
                        name_at(),
                        "SCMP_ACT_NOTIFY cannot be used for write",
                    ));
                }
                notify = true;
            }
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                tracing::debug!("seccomp: unknown syscall {name:?} ignored");
                continue;
            };
            known.push(name);
            if act == default {
                continue;
            }
            for conds in &conditions {
                ctx.add_rule_conditional(act.to_scmp(), nr, conds)
                    .map_err(|e| {
                        Error::config(
                            name_at(),
                            format!("cannot add the rule for {name}: {}", scmp_err(&e)),
                        )
                    })?;
                rules += 1;
            }
        }
    }

    // A binary tree of syscalls for long rule sets, as runc does (libseccomp 2.5 misbuilds
    // it for an empty rule set, hence the threshold).
    if rules > 32
        && let Err(e) = ctx.set_ctl_optimize(2)
    {
        tracing::debug!(
            "seccomp: binary tree optimisation unavailable: {}",
            scmp_err(&e)
        );
    }

    let flag_list = spec.flags().as_deref();
    let flags = resolve_flags(flag_list, kernel::supported_flags(), notify)?;
    if notify && kernel::supported_flags() & FLAG_NEW_LISTENER == 0 {
        return Err(Error::config(
            "linux.seccomp.syscalls",
            "SCMP_ACT_NOTIFY needs seccomp user notification, which the running kernel lacks",
        ));
    }

    let mut filter = enosys_stub(default, &arches, &known)?;
    filter.extend(export(&ctx)?);
    if filter.len() > libc::BPF_MAXINSNS as usize {
        return Err(Error::config(
            "linux.seccomp",
            format!(
                "the filter compiles to {} BPF instructions, more than the kernel's {}",
                filter.len(),
                libc::BPF_MAXINSNS
            ),
        ));
    }
    Ok(Program {
        filter,
        flags,
        notify,
    })
}

/// The -ENOSYS stub for a filter with default action `default` over `arches`, given the
/// syscall names of the profile that libseccomp knows (see the module docs).
fn enosys_stub(
    default: Act,
    arches: &[&ArchInfo],
    known: &[&str],
) -> Result<Vec<libc::sock_filter>> {
    if matches!(default, Act::Allow | Act::Log | Act::Trace(_))
        || default == Act::Errno(libc::ENOSYS as u16)
    {
        return Ok(Vec::new());
    }
    let mut limits: Vec<bpf::ArchLimit> = Vec::new();
    for arch in arches {
        // Pseudo-syscalls (numbers for names absent on this arch) are negative: skipped.
        let max = known
            .iter()
            .filter_map(|name| ScmpSyscall::from_name_by_arch(name, arch.scmp).ok())
            .filter_map(|nr| u32::try_from(i32::from(nr)).ok())
            .max();
        let Some(max) = max else {
            tracing::debug!("seccomp: no syscall of the profile exists on {}", arch.name);
            continue;
        };
        let limit = match limits.iter_mut().position(|l| l.audit_arch == arch.audit) {
            Some(i) => &mut limits[i],
            None => {
                limits.push(bpf::ArchLimit {
                    audit_arch: arch.audit,
                    ..Default::default()
                });
                let last = limits.len() - 1;
                &mut limits[last]
            }
        };
        if arch.x32 {
            limit.max_x32 = Some(max);
        } else {
            limit.max = Some(max);
        }
    }
    bpf::enosys_stub(&limits)
}

/// Exports the filter's BPF through a memfd (which, unlike a pipe, cannot fill up).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    let fd = rustix::fs::memfd_create("berth-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .ctx(|| "seccomp: creating a memfd for the BPF program")?;
    ctx.export_bpf(&fd).map_err(|e| {
        Error::msg(format!(
            "seccomp: exporting the BPF program: {}",
            scmp_err(&e)
        ))
    })?;
    let mut file = File::from(fd);
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .ctx(|| "seccomp: reading the exported BPF program")?;
    bpf::parse_exported(&bytes)
}

/// Why loading a program failed, kept free of allocations so that it can be inspected in a
/// child after fork; [`LoadError::into_error`] phrases it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadError {
    /// seccomp(2) failed with this errno.
    Errno(i32),
    /// SECCOMP_FILTER_FLAG_TSYNC could not synchronise this thread.
    Tsync(i64),
}

impl LoadError {
    /// Phrases the failure for the user.
    pub(crate) fn into_error(self, flags: u32) -> Error {
        match self {
            LoadError::Tsync(tid) => Error::msg(format!(
                "seccomp: thread {tid} could not be synchronised to the filter \
                 (SECCOMP_FILTER_FLAG_TSYNC)"
            )),
            LoadError::Errno(e) => {
                let what = match e {
                    libc::EACCES => "seccomp: loading a filter needs no_new_privs or \
                                     CAP_SYS_ADMIN (set no_new_privs first, or load the \
                                     filter while the process still has CAP_SYS_ADMIN)"
                        .to_string(),
                    libc::EINVAL => {
                        format!("seccomp: the kernel refused the filter or its flags {flags:#x}")
                    }
                    libc::ENOMEM => "seccomp: loading the filter: the process's filters \
                                     exceed the kernel's total size limit"
                        .to_string(),
                    _ => format!("seccomp: loading the filter with flags {flags:#x}"),
                };
                Error::Io {
                    what,
                    err: std::io::Error::from_raw_os_error(e),
                }
            }
        }
    }
}

impl Program {
    /// Installs the filter on the calling thread (process); returns the notify listener fd
    /// when the filter has notify rules.
    ///
    /// One seccomp(SECCOMP_SET_MODE_FILTER) call with [`Program::flags`], plus
    /// SECCOMP_FILTER_FLAG_NEW_LISTENER when [`Program::notify`] is set: no libseccomp and
    /// no allocation on success, so it is safe right after fork. The caller must first set
    /// no_new_privs or still hold CAP_SYS_ADMIN; otherwise the kernel refuses (EACCES) and
    /// the error says so.
    pub fn install(&self) -> Result<Option<OwnedFd>> {
        self.load().map_err(|e| e.into_error(self.load_flags()))
    }

    /// The flags seccomp(2) is called with.
    fn load_flags(&self) -> u32 {
        if self.notify {
            self.flags | FLAG_NEW_LISTENER
        } else {
            self.flags
        }
    }

    /// [`Program::install`] without phrasing the error: never allocates.
    pub(crate) fn load(&self) -> std::result::Result<Option<OwnedFd>, LoadError> {
        let ret =
            kernel::set_mode_filter(&self.filter, self.load_flags()).map_err(LoadError::Errno)?;
        if self.notify {
            let fd = i32::try_from(ret).map_err(|_| LoadError::Errno(libc::EBADF))?;
            // SAFETY: with NEW_LISTENER the kernel returns a fresh fd that nothing else owns.
            Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
        } else if ret == 0 {
            Ok(None)
        } else {
            Err(LoadError::Tsync(ret))
        }
    }

    /// Encodes the program for a cache: a versioned, checksummed, little-endian record
    /// holding the native architecture, the flags, the notify bit and the instructions.
    pub fn to_bytes(&self) -> Vec<u8> {
        let audit = native_arch().map(|a| a.audit).unwrap_or(0);
        bpf::encode(&self.filter, self.flags, self.notify, audit)
    }

    /// Decodes what [`Program::to_bytes`] wrote. Fails on anything else, on another
    /// encoding version, on damage (checksum) and on a program for another architecture.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program> {
        let (filter, flags, notify) = bpf::decode(bytes, native_arch()?.audit, PROGRAM_FLAGS)?;
        Ok(Program {
            filter,
            flags,
            notify,
        })
    }
}

/// What a cache of compiled programs must fold into its key besides the seccomp JSON: the
/// encoding version, the libseccomp version and the running kernel (which decide the
/// compiled code and the flags). Entries under another salt must not be used.
pub fn cache_salt() -> String {
    let lib = ScmpVersion::current()
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "unknown".into());
    let uts = rustix::system::uname();
    format!(
        "berth-seccomp/{};libseccomp/{lib};{} {} {}",
        bpf::FORMAT_VERSION,
        uts.release().to_string_lossy(),
        uts.version().to_string_lossy(),
        uts.machine().to_string_lossy(),
    )
}

/// What this build supports, for `berth-runtime features`: the OCI features.json
/// `linux.seccomp` object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    /// Whether seccomp filters can be used: this build has seccomp and the kernel runs them.
    pub enabled: bool,
    /// The actions recognised (the kernel may lack some; compile says so).
    pub actions: Vec<String>,
    /// The argument comparison operators recognised.
    pub operators: Vec<String>,
    /// The architectures the linked libseccomp can filter.
    pub archs: Vec<String>,
    /// The filter flags recognised.
    pub known_flags: Vec<String>,
    /// The filter flags the running kernel supports.
    pub supported_flags: Vec<String>,
}

/// Reports seccomp support.
pub fn features() -> Features {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let enabled = kernel::seccomp_available();
    let mut archs: Vec<String> = ARCHES
        .iter()
        .filter(|a| {
            ScmpFilterContext::new(ScmpAction::Allow)
                .and_then(|mut ctx| ctx.add_arch(a.scmp).map(|_| ()))
                .is_ok()
        })
        .map(|a| a.name.to_string())
        .collect();
    // The native architecture is in every filter already (add_arch says EEXIST).
    if let Ok(native) = native_arch()
        && !archs.iter().any(|a| a == native.name)
    {
        archs.push(native.name.to_string());
    }
    archs.sort();
    let supported = if enabled {
        kernel::supported_flags()
    } else {
        0
    };
    Features {
        enabled,
        actions: strings(&ACTIONS),
        operators: strings(&OPERATORS),
        archs,
        known_flags: kernel::KNOWN_FLAGS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect(),
        supported_flags: kernel::KNOWN_FLAGS
            .iter()
            .filter(|(_, bit)| supported & bit != 0)
            .map(|(n, _)| n.to_string())
            .collect(),
    }
}
