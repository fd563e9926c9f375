//! Small file-system helpers shared by the cgroup code: reading and writing control files with
//! error messages that name the file (and the config field a write came from), creating
//! directory chains while remembering what was created, and removing cgroups.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use crate::error::Context;
use crate::{Error, Result};

/// Writes `value` to the control file `dir/file` in a single write(2), as cgroupfs requires.
/// `field` names what the value came from (`linux.resources.memory.limit`) and starts the
/// error message; pass an empty string when there is no config field behind the write.
pub(crate) fn write(field: &str, dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    write_raw(&path, value).ctx(|| write_what(field, &path, value))
}

/// Like [`write`], but returns the raw I/O error so callers can react to specific errnos.
pub(crate) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    let n = f.write(value.as_bytes())?;
    if n != value.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write ({n} of {} bytes)", value.len()),
        ));
    }
    Ok(())
}

/// The description used for a failed write.
pub(crate) fn write_what(field: &str, path: &Path, value: &str) -> String {
    let shown = value.trim_end();
    if field.is_empty() {
        format!("writing {shown} to {}", path.display())
    } else {
        format!("{field}: writing {shown} to {}", path.display())
    }
}

/// Reads a control file.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    read_path(&path)
}

/// Reads a file by full path.
pub(crate) fn read_path(path: &Path) -> Result<String> {
    let mut s = String::new();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut s))
        .ctx(|| format!("reading {}", path.display()))?;
    Ok(s)
}

/// Reads a control file, or `None` when it does not exist (controller or feature missing).
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    let mut s = String::new();
    match fs::File::open(&path).and_then(|mut f| f.read_to_string(&mut s)) {
        Ok(_) => Ok(Some(s)),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(Error::Io {
            what: format!("reading {}", path.display()),
            err: e,
        }),
    }
}

/// Whether an error means "no such file" (ENOENT, or ENODEV for a cgroup being removed).
pub(crate) fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV)
}

/// Parses a control file holding one unsigned number; `max` (cgroup v2) reads as `u64::MAX`.
pub(crate) fn parse_u64(dir: &Path, file: &str, text: &str) -> Result<u64> {
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse::<u64>().map_err(|_| {
        Error::msg(format!(
            "parsing {}: {t:?} is not an unsigned number",
            dir.join(file).display()
        ))
    })
}

/// Reads a control file holding one unsigned number.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let s = read(dir, file)?;
    parse_u64(dir, file, &s)
}

/// Reads a control file holding one unsigned number, `None` if the file does not exist.
pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>> {
    match read_opt(dir, file)? {
        Some(s) => parse_u64(dir, file, &s).map(Some),
        None => Ok(None),
    }
}

/// Looks up `key` in a flat-keyed file such as `memory.events` (`key value` per line).
pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        if it.next() == Some(key) {
            it.next().and_then(|v| v.parse().ok())
        } else {
            None
        }
    })
}

/// Creates `dir` and any missing ancestors below `base` (which must exist), pushing every
/// directory it created onto `created`, top-most first.
pub(crate) fn mkdir_all(base: &Path, dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let rel = dir.strip_prefix(base).map_err(|_| {
        Error::msg(format!(
            "cgroup directory {} is not below {}",
            dir.display(),
            base.display()
        ))
    })?;
    let mut cur = base.to_path_buf();
    for comp in rel.components() {
        cur.push(comp);
        match fs::create_dir(&cur) {
            Ok(()) => created.push(cur.clone()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(Error::Io {
                    what: format!("creating cgroup {}", cur.display()),
                    err: e,
                });
            }
        }
    }
    Ok(())
}

/// rmdir(2) with retries on EBUSY (the last processes may still be exiting). A missing
/// directory is not an error.
pub(crate) fn rmdir(path: &Path, retry: bool) -> io::Result<()> {
    let mut delay = Duration::from_millis(1);
    let mut tries = if retry { 10 } else { 0 };
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries > 0 => {
                sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(200));
                tries -= 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Removes a cgroup directory and every sub-cgroup below it, deepest first.
pub(crate) fn remove_cgroup(path: &Path) -> Result<()> {
    // Fast path: a leaf cgroup with no processes left.
    if rmdir(path, false).is_ok() {
        return Ok(());
    }
    let entries = match fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::Io {
                what: format!("removing cgroup {}: listing sub-cgroups", path.display()),
                err: e,
            });
        }
    };
    for entry in entries {
        let entry = entry.ctx(|| format!("removing cgroup {}: listing", path.display()))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_cgroup(&entry.path())?;
        }
    }
    rmdir(path, true).ctx(|| format!("removing cgroup {}", path.display()))
}

/// Reads the pids in `dir/cgroup.procs` (falling back to `cgroup.threads` for threaded cgroup
/// v2 groups) and those of every sub-cgroup, appending them to `out`. A missing directory
/// adds nothing.
pub(crate) fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let text = match read_opt(dir, "cgroup.procs") {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(()),
        Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => {
            read_opt(dir, "cgroup.threads")?.unwrap_or_default()
        }
        Err(e) => return Err(e),
    };
    for l in text.lines() {
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        let pid = l.parse::<i32>().map_err(|_| {
            Error::msg(format!(
                "parsing {}: bad pid {l:?}",
                dir.join("cgroup.procs").display()
            ))
        })?;
        out.push(pid);
    }
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if is_missing(&e) => return Ok(()),
        Err(e) => {
            return Err(Error::Io {
                what: format!("listing {}", dir.display()),
                err: e,
            });
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_pids(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// Writes `pid` to `dir/cgroup.procs`, retrying briefly on EINVAL (a task still being created
/// cannot be moved yet).
pub(crate) fn write_pid(dir: &Path, pid: i32) -> Result<()> {
    let path = dir.join("cgroup.procs");
    let value = pid.to_string();
    let mut tries = 0;
    loop {
        match write_raw(&path, &value) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && tries < 5 => {
                tries += 1;
                sleep(Duration::from_millis(30));
            }
            Err(e) => {
                return Err(Error::Io {
                    what: format!("adding pid {pid} to {}", path.display()),
                    err: e,
                });
            }
        }
    }
}
