//! The container log in Docker's json-file format, written without ever blocking the shim.
//!
//! - [`Splitter`] cuts a stream into messages exactly as dockerd's log copier does: one per
//!   line, a line longer than 16 KiB in 16 KiB partial pieces, and what is left at the end of
//!   the stream as a partial message. Partial messages have no trailing `\n` in `"log"`.
//! - [`encode_entry`] writes `{"log":"…","stream":"stdout","time":"…"}` with dockerd's
//!   escaping and its time format (RFC 3339, UTC, Go's `RFC3339Nano`: nanoseconds with
//!   trailing zeros trimmed).
//! - [`LogFile`] appends entries and rotates as dockerd does: before writing an entry, if the
//!   file already holds `max-size` bytes or more, `file.log.(N-2)` → `file.log.(N-1)`, …,
//!   `file.log` → `file.log.1`, and a new `file.log` (with `max-file` 1 the file is truncated).
//! - [`LogSink`] is the shim's end: a disk that stalls would block `write(2)` and so the
//!   shim's loop, so the file is written by a **log writer thread** (64 KiB stack) that reads
//!   finished lines from a pipe. The main loop writes into that pipe without blocking (1 MiB
//!   kernel buffer, then up to 256 KiB queued in the shim); if both are full it drops whole
//!   messages (counted in shim.log) rather than stop draining the container — dockerd's
//!   `mode=non-blocking`. A thread rather than a forked process: one process per container
//!   keeps the monitor's memory in one address space (the pipe's buffer is the kernel's).
//!   The writer thread only reads the pipe and writes, renames and opens log files; it takes
//!   no lock the main loop holds across a fork, and every child the shim starts after it
//!   (the runtime, through `std::process::Command`) runs only async-signal-safe code
//!   between fork and exec.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_shim::args::LogConfig;

use crate::diag::warning;
use crate::sys;

/// Longest message before a line is cut into partial messages (dockerd's copier buffer).
pub const MAX_MESSAGE: usize = 16 * 1024;

/// Most bytes of finished entries the shim queues for the writer beyond the pipe's buffer.
const QUEUE_MAX: usize = 256 << 10;

/// Size asked for the pipe to the log writer.
const PIPE_SIZE: usize = 1 << 20;

/// Formats a time as Go's `time.RFC3339Nano` in UTC, which is what dockerd writes:
/// `2024-01-02T03:04:05.123456789Z`, trailing zeros of the fraction trimmed.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let mut s = format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos != 0 {
        let frac = format!(".{nanos:09}");
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Appends `s` as a JSON string the way dockerd's json-file does (`\n`, `\r`, `\t` short;
/// `<`, `>`, `&` and other control characters as `\u00XX`, U+2028/U+2029 escaped, each invalid UTF-8 byte as `\ufffd`),
/// followed by an escaped newline when `newline`.
fn push_json_str(out: &mut Vec<u8>, s: &[u8], newline: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&') => {
                    let b = c as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 15) as usize]);
                }
                '\u{2028}' => out.extend_from_slice(b"\\u2028"),
                '\u{2029}' => out.extend_from_slice(b"\\u2029"),
                c => {
                    let mut b = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
            }
        }
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    if newline {
        out.extend_from_slice(b"\\n");
    }
    out.push(b'"');
}

/// Appends one json-file line for a message (`line` without its newline; `partial` when the
/// message is not a whole line, and so gets no `\n`).
pub fn encode_entry(out: &mut Vec<u8>, stream: &str, line: &[u8], partial: bool, time: &str) {
    out.push(b'{');
    if !line.is_empty() || !partial {
        out.extend_from_slice(b"\"log\":");
        push_json_str(out, line, !partial);
        out.push(b',');
    }
    out.extend_from_slice(b"\"stream\":\"");
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// Cuts one output stream into log messages, as dockerd's copier does.
#[derive(Debug, Default)]
pub struct Splitter {
    pending: Vec<u8>,
}

impl Splitter {
    /// Feeds bytes; `emit(message, partial)` gets every finished message.
    pub fn push(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8], bool)) {
        while !data.is_empty() {
            let room = MAX_MESSAGE - self.pending.len();
            let take = room.min(data.len());
            let (now, rest) = data.split_at(take);
            data = rest;
            if self.pending.is_empty() {
                // Fast path: whole lines straight from the input.
                let mut start = 0;
                while let Some(p) = now[start..].iter().position(|&b| b == b'\n') {
                    emit(&now[start..start + p], false);
                    start += p + 1;
                }
                self.pending.extend_from_slice(&now[start..]);
            } else {
                self.pending.extend_from_slice(now);
                let mut start = 0;
                while let Some(p) = self.pending[start..].iter().position(|&b| b == b'\n') {
                    emit(&self.pending[start..start + p], false);
                    start += p + 1;
                }
                self.pending.drain(..start);
            }
            if self.pending.len() == MAX_MESSAGE {
                emit(&self.pending, true);
                self.pending.clear();
            }
        }
        if self.pending.capacity() > MAX_MESSAGE && self.pending.is_empty() {
            self.pending = Vec::new();
        }
    }

    /// The stream ended: what is left is a partial message.
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8], bool)) {
        if !self.pending.is_empty() {
            emit(&self.pending, true);
        }
        self.pending = Vec::new();
    }
}

