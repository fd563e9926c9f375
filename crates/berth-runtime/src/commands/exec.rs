//! `exec`: run a new process inside a running container, described by `--process` JSON or by
//! the command line on top of the container's own process settings.

use std::path::PathBuf;

use clap::Args;
use oci_spec::runtime::{Capability, Process};

use crate::cli::Global;
use crate::container::{self, ExecOpts};
use crate::error::{Error, Result};
use crate::foreground;
use crate::state::{Root, Status};

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Unix socket that receives the pty master when --tty is set
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Working directory inside the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (NAME=value); repeatable
    #[arg(short, long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Allocate a pty
    #[arg(short, long)]
    pub tty: bool,
    /// Run as uid[:gid]
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional group ids; repeatable
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Read the whole process from this OCI process JSON file ("-" for stdin)
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Return once the process started instead of waiting for it
    #[arg(short, long)]
    pub detach: bool,
    /// Write the new process's pid to this file
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// SELinux label (ignored: no SELinux support)
    #[arg(long = "process-label", hide = true)]
    pub process_label: Option<String>,
    /// AppArmor profile (ignored: no AppArmor support)
    #[arg(long, hide = true)]
    pub apparmor: Option<String>,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability (e.g. CAP_NET_ADMIN); repeatable
    #[arg(short, long = "cap", value_name = "CAP")]
    pub cap: Vec<String>,
    /// Pass this many extra fds (from fd 3 on) to the process
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Put the process in this sub-cgroup (controller:path, or path)
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Container id
    pub id: String,
    /// Command and arguments (unless --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn parse_cap(s: &str) -> Result<Capability> {
    let name = if s.to_ascii_uppercase().starts_with("CAP_") {
        s.to_ascii_uppercase()
    } else {
        format!("CAP_{}", s.to_ascii_uppercase())
    };
    serde_json::from_value(serde_json::Value::String(name.clone()))
        .map_err(|_| Error::msg(format!("--cap {s}: unknown capability {name}")))
}

fn build_process(a: &ExecArgs, base: Option<&Process>) -> Result<Process> {
    if let Some(path) = &a.process {
        let data = if path.as_os_str() == "-" {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
                .map_err(|e| Error::msg(format!("--process -: {e}")))?;
            v
        } else {
            std::fs::read(path)
                .map_err(|e| Error::msg(format!("--process {}: {e}", path.display())))?
        };
        let de = &mut serde_json::Deserializer::from_slice(&data);
        return serde_path_to_error::deserialize(de)
            .map_err(|e| Error::msg(format!("--process: {}: {}", e.path(), e.inner())));
    }
    if a.command.is_empty() {
        return Err(Error::msg("exec: give a command to run, or --process"));
    }
    let mut p = base.cloned().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let mut user = p.user().clone();
        user.set_uid(
            uid.parse()
                .map_err(|_| Error::msg(format!("--user {u}: uid must be a number")))?,
        );
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .map_err(|_| Error::msg(format!("--user {u}: gid must be a number")))?,
            );
        }
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for c in &a.cap {
            let cap = parse_cap(c)?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (b, e, pm, i) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
                add(caps.inheritable()),
            );
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(pm);
            caps.set_inheritable(i);
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

pub fn run(g: &Global, a: ExecArgs) -> Result<i32> {
    super::check_preserved_fds(a.preserve_fds)?;
    let root = Root::open(&g.root)?;
    let state = root.load(&a.id)?;
    match state.status(&root.container_dir(&a.id)) {
        Status::Running | Status::Created => {}
        Status::Paused if a.ignore_paused => {}
        s => {
            return Err(Error::State {
                id: a.id.clone(),
                status: s.to_string(),
                reason: "cannot exec in a container that is not running".into(),
            });
        }
    }
    let process = build_process(&a, state.config.process().as_ref())?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && a.detach && a.console_socket.is_none() {
        return Err(Error::msg("--tty with --detach needs --console-socket"));
    }
    if !a.detach {
        foreground::block_signals()?;
    }
    let opts = ExecOpts {
        process,
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        internal_console: !a.detach && a.console_socket.is_none(),
        sub_cgroup: a.cgroup.clone(),
    };
    let ex = container::exec(&root, &state, &opts)?;
    if a.detach {
        return Ok(0);
    }
    foreground::wait(ex.pid, ex.console)
}
