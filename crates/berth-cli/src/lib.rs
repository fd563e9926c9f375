//! berth's command line: docker's grammar and output, as a client of the Docker Engine API
//! over a unix socket (berthd's, or any Docker-API daemon's).
//!
//! | module | concern |
//! |---|---|
//! | `cli` | the clap grammar (docker's flags, `container`/`image` groups) |
//! | `client` | blocking HTTP/1.1 over a unix socket, version negotiation, hijacking |
//! | `commands/*` | one file per area: containers, run/exec/attach, images, system |
//! | `template` | Go `text/template` subset with docker's functions, for `--format` |
//! | `format` | sizes, durations, times, ids, tabwriter tables |
//! | `stream`, `term` | attach/exec streams, raw terminal, signals, detach keys |
//!
//! Exit codes follow docker: 0, 1 for a failed command, 125 for usage errors and for `run`
//! failing before the container starts, 126/127 when the command cannot be invoked or is
//! not found, and the container's own code for `run`/`start -a` in the foreground.

pub mod cli;
pub mod client;
pub mod commands;
pub mod format;
pub mod stream;
pub mod template;
pub mod term;

use std::ffi::OsString;
use std::io::Write;

use clap::{CommandFactory, Parser};

/// The default daemon address.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// A failed command: the exit code and what to print on stderr.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub msg: String,
}

impl Failure {
    pub fn new(code: i32, msg: impl Into<String>) -> Failure {
        Failure {
            code,
            msg: msg.into(),
        }
    }
}

impl From<client::Error> for Failure {
    fn from(e: client::Error) -> Failure {
        Failure::new(1, e.to_string())
    }
}

impl From<template::Error> for Failure {
    fn from(e: template::Error) -> Failure {
        Failure::new(1, e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::new(1, e.to_string())
    }
}

/// The daemon address: `-H`, else `BERTH_HOST`, else `DOCKER_HOST`, else the default.
pub fn resolve_host(flag: Option<&str>) -> String {
    if let Some(h) = flag {
        return h.to_string();
    }
    for var in ["BERTH_HOST", "DOCKER_HOST"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return v;
        }
    }
    DEFAULT_HOST.to_string()
}

/// Runs the command line `args` (including the program name); returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 125,
            };
            let _ = e.print();
            return code;
        }
    };
    if !matches!(
        cli.log_level.as_str(),
        "debug" | "info" | "warn" | "error" | "fatal"
    ) {
        eprintln!("Unable to parse logging level: {}", cli.log_level);
        return 125;
    }
    if let cli::Cmd::Completion(c) = &cli.cmd {
        return completion(&c.shell);
    }
    let host = resolve_host(cli.host.as_deref());
    let mut client = match client::Client::new(&host) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 125;
        }
    };
    let r = commands::dispatch(&mut client, cli.cmd);
    let _ = std::io::stdout().flush();
    match r {
        Ok(code) => code,
        Err(f) => {
            term::restore();
            if !f.msg.is_empty() {
                eprintln!("{}", f.msg);
            }
            f.code
        }
    }
}

fn completion(shell: &str) -> i32 {
    let mut cmd = cli::Cli::command();
    let mut out = std::io::stdout();
    match shell {
        "bash" => clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "berth", &mut out),
        _ => clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "berth", &mut out),
    }
    0
}
