//! Mounts (Docker's defaults, `-v`, `--mount`, `--tmpfs`, the hostname/hosts/resolv.conf
//! files, the init binary) and devices (`--device`, `--device-cgroup-rule`, `--privileged`).

use std::collections::HashSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_api_types::models::{
    HostConfig, Mount as ApiMount, MountBindOptionsPropagationEnum, MountType,
};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, Mount};

use super::{ContainerFiles, INIT_PATH, IpcMode, Result, SpecError, clean_abs};

/// `/dev/shm`'s size when `ShmSize` is unset: 64 MiB.
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// What the mounts depend on besides `HostConfig`.
pub(super) struct MountContext<'a> {
    pub privileged: bool,
    pub writable_cgroups: bool,
    pub ipc: &'a IpcMode,
    pub readonly_rootfs: bool,
    pub files: &'a ContainerFiles,
    pub init_binary: Option<&'a Path>,
    /// Whether read-only binds can be made read-only recursively (`rro`, kernel 5.12+).
    pub recursive_readonly: bool,
}

/// The mounts, and the bind sources to create before the container starts.
pub(super) struct MountPlan {
    pub mounts: Vec<Mount>,
    pub create_dirs: Vec<PathBuf>,
}

/// An OCI mount.
fn mount(typ: &str, source: &Path, dest: &Path, options: Vec<String>) -> Mount {
    let mut m = Mount::default();
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(source.to_path_buf()));
    m.set_destination(dest.to_path_buf());
    m.set_options(Some(options));
    m
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A user mount, before ordering.
struct UserMount {
    mount: Mount,
    /// The request field it came from, for duplicate errors.
    field: String,
}

/// All the container's mounts, in order: Docker's defaults (minus those a user mount
/// replaces), the hostname/hosts/resolv.conf files, the init binary, then the user's
/// mounts, parents before children.
pub(super) fn plan(hc: &HostConfig, ctx: &MountContext<'_>) -> Result<MountPlan> {
    let mut users: Vec<UserMount> = Vec::new();
    let mut create_dirs = Vec::new();

    for (i, bind) in hc.binds.iter().flatten().enumerate() {
        let field = format!("HostConfig.Binds[{i}]");
        let (m, create) = parse_bind(bind, &field)?;
        if let Some(d) = create {
            create_dirs.push(d);
        }
        users.push(UserMount { mount: m, field });
    }
    for (i, m) in hc.mounts.iter().flatten().enumerate() {
        let field = format!("HostConfig.Mounts[{i}]");
        let (m, create) = api_mount(m, &field, ctx.recursive_readonly)?;
        if let Some(d) = create {
            create_dirs.push(d);
        }
        users.push(UserMount { mount: m, field });
    }
    if let Some(tmpfs) = &hc.tmpfs {
        let mut dests: Vec<&String> = tmpfs.keys().collect();
        dests.sort();
        for dest in dests {
            let field = format!("HostConfig.Tmpfs[{dest:?}]");
            let target = destination(dest, &field)?;
            let options = merge_tmpfs_options(&tmpfs[dest], &field)?;
            users.push(UserMount {
                mount: mount("tmpfs", Path::new("tmpfs"), &target, options),
                field,
            });
        }
    }

    let mut seen: HashSet<PathBuf> = HashSet::new();
    for u in &users {
        if !seen.insert(u.mount.destination().clone()) {
            return Err(SpecError::invalid(format!(
                "{}: duplicate mount point: {}",
                u.field,
                u.mount.destination().display()
            )));
        }
    }
    let user_has = |dest: &str| seen.contains(Path::new(dest));
    let dev_replaced = user_has("/dev");

    let mut mounts = Vec::new();
    for m in default_mounts(hc, ctx)? {
        let dest = m.destination().to_string_lossy().into_owned();
        if user_has(&dest) || (dev_replaced && dest.starts_with("/dev/")) {
            continue;
        }
        mounts.push(m);
    }

    let files = [
        ("/etc/hostname", &ctx.files.hostname),
        ("/etc/hosts", &ctx.files.hosts),
        ("/etc/resolv.conf", &ctx.files.resolv_conf),
    ];
    for (dest, source) in files {
        if let Some(source) = source
            && !user_has(dest)
        {
            let mut opts = strings(&["rbind", "rprivate"]);
            if ctx.readonly_rootfs {
                opts.push("ro".to_string());
            }
            mounts.push(mount("bind", source, Path::new(dest), opts));
        }
    }
    if let Some(init) = ctx.init_binary {
        mounts.push(mount(
            "bind",
            init,
            Path::new(INIT_PATH),
            strings(&["bind", "ro", "nosuid", "nodev", "rprivate"]),
        ));
    }

    // Parents before children, keeping the request's order otherwise.
    users.sort_by_key(|u| u.mount.destination().components().count());
    mounts.extend(users.into_iter().map(|u| u.mount));
    Ok(MountPlan {
        mounts,
        create_dirs,
    })
}

