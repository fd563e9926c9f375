//! From a container record to what the runtime needs: the merged configuration (request over
//! image, Docker's rules), the files berth provides (`/etc/hostname`, `hosts`,
//! `resolv.conf`), the log settings, and the OCI bundle (config.json + mounted rootfs).

use std::collections::HashMap;
use std::path::Path;

use berth_api_types::models::{
    ContainerConfig, ContainerCreateBody, ContainerUpdateBody, ExecConfig, HostConfig, MountPoint,
};
use berth_types::Error;

use crate::images::ResolvedImage;
use crate::record::Record;

/// The default `PATH` when neither the image nor the request sets one (Docker's).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn env_key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

/// Merges the request's configuration with the image's, as Docker does, and works out the
/// process's path and arguments.
pub fn merge_config(
    body: &ContainerCreateBody,
    image: &ResolvedImage,
) -> Result<(ContainerConfig, String, Vec<String>), Error> {
    let img = &image.config;
    let mut c = ContainerConfig {
        hostname: body.hostname.clone(),
        domainname: body.domainname.clone(),
        user: body.user.clone(),
        attach_stdin: body.attach_stdin,
        attach_stdout: body.attach_stdout,
        attach_stderr: body.attach_stderr,
        exposed_ports: body.exposed_ports.clone(),
        tty: body.tty,
        open_stdin: body.open_stdin,
        stdin_once: body.stdin_once,
        env: body.env.clone(),
        cmd: body.cmd.clone(),
        healthcheck: body.healthcheck.clone(),
        args_escaped: body.args_escaped,
        image: body.image.clone(),
        volumes: body.volumes.clone(),
        working_dir: body.working_dir.clone(),
        entrypoint: body.entrypoint.clone(),
        network_disabled: body.network_disabled,
        on_build: body.on_build.clone(),
        labels: body.labels.clone(),
        stop_signal: body.stop_signal.clone(),
        stop_timeout: body.stop_timeout,
        shell: body.shell.clone(),
    };
    if c.user.as_deref().is_none_or(str::is_empty) {
        c.user = img.user.clone().filter(|u| !u.is_empty());
    }
    // Environment: the request's entries, then the image's whose names it does not set.
    let mut env = c.env.take().unwrap_or_default();
    for ie in img.env.clone().unwrap_or_default() {
        if !env.iter().any(|e| env_key(e) == env_key(&ie)) {
            env.push(ie);
        }
    }
    if !env.iter().any(|e| env_key(e) == "PATH") {
        env.push(DEFAULT_PATH.into());
    }
    for e in &env {
        if env_key(e).is_empty() {
            return Err(Error::invalid_parameter(format!(
                "invalid environment variable: {e}"
            )));
        }
    }
    c.env = Some(env);
    let mut labels: HashMap<String, String> = img.labels.clone().unwrap_or_default();
    labels.extend(c.labels.take().unwrap_or_default());
    c.labels = Some(labels);
    // `--entrypoint ""` clears the image's entrypoint.
    let explicit_empty = c
        .entrypoint
        .as_ref()
        .is_some_and(|e| e.len() == 1 && e[0].is_empty());
    if explicit_empty {
        c.entrypoint = Some(Vec::new());
    }
    if c.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if c.cmd.as_ref().is_none_or(Vec::is_empty) {
            c.cmd = img.cmd.clone();
        }
        if !explicit_empty {
            c.entrypoint = img.entrypoint.clone();
        }
    }
    if c.working_dir.as_deref().is_none_or(str::is_empty) {
        c.working_dir = img.working_dir.clone().filter(|w| !w.is_empty());
    }
    if let Some(w) = c.working_dir.as_deref()
        && !w.starts_with('/')
    {
        return Err(Error::invalid_parameter(format!(
            "the working directory '{w}' is invalid, it needs to be an absolute path"
        )));
    }
    if c.stop_signal.as_deref().is_none_or(str::is_empty) {
        c.stop_signal = img.stop_signal.clone().filter(|s| !s.is_empty());
    }
    if let Some(s) = c.stop_signal.as_deref() {
        crate::lifecycle::parse_signal(s)?;
    }
    // The image's volumes and the request's, together (Docker's merge).
    if let Some(iv) = img.volumes.clone() {
        let v = c.volumes.get_or_insert_with(Vec::new);
        for p in iv {
            if !v.contains(&p) {
                v.push(p);
            }
        }
    }
    if c.exposed_ports.is_none() {
        c.exposed_ports = img.exposed_ports.clone();
    }
    let mut command: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    command.extend(c.cmd.clone().unwrap_or_default());
    if command.is_empty() {
        return Err(Error::invalid_parameter("no command specified"));
    }
    let path = command.remove(0);
    Ok((c, path, command))
}

