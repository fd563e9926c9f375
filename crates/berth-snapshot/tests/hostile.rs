//! Hostile layer archives, crafted byte by byte. Each must be refused with an error naming
//! the entry, or contained; in every case nothing outside the target directory may change.
//! Every fixture runs through both formats (overlay and copy) and through `fuzz_apply`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_snapshot::{ApplyOptions, Error, apply_layer, apply_layer_copy, fuzz_apply};

/// A tar written header by header, with none of the tar crate's safety checks.
#[derive(Default)]
struct Raw {
    out: Vec<u8>,
}

fn header(name: &[u8], typ: u8, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    let n = name.len().min(100);
    h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    h.set_entry_type(tar::EntryType::new(typ));
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h
}

fn pax_records(recs: &[(&str, &[u8])]) -> Vec<u8> {
    let mut data = Vec::new();
    for (k, v) in recs {
        let rest = 3 + k.len() + v.len();
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        data.extend_from_slice(format!("{len} {k}=").as_bytes());
        data.extend_from_slice(v);
        data.push(b'\n');
    }
    data
}

impl Raw {
    fn push(mut self, mut h: tar::Header, data: &[u8]) -> Self {
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        let h = header(name.as_bytes(), b'0', data.len() as u64);
        self.push(h, data)
    }

    fn dir(self, name: &str) -> Self {
        let mut h = header(name.as_bytes(), b'5', 0);
        h.set_mode(0o755);
        self.push(h, b"")
    }

    fn link(self, typ: u8, name: &str, target: &str) -> Self {
        let mut h = header(name.as_bytes(), typ, 0);
        let t = target.as_bytes();
        let n = t.len().min(100);
        h.as_old_mut().linkname[..n].copy_from_slice(&t[..n]);
        self.push(h, b"")
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.link(b'2', name, target)
    }

    fn hardlink(self, name: &str, target: &str) -> Self {
        self.link(b'1', name, target)
    }

    fn device(self, typ: u8, name: &str, major: u32, minor: u32) -> Self {
        let mut h = header(name.as_bytes(), typ, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.push(h, b"")
    }

    fn pax(self, recs: &[(&str, &[u8])]) -> Self {
        let data = pax_records(recs);
        let h = header(b"PaxHeaders/x", b'x', data.len() as u64);
        self.push(h, &data)
    }

    fn gnu_long(self, typ: u8, value: &[u8]) -> Self {
        let mut data = value.to_vec();
        data.push(0);
        let h = header(b"././@LongLink", typ, data.len() as u64);
        self.push(h, &data)
    }

    /// A GNU sparse file of `real` bytes whose only data block is `data` at `offset`.
    fn sparse(self, name: &str, real: u64, offset: u64, data: &[u8]) -> Self {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::GNUSparse);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        let g = h.as_gnu_mut().unwrap();
        g.sparse[0].set_offset(offset);
        g.sparse[0].set_length(data.len() as u64);
        g.set_real_size(real);
        self.push(h, data)
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&[0u8; 1024]);
        self.out
    }
}

enum Expect {
    /// Refused; the error contains `reason` and, if given, the entry's name.
    Refused {
        reason: &'static str,
        entry: Option<String>,
    },
    /// Applied; the check looks at the target.
    Contained(Box<dyn Fn(&Path)>),
    /// Either outcome is acceptable; only containment is asserted.
    Safe,
}

struct Fixture {
    name: &'static str,
    data: Vec<u8>,
    opts: ApplyOptions,
    expect: Expect,
}

fn refused(reason: &'static str, entry: &str) -> Expect {
    Expect::Refused {
        reason,
        entry: Some(entry.to_string()),
    }
}

fn refused_stream(reason: &'static str) -> Expect {
    Expect::Refused {
        reason,
        entry: None,
    }
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        max_bytes: Some(64 << 20),
        ..Default::default()
    }
}

