//! The container archive endpoints' stat header (`docker cp`): `X-Docker-Container-Path-Stat`
//! carries base64 (standard alphabet, padded) of a JSON object whose `mode` is a Go
//! `os.FileMode` (type bits high, not `st_mode`'s), as Docker's client decodes it.

use serde::{Deserialize, Serialize};

/// The response header of `HEAD` and `GET /containers/{id}/archive`.
pub const PATH_STAT_HEADER: &str = "x-docker-container-path-stat";

/// What a path in a container is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPathStat {
    pub name: String,
    pub size: i64,
    /// A Go `os.FileMode`; see [`go_file_mode`].
    pub mode: u32,
    /// RFC 3339 with nanoseconds.
    pub mtime: String,
    /// For a symlink, the absolute path in the container it resolves to; else empty.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHARDEV: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

/// `st_mode` → Go's `os.FileMode`.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match st_mode & 0o170000 {
        0o040000 => GO_DIR,
        0o120000 => GO_SYMLINK,
        0o060000 => GO_DEVICE,
        0o020000 => GO_DEVICE | GO_CHARDEV,
        0o010000 => GO_PIPE,
        0o140000 => GO_SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        m |= GO_SETUID;
    }
    if st_mode & 0o2000 != 0 {
        m |= GO_SETGID;
    }
    if st_mode & 0o1000 != 0 {
        m |= GO_STICKY;
    }
    m
}

impl ContainerPathStat {
    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.mode & GO_DIR != 0
    }
    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & GO_SYMLINK != 0
    }
    /// Neither a directory nor a regular file (a device, pipe, socket or link).
    pub fn is_special(&self) -> bool {
        self.mode & (GO_SYMLINK | GO_DEVICE | GO_PIPE | GO_SOCKET) != 0
    }

    /// The header value.
    pub fn encode(&self) -> String {
        base64_encode(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parses a header value; `None` if it is not base64 of the JSON object.
    pub fn decode(v: &str) -> Option<Self> {
        serde_json::from_slice(&base64_decode(v.trim())?).ok()
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for b in s.bytes() {
        let v = B64.iter().position(|x| *x == b)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert!(base64_decode("a!").is_none());
    }

    #[test]
    fn header_matches_docker() {
        // What dockerd sends for /etc/hostname (mode 0644, 13 bytes).
        let v = "eyJuYW1lIjoiaG9zdG5hbWUiLCJzaXplIjoxMywibW9kZSI6NDIwLCJtdGltZSI6IjIwMjQtMDEtMDFUMDA6MDA6MDBaIiwibGlua1RhcmdldCI6IiJ9";
        let s = ContainerPathStat::decode(v).unwrap();
        assert_eq!((s.name.as_str(), s.size, s.mode), ("hostname", 13, 0o644));
        assert_eq!(ContainerPathStat::decode(&s.encode()).unwrap(), s);
        assert_eq!(go_file_mode(0o040755), GO_DIR | 0o755);
        assert!(
            !ContainerPathStat {
                mode: go_file_mode(0o100644),
                ..s.clone()
            }
            .is_dir()
        );
        let l = ContainerPathStat {
            mode: go_file_mode(0o120777),
            ..s
        };
        assert!(l.is_symlink() && l.is_special());
        assert_eq!(go_file_mode(0o104755), GO_SETUID | 0o755);
    }
}
