//! The container's root filesystem: mounts, devices, pivot_root, masked and read-only paths.
//!
//! Every path inside the rootfs is resolved with `pathrs` (openat2 `RESOLVE_IN_ROOT` where the
//! kernel has it), so a symlink planted in an image can never redirect a mount, a device node
//! or a masked path to the host. Mounts land on the resolved directory through its file
//! descriptor (`/proc/self/fd/N` for mount(2), the fd itself for move_mount(2)), never through
//! a path that could be swapped between the check and the use.
//!
//! All functions here run in the container's init process, inside its new mount namespace.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use pathrs::flags::OpenFlags;
use pathrs::{Handle, Root};
use rustix::mount::{MoveMountFlags, OpenTreeFlags};

use crate::cgroups::{Cgroup, Layout};
use crate::error::{Context, Error, Result};
use crate::mountopts::{MountOptions, attr};

/// What the rootfs set-up needs to know beyond the config.
pub struct Setup<'a> {
    pub spec: &'a Spec,
    /// Host path of the root filesystem (canonical).
    pub rootfs: &'a Path,
    pub cgroup: &'a Cgroup,
    /// The container has its own cgroup namespace.
    pub new_cgroupns: bool,
    /// The container runs in a user namespace (mknod is not allowed there).
    pub userns: bool,
    /// User namespace fds for idmapped mounts, indexed like `spec.mounts`.
    pub idmap_userns: &'a [Option<OwnedFd>],
}

/// A device every container gets, as runc and docker provide.
struct DefaultDevice {
    name: &'static str,
    major: u64,
    minor: u64,
}

const DEFAULT_DEVICES: [DefaultDevice; 6] = [
    DefaultDevice {
        name: "null",
        major: 1,
        minor: 3,
    },
    DefaultDevice {
        name: "zero",
        major: 1,
        minor: 5,
    },
    DefaultDevice {
        name: "full",
        major: 1,
        minor: 7,
    },
    DefaultDevice {
        name: "random",
        major: 1,
        minor: 8,
    },
    DefaultDevice {
        name: "urandom",
        major: 1,
        minor: 9,
    },
    DefaultDevice {
        name: "tty",
        major: 5,
        minor: 0,
    },
];

/// The device-cgroup rules for the default devices, appended to the config's own rules so the
/// devices the runtime creates are usable (runc does the same).
pub fn default_device_rules() -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = oci_spec::runtime::LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    };
    let mut v = vec![
        rule(LinuxDeviceType::C, None, None, "m"),
        rule(LinuxDeviceType::B, None, None, "m"),
    ];
    for d in DEFAULT_DEVICES {
        v.push(rule(
            LinuxDeviceType::C,
            Some(d.major as i64),
            Some(d.minor as i64),
            "rwm",
        ));
    }
    v.push(rule(LinuxDeviceType::C, Some(5), Some(1), "rwm")); // /dev/console
    v.push(rule(LinuxDeviceType::C, Some(5), Some(2), "rwm")); // /dev/ptmx
    v.push(rule(LinuxDeviceType::C, Some(136), None, "rwm")); // /dev/pts/*
    v
}

