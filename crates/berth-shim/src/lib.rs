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
//! The shim is resident once per container, so it has no async runtime, no threads and no
//! logging framework: one `poll(2)` loop over non-blocking fds, runtime commands run as child
//! processes whose exit (SIGCHLD via signalfd) completes the request. The json-file log is
//! written by a forked writer process so that a stalled disk never stops the loop. Measured
//! with a running, logging, attached container (test `memory_is_reported`, release build):
//! VmRSS about 1.5 MiB, of which about 200 KiB anonymous; the rest are clean file pages of
//! the binary and libc shared by every shim (Pss about 0.7-0.8 MiB with a single shim).

pub mod args;
pub mod client;
pub mod error;
pub mod protocol;
pub mod stdcopy;

pub use error::{Error, Result};
