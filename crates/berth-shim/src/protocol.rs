//! The protocol on `<state-dir>/shim.sock`, and the files the shim keeps in its state
//! directory.
//!
//! # Connections
//!
//! Every connection carries exactly one request: the client writes one JSON object
//! ([`Request`], tagged by `"op"`) followed by `\n`; the shim answers with one JSON line — the
//! op's reply object on success, or `{"error": "<message>"}` ([`ErrorReply`]) — and then:
//!
//! - for most ops, closes the connection;
//! - for `wait`, the reply is only sent once the container has exited;
//! - for `attach` and `exec` (after a successful reply), the connection becomes a byte stream:
//!   the shim writes the process's output to it — Docker [`stdcopy`](crate::stdcopy) frames
//!   (stream byte 1 stdout, 2 stderr), or raw bytes when the process has a tty — and forwards
//!   what the client writes to the process's stdin (when stdin was asked for and the process
//!   has one). Bytes the client sends right after the request line are already stdin.
//!
//! # End of streams
//!
//! - `attach`: when the container's init exits, the shim sends everything it had written
//!   before exiting and closes the connection (EOF). Attaching to a stopped container gets
//!   `{"ok":true}` and an immediate EOF.
//! - `exec`: when the exec'd process exits, the shim sends everything it wrote before exiting
//!   (it drains the pipes or pty), records its exit code, and closes the connection. The exit
//!   code is recorded *before* the close, so a client that reads EOF and then asks
//!   `exec_state` always gets `running: false` and the code. (There is no in-band trailer:
//!   tty streams are raw bytes and could not carry one.)
//! - The client half-closing its write side (`shutdown(Write)`) ends its stdin: for an exec,
//!   the process's stdin is closed; for an attach, the container's stdin is closed if the shim
//!   was started with `--stdin-once` (and nothing happens otherwise, as with Docker; with a
//!   tty, stdin is the terminal and is never closed).
//!
//! Output that the container writes while nobody is attached goes only to the log. Exec
//! output never goes to the log. A client that does not read applies back-pressure: the shim
//! stops reading that process's output once 256 KiB are queued for one stream connection.

use serde::{Deserialize, Serialize};

/// The shim's listening socket, in the state directory (mode 0600).
pub const SOCKET: &str = "shim.sock";
/// The shim's own pid, written once it has daemonized.
pub const SHIM_PID_FILE: &str = "shim.pid";
/// The container init's pid, written by the runtime (`create --pid-file`).
pub const INIT_PID_FILE: &str = "init.pid";
/// The container's exit, written atomically (as [`Exit`] JSON) before any waiter is answered.
pub const EXIT_FILE: &str = "exit.json";
/// The runtime's log (`--log … --log-format json`), where its error messages come from.
pub const RUNTIME_LOG: &str = "runtime.log";
/// The shim's own diagnostics (warnings and errors; small).
pub const SHIM_LOG: &str = "shim.log";
/// The console socket the runtime sends the container's pty master to (only during create).
pub const CONSOLE_SOCKET: &str = "console.sock";