/// A json-file log with dockerd's rotation.
pub struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
}

fn open_log(path: &std::path::Path, truncate: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).append(true).mode(0o640);
    if truncate {
        o.truncate(true).write(true).append(false);
    }
    o.open(path)
}

impl LogFile {
    /// Opens (appending to) the log.
    pub fn open(cfg: &LogConfig) -> io::Result<LogFile> {
        let file = open_log(&cfg.path, false)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path: cfg.path.clone(),
            file,
            size,
            max_size: cfg.max_size,
            max_file: cfg.max_file.max(1),
        })
    }

    /// Writes one entry (a whole json line), rotating first if the file is full.
    pub fn write_entry(&mut self, line: &[u8]) -> io::Result<()> {
        if let Some(max) = self.max_size
            && self.size >= max
        {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        p.into()
    }

    fn rotate(&mut self) -> io::Result<()> {
        let mut truncate = true;
        if self.max_file >= 2 {
            for i in (2..self.max_file).rev() {
                match std::fs::rename(self.numbered(i - 1), self.numbered(i)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, self.numbered(1))?;
            truncate = false;
        }
        self.file = open_log(&self.path, truncate)?;
        self.size = 0;
        Ok(())
    }
}

/// First size of the writer thread's read buffer; it grows for a longer entry and shrinks
/// back once that entry is written, so a quiet container keeps only this much.
const WRITER_BUF: usize = 16 << 10;

/// Stack of the writer thread: it reads, scans for newlines and writes, with every buffer on
/// the heap, so a few pages are all it touches.
const WRITER_STACK: usize = 64 << 10;

/// How long [`LogSink::finish`] waits for the writer to write what it was handed.
const FINISH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The log writer thread: reads finished json lines from `rx` and writes them to `file`
/// until the pipe ends (the shim closed its end), then returns.
fn writer_main(rx: OwnedFd, mut file: LogFile) {
    sys::block_all_signals();
    let mut buf = vec![0u8; WRITER_BUF];
    let mut have = 0;
    let mut failed = false;
    let mut write = |file: &mut LogFile, entry: &[u8]| {
        if let Err(e) = file.write_entry(entry)
            && !std::mem::replace(&mut failed, true)
        {
            warning!("writing log {}: {e}", file.path.display());
        }
    };
    loop {
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = match rustix::io::read(&rx, &mut buf[have..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                warning!("log writer pipe: {e}");
                break;
            }
        };
        have += n;
        let mut start = 0;
        while let Some(p) = buf[start..have].iter().position(|&b| b == b'\n') {
            write(&mut file, &buf[start..start + p + 1]);
            start += p + 1;
        }
        buf.copy_within(start..have, 0);
        have -= start;
        if buf.len() > WRITER_BUF && have <= WRITER_BUF / 2 {
            buf.truncate(WRITER_BUF);
            buf.shrink_to_fit();
        }
    }
    if have > 0 {
        write(&mut file, &buf[..have]);
    }
}

/// The shim's end of the log: encodes entries and hands them to the writer thread.
pub struct LogSink {
    pipe: Option<OwnedFd>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// Read end of a pipe whose write end the writer thread holds until it returns: hang-up
    /// on it means the writer is done.
    writer_done: Option<OwnedFd>,
    queue: Vec<u8>,
    qpos: usize,
    scratch: Vec<u8>,
    dropped: u64,
    cfg: LogConfig,
    /// Synchronous fallback when the writer is gone.
    direct: Option<LogFile>,
}

impl LogSink {
    /// Opens the log (so that a bad path fails the create) and starts the writer thread.
    ///
    /// Called after SIGCHLD is blocked (`sys::sigchld_fd`): the thread inherits the mask, so
    /// every SIGCHLD stays pending for the main loop's signalfd.
    pub fn start(cfg: &LogConfig) -> io::Result<LogSink> {
        let file = LogFile::open(cfg)?;
        let (rx, tx) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        sys::grow_pipe(tx.as_fd(), PIPE_SIZE);
        sys::set_nonblocking(tx.as_fd())?;
        let (done_rx, done_tx) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let writer = std::thread::Builder::new()
            .name("log-writer".into())
            .stack_size(WRITER_STACK)
            .spawn(move || {
                let _done = done_tx;
                writer_main(rx, file)
            })?;
        Ok(LogSink {
            pipe: Some(tx),
            writer: Some(writer),
            writer_done: Some(done_rx),
            queue: Vec::new(),
            qpos: 0,
            scratch: Vec::new(),
            dropped: 0,
            cfg: cfg.clone(),
            direct: None,
        })
    }

    /// Logs one message.
    pub fn entry(&mut self, stream: &str, line: &[u8], partial: bool, time: &str) {
        let mut e = std::mem::take(&mut self.scratch);
        e.clear();
        encode_entry(&mut e, stream, line, partial, time);
        if let Some(f) = &mut self.direct {
            if let Err(err) = f.write_entry(&e) {
                warning!("writing log {}: {err}", self.cfg.path.display());
            }
        } else if self.pipe.is_some() {
            let queued = self.queue.len() - self.qpos;
            if queued == 0 {
                let n = self.write_pipe(&e);
                if n < e.len() {
                    self.queue.clear();
                    self.qpos = 0;
                    self.queue.extend_from_slice(&e[n..]);
                }
            } else if queued + e.len() <= QUEUE_MAX {
                self.queue.extend_from_slice(&e);
            } else {
                if self.dropped == 0 {
                    warning!(
                        "log {}: writer is behind, dropping messages",
                        self.cfg.path.display()
                    );
                }
                self.dropped += 1;
            }
        }
        if e.capacity() <= 64 << 10 {
            self.scratch = e;
        }
    }

    fn write_pipe(&mut self, data: &[u8]) -> usize {
        let Some(p) = &self.pipe else {
            return data.len();
        };
        let mut done = 0;
        while done < data.len() {
            match rustix::io::write(p, &data[done..]) {
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => break,
                Err(e) => {
                    warning!("log writer pipe: {e}");
                    self.writer_gone();
                    return data.len();
                }
            }
        }
        done
    }

    /// The pipe to poll for writability, when entries are queued.
    pub fn pending_fd(&self) -> Option<BorrowedFd<'_>> {
        if self.qpos < self.queue.len() {
            self.pipe.as_ref().map(|p| p.as_fd())
        } else {
            None
        }
    }

    /// Moves queued entries into the pipe (when it is writable).
    pub fn flush_some(&mut self) {
        let q = std::mem::take(&mut self.queue);
        let n = self.write_pipe(&q[self.qpos..]);
        self.queue = q;
        self.qpos += n;
        if self.qpos >= self.queue.len() {
            self.queue.clear();
            self.qpos = 0;
            if self.queue.capacity() > 64 << 10 {
                self.queue = Vec::new();
            }
            if self.dropped > 0 {
                warning!(
                    "log {}: {} messages dropped",
                    self.cfg.path.display(),
                    self.dropped
                );
                self.dropped = 0;
            }
        }
    }

    /// The writer's pipe broke (the thread ended early): write synchronously from now on.
    fn writer_gone(&mut self) {
        if self.direct.is_some() {
            return;
        }
        self.pipe = None;
        self.writer = None;
        match LogFile::open(&self.cfg) {
            Ok(mut f) => {
                let rest = &self.queue[self.qpos..];
                if let Some(p) = rest.iter().position(|&b| b == b'\n') {
                    // Skip the remainder of a half-written entry.
                    let _ = f.write_entry(&rest[p + 1..]);
                }
                self.direct = Some(f);
            }
            Err(e) => warning!("reopening log {}: {e}", self.cfg.path.display()),
        }
        self.queue = Vec::new();
        self.qpos = 0;
    }

    /// Hands everything to the writer, closes the pipe and waits (bounded) for the writer
    /// thread to write it, so the log is complete when this returns.
    pub fn finish(&mut self) {
        if let Some(p) = &self.pipe {
            let _ = rustix::fs::fcntl_setfl(p, rustix::fs::OFlags::empty());
        }
        self.flush_some();
        self.pipe = None;
        if let Some(w) = self.writer.take() {
            let done = match self.writer_done.take() {
                Some(d) => sys::wait_hangup(d.as_fd(), FINISH_WAIT),
                None => true,
            };
            // Hang-up comes as the thread's closure returns: joining then only waits for the
            // thread's last instructions.
            if done {
                let _ = w.join();
            } else {
                warning!(
                    "log {}: writer still busy after {}s; the rest of the log is lost",
                    self.cfg.path.display(),
                    FINISH_WAIT.as_secs()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut |l, p| out.push((l.to_vec(), p)));
        }
        s.finish(&mut |l, p| out.push((l.to_vec(), p)));
        out
    }

    #[test]
    fn lines_and_partials() {
        assert_eq!(
            split(&[b"a\nb", b"c\n\nd"]),
            vec![
                (b"a".to_vec(), false),
                (b"bc".to_vec(), false),
                (b"".to_vec(), false),
                (b"d".to_vec(), true)
            ]
        );
        let long = vec![b'x'; 40 * 1024];
        let mut data = long.clone();
        data.push(b'\n');
        let got = split(&[&data[..1000], &data[1000..]]);
        let lens: Vec<(usize, bool)> = got.iter().map(|(l, p)| (l.len(), *p)).collect();
        assert_eq!(
            lens,
            vec![(16384, true), (16384, true), (40 * 1024 - 32768, false)]
        );
    }

    #[test]
    fn entries_match_dockerd() {
        let mut out = Vec::new();
        encode_entry(
            &mut out,
            "stdout",
            b"hi <&> \"q\" \\ \t\x01 \xff",
            false,
            "2024-01-01T00:00:00.5Z",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"log\":\"hi \\u003c\\u0026\\u003e \\\"q\\\" \\\\ \\t\\u0001 \\ufffd\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00.5Z\"}\n"
        );
        let mut out = Vec::new();
        encode_entry(&mut out, "stderr", "é\u{2028}".as_bytes(), true, "t");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"log\":\"é\\u2028\",\"stream\":\"stderr\",\"time\":\"t\"}\n"
        );
        let v: serde_json::Value = {
            let mut out = Vec::new();
            encode_entry(&mut out, "stdout", b"x", false, "t");
            serde_json::from_slice(&out).unwrap()
        };
        assert_eq!(v["log"], "x\n");
    }

    #[test]
    fn times() {
        let t = UNIX_EPOCH + std::time::Duration::new(1_704_067_200, 123_456_789);
        assert_eq!(rfc3339_nano(t), "2024-01-01T00:00:00.123456789Z");
        let t = UNIX_EPOCH + std::time::Duration::new(951_782_400 + 86_399, 500_000_000);
        assert_eq!(rfc3339_nano(t), "2000-02-29T23:59:59.5Z");
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn rotation_like_dockerd() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let cfg = LogConfig {
            path: path.clone(),
            max_size: Some(10),
            max_file: 3,
        };
        let mut f = LogFile::open(&cfg).unwrap();
        for i in 0..5 {
            f.write_entry(format!("line{i}-xxxxx\n").as_bytes())
                .unwrap();
        }
        // Each entry fills a file: 4 rotations, the 2 newest old files kept.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "line4-xxxxx\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("c.log.1")).unwrap(),
            "line3-xxxxx\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("c.log.2")).unwrap(),
            "line2-xxxxx\n"
        );
        assert!(!dir.path().join("c.log.3").exists());
        let cfg1 = LogConfig {
            path: dir.path().join("d.log"),
            max_size: Some(10),
            max_file: 1,
        };
        let mut f = LogFile::open(&cfg1).unwrap();
        f.write_entry(b"aaaaaaaaaaaa\n").unwrap();
        f.write_entry(b"b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&cfg1.path).unwrap(), "b\n");
    }
}
