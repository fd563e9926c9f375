//! berth-runtime: an OCI runtime with runc's command line.
//!
//! The library holds everything the `berth-runtime` binary does, one module per concern:
//! configuration loading and validation, container state, cgroups, seccomp, the root
//! filesystem, namespaces, and one file per command under [`commands`].
//!
//! The runtime is a short-lived, single-threaded process: it forks the container's init
//! process itself, so nothing in this crate may start threads before a fork.

pub mod cgroups;
pub mod error;
pub mod seccomp;

pub use error::{Error, Result};
