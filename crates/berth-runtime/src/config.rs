//! Loading and validating a bundle's `config.json`.
//!
//! The runtime refuses a bad configuration before it creates anything, and every refusal names
//! the JSON path of the field at fault (`linux.namespaces[2].type: …`), so the author of the
//! config can fix it without reading runtime code.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// The newest runtime-spec version this runtime implements (reported in states and features).
pub const OCI_VERSION: &str = "1.3.0";
/// The oldest runtime-spec version accepted.
pub const OCI_VERSION_MIN: &str = "1.0.0";

/// Reads and parses `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = fs::read(&path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    parse(&data)
}

/// Parses config JSON; errors carry the path of the field that failed.
pub fn parse(data: &[u8]) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Error::Config(inner.to_string())
        } else {
            Error::config(path, inner.to_string())
        }
    })
}

/// Checks that `version` is a 1.0.x … 1.3.x runtime-spec version.
pub fn check_version(version: &str) -> Result<()> {
    let core = version.split(['-', '+']).next().unwrap_or("");
    let mut parts = core.split('.');
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    let patch_ok = parts.next().is_none_or(|p| p.parse::<u32>().is_ok());
    match (major, minor) {
        (Some(1), Some(m)) if m <= 3 && patch_ok && parts.next().is_none() => Ok(()),
        _ => Err(Error::config(
            "ociVersion",
            format!(
                "{version:?} is not supported (this runtime accepts {OCI_VERSION_MIN} to 1.3.x)"
            ),
        )),
    }
}

/// The container's root filesystem directory, with a relative `root.path` taken from the bundle.
pub fn rootfs(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::config("root", "missing"))?;
    let p = root.path();
    Ok(if p.is_absolute() {
        p.clone()
    } else {
        bundle.join(p)
    })
}

/// Whether the config asks for a new namespace of `typ` (listed without a path).
pub fn new_namespace(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    namespaces(spec)
        .iter()
        .any(|n| n.typ() == typ && n.path().is_none())
}

/// Whether the config lists a namespace of `typ` at all (new or joined).
pub fn has_namespace(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|n| n.typ() == typ)
}

/// The namespace list, empty when absent.
pub fn namespaces(spec: &Spec) -> &[oci_spec::runtime::LinuxNamespace] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or(&[])
}

/// The spelling of a namespace type used in config.json and in /proc/<pid>/ns.
pub fn ns_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Validates a parsed config for `create`/`run`. `bundle` resolves a relative root path.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<()> {
    check_version(spec.version())?;

    let rootfs = rootfs(spec, bundle)?;
    match fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::config(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ));
        }
        Err(e) => {
            return Err(Error::config(
                "root.path",
                format!("{}: {e}", rootfs.display()),
            ));
        }
    }

    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing (create needs a process to run)"))?;
    validate_process(process, "process")?;

    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            let d = m.destination();
            if d.as_os_str().is_empty() {
                return Err(Error::config(
                    format!("mounts[{i}].destination"),
                    "must not be empty",
                ));
            }
            if let Some(opts) = m.options() {
                let parsed = crate::mountopts::MountOptions::parse(opts);
                if parsed.idmap.is_some()
                    && (m.uid_mappings().is_none() || m.gid_mappings().is_none())
                {
                    return Err(Error::config(
                        format!("mounts[{i}].options"),
                        "idmap needs uidMappings and gidMappings on the mount",
                    ));
                }
            }
        }
    }

    let Some(linux) = spec.linux() else {
        return Ok(());
    };

    let mut seen = HashSet::new();
    for (i, ns) in namespaces(spec).iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(Error::config(
                format!("linux.namespaces[{i}].type"),
                format!("duplicate namespace type {}", ns_name(ns.typ())),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(Error::config(
                    format!("linux.namespaces[{i}].path"),
                    format!("{} must be an absolute path", p.display()),
                ));
            }
            if let Err(e) = fs::metadata(p) {
                return Err(Error::config(
                    format!("linux.namespaces[{i}].path"),
                    format!("{}: {e}", p.display()),
                ));
            }
        }
    }

    let userns = has_namespace(spec, LinuxNamespaceType::User);
    let new_userns = new_namespace(spec, LinuxNamespaceType::User);
    for (field, maps) in [
        ("linux.uidMappings", linux.uid_mappings()),
        ("linux.gidMappings", linux.gid_mappings()),
    ] {
        if maps.as_ref().is_some_and(|m| !m.is_empty()) && !userns {
            return Err(Error::config(
                field,
                "set, but linux.namespaces has no user namespace",
            ));
        }
    }
    if new_userns
        && (linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
            || linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()))
    {
        return Err(Error::config(
            "linux.uidMappings",
            "a new user namespace needs both uidMappings and gidMappings",
        ));
    }

    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        && !new_namespace(spec, LinuxNamespaceType::Uts)
        && !has_namespace(spec, LinuxNamespaceType::Uts)
    {
        return Err(Error::config(
            "hostname",
            "setting the hostname needs a UTS namespace in linux.namespaces",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty())
        && !has_namespace(spec, LinuxNamespaceType::Uts)
    {
        return Err(Error::config(
            "domainname",
            "setting the domainname needs a UTS namespace in linux.namespaces",
        ));
    }

    if let Some(sysctl) = linux.sysctl() {
        let mut keys: Vec<_> = sysctl.keys().collect();
        keys.sort();
        for key in keys {
            check_sysctl(spec, key).map_err(|m| Error::config(format!("linux.sysctl.{key}"), m))?;
        }
    }

    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
        && !new_namespace(spec, LinuxNamespaceType::Time)
    {
        return Err(Error::config(
            "linux.timeOffsets",
            "set, but linux.namespaces has no new time namespace",
        ));
    }

    if let Some(p) = linux.rootfs_propagation()
        && crate::mountopts::propagation_flag(p).is_none()
    {
        return Err(Error::config(
            "linux.rootfsPropagation",
            format!("unknown propagation {p:?}"),
        ));
    }

    if let Some(devices) = linux.devices() {
        for (i, d) in devices.iter().enumerate() {
            if !d.path().is_absolute() {
                return Err(Error::config(
                    format!("linux.devices[{i}].path"),
                    format!("{} must be an absolute path", d.path().display()),
                ));
            }
        }
    }

    if let Some(mp) = linux.masked_paths() {
        for (i, p) in mp.iter().enumerate() {
            if !p.starts_with('/') {
                return Err(Error::config(
                    format!("linux.maskedPaths[{i}]"),
                    format!("{p} must be an absolute path"),
                ));
            }
        }
    }
    if let Some(rp) = linux.readonly_paths() {
        for (i, p) in rp.iter().enumerate() {
            if !p.starts_with('/') {
                return Err(Error::config(
                    format!("linux.readonlyPaths[{i}]"),
                    format!("{p} must be an absolute path"),
                ));
            }
        }
    }
    if let Some(p) = linux.personality()
        && let Some(flags) = p.flags()
        && !flags.is_empty()
    {
        return Err(Error::config(
            "linux.personality.flags",
            "no personality flags are supported",
        ));
    }
    Ok(())
}

/// Validates a process section (the container's or an `exec` one). `field` is its JSON path.
pub fn validate_process(p: &oci_spec::runtime::Process, field: &str) -> Result<()> {
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::config(format!("{field}.args"), "must not be empty"));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::config(
            format!("{field}.cwd"),
            format!("{:?} must be an absolute path", p.cwd()),
        ));
    }
    if let Some(env) = p.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') {
                return Err(Error::config(
                    format!("{field}.env[{i}]"),
                    format!("{e:?} is not of the form NAME=value"),
                ));
            }
            if e.contains('\0') {
                return Err(Error::config(
                    format!("{field}.env[{i}]"),
                    "contains a NUL byte",
                ));
            }
        }
    }
    if let Some(rl) = p.rlimits() {
        let mut seen = HashSet::new();
        for (i, r) in rl.iter().enumerate() {
            if r.soft() > r.hard() {
                return Err(Error::config(
                    format!("{field}.rlimits[{i}]"),
                    format!("soft limit {} exceeds hard limit {}", r.soft(), r.hard()),
                ));
            }
            if !seen.insert(format!("{:?}", r.typ())) {
                return Err(Error::config(
                    format!("{field}.rlimits[{i}].type"),
                    "duplicate rlimit type",
                ));
            }
        }
    }
    if let Some(o) = p.oom_score_adj()
        && !(-1000..=1000).contains(&o)
    {
        return Err(Error::config(
            format!("{field}.oomScoreAdj"),
            format!("{o} is outside -1000..1000"),
        ));
    }
    if let Some(u) = p.user().umask()
        && u > 0o777
    {
        return Err(Error::config(
            format!("{field}.user.umask"),
            format!("{u:o} is not a valid umask"),
        ));
    }
    Ok(())
}

