//! The command line: runc's grammar, so containerd, dockerd, podman and CRI runtimes can call
//! berth-runtime wherever they call runc.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;
use crate::error::Result;
use crate::log;
use crate::state::DEFAULT_ROOT;

/// berth's OCI runtime: creates and runs containers from OCI bundles, with runc's commands.
///
/// A bundle is a directory holding config.json (see `berth-runtime spec`) and the root
/// filesystem it names. The usual life of a container:
///
///   berth-runtime create --bundle /path/to/bundle mycontainer
///   berth-runtime start mycontainer
///   berth-runtime state mycontainer
///   berth-runtime kill mycontainer TERM
///   berth-runtime delete mycontainer
///
/// or all at once, in the foreground: `berth-runtime run --bundle /path/to/bundle mycontainer`.
#[derive(Debug, Parser)]
#[command(name = "berth-runtime", version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", "1.3.0"), disable_version_flag = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options valid before or after any command.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Directory holding container state (put it on tmpfs)
    #[arg(long, global = true, default_value = DEFAULT_ROOT, value_name = "DIR")]
    pub root: PathBuf,
    /// Write log lines to this file instead of stderr
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Log line format: text or json
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Log debug messages too
    #[arg(long, global = true)]
    pub debug: bool,
    /// Manage cgroups through systemd (not supported: berth-runtime drives cgroupfs itself)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility; berth-runtime runs as root
    #[arg(long, value_name = "true|false|auto")]
    pub rootless: Option<String>,
    /// Accepted for runc compatibility; checkpointing is not supported
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// Print version information
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle; its process waits until `start`
    Create(commands::create::CreateArgs),
    /// Start the process of a created container
    Start(commands::start::StartArgs),
    /// Create and start a container, and wait for it unless --detach
    Run(commands::run::RunArgs),
    /// Print a container's state as JSON
    State(commands::state::StateArgs),
    /// Send a signal to a container's init process (default TERM)
    Kill(commands::kill::KillArgs),
    /// Delete a container and everything it holds
    Delete(commands::delete::DeleteArgs),
    /// Run a new process inside a running container
    Exec(commands::exec::ExecArgs),
    /// List the processes running inside a container
    Ps(commands::ps::PsArgs),
    /// Freeze every process of a container
    Pause(commands::pause::PauseArgs),
    /// Thaw a paused container
    Resume(commands::pause::PauseArgs),
    /// List containers under --root
    #[command(alias = "ls")]
    List(commands::list::ListArgs),
    /// Write a starting config.json
    Spec(commands::spec::SpecArgs),
    /// Print what this runtime supports, as OCI features JSON
    Features,
    /// Change a container's resource limits
    Update(commands::update::UpdateArgs),
    /// Print a container's resource usage and OOM events as JSON lines
    Events(commands::events::EventsArgs),
}

/// Whether a command puts processes into a container (and so must run from the sealed copy).
fn enters_container(c: &Command) -> bool {
    matches!(c, Command::Create(_) | Command::Run(_) | Command::Exec(_))
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let g = &cli.global;
    let format = if g.log_format == "json" {
        log::Format::Json
    } else {
        log::Format::Text
    };
    if let Err(e) = log::init(g.log.as_deref(), format, g.debug) {
        eprintln!(
            "berth-runtime: opening log {}: {e}",
            g.log
                .as_deref()
                .unwrap_or(std::path::Path::new("-"))
                .display()
        );
        return 1;
    }
    let res = (|| -> Result<i32> {
        if g.systemd_cgroup {
            return Err(crate::Error::msg(
                "--systemd-cgroup is not supported: configure the caller to use the cgroupfs driver",
            ));
        }
        if g.rootless.as_deref() == Some("true") && !rustix::process::geteuid().is_root() {
            return Err(crate::Error::msg(
                "rootless containers are not supported: run as root",
            ));
        }
        if enters_container(&cli.command) {
            crate::selfexec::ensure_sealed()?;
        }
        match cli.command {
            Command::Create(a) => commands::create::run(g, a),
            Command::Start(a) => commands::start::run(g, a),
            Command::Run(a) => commands::run::run(g, a),
            Command::State(a) => commands::state::run(g, a),
            Command::Kill(a) => commands::kill::run(g, a),
            Command::Delete(a) => commands::delete::run(g, a),
            Command::Exec(a) => commands::exec::run(g, a),
            Command::Ps(a) => commands::ps::run(g, a),
            Command::Pause(a) => commands::pause::pause(g, a),
            Command::Resume(a) => commands::pause::resume(g, a),
            Command::List(a) => commands::list::run(g, a),
            Command::Spec(a) => commands::spec::run(a),
            Command::Features => commands::features::run(),
            Command::Update(a) => commands::update::run(g, a),
            Command::Events(a) => commands::events::run(g, a),
        }
    })();
    match res {
        Ok(code) => code,
        Err(e) => {
            let msg = e.to_string();
            if g.log.is_some() {
                log::error(&msg);
            }
            eprintln!("berth-runtime: {msg}");
            1
        }
    }
}
