//! The device controller: `linux.resources.devices`.
//!
//! The rule list is first run through an emulator of the cgroup v1 device controller, which
//! gives the rules' combined meaning as a default (allow-all or deny-all) plus exceptions.
//! On cgroup v1 that lets an update write only the difference from the current
//! `devices.list` (no moment where every device is denied to a running container); on cgroup
//! v2 the same state is compiled into a `BPF_PROG_TYPE_CGROUP_DEVICE` program, so both
//! versions give the same answer for the same list: the last matching rule wins and the
//! default is whatever the last `a` (all devices) rule said.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::bpf::{self, Insn};
use super::util;
use crate::{Error, Result};

const FIELD: &str = "linux.resources.devices";

/// Access bits, with the values of the kernel's `BPF_DEVCG_ACC_*`.
pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Device kinds, with the values of the kernel's `BPF_DEVCG_DEV_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Block = 1,
    Char = 2,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Block => 'b',
            Kind::Char => 'c',
        }
    }
}

/// What a rule matches: a device kind and major/minor numbers (`None` = any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
}

/// One parsed rule. `key` is `None` for the `a` (all devices) type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    pub key: Option<Key>,
    pub access: u8,
}

fn num(n: Option<u32>) -> String {
    n.map_or_else(|| "*".to_string(), |n| n.to_string())
}

fn access_str(a: u8) -> String {
    let mut s = String::new();
    if a & ACC_READ != 0 {
        s.push('r');
    }
    if a & ACC_WRITE != 0 {
        s.push('w');
    }
    if a & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

impl fmt::Display for Rule {
    /// The rule in `devices.allow` / `devices.deny` syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.key {
            None => write!(f, "a *:* rwm"),
            Some(k) => write!(
                f,
                "{} {}:{} {}",
                k.kind.letter(),
                num(k.major),
                num(k.minor),
                access_str(self.access)
            ),
        }
    }
}

/// Parses the OCI rules, naming the offending entry on error.
pub(crate) fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| parse_rule(i, r))
        .collect()
}

fn parse_rule(i: usize, r: &LinuxDeviceCgroup) -> Result<Rule> {
    let field = |f: &str| format!("{FIELD}[{i}].{f}");
    let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => None,
        LinuxDeviceType::B => Some(Kind::Block),
        LinuxDeviceType::C => Some(Kind::Char),
        t @ (LinuxDeviceType::U | LinuxDeviceType::P) => {
            return Err(super::field_err(
                field("type"),
                format!(
                    "{:?} cannot be used in a device cgroup rule (use a, b or c)",
                    t.as_str()
                ),
            ));
        }
    };
    let number = |v: Option<i64>, name: &str| -> Result<Option<u32>> {
        match v {
            None | Some(-1) => Ok(None),
            // The eBPF program compares against sign-extended 32-bit immediates; real device
            // numbers are far smaller (12-bit majors, 20-bit minors).
            Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(Some(n as u32)),
            Some(n) => Err(super::field_err(
                field(name),
                format!(
                    "{n} is not a device number (want 0 to {} or -1 for any)",
                    i32::MAX
                ),
            )),
        }
    };
    let major = number(r.major(), "major")?;
    let minor = number(r.minor(), "minor")?;
    let access = match r.access().as_deref() {
        None | Some("") => ACC_ALL,
        Some(s) => {
            let mut a = 0;
            for c in s.chars() {
                a |= match c {
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    'm' => ACC_MKNOD,
                    _ => {
                        return Err(super::field_err(
                            field("access"),
                            format!("{s:?} has {c:?}; only r, w and m are allowed"),
                        ));
                    }
                };
            }
            a
        }
    };
    Ok(Rule {
        allow: r.allow(),
        key: kind.map(|kind| Key { kind, major, minor }),
        access,
    })
}

/// The state of a cgroup v1 device controller: a default plus exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Emulator {
    pub default_allow: bool,
    pub exceptions: BTreeMap<Key, u8>,
}

impl Default for Emulator {
    /// A fresh cgroup under the root: everything allowed.
    fn default() -> Self {
        Emulator {
            default_allow: true,
            exceptions: BTreeMap::new(),
        }
    }
}

