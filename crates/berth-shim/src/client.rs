//! A blocking client for the daemon: spawn a shim, then talk to it over `shim.sock`.
//!
//! Every call opens its own connection (the protocol is one request per connection), so a
//! [`Shim`] is cheap, `Sync`, and can be used from many threads (e.g. tokio's
//! `spawn_blocking`) at once. Streams returned by [`Shim::attach`] and [`Shim::exec`] are
//! positioned right after the reply line; convert them with `tokio::net::UnixStream::from_std`
//! (after `set_nonblocking(true)`) to use them asynchronously.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::args::ShimArgs;
use crate::error::{Error, Result};
use crate::protocol::{self, ExecStarted, ExecState, Exit, Request, SpawnReport, State};

/// Longest reply line accepted.
const MAX_LINE: usize = 1 << 20;

/// Runs `berth-shim` (the binary at `binary`) with `args` and returns the container init's pid
/// once the container is created. The shim has then daemonized; talk to it with
/// [`Shim::connect`]`(&args.state_dir)`. On failure, the error carries the runtime's message
/// and the shim has left nothing behind.
pub fn spawn(binary: &Path, args: &ShimArgs) -> Result<i32> {
    let out = Command::new(binary)
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::io(format!("running {}", binary.display()), e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Protocol(format!(
            "berth-shim for container {} printed no report ({}): {}",
            args.id,
            out.status,
            stderr.trim()
        )));
    }
    let report: SpawnReport = serde_json::from_str(line)
        .map_err(|e| Error::Protocol(format!("berth-shim report {line:?}: {e}")))?;
    match report {
        SpawnReport {
            pid: Some(pid),
            error: None,
        } if out.status.success() => Ok(pid),
        SpawnReport { error: Some(e), .. } => Err(Error::Shim(e)),
        _ => Err(Error::Protocol(format!(
            "berth-shim report {line:?} with {}",
            out.status
        ))),
    }
}

