//! Seccomp profiles in Docker's format, and their conversion to the OCI `linux.seccomp`
//! section that berth's runtime installs.
//!
//! `docker run --security-opt seccomp=profile.json` takes a profile that is more than an OCI
//! seccomp section: its rules may depend on the container and the host, so that one file
//! serves every container. This module reads that format ([`parse_profile`]), resolves it for
//! one container ([`to_oci`]) and provides berth's built-in default ([`default_profile`]),
//! which blocks the same syscalls as Docker's.
//!
//! # The format
//!
//! A [`DockerProfile`] has the OCI fields (`defaultAction`, `defaultErrnoRet`,
//! `architectures`, `flags`, `listenerPath`, `listenerMetadata`) plus:
//!
//! * `archMap`: architectures per native architecture. Only the entry whose `architecture`
//!   is the host's is used: it and its `subArchitectures` become the OCI `architectures`
//!   (on x86_64: `SCMP_ARCH_X86_64`, `SCMP_ARCH_X86`, `SCMP_ARCH_X32`). It cannot be
//!   combined with `architectures`.
//! * per rule, `includes` and `excludes` filters ([`Filter`]) on the container's
//!   capabilities, the host's architecture and the host's kernel version, a free-text
//!   `comment`, and the legacy single `name` instead of `names`.
//!
//! # Resolution, as Docker does it
//!
//! Rules keep their order. A rule is dropped when any of these holds:
//!
//! * `excludes.arches` names the host's architecture;
//! * `excludes.caps` names any capability the container has;
//! * `excludes.minKernel` is at most the host's kernel version;
//! * `includes.arches` is non-empty and does not name the host's architecture;
//! * `includes.caps` names a capability the container lacks (all are needed);
//! * `includes.minKernel` is above the host's kernel version.
//!
//! Architectures in filters use Docker's (Go's) spelling: `amd64`, `arm64`, `x86`, `arm`,
//! `ppc64le`, `s390x`, `riscv64`, … ([`HostArch::docker_name`]). Kernel versions are
//! `"<major>.<minor>"` and compare on those two numbers only. Capabilities are compared as
//! `CAP_…` names; the container's are normalised to that form (`chown` → `CAP_CHOWN`).
//! Docker tests the capability filters against the container's bounding set, which for the
//! containers it creates is also the effective set: pass that set in [`Context`].
//!
//! Where Docker only passes a value on for runc to refuse later, [`to_oci`] refuses it at
//! once, naming the field: an `errnoRet` on an action other than `SCMP_ACT_ERRNO` or
//! `SCMP_ACT_TRACE`, an argument index above 5, a rule without syscall names, and (for the
//! architectures and flags that end up in the output) a name oci-spec does not know.

mod default;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use serde::de::IntoDeserializer;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use default::default_profile;

/// What can go wrong reading or converting a profile. Every message starts with
/// `seccomp profile:` and names the field at fault (`syscalls[3].action`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The document is not JSON, or a value has the wrong type or an unknown name.
    #[error("seccomp profile: {}", located(field, reason))]
    Parse {
        /// Where in the document, as `syscalls[3].args[0].op`; empty for the document
        /// itself (a syntax error).
        field: String,
        /// What is wrong, with serde's line and column when it has them.
        reason: String,
    },
    /// The profile is well-formed but cannot be turned into an OCI section.
    #[error("seccomp profile: {field}: {reason}")]
    Invalid {
        /// The field at fault, as `syscalls[3].errnoRet`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The host could not be described (unknown architecture, unreadable kernel version).
    #[error("seccomp profile: {reason}")]
    Host {
        /// What could not be found out.
        reason: String,
    },
}

/// `field: reason`, or just `reason` when the error is about the document as a whole.
fn located(field: &str, reason: &str) -> String {
    if field.is_empty() {
        reason.to_string()
    } else {
        format!("{field}: {reason}")
    }
}

/// An [`Error::Invalid`] for `field`.
fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// This module's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------------------
// The format
// ---------------------------------------------------------------------------------------