fn fx(name: &'static str, data: Vec<u8>, expect: Expect) -> Fixture {
    Fixture {
        name,
        data,
        opts: opts(),
        expect,
    }
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// All fixtures, for a sandbox whose outside directory is `outside` (absolute).
fn fixtures(outside: &Path) -> Vec<Fixture> {
    let out = outside.to_str().unwrap().to_string();
    let out_rel = out.trim_start_matches('/').to_string();
    let mut v = Vec::new();

    v.push(fx(
        "dotdot file",
        Raw::default().file("../outside/pwned", b"x").finish(),
        refused("'..'", "../outside/pwned"),
    ));
    v.push(fx(
        "dotdot nested",
        Raw::default()
            .dir("a/")
            .dir("a/b/")
            .file("a/b/../../../outside/pwned", b"x")
            .finish(),
        refused("'..'", "a/b/../../../outside/pwned"),
    ));
    v.push(fx(
        "dotdot dir",
        Raw::default().dir("../outside/newdir/").finish(),
        refused("'..'", "../outside/newdir/"),
    ));
    {
        let p = format!("{out}/pwned");
        let inner = format!("{out_rel}/pwned");
        v.push(fx(
            "absolute path",
            Raw::default().file(&p, b"inside").finish(),
            Expect::Contained(Box::new(move |d: &Path| {
                assert_eq!(std::fs::read(d.join(&inner)).unwrap(), b"inside");
            })),
        ));
    }
    v.push(fx(
        "relative symlink escape, then write through it",
        Raw::default()
            .symlink("evil", "../outside")
            .file("evil/pwned", b"x")
            .finish(),
        refused("dangling symlink", "evil/pwned"),
    ));
    v.push(fx(
        "absolute symlink escape, then write through it",
        Raw::default()
            .symlink("evil", &out)
            .file("evil/pwned", b"x")
            .finish(),
        refused("dangling symlink", "evil/pwned"),
    ));
    {
        let p = format!("evil/{out_rel}/canary");
        let inner = format!("{out_rel}/canary");
        v.push(fx(
            "symlink to /, then write the host path through it",
            Raw::default()
                .symlink("evil", "/")
                .file(&p, b"pwned")
                .finish(),
            Expect::Contained(Box::new(move |d: &Path| {
                assert_eq!(std::fs::read(d.join(&inner)).unwrap(), b"pwned");
                assert!(d.join("evil").is_symlink());
            })),
        ));
    }
    {
        let p = format!("a/{out_rel}/canary");
        let inner = format!("{out_rel}/canary");
        v.push(fx(
            "symlink chain climbing out",
            Raw::default()
                .symlink("a", "b")
                .symlink("b", "../../../../../..")
                .file(&p, b"pwned")
                .finish(),
            Expect::Contained(Box::new(move |d: &Path| {
                assert_eq!(std::fs::read(d.join(&inner)).unwrap(), b"pwned");
            })),
        ));
    }
    v.push(fx(
        "directory replaced by an escaping symlink, then written through",
        Raw::default()
            .dir("d/")
            .file("d/x", b"x")
            .symlink("d", &out)
            .file("d/canary", b"pwned")
            .finish(),
        refused("dangling symlink", "d/canary"),
    ));
    {
        let canary = format!("{out}/canary");
        v.push(fx(
            "symlink to an outside file, then a file of the same name",
            Raw::default()
                .symlink("f", &canary)
                .file("f", b"pwned")
                .finish(),
            Expect::Contained(Box::new(|d: &Path| {
                let m = std::fs::symlink_metadata(d.join("f")).unwrap();
                assert!(m.is_file(), "the symlink was replaced, not written through");
                assert_eq!(std::fs::read(d.join("f")).unwrap(), b"pwned");
            })),
        ));
    }
    v.push(fx(
        "hardlink to /etc/passwd",
        Raw::default().hardlink("h", "/etc/passwd").finish(),
        refused("not an earlier entry", "\"h\""),
    ));
    v.push(fx(
        "hardlink with ..",
        Raw::default().hardlink("h", "../outside/canary").finish(),
        refused("'..'", "\"h\""),
    ));
    v.push(fx(
        "hardlink through an escaping symlink",
        Raw::default()
            .symlink("s", &out)
            .hardlink("h", "s/canary")
            .finish(),
        refused("not an earlier entry", "\"h\""),
    ));
    v.push(fx(
        "hardlink, then a file of the link's name",
        Raw::default()
            .file("a", b"data")
            .hardlink("h", "a")
            .file("h", b"pwned")
            .finish(),
        Expect::Contained(Box::new(|d: &Path| {
            assert_eq!(
                std::fs::read(d.join("a")).unwrap(),
                b"data",
                "the later entry replaced the link"
            );
            assert_eq!(std::fs::read(d.join("h")).unwrap(), b"pwned");
        })),
    ));
    v.push(fx(
        "hardlink to a directory",
        Raw::default().dir("d/").hardlink("h", "d").finish(),
        refused("is a directory", "\"h\""),
    ));
    v.push(fx(
        "whiteout of ..",
        Raw::default().dir("a/").file("a/.wh..", b"").finish(),
        refused("whiteout names no file", "a/.wh.."),
    ));
    v.push(fx(
        "whiteout escaping with ..",
        Raw::default()
            .file("x/.wh.../../outside/canary", b"")
            .finish(),
        refused("'..'", "x/.wh.../../outside/canary"),
    ));
    v.push(fx(
        "whiteout of nothing",
        Raw::default().file(".wh.", b"").finish(),
        refused("whiteout names no file", ".wh."),
    ));
    v.push(fx(
        "whiteout through an escaping symlink",
        Raw::default()
            .symlink("s", &out)
            .file("s/.wh.canary", b"")
            .finish(),
        Expect::Safe,
    ));
    v.push(fx(
        "opaque marker through an escaping symlink",
        Raw::default()
            .symlink("s", &out)
            .file("s/.wh..wh..opq", b"")
            .finish(),
        Expect::Safe,
    ));
    v.push(fx(
        "opaque marker through a symlink to /",
        Raw::default()
            .file("keep", b"k")
            .symlink("s", "/")
            .file("s/.wh..wh..opq", b"")
            .finish(),
        Expect::Safe,
    ));
    v.push(Fixture {
        name: "device node refused",
        data: Raw::default()
            .dir("dev/")
            .device(b'3', "dev/sda", 8, 0)
            .finish(),
        opts: ApplyOptions {
            devices: false,
            ..opts()
        },
        expect: refused("device nodes are not allowed", "dev/sda"),
    });
    v.push(Fixture {
        name: "device node as root stays inside",
        data: Raw::default().device(b'4', "sda", 8, 0).finish(),
        opts: ApplyOptions {
            devices: true,
            ..opts()
        },
        expect: Expect::Contained(Box::new(|d: &Path| {
            let m = std::fs::symlink_metadata(d.join("sda")).unwrap();
            assert!(m.file_type().is_block_device());
            assert_eq!(m.rdev(), rustix::fs::makedev(8, 0));
        })),
    });
    v.push(fx(
        "device node escaping",
        Raw::default()
            .device(b'3', "../outside/null", 1, 3)
            .finish(),
        refused("'..'", "../outside/null"),
    ));
    v.push(fx(
        "duplicate entries: last wins",
        Raw::default()
            .file("f", b"one")
            .file("f", b"two")
            .dir("d/")
            .file("d/inner", b"i")
            .file("d", b"file-now")
            .symlink("s", "x")
            .file("s", b"reg")
            .file("n", b"file")
            .dir("n/")
            .finish(),
        Expect::Contained(Box::new(|d: &Path| {
            assert_eq!(std::fs::read(d.join("f")).unwrap(), b"two");
            assert_eq!(std::fs::read(d.join("d")).unwrap(), b"file-now");
            assert!(std::fs::symlink_metadata(d.join("s")).unwrap().is_file());
            assert!(std::fs::symlink_metadata(d.join("n")).unwrap().is_dir());
        })),
    ));
    v.push(Fixture {
        name: "huge sparse file over the budget",
        data: Raw::default()
            .sparse("huge", 1 << 40, (1 << 40) - 512, &[7u8; 512])
            .finish(),
        opts: ApplyOptions {
            max_bytes: Some(1 << 20),
            ..opts()
        },
        expect: refused("budget", "huge"),
    });
    v.push(Fixture {
        name: "sparse file within the budget stays sparse",
        data: Raw::default()
            .sparse("sparse", 64 << 20, (64 << 20) - 512, &[7u8; 512])
            .finish(),
        opts: ApplyOptions {
            max_bytes: Some(128 << 20),
            ..opts()
        },
        expect: Expect::Contained(Box::new(|d: &Path| {
            let m = std::fs::metadata(d.join("sparse")).unwrap();
            assert_eq!(m.len(), 64 << 20);
            assert!(m.blocks() < 64, "{} blocks allocated", m.blocks());
        })),
    });
    {
        let mut h = header(b"claims-1TiB", b'0', 1 << 40);
        h.set_cksum();
        let mut data = h.as_bytes().to_vec();
        data.extend_from_slice(&[1u8; 4096]);
        v.push(fx(
            "regular file claiming 1 TiB over the budget",
            data.clone(),
            refused("budget", "claims-1TiB"),
        ));
        v.push(Fixture {
            name: "regular file claiming 1 TiB, no budget, archive ends",
            data,
            opts: ApplyOptions {
                max_bytes: None,
                ..opts()
            },
            expect: refused("archive ends inside", "claims-1TiB"),
        });
    }
    {
        let full = Raw::default()
            .file("a", &[5u8; 10_000])
            .file("b", b"b")
            .finish();
        v.push(fx(
            "truncated inside file data",
            full[..512 + 5000].to_vec(),
            refused("archive ends inside", "\"a\""),
        ));
        v.push(fx(
            "truncated inside a header",
            full[..512 + 10_240 + 300].to_vec(),
            refused_stream("layer:"),
        ));
        let gz = common::gzip(&full);
        v.push(fx(
            "truncated gzip",
            gz[..gz.len() / 2].to_vec(),
            refused_stream("layer:"),
        ));
        let zs = common::zstd(&full);
        v.push(fx(
            "truncated zstd",
            zs[..zs.len() / 2].to_vec(),
            refused_stream("layer:"),
        ));
    }
    {
        let mut bad = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0xff];
        bad.extend_from_slice(b"this is not deflate data at all, not at all");
        v.push(fx("bad gzip", bad, refused_stream("layer:")));
        let mut badz = vec![0x28, 0xb5, 0x2f, 0xfd];
        badz.extend_from_slice(&[0xff; 64]);
        v.push(fx("bad zstd", badz, refused_stream("layer:")));
        v.push(fx(
            "xz",
            vec![0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2, 3, 4],
            refused_stream("xz"),
        ));
        let mut seed = 0x9e3779b97f4a7c15u64;
        let garbage: Vec<u8> = (0..4096)
            .map(|_| (xorshift(&mut seed) >> 24) as u8 | 1)
            .collect();
        v.push(fx("random garbage", garbage, refused_stream("layer:")));
    }
    v.push(fx(
        "PAX path with ..",
        Raw::default()
            .pax(&[("path", b"../outside/pwned")])
            .file("innocent", b"x")
            .finish(),
        refused("'..'", "../outside/pwned"),
    ));
    {
        let long = format!("{out}/{}", "x".repeat(200));
        let inner = format!("{out_rel}/{}", "x".repeat(200));
        v.push(fx(
            "PAX long absolute path",
            Raw::default()
                .pax(&[("path", long.as_bytes())])
                .file("innocent", b"in")
                .finish(),
            Expect::Contained(Box::new(move |d: &Path| {
                assert_eq!(std::fs::read(d.join(&inner)).unwrap(), b"in");
            })),
        ));
    }
    v.push(fx(
        "PAX linkpath escape",
        Raw::default()
            .pax(&[("linkpath", b"../../outside/canary")])
            .hardlink("h", "innocent")
            .finish(),
        refused("'..'", "\"h\""),
    ));
    v.push(fx(
        "PAX path with a NUL byte",
        Raw::default()
            .pax(&[("path", b"ok\0/../../x")])
            .file("innocent", b"x")
            .finish(),
        refused("NUL", "ok"),
    ));
    {
        let name = format!("{}/../../outside/pwned", "a".repeat(150));
        v.push(fx(
            "GNU long name escape",
            Raw::default()
                .gnu_long(b'L', name.as_bytes())
                .file("short", b"x")
                .finish(),
            refused("'..'", "outside/pwned"),
        ));
        let target = format!("{}etc/passwd", "../".repeat(50));
        v.push(fx(
            "GNU long link escape",
            Raw::default()
                .gnu_long(b'K', target.as_bytes())
                .hardlink("h", "short")
                .finish(),
            refused("'..'", "\"h\""),
        ));
    }
    v.push(fx(
        "overlay xattrs smuggled in PAX",
        Raw::default()
            .pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
            .dir("d/")
            .pax(&[
                ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
                ("SCHILY.xattr.user.ok", b"1"),
            ])
            .file("d/f", b"x")
            .finish(),
        Expect::Contained(Box::new(|d: &Path| {
            for p in [d.join("d"), d.join("d/f")] {
                let mut buf = vec![0u8; 1024];
                let n = rustix::fs::llistxattr(&p, &mut buf[..]).unwrap();
                let keys = String::from_utf8_lossy(&buf[..n]).into_owned();
                assert!(!keys.contains("trusted.overlay"), "{}: {keys}", p.display());
            }
        })),
    ));
    v.push(fx(
        "regular file as the layer root",
        Raw::default().file("./", b"x").finish(),
        refused("layer root", "./"),
    ));
    {
        let mut r = Raw::default();
        for i in 0..50 {
            r = r.file(&format!("f{i}"), b"");
        }
        v.push(Fixture {
            name: "too many entries",
            data: r.finish(),
            opts: ApplyOptions {
                max_entries: Some(10),
                ..opts()
            },
            expect: refused("more than 10 entries", "f10"),
        });
    }
    v.push(fx(
        "parent is a file",
        Raw::default().file("f", b"x").file("f/x", b"y").finish(),
        refused("not a directory", "f/x"),
    ));
    v.push(fx(
        "symlink loop as a parent",
        Raw::default()
            .symlink("a", "b")
            .symlink("b", "a")
            .file("a/x", b"x")
            .finish(),
        refused("resolving parent", "a/x"),
    ));
    {
        let deep = "a/".repeat(3000) + "f";
        v.push(fx(
            "path deeper than PATH_MAX",
            Raw::default()
                .pax(&[("path", deep.as_bytes())])
                .file("x", b"x")
                .finish(),
            refused("too long", "(6001 bytes)"),
        ));
    }
    v.push(fx(
        "unsupported entry type",
        Raw::default().push(header(b"vol", b'V', 0), b"").finish(),
        refused("unsupported entry type", "vol"),
    ));
    v
}