/// Raw mount(2).
pub fn sys_mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: u64,
    data: Option<&str>,
) -> std::io::Result<()> {
    let c = |b: &[u8]| CString::new(b).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL));
    let src = source.map(|s| c(s.as_os_str().as_bytes())).transpose()?;
    let tgt = c(target.as_os_str().as_bytes())?;
    let fst = fstype.map(|s| c(s.as_bytes())).transpose()?;
    let dat = data
        .filter(|d| !d.is_empty())
        .map(|s| c(s.as_bytes()))
        .transpose()?;
    let p = |o: &Option<CString>| o.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: all pointers are NULL or valid NUL-terminated strings alive for the call.
    let r = unsafe {
        libc::mount(
            p(&src),
            tgt.as_ptr(),
            p(&fst),
            flags as libc::c_ulong,
            p(&dat).cast(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// mount_setattr(2) on an fd (`AT_EMPTY_PATH`), optionally recursive.
pub fn mount_setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clear: u64,
    propagation: u64,
    userns: Option<BorrowedFd<'_>>,
) -> std::io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let a = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation,
        userns_fd: userns.map_or(0, |f| f.as_raw_fd() as u64),
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: valid fd, empty path, correctly sized struct.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &a as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The `/proc/self/fd/N` path of an fd, for system calls that take a path.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `dest` made relative to the rootfs (`/a/../b` → `b`); `..` cannot climb above the root.
fn relative(dest: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in dest.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn perm(mode: u32) -> fs::Permissions {
    fs::Permissions::from_mode(mode)
}

/// Step one, before any mount: fix propagation so nothing leaks back to the host, and make the
/// rootfs a mount point of its own (pivot_root needs one).
pub fn prepare_root(spec: &Spec, rootfs: &Path) -> Result<()> {
    let prop = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(crate::mountopts::propagation_flag)
        .unwrap_or(libc::MS_SLAVE | libc::MS_REC);
    sys_mount(None, Path::new("/"), None, prop, None)
        .ctx(|| "linux.rootfsPropagation: setting propagation of /")?;
    make_parent_mount_private(rootfs)?;
    sys_mount(
        Some(rootfs),
        rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .ctx(|| format!("root.path: bind-mounting {} onto itself", rootfs.display()))?;
    Ok(())
}

/// pivot_root refuses a new root whose parent mount is shared: make that one private.
fn make_parent_mount_private(rootfs: &Path) -> Result<()> {
    let info = fs::read_to_string("/proc/self/mountinfo").ctx(|| "reading /proc/self/mountinfo")?;
    let mut best: Option<(PathBuf, bool)> = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 7 {
            continue;
        }
        let mp = PathBuf::from(unescape_mountinfo(f[4]));
        if !rootfs.starts_with(&mp) {
            continue;
        }
        let shared = f[6..]
            .iter()
            .take_while(|x| **x != "-")
            .any(|x| x.starts_with("shared:"));
        if best
            .as_ref()
            .is_none_or(|(b, _)| mp.as_os_str().len() >= b.as_os_str().len())
        {
            best = Some((mp, shared));
        }
    }
    if let Some((mp, true)) = best {
        sys_mount(None, &mp, None, libc::MS_PRIVATE, None)
            .ctx(|| format!("making {} private", mp.display()))?;
    }
    Ok(())
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Step two: every mount of `spec.mounts`, then the devices.
pub fn mount_all(s: &Setup<'_>) -> Result<()> {
    let root = Root::open(s.rootfs).ctx(|| format!("opening root {}", s.rootfs.display()))?;
    let mounts = s.spec.mounts().as_deref().unwrap_or(&[]);
    for (i, m) in mounts.iter().enumerate() {
        let what = || {
            format!(
                "mounts[{i}] ({} on {})",
                m.typ().as_deref().unwrap_or("bind"),
                m.destination().display()
            )
        };
        mount_one(&root, s, i, m).map_err(|e| Error::msg(format!("{}: {e}", what())))?;
    }
    let dev_is_bind = mounts.iter().any(|m| {
        relative(m.destination()) == Path::new("dev")
            && (m.typ().as_deref() == Some("bind")
                || MountOptions::parse(m.options().as_deref().unwrap_or(&[])).is_bind())
    });
    if !dev_is_bind {
        create_devices(&root, s)?;
    }
    // A tmpfs is mounted writable so that later mounts and devices can be created in it
    // (podman's /etc/hosts under `--tmpfs /etc:ro`), and made read-only now, as runc does.
    for (i, m) in mounts.iter().enumerate() {
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
        if m.typ().as_deref() == Some("tmpfs")
            && !opts.is_bind()
            && opts.flags & libc::MS_RDONLY != 0
        {
            let dest = relative(m.destination());
            let what = || format!("mounts[{i}]: making tmpfs on /{} read-only", dest.display());
            let h = root.resolve(&dest).ctx(what)?;
            mount_setattr(h.as_fd(), false, attr::RDONLY, 0, 0, None).ctx(what)?;
        }
    }
    Ok(())
}

/// Creates (safely, inside the root) the mount point for `m` and returns a handle on it.
fn mount_point(root: &Root, dest: &Path, file: bool) -> Result<Handle> {
    if dest.as_os_str().is_empty() {
        return root.resolve(".").ctx(|| "resolving /");
    }
    if let Ok(h) = root.resolve(dest) {
        return Ok(h);
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        root.mkdir_all(parent, &perm(0o755))
            .ctx(|| format!("creating directory {}", parent.display()))?;
    }
    if file {
        match root.create_file(
            dest,
            OpenFlags::O_WRONLY | OpenFlags::O_NOFOLLOW | OpenFlags::O_CLOEXEC,
            &perm(0o644),
        ) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    pathrs::error::ErrorKind::OsError(Some(libc::ELOOP))
                ) =>
            {
                return Err(Error::msg(format!(
                    "{} is a symlink to a file that does not exist",
                    dest.display()
                )));
            }
            Err(e) => return Err(e).ctx(|| format!("creating file {}", dest.display())),
        }
    } else {
        root.mkdir_all(dest, &perm(0o755))
            .ctx(|| format!("creating directory {}", dest.display()))?;
    }
    root.resolve(dest)
        .ctx(|| format!("resolving {}", dest.display()))
}

fn mount_one(root: &Root, s: &Setup<'_>, i: usize, m: &Mount) -> Result<()> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = relative(m.destination());
    let bind = opts.is_bind() || typ == "bind";

    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(root, s, &dest, &opts, typ);
    }

    if bind {
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| Error::msg("bind mount without a source"))?;
        let src_meta = fs::metadata(src).ctx(|| format!("source {}", src.display()))?;
        let target = mount_point(root, &dest, !src_meta.is_dir())?;
        let userns = s
            .idmap_userns
            .get(i)
            .and_then(|o| o.as_ref())
            .map(|f| f.as_fd());
        bind_mount(src, target.as_fd(), &opts, userns)?;
    } else {
        let target = mount_point(root, &dest, false)?;
        let source = m
            .source()
            .as_ref()
            .map(|p| p.as_path())
            .unwrap_or(Path::new(typ));
        let mut flags = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
        if typ == "tmpfs" {
            // Read-only tmpfs mounts are made read-only after all mounts (see mount_all).
            flags &= !libc::MS_RDONLY;
        }
        let data = opts.data_string();
        let res = if opts.tmpcopyup && typ == "tmpfs" {
            tmpfs_copyup(target.as_fd(), flags, &data)
        } else {
            sys_mount(
                Some(source),
                &fd_path(target.as_fd()),
                Some(typ),
                flags,
                Some(&data),
            )
            .ctx(|| format!("mounting {}", source.display()))
        };
        if let Err(e) = res {
            // In a user namespace that does not own the network (or pid) namespace, the
            // kernel refuses sysfs and mqueue: bind the host's instead, as runc does.
            let fallback = match typ {
                "sysfs" => Some("/sys"),
                "mqueue" => Some("/dev/mqueue"),
                _ => None,
            };
            match (fallback, e.errno()) {
                (Some(host), Some(libc::EPERM)) if s.userns => {
                    let mut o = opts.clone();
                    o.flags |= libc::MS_BIND | libc::MS_REC;
                    bind_mount(Path::new(host), target.as_fd(), &o, None)?;
                }
                _ => return Err(e),
            }
        }
        if opts.rec_set != 0 || opts.rec_clear != 0 {
            let mounted = root
                .resolve(&dest)
                .ctx(|| format!("resolving {}", dest.display()))?;
            mount_setattr(mounted.as_fd(), true, opts.rec_set, opts.rec_clear, 0, None)
                .ctx(|| "applying recursive mount attributes")?;
        }
    }
    if !opts.propagation.is_empty() {
        let mounted = root
            .resolve(&dest)
            .ctx(|| format!("resolving {}", dest.display()))?;
        for p in &opts.propagation {
            sys_mount(None, &fd_path(mounted.as_fd()), None, *p, None)
                .ctx(|| "setting mount propagation")?;
        }
    }
    Ok(())
}

