//! Capabilities (`--cap-add`, `--cap-drop`, `--privileged`), `--security-opt` and the
//! seccomp profile.

use std::collections::HashSet;

use berth_api_types::models::HostConfig;
use oci_spec::runtime::{Capability, LinuxCapabilities, LinuxSeccomp};
use serde::Deserialize;
use serde::de::IntoDeserializer;

use super::{Host, Result, SpecError};
use crate::seccomp_profile::{self, Context, DockerProfile};

/// The capabilities Docker gives a container by default.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, by number (index = `CAP_…` value).
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The `CAP_…` name of an oci-spec capability.
pub(crate) fn cap_name(c: Capability) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("CAP_{c}"))
}

/// The oci-spec capability named `name` (`CAP_…`, known).
fn oci_cap(name: &str) -> Result<Capability> {
    Capability::deserialize(name.into_deserializer()).map_err(|_: serde::de::value::Error| {
        SpecError::system(format!("capability {name} is unknown to oci-spec"))
    })
}

/// Every capability this kernel has.
fn all_caps(last_cap: u32) -> Vec<&'static str> {
    ALL_CAPABILITIES
        .iter()
        .take(last_cap as usize + 1)
        .copied()
        .collect()
}

/// `ALL`, or a capability as `CAP_X` (from `x`, `X`, `cap_x`, `CAP_X`); unknown names are
/// refused naming the field.
fn normalize(list: &[String], field: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let up = c.trim().to_ascii_uppercase();
        let name = if up == "ALL" || up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        if name != "ALL" && !ALL_CAPABILITIES.contains(&name.as_str()) {
            return Err(SpecError::invalid(format!(
                "{field}[{i}]: unknown capability: {c:?}"
            )));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// The container's capabilities as Docker computes them: all with `--privileged`; with
/// `ALL` in cap-add, all but cap-drop; with `ALL` in cap-drop, only cap-add; otherwise the
/// defaults minus cap-drop plus cap-add. They make the bounding, effective and permitted
/// sets (the kernel clears the last two at exec for a non-root user); inheritable and
/// ambient stay empty.
pub(crate) fn capabilities(
    hc: &HostConfig,
    privileged: bool,
    last_cap: u32,
) -> Result<LinuxCapabilities> {
    let add = normalize(
        hc.cap_add.as_deref().unwrap_or_default(),
        "HostConfig.CapAdd",
    )?;
    let drop = normalize(
        hc.cap_drop.as_deref().unwrap_or_default(),
        "HostConfig.CapDrop",
    )?;
    let all = all_caps(last_cap);
    let has = |l: &[String], c: &str| l.iter().any(|x| x == c);
    let names: Vec<String> = if privileged {
        all.iter().map(|s| s.to_string()).collect()
    } else if has(&add, "ALL") {
        all.iter()
            .filter(|c| !has(&drop, c))
            .map(|s| s.to_string())
            .collect()
    } else if has(&drop, "ALL") {
        add.clone()
    } else {
        let mut v: Vec<String> = DEFAULT_CAPABILITIES
            .iter()
            .filter(|c| !has(&drop, c))
            .map(|s| s.to_string())
            .collect();
        for c in add {
            if !v.contains(&c) {
                v.push(c);
            }
        }
        v
    };
    // A capability this kernel lacks cannot be granted.
    if let Some(c) = names.iter().find(|c| !all.contains(&c.as_str())) {
        return Err(SpecError::invalid(format!(
            "HostConfig.CapAdd: capability {c} is not supported by this kernel"
        )));
    }
    let set: HashSet<Capability> = names.iter().map(|n| oci_cap(n)).collect::<Result<_>>()?;
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(None);
    caps.set_ambient(None);
    Ok(caps)
}

/// Which seccomp profile a request asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SeccompChoice {
    /// berth's default.
    Default,
    /// `seccomp=unconfined`.
    Unconfined,
    /// A profile of the request's (`seccomp=<json>`, as the CLI sends a file's contents).
    Custom(Box<DockerProfile>),
}

/// The parsed `--security-opt` list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SecurityOpts {
    pub no_new_privileges: bool,
    pub seccomp: SeccompChoice,
    /// `systempaths=unconfined`: no masked or read-only paths.
    pub unconfined_systempaths: bool,
    /// `writable-cgroups=true`: /sys/fs/cgroup mounted read-write.
    pub writable_cgroups: bool,
}

