//! The private dockerd of berth-cli's tests (`crates/berth-cli/tests/dockerd-watchdog.sh`),
//! shared through the same flock lease: whichever test binary comes first starts it, the
//! watchdog stops it and removes its containers once no test process holds the lease.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{Out, busybox_tar, run};

/// The same base directory as berth-cli's tests: one dockerd for both.
pub const BASE: &str = "/tmp/berth-cli-tests";
pub const DOCKER: &str = "/usr/local/bin/docker";

pub struct Dockerd {
    pub host: String,
    pub base: PathBuf,
    _lease: File,
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

/// The shared dockerd (started on first use), with `busybox:latest` imported.
pub fn dockerd() -> &'static Dockerd {
    static D: OnceLock<Dockerd> = OnceLock::new();
    D.get_or_init(|| {
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
            let script = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../berth-cli/tests/dockerd-watchdog.sh");
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
        let d = Dockerd {
            host: format!("unix://{}", sock.display()),
            base,
            _lease: lease,
        };
        if d.docker(&["image", "inspect", "busybox:latest"]).code != 0 {
            let tar = busybox_tar();
            d.docker(&[
                "import",
                "-c",
                "CMD [\"sh\"]",
                tar.to_str().unwrap(),
                "busybox:latest",
            ])
            .ok();
        }
        drop(start);
        d
    })
}

impl Dockerd {
    pub fn docker(&self, args: &[&str]) -> Out {
        run(
            Command::new("timeout")
                .arg("300")
                .arg(DOCKER)
                .args(args)
                .env("DOCKER_HOST", &self.host)
                .env("DOCKER_CONFIG", self.base.join("cfg"))
                .env_remove("DOCKER_API_VERSION"),
            None,
        )
    }
}
