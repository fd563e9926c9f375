//! Commands that connect the user's terminal to a container: run, create, start -a,
//! attach, exec.
//!
//! `run` in the foreground follows docker's order: create (pulling a missing image unless
//! `--pull never`), register a wait (`next-exit`, or `removed` with `--rm`) so the exit
//! cannot be missed, attach, start, resize the tty, then copy streams until the output
//! ends or the user detaches, and exit with the container's code.

use super::container::{ram_bytes, restart_policy, swap_bytes};
use super::cpath;
use crate::Failure;
use crate::cli::*;
use crate::client::{Client, Error, enc, with_query};
use crate::stream::{self, End, Session};
use crate::term;
use berth_api_types::models::{
    ContainerCreateBody, ExecConfig, HealthConfig, HostConfig, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum,
};
use serde_json::Value;
use std::collections::HashMap;
use std::io::BufRead;
use std::sync::mpsc;

const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

fn usage(msg: impl Into<String>) -> Failure {
    Failure::new(125, msg)
}

/// `-e` values: `K=V` kept, bare `K` taken from our environment if set.
fn env_list(flags: &[String], files: &[String]) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    for f in files {
        let file = std::fs::File::open(f).map_err(|e| usage(format!("open {f}: {e}")))?;
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| usage(format!("read {f}: {e}")))?;
            let l = line.trim_start();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            push_env(&mut out, l);
        }
    }
    for e in flags {
        push_env(&mut out, e);
    }
    Ok(out)
}

fn push_env(out: &mut Vec<String>, e: &str) {
    if e.contains('=') {
        out.push(e.to_string());
    } else if let Ok(v) = std::env::var(e) {
        out.push(format!("{e}={v}"));
    }
}

