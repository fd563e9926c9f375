//! berth-runtime: an OCI runtime with runc's command line.
//!
//! The library holds everything the `berth-runtime` binary does, one module per concern:
//! configuration loading and validation, container state, cgroups, seccomp, the root
//! filesystem, namespaces, and one file per command under [`commands`].
//!
//! The runtime is a short-lived, single-threaded process: it forks the container's init
//! process itself, so nothing in this crate may start threads before a fork.

pub mod caps;
pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod config;
pub mod container;
pub mod error;
pub mod foreground;
pub mod hooks;
pub mod log;
pub mod mountopts;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod selfexec;
pub mod state;
pub mod sync;
pub mod tty;
pub mod utils;

pub use error::{Error, Result};
