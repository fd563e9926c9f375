//! Classic BPF plumbing: reading libseccomp's exported program, generating the -ENOSYS stub
//! that is prepended to it, and the compact encoding used to cache compiled programs.

use crate::{Error, Result};

// Instruction classes and fields (linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;

/// Offsets in `struct seccomp_data`: the syscall number, then the AUDIT_ARCH_* value.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

/// The bit that marks an x32 syscall number on x86_64 (`__X32_SYSCALL_BIT`).
pub(super) const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// AUDIT_ARCH_X86_64: x32 syscalls arrive with this arch and [`X32_SYSCALL_BIT`] set.
pub(super) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// AUDIT_ARCH_S390 and AUDIT_ARCH_S390X: syscall 0 multiplexes unknown large numbers there.
const AUDIT_ARCH_S390: u32 = 0x0000_0016;
const AUDIT_ARCH_S390X: u32 = 0x8000_0016;

/// The return value of the stub: fail the syscall with ENOSYS.
const RET_ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// Size of one `struct sock_filter` in bytes.
pub(super) const INSN_SIZE: usize = 8;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Parses the output of `seccomp_export_bpf`: host-endian `struct sock_filter` records.
pub(super) fn parse_exported(bytes: &[u8]) -> Result<Vec<libc::sock_filter>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(INSN_SIZE) {
        return Err(Error::msg(format!(
            "seccomp: libseccomp exported {} bytes, not a whole number of BPF instructions",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(INSN_SIZE)
        .map(|c| {
            insn(
                u16::from_ne_bytes([c[0], c[1]]),
                c[2],
                c[3],
                u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect())
}

/// The highest syscall numbers the profile names, for one kernel architecture value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ArchLimit {
    /// The AUDIT_ARCH_* value the kernel reports in `seccomp_data.arch`.
    pub audit_arch: u32,
    /// Highest syscall number named for the arch's main ABI.
    pub max: Option<u32>,
    /// On x86_64 only: highest x32 syscall number named (x32 bit included).
    pub max_x32: Option<u32>,
}

/// Jump targets of the stub, resolved once the layout is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The next instruction.
    Next,
    /// The first instruction of the section for `ArchLimit` number `n`.
    Section(usize),
    /// The x32 half of the section `n`.
    X32(usize),
    /// The shared `ret ERRNO(ENOSYS)`.
    Enosys,
    /// The first instruction after the stub: libseccomp's program.
    Filter,
}

/// One stub instruction before jump offsets are resolved.
#[derive(Debug, Clone, Copy)]
enum Op {
    Load(u32),
    /// `op k`, jumping to `jt` when true and to `jf` when false.
    Jump(u16, u32, Target, Target),
    JumpAlways(Target),
    Ret(u32),
    /// Marks where a section (or its x32 half) starts; emits nothing.
    Label(Target),
}

/// Builds the program runc calls the -ENOSYS stub: for every architecture in the filter, a
/// syscall number above the highest one the profile names returns ENOSYS instead of the
/// default action, so that programs probing for newer syscalls (glibc's clone3, say) fall
/// back rather than fail. Anything else falls through to libseccomp's program, which starts
/// right after the stub. Returns an empty stub when no architecture has a limit.
pub(super) fn enosys_stub(limits: &[ArchLimit]) -> Result<Vec<libc::sock_filter>> {
    let limits: Vec<(usize, &ArchLimit)> = limits
        .iter()
        .filter(|l| l.max.is_some() || l.max_x32.is_some())
        .enumerate()
        .collect();
    if limits.is_empty() {
        return Ok(Vec::new());
    }

    let mut ops = vec![Op::Load(OFFSET_ARCH)];
    for &(n, l) in &limits {
        ops.push(Op::Jump(
            BPF_JEQ,
            l.audit_arch,
            Target::Section(n),
            Target::Next,
        ));
    }
    ops.push(Op::JumpAlways(Target::Filter));
    for &(n, l) in &limits {
        ops.push(Op::Label(Target::Section(n)));
        ops.push(Op::Load(OFFSET_NR));
        if l.audit_arch == AUDIT_ARCH_S390 || l.audit_arch == AUDIT_ARCH_S390X {
            ops.push(Op::Jump(BPF_JEQ, 0, Target::Enosys, Target::Next));
        }
        let gt = |max| Op::Jump(BPF_JGT, max, Target::Enosys, Target::Filter);
        match (l.max, l.max_x32) {
            (Some(max), None) if l.audit_arch == AUDIT_ARCH_X86_64 => {
                // x32 calls are not covered: leave them to the filter.
                ops.push(Op::Jump(
                    BPF_JSET,
                    X32_SYSCALL_BIT,
                    Target::Filter,
                    Target::Next,
                ));
                ops.push(gt(max));
            }
            (Some(max), None) => ops.push(gt(max)),
            (None, Some(max_x32)) => {
                ops.push(Op::Jump(
                    BPF_JSET,
                    X32_SYSCALL_BIT,
                    Target::Next,
                    Target::Filter,
                ));
                ops.push(gt(max_x32));
            }
            (Some(max), Some(max_x32)) => {
                ops.push(Op::Jump(
                    BPF_JSET,
                    X32_SYSCALL_BIT,
                    Target::X32(n),
                    Target::Next,
                ));
                ops.push(gt(max));
                ops.push(Op::Label(Target::X32(n)));
                ops.push(gt(max_x32));
            }
            (None, None) => {}
        }
    }
    ops.push(Op::Label(Target::Enosys));
    ops.push(Op::Ret(RET_ENOSYS));
    ops.push(Op::Label(Target::Filter));
    assemble(&ops)
}

/// Resolves the labels of `ops` into relative jumps.
fn assemble(ops: &[Op]) -> Result<Vec<libc::sock_filter>> {
    let mut labels: Vec<(Target, usize)> = Vec::new();
    let mut pc = 0;
    for op in ops {
        match op {
            Op::Label(t) => labels.push((*t, pc)),
            _ => pc += 1,
        }
    }
    let at = |t: Target, pc: usize| -> Result<usize> {
        let pos = if t == Target::Next {
            pc + 1
        } else {
            labels
                .iter()
                .find(|(l, _)| *l == t)
                .map(|&(_, p)| p)
                .ok_or_else(|| Error::msg(format!("seccomp: stub jumps to missing label {t:?}")))?
        };
        // Classic BPF only jumps forwards, relative to the next instruction.
        pos.checked_sub(pc + 1)
            .ok_or_else(|| Error::msg("seccomp: stub jumps backwards"))
    };
    let short = |off: usize| -> Result<u8> {
        u8::try_from(off).map_err(|_| Error::msg("seccomp: stub jump exceeds 255 instructions"))
    };
    let mut out = Vec::with_capacity(pc);
    for op in ops {
        let pc = out.len();
        match *op {
            Op::Label(_) => {}
            Op::Load(off) => out.push(insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, off)),
            Op::Ret(k) => out.push(insn(BPF_RET | BPF_K, 0, 0, k)),
            Op::JumpAlways(t) => {
                let off = u32::try_from(at(t, pc)?)
                    .map_err(|_| Error::msg("seccomp: stub jump out of range"))?;
                out.push(insn(BPF_JMP | BPF_JA, 0, 0, off));
            }
            Op::Jump(cond, k, jt, jf) => {
                let (jt, jf) = (short(at(jt, pc)?)?, short(at(jf, pc)?)?);
                out.push(insn(BPF_JMP | cond | BPF_K, jt, jf, k));
            }
        }
    }
    Ok(out)
}

/// Magic bytes opening an encoded [`super::Program`].
const MAGIC: [u8; 4] = *b"BSCP";
/// Version of the encoding; bump it whenever the layout or the compiler's output changes
/// meaning, so that stale cache entries are rejected rather than misread.
pub(super) const FORMAT_VERSION: u16 = 1;
/// Header: magic, version, flags byte, reserved byte, audit arch, filter flags, count.
const HEADER_LEN: usize = 4 + 2 + 1 + 1 + 4 + 4 + 4;
/// Trailer: FNV-1a 64 of everything before it.
const TRAILER_LEN: usize = 8;

/// 64-bit FNV-1a; detects truncated or damaged cache files (not an authenticity check).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Encodes a program (little-endian throughout; see [`decode`]).
pub(super) fn encode(
    filter: &[libc::sock_filter],
    flags: u32,
    notify: bool,
    audit_arch: u32,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + filter.len() * INSN_SIZE + TRAILER_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(u8::from(notify));
    out.push(0);
    out.extend_from_slice(&audit_arch.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    // A compiled program never exceeds BPF_MAXINSNS (4096), so this cannot saturate.
    let count = u32::try_from(filter.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for i in filter {
        out.extend_from_slice(&i.code.to_le_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_le_bytes());
    }
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// A decoded program: (filter, flags, notify).
pub(super) type Decoded = (Vec<libc::sock_filter>, u32, bool);

/// Decodes what [`encode`] wrote, checking every field; `audit_arch` is the native
/// architecture, which the encoded program must have been compiled for.
pub(super) fn decode(bytes: &[u8], audit_arch: u32, known_flags: u32) -> Result<Decoded> {
    let bad = |why: &str| Error::msg(format!("seccomp: cached program: {why}"));
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(bad("too short"));
    }
    if bytes[..4] != MAGIC {
        return Err(bad("not a berth seccomp program"));
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let version = u16_at(4);
    if version != FORMAT_VERSION {
        return Err(bad(&format!(
            "encoding version {version}, this build reads {FORMAT_VERSION}"
        )));
    }
    let (body, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let mut sum = [0u8; 8];
    sum.copy_from_slice(trailer);
    if u64::from_le_bytes(sum) != fnv1a(body) {
        return Err(bad("checksum mismatch"));
    }
    let notify = match bytes[6] {
        0 => false,
        1 => true,
        n => return Err(bad(&format!("bad notify byte {n}"))),
    };
    if bytes[7] != 0 {
        return Err(bad("reserved byte is set"));
    }
    let arch = u32_at(8);
    if arch != audit_arch {
        return Err(bad(&format!(
            "compiled for architecture {arch:#x}, this is {audit_arch:#x}"
        )));
    }
    let flags = u32_at(12);
    if flags & !known_flags != 0 {
        return Err(bad(&format!("unknown filter flags {flags:#x}")));
    }
    let count = u32_at(16) as usize;
    if count == 0 || count > libc::BPF_MAXINSNS as usize {
        return Err(bad(&format!("{count} instructions")));
    }
    let insns = &body[HEADER_LEN..];
    if insns.len() != count * INSN_SIZE {
        return Err(bad("length does not match the instruction count"));
    }
    let filter = insns
        .chunks_exact(INSN_SIZE)
        .map(|c| {
            insn(
                u16::from_le_bytes([c[0], c[1]]),
                c[2],
                c[3],
                u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect();
    Ok((filter, flags, notify))
}