/// The container's exit as recorded in `<state_dir>/exit.json`, if it has exited: how a
/// daemon that finds no shim answering (it was shut down, lingered out, or died) still gets
/// the real exit code.
pub fn read_exit(state_dir: impl AsRef<Path>) -> Result<Option<Exit>> {
    let path = state_dir.as_ref().join(protocol::EXIT_FILE);
    let data = match std::fs::File::open(&path) {
        Ok(f) => {
            let mut data = Vec::new();
            f.take(64 << 10)
                .read_to_end(&mut data)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            data
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|e| Error::Protocol(format!("{}: {e}", path.display())))
}

/// Reads one reply line (up to and without its `\n`) byte by byte, so that nothing of the
/// stream that may follow it is consumed.
pub fn read_line(stream: &mut UnixStream) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match stream.read(&mut b) {
            Ok(0) => return Err(Error::Protocol("connection closed before a reply".into())),
            Ok(_) if b[0] == b'\n' => return Ok(line),
            Ok(_) => {
                line.push(b[0]);
                if line.len() > MAX_LINE {
                    return Err(Error::Protocol("reply line too long".into()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("reading the shim's reply", e)),
        }
    }
}

/// Decodes a reply line: `{"error": …}` becomes [`Error::Shim`], anything else must be a `T`.
pub fn decode_reply<T: DeserializeOwned>(line: &[u8]) -> Result<T> {
    let v: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| Error::Protocol(format!("reply {:?}: {e}", String::from_utf8_lossy(line))))?;
    if let Some(e) = v.get("error") {
        return Err(Error::Shim(
            e.as_str().map_or_else(|| e.to_string(), str::to_string),
        ));
    }
    serde_json::from_value(v)
        .map_err(|e| Error::Protocol(format!("reply {:?}: {e}", String::from_utf8_lossy(line))))
}

/// A shim, by its socket.
#[derive(Debug, Clone)]
pub struct Shim {
    socket: PathBuf,
}

impl Shim {
    /// Checks that the shim of `state_dir` answers on its socket.
    pub fn connect(state_dir: impl AsRef<Path>) -> Result<Shim> {
        let socket = state_dir.as_ref().join(protocol::SOCKET);
        UnixStream::connect(&socket)
            .map_err(|e| Error::io(format!("connecting to {}", socket.display()), e))?;
        Ok(Shim { socket })
    }

    /// The shim's socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Opens a connection and sends `req`; returns the connection before the reply.
    pub fn send(&self, req: &Request) -> Result<UnixStream> {
        let mut s = UnixStream::connect(&self.socket)
            .map_err(|e| Error::io(format!("connecting to {}", self.socket.display()), e))?;
        let mut line = serde_json::to_vec(req).map_err(|e| Error::Protocol(e.to_string()))?;
        line.push(b'\n');
        s.write_all(&line)
            .map_err(|e| Error::io(format!("sending to {}", self.socket.display()), e))?;
        Ok(s)
    }

    /// Sends `req` and decodes its reply.
    pub fn call<T: DeserializeOwned>(&self, req: &Request) -> Result<T> {
        let mut s = self.send(req)?;
        decode_reply(&read_line(&mut s)?)
    }

    fn call_ok(&self, req: &Request) -> Result<()> {
        self.call::<protocol::Ok>(req).map(|_| ())
    }

    /// Starts the container's process.
    pub fn start(&self) -> Result<()> {
        self.call_ok(&Request::Start)
    }

    /// Signals the container's init (or, with `all`, every process of it).
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        self.call_ok(&Request::Kill { signal, all })
    }

    /// Freezes the container.
    pub fn pause(&self) -> Result<()> {
        self.call_ok(&Request::Pause)
    }

    /// Thaws the container.
    pub fn resume(&self) -> Result<()> {
        self.call_ok(&Request::Resume)
    }

    /// Changes the container's resources (OCI `LinuxResources` JSON).
    pub fn update(&self, resources: serde_json::Value) -> Result<()> {
        self.call_ok(&Request::Update { resources })
    }

    /// Resizes the container's pty.
    pub fn resize(&self, height: u16, width: u16) -> Result<()> {
        self.call_ok(&Request::Resize { height, width })
    }

    /// The container's status.
    pub fn state(&self) -> Result<State> {
        self.call(&Request::State)
    }

    /// Blocks until the container has exited.
    pub fn wait(&self) -> Result<Exit> {
        self.call(&Request::Wait)
    }

    /// Like [`Shim::wait`], but gives up after `timeout`: `Ok(None)` if the container is still
    /// running then.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<Exit>> {
        let mut s = self.send(&Request::Wait)?;
        s.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(|e| Error::io(format!("setting a timeout on {}", self.socket.display()), e))?;
        match read_line(&mut s) {
            Ok(line) => decode_reply(&line).map(Some),
            Err(Error::Io { source, .. })
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes the container (forcibly) and ends the shim; the log is complete on return.
    pub fn delete(&self) -> Result<()> {
        self.call_ok(&Request::Delete)
    }

    /// Ends the shim without deleting the container.
    pub fn shutdown(&self) -> Result<()> {
        self.call_ok(&Request::Shutdown)
    }

    /// Attaches to the container: the returned stream carries its output (stdcopy frames, or
    /// raw bytes with a tty) and takes its stdin. It ends when the container exits.
    pub fn attach(&self, stdin: bool, stdout: bool, stderr: bool) -> Result<UnixStream> {
        let mut s = self.send(&Request::Attach {
            stdin,
            stdout,
            stderr,
        })?;
        decode_reply::<protocol::Ok>(&read_line(&mut s)?)?;
        Ok(s)
    }

    /// Runs `process` (OCI `Process` JSON) in the container. Returns its pid and its stream,
    /// which ends once it has exited and its output has been sent; then [`Shim::exec_state`]
    /// has its exit code.
    pub fn exec(
        &self,
        exec_id: &str,
        process: serde_json::Value,
        tty: bool,
        stdin: bool,
    ) -> Result<(i32, UnixStream)> {
        let mut s = self.send(&Request::Exec {
            exec_id: exec_id.to_string(),
            process,
            tty,
            stdin,
        })?;
        let started: ExecStarted = decode_reply(&read_line(&mut s)?)?;
        Ok((started.pid, s))
    }

    /// An exec's status.
    pub fn exec_state(&self, exec_id: &str) -> Result<ExecState> {
        self.call(&Request::ExecState {
            exec_id: exec_id.to_string(),
        })
    }

    /// Resizes an exec's pty.
    pub fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()> {
        self.call_ok(&Request::ExecResize {
            exec_id: exec_id.to_string(),
            height,
            width,
        })
    }

    /// Signals an exec's process.
    pub fn exec_kill(&self, exec_id: &str, signal: i32) -> Result<()> {
        self.call_ok(&Request::ExecKill {
            exec_id: exec_id.to_string(),
            signal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_decode() {
        assert!(
            matches!(decode_reply::<protocol::Ok>(br#"{"error":"container x: boom"}"#), Err(Error::Shim(m)) if m == "container x: boom")
        );
        assert_eq!(
            decode_reply::<ExecStarted>(br#"{"pid":5}"#).unwrap(),
            ExecStarted { pid: 5 }
        );
        assert!(matches!(
            decode_reply::<ExecStarted>(b"nope"),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn read_line_stops_at_newline() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"{\"ok\":true}\nSTREAM").unwrap();
        assert_eq!(read_line(&mut a).unwrap(), b"{\"ok\":true}");
        let mut rest = [0u8; 6];
        a.read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"STREAM");
    }
}
