//! The private dockerd of berth-cli's tests, shared through the same lease (berth-cli's
//! `tests/common/lease.rs`): whichever test binary comes first starts it, the watchdog stops
//! it and removes its containers once no test process holds the lease.
#![allow(dead_code)]

#[path = "../../../berth-cli/tests/common/lease.rs"]
mod lease;

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{Out, busybox_tar, run};

pub const DOCKER: &str = "/usr/local/bin/docker";

pub struct Dockerd {
    pub host: String,
    pub base: PathBuf,
    _lease: File,
}

/// The shared dockerd (started on first use), with `busybox:latest` imported.
pub fn dockerd() -> &'static Dockerd {
    static D: OnceLock<Dockerd> = OnceLock::new();
    D.get_or_init(|| {
        let l = lease::acquire();
        let d = Dockerd {
            host: l.host,
            base: l.base,
            _lease: l.lease,
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
        drop(l.start);
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