/// Bind-mounts host path `src` onto `target` through a detached copy of the source tree, so
/// read-only and other attributes are set before the mount becomes visible.
fn bind_mount(
    src: &Path,
    target: BorrowedFd<'_>,
    opts: &MountOptions,
    idmap_userns: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if opts.is_recursive() {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    let tree = match rustix::mount::open_tree(rustix::fs::CWD, src, flags) {
        Ok(t) => t,
        Err(rustix::io::Errno::NOSYS) => return bind_mount_legacy(src, target, opts),
        Err(e) => return Err(e).ctx(|| format!("cloning mount tree of {}", src.display())),
    };
    let (set, clear) = opts.attrs();
    if set != 0 || clear != 0 {
        mount_setattr(tree.as_fd(), false, set, clear, 0, None)
            .ctx(|| "setting mount attributes")?;
    }
    if opts.rec_set != 0 || opts.rec_clear != 0 {
        mount_setattr(tree.as_fd(), true, opts.rec_set, opts.rec_clear, 0, None)
            .ctx(|| "setting recursive mount attributes")?;
    }
    if let (Some(rec), Some(userns)) = (opts.idmap, idmap_userns) {
        mount_setattr(tree.as_fd(), rec, attr::IDMAP, 0, 0, Some(userns))
            .ctx(|| "idmapping the mount")?;
    }
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .ctx(|| format!("attaching bind mount of {}", src.display()))
}

/// Bind mount for kernels without open_tree(2): mount, then remount with the flags.
fn bind_mount_legacy(src: &Path, target: BorrowedFd<'_>, opts: &MountOptions) -> Result<()> {
    let tpath = fd_path(target);
    sys_mount(
        Some(src),
        &tpath,
        None,
        libc::MS_BIND | (opts.flags & libc::MS_REC),
        None,
    )
    .ctx(|| format!("bind-mounting {}", src.display()))?;
    let extra = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
    if extra != 0 {
        // The fd still names the directory under the new mount; remount through its path.
        sys_mount(
            None,
            &tpath,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | extra,
            None,
        )
        .ctx(|| "remounting bind mount with its flags")?;
    }
    Ok(())
}

/// crun's `tmpcopyup`: a new tmpfs that starts with the image's content at that place.
fn tmpfs_copyup(target: BorrowedFd<'_>, flags: u64, data: &str) -> Result<()> {
    let fsfd = rustix::mount::fsopen("tmpfs", rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC)
        .ctx(|| "opening tmpfs")?;
    for kv in data.split(',').filter(|s| !s.is_empty()) {
        match kv.split_once('=') {
            Some((k, v)) => rustix::mount::fsconfig_set_string(&fsfd, k, v),
            None => rustix::mount::fsconfig_set_flag(&fsfd, kv),
        }
        .ctx(|| format!("tmpfs option {kv}"))?;
    }
    rustix::mount::fsconfig_create(&fsfd).ctx(|| "creating tmpfs")?;
    let (set, _) = MountOptions {
        flags,
        ..Default::default()
    }
    .attrs();
    let mnt = rustix::mount::fsmount(
        &fsfd,
        rustix::mount::FsMountFlags::FSMOUNT_CLOEXEC,
        rustix::mount::MountAttrFlags::from_bits_retain(set as u32 & !(attr::RDONLY as u32)),
    )
    .ctx(|| "mounting tmpfs")?;
    copy_tree(target, mnt.as_fd()).ctx(|| "copying content into the new tmpfs")?;
    rustix::mount::move_mount(
        mnt.as_fd(),
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .ctx(|| "attaching tmpfs")?;
    if flags & libc::MS_RDONLY != 0 {
        mount_setattr(mnt.as_fd(), false, attr::RDONLY, 0, 0, None)
            .ctx(|| "making tmpfs read-only")?;
    }
    Ok(())
}

/// Copies the directory tree under `from` into `to` (both directory fds), keeping modes,
/// owners and symlinks; never follows a symlink.
fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, Mode, OFlags};
    let dir = rustix::fs::openat(
        from,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&dir)?;
    // `to` may be an O_PATH fd (fsmount's is): fchmod and fchown need a real open.
    let to_dir = rustix::fs::openat(
        to,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let to = to_dir.as_fd();
    rustix::fs::fchmod(to, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    let _ = rustix::fs::fchown(
        to,
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
    );
    let entries = rustix::fs::Dir::read_from(&dir)?;
    for e in entries {
        let e = e?;
        let name = e.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let est = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_raw_mode(est.st_mode & 0o7777);
        let ft = rustix::fs::FileType::from_raw_mode(est.st_mode);
        let owner = |fd: BorrowedFd<'_>, n: &std::ffi::CStr| {
            let _ = rustix::fs::chownat(
                fd,
                n,
                Some(rustix::fs::Uid::from_raw(est.st_uid)),
                Some(rustix::fs::Gid::from_raw(est.st_gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            );
        };
        match ft {
            rustix::fs::FileType::Directory => {
                rustix::fs::mkdirat(to, name, mode)?;
                let sub_from = rustix::fs::openat(
                    &dir,
                    name,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let sub_to = rustix::fs::openat(
                    to,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                copy_tree(sub_from.as_fd(), sub_to.as_fd())?;
            }
            rustix::fs::FileType::Symlink => {
                let t = rustix::fs::readlinkat(&dir, name, Vec::new())?;
                rustix::fs::symlinkat(t.as_c_str(), to, name)?;
                owner(to, name);
            }
            rustix::fs::FileType::RegularFile => {
                let src = rustix::fs::openat(
                    &dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let dst = rustix::fs::openat(
                    to,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    mode,
                )?;
                let mut s = fs::File::from(src);
                let mut d = fs::File::from(dst);
                std::io::copy(&mut s, &mut d)?;
                owner(to, name);
                rustix::fs::chmodat(to, name, mode, AtFlags::empty())?;
            }
            _ => {
                rustix::fs::mknodat(to, name, ft, mode, est.st_rdev)?;
                owner(to, name);
            }
        }
    }
    Ok(())
}

/// The `cgroup` filesystem type: on cgroup v1, a tmpfs with one directory per hierarchy; on
/// cgroup v2 the unified hierarchy. Outside a cgroup namespace the container's own cgroup
/// directories are bind-mounted so it sees only itself.
fn mount_cgroup(
    root: &Root,
    s: &Setup<'_>,
    dest: &Path,
    opts: &MountOptions,
    typ: &str,
) -> Result<()> {
    let target = mount_point(root, dest, false)?;
    let ro = opts.flags & libc::MS_RDONLY != 0;
    let base =
        opts.flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RELATIME);
    let unified = s.cgroup.layout == Layout::Unified || typ == "cgroup2";
    if unified {
        if s.new_cgroupns || s.cgroup.v2.is_none() {
            sys_mount(
                Some(Path::new("cgroup2")),
                &fd_path(target.as_fd()),
                Some("cgroup2"),
                base | (opts.flags & libc::MS_RDONLY),
                None,
            )
            .ctx(|| "mounting cgroup2")?;
        } else if let Some(dir) = &s.cgroup.v2 {
            let mut o = opts.clone();
            o.flags |= libc::MS_BIND;
            bind_mount(dir, target.as_fd(), &o, None)?;
        }
        return Ok(());
    }
    sys_mount(
        Some(Path::new("tmpfs")),
        &fd_path(target.as_fd()),
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )
    .ctx(|| "mounting tmpfs for cgroup v1 hierarchies")?;
    let tmpfs = root
        .resolve(dest)
        .ctx(|| format!("resolving {}", dest.display()))?;
    for (name, dir) in &s.cgroup.v1 {
        let sub = name.strip_prefix("name=").unwrap_or(name);
        rustix::fs::mkdirat(&tmpfs, sub, rustix::fs::Mode::from_raw_mode(0o755))
            .ctx(|| format!("creating {}/{sub}", dest.display()))?;
        let subdir = rustix::fs::openat(
            &tmpfs,
            sub,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ctx(|| format!("opening {}/{sub}", dest.display()))?;
        if s.new_cgroupns {
            let data = if name.starts_with("name=") {
                format!("none,{name}")
            } else {
                name.clone()
            };
            sys_mount(
                Some(Path::new("cgroup")),
                &fd_path(subdir.as_fd()),
                Some("cgroup"),
                base | (opts.flags & libc::MS_RDONLY),
                Some(&data),
            )
            .ctx(|| format!("mounting cgroup hierarchy {name}"))?;
        } else {
            let mut o = MountOptions {
                flags: libc::MS_BIND | base | (opts.flags & libc::MS_RDONLY),
                ..Default::default()
            };
            o.flags &= !libc::MS_REC;
            bind_mount(dir, subdir.as_fd(), &o, None)?;
        }
        // Co-mounted controllers ("cpu,cpuacct") also answer to each name.
        if sub.contains(',') {
            for part in sub.split(',') {
                let _ = rustix::fs::symlinkat(sub, &tmpfs, part);
            }
        }
    }
    if ro {
        mount_setattr(tmpfs.as_fd(), false, attr::RDONLY, 0, 0, None)
            .ctx(|| format!("making {} read-only", dest.display()))?;
    }
    Ok(())
}

fn create_devices(root: &Root, s: &Setup<'_>) -> Result<()> {
    let dev = root
        .mkdir_all("dev", &perm(0o755))
        .ctx(|| "creating /dev")?;
    let spec_devices = s
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    let overridden = |name: &str| {
        spec_devices
            .iter()
            .any(|d| d.path() == Path::new("/dev").join(name).as_path())
    };
    for d in DEFAULT_DEVICES.iter().filter(|d| !overridden(d.name)) {
        make_device(
            root,
            s.userns,
            &Path::new("dev").join(d.name),
            libc::S_IFCHR,
            d.major,
            d.minor,
            0o666,
            0,
            0,
        )
        .map_err(|e| Error::msg(format!("creating default device /dev/{}: {e}", d.name)))?;
    }
    for (i, d) in spec_devices.iter().enumerate() {
        create_spec_device(root, s.userns, d)
            .map_err(|e| Error::msg(format!("linux.devices[{i}] ({}): {e}", d.path().display())))?;
    }
    for (target, name) in [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ] {
        match rustix::fs::symlinkat(target, &dev, name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e).ctx(|| format!("creating /dev/{name}")),
        }
    }
    if Path::new("/proc/kcore").exists() {
        let _ = rustix::fs::symlinkat("/proc/kcore", &dev, "core");
    }
    // With a devpts instance at /dev/pts, /dev/ptmx must point into it.
    if root.resolve("dev/pts/ptmx").is_ok() {
        match rustix::fs::unlinkat(&dev, "ptmx", rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e).ctx(|| "removing /dev/ptmx"),
        }
        rustix::fs::symlinkat("pts/ptmx", &dev, "ptmx").ctx(|| "creating /dev/ptmx")?;
    }
    Ok(())
}

fn create_spec_device(root: &Root, userns: bool, d: &LinuxDevice) -> Result<()> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => return Err(Error::msg("type \"a\" is not a device type")),
    };
    let rel = relative(d.path());
    if rel.as_os_str().is_empty() {
        return Err(Error::msg("path names the root"));
    }
    make_device(
        root,
        userns,
        &rel,
        kind,
        d.major() as u64,
        d.minor() as u64,
        d.file_mode().unwrap_or(0o666),
        d.uid().unwrap_or(0),
        d.gid().unwrap_or(0),
    )
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    root: &Root,
    userns: bool,
    rel: &Path,
    kind: u32,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel
        .file_name()
        .ok_or_else(|| Error::msg("device path has no name"))?;
    let dir = if parent.as_os_str().is_empty() {
        root.resolve(".").ctx(|| "resolving /")?
    } else {
        root.mkdir_all(parent, &perm(0o755))
            .ctx(|| format!("creating {}", parent.display()))?
    };
    // Replace whatever the image has at that name (a file, a stale node, a symlink).
    match rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(rustix::io::Errno::ISDIR) => {
            return Err(Error::msg(format!("{} is a directory", rel.display())));
        }
        Err(e) => return Err(e).ctx(|| format!("removing {}", rel.display())),
    }
    let dev = rustix::fs::makedev(major as u32, minor as u32);
    let ft = rustix::fs::FileType::from_raw_mode(kind);
    let made = if userns && kind != libc::S_IFIFO {
        Err(rustix::io::Errno::PERM)
    } else {
        rustix::fs::mknodat(
            &dir,
            name,
            ft,
            rustix::fs::Mode::from_raw_mode(mode & 0o7777),
            dev,
        )
    };
    match made {
        Ok(()) => {
            // mknod honours the umask: set the mode exactly, then the owner.
            rustix::fs::chmodat(
                &dir,
                name,
                rustix::fs::Mode::from_raw_mode(mode & 0o7777),
                rustix::fs::AtFlags::empty(),
            )
            .ctx(|| format!("chmod {}", rel.display()))?;
            rustix::fs::chownat(
                &dir,
                name,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .ctx(|| format!("chown {}", rel.display()))?;
        }
        Err(rustix::io::Errno::PERM) => {
            // No mknod in a user namespace: bind the host's device node instead.
            let host = Path::new("/").join(rel);
            rustix::fs::openat(
                &dir,
                name,
                rustix::fs::OFlags::CREATE
                    | rustix::fs::OFlags::WRONLY
                    | rustix::fs::OFlags::CLOEXEC
                    | rustix::fs::OFlags::NOFOLLOW,
                rustix::fs::Mode::from_raw_mode(0o644),
            )
            .ctx(|| format!("creating {}", rel.display()))?;
            let target = root
                .resolve(rel)
                .ctx(|| format!("resolving {}", rel.display()))?;
            let o = MountOptions {
                flags: libc::MS_BIND,
                ..Default::default()
            };
            bind_mount(&host, target.as_fd(), &o, None)?;
        }
        Err(e) => return Err(e).ctx(|| format!("mknod {}", rel.display())),
    }
    Ok(())
}

/// Step three: make the rootfs the process's `/`. With `no_pivot`, move it over `/` and chroot
/// (for ramdisk roots where pivot_root is impossible).
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        std::env::set_current_dir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
        sys_mount(Some(rootfs), Path::new("/"), None, libc::MS_MOVE, None)
            .ctx(|| "moving the rootfs over /")?;
        rustix::process::chroot(".").ctx(|| "chroot")?;
        std::env::set_current_dir("/").ctx(|| "chdir /")?;
        return Ok(());
    }
    use rustix::fs::{Mode, OFlags};
    let old = rustix::fs::open(
        "/",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "opening /")?;
    let new = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("opening {}", rootfs.display()))?;
    rustix::process::fchdir(&new).ctx(|| "entering the rootfs")?;
    rustix::process::pivot_root(".", ".").ctx(|| "pivot_root")?;
    // The old root is now stacked under "."; detach it without telling the host.
    rustix::process::fchdir(&old).ctx(|| "entering the old root")?;
    sys_mount(
        None,
        Path::new("."),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        None,
    )
    .ctx(|| "making the old root a slave")?;
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
        .ctx(|| "detaching the old root")?;
    std::env::set_current_dir("/").ctx(|| "chdir /")?;
    Ok(())
}

