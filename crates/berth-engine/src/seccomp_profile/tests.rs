//! Tests: the converter's rules one by one, parsing and its errors, the default profile's
//! equivalence with Docker's, and the default profile installed in a real process.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{Value, json};

use super::*;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Where the lead keeps Docker's default profile (never copied into the repository).
const DOCKER_DEFAULT: &str = "/work/shared/reference/docker-seccomp/default.json";

/// The capabilities Docker gives a container by default.
const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability Linux has (as of 6.x).
const ALL_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

fn ctx(arch: HostArch, caps: &[&str], kernel: (u32, u32)) -> Context {
    Context {
        arch,
        capabilities: caps.iter().map(|c| c.to_string()).collect(),
        kernel: KernelVersion::new(kernel.0, kernel.1),
    }
}

/// The default container on x86_64 with a recent kernel.
fn x86_default() -> Context {
    ctx(HostArch::X86_64, DEFAULT_CAPS, (6, 18))
}

fn profile(v: Value) -> DockerProfile {
    parse_profile(v.to_string().as_bytes()).unwrap()
}

fn convert(v: Value, c: &Context) -> LinuxSeccomp {
    to_oci(&profile(v), c).unwrap()
}

fn convert_err(v: Value, c: &Context) -> String {
    to_oci(&profile(v), c).unwrap_err().to_string()
}

fn parse_err(json: &str) -> String {
    parse_profile(json.as_bytes()).unwrap_err().to_string()
}

/// The names of each OCI rule, in order.
fn rule_names(s: &LinuxSeccomp) -> Vec<Vec<String>> {
    s.syscalls()
        .iter()
        .flatten()
        .map(|r| r.names().clone())
        .collect()
}

/// The OCI architectures, by their JSON names.
fn arch_names(s: &LinuxSeccomp) -> Vec<String> {
    s.architectures().iter().flatten().map(json_name).collect()
}

/// The JSON spelling of an oci-spec enum value.
fn json_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------------------
// Normalised rule sets, for the equivalence tests
// ---------------------------------------------------------------------------------------

/// One argument condition: index, operator, value, valueTwo (absent as 0).
type Cond = (usize, String, u64, u64);
/// One (syscall, action, errno, conditions) fact; conditions sorted.
type Fact = (String, String, Option<u32>, Vec<Cond>);

/// An OCI section reduced to what the kernel will enforce: everything but the rule
/// order and grouping, which do not change what is allowed when no syscall has two rules
/// with different actions for the same arguments (checked separately).
#[derive(Debug, PartialEq, Eq)]
struct Normal {
    default_action: String,
    default_errno: Option<u32>,
    architectures: Vec<String>,
    flags: Vec<String>,
    listener: (Option<String>, Option<String>),
    facts: BTreeSet<Fact>,
}

fn normalise(s: &LinuxSeccomp) -> Normal {
    let mut facts = BTreeSet::new();
    for rule in s.syscalls().iter().flatten() {
        let mut conds: Vec<Cond> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| {
                (
                    a.index(),
                    json_name(&a.op()),
                    a.value(),
                    a.value_two().unwrap_or(0),
                )
            })
            .collect();
        conds.sort();
        for name in rule.names() {
            facts.insert((
                name.clone(),
                json_name(&rule.action()),
                rule.errno_ret(),
                conds.clone(),
            ));
        }
    }
    Normal {
        default_action: json_name(&s.default_action()),
        default_errno: s.default_errno_ret(),
        architectures: arch_names(s),
        flags: s.flags().iter().flatten().map(json_name).collect(),
        listener: (
            s.listener_path().as_ref().map(|p| p.display().to_string()),
            s.listener_metadata().clone(),
        ),
        facts,
    }
}

/// Fails if one syscall has, for the same conditions, two different actions (which would
/// make rule order matter and the set comparison blind to it).
fn assert_no_conflicts(n: &Normal, what: &str) {
    type Key<'a> = (&'a str, &'a [Cond]);
    let mut seen: std::collections::BTreeMap<Key<'_>, (&str, Option<u32>)> = Default::default();
    for (name, action, errno, conds) in &n.facts {
        let key = (name.as_str(), conds.as_slice());
        if let Some(prev) = seen.insert(key, (action.as_str(), *errno)) {
            assert_eq!(
                prev,
                (action.as_str(), *errno),
                "{what}: {name} {conds:?} has two actions"
            );
        }
    }
}