/// A seccomp profile as `docker run --security-opt seccomp=…` and dockerd's
/// `--seccomp-profile` take it. Unknown fields are ignored, as Docker does.
///
/// Serializing it gives a profile Docker reads back (empty fields are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerProfile {
    /// The action for syscalls no rule matches. Absent (or `""`) only in a profile that
    /// disables seccomp, see [`DockerProfile::disables_seccomp`].
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_action: Option<Action>,
    /// The errno of the default action when it is `SCMP_ACT_ERRNO` (EPERM when absent) or
    /// the value passed to the tracer when it is `SCMP_ACT_TRACE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Architectures the filter covers besides the native one (`SCMP_ARCH_…`), for profiles
    /// written for one host. Cannot be combined with `archMap`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub architectures: Vec<String>,
    /// Architectures per native architecture, for profiles meant for any host.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arch_map: Vec<ArchMapEntry>,
    /// The rules, in order.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub syscalls: Vec<SyscallRule>,
    /// `SECCOMP_FILTER_FLAG_…` flags to load the filter with. Empty means the runtime's
    /// default, as in Docker (whose output leaves an empty list out).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<String>,
    /// The Unix socket of the seccomp agent that receives the `SCMP_ACT_NOTIFY` listener;
    /// empty for none.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub listener_path: String,
    /// Opaque data passed to the seccomp agent; empty for none.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub listener_metadata: String,
}

impl DockerProfile {
    /// Whether the profile asks for no seccomp filter at all: Docker runs the container
    /// unconfined when a profile has neither a default action nor rules (`{}`). Callers
    /// check this before [`to_oci`], which needs a default action.
    pub fn disables_seccomp(&self) -> bool {
        self.default_action.is_none() && self.syscalls.is_empty()
    }
}

/// One `archMap` entry: a native architecture and the others its kernel also runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMapEntry {
    /// The native architecture this entry is for (`SCMP_ARCH_X86_64`).
    pub architecture: String,
    /// The architectures added with it (`SCMP_ARCH_X86`, `SCMP_ARCH_X32`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub sub_architectures: Vec<String>,
}

/// One rule: an action for some syscalls, maybe only for some argument values, maybe only
/// for some containers and hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    /// The syscalls the rule is for.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub names: Vec<String>,
    /// The legacy form of `names` (one syscall); a rule cannot have both.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// What happens when the rule matches.
    pub action: Action,
    /// The errno for `SCMP_ACT_ERRNO` (EPERM when absent), or the value passed to the
    /// tracer for `SCMP_ACT_TRACE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Conditions on the arguments, all of which must hold (the runtime's rules apply when
    /// an index repeats).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<SyscallArg>,
    /// Free text, for people: why the rule exists.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub comment: String,
    /// Conditions under which the rule applies (all must hold).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Filter::is_empty"
    )]
    pub includes: Filter,
    /// Conditions under which the rule is dropped (any suffices).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Filter::is_empty"
    )]
    pub excludes: Filter,
}

/// A condition on the container and the host, for [`SyscallRule::includes`] and
/// [`SyscallRule::excludes`]. An empty field places no condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Capabilities (`CAP_SYS_ADMIN`): an include needs them all, an exclude any one.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub caps: Vec<String>,
    /// Host architectures in Docker's spelling (`amd64`, `arm64`, `s390x`, …).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arches: Vec<String>,
    /// A kernel version the host's must reach (include) or must not reach (exclude).
    #[serde(
        default,
        deserialize_with = "min_kernel",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_kernel: Option<KernelVersion>,
}

impl Filter {
    /// Whether the filter places no condition at all.
    pub fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

/// A condition on one syscall argument: `arg[index] op value` (for `SCMP_CMP_MASKED_EQ`,
/// `arg[index] & value == valueTwo`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallArg {
    /// Which argument, 0 to 5.
    #[serde(default)]
    pub index: u32,
    /// The value compared with (the mask, for `SCMP_CMP_MASKED_EQ`).
    #[serde(default)]
    pub value: u64,
    /// The value the masked argument must equal, for `SCMP_CMP_MASKED_EQ`; 0 when absent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value_two: u64,
    /// The comparison.
    pub op: Operator,
}