/// The json-file log settings: `None` for the `none` driver, else (max-size, max-file).
pub fn log_config(rec: &Record) -> Result<Option<(Option<u64>, u32)>, Error> {
    log_settings(&rec.host_config)
}

fn log_settings(hc: &HostConfig) -> Result<Option<(Option<u64>, u32)>, Error> {
    let lc = hc.log_config.clone().unwrap_or_default();
    match lc.typ.as_deref().unwrap_or("") {
        "" | "json-file" | "local" => {}
        "none" => return Ok(None),
        other => {
            return Err(Error::invalid_parameter(format!(
                "logging driver {other} is not supported (berth has json-file and none)"
            )));
        }
    }
    let mut max_size = None;
    let mut max_file = 1u32;
    for (k, v) in lc.config.unwrap_or_default() {
        match k.as_str() {
            "max-size" => {
                max_size = Some(parse_bytes(&v).ok_or_else(|| {
                    Error::invalid_parameter(format!(
                        "invalid max-size for json-file log driver: {v}"
                    ))
                })?)
                .filter(|n| *n > 0);
            }
            "max-file" => {
                max_file = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    Error::invalid_parameter(format!("invalid value for max-file: {v}"))
                })?;
            }
            "compress" | "labels" | "env" | "tag" => {}
            _ => {
                return Err(Error::invalid_parameter(format!(
                    "unknown log opt '{k}' for json-file log driver"
                )));
            }
        }
    }
    if max_file > 1 && max_size.is_none() {
        return Err(Error::invalid_parameter(
            "max-file cannot be set without max-size",
        ));
    }
    Ok(Some((max_size, max_file)))
}

/// Parses `10m`, `1g`, `512k`, `100` (bytes; binary multiples, as Docker's RAMInBytes).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v >= 0.0).then_some((v * mult as f64) as u64)
}

/// The mounts inspect reports for a container's binds and tmpfs.
pub fn mount_points(hc: &HostConfig) -> Vec<MountPoint> {
    let mut out = Vec::new();
    for b in hc.binds.clone().unwrap_or_default() {
        let parts: Vec<&str> = b.split(':').collect();
        if parts.len() < 2 {
            continue;
        }
        let mode = parts.get(2).copied().unwrap_or("");
        out.push(MountPoint {
            typ: Some("bind".into()),
            source: Some(parts[0].into()),
            destination: Some(parts[1].into()),
            mode: Some(mode.into()),
            rw: Some(!mode.split(',').any(|m| m == "ro")),
            propagation: Some("rprivate".into()),
            ..Default::default()
        });
    }
    out
}

/// Writes `hostname`, `hosts` and `resolv.conf` into the container's data directory.
pub fn write_etc_files(rec: &Record) -> Result<(), Error> {
    let io = |p: &str, e: std::io::Error| Error::system(format!("writing {p}: {e}"));
    let dir = Path::new(&rec.hostname_path)
        .parent()
        .unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| io(&dir.display().to_string(), e))?;
    let host_net = rec.host_config.network_mode.as_deref() == Some("host");
    let hostname = if host_net {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    } else {
        rec.config.hostname.clone().unwrap_or_default()
    };
    std::fs::write(&rec.hostname_path, format!("{hostname}\n"))
        .map_err(|e| io(&rec.hostname_path, e))?;
    let hosts = if host_net {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n{}127.0.1.1\t{hostname}\n",
            crate::usernet::extra_hosts_text(rec)
        )
    };
    std::fs::write(&rec.hosts_path, hosts).map_err(|e| io(&rec.hosts_path, e))?;
    let resolv = crate::usernet::resolv_text(
        rec,
        &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    );
    std::fs::write(&rec.resolv_conf_path, resolv).map_err(|e| io(&rec.resolv_conf_path, e))?;
    Ok(())
}

