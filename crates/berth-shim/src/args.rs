//! The `berth-shim` command line: parsed by the binary, built by the daemon.
//!
//! Hand-written rather than clap: the shim stays resident for the life of every container,
//! and a smaller binary touches fewer pages (see the crate documentation on memory).

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// `berth-shim --help`.
pub const HELP: &str = "\
berth-shim: runs one container through an OCI runtime and keeps it: its stdio, log and exit
status, served to the daemon over <state-dir>/shim.sock.

Usage:
  berth-shim --id ID --bundle DIR --state-dir DIR --runtime PATH [options]

The process started prints one JSON line on stdout and exits: {\"pid\": <init pid>} (status 0)
once the container is created, or {\"error\": \"<message>\"} (status 1), in which case nothing
is left behind. The shim itself stays in the background (its own session, subreaper of the
container) until it is asked to delete the container.

Required:
  --id ID               container id (letters, digits, _ - . +)
  --bundle DIR          OCI bundle (holds config.json)
  --state-dir DIR       the shim's directory: shim.sock, shim.pid, init.pid, exit.json,
                        runtime.log, shim.log (created if missing)
  --runtime PATH        the OCI runtime binary (runc's command line)

Options:
  --runtime-root DIR    passed to the runtime as --root
  --runtime-arg ARG     extra global argument for the runtime (repeatable)
  --tty                 the container has a pty (config.json process.terminal must be true)
  --stdin               keep the container's stdin open for attach (else /dev/null)
  --stdin-once          close the container's stdin when an attached client closes its input
  --log-path FILE       write stdout/stderr to FILE in Docker's json-file format
  --log-max-size BYTES  rotate FILE when it reaches BYTES (k, m, g suffixes; -1: never)
  --log-max-file N      keep N files in all: FILE, FILE.1, … FILE.(N-1) (default 1)
  --no-log              keep no log (the default when --log-path is absent)
  --linger SECS         once the container has exited, end the shim after SECS seconds
                        unless it is deleted or shut down first (default: stay until then);
                        exit.json and the runtime's state stay for a later daemon
  -h, --help            print this help
  -V, --version         print the version
";

/// The log settings of a shim (Docker's json-file `max-size` and `max-file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The log file.
    pub path: PathBuf,
    /// Rotate once the file has reached this many bytes; `None`: never.
    pub max_size: Option<u64>,
    /// How many files to keep in all (the live one included); at least 1.
    pub max_file: u32,
}

impl LogConfig {
    /// A log at `path` that is never rotated.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LogConfig {
            path: path.into(),
            max_size: None,
            max_file: 1,
        }
    }
}

/// Everything the shim is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimArgs {
    /// Container id.
    pub id: String,
    /// OCI bundle directory.
    pub bundle: PathBuf,
    /// The shim's state directory.
    pub state_dir: PathBuf,
    /// The OCI runtime binary.
    pub runtime: PathBuf,
    /// The runtime's `--root`.
    pub runtime_root: Option<PathBuf>,
    /// Extra global runtime arguments, placed before the command.
    pub runtime_args: Vec<OsString>,
    /// The container has a pty.
    pub tty: bool,
    /// The container's stdin is kept open for attach.
    pub stdin: bool,
    /// The container's stdin is closed when an attached client closes its input.
    pub stdin_once: bool,
    /// The container log; `None`: no log.
    pub log: Option<LogConfig>,
    /// End the shim this long after the container exited (no `delete` or `shutdown` came);
    /// `None`: wait for them however long it takes.
    pub linger: Option<Duration>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Run a shim.
    Run(ShimArgs),
    /// Print [`HELP`].
    Help,
    /// Print the version.
    Version,
}

/// Whether `id` is a valid container id (the runtime's rule).
pub fn valid_container_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
        && id != "."
        && id != ".."
}