/// Docker's reference profile, or `None` (with a message) when it is not on this machine.
fn docker_reference() -> Option<DockerProfile> {
    let path = Path::new(DOCKER_DEFAULT);
    match std::fs::read(path) {
        Ok(bytes) => Some(parse_profile(&bytes).unwrap()),
        Err(e) => {
            eprintln!("skipped: Docker's default profile is not at {DOCKER_DEFAULT}: {e}");
            None
        }
    }
}

/// Every capability set the equivalence tests resolve both profiles for: Docker's
/// defaults; the defaults plus each capability in turn (SYS_ADMIN, SYS_PTRACE, SYS_TIME,
/// SYS_MODULE and all the others); all capabilities; none.
fn capability_sets() -> Vec<(String, Vec<&'static str>)> {
    let mut sets = vec![
        ("default".to_string(), DEFAULT_CAPS.to_vec()),
        ("all".to_string(), ALL_CAPS.to_vec()),
        ("none".to_string(), Vec::new()),
    ];
    for cap in ALL_CAPS {
        if !DEFAULT_CAPS.contains(cap) {
            let mut caps = DEFAULT_CAPS.to_vec();
            caps.push(cap);
            sets.push((format!("default+{cap}"), caps));
        }
    }
    sets
}

const KERNELS: &[(u32, u32)] = &[(4, 7), (4, 8), (4, 14), (5, 4), (6, 18)];

// ---------------------------------------------------------------------------------------
// (a) The default profile against Docker's
// ---------------------------------------------------------------------------------------

#[test]
fn default_profile_is_equivalent_to_dockers() {
    let Some(docker) = docker_reference() else {
        return;
    };
    let ours = default_profile();
    let mut compared = 0;
    for (caps_name, caps) in capability_sets() {
        for arch in HostArch::ALL {
            for &kernel in KERNELS {
                let c = ctx(arch, &caps, kernel);
                let what = format!("{arch}, kernel {}.{}, caps {caps_name}", kernel.0, kernel.1);
                let theirs = normalise(&to_oci(&docker, &c).unwrap());
                let mine = normalise(&to_oci(&ours, &c).unwrap());
                assert_no_conflicts(&theirs, &what);
                assert_no_conflicts(&mine, &what);
                let only_theirs: Vec<_> = theirs.facts.difference(&mine.facts).collect();
                let only_mine: Vec<_> = mine.facts.difference(&theirs.facts).collect();
                assert!(
                    only_theirs.is_empty() && only_mine.is_empty(),
                    "{what}: only in Docker's: {only_theirs:?}; only in berth's: {only_mine:?}"
                );
                assert_eq!(theirs, mine, "{what}");
                compared += 1;
            }
        }
    }
    eprintln!("default profile equivalent to Docker's in {compared} contexts");
}

/// The contexts the brief names, spelled out, with what must differ between them (so the
/// equivalence above is not vacuous).
#[test]
fn equivalence_covers_the_capability_gated_groups() {
    let Some(docker) = docker_reference() else {
        return;
    };
    let ours = default_profile();
    let facts = |p: &DockerProfile, arch, extra: &[&str], kernel| {
        let mut caps = DEFAULT_CAPS.to_vec();
        caps.extend_from_slice(extra);
        normalise(&to_oci(p, &ctx(arch, &caps, kernel)).unwrap()).facts
    };
    let allowed = |f: &BTreeSet<Fact>, name: &str| {
        f.iter()
            .any(|(n, a, _, c)| n == name && a == "SCMP_ACT_ALLOW" && c.is_empty())
    };
    for arch in [HostArch::X86_64, HostArch::Aarch64] {
        for kernel in [(4, 14), (5, 4), (6, 18)] {
            for p in [&docker, &ours] {
                let base = facts(p, arch, &[], kernel);
                assert!(allowed(&base, "getpid") && !allowed(&base, "mount"));
                assert!(allowed(&facts(p, arch, &["SYS_ADMIN"], kernel), "mount"));
                assert!(allowed(&facts(p, arch, &["SYS_PTRACE"], kernel), "kcmp"));
                assert!(!allowed(&base, "kcmp"));
                assert!(allowed(
                    &facts(p, arch, &["SYS_TIME"], kernel),
                    "clock_settime"
                ));
                assert!(!allowed(&base, "clock_settime"));
                assert!(allowed(
                    &facts(p, arch, &["SYS_MODULE"], kernel),
                    "init_module"
                ));
                assert!(!allowed(&base, "init_module"));
                assert_eq!(allowed(&base, "arch_prctl"), arch == HostArch::X86_64);
                assert_eq!(allowed(&base, "set_tls"), arch == HostArch::Aarch64);
            }
        }
    }
}