/// `skip_serializing_if` for `valueTwo`, which Docker leaves out when 0.
fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A seccomp action, with its `SCMP_ACT_…` name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Kill the thread (the historical name of `SCMP_ACT_KILL_THREAD`).
    #[serde(rename = "SCMP_ACT_KILL")]
    Kill,
    /// Kill the thread.
    #[serde(rename = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    /// Kill the whole process.
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    /// Send SIGSYS.
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    /// Fail with an errno (`errnoRet`, EPERM by default).
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    /// Notify a ptrace tracer (with `errnoRet` as the message).
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    /// Allow the call.
    #[default]
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    /// Allow the call and log it.
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    /// Hand the call to the seccomp agent listening on `listenerPath`.
    #[serde(rename = "SCMP_ACT_NOTIFY")]
    Notify,
}

impl Action {
    /// The OCI action.
    pub fn to_oci(self) -> LinuxSeccompAction {
        match self {
            Action::Kill => LinuxSeccompAction::ScmpActKill,
            Action::KillThread => LinuxSeccompAction::ScmpActKillThread,
            Action::KillProcess => LinuxSeccompAction::ScmpActKillProcess,
            Action::Trap => LinuxSeccompAction::ScmpActTrap,
            Action::Errno => LinuxSeccompAction::ScmpActErrno,
            Action::Trace => LinuxSeccompAction::ScmpActTrace,
            Action::Allow => LinuxSeccompAction::ScmpActAllow,
            Action::Log => LinuxSeccompAction::ScmpActLog,
            Action::Notify => LinuxSeccompAction::ScmpActNotify,
        }
    }

    /// Whether `errnoRet` means something for this action.
    fn takes_errno(self) -> bool {
        matches!(self, Action::Errno | Action::Trace)
    }
}

/// A comparison of a syscall argument, with its `SCMP_CMP_…` name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    /// `arg != value`.
    #[serde(rename = "SCMP_CMP_NE")]
    NotEqual,
    /// `arg < value`.
    #[serde(rename = "SCMP_CMP_LT")]
    LessThan,
    /// `arg <= value`.
    #[serde(rename = "SCMP_CMP_LE")]
    LessOrEqual,
    /// `arg == value`.
    #[default]
    #[serde(rename = "SCMP_CMP_EQ")]
    Equal,
    /// `arg >= value`.
    #[serde(rename = "SCMP_CMP_GE")]
    GreaterOrEqual,
    /// `arg > value`.
    #[serde(rename = "SCMP_CMP_GT")]
    GreaterThan,
    /// `arg & value == valueTwo`.
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEqual,
}

impl Operator {
    /// The OCI operator.
    pub fn to_oci(self) -> LinuxSeccompOperator {
        match self {
            Operator::NotEqual => LinuxSeccompOperator::ScmpCmpNe,
            Operator::LessThan => LinuxSeccompOperator::ScmpCmpLt,
            Operator::LessOrEqual => LinuxSeccompOperator::ScmpCmpLe,
            Operator::Equal => LinuxSeccompOperator::ScmpCmpEq,
            Operator::GreaterOrEqual => LinuxSeccompOperator::ScmpCmpGe,
            Operator::GreaterThan => LinuxSeccompOperator::ScmpCmpGt,
            Operator::MaskedEqual => LinuxSeccompOperator::ScmpCmpMaskedEq,
        }
    }
}

/// A kernel version as profiles write it, `"<major>.<minor>"` (`"4.8"`). Docker compares
/// only these two numbers, so `4.8.17` and `4.8-rc1` both count as 4.8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// The `4` of `4.8`.
    pub major: u32,
    /// The `8` of `4.8`.
    pub minor: u32,
}

impl KernelVersion {
    /// A version from its two numbers.
    pub const fn new(major: u32, minor: u32) -> KernelVersion {
        KernelVersion { major, minor }
    }

    /// The version at the start of a kernel release string as uname(2) gives it
    /// (`6.18.44-fc-v669` → 6.18), read as Docker reads it (`%d.%d`).
    pub fn from_release(release: &str) -> Option<KernelVersion> {
        let mut parts = release.trim().splitn(2, '.');
        let major = leading_number(parts.next()?)?;
        let minor = leading_number(parts.next()?)?;
        Some(KernelVersion { major, minor })
    }

