//! `GET /containers/{id}/logs`: reads the json-file log the shim writes (and its rotated
//! files), filters and frames it, and follows it while the container runs.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_server::backend::{ItemStream, LogEntry, LogStream, LogsOptions};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use crate::clock;
use crate::engine::WaitState;

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// The entry a log line gives, if the options keep it.
fn encode(e: &Entry, opts: &LogsOptions) -> Option<LogEntry> {
    let stream = match e.stream.as_str() {
        "stdout" if opts.stdout => LogStream::Stdout,
        "stderr" if opts.stderr => LogStream::Stderr,
        _ => return None,
    };
    let ns = clock::parse_rfc3339(&e.time).unwrap_or(0);
    if opts.since_ns.is_some_and(|s| ns < s) || opts.until_ns.is_some_and(|u| ns > u) {
        return None;
    }
    Some(LogEntry {
        stream,
        time_ns: ns,
        data: Bytes::copy_from_slice(e.log.as_bytes()),
    })
}

/// The log's files, oldest first: `<log>.N`, …, `<log>.1`, `<log>`.
fn files(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        && let Ok(rd) = std::fs::read_dir(dir)
    {
        for ent in rd.flatten() {
            let n = ent.file_name();
            let Some(n) = n.to_str() else { continue };
            if let Some(k) = n
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix('.'))
                .and_then(|k| k.parse().ok())
            {
                rotated.push((k, ent.path()));
            }
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    out.push(path.to_path_buf());
    out
}

/// Streams the log as the API returns it.
pub(crate) fn stream(
    path: PathBuf,
    opts: LogsOptions,
    wait: watch::Receiver<WaitState>,
) -> ItemStream<LogEntry> {
    let (tx, rx) = mpsc::channel::<LogEntry>(64);
    std::thread::Builder::new()
        .name("logs".into())
        .spawn(move || {
            if let Err(e) = pump(&path, &opts, wait, &tx) {
                tracing::debug!("logs of {}: {e}", path.display());
            }
        })
        .ok();
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok(b), rx))
    }))
}

fn pump(
    path: &Path,
    opts: &LogsOptions,
    wait: watch::Receiver<WaitState>,
    tx: &mpsc::Sender<LogEntry>,
) -> std::io::Result<()> {
    let send = |v: LogEntry| tx.blocking_send(v).is_ok();
    // Past lines (with tail applied), then the live file from where they ended.
    let mut tail: VecDeque<LogEntry> = VecDeque::new();
    let limit = opts.tail;
    let mut live: Option<(File, u64)> = None;
    let all = files(path);
    let last = all.len() - 1;
    for (i, p) in all.iter().enumerate() {
        let f = match File::open(p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let ino = f.metadata()?.ino();
        let mut r = BufReader::new(f);
        let mut line = String::new();
        let mut pos = 0u64;
        loop {
            line.clear();
            let n = r.read_line(&mut line)?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            pos += n as u64;
            let Ok(e) = serde_json::from_str::<Entry>(&line) else {
                continue;
            };
            if let Some(b) = encode(&e, opts) {
                match limit {
                    Some(0) => {}
                    Some(k) => {
                        if tail.len() == k {
                            tail.pop_front();
                        }
                        tail.push_back(b);
                    }
                    None => {
                        if !send(b) {
                            return Ok(());
                        }
                    }
                }
            }
        }
        if i == last {
            let mut f = r.into_inner();
            f.seek(SeekFrom::Start(pos))?;
            live = Some((f, ino));
        }
    }
    for b in tail {
        if !send(b) {
            return Ok(());
        }
    }
    if !opts.follow {
        return Ok(());
    }
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut idle_after_exit = 0;
    loop {
        let mut got = false;
        if let Some((f, _)) = live.as_mut() {
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                got = true;
                pending.extend_from_slice(&buf[..n]);
            }
            while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                if let Ok(e) = serde_json::from_slice::<Entry>(&line)
                    && let Some(b) = encode(&e, opts)
                    && !send(b)
                {
                    return Ok(());
                }
            }
        }
        if opts.until_ns.is_some_and(|u| clock::now_ns() > u) {
            return Ok(());
        }
        if tx.is_closed() {
            return Ok(());
        }
        // Rotation: the path now names a new file; the old one is finished.
        let cur = std::fs::metadata(path).ok().map(|m| m.ino());
        if cur.is_some()
            && cur != live.as_ref().map(|(_, i)| *i)
            && !got
            && let Ok(f) = File::open(path)
        {
            let ino = f.metadata()?.ino();
            live = Some((f, ino));
            pending.clear();
            continue;
        }
        let alive = {
            let w = wait.borrow();
            w.alive && !w.removed
        };
        if !alive && !got {
            // The shim flushes the log before it reports the exit; one more pass suffices.
            idle_after_exit += 1;
            if idle_after_exit > 1 {
                return Ok(());
            }
        }
        if !got {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_come_oldest_first() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x-json.log");
        for n in [
            "x-json.log",
            "x-json.log.1",
            "x-json.log.2",
            "x-json.log.10",
            "other",
        ] {
            std::fs::write(d.path().join(n), "").unwrap();
        }
        let names: Vec<String> = files(&p)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "x-json.log.10",
                "x-json.log.2",
                "x-json.log.1",
                "x-json.log"
            ]
        );
    }

    #[test]
    fn entries_and_filters() {
        let e = Entry {
            log: "hi\n".into(),
            stream: "stderr".into(),
            time: "2025-01-01T00:00:00.5Z".into(),
        };
        let mut o = LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let got = encode(&e, &o).unwrap();
        assert_eq!(&got.data[..], b"hi\n");
        assert!(matches!(got.stream, LogStream::Stderr));
        assert_eq!(got.time_ns, 1_735_689_600_500_000_000);
        o.since_ns = Some(1_735_689_601_000_000_000);
        assert!(encode(&e, &o).is_none());
        o.since_ns = None;
        o.stderr = false;
        assert!(encode(&e, &o).is_none());
    }
}
