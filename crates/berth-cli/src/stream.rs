//! Copying between the user's stdio and a hijacked attach/exec connection: stdin forwarded
//! (with client-side detach-key detection), the output written raw (tty) or demultiplexed
//! from docker's stdcopy frames to stdout and stderr.

use berth_api_types::stdcopy::{Decoder, Stream};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How a stream session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The daemon closed the output (the process exited or the stream ended).
    Eof,
    /// The user typed the detach sequence.
    Detached,
}

/// Parses docker's detach keys (`ctrl-p,ctrl-q`, `a,ctrl-@`) into bytes.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = c.as_bytes();
            if b.len() != 1 {
                return Err(format!("invalid detach key {k:?}"));
            }
            let c = b[0].to_ascii_lowercase();
            let code = match c {
                b'a'..=b'z' => c - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(format!("invalid detach key {k:?}")),
            };
            out.push(code);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("invalid detach key {k:?}"));
        }
    }
    Ok(out)
}

/// What to copy.
pub struct Session {
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Detach sequence watched on stdin (empty: none).
    pub detach: Vec<u8>,
}

/// Runs the session until the output ends or the user detaches.
pub fn pump(conn: UnixStream, leftover: Vec<u8>, s: &Session) -> io::Result<End> {
    let detached = Arc::new(AtomicBool::new(false));
    if s.stdin {
        let w = conn.try_clone()?;
        let keys = s.detach.clone();
        let flag = detached.clone();
        std::thread::spawn(move || forward_stdin(w, &keys, &flag));
    }
    let r = copy_output(conn, leftover, s);
    if detached.load(Ordering::SeqCst) {
        return Ok(End::Detached);
    }
    r.map(|()| End::Eof)
}

fn forward_stdin(mut w: UnixStream, keys: &[u8], detached: &AtomicBool) {
    let mut stdin = io::stdin().lock();
    let mut buf = [0u8; 8192];
    let mut held: Vec<u8> = Vec::new();
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let mut out = Vec::with_capacity(n);
        for &b in &buf[..n] {
            if keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == keys[held.len()] {
                held.push(b);
                if held.len() == keys.len() {
                    let _ = w.write_all(&out);
                    detached.store(true, Ordering::SeqCst);
                    let _ = w.shutdown(Shutdown::Both);
                    return;
                }
            } else {
                out.append(&mut held);
                if b == keys[0] {
                    held.push(b);
                } else {
                    out.push(b);
                }
            }
        }
        if w.write_all(&out).is_err() {
            return;
        }
    }
    if !held.is_empty() {
        let _ = w.write_all(&held);
    }
    let _ = w.shutdown(Shutdown::Write);
}

fn copy_output(mut conn: UnixStream, leftover: Vec<u8>, s: &Session) -> io::Result<()> {
    let mut dec = Decoder::default();
    let mut emit = |data: &[u8]| -> io::Result<()> {
        if s.tty {
            let mut o = io::stdout().lock();
            o.write_all(data)?;
            return o.flush();
        }
        dec.push(data);
        while let Some((st, payload)) = dec
            .next_frame()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        {
            match st {
                Stream::Stdout | Stream::Stdin => {
                    let mut o = io::stdout().lock();
                    o.write_all(&payload)?;
                    o.flush()?;
                }
                Stream::Stderr | Stream::System => {
                    let mut o = io::stderr().lock();
                    o.write_all(&payload)?;
                    o.flush()?;
                }
            }
        }
        Ok(())
    };
    emit(&leftover)?;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => emit(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("a,ctrl-@").unwrap(), vec![b'a', 0]);
        assert!(parse_detach_keys("ctrl-pp").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }
}