fn parse_ulimit(s: &str) -> Result<ResourcesUlimits, Failure> {
    let bad = || {
        usage(format!(
            "invalid argument \"{s}\" for \"--ulimit\" flag: invalid ulimit argument: {s}"
        ))
    };
    let (name, vals) = s.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let soft: i64 = soft.parse().map_err(|_| bad())?;
    let hard: i64 = hard.parse().map_err(|_| bad())?;
    if soft > hard && hard != -1 {
        return Err(usage(format!(
            "invalid argument \"{s}\" for \"--ulimit\" flag: ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// The create request for `run`/`create` flags.
pub fn create_body(a: &RunArgs) -> Result<ContainerCreateBody, Failure> {
    let attach: Vec<String> = a.attach.iter().map(|s| s.to_lowercase()).collect();
    for s in &attach {
        if !matches!(s.as_str(), "stdin" | "stdout" | "stderr") {
            return Err(usage(format!(
                "invalid argument \"{s}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
            )));
        }
    }
    let fg = !a.detach;
    let (att_in, att_out, att_err) = if attach.is_empty() {
        (fg && a.interactive, fg, fg)
    } else {
        (
            attach.iter().any(|s| s == "stdin"),
            attach.iter().any(|s| s == "stdout"),
            attach.iter().any(|s| s == "stderr"),
        )
    };
    let mut binds = Vec::new();
    let mut volumes = Vec::new();
    for v in &a.volume {
        let parts: Vec<&str> = v.split(':').collect();
        match parts.len() {
            1 if v.starts_with('/') => volumes.push(v.clone()),
            2 | 3 => binds.push(v.clone()),
            _ => return Err(usage(format!("invalid volume specification: '{v}'"))),
        }
    }
    let mut tmpfs = HashMap::new();
    for t in &a.tmpfs {
        let (p, o) = t.split_once(':').unwrap_or((t, ""));
        tmpfs.insert(p.to_string(), o.to_string());
    }
    let mut labels = HashMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let ulimits = a
        .ulimit
        .iter()
        .map(|u| parse_ulimit(u))
        .collect::<Result<Vec<_>, _>>()?;
    let restart = match &a.restart {
        Some(r) => {
            let v = restart_policy(r)?;
            let name = match v.get("Name").and_then(Value::as_str) {
                Some("always") => RestartPolicyNameEnum::ALWAYS,
                Some("unless-stopped") => RestartPolicyNameEnum::UNLESS_STOPPED,
                Some("on-failure") => RestartPolicyNameEnum::ON_FAILURE,
                _ => RestartPolicyNameEnum::NO,
            };
            if a.rm && name != RestartPolicyNameEnum::NO {
                return Err(usage("Conflicting options: --restart and --rm"));
            }
            Some(RestartPolicy {
                name: Some(name),
                maximum_retry_count: v.get("MaximumRetryCount").and_then(Value::as_i64),
            })
        }
        None => None,
    };
    let network = a.network.clone();
    let mounts = a
        .mount
        .iter()
        .map(|m| super::volume::parse_mount(m))
        .collect::<Result<Vec<_>, _>>()?;
    let host = HostConfig {
        binds: (!binds.is_empty()).then_some(binds),
        mounts: (!mounts.is_empty()).then_some(mounts),
        volumes_from: (!a.volumes_from.is_empty()).then(|| a.volumes_from.clone()),
        auto_remove: a.rm.then_some(true),
        readonly_rootfs: a.read_only.then_some(true),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        cap_add: (!a.cap_add.is_empty()).then(|| a.cap_add.clone()),
        cap_drop: (!a.cap_drop.is_empty()).then(|| a.cap_drop.clone()),
        privileged: a.privileged.then_some(true),
        security_opt: (!a.security_opt.is_empty()).then(|| a.security_opt.clone()),
        memory: a.memory.as_deref().map(ram_bytes).transpose()?,
        memory_swap: a.memory_swap.as_deref().map(swap_bytes).transpose()?,
        nano_cpus: a.cpus.map(|c| (c * 1e9) as i64),
        cpu_shares: a.cpu_shares,
        cpuset_cpus: a.cpuset_cpus.clone(),
        pids_limit: a.pids_limit,
        ulimits: (!ulimits.is_empty()).then_some(ulimits),
        shm_size: a.shm_size.as_deref().map(ram_bytes).transpose()?,
        restart_policy: restart,
        init: a.init.then_some(true),
        network_mode: network.clone().or_else(|| Some("default".into())),
        runtime: a.runtime.clone(),
        ..Default::default()
    };
    let (host, networking, exposed) = super::network::run_fields(a, host)?;
    let env = env_list(&a.env, &a.env_file)?;
    let entrypoint = a.entrypoint.as_ref().map(|e| {
        if e.is_empty() {
            vec![String::new()]
        } else {
            vec![e.clone()]
        }
    });
    Ok(ContainerCreateBody {
        hostname: a.hostname.clone(),
        user: a.user.clone(),
        attach_stdin: Some(att_in),
        attach_stdout: Some(att_out),
        attach_stderr: Some(att_err),
        tty: Some(a.tty),
        open_stdin: Some(a.interactive),
        stdin_once: Some(a.interactive && att_in),
        env: (!env.is_empty()).then_some(env),
        cmd: (!a.command.is_empty()).then(|| a.command.clone()),
        image: Some(a.image.clone()),
        volumes: (!volumes.is_empty()).then_some(volumes),
        working_dir: a.workdir.clone(),
        entrypoint,
        labels: (!labels.is_empty()).then_some(labels),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        healthcheck: healthcheck(a)?,
        host_config: Some(host),
        networking_config: networking,
        exposed_ports: exposed,
        ..Default::default()
    })
}

/// `--health-*` and `--no-healthcheck` as docker turns them into `Config.Healthcheck`.
fn healthcheck(a: &RunArgs) -> Result<Option<HealthConfig>, Failure> {
    let dur = |flag: &str, v: &Option<String>| -> Result<Option<i64>, Failure> {
        match v.as_deref() {
            None => Ok(None),
            Some(s) => match crate::format::parse_go_duration(s) {
                Some(secs) if secs >= 0.0 => Ok(Some((secs * 1e9) as i64)),
                _ => Err(usage(format!(
                    "invalid argument {s:?} for \"--{flag}\" flag: time: invalid duration {s:?}"
                ))),
            },
        }
    };
    let interval = dur("health-interval", &a.health_interval)?;
    let timeout = dur("health-timeout", &a.health_timeout)?;
    let start_period = dur("health-start-period", &a.health_start_period)?;
    let start_interval = dur("health-start-interval", &a.health_start_interval)?;
    let any = a.health_cmd.is_some()
        || interval.is_some()
        || timeout.is_some()
        || start_period.is_some()
        || start_interval.is_some()
        || a.health_retries.is_some();
    if a.no_healthcheck {
        if any {
            return Err(usage("--no-healthcheck conflicts with --health-* options"));
        }
        return Ok(Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }));
    }
    if !any {
        return Ok(None);
    }
    if a.health_retries.is_some_and(|r| r < 0) {
        return Err(usage("--health-retries cannot be negative"));
    }
    Ok(Some(HealthConfig {
        test: a
            .health_cmd
            .as_ref()
            .map(|c| vec!["CMD-SHELL".into(), c.clone()]),
        interval,
        timeout,
        retries: a.health_retries,
        start_period,
        start_interval,
    }))
}

fn image_ref(image: &str) -> (String, String) {
    // `repo[:tag]` or `repo@digest`; a colon after the last slash is the tag.
    if let Some((r, d)) = image.split_once('@') {
        return (r.to_string(), d.to_string());
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (
            image[..slash + i].to_string(),
            image[slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

fn pull(c: &mut Client, image: &str) -> Result<(), Failure> {
    let (repo, tag) = image_ref(image);
    let mut r = c.request(
        "POST",
        &with_query("/images/create", &[("fromImage", repo), ("tag", tag)]),
        None,
    )?;
    let mut err = None;
    r.body.json_stream(|v| {
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            err = Some(e.to_string());
            return false;
        }
        if let Some(s) = v.get("status").and_then(Value::as_str) {
            let id = v.get("id").and_then(Value::as_str).unwrap_or("");
            if id.is_empty() {
                eprintln!("{s}");
            } else {
                eprintln!("{id}: {s}");
            }
        }
        true
    })?;
    match err {
        Some(e) => Err(Failure::new(125, e)),
        None => Ok(()),
    }
}

/// Creates the container (pulling as `--pull` says); returns its id.
fn create_container(c: &mut Client, a: &RunArgs) -> Result<String, Failure> {
    if !matches!(a.pull.as_str(), "missing" | "always" | "never") {
        return Err(usage(format!(
            "invalid pull option: '{}': must be one of \"always\", \"missing\" or \"never\"",
            a.pull
        )));
    }
    let body = create_body(a)?;
    let mut q = vec![];
    if let Some(n) = &a.name {
        q.push(("name", n.clone()));
    }
    let path = with_query("/containers/create", &q);
    if a.pull == "always" {
        pull(c, &a.image)?;
    }
    let v = match c.post_json(&path, Some(&body)) {
        Ok(v) => v,
        Err(Error::Daemon {
            status: 404,
            message,
        }) if a.pull == "missing" && message.to_lowercase().contains("no such image") => {
            let (repo, tag) = image_ref(&a.image);
            eprintln!("Unable to find image '{repo}:{tag}' locally");
            pull(c, &a.image)?;
            c.post_json(&path, Some(&body))?
        }
        Err(e) => return Err(Failure::new(125, e.to_string())),
    };
    for w in v
        .get("Warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        eprintln!("WARNING: {}", w.as_str().unwrap_or(""));
    }
    v.get("Id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Failure::new(125, "daemon returned no container id"))
}

/// docker's `run`-error wrapping: `berth: <msg>` + a hint, exit 125 (126/127 for exec
/// failures recognised in the daemon's message).
fn run_failure(cmd: &str, f: Failure) -> Failure {
    let m = f.msg.trim_start_matches("Error response from daemon: ");
    let code = if f.code != 125 && f.code != 1 {
        f.code
    } else if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("system cannot find the file specified")
    {
        127
    } else if m.contains("permission denied") || m.contains("is a directory") {
        126
    } else {
        125
    };
    Failure::new(
        code,
        format!(
            "berth: {}\n\nRun 'berth {cmd} --help' for more information",
            f.msg
        ),
    )
}

pub fn create(c: &mut Client, a: RunArgs) -> Result<i32, Failure> {
    let id = create_container(c, &a).map_err(|f| run_failure("create", f))?;
    println!("{id}");
    Ok(0)
}

fn detach_keys(flag: Option<&str>) -> Result<(String, Vec<u8>), Failure> {
    let k = flag.unwrap_or(DEFAULT_DETACH_KEYS).to_string();
    let b = stream::parse_detach_keys(&k).map_err(usage)?;
    Ok((k, b))
}

/// Starts the wait request and returns once the daemon has registered it; the exit code
/// arrives on the channel.
fn wait_exit(c: &Client, id: &str, cond: &str) -> Result<mpsc::Receiver<i32>, Failure> {
    let mut c2 = c.clone();
    let path = format!("{}?condition={cond}", cpath(id, "/wait"));
    let mut r = c2.request("POST", &path, None)?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let code = match r.body.json() {
            Ok(v) => {
                if let Some(m) = v.pointer("/Error/Message").and_then(Value::as_str)
                    && !m.is_empty()
                {
                    eprintln!("{m}");
                }
                v.get("StatusCode").and_then(Value::as_i64).unwrap_or(125) as i32
            }
            Err(e) => {
                eprintln!("{e}");
                125
            }
        };
        let _ = tx.send(code);
    });
    Ok(rx)
}

fn resize(c: &mut Client, path: &str) {
    if let Some((h, w)) = term::size(1).or_else(|| term::size(0)) {
        let _ = c.post_json::<Value>(&format!("{path}?h={h}&w={w}"), None);
    }
}

/// Signals: window changes resize the tty; others are proxied to the container (or exit).
fn install_signals(c: &Client, resize_path: Option<String>, proxy_to: Option<String>) {
    let mut sigs = vec![libc::SIGWINCH];
    sigs.extend_from_slice(&term::PROXIED);
    let c = c.clone();
    term::handle_signals(&sigs, move |sig| {
        let mut c = c.clone();
        if sig == libc::SIGWINCH {
            if let Some(p) = &resize_path {
                resize(&mut c, p);
            }
            return;
        }
        match &proxy_to {
            Some(id) => {
                let _ = c.post_json::<Value>(&format!("{}?signal={sig}", cpath(id, "/kill")), None);
            }
            None => term::exit_on_signal(sig),
        }
    });
}

pub fn run(c: &mut Client, a: RunArgs) -> Result<i32, Failure> {
    if a.detach && !a.attach.is_empty() {
        return Err(run_failure("run", usage("Conflicting options: -a and -d")));
    }
    let stdin_tty = term::is_tty(0);
    if a.tty && a.interactive && !stdin_tty {
        return Err(Failure::new(1, "the input device is not a TTY"));
    }
    let (keys_s, keys) =
        detach_keys(a.detach_keys.as_deref()).map_err(|f| run_failure("run", f))?;
    let id = create_container(c, &a).map_err(|f| run_failure("run", f))?;
    if a.detach {
        c.post_json::<Value>(&cpath(&id, "/start"), None)
            .map_err(|e| run_failure("run", e.into()))?;
        println!("{id}");
        return Ok(0);
    }
    let body = create_body(&a)?;
    let att_in = body.attach_stdin.unwrap_or(false);
    let att_out = body.attach_stdout.unwrap_or(false);
    let att_err = body.attach_stderr.unwrap_or(false);
    // Signals first: threads started later inherit the blocked mask.
    let proxy = (a.sig_proxy && !a.tty).then(|| id.clone());
    install_signals(c, a.tty.then(|| cpath(&id, "/resize")), proxy);
    let wait = wait_exit(c, &id, if a.rm { "removed" } else { "next-exit" })
        .map_err(|f| run_failure("run", f))?;
    let attached = att_in || att_out || att_err;
    let mut conn = None;
    if attached {
        let q = vec![
            ("stream", "1".to_string()),
            ("stdin", (att_in as u8).to_string()),
            ("stdout", (att_out as u8).to_string()),
            ("stderr", (att_err as u8).to_string()),
            ("detachKeys", keys_s.clone()),
        ];
        let (s, left) = c
            .hijack(&with_query(&cpath(&id, "/attach"), &q), None)
            .map_err(|e| run_failure("run", e.into()))?;
        conn = Some((s, left));
    }
    let raw = if a.tty && att_in && stdin_tty {
        Some(term::RawGuard::new()?)
    } else {
        None
    };
    if let Err(e) = c.post_json::<Value>(&cpath(&id, "/start"), None) {
        drop(raw);
        if a.rm {
            // The daemon may not remove a container that never started.
            let _ = c.delete(&format!("{}?force=1", cpath(&id, "")));
        }
        return Err(run_failure("run", e.into()));
    }
    if a.tty {
        resize(c, &cpath(&id, "/resize"));
    }
    if let Some((s, left)) = conn {
        let sess = Session {
            tty: a.tty,
            stdin: att_in,
            stdout: att_out,
            stderr: att_err,
            detach: if a.tty && att_in { keys } else { Vec::new() },
        };
        let end = stream::pump(s, left, &sess);
        drop(raw);
        match end {
            Ok(End::Detached) => return Ok(0),
            Ok(End::Eof) => {}
            Err(e) => return Err(Failure::new(1, e.to_string())),
        }
    }
    let code = wait.recv().unwrap_or(125);
    Ok(code)
}

pub fn start(c: &mut Client, a: StartArgs) -> Result<i32, Failure> {
    if !(a.attach || a.interactive) {
        return super::each(
            &a.containers,
            |n| {
                c.post_json::<Value>(&cpath(n, "/start"), None)?;
                Ok(())
            },
            true,
        );
    }
    if a.containers.len() > 1 {
        return Err(Failure::new(
            1,
            "you cannot start and attach multiple containers at once",
        ));
    }
    let name = &a.containers[0];
    let info = c.get_json(&cpath(name, "/json"))?;
    let id = info
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or(name)
        .to_string();
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let open_stdin = info
        .pointer("/Config/OpenStdin")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let att_in = a.interactive && open_stdin;
    let (keys_s, keys) = detach_keys(a.detach_keys.as_deref())?;
    install_signals(
        c,
        tty.then(|| cpath(&id, "/resize")),
        (!tty).then(|| id.clone()),
    );
    let wait = wait_exit(c, &id, "next-exit")?;
    let q = vec![
        ("stream", "1".to_string()),
        ("stdin", (att_in as u8).to_string()),
        ("stdout", "1".to_string()),
        ("stderr", "1".to_string()),
        ("detachKeys", keys_s),
    ];
    let (s, left) = c.hijack(&with_query(&cpath(&id, "/attach"), &q), None)?;
    let raw = if tty && att_in && term::is_tty(0) {
        Some(term::RawGuard::new()?)
    } else {
        None
    };
    if let Err(e) = c.post_json::<Value>(&cpath(&id, "/start"), None) {
        drop(raw);
        return Err(e.into());
    }
    if tty {
        resize(c, &cpath(&id, "/resize"));
    }
    let sess = Session {
        tty,
        stdin: att_in,
        stdout: true,
        stderr: true,
        detach: if tty && att_in { keys } else { Vec::new() },
    };
    let end = stream::pump(s, left, &sess);
    drop(raw);
    if end? == End::Detached {
        return Ok(0);
    }
    Ok(wait.recv().unwrap_or(125))
}

pub fn attach(c: &mut Client, a: AttachArgs) -> Result<i32, Failure> {
    let info = c.get_json(&cpath(&a.container, "/json"))?;
    let id = info
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or(&a.container)
        .to_string();
    if !info
        .pointer("/State/Running")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(Failure::new(
            1,
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if info
        .pointer("/State/Paused")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(Failure::new(
            1,
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let open_stdin = info
        .pointer("/Config/OpenStdin")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let att_in = !a.no_stdin && open_stdin;
    if tty && att_in && !term::is_tty(0) {
        return Err(Failure::new(1, "the input device is not a TTY"));
    }
    let (keys_s, keys) = detach_keys(a.detach_keys.as_deref())?;
    let q = vec![
        ("stream", "1".to_string()),
        ("stdin", (att_in as u8).to_string()),
        ("stdout", "1".to_string()),
        ("stderr", "1".to_string()),
        ("detachKeys", keys_s),
    ];
    // Registered before attaching, as docker does: the exit code comes from the daemon once
    // the container has stopped, not from an inspect that may run before it has noticed.
    let exited = wait_exit(c, &id, "not-running")?;
    let (s, left) = c.hijack(&with_query(&cpath(&id, "/attach"), &q), None)?;
    let raw = if tty && att_in {
        Some(term::RawGuard::new()?)
    } else {
        None
    };
    install_signals(
        c,
        tty.then(|| cpath(&id, "/resize")),
        (a.sig_proxy && !tty).then(|| id.clone()),
    );
    if tty {
        resize(c, &cpath(&id, "/resize"));
    }
    let sess = Session {
        tty,
        stdin: att_in,
        stdout: true,
        stderr: true,
        detach: if tty && att_in { keys } else { Vec::new() },
    };
    let end = stream::pump(s, left, &sess);
    drop(raw);
    if end? == End::Detached {
        return Ok(0);
    }
    // The stream ended: the container's exit code, as docker reports it.
    exited
        .recv()
        .map_err(|_| Failure::new(1, "lost the wait for the container's exit"))
}

pub fn exec(c: &mut Client, a: ExecArgs) -> Result<i32, Failure> {
    let stdin_tty = term::is_tty(0);
    if a.tty && a.interactive && !stdin_tty {
        return Err(Failure::new(1, "the input device is not a TTY"));
    }
    let (keys_s, keys) = detach_keys(a.detach_keys.as_deref())?;
    let env = env_list(&a.env, &a.env_file)?;
    let cfg = ExecConfig {
        attach_stdin: Some(a.interactive && !a.detach),
        attach_stdout: Some(!a.detach),
        attach_stderr: Some(!a.detach),
        tty: Some(a.tty),
        detach_keys: a.detach_keys.is_some().then_some(keys_s),
        env: (!env.is_empty()).then_some(env),
        cmd: Some(a.command.clone()),
        privileged: a.privileged.then_some(true),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        console_size: if a.tty {
            term::size(1).map(|(h, w)| vec![h as usize, w as usize])
        } else {
            None
        },
    };
    let cfg = exec_for_version(c, cfg)?;
    let v = c.post_json(&cpath(&a.container, "/exec"), Some(&cfg))?;
    let exec_id = v
        .get("Id")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::new(1, "daemon returned no exec id"))?
        .to_string();
    let start_path = format!("/exec/{}/start", enc(&exec_id));
    if a.detach {
        c.post_json(
            &start_path,
            Some(&serde_json::json!({"Detach": true, "Tty": a.tty})),
        )?;
        return Ok(0);
    }
    let body = serde_json::to_vec(&serde_json::json!({"Detach": false, "Tty": a.tty}))
        .map_err(|e| Failure::new(1, e.to_string()))?;
    let (s, left) = c.hijack(&start_path, Some(&body))?;
    let raw = if a.tty && a.interactive {
        Some(term::RawGuard::new()?)
    } else {
        None
    };
    let resize_path = format!("/exec/{}/resize", enc(&exec_id));
    install_signals(c, a.tty.then(|| resize_path.clone()), None);
    if a.tty {
        resize(c, &resize_path);
    }
    let sess = Session {
        tty: a.tty,
        stdin: a.interactive,
        stdout: true,
        stderr: true,
        detach: if a.tty && a.interactive {
            keys
        } else {
            Vec::new()
        },
    };
    let end = stream::pump(s, left, &sess);
    drop(raw);
    if end? == End::Detached {
        return Ok(0);
    }
    // The exit code; the daemon may record it a moment after the stream closes.
    let path = format!("/exec/{}/json", enc(&exec_id));
    for _ in 0..200 {
        let v = c.get_json(&path)?;
        if !v.get("Running").and_then(Value::as_bool).unwrap_or(false) {
            return Ok(v.get("ExitCode").and_then(Value::as_i64).unwrap_or(0) as i32);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(0)
}

/// Drops fields older daemons reject (`ConsoleSize` needs API 1.42).
fn exec_for_version(c: &mut Client, mut cfg: ExecConfig) -> Result<ExecConfig, Failure> {
    if c.version()? < berth_api_types::ApiVersion::new(1, 42) {
        cfg.console_size = None;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> RunArgs {
        let mut v = vec!["berth", "run"];
        v.extend_from_slice(args);
        match crate::cli::Cli::try_parse_from(v).unwrap().cmd {
            Cmd::Run(a) => a,
            _ => panic!("not run"),
        }
    }

    #[test]
    fn run_flags_map_to_the_create_body() {
        let a = parse(&[
            "-it",
            "--rm",
            "-e",
            "A=1",
            "-h",
            "box",
            "--memory",
            "64m",
            "--cpus",
            "1.5",
            "--ulimit",
            "nofile=10:20",
            "-v",
            "/a:/b:ro",
            "-v",
            "/anon",
            "--tmpfs",
            "/t:size=1m",
            "--restart",
            "no",
            "-l",
            "k=v",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ]);
        assert!(a.rm);
        let b = serde_json::to_value(create_body(&a).map_err(|f| f.msg).unwrap()).unwrap();
        assert_eq!(b["Hostname"], "box");
        assert_eq!(b["Tty"], true);
        assert_eq!(b["OpenStdin"], true);
        assert_eq!(b["Cmd"], serde_json::json!(["sh", "-c", "exit 3"]));
        assert_eq!(b["Env"], serde_json::json!(["A=1"]));
        assert_eq!(b["Volumes"], serde_json::json!({"/anon": {}}));
        let h = &b["HostConfig"];
        assert_eq!(h["Memory"], 64 << 20);
        assert_eq!(h["NanoCpus"], 1_500_000_000i64);
        assert_eq!(h["Ulimits"][0]["Soft"], 10);
        assert_eq!(h["Binds"], serde_json::json!(["/a:/b:ro"]));
        assert_eq!(h["Tmpfs"]["/t"], "size=1m");
        assert_eq!(h["NetworkMode"], "none");
        assert_eq!(h["AutoRemove"], true);
        assert_eq!(h["RestartPolicy"]["Name"], "no");
    }

    #[test]
    fn bad_flags_are_refused_with_the_reason() {
        let a = parse(&["--ulimit", "nofile=20:10", "busybox"]);
        assert!(create_body(&a).unwrap_err().msg.contains("soft limit"));
        let a = parse(&["--rm", "--restart", "always", "busybox"]);
        assert!(
            create_body(&a)
                .unwrap_err()
                .msg
                .contains("--restart and --rm")
        );
        assert_eq!(
            image_ref("reg:5000/a/b:1"),
            ("reg:5000/a/b".into(), "1".into())
        );
        assert_eq!(image_ref("busybox"), ("busybox".into(), "latest".into()));
    }
}