impl Emulator {
    /// The state after applying `rules` in order to a fresh cgroup.
    pub(crate) fn from_rules(rules: &[Rule]) -> Result<Emulator> {
        let mut e = Emulator::default();
        for (i, r) in rules.iter().enumerate() {
            e.apply(r)
                .map_err(|m| super::field_err(format!("{FIELD}[{i}]"), m))?;
        }
        Ok(e)
    }

    /// Applies one rule as the kernel does when it is written to `devices.allow` (allow) or
    /// `devices.deny` (deny).
    pub(crate) fn apply(&mut self, r: &Rule) -> std::result::Result<(), String> {
        let Some(key) = r.key else {
            self.default_allow = r.allow;
            self.exceptions.clear();
            return Ok(());
        };
        if r.allow == self.default_allow {
            self.remove(key, r.access)
        } else {
            *self.exceptions.entry(key).or_insert(0) |= r.access;
            Ok(())
        }
    }

    /// Removes access from the exception for exactly `key`. The kernel ignores a removal that
    /// only a wildcard exception covers; that would silently not do what was asked, so it is
    /// refused here (as runc does).
    fn remove(&mut self, key: Key, access: u8) -> std::result::Result<(), String> {
        let wild = [
            Key { major: None, ..key },
            Key { minor: None, ..key },
            Key {
                major: None,
                minor: None,
                ..key
            },
        ];
        for w in wild {
            if w == key {
                continue;
            }
            if let Some(&a) = self.exceptions.get(&w)
                && a & access != 0
            {
                let held = Rule {
                    allow: !self.default_allow,
                    key: Some(w),
                    access: a,
                };
                let asked = Rule {
                    allow: self.default_allow,
                    key: Some(key),
                    access,
                };
                return Err(format!(
                    "rule {:?} ({}) cannot punch a hole in the earlier wildcard rule {:?}; \
                         the device controller does not support that",
                    asked.to_string(),
                    if asked.allow { "allow" } else { "deny" },
                    held.to_string()
                ));
            }
        }
        if let Some(a) = self.exceptions.get_mut(&key) {
            *a &= !access;
            if *a == 0 {
                self.exceptions.remove(&key);
            }
        }
        Ok(())
    }

    /// Parses a cgroup v1 `devices.list` (an allow list; `a *:* rwm` means allow-all).
    pub(crate) fn from_list(text: &str) -> Result<Emulator> {
        let mut e = Emulator {
            default_allow: false,
            exceptions: BTreeMap::new(),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let bad = || Error::msg(format!("parsing devices.list: bad line {line:?}"));
            let mut it = line.split_whitespace();
            let (Some(t), Some(nums), Some(acc)) = (it.next(), it.next(), it.next()) else {
                return Err(bad());
            };
            let kind = match t {
                "a" => {
                    e.default_allow = true;
                    e.exceptions.clear();
                    continue;
                }
                "b" => Kind::Block,
                "c" => Kind::Char,
                _ => return Err(bad()),
            };
            let (ma, mi) = nums.split_once(':').ok_or_else(bad)?;
            let parse = |s: &str| -> Result<Option<u32>> {
                if s == "*" {
                    Ok(None)
                } else {
                    s.parse().map(Some).map_err(|_| bad())
                }
            };
            let mut access = 0;
            for c in acc.chars() {
                access |= match c {
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    'm' => ACC_MKNOD,
                    _ => return Err(bad()),
                };
            }
            let key = Key {
                kind,
                major: parse(ma)?,
                minor: parse(mi)?,
            };
            *e.exceptions.entry(key).or_insert(0) |= access;
        }
        Ok(e)
    }