/// A request: the first line of every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// `runtime start ID`: run the container's process. Reply: [`Ok`].
    Start,
    /// `runtime kill [--all] ID SIGNAL`. Reply: [`Ok`].
    Kill {
        /// Signal number (e.g. 9, 15).
        signal: i32,
        /// Signal every process of the container, not only its init.
        #[serde(default)]
        all: bool,
    },
    /// `runtime pause ID`. Reply: [`Ok`].
    Pause,
    /// `runtime resume ID`. Reply: [`Ok`].
    Resume,
    /// `runtime update -r - ID` with these OCI `LinuxResources` on its stdin. Reply: [`Ok`].
    Update {
        /// OCI runtime-spec `LinuxResources` JSON.
        resources: serde_json::Value,
    },
    /// Resizes the container's pty (TIOCSWINSZ on its master). Reply: [`Ok`].
    Resize {
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
    /// The container's status. Reply: [`State`].
    State,
    /// Answers once the container has exited (at once if it has). Reply: [`Exit`].
    Wait,
    /// `runtime delete --force ID`, then removes the shim's files (all but the container
    /// log), replies [`Ok`] and exits. The log is complete when the reply arrives.
    Delete,
    /// Replies [`Ok`] and exits without deleting the container (tests, upgrades). The log is
    /// flushed; `shim.sock` and `shim.pid` are removed.
    Shutdown,
    /// Streams the container's output and takes its stdin. Reply: [`Ok`], then the stream.
    Attach {
        /// Forward the client's bytes to the container's stdin.
        #[serde(default)]
        stdin: bool,
        /// Send the container's stdout.
        #[serde(default)]
        stdout: bool,
        /// Send the container's stderr.
        #[serde(default)]
        stderr: bool,
    },
    /// Runs a new process in the container (`runtime exec --detach`). Reply: [`ExecStarted`],
    /// then the connection streams that process's output and stdin like `attach` (with
    /// stdout and stderr).
    Exec {
        /// Caller-chosen id, unique for the life of the shim: letters, digits, `_ . -`.
        exec_id: String,
        /// OCI runtime-spec `Process` JSON; its `terminal` is set to `tty`.
        process: serde_json::Value,
        /// Give the process a pty (its output is then raw bytes on the stream).
        #[serde(default)]
        tty: bool,
        /// Give the process a stdin fed from the stream (else /dev/null).
        #[serde(default)]
        stdin: bool,
    },
    /// An exec's status. Reply: [`ExecState`].
    ExecState {
        /// The exec's id.
        exec_id: String,
    },
    /// Resizes an exec's pty. Reply: [`Ok`].
    ExecResize {
        /// The exec's id.
        exec_id: String,
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
    /// Sends a signal to an exec's process. Reply: [`Ok`].
    ExecKill {
        /// The exec's id.
        exec_id: String,
        /// Signal number.
        signal: i32,
    },
}

/// The reply to a request that only succeeds or fails: `{"ok":true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ok {
    /// Always true.
    pub ok: bool,
}

/// The reply of a failed request: `{"error":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong, naming the object (for runtime failures, the runtime's message).
    pub error: String,
}

/// A container's status, as OCI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created, not yet started.
    Created,
    /// Started, not paused, not exited.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// The init process has exited.
    Stopped,
}

/// The reply to `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The container's status.
    pub status: Status,
    /// The init process's pid (in the shim's pid namespace).
    pub pid: i32,
    /// The exit code, once stopped (128+N for death by signal N).
    pub exit_code: Option<i32>,
    /// When the init exited (RFC 3339, UTC, nanoseconds).
    pub exited_at: Option<String>,
    /// When `start` succeeded (RFC 3339, UTC, nanoseconds).
    pub started_at: Option<String>,
}

/// The reply to `wait`, and the content of `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The exit code (128+N for death by signal N).
    pub exit_code: i32,
    /// When the init exited (RFC 3339, UTC, nanoseconds).
    pub exited_at: String,
}

/// The reply to a successful `exec`; the stream follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStarted {
    /// The exec'd process's pid.
    pub pid: i32,
}

/// The reply to `exec_state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecState {
    /// The process's pid (0 while the runtime is still starting it).
    pub pid: i32,
    /// Whether it has not exited yet.
    pub running: bool,
    /// Its exit code, once exited (128+N for death by signal N).
    pub exit_code: Option<i32>,
    /// When it exited.
    pub exited_at: Option<String>,
}

/// The one JSON line `berth-shim` prints on stdout before its first process exits:
/// `{"pid": <init pid>}` (exit status 0) or `{"error": "<message>"}` (exit status 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnReport {
    /// The container init's pid, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Why the container could not be created, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether `id` is acceptable as an exec id (it names files in the state directory).
pub fn valid_exec_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_by_op() {
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":9}"#).unwrap();
        assert_eq!(
            r,
            Request::Kill {
                signal: 9,
                all: false
            }
        );
        let r: Request = serde_json::from_str(r#"{"op":"exec_state","exec_id":"e1"}"#).unwrap();
        assert_eq!(
            r,
            Request::ExecState {
                exec_id: "e1".into()
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::Start).unwrap(),
            r#"{"op":"start"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"fly"}"#).is_err());
    }

    #[test]
    fn status_and_report_shapes() {
        let s = State {
            status: Status::Running,
            pid: 7,
            exit_code: None,
            exited_at: None,
            started_at: None,
        };
        assert!(
            serde_json::to_string(&s)
                .unwrap()
                .contains(r#""status":"running""#)
        );
        let ok = SpawnReport {
            pid: Some(3),
            error: None,
        };
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"pid":3}"#);
    }

    #[test]
    fn exec_ids() {
        assert!(valid_exec_id("abc-1.2_x"));
        assert!(!valid_exec_id(""));
        assert!(!valid_exec_id("../x"));
        assert!(!valid_exec_id(".hidden"));
    }
}