#[test]
fn always_allowed_groups_do_not_overlap() {
    let mut seen = BTreeSet::new();
    for name in default::always_allowed() {
        assert!(seen.insert(name), "{name} is in two always-allowed groups");
    }
    assert!(seen.len() > 300);
}

#[test]
fn default_profile_round_trips_through_json() {
    let p = default_profile();
    let json = serde_json::to_vec_pretty(&p).unwrap();
    assert_eq!(parse_profile(&json).unwrap(), p);
}

#[test]
fn default_profile_for_a_default_container() {
    let s = to_oci(&default_profile(), &x86_default()).unwrap();
    assert_eq!(json_name(&s.default_action()), "SCMP_ACT_ERRNO");
    assert_eq!(s.default_errno_ret(), Some(1));
    assert_eq!(
        arch_names(&s),
        ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    );
    assert_eq!(s.flags(), &None);
    let n = normalise(&s);
    let clone3: Vec<_> = n.facts.iter().filter(|f| f.0 == "clone3").collect();
    assert_eq!(
        clone3,
        [&(
            "clone3".to_string(),
            "SCMP_ACT_ERRNO".to_string(),
            Some(38),
            vec![]
        )]
    );
    let clone: Vec<_> = n.facts.iter().filter(|f| f.0 == "clone").collect();
    assert_eq!(
        clone,
        [&(
            "clone".to_string(),
            "SCMP_ACT_ALLOW".to_string(),
            None,
            vec![(0, "SCMP_CMP_MASKED_EQ".to_string(), 0x7E02_0000, 0)]
        )]
    );
}

/// Without the reference file: the default profile, on its own, gates `mount` on
/// CAP_SYS_ADMIN, and `clone` too (plain clone stays allowed, checked by the mask).
#[test]
fn default_profile_gates_mount_on_cap_sys_admin() {
    let allowed = |extra: &[&str], name: &str| {
        let mut caps = DEFAULT_CAPS.to_vec();
        caps.extend_from_slice(extra);
        let s = to_oci(&default_profile(), &ctx(HostArch::X86_64, &caps, (6, 18))).unwrap();
        normalise(&s)
            .facts
            .iter()
            .any(|(n, a, _, c)| n == name && a == "SCMP_ACT_ALLOW" && c.is_empty())
    };
    assert!(!allowed(&[], "mount"));
    assert!(allowed(&["CAP_SYS_ADMIN"], "mount"));
    assert!(!allowed(&[], "clone"));
    assert!(allowed(&["SYS_ADMIN"], "clone"));
    assert!(!allowed(&[], "reboot"));
    assert!(allowed(&["SYS_BOOT"], "reboot"));
    assert!(allowed(&[], "read"));
}

/// A profile read, written and read again is unchanged, and its OCI section survives the
/// OCI JSON form (what the runtime reads from config.json).
#[test]
fn profiles_and_oci_sections_round_trip() {
    let mut profiles = vec![default_profile()];
    profiles.extend(docker_reference());
    for p in profiles {
        let json = serde_json::to_vec(&p).unwrap();
        assert_eq!(parse_profile(&json).unwrap(), p);
        let oci = to_oci(&p, &x86_default()).unwrap();
        let back: LinuxSeccomp =
            serde_json::from_slice(&serde_json::to_vec(&oci).unwrap()).unwrap();
        assert_eq!(back, oci);
        assert!(oci.syscalls().as_ref().is_some_and(|s| s.len() > 10));
    }
}

#[test]
fn docker_reference_parses_and_keeps_its_shape() {
    let Some(docker) = docker_reference() else {
        return;
    };
    assert_eq!(docker.default_action, Some(Action::Errno));
    assert!(docker.syscalls.len() > 20);
    // `subArchitectures: null` reads as empty.
    assert!(
        docker
            .arch_map
            .iter()
            .any(|e| e.architecture == "SCMP_ARCH_RISCV64" && e.sub_architectures.is_empty())
    );
}

// ---------------------------------------------------------------------------------------
// (b) The converter
// ---------------------------------------------------------------------------------------