    /// The rules that turn a cgroup in state `self` into `target` with the least disruption:
    /// a full reset only when the default changes (or when the current state is allow-all,
    /// whose deny exceptions `devices.list` does not show), otherwise only the differences.
    pub(crate) fn transition(&self, target: &Emulator) -> Vec<Rule> {
        let mut out = Vec::new();
        let empty = BTreeMap::new();
        let old = if self.default_allow || self.default_allow != target.default_allow {
            out.push(Rule {
                allow: target.default_allow,
                key: None,
                access: ACC_ALL,
            });
            &empty
        } else {
            &self.exceptions
        };
        for (k, &a) in old {
            let dropped = a & !target.exceptions.get(k).copied().unwrap_or(0);
            if dropped != 0 {
                out.push(Rule {
                    allow: target.default_allow,
                    key: Some(*k),
                    access: dropped,
                });
            }
        }
        for (k, &a) in &target.exceptions {
            let gained = a & !old.get(k).copied().unwrap_or(0);
            if gained != 0 {
                out.push(Rule {
                    allow: !target.default_allow,
                    key: Some(*k),
                    access: gained,
                });
            }
        }
        out
    }

    /// Whether access `acc` to the device is allowed, as the kernel's v1 controller decides.
    #[cfg(test)]
    pub(crate) fn allows(&self, kind: Kind, major: u32, minor: u32, acc: u8) -> bool {
        let matching = self.exceptions.iter().filter(|(k, _)| {
            k.kind == kind
                && k.major.is_none_or(|m| m == major)
                && k.minor.is_none_or(|m| m == minor)
        });
        if self.default_allow {
            // Denied if any deny exception covers any of the requested access.
            !matching.into_iter().any(|(_, &a)| a & acc != 0)
        } else {
            // Allowed only if one allow exception covers all of it.
            matching.into_iter().any(|(_, &a)| acc & !a == 0)
        }
    }

    /// Compiles the state into a `BPF_PROG_TYPE_CGROUP_DEVICE` program that makes the same
    /// decisions as [`Emulator::allows`].
    pub(crate) fn program(&self) -> Vec<Insn> {
        use bpf::{R0, R1, R2, R3, R4, R5};
        // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
        // access_type: device kind in the low 16 bits, access in the high 16.
        let mut p = vec![
            Insn::ldx_w(R2, R1, 0),
            Insn::and32_imm(R2, 0xffff),
            Insn::ldx_w(R3, R1, 0),
            Insn::rsh32_imm(R3, 16),
            Insn::ldx_w(R4, R1, 4),
            Insn::ldx_w(R5, R1, 8),
        ];
        let verdict = i32::from(!self.default_allow);
        for (k, &a) in &self.exceptions {
            // Every jump below goes to the end of this block (the next block).
            let mut block: Vec<(Insn, bool)> = Vec::new();
            block.push((Insn::jne_imm(R2, k.kind as i32, 0), true));
            if let Some(m) = k.major {
                block.push((Insn::jne_imm(R4, m as i32, 0), true));
            }
            if let Some(m) = k.minor {
                block.push((Insn::jne_imm(R5, m as i32, 0), true));
            }
            if a != ACC_ALL {
                block.push((Insn::mov32_reg(R1, R3), false));
                if self.default_allow {
                    // Deny exception: matches when any requested access is in it.
                    block.push((Insn::and32_imm(R1, i32::from(a)), false));
                    block.push((Insn::jeq_imm(R1, 0, 0), true));
                } else {
                    // Allow exception: matches when all requested access is in it.
                    block.push((Insn::and32_imm(R1, i32::from(!a & ACC_ALL)), false));
                    block.push((Insn::jne_imm(R1, 0, 0), true));
                }
            }
            block.push((Insn::mov32_imm(R0, verdict), false));
            block.push((Insn::exit(), false));
            let len = block.len();
            for (i, (mut insn, jumps)) in block.into_iter().enumerate() {
                if jumps {
                    insn.off = (len - i - 1) as i16;
                }
                p.push(insn);
            }
        }
        p.push(Insn::mov32_imm(R0, i32::from(self.default_allow)));
        p.push(Insn::exit());
        p
    }
}