/// Everything in the sandbox except the target, plus the host files a fixture names.
fn outside_state(base: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut stack = vec![base.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p == base.join("dest") {
                continue;
            }
            let md = std::fs::symlink_metadata(&p).unwrap();
            let content = if md.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            m.insert(
                p.to_string_lossy().into_owned(),
                format!(
                    "{:o} {} {} {} {:?}",
                    md.mode(),
                    md.nlink(),
                    md.len(),
                    md.mtime(),
                    content
                ),
            );
            if md.is_dir() {
                stack.push(p);
            }
        }
    }
    for host in ["/etc/passwd", "/etc"] {
        let md = std::fs::symlink_metadata(host).unwrap();
        m.insert(
            host.into(),
            format!(
                "{} {} {} {} {}",
                md.ino(),
                md.nlink(),
                md.len(),
                md.mtime(),
                md.mtime_nsec()
            ),
        );
    }
    m
}

struct Sandbox {
    _t: tempfile::TempDir,
    base: PathBuf,
}

fn sandbox() -> Sandbox {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().to_path_buf();
    std::fs::create_dir(base.join("dest")).unwrap();
    std::fs::create_dir(base.join("outside")).unwrap();
    std::fs::write(base.join("outside/canary"), b"canary").unwrap();
    std::fs::create_dir(base.join("outside/dir")).unwrap();
    Sandbox { _t: t, base }
}