/// Applies `POST /containers/{id}/update` to a host configuration: every field the request
/// sets replaces the stored one.
pub fn apply_update(hc: &mut HostConfig, body: &ContainerUpdateBody) -> Result<(), Error> {
    let bad = |e: serde_json::Error| Error::invalid_parameter(format!("update: {e}"));
    let mut cur = serde_json::to_value(&*hc).map_err(bad)?;
    let upd = serde_json::to_value(body).map_err(bad)?;
    if let (Some(c), Some(u)) = (cur.as_object_mut(), upd.as_object()) {
        for (k, v) in u {
            if !v.is_null() {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    *hc = serde_json::from_value(cur).map_err(bad)?;
    Ok(())
}

/// The json-file settings are checked with the rest at create.
pub fn check_log(hc: &HostConfig) -> Result<(), Error> {
    log_settings(hc).map(|_| ())
}

/// The create request rebuilt from a record: the merged configuration and host config (the
/// image's values are already merged in).
pub fn create_body(rec: &Record) -> ContainerCreateBody {
    let c = &rec.config;
    ContainerCreateBody {
        hostname: c.hostname.clone(),
        domainname: c.domainname.clone(),
        user: c.user.clone(),
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: c.exposed_ports.clone(),
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env: c.env.clone(),
        // The process is path + args exactly as merged.
        cmd: Some(
            std::iter::once(rec.path.clone())
                .chain(rec.args.iter().cloned())
                .collect(),
        ),
        entrypoint: Some(Vec::new()),
        healthcheck: c.healthcheck.clone(),
        args_escaped: c.args_escaped,
        image: c.image.clone(),
        volumes: c.volumes.clone(),
        working_dir: c.working_dir.clone(),
        network_disabled: c.network_disabled,
        on_build: c.on_build.clone(),
        labels: c.labels.clone(),
        stop_signal: c.stop_signal.clone(),
        stop_timeout: c.stop_timeout,
        shell: c.shell.clone(),
        host_config: Some(rec.host_config.clone()),
        networking_config: None,
    }
}

fn host() -> Result<&'static crate::spec::Host, Error> {
    static HOST: std::sync::OnceLock<Result<crate::spec::Host, String>> =
        std::sync::OnceLock::new();
    HOST.get_or_init(|| crate::spec::Host::detect().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::system(e.clone()))
}

impl crate::engine::Engine {
    /// Finds what `container:<name>` modes join: the namespaces of a running container.
    fn joiner(&self) -> impl Fn(crate::spec::JoinKind, &str) -> Option<std::path::PathBuf> + '_ {
        move |kind, name| {
            let rec = self.lookup(name).ok()?.record();
            if !rec.state.status.is_alive() || rec.state.pid <= 0 {
                return None;
            }
            let ns = match kind {
                crate::spec::JoinKind::Network => "net",
                crate::spec::JoinKind::Ipc => "ipc",
                crate::spec::JoinKind::Pid => "pid",
                crate::spec::JoinKind::IpcShm => return None,
            };
            Some(format!("/proc/{}/ns/{ns}", rec.state.pid).into())
        }
    }

    fn build(
        &self,
        rec: &Record,
        rootfs: &Path,
        validate_only: bool,
    ) -> Result<crate::spec::ContainerSpec, Error> {
        let mut body = create_body(rec);
        crate::volumes::spec_body(rec, &mut body, validate_only);
        // Published ports are the network's business when there is a bridge.
        if ((crate::net::uses_bridge(&rec.host_config) && self.inner.net.is_some())
            || !rec.endpoints.is_empty())
            && let Some(hc) = body.host_config.as_mut()
        {
            hc.port_bindings = None;
            hc.publish_all_ports = None;
            hc.links = None;
        }
        if validate_only {
            // Users are looked up in the image's files at start (as Docker does).
            body.user = None;
        }
        let image = crate::spec::ImageConfig::default();
        let files = crate::spec::ContainerFiles {
            hostname: Some(rec.hostname_path.clone().into()),
            hosts: Some(rec.hosts_path.clone().into()),
            resolv_conf: Some(rec.resolv_conf_path.clone().into()),
        };
        let join = self.joiner();
        let init = self.inner.cfg.init.clone();
        if rec.host_config.init == Some(true) && init.is_none() {
            return Err(Error::invalid_parameter(
                "HostConfig.Init: no init binary is installed (apt-get install tini)",
            ));
        }
        let req = crate::spec::SpecRequest {
            id: &rec.id,
            create: &body,
            image: &image,
            rootfs,
            files: &files,
            init_binary: init.as_deref(),
            network_namespace: None,
            join: &join,
            host: host()?,
        };
        Ok(crate::spec::build_spec(&req)?)
    }

    /// Refuses at create what would fail at start: the spec is built once against an empty
    /// root filesystem.
    pub(crate) fn check_create(&self, rec: &Record) -> Result<(), Error> {
        check_log(&rec.host_config)?;
        let empty =
            tempfile::tempdir().map_err(|e| Error::system(format!("temporary directory: {e}")))?;
        self.build(rec, empty.path(), true).map(|_| ())
    }

    /// Mounts the container's root filesystem in its bundle and writes `config.json`.
    pub(crate) fn write_bundle(&self, rec: &Record, bundle: &Path) -> Result<(), Error> {
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs)
            .map_err(|e| Error::system(format!("creating {}: {e}", rootfs.display())))?;
        if !berth_snapshot::is_mount_point(&rootfs).unwrap_or(false) {
            let mounts = self.inner.images.rootfs_mounts(&rec.snapshot_key)?;
            berth_snapshot::mount_all(&mounts, &rootfs).map_err(|e| {
                Error::system(format!(
                    "mounting the rootfs of container {}: {e}",
                    rec.short_name()
                ))
            })?;
        }
        self.take_volumes(rec, &rootfs)?;
        let spec = self.build(rec, &rootfs, false)?;
        let data = serde_json::to_vec_pretty(&spec.spec)
            .map_err(|e| Error::internal(format!("encoding config.json: {e}")))?;
        std::fs::write(bundle.join("config.json"), data)
            .map_err(|e| Error::system(format!("writing config.json: {e}")))
    }
}