#[test]
fn includes_caps_need_every_capability() {
    let p = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["b"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_SYS_TIME"]}},
        {"names": ["c"], "action": "SCMP_ACT_ALLOW"}
    ]});
    let names =
        |caps: &[&str]| rule_names(&convert(p.clone(), &ctx(HostArch::X86_64, caps, (6, 1))));
    assert_eq!(names(&[]), [["c"]]);
    assert_eq!(names(&["SYS_ADMIN"]), [vec!["a"], vec!["c"]]);
    // Any spelling of the container's capabilities.
    assert_eq!(
        names(&["cap_sys_admin", "SYS_TIME"]),
        [vec!["a"], vec!["b"], vec!["c"]]
    );
}

#[test]
fn excludes_caps_need_any_capability() {
    let p = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ALLOW",
         "excludes": {"caps": ["CAP_SYS_ADMIN", "CAP_BPF"]}},
    ]});
    let names =
        |caps: &[&str]| rule_names(&convert(p.clone(), &ctx(HostArch::X86_64, caps, (6, 1))));
    assert_eq!(names(&["CHOWN"]), [["a"]]);
    assert!(names(&["BPF"]).is_empty());
    assert!(names(&["CAP_SYS_ADMIN"]).is_empty());
}

#[test]
fn arches_filters_use_dockers_names() {
    let p = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["x86_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["not_s390"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["s390", "s390x"]}},
        {"names": ["arm_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}},
    ]});
    let names = |arch| rule_names(&convert(p.clone(), &ctx(arch, DEFAULT_CAPS, (6, 1))));
    assert_eq!(names(HostArch::X86_64), [["x86_only"], ["not_s390"]]);
    assert_eq!(names(HostArch::Aarch64), [["not_s390"], ["arm_only"]]);
    assert!(names(HostArch::S390x).is_empty());
    assert_eq!(names(HostArch::Riscv64), [["not_s390"]]);
}

#[test]
fn min_kernel_compares_major_and_minor() {
    let p = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["new"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"names": ["old"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "4.8"}},
        {"names": ["any"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": ""}},
    ]});
    let names = |k| rule_names(&convert(p.clone(), &ctx(HostArch::X86_64, DEFAULT_CAPS, k)));
    assert_eq!(names((4, 7)), [["old"], ["any"]]);
    assert_eq!(names((4, 8)), [["new"], ["any"]]);
    assert_eq!(names((4, 19)), [["new"], ["any"]]);
    assert_eq!(names((3, 99)), [["old"], ["any"]]);
    assert_eq!(names((5, 0)), [["new"], ["any"]]);
}

#[test]
fn includes_and_excludes_combine() {
    // Docker's s390 clone rule: s390 only, and only without CAP_SYS_ADMIN.
    let p = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "includes": {"arches": ["s390x"]}, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
    ]});
    let n = |arch, caps: &[&str]| rule_names(&convert(p.clone(), &ctx(arch, caps, (6, 1)))).len();
    assert_eq!(n(HostArch::S390x, &[]), 1);
    assert_eq!(n(HostArch::S390x, &["SYS_ADMIN"]), 0);
    assert_eq!(n(HostArch::X86_64, &[]), 0);
}

#[test]
fn arch_map_resolves_the_host_entry_only() {
    let p = json!({"defaultAction": "SCMP_ACT_ERRNO", "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_PPC"]},
        {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null},
        {"architecture": "SCMP_ARCH_FUTURE", "subArchitectures": ["SCMP_ARCH_BOGUS"]},
    ]});
    let arches = |arch| arch_names(&convert(p.clone(), &ctx(arch, DEFAULT_CAPS, (6, 1))));
    assert_eq!(
        arches(HostArch::X86_64),
        ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    );
    // The first entry for the host wins.
    assert_eq!(
        arches(HostArch::Aarch64),
        ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    );
    assert_eq!(arches(HostArch::Riscv64), ["SCMP_ARCH_RISCV64"]);
    // No entry: no architectures, so the runtime filters the native one only.
    let s = convert(p.clone(), &ctx(HostArch::Ppc64le, DEFAULT_CAPS, (6, 1)));
    assert_eq!(s.architectures(), &None);
}