/// Docker's default mounts for this container.
fn default_mounts(hc: &HostConfig, ctx: &MountContext<'_>) -> Result<Vec<Mount>> {
    let p = Path::new;
    let sys_mode = if ctx.privileged { "rw" } else { "ro" };
    let cgroup_mode = if ctx.privileged || ctx.writable_cgroups {
        "rw"
    } else {
        "ro"
    };
    let mut v = vec![
        mount(
            "proc",
            p("proc"),
            p("/proc"),
            strings(&["nosuid", "noexec", "nodev"]),
        ),
        mount(
            "tmpfs",
            p("tmpfs"),
            p("/dev"),
            strings(&["nosuid", "strictatime", "mode=755", "size=65536k"]),
        ),
        mount(
            "devpts",
            p("devpts"),
            p("/dev/pts"),
            strings(&[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ]),
        ),
        mount(
            "sysfs",
            p("sysfs"),
            p("/sys"),
            strings(&["nosuid", "noexec", "nodev", sys_mode]),
        ),
        mount(
            "cgroup",
            p("cgroup"),
            p("/sys/fs/cgroup"),
            strings(&["nosuid", "noexec", "nodev", "relatime", cgroup_mode]),
        ),
        mount(
            "mqueue",
            p("mqueue"),
            p("/dev/mqueue"),
            strings(&["nosuid", "noexec", "nodev"]),
        ),
    ];
    let shm_size = match hc.shm_size {
        None | Some(0) => DEFAULT_SHM_SIZE,
        Some(s) if s > 0 => s,
        Some(s) => {
            return Err(SpecError::invalid(format!(
                "HostConfig.ShmSize: SHM size can not be less than 0: {s}"
            )));
        }
    };
    match ctx.ipc {
        IpcMode::Private => v.push(mount(
            "tmpfs",
            p("shm"),
            p("/dev/shm"),
            vec![
                "nosuid".into(),
                "noexec".into(),
                "nodev".into(),
                "mode=1777".into(),
                format!("size={shm_size}"),
            ],
        )),
        IpcMode::None => {}
        IpcMode::Host => v.push(mount(
            "bind",
            p("/dev/shm"),
            p("/dev/shm"),
            strings(&["rbind", "rprivate"]),
        )),
        IpcMode::Container(_, shm) => v.push(mount(
            "bind",
            shm,
            p("/dev/shm"),
            strings(&["rbind", "rprivate"]),
        )),
    }
    Ok(v)
}

/// A mount destination: absolute, cleaned, not `/`.
fn destination(dest: &str, field: &str) -> Result<PathBuf> {
    if !dest.starts_with('/') {
        return Err(SpecError::invalid(format!(
            "{field}: invalid mount destination {dest:?}: it must be an absolute path"
        )));
    }
    let d = clean_abs(dest, field)?;
    if d == Path::new("/") {
        return Err(SpecError::invalid(format!(
            "{field}: invalid mount destination: it cannot be \"/\""
        )));
    }
    Ok(d)
}

