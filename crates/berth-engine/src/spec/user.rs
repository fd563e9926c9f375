//! `-u user[:group]` and `--group-add`, resolved against the image's `/etc/passwd` and
//! `/etc/group` as runc resolves them (first match wins, numeric ids need no entry,
//! supplementary groups only when no group is named).
//!
//! The files are opened inside the rootfs with pathrs, so a symlink in the image
//! (`/etc/passwd -> /host/etc/shadow`) cannot make the daemon read outside it.

use std::io::Read;
use std::path::Path;

use pathrs::Root;
use pathrs::flags::OpenFlags;

use super::SpecError;

/// The largest passwd or group file read (anything bigger is not a real one).
const MAX_FILE: u64 = 8 << 20;

/// The identity the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the user's from /etc/group (when no group was named), then
    /// `--group-add`.
    pub additional_gids: Vec<u32>,
    /// The home directory from passwd, `/` when the user has no entry.
    pub home: String,
}

/// One `/etc/passwd` entry.
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One `/etc/group` entry.
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`, …) and `group_add`
/// against the files in `rootfs`. `field` names the request field for errors.
pub(crate) fn resolve(
    rootfs: &Path,
    spec: &str,
    group_add: &[String],
    field: &str,
) -> Result<ExecUser, SpecError> {
    let root = Root::open(rootfs)
        .map_err(|e| SpecError::system(format!("opening the rootfs {}: {e}", rootfs.display())))?;
    let passwd = read_in_root(&root, "/etc/passwd")?
        .map(|s| parse_passwd(&s))
        .unwrap_or_default();
    let groups = read_in_root(&root, "/etc/group")?
        .map(|s| parse_group(&s))
        .unwrap_or_default();
    resolve_with(&passwd, &groups, spec, group_add, field)
}

fn resolve_with(
    passwd: &[PasswdEntry],
    groups: &[GroupEntry],
    spec: &str,
    group_add: &[String],
    field: &str,
) -> Result<ExecUser, SpecError> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, g),
        None => (spec, ""),
    };
    let uid_arg = parse_id(user_arg, field, "user")?;
    let gid_arg = parse_id(group_arg, field, "group")?;

    let mut user = ExecUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".to_string(),
    };
    let matched = passwd.iter().find(|p| {
        if user_arg.is_empty() {
            p.uid == 0
        } else if let Some(uid) = uid_arg {
            p.uid == uid
        } else {
            p.name == user_arg
        }
    });
    let matched_name = match matched {
        Some(p) => {
            user.uid = p.uid;
            user.gid = p.gid;
            user.home = p.home.clone();
            p.name.as_str()
        }
        None if user_arg.is_empty() => "",
        None => match uid_arg {
            Some(uid) => {
                user.uid = uid;
                ""
            }
            None => {
                return Err(SpecError::invalid(format!(
                    "{field}: unable to find user {user_arg}: no matching entries in passwd file"
                )));
            }
        },
    };

    if !group_arg.is_empty() {
        let found = groups.iter().find(|g| match gid_arg {
            Some(gid) => g.gid == gid,
            None => g.name == group_arg,
        });
        user.gid = match (found, gid_arg) {
            (Some(g), _) => g.gid,
            (None, Some(gid)) => gid,
            (None, None) => {
                return Err(SpecError::invalid(format!(
                    "{field}: unable to find group {group_arg}: no matching entries in group file"
                )));
            }
        };
    } else if !matched_name.is_empty() {
        user.additional_gids = groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == matched_name))
            .map(|g| g.gid)
            .collect();
    }

    for (i, extra) in group_add.iter().enumerate() {
        let at = format!("HostConfig.GroupAdd[{i}]");
        let extra = extra.trim();
        let numeric = parse_id(extra, &at, "group")?;
        let gid = match groups
            .iter()
            .find(|g| g.name == extra || Some(g.gid) == numeric)
        {
            Some(g) => g.gid,
            None => numeric.ok_or_else(|| {
                SpecError::invalid(format!(
                    "{at}: unable to find group {extra}: no matching entries in group file"
                ))
            })?,
        };
        if !user.additional_gids.contains(&gid) {
            user.additional_gids.push(gid);
        }
    }
    Ok(user)
}

/// `Some(id)` when `s` is a number (a uid or gid), `None` for a name; numbers outside the
/// id range are refused.
fn parse_id(s: &str, field: &str, what: &str) -> Result<Option<u32>, SpecError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(id) if id < u32::MAX => Ok(Some(id)),
        _ => Err(SpecError::invalid(format!(
            "{field}: {what} id {s} is out of range (0 to 4294967294)"
        ))),
    }
}

/// The contents of `path` inside `root`, or `None` when it does not exist. Links are
/// followed only within the rootfs.
fn read_in_root(root: &Root, path: &str) -> Result<Option<String>, SpecError> {
    let file = match root.open_subpath(path, OpenFlags::O_RDONLY) {
        Ok(f) => f,
        Err(e) => {
            return match e.kind() {
                pathrs::error::ErrorKind::OsError(Some(libc::ENOENT | libc::ENOTDIR)) => Ok(None),
                _ => Err(SpecError::invalid(format!(
                    "reading {path} in the container's rootfs: {e}"
                ))),
            };
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| SpecError::system(format!("reading {path} in the rootfs: {e}")))?;
    if !meta.is_file() {
        return Err(SpecError::invalid(format!(
            "{path} in the container's rootfs is not a regular file"
        )));
    }
    let mut buf = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| SpecError::system(format!("reading {path} in the rootfs: {e}")))?;
    if buf.len() as u64 > MAX_FILE {
        return Err(SpecError::invalid(format!(
            "{path} in the container's rootfs is larger than {MAX_FILE} bytes"
        )));
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// The well-formed entries of a passwd file (others are skipped, as libc does).
fn parse_passwd(s: &str) -> Vec<PasswdEntry> {
    s.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.trim().parse().ok()?,
                gid: f.get(3)?.trim().parse().ok()?,
                home: f.get(5).map(|h| h.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// The well-formed entries of a group file.
fn parse_group(s: &str) -> Vec<GroupEntry> {
    s.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.trim().parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}
