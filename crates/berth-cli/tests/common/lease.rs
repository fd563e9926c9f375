//! The private dockerd that berth-cli's tests (and berthd's save/load tests, which include
//! this file) share across test processes: each process holds a shared flock on
//! `BASE/lease` for its whole life; the first to find no daemon starts
//! `dockerd-watchdog.sh` detached, which stops dockerd and removes its state once no process
//! has held the lease for a few seconds.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const BASE: &str = "/tmp/berth-cli-tests";

/// A lease on the shared dockerd, up and answering at `host`.
pub struct Lease {
    pub host: String,
    pub base: PathBuf,
    /// Held exclusively while the caller finishes setting the daemon up (images), so that
    /// two processes never import at once; drop it when done.
    pub start: File,
    pub lease: File,
}

fn flock(f: &File, op: i32) {
    // SAFETY: flock on a descriptor we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), op) };
    assert_eq!(r, 0, "flock: {}", std::io::Error::last_os_error());
}

fn ping(sock: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut b = [0u8; 12];
    s.read_exact(&mut b).is_ok() && &b[9..12] == b"200"
}

/// Takes a lease on the shared dockerd, starting it (through its watchdog) when none runs.
pub fn acquire() -> Lease {
    let base = PathBuf::from(BASE);
    std::fs::create_dir_all(&base).unwrap();
    let start = File::create(base.join("start.lock")).unwrap();
    flock(&start, libc::LOCK_EX);
    let lease = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(base.join("lease"))
        .unwrap();
    flock(&lease, libc::LOCK_SH);
    let sock = base.join("run/docker.sock");
    if !ping(&sock) {
        // The same path from either crate that includes this file.
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../berth-cli/tests/dockerd-watchdog.sh");
        // setsid --fork: the watchdog outlives this process in its own session.
        let st = Command::new("setsid")
            .arg("--fork")
            .arg(&script)
            .arg(&base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("start dockerd watchdog");
        assert!(st.success(), "setsid failed");
        let t0 = Instant::now();
        while !ping(&sock) {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "dockerd did not come up; log:\n{}",
                std::fs::read_to_string(base.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Lease {
        host: format!("unix://{}", sock.display()),
        base,
        start,
        lease,
    }
}