/// A propagation mode's option name.
fn propagation_name(p: MountBindOptionsPropagationEnum) -> &'static str {
    match p {
        MountBindOptionsPropagationEnum::EMPTY | MountBindOptionsPropagationEnum::RPRIVATE => {
            "rprivate"
        }
        MountBindOptionsPropagationEnum::PRIVATE => "private",
        MountBindOptionsPropagationEnum::SHARED => "shared",
        MountBindOptionsPropagationEnum::RSHARED => "rshared",
        MountBindOptionsPropagationEnum::SLAVE => "slave",
        MountBindOptionsPropagationEnum::RSLAVE => "rslave",
    }
}

/// `-v /host:/ctr[:opts]`. A missing host directory is created, as Docker does; named and
/// anonymous volumes are not supported yet.
fn parse_bind(bind: &str, field: &str) -> Result<(Mount, Option<PathBuf>)> {
    let parts: Vec<&str> = bind.split(':').collect();
    let (source, dest, mode) = match parts.as_slice() {
        [_] => {
            return Err(SpecError::invalid(format!(
                "{field}: anonymous volumes are not supported yet: {bind:?}"
            )));
        }
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => {
            return Err(SpecError::invalid(format!(
                "{field}: invalid volume specification: {bind:?}"
            )));
        }
    };
    if source.is_empty() || dest.is_empty() {
        return Err(SpecError::invalid(format!(
            "{field}: invalid volume specification: {bind:?}"
        )));
    }
    if !source.starts_with('/') {
        return Err(SpecError::invalid(format!(
            "{field}: named volumes are not supported yet: {source:?}"
        )));
    }
    let source = clean_abs(source, field)?;
    let dest = destination(dest, field)?;
    let mut readonly = false;
    let mut propagation = "rprivate";
    let (mut saw_rw, mut saw_prop) = (false, false);
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" | "rw" if !saw_rw => {
                readonly = opt == "ro";
                saw_rw = true;
            }
            // SELinux relabelling: no SELinux under berth, nothing to relabel.
            "z" | "Z" => {}
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" if !saw_prop => {
                propagation = opt;
                saw_prop = true;
            }
            _ => {
                return Err(SpecError::invalid(format!(
                    "{field}: invalid mode: {mode:?}"
                )));
            }
        }
    }
    let mut opts = strings(&["rbind", propagation]);
    opts.push(if readonly { "ro" } else { "rw" }.to_string());
    let create = (!source.exists()).then(|| source.clone());
    Ok((mount("bind", &source, &dest, opts), create))
}