/// Step four, inside the new root: propagation again, read-only paths, masked paths, and a
/// read-only root when asked.
pub fn finish(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    if let Some(p) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(crate::mountopts::propagation_flag)
    {
        sys_mount(None, Path::new("/"), None, p, None)
            .ctx(|| "linux.rootfsPropagation: setting propagation of the new /")?;
    }
    let root = Root::open("/").ctx(|| "opening /")?;
    for (i, p) in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        readonly_path(&root, p)
            .map_err(|e| Error::msg(format!("linux.readonlyPaths[{i}] ({p}): {e}")))?;
    }
    for (i, p) in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        mask_path(&root, p)
            .map_err(|e| Error::msg(format!("linux.maskedPaths[{i}] ({p}): {e}")))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let me = root.resolve(".").ctx(|| "resolving /")?;
        mount_setattr(me.as_fd(), false, attr::RDONLY, 0, 0, None)
            .ctx(|| "root.readonly: remounting / read-only")?;
    }
    Ok(())
}

fn readonly_path(root: &Root, p: &str) -> Result<()> {
    let h = match root.resolve(relative(Path::new(p))) {
        Ok(h) => h,
        Err(e)
            if matches!(
                e.kind(),
                pathrs::error::ErrorKind::OsError(Some(libc::ENOENT))
            ) =>
        {
            return Ok(());
        }
        Err(e) => return Err(e).ctx(|| "resolving"),
    };
    let tree = rustix::mount::open_tree(
        &h,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::AT_EMPTY_PATH,
    )
    .ctx(|| "cloning the mount")?;
    mount_setattr(tree.as_fd(), true, attr::RDONLY, 0, 0, None).ctx(|| "making it read-only")?;
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        &h,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .ctx(|| "attaching the read-only mount")
}