/// Refuses sysctls that are not namespaced or whose namespace the container shares with the
/// host, as runc does: setting them would change the host.
fn check_sysctl(spec: &Spec, key: &str) -> Result<(), String> {
    if key.is_empty() || key.contains("..") || key.starts_with(['/', '.']) {
        return Err("invalid sysctl name".into());
    }
    let key = key.replace('/', ".");
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if ipc.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
        return if new_namespace(spec, LinuxNamespaceType::Ipc)
            || has_namespace(spec, LinuxNamespaceType::Ipc)
        {
            Ok(())
        } else {
            Err("needs an IPC namespace in linux.namespaces".into())
        };
    }
    if key.starts_with("net.") {
        return if has_namespace(spec, LinuxNamespaceType::Network) {
            Ok(())
        } else {
            Err("needs a network namespace in linux.namespaces".into())
        };
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return if has_namespace(spec, LinuxNamespaceType::Uts) {
            Ok(())
        } else {
            Err("needs a UTS namespace in linux.namespaces".into())
        };
    }
    if key == "kernel.ping_group_range" || key == "kernel.unprivileged_userns_clone" {
        // Per-user-namespace or harmless in a new user namespace.
        if new_namespace(spec, LinuxNamespaceType::User) {
            return Ok(());
        }
    }
    Err("is not namespaced; setting it would change the host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_in_range_are_accepted() {
        for v in [
            "1.0.0",
            "1.0.2-dev",
            "1.1.0",
            "1.2.1",
            "1.3.0",
            "1.3.0-rc.1",
            "1.0",
        ] {
            assert!(check_version(v).is_ok(), "{v}");
        }
        for v in ["0.9.0", "1.4.0", "2.0.0", "", "1.x.0", "1.2.3.4"] {
            let e = check_version(v).unwrap_err().to_string();
            assert!(e.starts_with("config.json: ociVersion:"), "{e}");
        }
    }

    #[test]
    fn parse_errors_name_the_field() {
        let bad = br#"{"ociVersion":"1.0.0","process":{"cwd":"/","user":{"uid":0,"gid":0},
            "capabilities":{"bounding":["CAP_CHOWN","CAP_NOPE"]}}}"#;
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains("process.capabilities.bounding"), "{e}");
        assert!(e.contains("CAP_NOPE"), "{e}");

        let bad = br#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"bogus"}]}}"#;
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains("linux.namespaces[0].type"), "{e}");
    }
}