/// One `HostConfig.Mounts` entry (bind or tmpfs).
fn api_mount(
    m: &ApiMount,
    field: &str,
    recursive_readonly: bool,
) -> Result<(Mount, Option<PathBuf>)> {
    let target = m.target.as_deref().unwrap_or("");
    if target.is_empty() {
        return Err(SpecError::invalid(format!(
            "{field}.Target: must not be empty"
        )));
    }
    let dest = destination(target, &format!("{field}.Target"))?;
    let readonly = m.read_only.unwrap_or(false);
    let source = m.source.as_deref().unwrap_or("");
    match m.typ {
        Some(MountType::BIND) => {
            if m.volume_options.is_some() || m.tmpfs_options.is_some() {
                return Err(SpecError::invalid(format!(
                    "{field}: VolumeOptions and TmpfsOptions must not be given for type \"bind\""
                )));
            }
            if source.is_empty() {
                return Err(SpecError::invalid(format!(
                    "{field}.Source: must not be empty for type \"bind\""
                )));
            }
            let src = clean_abs(source, &format!("{field}.Source"))?;
            let bo = m.bind_options.clone().unwrap_or_default();
            let create = if src.exists() {
                None
            } else if bo.create_mountpoint.unwrap_or(false) {
                Some(src.clone())
            } else {
                return Err(SpecError::invalid(format!(
                    "{field}.Source: bind source path does not exist: {}",
                    src.display()
                )));
            };
            let recursive = !bo.non_recursive.unwrap_or(false);
            if bo.read_only_non_recursive.unwrap_or(false)
                && bo.read_only_force_recursive.unwrap_or(false)
            {
                return Err(SpecError::invalid(format!(
                    "{field}.BindOptions: ReadOnlyNonRecursive and ReadOnlyForceRecursive \
                     conflict"
                )));
            }
            if !readonly
                && (bo.read_only_non_recursive.unwrap_or(false)
                    || bo.read_only_force_recursive.unwrap_or(false))
            {
                return Err(SpecError::invalid(format!(
                    "{field}.BindOptions: ReadOnlyNonRecursive and ReadOnlyForceRecursive need \
                     ReadOnly"
                )));
            }
            if bo.read_only_force_recursive.unwrap_or(false) && !recursive_readonly {
                return Err(SpecError::invalid(format!(
                    "{field}.BindOptions.ReadOnlyForceRecursive: recursive read-only mounts need \
                     kernel 5.12 or later"
                )));
            }
            let prop = propagation_name(
                bo.propagation
                    .unwrap_or(MountBindOptionsPropagationEnum::RPRIVATE),
            );
            let mut opts = strings(&[if recursive { "rbind" } else { "bind" }, prop]);
            if readonly {
                opts.push("ro".to_string());
                if recursive && recursive_readonly && !bo.read_only_non_recursive.unwrap_or(false) {
                    opts.push("rro".to_string());
                }
            } else {
                opts.push("rw".to_string());
            }
            Ok((mount("bind", &src, &dest, opts), create))
        }
        Some(MountType::TMPFS) => {
            if !source.is_empty() {
                return Err(SpecError::invalid(format!(
                    "{field}.Source: must not be given for type \"tmpfs\""
                )));
            }
            if m.bind_options.is_some() || m.volume_options.is_some() {
                return Err(SpecError::invalid(format!(
                    "{field}: BindOptions and VolumeOptions must not be given for type \"tmpfs\""
                )));
            }
            let mut data: Vec<String> = Vec::new();
            if let Some(t) = &m.tmpfs_options {
                match t.size_bytes {
                    None | Some(0) => {}
                    Some(s) if s > 0 => data.push(format!("size={s}")),
                    Some(s) => {
                        return Err(SpecError::invalid(format!(
                            "{field}.TmpfsOptions.SizeBytes: invalid size {s}"
                        )));
                    }
                }
                match t.mode {
                    None | Some(0) => {}
                    Some(mode) if (0..=0o7777).contains(&mode) => {
                        data.push(format!("mode={mode:o}"))
                    }
                    Some(mode) => {
                        return Err(SpecError::invalid(format!(
                            "{field}.TmpfsOptions.Mode: invalid mode {mode}"
                        )));
                    }
                }
                for (j, kv) in t.options.iter().flatten().enumerate() {
                    let opt = match kv.as_slice() {
                        [k] => k.clone(),
                        [k, v] => format!("{k}={v}"),
                        _ => {
                            return Err(SpecError::invalid(format!(
                                "{field}.TmpfsOptions.Options[{j}]: expected [name] or [name, value]"
                            )));
                        }
                    };
                    if opt.is_empty() || opt.contains(',') {
                        return Err(SpecError::invalid(format!(
                            "{field}.TmpfsOptions.Options[{j}]: invalid option {opt:?}"
                        )));
                    }
                    data.push(opt);
                }
            }
            if readonly {
                data.push("ro".to_string());
            }
            let options = merge_tmpfs_options(&data.join(","), field)?;
            Ok((mount("tmpfs", Path::new("tmpfs"), &dest, options), None))
        }
        Some(t) => Err(SpecError::invalid(format!(
            "{field}.Type: {} mounts are not supported yet",
            serde_json::to_value(t)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("{t:?}"))
        ))),
        None => Err(SpecError::invalid(format!("{field}.Type: must be given"))),
    }
}

