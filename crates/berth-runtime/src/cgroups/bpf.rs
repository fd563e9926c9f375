//! Just enough of bpf(2) to load a cgroup device program and attach it to a cgroup v2
//! directory, replacing the device programs attached there before. Raw system calls, no
//! library: the program is a handful of instructions built by [`super::devices`].

use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::error::Context;
use crate::{Error, Result};

// bpf(2) commands.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

// Registers.
pub(crate) const R0: u8 = 0;
pub(crate) const R1: u8 = 1;
pub(crate) const R2: u8 = 2;
pub(crate) const R3: u8 = 3;
pub(crate) const R4: u8 = 4;
pub(crate) const R5: u8 = 5;

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0xf),
            off,
            imm,
        }
    }
    /// dst = *(u32 *)(src + off)
    pub(crate) const fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(0x61, dst, src, off, 0) // BPF_LDX | BPF_MEM | BPF_W
    }
    /// dst = (u32)dst & imm
    pub(crate) const fn and32_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(0x54, dst, 0, 0, imm) // BPF_ALU | BPF_AND | BPF_K
    }
    /// dst = (u32)dst >> imm
    pub(crate) const fn rsh32_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(0x74, dst, 0, 0, imm) // BPF_ALU | BPF_RSH | BPF_K
    }
    /// dst = (u32)src
    pub(crate) const fn mov32_reg(dst: u8, src: u8) -> Insn {
        Insn::new(0xbc, dst, src, 0, 0) // BPF_ALU | BPF_MOV | BPF_X
    }
    /// dst = imm
    pub(crate) const fn mov32_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(0xb4, dst, 0, 0, imm) // BPF_ALU | BPF_MOV | BPF_K
    }
    /// if dst != imm goto pc + 1 + off
    pub(crate) const fn jne_imm(dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(0x55, dst, 0, off, imm) // BPF_JMP | BPF_JNE | BPF_K
    }
    /// if dst == imm goto pc + 1 + off
    pub(crate) const fn jeq_imm(dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(0x15, dst, 0, off, imm) // BPF_JMP | BPF_JEQ | BPF_K
    }
    /// return r0
    pub(crate) const fn exit() -> Insn {
        Insn::new(0x95, 0, 0, 0, 0) // BPF_JMP | BPF_EXIT
    }
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Calls bpf(2) with `attr`.
fn sys_bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, properly sized #[repr(C)] prefix of `union bpf_attr`; the
    // kernel reads (and for queries writes) at most size_of::<T>() bytes of it, and any
    // pointers inside it point to buffers that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut c_void,
            size_of::<T>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_from(r: libc::c_long) -> io::Result<OwnedFd> {
    let fd = libc::c_int::try_from(r).map_err(|_| io::Error::other("bpf(2) returned a bad fd"))?;
    // SAFETY: bpf(2) returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Loads a cgroup device program; on a verifier rejection the error carries the verifier's
/// log.
pub(crate) fn load_device_program(insns: &[Insn]) -> Result<OwnedFd> {
    match load(insns, None) {
        Ok(fd) => Ok(fd),
        // Kernels before 5.11 charge BPF programs to RLIMIT_MEMLOCK.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let _guard = MemlockRaised::new();
            load(insns, None).ctx(|| "loading the eBPF device program (bpf BPF_PROG_LOAD)")
        }
        Err(e)
            if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::EACCES) =>
        {
            let mut log = vec![0u8; 64 * 1024];
            let again = load(insns, Some(&mut log));
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0').trim();
            match again {
                Ok(fd) => Ok(fd),
                Err(e2) => Err(Error::Io {
                    what: format!(
                        "loading the eBPF device program (bpf BPF_PROG_LOAD); verifier says: {}",
                        text.lines().last().unwrap_or("nothing")
                    ),
                    err: e2,
                }),
            }
        }
        Err(e) => Err(Error::Io {
            what: "loading the eBPF device program (bpf BPF_PROG_LOAD)".into(),
            err: e,
        }),
    }
}