/// Parses a byte count: `1024`, `10k`, `100m`, `2g` (binary units, as Docker's max-size);
/// `-1` means unlimited (`None`).
pub fn parse_size(s: &str) -> Option<Option<u64>> {
    let s = s.trim();
    if s == "-1" {
        return Some(None);
    }
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_end_matches('b').trim_end_matches('i');
    let (num, shift) = match t.as_bytes().last()? {
        b'k' => (&t[..t.len() - 1], 10),
        b'm' => (&t[..t.len() - 1], 20),
        b'g' => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: u64 = num.trim().parse().ok()?;
    n.checked_mul(1u64 << shift).map(Some)
}

impl ShimArgs {
    /// The required arguments, everything else off.
    pub fn new(
        id: impl Into<String>,
        bundle: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
        runtime: impl Into<PathBuf>,
    ) -> Self {
        ShimArgs {
            id: id.into(),
            bundle: bundle.into(),
            state_dir: state_dir.into(),
            runtime: runtime.into(),
            runtime_root: None,
            runtime_args: Vec::new(),
            tty: false,
            stdin: false,
            stdin_once: false,
            log: None,
            linger: None,
        }
    }

    /// The command line (without the program name) that [`ShimArgs::parse`] turns back
    /// into `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        let mut kv = |k: &str, val: &OsStr| {
            v.push(k.into());
            v.push(val.to_owned());
        };
        kv("--id", OsStr::new(&self.id));
        kv("--bundle", self.bundle.as_os_str());
        kv("--state-dir", self.state_dir.as_os_str());
        kv("--runtime", self.runtime.as_os_str());
        if let Some(r) = &self.runtime_root {
            kv("--runtime-root", r.as_os_str());
        }
        for a in &self.runtime_args {
            // `--runtime-arg=--x` keeps values starting with "--" unambiguous.
            let mut s = OsString::from("--runtime-arg=");
            s.push(a);
            v.push(s);
        }
        match &self.log {
            Some(l) => {
                v.push("--log-path".into());
                v.push(l.path.clone().into());
                v.push("--log-max-size".into());
                v.push(
                    l.max_size
                        .map_or_else(|| "-1".to_string(), |n| n.to_string())
                        .into(),
                );
                v.push("--log-max-file".into());
                v.push(l.max_file.to_string().into());
            }
            None => v.push("--no-log".into()),
        }
        if let Some(d) = self.linger {
            v.push("--linger".into());
            v.push(d.as_secs_f64().to_string().into());
        }
        for (on, flag) in [
            (self.tty, "--tty"),
            (self.stdin, "--stdin"),
            (self.stdin_once, "--stdin-once"),
        ] {
            if on {
                v.push(flag.into());
            }
        }
        v
    }

    /// Parses the command line (without the program name).
    pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command> {
        let mut id = None;
        let mut bundle = None;
        let mut state_dir = None;
        let mut runtime = None;
        let mut a = ShimArgs::new("", "", "", "");
        let mut log_path: Option<PathBuf> = None;
        let mut max_size: Option<Option<u64>> = None;
        let mut max_file: Option<u32> = None;
        let mut no_log = false;
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let s = arg
                .to_str()
                .ok_or_else(|| Error::Args(format!("argument {arg:?} is not UTF-8")))?;
            let (name, inline) = match s.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(OsString::from(v))),
                _ => (s, None),
            };
            let mut value = |name: &str| -> Result<OsString> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => it
                        .next()
                        .ok_or_else(|| Error::Args(format!("{name} needs a value"))),
                }
            };
            let flag = |inline: &Option<OsString>| -> Result<()> {
                if inline.is_some() {
                    Err(Error::Args(format!("{name} takes no value")))
                } else {
                    Ok(())
                }
            };
            match name {
                "-h" | "--help" => return Ok(Command::Help),
                "-V" | "--version" => return Ok(Command::Version),
                "--id" => {
                    id = Some(
                        value(name)?
                            .into_string()
                            .map_err(|v| Error::Args(format!("--id {v:?} is not UTF-8")))?,
                    )
                }
                "--bundle" => bundle = Some(PathBuf::from(value(name)?)),
                "--state-dir" => state_dir = Some(PathBuf::from(value(name)?)),
                "--runtime" => runtime = Some(PathBuf::from(value(name)?)),
                "--runtime-root" => a.runtime_root = Some(PathBuf::from(value(name)?)),
                "--runtime-arg" => a.runtime_args.push(value(name)?),
                "--log-path" => log_path = Some(PathBuf::from(value(name)?)),
                "--log-max-size" => {
                    let v = value(name)?;
                    let s = v.to_string_lossy();
                    max_size = Some(parse_size(&s).ok_or_else(|| {
                        Error::Args(format!("--log-max-size {s}: not a byte count"))
                    })?);
                }
                "--log-max-file" => {
                    let v = value(name)?;
                    let s = v.to_string_lossy();
                    let n: u32 = s
                        .parse()
                        .map_err(|_| Error::Args(format!("--log-max-file {s}: not a number")))?;
                    if n == 0 {
                        return Err(Error::Args("--log-max-file must be at least 1".into()));
                    }
                    max_file = Some(n);
                }
                "--linger" => {
                    let v = value(name)?;
                    let s = v.to_string_lossy();
                    let bad = || Error::Args(format!("--linger {s}: not a number of seconds"));
                    let secs: f64 = s.parse().map_err(|_| bad())?;
                    a.linger = Some(Duration::try_from_secs_f64(secs).map_err(|_| bad())?);
                }
                "--no-log" => {
                    flag(&inline)?;
                    no_log = true;
                }
                "--tty" => {
                    flag(&inline)?;
                    a.tty = true;
                }
                "--stdin" => {
                    flag(&inline)?;
                    a.stdin = true;
                }
                "--stdin-once" => {
                    flag(&inline)?;
                    a.stdin_once = true;
                }
                other => {
                    return Err(Error::Args(format!(
                        "unknown argument {other:?} (see --help)"
                    )));
                }
            }
        }
        a.id = id.ok_or_else(|| Error::Args("--id is required".into()))?;
        if !valid_container_id(&a.id) {
            return Err(Error::Args(format!(
                "--id {:?}: only letters, digits, _ - . + are allowed",
                a.id
            )));
        }
        a.bundle = bundle.ok_or_else(|| Error::Args("--bundle is required".into()))?;
        a.state_dir = state_dir.ok_or_else(|| Error::Args("--state-dir is required".into()))?;
        a.runtime = runtime.ok_or_else(|| Error::Args("--runtime is required".into()))?;
        match log_path {
            Some(_) if no_log => {
                return Err(Error::Args(
                    "--no-log and --log-path exclude each other".into(),
                ));
            }
            Some(path) => {
                a.log = Some(LogConfig {
                    path,
                    max_size: max_size.unwrap_or(None),
                    max_file: max_file.unwrap_or(1),
                })
            }
            None if max_size.is_some() || max_file.is_some() => {
                return Err(Error::Args(
                    "--log-max-size and --log-max-file need --log-path".into(),
                ));
            }
            None => {}
        }
        Ok(Command::Run(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Result<Command> {
        ShimArgs::parse(v.iter().map(OsString::from))
    }

    #[test]
    fn round_trip() {
        let mut a = ShimArgs::new("c1", "/b", "/s", "/rt");
        a.runtime_root = Some("/root".into());
        a.runtime_args = vec!["--debug".into(), "x y".into()];
        a.tty = true;
        a.stdin = true;
        a.stdin_once = true;
        a.log = Some(LogConfig {
            path: "/l/c.log".into(),
            max_size: Some(10 << 20),
            max_file: 3,
        });
        a.linger = Some(Duration::from_millis(1500));
        assert_eq!(
            ShimArgs::parse(a.to_args()).unwrap(),
            Command::Run(a.clone())
        );
        a.log = None;
        a.runtime_args.clear();
        assert_eq!(ShimArgs::parse(a.to_args()).unwrap(), Command::Run(a));
    }

    #[test]
    fn errors_name_the_argument() {
        let base = [
            "--id",
            "c",
            "--bundle",
            "/b",
            "--state-dir",
            "/s",
            "--runtime",
            "/r",
        ];
        assert!(matches!(parse(&base), Ok(Command::Run(_))));
        let e = parse(&base[..6]).unwrap_err().to_string();
        assert!(e.contains("--runtime is required"), "{e}");
        let mut v = base.to_vec();
        v.extend(["--log-max-size", "10q"]);
        assert!(
            parse(&v)
                .unwrap_err()
                .to_string()
                .contains("--log-max-size 10q")
        );
        let mut v = base.to_vec();
        v.extend(["--no-log", "--log-path", "/x"]);
        assert!(parse(&v).is_err());
        let mut v = base.to_vec();
        v.extend(["--linger", "-1"]);
        assert!(parse(&v).unwrap_err().to_string().contains("--linger -1"));
        let mut v = base.to_vec();
        v.push("--bogus");
        assert!(parse(&v).unwrap_err().to_string().contains("--bogus"));
        let mut v = base.to_vec();
        v[1] = "../x";
        assert!(parse(&v).is_err());
        assert_eq!(parse(&["--help"]).unwrap(), Command::Help);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Some(Some(1024)));
        assert_eq!(parse_size("10k"), Some(Some(10 << 10)));
        assert_eq!(parse_size("100m"), Some(Some(100 << 20)));
        assert_eq!(parse_size("1g"), Some(Some(1 << 30)));
        assert_eq!(parse_size("-1"), Some(None));
        assert_eq!(parse_size("x"), None);
    }
}