/// Flags that come in `x`/`nox` pairs: the last of a pair wins.
const PAIRED_FLAGS: &[&str] = &[
    "exec",
    "suid",
    "dev",
    "atime",
    "diratime",
    "relatime",
    "strictatime",
    "iversion",
    "mand",
    "lazytime",
    "dirsync",
    "sync",
];

/// A tmpfs's options: Docker's defaults (`noexec`, `nosuid`, `nodev`, `rprivate`) then the
/// user's `data` (comma-separated); where two conflict (`exec` after `noexec`, two sizes),
/// the last wins.
pub(super) fn merge_tmpfs_options(data: &str, field: &str) -> Result<Vec<String>> {
    let mut all: Vec<String> = strings(&["noexec", "nosuid", "nodev", "rprivate"]);
    for opt in data.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        if opt.contains('\0') {
            return Err(SpecError::invalid(format!(
                "{field}: invalid tmpfs option {opt:?}"
            )));
        }
        if opt == "defaults" {
            continue;
        }
        all.push(opt.to_string());
    }
    let family = |o: &str| -> String {
        if let Some((k, _)) = o.split_once('=') {
            return format!("{k}=");
        }
        if o == "ro" || o == "rw" {
            return "rw".to_string();
        }
        if matches!(
            o,
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
        ) {
            return "propagation".to_string();
        }
        match o.strip_prefix("no") {
            Some(base) if PAIRED_FLAGS.contains(&base) => base.to_string(),
            _ => o.to_string(),
        }
    };
    let mut seen = HashSet::new();
    let mut out: Vec<String> = Vec::new();
    for opt in all.iter().rev() {
        if seen.insert(family(opt)) {
            out.push(opt.clone());
        }
    }
    out.reverse();
    Ok(out)
}

/// A device-cgroup rule.
fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

/// The device nodes and device-cgroup rules. Unprivileged: Docker's defaults (everything
/// denied but the standard devices; the runtime adds the pty and `mknod` rules), then
/// `--device` and `--device-cgroup-rule`. Privileged: every host device, all allowed.
pub(super) fn devices(
    hc: &HostConfig,
    privileged: bool,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    use LinuxDeviceType::{A, C};
    if privileged {
        let devs = host_devices(Path::new("/dev"))?;
        return Ok((devs, vec![rule(true, A, None, None, "rwm")]));
    }
    let mut rules = vec![
        rule(false, A, None, None, "rwm"),
        rule(true, C, Some(1), Some(5), "rwm"), // /dev/zero
        rule(true, C, Some(1), Some(3), "rwm"), // /dev/null
        rule(true, C, Some(1), Some(9), "rwm"), // /dev/urandom
        rule(true, C, Some(1), Some(8), "rwm"), // /dev/random
        rule(true, C, Some(5), Some(0), "rwm"), // /dev/tty
        rule(true, C, Some(5), Some(1), "rwm"), // /dev/console
        rule(false, C, Some(10), Some(229), "rwm"), // /dev/fuse
    ];
    let mut devs = Vec::new();
    for (i, d) in hc.devices.iter().flatten().enumerate() {
        let field = format!("HostConfig.Devices[{i}]");
        let host = d.path_on_host.as_deref().unwrap_or("");
        if !host.starts_with('/') {
            return Err(SpecError::invalid(format!(
                "{field}.PathOnHost: {host:?} is not an absolute path"
            )));
        }
        let ctr = d
            .path_in_container
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(host);
        let ctr = destination(ctr, &format!("{field}.PathInContainer"))?;
        let perms = d
            .cgroup_permissions
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("rwm");
        if !valid_access(perms) {
            return Err(SpecError::invalid(format!(
                "{field}.CgroupPermissions: invalid permissions {perms:?} (a subset of \"rwm\")"
            )));
        }
        let meta = std::fs::metadata(host).map_err(|e| {
            SpecError::invalid(format!("{field}.PathOnHost: error gathering device information while adding custom device {host:?}: {e}"))
        })?;
        if meta.is_dir() {
            return Err(SpecError::invalid(format!(
                "{field}.PathOnHost: directories of devices are not supported yet: {host}"
            )));
        }
        let dev = device_node(&ctr, &meta).ok_or_else(|| {
            SpecError::invalid(format!("{field}.PathOnHost: {host} is not a device node"))
        })?;
        rules.push(rule(
            true,
            dev.typ(),
            Some(dev.major()),
            Some(dev.minor()),
            perms,
        ));
        devs.push(dev);
    }
    for (i, r) in hc.device_cgroup_rules.iter().flatten().enumerate() {
        rules.push(parse_cgroup_rule(
            r,
            &format!("HostConfig.DeviceCgroupRules[{i}]"),
        )?);
    }
    Ok((devs, rules))
}

