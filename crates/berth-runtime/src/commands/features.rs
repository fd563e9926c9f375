//! `features`: what this runtime implements, as the OCI features document.

use serde_json::json;

use crate::config::{OCI_VERSION, OCI_VERSION_MIN};
use crate::error::Result;

pub fn run() -> Result<i32> {
    let doc = json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::mountopts::known_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": crate::caps::known_names(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true},
            "seccomp": crate::seccomp::features(),
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}},
            "netDevices": {"enabled": false}
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features.version": OCI_VERSION,
            "io.github.berth.runtime.version": env!("CARGO_PKG_VERSION")
        }
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}