fn mask_path(root: &Root, p: &str) -> Result<()> {
    let h = match root.resolve(relative(Path::new(p))) {
        Ok(h) => h,
        Err(e)
            if matches!(
                e.kind(),
                pathrs::error::ErrorKind::OsError(Some(libc::ENOENT))
            ) =>
        {
            return Ok(());
        }
        Err(e) => return Err(e).ctx(|| "resolving"),
    };
    let st = rustix::fs::fstat(&h).ctx(|| "stat")?;
    let mounted =
        if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
            let fsfd = rustix::mount::fsopen("tmpfs", rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC)
                .ctx(|| "opening tmpfs")?;
            rustix::mount::fsconfig_set_string(&fsfd, "size", "0").ctx(|| "tmpfs size")?;
            rustix::mount::fsconfig_create(&fsfd).ctx(|| "creating tmpfs")?;
            rustix::mount::fsmount(
                &fsfd,
                rustix::mount::FsMountFlags::FSMOUNT_CLOEXEC,
                rustix::mount::MountAttrFlags::MOUNT_ATTR_RDONLY,
            )
            .ctx(|| "mounting tmpfs")?
        } else {
            let null = root.resolve("dev/null").ctx(|| "resolving /dev/null")?;
            let nst = rustix::fs::fstat(&null).ctx(|| "stat /dev/null")?;
            if nst.st_rdev != rustix::fs::makedev(1, 3) {
                return Err(Error::msg(
                    "/dev/null in the container is not the null device",
                ));
            }
            rustix::mount::open_tree(
                &null,
                "",
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_EMPTY_PATH,
            )
            .ctx(|| "cloning /dev/null")?
        };
    rustix::mount::move_mount(
        mounted.as_fd(),
        "",
        &h,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .ctx(|| "mounting over it")
}