    /// The running kernel's version, from `/proc/sys/kernel/osrelease`.
    pub fn running() -> Result<KernelVersion> {
        let release =
            std::fs::read_to_string("/proc/sys/kernel/osrelease").map_err(|e| Error::Host {
                reason: format!("reading the kernel version from /proc/sys/kernel/osrelease: {e}"),
            })?;
        KernelVersion::from_release(&release).ok_or_else(|| Error::Host {
            reason: format!("cannot read a kernel version in {:?}", release.trim()),
        })
    }
}

/// The decimal number at the start of `s`, if there is one.
fn leading_number(s: &str) -> Option<u32> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for KernelVersion {
    type Err = String;

    /// Parses `"<major>.<minor>"` as Docker does: exactly two numbers of at most 255, not
    /// both 0.
    fn from_str(s: &str) -> Result<KernelVersion, String> {
        let expected = || format!("invalid kernel version {s:?}, expected \"<major>.<minor>\"");
        let (major, minor) = s.split_once('.').ok_or_else(expected)?;
        let number = |part: &str| -> Result<u32, String> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(expected());
            }
            part.parse::<u8>()
                .map(u32::from)
                .map_err(|_| format!("{}: {part} is above 255", expected()))
        };
        let version = KernelVersion::new(number(major)?, number(minor)?);
        if version == KernelVersion::new(0, 0) {
            return Err(format!("{}: the version cannot be 0.0", expected()));
        }
        Ok(version)
    }
}

impl Serialize for KernelVersion {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KernelVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<KernelVersion, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `minKernel`: absent, `null` and `""` all mean no condition (as in Docker).
fn min_kernel<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<KernelVersion>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// A field Go would leave at its zero value for `null`.
fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `defaultAction`: `null` and `""` mean absent (as in Docker), anything else must be an
/// action.
fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Action>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => Action::deserialize(s.into_deserializer()).map(Some),
    }
}

/// Reads a profile, with errors that name the field at fault
/// (`seccomp profile: syscalls[12].action: unknown variant …`).
pub fn parse_profile(json: &[u8]) -> Result<DockerProfile> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let profile: DockerProfile =
        serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Parse {
            field: match e.path().to_string() {
                p if p == "." || p == "?" => String::new(),
                p => p,
            },
            reason: e.inner().to_string(),
        })?;
    de.end().map_err(|e| Error::Parse {
        field: String::new(),
        reason: e.to_string(),
    })?;
    Ok(profile)
}

// ---------------------------------------------------------------------------------------
// The container and host a profile is resolved for
// ---------------------------------------------------------------------------------------

/// A host architecture, as far as profiles care: the `SCMP_ARCH_…` name `archMap` is keyed
/// by, and the Docker (Go) name `includes.arches` / `excludes.arches` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostArch {
    /// x86-64 (`amd64`).
    X86_64,
    /// 32-bit x86 (`x86`; Go's `386`).
    X86,
    /// 64-bit ARM (`arm64`).
    Aarch64,
    /// 32-bit ARM (`arm`).
    Arm,
    /// 64-bit little-endian POWER (`ppc64le`).
    Ppc64le,
    /// 64-bit big-endian POWER (`ppc64`).
    Ppc64,
    /// 64-bit IBM Z (`s390x`).
    S390x,
    /// 31-bit IBM Z (`s390`).
    S390,
    /// 64-bit RISC-V (`riscv64`).
    Riscv64,
    /// 64-bit LoongArch (`loong64`).
    Loongarch64,
    /// 64-bit big-endian MIPS (`mips64`).
    Mips64,
    /// 64-bit little-endian MIPS (`mipsel64`; Go's `mips64le`).
    Mipsel64,
    /// 32-bit big-endian MIPS (`mips`).
    Mips,
    /// 32-bit little-endian MIPS (`mipsel`; Go's `mipsle`).
    Mipsel,
}

impl HostArch {
    /// Every architecture, for tests and listings.
    pub const ALL: [HostArch; 14] = [
        HostArch::X86_64,
        HostArch::X86,
        HostArch::Aarch64,
        HostArch::Arm,
        HostArch::Ppc64le,
        HostArch::Ppc64,
        HostArch::S390x,
        HostArch::S390,
        HostArch::Riscv64,
        HostArch::Loongarch64,
        HostArch::Mips64,
        HostArch::Mipsel64,
        HostArch::Mips,
        HostArch::Mipsel,
    ];

