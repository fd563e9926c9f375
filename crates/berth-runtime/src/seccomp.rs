//! Seccomp: turns the OCI `linux.seccomp` section into a BPF program and installs it.
//!
//! STUB: the interface below is fixed; the implementation is being written.

use std::os::fd::OwnedFd;

use oci_spec::runtime::LinuxSeccomp;
use serde::Serialize;

use crate::Result;

/// A compiled seccomp filter, ready to install in the container's init process.
#[derive(Debug, Clone)]
pub struct Program {
    /// The classic-BPF instructions, as the kernel's `struct sock_filter` array.
    pub filter: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` bits to pass to seccomp(2).
    pub flags: u32,
    /// Whether some rule uses SCMP_ACT_NOTIFY, so installing returns a listener fd.
    pub notify: bool,
}

/// Compiles the OCI seccomp section. Errors name the offending field.
pub fn compile(_spec: &LinuxSeccomp) -> Result<Program> {
    Err(crate::Error::msg("seccomp: not implemented"))
}

impl Program {
    /// Serializes the compiled program for the on-disk cache.
    pub fn to_bytes(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Reads back a program written by [`Program::to_bytes`].
    pub fn from_bytes(_b: &[u8]) -> Result<Program> {
        Err(crate::Error::msg("seccomp: not implemented"))
    }

    /// Installs the filter on the calling thread (process); returns the notify listener fd
    /// when the filter has notify rules.
    pub fn install(&self) -> Result<Option<OwnedFd>> {
        Err(crate::Error::msg("seccomp: not implemented"))
    }
}

/// What this build supports, for `berth-runtime features`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    pub enabled: bool,
    pub actions: Vec<String>,
    pub operators: Vec<String>,
    pub archs: Vec<String>,
    pub known_flags: Vec<String>,
    pub supported_flags: Vec<String>,
}

/// Reports seccomp support.
pub fn features() -> Features {
    Features {
        enabled: false,
        actions: vec![],
        operators: vec![],
        archs: vec![],
        known_flags: vec![],
        supported_flags: vec![],
    }
}