#[test]
fn arch_map_errors_name_the_entry() {
    let p = json!({"defaultAction": "SCMP_ACT_ERRNO", "archMap": [
        {"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]},
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X33"]},
    ]});
    assert_eq!(
        convert_err(p, &x86_default()),
        "seccomp profile: archMap[1].subArchitectures[1]: unknown architecture \"SCMP_ARCH_X33\""
    );
}

#[test]
fn architectures_pass_through_and_exclude_arch_map() {
    let s = convert(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]}),
        &x86_default(),
    );
    assert_eq!(arch_names(&s), ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);

    let both = json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86"],
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []}]});
    assert!(
        convert_err(both, &x86_default())
            .starts_with("seccomp profile: archMap: cannot be combined with architectures")
    );
    let bad = json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["x86_64"]});
    assert_eq!(
        convert_err(bad, &x86_default()),
        "seccomp profile: architectures[0]: unknown architecture \"x86_64\""
    );
}

#[test]
fn legacy_name_becomes_names() {
    let s = convert(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"name": "chmod", "action": "SCMP_ACT_ALLOW"},
            {"names": ["fchmod", "fchmodat"], "action": "SCMP_ACT_ALLOW"},
        ]}),
        &x86_default(),
    );
    assert_eq!(rule_names(&s), [vec!["chmod"], vec!["fchmod", "fchmodat"]]);

    let both = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ALLOW"},
        {"name": "chmod", "names": ["chmod"], "action": "SCMP_ACT_ALLOW",
         "includes": {"arches": ["ppc64"]}},
    ]});
    // Refused even where the rule would not apply.
    assert_eq!(
        convert_err(both, &x86_default()),
        "seccomp profile: syscalls[1]: both name and names are set; use names (name is the \
         legacy form)"
    );
}

#[test]
fn rules_keep_their_order_actions_errnos_and_args() {
    let s = convert(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["z"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["a"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["m"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 1, "value": 255, "valueTwo": 4, "op": "SCMP_CMP_MASKED_EQ"},
                      {"index": 0, "value": 3, "op": "SCMP_CMP_GE"}]},
            {"names": ["t"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
        ]}),
        &x86_default(),
    );
    let rules = s.syscalls().as_ref().unwrap();
    assert_eq!(rule_names(&s), [["z"], ["a"], ["m"], ["t"]]);
    assert_eq!(rules[0].errno_ret(), Some(38));
    assert_eq!(json_name(&rules[1].action()), "SCMP_ACT_KILL_PROCESS");
    let args = rules[2].args().as_ref().unwrap();
    assert_eq!(
        (args[0].index(), args[0].value(), args[0].value_two()),
        (1, 255, Some(4))
    );
    assert_eq!(json_name(&args[0].op()), "SCMP_CMP_MASKED_EQ");
    assert_eq!((args[1].index(), args[1].value_two()), (0, None));
    assert_eq!(json_name(&args[1].op()), "SCMP_CMP_GE");
    assert_eq!(rules[3].errno_ret(), Some(7));
    assert_eq!(rules[0].args(), &None);
}

#[test]
fn every_action_and_operator_maps_to_its_oci_name() {
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    ] {
        let s = convert(
            json!({"defaultAction": action, "listenerPath": "/run/agent.sock",
                   "syscalls": [{"names": ["x"], "action": action}]}),
            &x86_default(),
        );
        assert_eq!(json_name(&s.default_action()), action);
        assert_eq!(
            json_name(&s.syscalls().as_ref().unwrap()[0].action()),
            action
        );
    }
    for op in [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ] {
        let s = convert(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 1, "op": op}]}
            ]}),
            &x86_default(),
        );
        let arg = s.syscalls().as_ref().unwrap()[0].args().as_ref().unwrap()[0];
        assert_eq!(json_name(&arg.op()), op);
    }
}