/// Bind-mounts the container's pty slave over `/dev/console` (inside the new root).
pub fn mount_console(slave: BorrowedFd<'_>) -> Result<()> {
    let root = Root::open("/").ctx(|| "opening /")?;
    let _ = root.mkdir_all("dev", &perm(0o755));
    let target = mount_point(&root, Path::new("dev/console"), true)?;
    let tree = rustix::mount::open_tree(
        slave,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH,
    )
    .ctx(|| "cloning the pty slave")?;
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        target.as_fd(),
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .ctx(|| "mounting the pty over /dev/console")
}

/// Writes `linux.sysctl` through the container's /proc/sys.
pub fn apply_sysctl(spec: &Spec) -> Result<()> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    let root = Root::open("/proc/sys").ctx(|| "linux.sysctl: opening /proc/sys")?;
    for (k, v) in sysctl {
        let rel = k.replace('.', "/");
        let f = root
            .resolve(&rel)
            .ctx(|| format!("linux.sysctl.{k}: resolving /proc/sys/{rel}"))?;
        let mut file = f
            .reopen(OpenFlags::O_WRONLY | OpenFlags::O_CLOEXEC)
            .ctx(|| format!("linux.sysctl.{k}: opening /proc/sys/{rel}"))?;
        std::io::Write::write_all(&mut file, v.as_bytes())
            .ctx(|| format!("linux.sysctl.{k}: writing {v:?}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_never_climbs_out() {
        assert_eq!(relative(Path::new("/a/b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/../../etc")), PathBuf::from("etc"));
        assert_eq!(relative(Path::new("a/../../b/./c")), PathBuf::from("b/c"));
        assert_eq!(relative(Path::new("/")), PathBuf::new());
    }

    #[test]
    fn mountinfo_escapes_decode() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/t\\011x\\134"), "/t\tx\\");
    }
}
