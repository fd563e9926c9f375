//! Attach and exec streams: the hijacked client connection spliced to a stream from the
//! shim (stdcopy frames or raw tty bytes one way, stdin the other), with detach keys.

use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::Pin;
use std::sync::Arc;

use berth_server::backend::{BoxConn, Session};
use berth_types::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// An attach waiting for its container to start.
pub struct Pending {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tx: oneshot::Sender<StdUnixStream>,
}

/// Where the shim side of a session comes from.
pub(crate) enum Source {
    Ready(StdUnixStream),
    Waiting(oneshot::Receiver<StdUnixStream>),
}

/// Called when the stream ends (exec: records the exit code).
pub(crate) type OnEnd = Box<dyn FnOnce() + Send>;

/// A hijacked attach or exec stream.
pub(crate) struct Splice {
    pub tty: bool,
    pub stdin: bool,
    pub detach_keys: Vec<u8>,
    pub source: Source,
    pub on_end: Option<OnEnd>,
    /// Keeps the container alive in the engine while streaming (nothing else).
    pub _hold: Option<Arc<crate::engine::Ctr>>,
}

impl Session for Splice {
    fn tty(&self) -> bool {
        self.tty
    }

    fn run(
        self: Box<Self>,
        conn: BoxConn,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut me = *self;
            let on_end = me.on_end.take();
            let std_stream = match me.source {
                Source::Ready(s) => Some(s),
                Source::Waiting(rx) => rx.await.ok(),
            };
            if let Some(s) = std_stream
                && let Err(e) = splice(s, conn, me.stdin, &me.detach_keys).await
            {
                tracing::debug!("attach stream: {e}");
            }
            if let Some(f) = on_end {
                f();
            }
        })
    }
}

async fn splice(s: StdUnixStream, conn: BoxConn, stdin: bool, keys: &[u8]) -> std::io::Result<()> {
    s.set_nonblocking(true)?;
    let shim = tokio::net::UnixStream::from_std(s)?;
    let (mut shim_r, mut shim_w) = shim.into_split();
    let (mut conn_r, mut conn_w) = tokio::io::split(conn);
    let out = async {
        let r = tokio::io::copy(&mut shim_r, &mut conn_w).await;
        let _ = conn_w.flush().await;
        let _ = conn_w.shutdown().await;
        r.map(|_| ())
    };
    let input = async {
        let mut buf = vec![0u8; 32 * 1024];
        let mut held: Vec<u8> = Vec::new();
        loop {
            let n = conn_r.read(&mut buf).await?;
            if n == 0 {
                if stdin {
                    let _ = shim_w.shutdown().await;
                }
                // The client closed its side: keep streaming output until the process ends.
                return std::future::pending::<std::io::Result<bool>>().await;
            }
            if !stdin {
                continue;
            }
            let mut out = Vec::with_capacity(n);
            for &b in &buf[..n] {
                if !keys.is_empty() && b == keys[held.len()] {
                    held.push(b);
                    if held.len() == keys.len() {
                        shim_w.write_all(&out).await?;
                        return Ok(true);
                    }
                    continue;
                }
                out.append(&mut held);
                if !keys.is_empty() && b == keys[0] {
                    held.push(b);
                } else {
                    out.push(b);
                }
            }
            shim_w.write_all(&out).await?;
        }
    };
    tokio::select! {
        r = out => r,
        r = input => r.map(|_detached| ()),
    }
}

/// Parses Docker's `detachKeys` (`ctrl-p,ctrl-q`, `a,b`).
pub(crate) fn parse_detach_keys(s: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let p = part.trim();
        if let Some(c) = p.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b'@'] => 0,
                [x @ b'a'..=b'z'] => x - b'a' + 1,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => {
                    return Err(Error::invalid_parameter(format!(
                        "Invalid detach keys ({s}) provided"
                    )));
                }
            };
            out.push(b);
        } else if p.len() == 1 {
            out.push(p.as_bytes()[0]);
        } else {
            return Err(Error::invalid_parameter(format!(
                "Invalid detach keys ({s}) provided"
            )));
        }
    }
    Ok(out)
}

/// The default detach sequence, ctrl-p ctrl-q.
pub(crate) const DEFAULT_DETACH: &[u8] = &[16, 17];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("a,ctrl-@").unwrap(), vec![b'a', 0]);
        assert!(parse_detach_keys("ctrl-pp").is_err());
    }
}