fn run(copy: bool) {
    let count = fixtures(Path::new("/x")).len();
    assert!(count >= 20, "at least 20 hostile fixtures, have {count}");
    let mut failures = Vec::new();
    for i in 0..count {
        let sb = sandbox();
        let f = fixtures(&sb.base.join("outside")).swap_remove(i);
        let dest = sb.base.join("dest");
        let before = outside_state(&sb.base);
        let res = if copy {
            apply_layer_copy(f.data.as_slice(), &dest, &f.opts)
        } else {
            apply_layer(f.data.as_slice(), &dest, &f.opts)
        };
        let after = outside_state(&sb.base);
        if before != after {
            failures.push(format!(
                "{}: CHANGED SOMETHING OUTSIDE THE TARGET: {res:?}",
                f.name
            ));
            continue;
        }
        match (&f.expect, &res) {
            (Expect::Refused { reason, entry }, Err(e)) => {
                let msg = e.to_string();
                if !msg.contains(reason) {
                    failures.push(format!("{}: error {msg:?} lacks {reason:?}", f.name));
                }
                if let Some(entry) = entry
                    && (!matches!(e, Error::Entry { .. }) || !msg.contains(entry.as_str()))
                {
                    failures.push(format!(
                        "{}: error {msg:?} does not name entry {entry:?}",
                        f.name
                    ));
                }
            }
            (Expect::Refused { .. }, Ok(r)) => {
                failures.push(format!("{}: applied ({r:?}), expected a refusal", f.name))
            }
            (Expect::Contained(check), Ok(_)) => {
                if let Err(p) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&dest)))
                {
                    let s = p.downcast_ref::<String>().cloned().unwrap_or_default();
                    failures.push(format!("{}: contained check failed: {s}", f.name));
                }
            }
            (Expect::Contained(_), Err(e)) => {
                failures.push(format!("{}: refused ({e}), expected it applied", f.name))
            }
            (Expect::Safe, r) => {
                let outcome = match r {
                    Ok(_) => "applied".to_string(),
                    Err(e) => e.to_string(),
                };
                eprintln!(
                    "{} ({}): {outcome}",
                    f.name,
                    if copy { "copy" } else { "overlay" }
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} fixtures failed ({}):\n{}",
        failures.len(),
        if copy { "copy" } else { "overlay" },
        failures.join("\n")
    );
}

#[test]
fn hostile_archives_overlay_format() {
    require_root!();
    run(false);
}

#[test]
fn hostile_archives_copy_format() {
    require_root!();
    run(true);
}

/// The fuzz entry point on every fixture and on mutations of them: no panic, nothing
/// outside its own target.
#[test]
fn fuzz_apply_smoke() {
    require_root!();
    let fx = fixtures(Path::new("/tmp/berth-fuzz-outside"));
    let mut seed = 0x2545f4914f6cdd1du64;
    for f in &fx {
        fuzz_apply(&f.data);
        for _ in 0..8 {
            let mut d = f.data.clone();
            if d.is_empty() {
                continue;
            }
            for _ in 0..4 {
                let i = (xorshift(&mut seed) as usize) % d.len();
                d[i] = (xorshift(&mut seed) >> 16) as u8;
            }
            let cut = (xorshift(&mut seed) as usize) % (d.len() + 1);
            fuzz_apply(&d[..cut.max(d.len() / 2)]);
        }
    }
    assert!(!Path::new("/tmp/berth-fuzz-outside").exists());
}