/// Whether `s` is a non-empty subset of `rwm`.
fn valid_access(s: &str) -> bool {
    !s.is_empty() && s.len() <= 3 && s.chars().all(|c| "rwm".contains(c)) && {
        let mut seen = HashSet::new();
        s.chars().all(|c| seen.insert(c))
    }
}

/// `--device-cgroup-rule 'c 1:3 rwm'` (`a`, `b` or `c`; numbers or `*`).
fn parse_cgroup_rule(r: &str, field: &str) -> Result<LinuxDeviceCgroup> {
    let bad = || {
        SpecError::invalid(format!(
            "{field}: invalid device cgroup rule {r:?} (expected e.g. \"c 1:3 rwm\")"
        ))
    };
    let parts: Vec<&str> = r.split_whitespace().collect();
    let [typ, numbers, access] = parts.as_slice() else {
        return Err(bad());
    };
    let typ = match *typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let num = |n: &str| -> Result<Option<i64>> {
        if n == "*" {
            Ok(None)
        } else if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            n.parse().map(Some).map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    if !valid_access(access) {
        return Err(bad());
    }
    Ok(rule(true, typ, num(major)?, num(minor)?, access))
}

/// The OCI device for a host device node, at `path` in the container.
fn device_node(path: &Path, meta: &std::fs::Metadata) -> Option<LinuxDevice> {
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return None;
    };
    let rdev = meta.rdev();
    let mut d = LinuxDevice::default();
    d.set_path(path.to_path_buf());
    d.set_typ(typ);
    d.set_major(i64::from(libc::major(rdev)));
    d.set_minor(i64::from(libc::minor(rdev)));
    d.set_file_mode(Some(meta.mode() & 0o7777));
    d.set_uid(Some(meta.uid()));
    d.set_gid(Some(meta.gid()));
    Some(d)
}

/// Every device node under `dir` (the host's /dev), for `--privileged`, skipping what the
/// runtime sets up itself (`pts`, `shm`, `mqueue`, `console`, `ptmx`) and symlinks.
pub(super) fn host_devices(dir: &Path) -> Result<Vec<LinuxDevice>> {
    const SKIP_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
    const SKIP_FILES: &[&str] = &["console", "ptmx"];
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), PathBuf::from("/dev"))];
    while let Some((host, ctr)) = stack.pop() {
        let entries = std::fs::read_dir(&host).map_err(|e| {
            SpecError::system(format!("listing host devices in {}: {e}", host.display()))
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name_s = name.to_string_lossy();
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue; // gone meanwhile
            };
            let ft = meta.file_type();
            if ft.is_dir() {
                if !SKIP_DIRS.contains(&name_s.as_ref()) {
                    stack.push((entry.path(), ctr.join(&name)));
                }
                continue;
            }
            if SKIP_FILES.contains(&name_s.as_ref()) {
                continue;
            }
            if let Some(d) = device_node(&ctr.join(&name), &meta) {
                out.push(d);
            }
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(out)
}
