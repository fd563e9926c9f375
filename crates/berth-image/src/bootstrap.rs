//! Base images made on this host, without a registry: busybox from the host's static busybox
//! binary (what LXC's busybox template does) and Debian with `debootstrap`.
//!
//! Both produce a layer tarball and go through [`ImageStore::import`], so their digests are
//! those of real content like any other image's.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_types::Reference;
use tracing::{info, warn};

use crate::error::{Context, Error, Result};
use crate::model::ContainerConfig;
use crate::store::{Image, ImageStore, ImportOptions};

/// Where the host's busybox is expected (Debian's `busybox-static` installs it there).
pub const HOST_BUSYBOX: &str = "/bin/busybox";

/// The `PATH` Docker's official images set.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The Debian mirror used when none is given.
pub const DEFAULT_DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\ndaemon:x:1:\ntty:x:5:\nnogroup:x:65534:\n";
const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
const NSSWITCH: &str = "passwd: files\ngroup: files\nhosts: files dns\n";

/// Directories of the busybox image and their modes.
const DIRS: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("sbin", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("var", 0o755),
    ("var/log", 0o755),
    ("var/tmp", 0o1777),
];

/// Whether an ELF file asks for a program interpreter (is dynamically linked).
fn is_dynamic_elf(bytes: &[u8]) -> Option<bool> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return None;
    }
    let is64 = bytes[4] == 2;
    let le = bytes[5] == 1;
    let rd = |off: usize, n: usize| -> Option<u64> {
        let s = bytes.get(off..off + n)?;
        let mut v = 0u64;
        for (i, b) in s.iter().enumerate() {
            let sh = if le { 8 * i } else { 8 * (n - 1 - i) };
            v |= u64::from(*b) << sh;
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if is64 {
        (rd(0x20, 8)?, rd(0x36, 2)?, rd(0x38, 2)?)
    } else {
        (rd(0x1c, 4)?, rd(0x2a, 2)?, rd(0x2c, 2)?)
    };
    for i in 0..phnum {
        let off = usize::try_from(phoff + i * phentsize).ok()?;
        if rd(off, 4)? == 3 {
            return Some(true); // PT_INTERP
        }
    }
    Some(false)
}

/// Builds the busybox image's layer tar from the busybox binary at `busybox` into an
/// anonymous temporary file: the binary as `/bin/busybox`, a symlink for each applet
/// (`busybox --list-full`), a minimal `/etc`, and the usual directories. Every entry has the
/// binary's mtime and root ownership, so the same binary always gives the same layer.
pub fn busybox_layer(busybox: &Path) -> Result<(File, SystemTime)> {
    let bin = std::fs::read(busybox).ctx(|| format!("read {}", busybox.display()))?;
    match is_dynamic_elf(&bin) {
        None => {
            return Err(Error::InvalidParameter(format!(
                "{} is not an ELF executable",
                busybox.display()
            )));
        }
        Some(true) => {
            return Err(Error::InvalidParameter(format!(
                "{} is dynamically linked and would not run in an image of its own: install busybox-static",
                busybox.display()
            )));
        }
        Some(false) => {}
    }
    let mtime = std::fs::metadata(busybox)
        .and_then(|m| m.modified())
        .ctx(|| format!("stat {}", busybox.display()))?;
    let secs = mtime.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let out = Command::new(busybox)
        .arg("--list-full")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .ctx(|| format!("run {} --list-full", busybox.display()))?;
    if !out.status.success() {
        return Err(Error::Msg(format!(
            "{} --list-full failed ({}): {}",
            busybox.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let list = String::from_utf8_lossy(&out.stdout);
    let mut links: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| l.contains('/') && !l.starts_with('/') && !l.contains(".."))
        .filter(|l| *l != "bin/busybox")
        .collect();
    links.sort_unstable();
    links.dedup();

    let file = tempfile::tempfile().ctx(|| "create temporary layer file")?;
    let mut tar = tar::Builder::new(file);
    let header = |typ: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(typ);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(secs);
        h.set_size(size);
        h
    };
    let io_err = |e: io::Error| Error::Io {
        what: "write busybox layer".into(),
        err: e,
    };
    let mut dirs: Vec<(String, u32)> = DIRS.iter().map(|(d, m)| (d.to_string(), *m)).collect();
    for l in &links {
        let parents = Path::new(l).ancestors().skip(1);
        for d in parents.filter(|d| !d.as_os_str().is_empty()) {
            let d = d.to_string_lossy().to_string();
            if !dirs.iter().any(|(x, _)| *x == d) {
                dirs.push((d, 0o755));
            }
        }
    }
    dirs.sort();
    for (d, mode) in &dirs {
        let mut h = header(tar::EntryType::Directory, *mode, 0);
        tar.append_data(&mut h, format!("{d}/"), io::empty())
            .map_err(io_err)?;
    }
    let mut h = header(tar::EntryType::Regular, 0o755, bin.len() as u64);
    tar.append_data(&mut h, "bin/busybox", bin.as_slice())
        .map_err(io_err)?;
    for (name, body, mode) in [
        ("etc/group", GROUP, 0o644),
        ("etc/hosts", HOSTS, 0o644),
        ("etc/nsswitch.conf", NSSWITCH, 0o644),
        ("etc/passwd", PASSWD, 0o644),
    ] {
        let mut h = header(tar::EntryType::Regular, mode, body.len() as u64);
        tar.append_data(&mut h, name, body.as_bytes())
            .map_err(io_err)?;
    }
    for l in links {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        tar.append_link(&mut h, l, "/bin/busybox").map_err(io_err)?;
    }
    let mut file = tar.into_inner().map_err(io_err)?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    Ok((file, mtime))
}

impl ImageStore {
    /// Makes a busybox image from the host's static busybox ([`HOST_BUSYBOX`]) and tags it
    /// `reference`. The image's creation time is the binary's mtime, so the same binary
    /// always gives the same image id.
    pub fn bootstrap_busybox(&self, reference: &Reference) -> Result<Image> {
        self.bootstrap_busybox_from(Path::new(HOST_BUSYBOX), reference)
    }

    /// [`ImageStore::bootstrap_busybox`] with another busybox binary.
    pub fn bootstrap_busybox_from(&self, busybox: &Path, reference: &Reference) -> Result<Image> {
        let (layer, mtime) = busybox_layer(busybox)?;
        let img = self.import(
            layer,
            &ImportOptions {
                reference: Some(reference.clone()),
                message: Some(format!("berth bootstrap from {}", busybox.display())),
                created_by: Some("berth bootstrap busybox".into()),
                created: Some(mtime),
                base_config: Some(ContainerConfig {
                    env: vec![DEFAULT_PATH.into()],
                    cmd: Some(vec!["sh".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )?;
        info!(id = %img.record.id, reference = %reference.familiar(), "busybox image bootstrapped");
        Ok(img)
    }

    /// Makes a Debian image with `debootstrap --variant=minbase <suite>` from `mirror` (default
    /// [`DEFAULT_DEBIAN_MIRROR`]; needs the network and takes minutes) and tags it
    /// `reference`. `progress` gets debootstrap's output line by line.
    pub fn bootstrap_debian(
        &self,
        suite: &str,
        mirror: Option<&str>,
        reference: &Reference,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Image> {
        if suite.is_empty()
            || !suite
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::InvalidParameter(format!(
                "invalid debian suite {suite:?}: lower-case letters, digits and '-' only"
            )));
        }
        let mirror = mirror.unwrap_or(DEFAULT_DEBIAN_MIRROR);
        let work = tempfile::Builder::new()
            .prefix("berth-debootstrap-")
            .tempdir()
            .ctx(|| "create debootstrap directory")?;
        let target = work.path().join("rootfs");
        let res = (|| {
            run_debootstrap(suite, mirror, &target, progress)?;
            // Downloaded packages are not part of the image (as in Docker's debian images).
            if let Ok(entries) = std::fs::read_dir(target.join("var/cache/apt/archives")) {
                for e in entries.flatten() {
                    if e.path().extension().is_some_and(|x| x == "deb") {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
            progress("writing the layer");
            let mut layer = tempfile::tempfile().ctx(|| "create temporary layer file")?;
            berth_snapshot::write_diff_naive(None, &target, &mut layer)?;
            layer.seek(SeekFrom::Start(0)).ctx(|| "rewind layer file")?;
            progress("importing");
            self.import(
                layer,
                &ImportOptions {
                    reference: Some(reference.clone()),
                    message: Some(format!("debootstrap --variant=minbase {suite} {mirror}")),
                    created_by: Some(format!("berth bootstrap debian {suite}")),
                    base_config: Some(ContainerConfig {
                        env: vec![DEFAULT_PATH.into()],
                        cmd: Some(vec!["bash".into()]),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
        })();
        unmount_under(&target);
        res
    }
}

fn run_debootstrap(
    suite: &str,
    mirror: &str,
    target: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let mut child = Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(suite)
        .arg(target)
        .arg(mirror)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::Msg("debootstrap is not installed (apt-get install debootstrap)".into())
            } else {
                Error::Io {
                    what: "run debootstrap".into(),
                    err: e,
                }
            }
        })?;
    let stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
            progress(&line);
        }
    }
    let status = child.wait().ctx(|| "wait for debootstrap")?;
    let err = err_thread.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(Error::Msg(format!(
            "debootstrap {suite} from {mirror} failed ({status}): {}",
            tail.join("; ")
        )));
    }
    Ok(())
}

/// Unmounts whatever a failed debootstrap left mounted under `dir` (proc, sys, devpts),
/// deepest first, so the directory can be removed.
fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        if let Err(e) = berth_snapshot::unmount(&p) {
            warn!(path = %p.display(), error = %e, "cannot unmount debootstrap leftover");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn elf_linking_is_detected() {
        assert_eq!(is_dynamic_elf(b"#!/bin/sh\n"), None);
        let sh = std::fs::read("/bin/sh").unwrap();
        assert_eq!(is_dynamic_elf(&sh), Some(true));
        if let Ok(bb) = std::fs::read(HOST_BUSYBOX) {
            assert_eq!(is_dynamic_elf(&bb), Some(false));
        }
    }
}