#[test]
fn flags_and_listener_are_carried() {
    let s = convert(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
               "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"],
               "listenerPath": "/run/seccomp-agent.sock", "listenerMetadata": "opaque"}),
        &x86_default(),
    );
    assert_eq!(s.default_errno_ret(), Some(13));
    let flags: Vec<_> = s.flags().iter().flatten().map(json_name).collect();
    assert_eq!(
        flags,
        ["SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"]
    );
    assert_eq!(
        s.listener_path().as_deref(),
        Some(Path::new("/run/seccomp-agent.sock"))
    );
    assert_eq!(s.listener_metadata().as_deref(), Some("opaque"));

    // Empty means absent, as in Docker's output.
    let s = convert(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "flags": [], "listenerPath": ""}),
        &x86_default(),
    );
    assert_eq!((s.flags(), s.listener_path()), (&None, &None));

    let bad =
        json!({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG", "LOUD"]});
    assert_eq!(
        convert_err(bad, &x86_default()),
        "seccomp profile: flags[1]: unknown or unsupported seccomp filter flag \"LOUD\""
    );
}

#[test]
fn conversion_errors_name_the_field() {
    let c = x86_default();
    assert_eq!(
        convert_err(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["a"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["b"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1},
            ]}),
            &c
        ),
        "seccomp profile: syscalls[1].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an \
         errno, not SCMP_ACT_ALLOW"
    );
    assert_eq!(
        convert_err(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}),
            &c
        ),
        "seccomp profile: defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno"
    );
    assert_eq!(
        convert_err(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["a"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                          {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]},
            ]}),
            &c
        ),
        "seccomp profile: syscalls[0].args[1].index: 6 is not an argument index (0 to 5)"
    );
    assert_eq!(
        convert_err(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"action": "SCMP_ACT_ALLOW"}]}),
            &c
        ),
        "seccomp profile: syscalls[0].names: no syscall names"
    );
    assert_eq!(
        convert_err(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read", ""], "action": "SCMP_ACT_ALLOW"}]}),
            &c
        ),
        "seccomp profile: syscalls[0].names[1]: empty syscall name"
    );
    // A rule that does not apply is not checked further, as in Docker.
    convert(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"action": "SCMP_ACT_ALLOW", "includes": {"arches": ["ppc64"]}}]}),
        &c,
    );
}

#[test]
fn an_empty_profile_disables_seccomp() {
    let empty = profile(json!({}));
    assert!(empty.disables_seccomp());
    assert!(profile(json!({"defaultAction": ""})).disables_seccomp());
    assert!(
        to_oci(&empty, &x86_default())
            .unwrap_err()
            .to_string()
            .starts_with("seccomp profile: defaultAction: missing")
    );
    assert!(!profile(json!({"defaultAction": "SCMP_ACT_ALLOW"})).disables_seccomp());
    // Rules without a default action: not disabled, and refused.
    let rules_only = profile(json!({"syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW"}]}));
    assert!(!rules_only.disables_seccomp());
    assert!(to_oci(&rules_only, &x86_default()).is_err());
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