/// The OCI process of an exec: the container's process with the exec's command, env, user,
/// working directory and terminal.
pub fn exec_process(
    bundle: &Path,
    rec: &Record,
    cfg: &ExecConfig,
    tty: bool,
) -> Result<serde_json::Value, Error> {
    let text = std::fs::read(bundle.join("config.json"))
        .map_err(|e| Error::system(format!("reading the config of container {}: {e}", rec.id)))?;
    let spec: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| Error::internal(format!("config of container {}: {e}", rec.id)))?;
    let mut p = spec.get("process").cloned().unwrap_or_default();
    p["args"] = serde_json::json!(cfg.cmd.clone().unwrap_or_default());
    p["terminal"] = serde_json::json!(tty);
    let mut env: Vec<String> = p["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for e in cfg.env.clone().unwrap_or_default() {
        env.retain(|x| env_key(x) != env_key(&e));
        env.push(e);
    }
    if let Some(w) = cfg.working_dir.as_deref().filter(|w| !w.is_empty()) {
        if !w.starts_with('/') {
            return Err(Error::invalid_parameter(format!(
                "the working directory '{w}' is invalid, it needs to be an absolute path"
            )));
        }
        p["cwd"] = serde_json::json!(w);
    }
    if let Some(u) = cfg.user.as_deref().filter(|u| !u.is_empty()) {
        let (uid, gid, gids, home) = crate::spec::exec_user(&bundle.join("rootfs"), u)?;
        p["user"] = serde_json::json!({"uid": uid, "gid": gid, "additionalGids": gids});
        env.retain(|x| env_key(x) != "HOME");
        env.push(format!("HOME={home}"));
    }
    p["env"] = serde_json::json!(env);
    if cfg.privileged == Some(true) {
        let all: Vec<String> = crate::spec::ALL_CAPABILITIES
            .iter()
            .map(|c| format!("CAP_{c}"))
            .collect();
        p["capabilities"] =
            serde_json::json!({"bounding": all, "effective": all, "permitted": all});
    }
    p.as_object_mut().map(|o| o.remove("consoleSize"));
    Ok(p)
}