    /// The architecture this program was built for, which is the host's (berth does not run
    /// under emulation); `None` on one profiles cannot describe.
    pub fn native() -> Option<HostArch> {
        let little = cfg!(target_endian = "little");
        match std::env::consts::ARCH {
            "x86_64" => Some(HostArch::X86_64),
            "x86" => Some(HostArch::X86),
            "aarch64" => Some(HostArch::Aarch64),
            "arm" => Some(HostArch::Arm),
            "powerpc64" if little => Some(HostArch::Ppc64le),
            "powerpc64" => Some(HostArch::Ppc64),
            "s390x" => Some(HostArch::S390x),
            "riscv64" => Some(HostArch::Riscv64),
            "loongarch64" => Some(HostArch::Loongarch64),
            "mips64" if little => Some(HostArch::Mipsel64),
            "mips64" => Some(HostArch::Mips64),
            "mips" if little => Some(HostArch::Mipsel),
            "mips" => Some(HostArch::Mips),
            _ => None,
        }
    }

    /// The name `includes.arches` and `excludes.arches` use: Docker's (libseccomp-golang's)
    /// for the Go architecture dockerd was built for.
    pub fn docker_name(self) -> &'static str {
        match self {
            HostArch::X86_64 => "amd64",
            HostArch::X86 => "x86",
            HostArch::Aarch64 => "arm64",
            HostArch::Arm => "arm",
            HostArch::Ppc64le => "ppc64le",
            HostArch::Ppc64 => "ppc64",
            HostArch::S390x => "s390x",
            HostArch::S390 => "s390",
            HostArch::Riscv64 => "riscv64",
            HostArch::Loongarch64 => "loong64",
            HostArch::Mips64 => "mips64",
            HostArch::Mipsel64 => "mipsel64",
            HostArch::Mips => "mips",
            HostArch::Mipsel => "mipsel",
        }
    }

    /// The `SCMP_ARCH_…` name `archMap` entries are keyed by.
    pub fn seccomp_name(self) -> &'static str {
        match self {
            HostArch::X86_64 => "SCMP_ARCH_X86_64",
            HostArch::X86 => "SCMP_ARCH_X86",
            HostArch::Aarch64 => "SCMP_ARCH_AARCH64",
            HostArch::Arm => "SCMP_ARCH_ARM",
            HostArch::Ppc64le => "SCMP_ARCH_PPC64LE",
            HostArch::Ppc64 => "SCMP_ARCH_PPC64",
            HostArch::S390x => "SCMP_ARCH_S390X",
            HostArch::S390 => "SCMP_ARCH_S390",
            HostArch::Riscv64 => "SCMP_ARCH_RISCV64",
            HostArch::Loongarch64 => "SCMP_ARCH_LOONGARCH64",
            HostArch::Mips64 => "SCMP_ARCH_MIPS64",
            HostArch::Mipsel64 => "SCMP_ARCH_MIPSEL64",
            HostArch::Mips => "SCMP_ARCH_MIPS",
            HostArch::Mipsel => "SCMP_ARCH_MIPSEL",
        }
    }
}

impl FromStr for HostArch {
    type Err = Error;

    /// Reads `uname -m`, Rust, Go and Docker spellings: `x86_64`/`amd64`, `aarch64`/`arm64`,
    /// `i686`/`386`/`x86`, `armv7l`/`arm`, `ppc64le`, `s390x`, `riscv64`, `loongarch64`, ….
    fn from_str(s: &str) -> Result<HostArch> {
        let arch = match s {
            "x86_64" | "amd64" => HostArch::X86_64,
            "x86" | "386" | "i386" | "i486" | "i586" | "i686" => HostArch::X86,
            "aarch64" | "arm64" => HostArch::Aarch64,
            "ppc64le" | "powerpc64le" => HostArch::Ppc64le,
            "ppc64" | "powerpc64" => HostArch::Ppc64,
            "s390x" => HostArch::S390x,
            "s390" => HostArch::S390,
            "riscv64" => HostArch::Riscv64,
            "loongarch64" | "loong64" => HostArch::Loongarch64,
            "mips64" => HostArch::Mips64,
            "mips64el" | "mips64le" | "mipsel64" => HostArch::Mipsel64,
            "mips" => HostArch::Mips,
            "mipsel" | "mipsle" => HostArch::Mipsel,
            a if a == "arm" || a.starts_with("armv") => HostArch::Arm,
            _ => {
                return Err(Error::Host {
                    reason: format!("unknown architecture {s:?}"),
                });
            }
        };
        Ok(arch)
    }
}