impl SecurityOpts {
    /// Reads `HostConfig.SecurityOpt`: `key=value` (or the legacy `key:value`).
    pub(crate) fn parse(opts: &[String]) -> Result<SecurityOpts> {
        let mut out = SecurityOpts {
            no_new_privileges: false,
            seccomp: SeccompChoice::Default,
            unconfined_systempaths: false,
            writable_cgroups: false,
        };
        for (i, opt) in opts.iter().enumerate() {
            let field = format!("HostConfig.SecurityOpt[{i}]");
            if opt == "no-new-privileges" {
                out.no_new_privileges = true;
                continue;
            }
            let (key, value) = opt
                .split_once('=')
                .or_else(|| opt.split_once(':'))
                .ok_or_else(|| {
                    SpecError::invalid(format!("{field}: invalid --security-opt: {opt:?}"))
                })?;
            let boolean = |v: &str| -> Result<bool> {
                match v {
                    "true" | "1" => Ok(true),
                    "false" | "0" => Ok(false),
                    _ => Err(SpecError::invalid(format!(
                        "{field}: invalid --security-opt {key} value: {v:?}"
                    ))),
                }
            };
            match key {
                "no-new-privileges" => out.no_new_privileges = boolean(value)?,
                "seccomp" => {
                    out.seccomp = match value {
                        "unconfined" => SeccompChoice::Unconfined,
                        "builtin" | "" => SeccompChoice::Default,
                        json if json.trim_start().starts_with('{') => {
                            let p = seccomp_profile::parse_profile(json.as_bytes())
                                .map_err(|e| SpecError::invalid(format!("{field}: {e}")))?;
                            if p.disables_seccomp() {
                                SeccompChoice::Unconfined
                            } else {
                                SeccompChoice::Custom(Box::new(p))
                            }
                        }
                        _ => {
                            return Err(SpecError::invalid(format!(
                                "{field}: seccomp takes the profile's JSON (the CLI reads the \
                                 file), \"unconfined\" or \"builtin\""
                            )));
                        }
                    }
                }
                "systempaths" => match value {
                    "unconfined" => out.unconfined_systempaths = true,
                    _ => {
                        return Err(SpecError::invalid(format!(
                            "{field}: invalid --security-opt systempaths value: {value:?}"
                        )));
                    }
                },
                "writable-cgroups" => out.writable_cgroups = boolean(value)?,
                // No AppArmor or SELinux in berth: accept what turns them off.
                "apparmor" if value == "unconfined" => {}
                "label" if value == "disable" => {}
                "apparmor" | "label" => {
                    return Err(SpecError::invalid(format!(
                        "{field}: {key} is not supported yet (only {key}={})",
                        if key == "apparmor" {
                            "unconfined"
                        } else {
                            "disable"
                        }
                    )));
                }
                _ => {
                    return Err(SpecError::invalid(format!(
                        "{field}: invalid --security-opt: {opt:?}"
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// The OCI seccomp section: none when privileged or unconfined; else the profile resolved for the container's capabilities and the host.
pub(crate) fn seccomp(
    opts: &SecurityOpts,
    privileged: bool,
    caps: &[String],
    host: &Host,
) -> Result<Option<LinuxSeccomp>> {
    // Docker runs privileged containers without seccomp, whatever the profile.
    if privileged {
        return Ok(None);
    }
    let profile = match &opts.seccomp {
        SeccompChoice::Unconfined => return Ok(None),
        SeccompChoice::Default if !host.seccomp => return Ok(None),
        SeccompChoice::Default => seccomp_profile::default_profile(),
        SeccompChoice::Custom(_) if !host.seccomp => {
            return Err(SpecError::invalid(
                "HostConfig.SecurityOpt: seccomp profile given, but this kernel has no seccomp",
            ));
        }
        SeccompChoice::Custom(p) => (**p).clone(),
    };
    let ctx = Context {
        arch: host.arch,
        capabilities: caps.to_vec(),
        kernel: host.kernel,
    };
    seccomp_profile::to_oci(&profile, &ctx)
        .map(Some)
        .map_err(|e| SpecError::invalid(format!("HostConfig.SecurityOpt: {e}")))
}
