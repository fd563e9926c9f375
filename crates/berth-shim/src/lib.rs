//! berth's per-container shim: the process that owns a container's stdio, log and exit status
//! so that the daemon (berthd) never has to fork or parent a container itself.
//!
//! The daemon spawns one `berth-shim` per container (see [`client::spawn`]). The shim
//! daemonizes, runs the OCI runtime *binary* (`create`), becomes the subreaper of the
//! container's processes, writes their output to a Docker json-file log, and serves a small
//! line-oriented JSON protocol on `<state-dir>/shim.sock` (see [`protocol`]). Because the
//! shim, not the daemon, is the parent of the container, the daemon can die and be restarted
//! without the container noticing: a new daemon reconnects with [`client::Shim::connect`].
//!
//! This library holds what both sides share:
//! - [`args`]: the shim's command line, parsed by the binary and built by the daemon;
//! - [`protocol`]: the requests and replies on `shim.sock`, as serde types, and the file
//!   names the shim keeps in its state directory;
//! - [`stdcopy`]: Docker's stdout/stderr multiplexing frames used on attach and exec streams;
//! - [`client`]: a blocking client (std `UnixStream`) for the daemon, which wraps it in
//!   `spawn_blocking` or speaks the protocol itself asynchronously.

//! # Lifetime
//!
//! The shim stays after its container exits — `exit.json` is written atomically before any
//! waiter is answered — until the daemon sends `delete` (runtime delete, files removed, log
//! complete) or `shutdown`; with `--linger SECS` it also ends by itself that long after the
//! exit, leaving `exit.json` for [`client::read_exit`].
//!
//! # Memory
//!
//! The shim is resident once per container, so it has no async runtime and no logging
//! framework, and it is one process: one `poll(2)` loop over non-blocking fds, runtime
//! commands run as child processes whose exit (SIGCHLD via signalfd) completes the request.
//! The json-file log is written by one writer thread (64 KiB stack) fed through a pipe, so
//! that a stalled disk never stops the loop. Installed as a static musl executable
//! (`scripts/lib.sh` `build_static_helpers`), a running, logging, attached container's shim
//! has a VmRSS under 1 MiB, most of it clean file pages of the binary shared by every shim
//! (test `memory_is_reported` prints the figures; `bench/engine` measures 50 of them).

pub mod args;
pub mod client;
pub mod error;
pub mod protocol;
pub mod stdcopy;

pub use error::{Error, Result};