impl fmt::Display for HostArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.docker_name())
    }
}

/// What a profile is resolved against: the host and the container's capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The host's architecture.
    pub arch: HostArch,
    /// The container's capabilities (`CAP_CHOWN` or `CHOWN`, any case). Docker matches the
    /// bounding set; for the containers berth creates it is also the effective set.
    pub capabilities: Vec<String>,
    /// The host kernel's version.
    pub kernel: KernelVersion,
}

impl Context {
    /// The context for a container with `capabilities` on this host (the architecture
    /// berth was built for, the running kernel).
    pub fn for_host<I, S>(capabilities: I) -> Result<Context>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let arch = HostArch::native().ok_or_else(|| Error::Host {
            reason: format!(
                "architecture {} is not one seccomp profiles describe",
                std::env::consts::ARCH
            ),
        })?;
        Ok(Context {
            arch,
            capabilities: capabilities.into_iter().map(Into::into).collect(),
            kernel: KernelVersion::running()?,
        })
    }

    /// The capabilities as `CAP_…` names, upper-case.
    fn capability_set(&self) -> HashSet<String> {
        self.capabilities
            .iter()
            .map(|c| {
                let c = c.trim().to_ascii_uppercase();
                if c.starts_with("CAP_") {
                    c
                } else {
                    format!("CAP_{c}")
                }
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Conversion
// ---------------------------------------------------------------------------------------

/// The highest argument index a condition can test (syscalls have six arguments).
const MAX_ARG_INDEX: u32 = 5;

/// Resolves `profile` for one container (see the module docs for the rules) and returns the
/// OCI `linux.seccomp` section for it. Fails, naming the field, on a profile Docker or the
/// runtime would refuse; a profile that [disables seccomp](DockerProfile::disables_seccomp)
/// fails too, as it has no default action.
pub fn to_oci(profile: &DockerProfile, ctx: &Context) -> Result<LinuxSeccomp> {
    let default_action = profile.default_action.ok_or_else(|| {
        invalid(
            "defaultAction",
            "missing (a profile without rules or default action disables seccomp, which \
             the caller must handle)",
        )
    })?;
    if profile.default_errno_ret.is_some() && !default_action.takes_errno() {
        return Err(invalid(
            "defaultErrnoRet",
            "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno",
        ));
    }

    if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
        return Err(invalid(
            "archMap",
            "cannot be combined with architectures; use one or the other",
        ));
    }
    let mut architectures = Vec::new();
    for (i, name) in profile.architectures.iter().enumerate() {
        architectures.push(oci_arch(name, || format!("architectures[{i}]"))?);
    }
    // Only the first entry for the host's architecture counts, as in Docker.
    let host_entry = profile
        .arch_map
        .iter()
        .enumerate()
        .find(|(_, entry)| entry.architecture == ctx.arch.seccomp_name());
    if let Some((i, entry)) = host_entry {
        architectures.push(oci_arch(&entry.architecture, || {
            format!("archMap[{i}].architecture")
        })?);
        for (j, sub) in entry.sub_architectures.iter().enumerate() {
            architectures.push(oci_arch(sub, || {
                format!("archMap[{i}].subArchitectures[{j}]")
            })?);
        }
    }

    let mut flags = Vec::new();
    for (i, name) in profile.flags.iter().enumerate() {
        flags.push(oci_flag(name, i)?);
    }

    let caps = ctx.capability_set();
    let mut syscalls = Vec::new();
    for (i, rule) in profile.syscalls.iter().enumerate() {
        let at = format!("syscalls[{i}]");
        if !rule.name.is_empty() && !rule.names.is_empty() {
            return Err(invalid(
                &at,
                "both name and names are set; use names (name is the legacy form)",
            ));
        }
        if !applies(rule, ctx, &caps) {
            continue;
        }
        syscalls.push(oci_rule(rule, &at)?);
    }

    let mut oci = LinuxSeccomp::default();
    oci.set_default_action(default_action.to_oci());
    oci.set_default_errno_ret(profile.default_errno_ret);
    oci.set_architectures(non_empty(architectures));
    oci.set_flags(non_empty(flags));
    oci.set_listener_path(non_empty_str(&profile.listener_path).map(Into::into));
    oci.set_listener_metadata(non_empty_str(&profile.listener_metadata).map(Into::into));
    oci.set_syscalls(non_empty(syscalls));
    Ok(oci)
}

/// Whether `rule` is kept for `ctx`, whose capabilities are `caps` (see the module docs).
fn applies(rule: &SyscallRule, ctx: &Context, caps: &HashSet<String>) -> bool {
    let arch = ctx.arch.docker_name();
    let (inc, exc) = (&rule.includes, &rule.excludes);

    let excluded = exc.arches.iter().any(|a| a == arch)
        || exc.caps.iter().any(|c| caps.contains(c))
        || exc.min_kernel.is_some_and(|min| ctx.kernel >= min);
    let included = (inc.arches.is_empty() || inc.arches.iter().any(|a| a == arch))
        && inc.caps.iter().all(|c| caps.contains(c))
        && inc.min_kernel.is_none_or(|min| ctx.kernel >= min);
    !excluded && included
}

/// The OCI form of a rule that applies; `at` is its place (`syscalls[3]`).
fn oci_rule(rule: &SyscallRule, at: &str) -> Result<LinuxSyscall> {
    let names = if rule.name.is_empty() {
        rule.names.clone()
    } else {
        vec![rule.name.clone()]
    };
    if names.is_empty() {
        return Err(invalid(format!("{at}.names"), "no syscall names"));
    }
    if let Some(j) = names.iter().position(|n| n.trim().is_empty()) {
        return Err(invalid(format!("{at}.names[{j}]"), "empty syscall name"));
    }
    if rule.errno_ret.is_some() && !rule.action.takes_errno() {
        return Err(invalid(
            format!("{at}.errnoRet"),
            format!(
                "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not {}",
                action_name(rule.action)
            ),
        ));
    }
    let mut args = Vec::with_capacity(rule.args.len());
    for (k, arg) in rule.args.iter().enumerate() {
        if arg.index > MAX_ARG_INDEX {
            return Err(invalid(
                format!("{at}.args[{k}].index"),
                format!("{} is not an argument index (0 to 5)", arg.index),
            ));
        }
        let mut builder = LinuxSeccompArgBuilder::default()
            .index(arg.index as usize)
            .value(arg.value)
            .op(arg.op.to_oci());
        // Docker leaves a zero valueTwo out; the runtime reads absent as 0.
        if arg.value_two != 0 {
            builder = builder.value_two(arg.value_two);
        }
        let oci = builder.build().map_err(|e| {
            invalid(
                format!("{at}.args[{k}]"),
                format!("cannot build the condition: {e}"),
            )
        })?;
        args.push(oci);
    }

    let mut oci = LinuxSyscall::default();
    oci.set_names(names);
    oci.set_action(rule.action.to_oci());
    oci.set_errno_ret(rule.errno_ret);
    oci.set_args(non_empty(args));
    Ok(oci)
}

/// The `SCMP_ACT_…` name of an action, for messages.
fn action_name(action: Action) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{action:?}"))
}

/// The OCI architecture named `name`; `at` names the field for the error.
fn oci_arch(name: &str, at: impl FnOnce() -> String) -> Result<Arch> {
    Arch::deserialize(name.into_deserializer()).map_err(|_: serde::de::value::Error| {
        invalid(at(), format!("unknown architecture {name:?}"))
    })
}

/// The OCI filter flag named `name`, `flags[i]` in the profile.
fn oci_flag(name: &str, i: usize) -> Result<LinuxSeccompFilterFlag> {
    LinuxSeccompFilterFlag::deserialize(name.into_deserializer()).map_err(
        |_: serde::de::value::Error| {
            invalid(
                format!("flags[{i}]"),
                format!("unknown or unsupported seccomp filter flag {name:?}"),
            )
        },
    )
}

/// `None` for an empty list, as Docker's output leaves empty lists out.
fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// `None` for an empty string.
fn non_empty_str(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}