/// The OCI resources of a host configuration, for `docker update`.
pub fn oci_resources(hc: &HostConfig) -> Result<serde_json::Value, Error> {
    let r = crate::spec::update_resources(hc, host()?)?;
    serde_json::to_value(r).map_err(|e| Error::internal(format!("encoding resources: {e}")))
}

/// Fields of a create request berth refuses (beyond what the spec builder checks): none yet.
pub fn check_request(_raw: &serde_json::Value) -> Result<(), Error> {
    Ok(())
}

/// Fields of an update request berth refuses.
pub fn check_update_request(raw: &serde_json::Value) -> Result<(), Error> {
    for f in [
        "KernelMemory",
        "KernelMemoryTCP",
        "CpuRealtimePeriod",
        "CpuRealtimeRuntime",
        "BlkioWeightDevice",
        "BlkioDeviceReadBps",
        "BlkioDeviceWriteBps",
        "BlkioDeviceReadIOps",
        "BlkioDeviceWriteIOps",
        "Devices",
        "DeviceCgroupRules",
        "DeviceRequests",
    ] {
        match raw.get(f) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Array(a)) if a.is_empty() => {}
            Some(serde_json::Value::Number(n)) if n.as_i64() == Some(0) => {}
            Some(_) => {
                return Err(Error::invalid_parameter(format!(
                    "{f}: not supported by docker update in berth"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(env: &[&str], cmd: &[&str], ep: Option<&[&str]>) -> ResolvedImage {
        ResolvedImage {
            id: "sha256:x".into(),
            config: ContainerConfig {
                env: Some(env.iter().map(|s| s.to_string()).collect()),
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                entrypoint: ep.map(|e| e.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn merge_follows_docker() {
        let img = image(&["A=1", "B=2"], &["sh"], None);
        let body = ContainerCreateBody {
            env: Some(vec!["B=3".into()]),
            ..Default::default()
        };
        let (c, path, args) = merge_config(&body, &img).unwrap();
        assert_eq!(c.env.unwrap(), ["B=3", "A=1", DEFAULT_PATH]);
        assert_eq!((path.as_str(), args.len()), ("sh", 0));
        let img = image(&[], &["-l"], Some(&["/bin/sh"]));
        let body = ContainerCreateBody {
            cmd: Some(vec!["-c".into(), "true".into()]),
            ..Default::default()
        };
        let (_, path, args) = merge_config(&body, &img).unwrap();
        assert_eq!(
            (path.as_str(), args),
            ("/bin/sh", vec!["-c".to_string(), "true".into()])
        );
        let body = ContainerCreateBody {
            entrypoint: Some(vec!["".into()]),
            ..Default::default()
        };
        let (_, path, _) = merge_config(&body, &img).unwrap();
        assert_eq!(path, "-l");
        let img = image(&[], &[], None);
        assert!(
            merge_config(&ContainerCreateBody::default(), &img)
                .unwrap_err()
                .message()
                .contains("no command")
        );
    }

    #[test]
    fn sizes_and_log_options() {
        assert_eq!(parse_bytes("10m"), Some(10 << 20));
        assert_eq!(parse_bytes("1.5k"), Some(1536));
        assert_eq!(parse_bytes("x"), None);
        let mut hc = HostConfig {
            log_config: None,
            ..Default::default()
        };
        hc.log_config = Some(berth_api_types::models::HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(
                [
                    ("max-size".to_string(), "1k".to_string()),
                    ("max-file".to_string(), "3".to_string()),
                ]
                .into(),
            ),
        });
        assert_eq!(log_settings(&hc).unwrap(), Some((Some(1024), 3)));
        hc.log_config = Some(berth_api_types::models::HostConfigLogConfig {
            typ: Some("syslog".into()),
            config: None,
        });
        assert!(log_settings(&hc).unwrap_err().message().contains("syslog"));
    }
}