#[test]
fn parse_errors_name_the_field() {
    let json = concat!(
        "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [\n",
        "{\"names\": [\"a\"], \"action\": \"SCMP_ACT_ALLOW\"},\n",
        "{\"names\": [\"b\"], \"action\": \"SCMP_ACT_PERMIT\"}]}",
    );
    assert_eq!(
        parse_err(json),
        "seccomp profile: syscalls[1].action: unknown variant `SCMP_ACT_PERMIT`, expected one \
         of `SCMP_ACT_KILL`, `SCMP_ACT_KILL_THREAD`, `SCMP_ACT_KILL_PROCESS`, `SCMP_ACT_TRAP`, \
         `SCMP_ACT_ERRNO`, `SCMP_ACT_TRACE`, `SCMP_ACT_ALLOW`, `SCMP_ACT_LOG`, \
         `SCMP_ACT_NOTIFY` at line 3 column 44"
    );
    assert!(
        parse_err(r#"{"defaultAction": "SCMP_ACT_DENY"}"#)
            .starts_with("seccomp profile: defaultAction: unknown variant `SCMP_ACT_DENY`")
    );
    assert!(
        parse_err(
            r#"{"syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}"#
        )
        .starts_with("seccomp profile: syscalls[0].args[0].value: invalid value: integer `-1`")
    );
    assert!(
        parse_err(r#"{"syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0}]}]}"#)
            .starts_with("seccomp profile: syscalls[0].args[0]: missing field `op`")
    );
    assert!(
        parse_err(r#"{"syscalls": [{"names": "read", "action": "SCMP_ACT_ALLOW"}]}"#)
            .starts_with("seccomp profile: syscalls[0].names: invalid type: string \"read\"")
    );
    assert!(
        parse_err(r#"{"defaultErrnoRet": 4294967296}"#)
            .starts_with("seccomp profile: defaultErrnoRet:")
    );
    let e = parse_err(r#"{"defaultAction": "SCMP_ACT_ERRNO",}"#);
    assert!(
        e.starts_with("seccomp profile: trailing comma at line 1"),
        "{e}"
    );
    assert!(parse_err("{} x").starts_with("seccomp profile: trailing characters"));
}

#[test]
fn min_kernel_is_parsed_as_docker_does() {
    let min = |v: &str| {
        parse_profile(
            format!(
                r#"{{"syscalls": [{{"names": ["a"], "action": "SCMP_ACT_ALLOW",
                "includes": {{"minKernel": {v}}}}}]}}"#
            )
            .as_bytes(),
        )
        .map(|p| p.syscalls[0].includes.min_kernel)
        .map_err(|e| e.to_string())
    };
    assert_eq!(min(r#""4.8""#), Ok(Some(KernelVersion::new(4, 8))));
    assert_eq!(min(r#""255.0""#), Ok(Some(KernelVersion::new(255, 0))));
    assert_eq!(min(r#""""#), Ok(None));
    assert_eq!(min("null"), Ok(None));
    for bad in [
        r#""4.8.1""#,
        r#""4""#,
        r#""4.x""#,
        r#""0.0""#,
        r#""256.1""#,
        r#""-4.8""#,
        "4.8",
    ] {
        let e = min(bad).unwrap_err();
        assert!(
            e.starts_with("seccomp profile: syscalls[0].includes.minKernel: "),
            "{bad}: {e}"
        );
    }
    assert!(
        min(r#""4.8.1""#)
            .unwrap_err()
            .contains(r#"expected "<major>.<minor>""#)
    );
}

#[test]
fn nulls_read_as_empty() {
    let p = profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": null,
        "flags": null, "listenerPath": null, "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ALLOW", "args": null, "comment": null,
         "includes": null, "excludes": {"caps": null, "arches": null}}]}),
    );
    assert!(p.architectures.is_empty() && p.flags.is_empty());
    assert!(p.syscalls[0].includes.is_empty() && p.syscalls[0].excludes.is_empty());
    assert_eq!(rule_names(&to_oci(&p, &x86_default()).unwrap()), [["a"]]);
}

#[test]
fn kernel_releases_read_like_docker() {
    let v = KernelVersion::from_release;
    assert_eq!(v("6.18.44-fc-v669"), Some(KernelVersion::new(6, 18)));
    assert_eq!(v("3.12-1-amd64\n"), Some(KernelVersion::new(3, 12)));
    assert_eq!(v("5.4.0"), Some(KernelVersion::new(5, 4)));
    assert_eq!(v("6"), None);
    assert_eq!(v("x.1"), None);
    assert!(KernelVersion::running().is_ok());
    assert_eq!(KernelVersion::new(4, 8).to_string(), "4.8");
}

#[test]
fn host_arches_read_every_spelling() {
    for (s, arch) in [
        ("x86_64", HostArch::X86_64),
        ("amd64", HostArch::X86_64),
        ("aarch64", HostArch::Aarch64),
        ("arm64", HostArch::Aarch64),
        ("i686", HostArch::X86),
        ("386", HostArch::X86),
        ("armv7l", HostArch::Arm),
        ("ppc64le", HostArch::Ppc64le),
        ("s390x", HostArch::S390x),
        ("riscv64", HostArch::Riscv64),
        ("loongarch64", HostArch::Loongarch64),
        ("mips64le", HostArch::Mipsel64),
    ] {
        assert_eq!(s.parse::<HostArch>().unwrap(), arch, "{s}");
    }
    assert!("sparc64".parse::<HostArch>().is_err());
    // Every architecture's seccomp name is one oci-spec knows.
    for arch in HostArch::ALL {
        assert!(oci_arch(arch.seccomp_name(), String::new).is_ok(), "{arch}");
        assert_eq!(arch.docker_name().parse::<HostArch>().unwrap(), arch);
    }
    assert!(HostArch::native().is_some());
}

// ---------------------------------------------------------------------------------------
// (c) The default profile in a real process
// ---------------------------------------------------------------------------------------

/// A raw syscall: the result, or the errno.
fn sys(nr: libc::c_long, a: [libc::c_long; 3]) -> Result<i64, i32> {
    // SAFETY: the callers pass arguments valid for `nr` (no pointers, or null ones).
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2]) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(-1))
    } else {
        Ok(r)
    }
}