/// Applies the rules to a cgroup v1 `devices` directory: writes the transition from the
/// current `devices.list`, then checks the kernel ended up where the rules say.
pub(crate) fn apply_v1(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let target = Emulator::from_rules(&parse_rules(rules)?)?;
    let current = Emulator::from_list(&util::read(dir, "devices.list")?)?;
    for r in current.transition(&target) {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        util::write(FIELD, dir, file, &r.to_string())?;
    }
    let now = Emulator::from_list(&util::read(dir, "devices.list")?)?;
    let ok = if target.default_allow {
        // devices.list cannot show deny exceptions; check the mode only.
        now.default_allow
    } else {
        now == target
    };
    if !ok {
        return Err(Error::msg(format!(
            "{FIELD}: {} does not match the requested rules after writing them \
             (is the parent cgroup more restrictive?)",
            dir.join("devices.list").display()
        )));
    }
    Ok(())
}

/// Applies the rules to a cgroup v2 directory by attaching an eBPF device program,
/// replacing any device program attached there before.
pub(crate) fn apply_v2(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let target = Emulator::from_rules(&parse_rules(rules)?)?;
    let prog = target.program();
    bpf::replace_device_program(dir, &prog).map_err(|e| match e {
        Error::Io { what, err } => Error::Io {
            what: format!("{FIELD}: {what}"),
            err,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, t: &str, major: i64, minor: i64, access: &str) -> LinuxDeviceCgroup {
        serde_json::from_value(serde_json::json!({
            "allow": allow, "type": t, "major": major, "minor": minor, "access": access
        }))
        .unwrap()
    }

    #[test]
    fn last_rule_wins_and_default_follows_first() {
        let rules = parse_rules(&[
            rule(false, "a", -1, -1, "rwm"),
            rule(true, "c", 1, 3, "rwm"),
            rule(true, "c", 1, -1, "r"),
            rule(false, "c", 1, 3, "w"),
        ])
        .unwrap();
        let e = Emulator::from_rules(&rules).unwrap();
        assert!(!e.default_allow);
        assert!(e.allows(Kind::Char, 1, 3, ACC_READ));
        assert!(!e.allows(Kind::Char, 1, 3, ACC_WRITE));
        assert!(e.allows(Kind::Char, 1, 3, ACC_MKNOD));
        assert!(e.allows(Kind::Char, 1, 9, ACC_READ));
        assert!(!e.allows(Kind::Char, 1, 9, ACC_WRITE));
        assert!(!e.allows(Kind::Block, 1, 3, ACC_READ));
        assert_eq!(rules[2].to_string(), "c 1:* r");
    }

    #[test]
    fn hole_punching_refused() {
        let rules = parse_rules(&[
            rule(false, "a", -1, -1, "rwm"),
            rule(true, "c", -1, -1, "rwm"),
            rule(false, "c", 1, 3, "r"),
        ])
        .unwrap();
        let err = Emulator::from_rules(&rules).unwrap_err().to_string();
        assert!(err.contains("linux.resources.devices[2]"), "{err}");
    }

    #[test]
    fn bad_fields_named() {
        let err = parse_rules(&[rule(true, "c", 1, 3, "rx")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux.resources.devices[0].access"), "{err}");
        let err = parse_rules(&[rule(true, "p", 1, 3, "r")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux.resources.devices[0].type"), "{err}");
    }

    #[test]
    fn transition_is_minimal() {
        let cur = Emulator::from_list("c 1:3 rwm\nc 1:5 rwm\n").unwrap();
        let tgt = Emulator::from_rules(
            &parse_rules(&[
                rule(false, "a", -1, -1, "rwm"),
                rule(true, "c", 1, 3, "rw"),
                rule(true, "c", 1, 7, "rwm"),
            ])
            .unwrap(),
        )
        .unwrap();
        let t: Vec<String> = cur
            .transition(&tgt)
            .iter()
            .map(|r| format!("{} {r}", if r.allow { "allow" } else { "deny" }))
            .collect();
        assert_eq!(t, ["deny c 1:3 m", "deny c 1:5 rwm", "allow c 1:7 rwm"]);
        let fresh = Emulator::default().transition(&tgt);
        assert_eq!(fresh[0].to_string(), "a *:* rwm");
        assert!(!fresh[0].allow);
    }
}