fn load(insns: &[Insn], log: Option<&mut Vec<u8>>) -> io::Result<OwnedFd> {
    let license = c"Apache";
    let mut name = [0u8; 16];
    name[..13].copy_from_slice(b"berth_devices");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len()).map_err(|_| io::Error::other("program too long"))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    if let Some(log) = log {
        attr.log_level = 1;
        attr.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    fd_from(sys_bpf(BPF_PROG_LOAD, &mut attr)?)
}

/// Raises RLIMIT_MEMLOCK for as long as it lives, then restores it (so that no process forked
/// later inherits the raised limit).
struct MemlockRaised(Option<libc::rlimit>);

impl MemlockRaised {
    fn new() -> MemlockRaised {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain getrlimit/setrlimit on valid structs.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut old) != 0 {
                return MemlockRaised(None);
            }
            let inf = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &inf) != 0 {
                return MemlockRaised(None);
            }
        }
        MemlockRaised(Some(old))
    }
}

impl Drop for MemlockRaised {
    fn drop(&mut self) {
        if let Some(old) = self.0 {
            // SAFETY: restoring a limit read by getrlimit.
            unsafe {
                libc::setrlimit(libc::RLIMIT_MEMLOCK, &old);
            }
        }
    }
}

/// The ids of the device programs attached directly to the cgroup `dir_fd`.
pub(crate) fn attached_device_programs(dir_fd: &File) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    for _ in 0..10 {
        let mut attr = QueryAttr {
            target_fd: dir_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        match sys_bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // The buffer was too small; prog_cnt now says how big it must be.
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                ids = vec![0u32; attr.prog_cnt.max(1) as usize];
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "the list of attached programs keeps changing",
    ))
}

fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdByIdAttr {
        prog_id: id,
        ..Default::default()
    };
    fd_from(sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)?)
}

fn attach(dir_fd: &File, prog: &OwnedFd) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: dir_fd.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

fn detach(dir_fd: &File, prog: &OwnedFd) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: dir_fd.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// Loads `insns` and attaches the program to the cgroup v2 directory `dir`
/// (`BPF_CGROUP_DEVICE`, `BPF_F_ALLOW_MULTI`), then detaches the device programs that were
/// attached there before. The new program is attached first, so there is no moment without
/// a filter; while both are attached a device must pass both.
pub(crate) fn replace_device_program(dir: &Path, insns: &[Insn]) -> Result<()> {
    let dir_fd = File::open(dir).ctx(|| format!("opening {}", dir.display()))?;
    let old = attached_device_programs(&dir_fd).ctx(|| {
        format!(
            "listing the eBPF device programs attached to {} (bpf BPF_PROG_QUERY)",
            dir.display()
        )
    })?;
    let prog = load_device_program(insns)?;
    attach(&dir_fd, &prog).ctx(|| {
        format!(
            "attaching the eBPF device program to {} (bpf BPF_PROG_ATTACH)",
            dir.display()
        )
    })?;
    for id in old {
        let old_fd = match prog_fd_by_id(id) {
            Ok(fd) => fd,
            // Gone meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            // Attached by someone whose security label we may not touch (for instance
            // systemd under a strict SELinux policy). Another device program can only
            // restrict further, so leaving it is safe.
            Err(e)
                if e.raw_os_error() == Some(libc::EPERM)
                    || e.raw_os_error() == Some(libc::EACCES) =>
            {
                tracing::debug!("leaving device program {id} on {}: {e}", dir.display());
                continue;
            }
            Err(e) => {
                return Err(Error::Io {
                    what: format!(
                        "getting the old eBPF device program {id} (bpf BPF_PROG_GET_FD_BY_ID)"
                    ),
                    err: e,
                });
            }
        };
        match detach(&dir_fd, &old_fd) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => {
                return Err(Error::Io {
                    what: format!(
                        "detaching the old eBPF device program {id} from {} (bpf BPF_PROG_DETACH)",
                        dir.display()
                    ),
                    err: e,
                });
            }
        }
    }
    Ok(())
}