/// Runs `checks` in a forked child after installing `program`; the child's exit code is 0
/// or 100 + the index of the first failed check (99: installing failed).
fn run_confined(
    program: &berth_runtime::seccomp::Program,
    checks: &[(&str, &dyn Fn() -> bool)],
) -> Result<(), String> {
    // SAFETY: the child runs raw syscalls only (installing allocates only on failure) and
    // leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: prctl with integer arguments.
        let nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        let code = if nnp != 0 || program.install().is_err() {
            99
        } else {
            checks
                .iter()
                .position(|(_, check)| !check())
                .map_or(0, |i| 100 + i as i32)
        };
        // SAFETY: ends the child without the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if !libc::WIFEXITED(status) {
        return Err(format!("child killed by signal {}", libc::WTERMSIG(status)));
    }
    match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        99 => Err("installing the filter failed".to_string()),
        n => Err(format!("check {:?} failed", checks[(n - 100) as usize].0)),
    }
}

#[test]
fn default_profile_loads_and_confines_a_process() {
    let ctx = Context::for_host(DEFAULT_CAPS.iter().copied()).unwrap();
    let oci = to_oci(&default_profile(), &ctx).unwrap();
    let program = match berth_runtime::seccomp::compile(&oci) {
        Ok(p) => p,
        Err(e) if !Path::new("/proc/sys/kernel/seccomp").exists() => {
            eprintln!("skipped: this kernel has no seccomp filters ({e})");
            return;
        }
        Err(e) => panic!("compiling the default profile: {e}"),
    };
    let pid = || sys(libc::SYS_getpid, [0, 0, 0]).is_ok_and(|p| p > 0);
    let unshare_ns =
        || sys(libc::SYS_unshare, [libc::CLONE_NEWNS as libc::c_long, 0, 0]) == Err(libc::EPERM);
    let mount = || sys(libc::SYS_umount2, [0, 0, 0]) == Err(libc::EPERM);
    let clone3 = || sys(libc::SYS_clone3, [0, 0, 0]) == Err(libc::ENOSYS);
    let vsock = || {
        sys(
            libc::SYS_socket,
            [libc::AF_VSOCK.into(), libc::SOCK_STREAM.into(), 0],
        ) == Err(libc::EPERM)
    };
    let unix_socket = || {
        sys(
            libc::SYS_socket,
            [libc::AF_UNIX.into(), libc::SOCK_STREAM.into(), 0],
        )
        .is_ok_and(|fd| {
            // SAFETY: closing the socket just made.
            unsafe { libc::close(fd as i32) };
            true
        })
    };
    let persona_query = || sys(libc::SYS_personality, [0xffff_ffff, 0, 0]).is_ok();
    let no_aslr = || sys(libc::SYS_personality, [0x0040000, 0, 0]) == Err(libc::EPERM);
    let checks: &[(&str, &dyn Fn() -> bool)] = &[
        ("getpid works", &pid),
        ("unshare(CLONE_NEWNS) fails with EPERM", &unshare_ns),
        ("umount2 fails with EPERM", &mount),
        ("clone3 fails with ENOSYS", &clone3),
        ("socket(AF_VSOCK) fails with EPERM", &vsock),
        ("socket(AF_UNIX) works", &unix_socket),
        ("personality(query) works", &persona_query),
        ("personality(ADDR_NO_RANDOMIZE) fails with EPERM", &no_aslr),
    ];
    run_confined(&program, checks).unwrap();

    // The same checks the other way round without the filter, to show they test it: as
    // root, unshare(CLONE_NEWNS) succeeds unconfined (in a child, so it changes nothing
    // here).
    // SAFETY: raw syscalls only, then _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = i32::from(
            sys(libc::SYS_unshare, [libc::CLONE_NEWNS as libc::c_long, 0, 0]) == Err(libc::EPERM),
        );
        // SAFETY: ends the child.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if libc::WEXITSTATUS(status) != 0 {
        eprintln!("note: unshare(CLONE_NEWNS) fails here even unconfined (not root?)");
    }
}

/// Docker's own profile also compiles with berth's runtime, for this host.
#[test]
fn docker_reference_compiles_with_the_runtime() {
    let Some(docker) = docker_reference() else {
        return;
    };
    let ctx = Context::for_host(DEFAULT_CAPS.iter().copied()).unwrap();
    let oci = to_oci(&docker, &ctx).unwrap();
    if let Err(e) = berth_runtime::seccomp::compile(&oci)
        && Path::new("/proc/sys/kernel/seccomp").exists()
    {
        panic!("compiling Docker's profile: {e}");
    }
}
