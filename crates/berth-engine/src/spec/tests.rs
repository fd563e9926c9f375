//! Unit tests of the spec builder, one rule at a time, against a small rootfs on disk.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use berth_api_types::models::ContainerCreateBody;
use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Mount, Spec};
use serde_json::{Value, json};

use super::*;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A rootfs with passwd and group files, in a temp dir.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-spec-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n\
             # a comment\n\
             broken line\n\
             user:x:1000:1000:user:/home/user:/bin/sh\n\
             daemon:x:2:2::/usr/sbin:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nuser:x:1000:\nwheel:x:10:root,user\naudio:x:29:user\nstaff:x:50:\n",
        )
        .unwrap();
        Fixture { dir }
    }

    fn rootfs(&self) -> &Path {
        self.dir.path()
    }
}

fn host() -> Host {
    Host {
        arch: crate::seccomp_profile::HostArch::X86_64,
        kernel: KernelVersion::new(6, 18),
        last_cap: 40,
        seccomp: true,
        cpus: 4,
        hostname: "the-host".to_string(),
        private_cgroupns_default: false,
    }
}

fn image() -> ImageConfig {
    ImageConfig {
        cmd: vec!["sh".to_string()],
        ..ImageConfig::default()
    }
}

/// Joins `container:web` only.
fn joiner(kind: JoinKind, target: &str) -> Option<PathBuf> {
    (target == "web").then(|| PathBuf::from(format!("/proc/4242/ns/{kind:?}")))
}

/// The create body from Docker's JSON.
fn body(v: Value) -> ContainerCreateBody {
    serde_json::from_value(v).unwrap()
}

fn try_build_with(
    fx: &Fixture,
    v: Value,
    image: &ImageConfig,
    files: &ContainerFiles,
    init: Option<&Path>,
) -> Result<ContainerSpec> {
    let create = body(v);
    let host = host();
    build_spec(&SpecRequest {
        id: ID,
        create: &create,
        image,
        rootfs: fx.rootfs(),
        files,
        init_binary: init,
        network_namespace: None,
        join: &joiner,
        host: &host,
    })
}

fn try_build(v: Value) -> Result<ContainerSpec> {
    let fx = Fixture::new();
    try_build_with(&fx, v, &image(), &ContainerFiles::default(), None)
}

fn build(v: Value) -> Spec {
    try_build(v).unwrap().spec
}

fn err(v: Value) -> String {
    try_build(v).unwrap_err().to_string()
}

fn process(s: &Spec) -> &oci_spec::runtime::Process {
    s.process().as_ref().unwrap()
}

fn linux(s: &Spec) -> &oci_spec::runtime::Linux {
    s.linux().as_ref().unwrap()
}

fn caps(s: &Spec) -> BTreeSet<String> {
    capability_names(process(s).capabilities().as_ref().unwrap())
        .into_iter()
        .collect()
}

fn env(s: &Spec) -> Vec<String> {
    process(s).env().clone().unwrap()
}

fn mount_at<'a>(s: &'a Spec, dest: &str) -> Option<&'a Mount> {
    s.mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new(dest))
}

fn opts(m: &Mount) -> Vec<String> {
    m.options().clone().unwrap_or_default()
}

fn namespaces(s: &Spec) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
    linux(s)
        .namespaces()
        .iter()
        .flatten()
        .map(|n| (n.typ(), n.path().clone()))
        .collect()
}

fn has_ns(s: &Spec, t: LinuxNamespaceType) -> bool {
    namespaces(s).iter().any(|(typ, _)| *typ == t)
}

fn default_caps() -> BTreeSet<String> {
    DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect()
}

/// Whether `name` is allowed without conditions by the spec's seccomp filter.
fn seccomp_allows(s: &Spec, name: &str) -> bool {
    linux(s)
        .seccomp()
        .as_ref()
        .unwrap()
        .syscalls()
        .iter()
        .flatten()
        .any(|r| {
            r.names().iter().any(|n| n == name)
                && r.args().is_none()
                && serde_json::to_value(r.action()).unwrap() == "SCMP_ACT_ALLOW"
        })
}

// ---------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------

#[test]
fn defaults_are_dockers() {
    let s = build(json!({}));
    let p = process(&s);
    assert_eq!(p.args().as_deref().unwrap(), ["sh"]);
    assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
    assert_eq!(p.cwd(), Path::new("/"));
    assert_eq!(p.terminal(), Some(false));
    assert_eq!(p.no_new_privileges(), Some(false));
    assert_eq!(caps(&s), default_caps());
    let c = p.capabilities().as_ref().unwrap();
    assert_eq!(c.effective(), c.bounding());
    assert_eq!(c.permitted(), c.bounding());
    assert!(c.inheritable().is_none() && c.ambient().is_none());
    assert_eq!(
        env(&s),
        [DEFAULT_PATH, "HOSTNAME=0123456789ab", "HOME=/root"]
    );
    assert_eq!(s.hostname().as_deref(), Some("0123456789ab"));
    assert_eq!(s.root().as_ref().unwrap().readonly(), Some(false));
    assert!(
        s.root()
            .as_ref()
            .unwrap()
            .path()
            .starts_with(std::env::temp_dir())
    );

    let l = linux(&s);
    assert_eq!(
        l.cgroups_path().as_deref(),
        Some(Path::new(&format!("/berth/{ID}")))
    );
    assert_eq!(l.masked_paths().as_deref().unwrap(), DEFAULT_MASKED_PATHS);
    assert_eq!(
        l.readonly_paths().as_deref().unwrap(),
        DEFAULT_READONLY_PATHS
    );
    let ns: Vec<_> = namespaces(&s).into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        ns,
        [
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Uts
        ]
    );
    assert!(l.sysctl().is_none());
    let seccomp = l.seccomp().as_ref().unwrap();
    assert_eq!(
        serde_json::to_value(seccomp.default_action()).unwrap(),
        "SCMP_ACT_ERRNO"
    );
    assert!(seccomp_allows(&s, "read") && !seccomp_allows(&s, "mount"));

    // The default mounts, in order, with Docker's options.
    let dests: Vec<_> = s
        .mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm"
        ]
    );
    assert!(opts(mount_at(&s, "/sys").unwrap()).contains(&"ro".to_string()));
    assert!(opts(mount_at(&s, "/sys/fs/cgroup").unwrap()).contains(&"ro".to_string()));
    let shm = mount_at(&s, "/dev/shm").unwrap();
    assert_eq!(shm.typ().as_deref(), Some("tmpfs"));
    assert!(opts(shm).contains(&"size=67108864".to_string()));

    // Device rules: deny all first, then the standard devices.
    let rules = l.resources().as_ref().unwrap().devices().clone().unwrap();
    assert!(!rules[0].allow() && rules[0].typ() == Some(LinuxDeviceType::A));
    assert!(
        rules
            .iter()
            .any(|r| r.allow() && r.major() == Some(1) && r.minor() == Some(3))
    );
    assert!(l.devices().as_ref().is_none_or(|d| d.is_empty()));
    // No resources asked, none set.
    let r = l.resources().as_ref().unwrap();
    assert!(r.memory().is_none() && r.cpu().is_none() && r.pids().is_none());

    // The whole thing is valid JSON the runtime's loader accepts.
    let json = serde_json::to_vec(&s).unwrap();
    berth_runtime::config::parse(&json).unwrap();
}

#[test]
fn stop_signal_defaults_to_sigterm_and_follows_request_then_image() {
    assert_eq!(try_build(json!({})).unwrap().stop_signal, libc::SIGTERM);
    assert_eq!(
        try_build(json!({"StopSignal": "SIGKILL"}))
            .unwrap()
            .stop_signal,
        libc::SIGKILL
    );
    let fx = Fixture::new();
    let img = ImageConfig {
        stop_signal: Some("usr1".to_string()),
        ..image()
    };
    let files = ContainerFiles::default();
    let s = try_build_with(&fx, json!({}), &img, &files, None).unwrap();
    assert_eq!(s.stop_signal, libc::SIGUSR1);
    let s = try_build_with(&fx, json!({"StopSignal": "9"}), &img, &files, None).unwrap();
    assert_eq!(s.stop_signal, 9);
    assert_eq!(parse_signal("RTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
    assert_eq!(parse_signal("SIGRTMAX").unwrap(), libc::SIGRTMAX());
    for bad in ["SIGFOO", "0", "99", "RTMIN+99", "RTMINx"] {
        assert!(parse_signal(bad).is_err(), "{bad}");
    }
    assert_eq!(
        err(json!({"StopSignal": "SIGFOO"})),
        "Config.StopSignal: invalid signal: SIGFOO"
    );
}

// ---------------------------------------------------------------------------------------
// Capabilities, privileged, security options, seccomp
// ---------------------------------------------------------------------------------------

#[test]
fn cap_add_and_drop_accept_any_spelling() {
    let s = build(json!({"HostConfig": {
        "CapAdd": ["SYS_ADMIN", "cap_net_admin"], "CapDrop": ["CHOWN", "CAP_KILL", "kill"]}}));
    let mut want = default_caps();
    want.remove("CAP_CHOWN");
    want.remove("CAP_KILL");
    want.insert("CAP_SYS_ADMIN".into());
    want.insert("CAP_NET_ADMIN".into());
    assert_eq!(caps(&s), want);
}

#[test]
fn cap_add_all_and_cap_drop_all() {
    let s = build(json!({"HostConfig": {"CapAdd": ["ALL"], "CapDrop": ["SYS_ADMIN"]}}));
    let c = caps(&s);
    assert_eq!(c.len(), 40);
    assert!(!c.contains("CAP_SYS_ADMIN") && c.contains("CAP_BPF"));

    let s = build(json!({"HostConfig": {"CapDrop": ["all"], "CapAdd": ["NET_BIND_SERVICE"]}}));
    assert_eq!(
        caps(&s),
        BTreeSet::from(["CAP_NET_BIND_SERVICE".to_string()])
    );
    let s = build(json!({"HostConfig": {"CapDrop": ["ALL"]}}));
    assert!(caps(&s).is_empty());
}

#[test]
fn unknown_capabilities_are_refused_naming_the_field() {
    assert_eq!(
        err(json!({"HostConfig": {"CapAdd": ["NET_ADMIN", "SYS_MAGIC"]}})),
        "HostConfig.CapAdd[1]: unknown capability: \"SYS_MAGIC\""
    );
    assert!(err(json!({"HostConfig": {"CapDrop": ["nope"]}})).starts_with("HostConfig.CapDrop[0]"));
}

#[test]
fn seccomp_follows_the_capabilities() {
    let s = build(json!({"HostConfig": {"CapAdd": ["SYS_ADMIN"]}}));
    assert!(seccomp_allows(&s, "mount"));
    let s = build(json!({}));
    assert!(!seccomp_allows(&s, "mount"));
    let s = build(json!({"HostConfig": {"CapAdd": ["SYS_PTRACE"]}}));
    assert!(seccomp_allows(&s, "ptrace") && seccomp_allows(&s, "kcmp"));
}

#[test]
fn security_opts() {
    let s = build(json!({"HostConfig": {"SecurityOpt": ["seccomp=unconfined"]}}));
    assert!(linux(&s).seccomp().is_none());
    let s =
        build(json!({"HostConfig": {"SecurityOpt": ["seccomp:unconfined", "no-new-privileges"]}}));
    assert!(linux(&s).seccomp().is_none());
    assert_eq!(process(&s).no_new_privileges(), Some(true));
    for opt in ["no-new-privileges=true", "no-new-privileges:true"] {
        let s = build(json!({"HostConfig": {"SecurityOpt": [opt]}}));
        assert_eq!(process(&s).no_new_privileges(), Some(true), "{opt}");
    }
    let s = build(json!({"HostConfig": {"SecurityOpt": ["no-new-privileges=false"]}}));
    assert_eq!(process(&s).no_new_privileges(), Some(false));

    // A profile's JSON, as the CLI sends it.
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]});
    let s = build(json!({"HostConfig": {"SecurityOpt": [format!("seccomp={profile}")]}}));
    let sc = linux(&s).seccomp().as_ref().unwrap();
    assert_eq!(
        serde_json::to_value(sc.default_action()).unwrap(),
        "SCMP_ACT_ALLOW"
    );
    assert_eq!(sc.syscalls().as_ref().unwrap()[0].names(), &["chmod"]);

    let bad = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_PERMIT"}]});
    let e =
        err(json!({"HostConfig": {"SecurityOpt": ["label=disable", format!("seccomp={bad}")]}}));
    assert!(
        e.starts_with(
            "HostConfig.SecurityOpt[1]: seccomp profile: syscalls[0].action: unknown variant"
        ),
        "{e}"
    );
    assert!(
        err(json!({"HostConfig": {"SecurityOpt": ["seccomp=/etc/x.json"]}}))
            .starts_with("HostConfig.SecurityOpt[0]: seccomp takes")
    );
    assert!(
        err(json!({"HostConfig": {"SecurityOpt": ["apparmor=docker-default"]}}))
            .starts_with("HostConfig.SecurityOpt[0]: apparmor is not supported yet")
    );
    assert!(
        err(json!({"HostConfig": {"SecurityOpt": ["bogus"]}}))
            .starts_with("HostConfig.SecurityOpt[0]: invalid --security-opt")
    );
    assert!(
        err(json!({"HostConfig": {"SecurityOpt": ["no-new-privileges=maybe"]}})).contains("maybe")
    );
    // systempaths=unconfined: no masks.
    let s = build(json!({"HostConfig": {"SecurityOpt": ["systempaths=unconfined"]}}));
    assert!(linux(&s).masked_paths().as_ref().unwrap().is_empty());
    assert!(linux(&s).readonly_paths().as_ref().unwrap().is_empty());
}

#[test]
fn privileged_gets_everything() {
    let s = build(json!({"HostConfig": {"Privileged": true, "CapDrop": ["ALL"]}}));
    assert_eq!(caps(&s).len(), 41);
    let l = linux(&s);
    assert!(l.masked_paths().as_ref().unwrap().is_empty());
    assert!(l.readonly_paths().as_ref().unwrap().is_empty());
    assert!(l.seccomp().is_none());
    let rules = l.resources().as_ref().unwrap().devices().clone().unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow() && rules[0].typ() == Some(LinuxDeviceType::A));
    let devs = l.devices().clone().unwrap();
    let null = devs
        .iter()
        .find(|d| d.path() == Path::new("/dev/null"))
        .unwrap();
    assert_eq!((null.major(), null.minor()), (1, 3));
    assert!(!devs.iter().any(|d| d.path().starts_with("/dev/pts")));
    assert!(opts(mount_at(&s, "/sys").unwrap()).contains(&"rw".to_string()));
    assert!(opts(mount_at(&s, "/sys/fs/cgroup").unwrap()).contains(&"rw".to_string()));
    // Seccomp stays off even with a profile.
    let s = build(json!({"HostConfig": {"Privileged": true,
        "SecurityOpt": ["seccomp={\"defaultAction\":\"SCMP_ACT_ERRNO\"}"]}}));
    assert!(linux(&s).seccomp().is_none());
}

#[test]
fn masked_and_readonly_paths_can_be_replaced() {
    let s = build(json!({"HostConfig": {"MaskedPaths": ["/proc/x"], "ReadonlyPaths": []}}));
    assert_eq!(linux(&s).masked_paths().as_deref().unwrap(), ["/proc/x"]);
    assert!(linux(&s).readonly_paths().as_ref().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// User, groups, environment, command, working dir
// ---------------------------------------------------------------------------------------

fn user_of(v: Value) -> (u32, u32, Vec<u32>, String) {
    let s = build(v);
    let u = process(&s).user();
    let home = env(&s)
        .into_iter()
        .find_map(|e| e.strip_prefix("HOME=").map(str::to_string))
        .unwrap();
    (
        u.uid(),
        u.gid(),
        u.additional_gids().clone().unwrap_or_default(),
        home,
    )
}

#[test]
fn users_resolve_like_runc() {
    assert_eq!(user_of(json!({})), (0, 0, vec![10], "/root".into()));
    assert_eq!(
        user_of(json!({"User": "user"})),
        (1000, 1000, vec![10, 29], "/home/user".into())
    );
    assert_eq!(
        user_of(json!({"User": "1000"})),
        (1000, 1000, vec![10, 29], "/home/user".into())
    );
    // A named group replaces the primary one and drops the supplementary ones.
    assert_eq!(
        user_of(json!({"User": "user:staff"})),
        (1000, 50, vec![], "/home/user".into())
    );
    assert_eq!(
        user_of(json!({"User": "user:0"})),
        (1000, 0, vec![], "/home/user".into())
    );
    // Numeric ids need no entry.
    assert_eq!(
        user_of(json!({"User": "4242"})),
        (4242, 0, vec![], "/".into())
    );
    assert_eq!(
        user_of(json!({"User": "4242:4343"})),
        (4242, 4343, vec![], "/".into())
    );
    // --group-add, by name or number, after the user's own.
    assert_eq!(
        user_of(json!({"User": "daemon", "HostConfig": {"GroupAdd": ["audio", "777", "audio"]}})),
        (2, 2, vec![29, 777], "/usr/sbin".into())
    );
}

#[test]
fn unknown_users_and_groups_are_errors() {
    assert_eq!(
        err(json!({"User": "nobody"})),
        "Config.User: unable to find user nobody: no matching entries in passwd file"
    );
    assert_eq!(
        err(json!({"User": "user:nogroup"})),
        "Config.User: unable to find group nogroup: no matching entries in group file"
    );
    assert_eq!(
        err(json!({"HostConfig": {"GroupAdd": ["video"]}})),
        "HostConfig.GroupAdd[0]: unable to find group video: no matching entries in group file"
    );
    assert!(err(json!({"User": "99999999999"})).contains("out of range"));
}

#[test]
fn the_image_user_applies_when_the_request_has_none() {
    let fx = Fixture::new();
    let img = ImageConfig {
        user: "user".to_string(),
        ..image()
    };
    let files = ContainerFiles::default();
    let s = try_build_with(&fx, json!({}), &img, &files, None)
        .unwrap()
        .spec;
    assert_eq!(process(&s).user().uid(), 1000);
    let s = try_build_with(&fx, json!({"User": "root"}), &img, &files, None)
        .unwrap()
        .spec;
    assert_eq!(process(&s).user().uid(), 0);
}

#[test]
fn passwd_links_out_of_the_rootfs_are_not_followed() {
    let fx = Fixture::new();
    let outside = tempfile::Builder::new()
        .prefix("berth-test-outside-")
        .tempdir()
        .unwrap();
    let evil = outside.path().join("passwd");
    std::fs::write(&evil, "evil:x:777:777::/evil:/bin/sh\n").unwrap();
    std::fs::remove_file(fx.rootfs().join("etc/passwd")).unwrap();
    symlink(&evil, fx.rootfs().join("etc/passwd")).unwrap();
    let files = ContainerFiles::default();
    let e = try_build_with(&fx, json!({"User": "evil"}), &image(), &files, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Config.User: unable to find user evil: no matching entries in passwd file"
    );
    // A relative link that climbs out stays inside too; one that stays inside works.
    std::fs::remove_file(fx.rootfs().join("etc/passwd")).unwrap();
    std::fs::write(
        fx.rootfs().join("etc/passwd.real"),
        "app:x:5:5::/app:/bin/sh\n",
    )
    .unwrap();
    symlink(
        "../../../../../../../etc/passwd.real",
        fx.rootfs().join("etc/passwd"),
    )
    .unwrap();
    let s = try_build_with(&fx, json!({"User": "app"}), &image(), &files, None)
        .unwrap()
        .spec;
    assert_eq!(process(&s).user().uid(), 5);
}

#[test]
fn env_merges_image_then_request() {
    let fx = Fixture::new();
    let img = ImageConfig {
        env: vec![
            "PATH=/opt/bin:/bin".into(),
            "A=image".into(),
            "B=image".into(),
            "C=image".into(),
        ],
        ..image()
    };
    let files = ContainerFiles::default();
    let s = try_build_with(
        &fx,
        json!({"Env": ["B=request", "C", "D=new", "HOME=/custom"], "Tty": true}),
        &img,
        &files,
        None,
    )
    .unwrap()
    .spec;
    assert_eq!(
        env(&s),
        [
            "HOSTNAME=0123456789ab",
            "TERM=xterm",
            "PATH=/opt/bin:/bin",
            "A=image",
            "B=request",
            "D=new",
            "HOME=/custom"
        ]
    );
    assert_eq!(process(&s).terminal(), Some(true));
    // The request's PATH counts too.
    let s = build(json!({"Env": ["PATH=/x"]}));
    assert!(
        env(&s).contains(&"PATH=/x".to_string()) && !env(&s).contains(&DEFAULT_PATH.to_string())
    );
    assert_eq!(
        err(json!({"Env": ["A=1", "=oops"]})),
        "Config.Env[1]: invalid environment variable: \"=oops\""
    );
}

#[test]
fn entrypoint_and_cmd_follow_docker() {
    let fx = Fixture::new();
    let img = ImageConfig {
        entrypoint: vec!["/entry".into(), "-x".into()],
        cmd: vec!["serve".into()],
        ..ImageConfig::default()
    };
    let files = ContainerFiles::default();
    let args = |v: Value| -> Result<Vec<String>> {
        try_build_with(&fx, v, &img, &files, None).map(|s| process(&s.spec).args().clone().unwrap())
    };
    assert_eq!(args(json!({})).unwrap(), ["/entry", "-x", "serve"]);
    assert_eq!(
        args(json!({"Cmd": ["run", "fast"]})).unwrap(),
        ["/entry", "-x", "run", "fast"]
    );
    // A new entrypoint drops the image's command.
    assert_eq!(
        args(json!({"Entrypoint": ["/bin/sh"]})).unwrap(),
        ["/bin/sh"]
    );
    assert_eq!(
        args(json!({"Entrypoint": ["/bin/sh"], "Cmd": ["-c", "true"]})).unwrap(),
        ["/bin/sh", "-c", "true"]
    );
    // [""] resets the entrypoint; the image's command does not come back.
    assert_eq!(
        args(json!({"Entrypoint": [""], "Cmd": ["ls"]})).unwrap(),
        ["ls"]
    );
    assert!(args(json!({"Entrypoint": [""]})).is_err());
    // [] drops the image's entrypoint but keeps its command.
    assert_eq!(args(json!({"Entrypoint": []})).unwrap(), ["serve"]);
    // An empty Cmd is "unset".
    assert_eq!(args(json!({"Cmd": []})).unwrap(), ["/entry", "-x", "serve"]);

    let empty = ImageConfig::default();
    let e = try_build_with(&fx, json!({}), &empty, &files, None).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Config.Cmd: no command specified"),
        "{e}"
    );
}

#[test]
fn working_dir_is_absolute_and_clean() {
    let s = build(json!({"WorkingDir": "/srv/../app/./x/"}));
    assert_eq!(process(&s).cwd(), Path::new("/app/x"));
    assert!(
        err(json!({"WorkingDir": "app"}))
            .starts_with("Config.WorkingDir: the working directory \"app\" is invalid")
    );
    let fx = Fixture::new();
    let img = ImageConfig {
        working_dir: "/data".into(),
        ..image()
    };
    let s = try_build_with(&fx, json!({}), &img, &ContainerFiles::default(), None).unwrap();
    assert_eq!(process(&s.spec).cwd(), Path::new("/data"));
}

#[test]
fn init_prepends_the_init_binary() {
    let fx = Fixture::new();
    let files = ContainerFiles::default();
    let init = Path::new("/usr/libexec/berth/init");
    let s = try_build_with(
        &fx,
        json!({"Cmd": ["top"], "HostConfig": {"Init": true}}),
        &image(),
        &files,
        Some(init),
    )
    .unwrap()
    .spec;
    assert_eq!(
        process(&s).args().as_deref().unwrap(),
        [INIT_PATH, "--", "top"]
    );
    let m = mount_at(&s, INIT_PATH).unwrap();
    assert_eq!(m.source().as_deref(), Some(init));
    assert!(opts(m).contains(&"ro".to_string()));
    // Without --init the binary is not mounted.
    let s = try_build_with(&fx, json!({}), &image(), &files, Some(init))
        .unwrap()
        .spec;
    assert!(mount_at(&s, INIT_PATH).is_none());
    let e = try_build_with(
        &fx,
        json!({"HostConfig": {"Init": true}}),
        &image(),
        &files,
        None,
    )
    .unwrap_err();
    assert!(matches!(e, SpecError::System(_)) && e.to_string().starts_with("HostConfig.Init:"));
}

#[test]
fn hostname_and_domainname() {
    let s = build(json!({"Hostname": "web", "Domainname": "example.org"}));
    assert_eq!(s.hostname().as_deref(), Some("web"));
    assert_eq!(s.domainname().as_deref(), Some("example.org"));
    assert!(env(&s).contains(&"HOSTNAME=web".to_string()));
    assert_eq!(
        err(json!({"Hostname": "bad host"})),
        "Config.Hostname: invalid hostname format: bad host"
    );
    // Host network: the host's name; host UTS: none at all.
    let s = build(json!({"HostConfig": {"NetworkMode": "host"}}));
    assert_eq!(s.hostname().as_deref(), Some("the-host"));
    let s = build(json!({"HostConfig": {"UTSMode": "host"}}));
    assert!(s.hostname().is_none() && !has_ns(&s, LinuxNamespaceType::Uts));
    assert!(
        err(json!({"Hostname": "x", "HostConfig": {"UTSMode": "host"}}))
            .contains("conflicting options")
    );
}

// ---------------------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------------------

#[test]
fn network_modes() {
    let net = |v: Value| {
        namespaces(&build(v))
            .into_iter()
            .find(|(t, _)| *t == LinuxNamespaceType::Network)
    };
    assert_eq!(
        net(json!({"HostConfig": {"NetworkMode": "none"}})),
        Some((LinuxNamespaceType::Network, None))
    );
    assert_eq!(
        net(json!({"NetworkDisabled": true})),
        Some((LinuxNamespaceType::Network, None))
    );
    assert_eq!(net(json!({"HostConfig": {"NetworkMode": "host"}})), None);
    assert_eq!(
        net(json!({"HostConfig": {"NetworkMode": "container:web"}})),
        Some((
            LinuxNamespaceType::Network,
            Some(PathBuf::from("/proc/4242/ns/Network"))
        ))
    );
    let e = try_build(json!({"HostConfig": {"NetworkMode": "container:db"}})).unwrap_err();
    assert!(matches!(e, SpecError::NotFound(_)));
    assert_eq!(
        e.to_string(),
        "HostConfig.NetworkMode: no such container (or it is not running): db"
    );

    // A namespace the network layer prepared is joined.
    let fx = Fixture::new();
    let create = body(json!({"HostConfig": {"NetworkMode": "bridge"}}));
    let (h, img, files) = (host(), image(), ContainerFiles::default());
    let s = build_spec(&SpecRequest {
        id: ID,
        create: &create,
        image: &img,
        rootfs: fx.rootfs(),
        files: &files,
        init_binary: None,
        network_namespace: Some(Path::new("/run/berth/netns/x")),
        join: &joiner,
        host: &h,
    })
    .unwrap()
    .spec;
    assert!(namespaces(&s).contains(&(
        LinuxNamespaceType::Network,
        Some(PathBuf::from("/run/berth/netns/x"))
    )));
}

#[test]
fn ipc_pid_and_cgroup_modes() {
    let s = build(json!({"HostConfig": {"IpcMode": "host"}}));
    assert!(!has_ns(&s, LinuxNamespaceType::Ipc));
    let shm = mount_at(&s, "/dev/shm").unwrap();
    assert_eq!(
        (shm.typ().as_deref(), shm.source().as_deref()),
        (Some("bind"), Some(Path::new("/dev/shm")))
    );

    let s = build(json!({"HostConfig": {"IpcMode": "none"}}));
    assert!(has_ns(&s, LinuxNamespaceType::Ipc) && mount_at(&s, "/dev/shm").is_none());
    let s = build(json!({"HostConfig": {"IpcMode": "shareable"}}));
    assert!(has_ns(&s, LinuxNamespaceType::Ipc) && mount_at(&s, "/dev/shm").is_some());

    let s = build(json!({"HostConfig": {"IpcMode": "container:web"}}));
    assert!(namespaces(&s).contains(&(
        LinuxNamespaceType::Ipc,
        Some(PathBuf::from("/proc/4242/ns/Ipc"))
    )));
    assert_eq!(
        mount_at(&s, "/dev/shm").unwrap().source().as_deref(),
        Some(Path::new("/proc/4242/ns/IpcShm"))
    );
    assert!(
        err(json!({"HostConfig": {"IpcMode": "weird"}}))
            .starts_with("HostConfig.IpcMode: invalid IPC mode")
    );

    let s = build(json!({"HostConfig": {"PidMode": "host"}}));
    assert!(!has_ns(&s, LinuxNamespaceType::Pid));
    let s = build(json!({"HostConfig": {"PidMode": "container:web"}}));
    assert!(namespaces(&s).contains(&(
        LinuxNamespaceType::Pid,
        Some(PathBuf::from("/proc/4242/ns/Pid"))
    )));

    let s = build(json!({"HostConfig": {"CgroupnsMode": "private"}}));
    assert!(has_ns(&s, LinuxNamespaceType::Cgroup));
    let s = build(json!({"HostConfig": {"CgroupnsMode": "host"}}));
    assert!(!has_ns(&s, LinuxNamespaceType::Cgroup));
}

// ---------------------------------------------------------------------------------------
// Mounts
// ---------------------------------------------------------------------------------------

#[test]
fn binds() {
    let src = tempfile::Builder::new()
        .prefix("berth-test-bind-")
        .tempdir()
        .unwrap();
    let a = src.path().display().to_string();
    let s = build(json!({"HostConfig": {"Binds": [
        format!("{a}:/data:ro"),
        format!("{a}:/data/sub:rw,rshared"),
        format!("{a}/:/other/"),
    ]}}));
    let m = mount_at(&s, "/data").unwrap();
    assert_eq!(m.typ().as_deref(), Some("bind"));
    assert_eq!(m.source().as_deref(), Some(src.path()));
    assert_eq!(opts(m), ["rbind", "rprivate", "ro"]);
    assert_eq!(
        opts(mount_at(&s, "/data/sub").unwrap()),
        ["rbind", "rshared", "rw"]
    );
    assert_eq!(
        opts(mount_at(&s, "/other").unwrap()),
        ["rbind", "rprivate", "rw"]
    );

    assert_eq!(
        err(json!({"HostConfig": {"Binds": ["myvol:/data"]}})),
        "HostConfig.Binds[0]: named volumes are not supported yet: \"myvol\""
    );
    assert!(
        err(json!({"HostConfig": {"Binds": ["/data"]}}))
            .starts_with("HostConfig.Binds[0]: anonymous volumes")
    );
    assert!(
        err(json!({"HostConfig": {"Binds": [format!("{a}:/x:rx")]}}))
            .starts_with("HostConfig.Binds[0]: invalid mode")
    );
    assert!(
        err(json!({"HostConfig": {"Binds": [format!("{a}:/x:ro,rw")]}}))
            .starts_with("HostConfig.Binds[0]: invalid mode")
    );
    assert!(
        err(json!({"HostConfig": {"Binds": [format!("{a}:relative")]}}))
            .contains("must be an absolute path")
    );
    assert!(err(json!({"HostConfig": {"Binds": [format!("{a}:/")]}})).contains("cannot be \"/\""));
    assert_eq!(
        err(json!({"HostConfig": {"Binds": [format!("{a}:/x"), format!("{a}:/x/")]}})),
        "HostConfig.Binds[1]: duplicate mount point: /x"
    );
}

#[test]
fn missing_bind_sources_are_created_only_on_success() {
    let parent = tempfile::Builder::new()
        .prefix("berth-test-bind-")
        .tempdir()
        .unwrap();
    let missing = parent.path().join("made/by/bind");
    let v = |extra: Value| {
        let mut hc = json!({"Binds": [format!("{}:/data", missing.display())]});
        hc.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"HostConfig": hc})
    };
    // A later error: nothing created.
    let e = err(v(json!({"Sysctls": {"kernel.panic": "1"}})));
    assert!(e.starts_with("HostConfig.Sysctls"), "{e}");
    assert!(!parent.path().join("made").exists());
    build(v(json!({})));
    assert!(missing.is_dir());
}

#[test]
fn mounts_api() {
    let src = tempfile::Builder::new()
        .prefix("berth-test-bind-")
        .tempdir()
        .unwrap();
    let a = src.path().display().to_string();
    let s = build(json!({"HostConfig": {"Mounts": [
        {"Type": "bind", "Source": a, "Target": "/ro", "ReadOnly": true},
        {"Type": "bind", "Source": a, "Target": "/ro1", "ReadOnly": true,
         "BindOptions": {"ReadOnlyNonRecursive": true, "Propagation": "rslave"}},
        {"Type": "bind", "Source": a, "Target": "/nr", "BindOptions": {"NonRecursive": true}},
        {"Type": "tmpfs", "Target": "/scratch",
         "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 448, "Options": [["exec"], ["uid", "1000"]]}},
    ]}}));
    assert_eq!(
        opts(mount_at(&s, "/ro").unwrap()),
        ["rbind", "rprivate", "ro", "rro"]
    );
    assert_eq!(
        opts(mount_at(&s, "/ro1").unwrap()),
        ["rbind", "rslave", "ro"]
    );
    assert_eq!(
        opts(mount_at(&s, "/nr").unwrap()),
        ["bind", "rprivate", "rw"]
    );
    let t = mount_at(&s, "/scratch").unwrap();
    assert_eq!(t.typ().as_deref(), Some("tmpfs"));
    assert_eq!(
        opts(t),
        [
            "nosuid",
            "nodev",
            "rprivate",
            "size=1048576",
            "mode=700",
            "exec",
            "uid=1000"
        ]
    );

    assert_eq!(
        err(json!({"HostConfig": {"Mounts": [{"Type": "volume", "Source": "v", "Target": "/v"}]}})),
        "HostConfig.Mounts[0].Type: volume mounts are not supported yet"
    );
    assert_eq!(
        err(
            json!({"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/no/such/dir/berth", "Target": "/v"}]}})
        ),
        "HostConfig.Mounts[0].Source: bind source path does not exist: /no/such/dir/berth"
    );
    assert!(
        err(json!({"HostConfig": {"Mounts": [{"Type": "tmpfs", "Source": "x", "Target": "/v"}]}}))
            .starts_with("HostConfig.Mounts[0].Source")
    );
    assert!(
        err(json!({"HostConfig": {"Mounts": [{"Type": "bind", "Source": a, "Target": "v"}]}}))
            .starts_with("HostConfig.Mounts[0].Target")
    );
}

#[test]
fn tmpfs_option_merging_and_shm_size() {
    let s = build(
        json!({"HostConfig": {"Tmpfs": {"/run": "", "/cache": "exec,size=10m,mode=1777,size=20m"}}}),
    );
    assert_eq!(
        opts(mount_at(&s, "/run").unwrap()),
        ["noexec", "nosuid", "nodev", "rprivate"]
    );
    assert_eq!(
        opts(mount_at(&s, "/cache").unwrap()),
        [
            "nosuid",
            "nodev",
            "rprivate",
            "exec",
            "mode=1777",
            "size=20m"
        ]
    );
    // A user mount at /dev/shm replaces the default one.
    let s = build(json!({"HostConfig": {"Tmpfs": {"/dev/shm": "size=1m"}}}));
    let shms: Vec<_> = s
        .mounts()
        .iter()
        .flatten()
        .filter(|m| m.destination() == Path::new("/dev/shm"))
        .collect();
    assert_eq!(shms.len(), 1);
    assert!(opts(shms[0]).contains(&"size=1m".to_string()));

    let s = build(json!({"HostConfig": {"ShmSize": 1048576}}));
    assert!(opts(mount_at(&s, "/dev/shm").unwrap()).contains(&"size=1048576".to_string()));
    assert!(err(json!({"HostConfig": {"ShmSize": -1}})).starts_with("HostConfig.ShmSize"));
}

#[test]
fn container_files_and_read_only_rootfs() {
    let fx = Fixture::new();
    let files = ContainerFiles {
        hostname: Some("/var/lib/berth/c/hostname".into()),
        hosts: Some("/var/lib/berth/c/hosts".into()),
        resolv_conf: Some("/var/lib/berth/c/resolv.conf".into()),
    };
    let s = try_build_with(&fx, json!({}), &image(), &files, None)
        .unwrap()
        .spec;
    for (dest, src) in [
        ("/etc/hostname", "/var/lib/berth/c/hostname"),
        ("/etc/hosts", "/var/lib/berth/c/hosts"),
        ("/etc/resolv.conf", "/var/lib/berth/c/resolv.conf"),
    ] {
        let m = mount_at(&s, dest).unwrap();
        assert_eq!(m.source().as_deref(), Some(Path::new(src)));
        assert_eq!(opts(m), ["rbind", "rprivate"]);
    }
    let s = try_build_with(
        &fx,
        json!({"HostConfig": {"ReadonlyRootfs": true}}),
        &image(),
        &files,
        None,
    )
    .unwrap()
    .spec;
    assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
    assert!(opts(mount_at(&s, "/etc/hosts").unwrap()).contains(&"ro".to_string()));
}

// ---------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------

#[test]
fn devices_and_device_cgroup_rules() {
    let s = build(json!({"HostConfig": {
        "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rw"}],
        "DeviceCgroupRules": ["c 42:* rmw", "b *:* m"]}}));
    let l = linux(&s);
    let d = &l.devices().as_ref().unwrap()[0];
    assert_eq!(
        (d.path(), d.typ(), d.major(), d.minor()),
        (&PathBuf::from("/dev/mynull"), LinuxDeviceType::C, 1, 3)
    );
    let rules = l.resources().as_ref().unwrap().devices().clone().unwrap();
    let last3: Vec<_> = rules[rules.len() - 3..]
        .iter()
        .map(|r| (r.typ(), r.major(), r.minor(), r.access().clone().unwrap()))
        .collect();
    assert_eq!(
        last3,
        [
            (Some(LinuxDeviceType::C), Some(1), Some(3), "rw".to_string()),
            (Some(LinuxDeviceType::C), Some(42), None, "rmw".to_string()),
            (Some(LinuxDeviceType::B), None, None, "m".to_string()),
        ]
    );
    assert!(
        err(json!({"HostConfig": {"Devices": [{"PathOnHost": "/etc/passwd"}]}}))
            .ends_with("/etc/passwd is not a device node")
    );
    assert!(err(json!({"HostConfig": {"Devices": [{"PathOnHost": "/dev/null", "CgroupPermissions": "rwx"}]}})).starts_with("HostConfig.Devices[0].CgroupPermissions"));
    assert!(
        err(json!({"HostConfig": {"Devices": [{"PathOnHost": "/dev/no-such-device"}]}}))
            .starts_with("HostConfig.Devices[0].PathOnHost")
    );
    for bad in ["c 1:3", "x 1:3 rwm", "c 1-3 rwm", "c 1:3 rwmm", "c a:3 r"] {
        assert!(
            err(json!({"HostConfig": {"DeviceCgroupRules": [bad]}}))
                .starts_with("HostConfig.DeviceCgroupRules[0]: invalid device cgroup rule"),
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------

fn res(v: Value) -> oci_spec::runtime::LinuxResources {
    linux(&build(json!({ "HostConfig": v })))
        .resources()
        .clone()
        .unwrap()
}

fn res_err(v: Value) -> String {
    err(json!({ "HostConfig": v }))
}

#[test]
fn memory_limits() {
    let m = res(json!({"Memory": 64 << 20})).memory().unwrap();
    assert_eq!((m.limit(), m.swap()), (Some(64 << 20), Some(128 << 20)));
    let m = res(json!({"Memory": 64 << 20, "MemorySwap": -1}))
        .memory()
        .unwrap();
    assert_eq!(m.swap(), Some(-1));
    let m = res(
        json!({"Memory": 64 << 20, "MemorySwap": 100 << 20, "MemoryReservation": 32 << 20,
                       "MemorySwappiness": 10, "OomKillDisable": true}),
    )
    .memory()
    .unwrap();
    assert_eq!(
        (
            m.swap(),
            m.reservation(),
            m.swappiness(),
            m.disable_oom_killer()
        ),
        (Some(100 << 20), Some(32 << 20), Some(10), Some(true))
    );
    assert_eq!(
        res_err(json!({"Memory": 1024})),
        "HostConfig.Memory: minimum memory limit allowed is 6MB"
    );
    assert!(
        res_err(json!({"MemorySwap": 64 << 20}))
            .starts_with("HostConfig.MemorySwap: you should always set")
    );
    assert!(
        res_err(json!({"Memory": 64 << 20, "MemorySwap": 32 << 20}))
            .starts_with("HostConfig.MemorySwap: minimum memoryswap")
    );
    assert!(
        res_err(json!({"Memory": 16 << 20, "MemoryReservation": 32 << 20}))
            .starts_with("HostConfig.MemoryReservation")
    );
    assert!(res_err(json!({"MemorySwappiness": 101})).starts_with("HostConfig.MemorySwappiness"));
    assert!(res(json!({"MemorySwappiness": -1})).memory().is_none());
}

#[test]
fn cpu_limits() {
    let c = res(json!({"NanoCpus": 1_500_000_000i64}))
        .cpu()
        .clone()
        .unwrap();
    assert_eq!((c.period(), c.quota()), (Some(100_000), Some(150_000)));
    let c = res(
        json!({"CpuShares": 1, "CpuPeriod": 50000, "CpuQuota": 25000,
                       "CpusetCpus": "0-1,3", "CpusetMems": "0"}),
    )
    .cpu()
    .clone()
    .unwrap();
    assert_eq!(
        (
            c.shares(),
            c.period(),
            c.quota(),
            c.cpus().as_deref(),
            c.mems().as_deref()
        ),
        (Some(2), Some(50000), Some(25000), Some("0-1,3"), Some("0"))
    );
    assert_eq!(
        res(json!({"CpuShares": 1_000_000}))
            .cpu()
            .clone()
            .unwrap()
            .shares(),
        Some(262_144)
    );
    assert!(
        res_err(json!({"NanoCpus": 1_000_000_000, "CpuPeriod": 100000}))
            .starts_with("HostConfig.NanoCpus: conflicting options")
    );
    assert!(
        res_err(json!({"NanoCpus": 5_000_000_000i64}))
            .starts_with("HostConfig.NanoCpus: range of CPUs is from 0.01 to 4.00")
    );
    assert!(res_err(json!({"CpuPeriod": 10})).starts_with("HostConfig.CpuPeriod"));
    assert!(res_err(json!({"CpuQuota": 10})).starts_with("HostConfig.CpuQuota"));
    assert!(
        res_err(json!({"CpusetCpus": "0-"})).starts_with("HostConfig.CpusetCpus: invalid value")
    );
    assert!(res_err(json!({"CpusetCpus": "3-1"})).starts_with("HostConfig.CpusetCpus"));
}

#[test]
fn pids_and_blkio() {
    assert_eq!(res(json!({"PidsLimit": 100})).pids().unwrap().limit(), 100);
    assert_eq!(res(json!({"PidsLimit": 0})).pids().unwrap().limit(), -1);
    assert_eq!(res(json!({"PidsLimit": -1})).pids().unwrap().limit(), -1);
    assert_eq!(
        res(json!({"BlkioWeight": 300}))
            .block_io()
            .clone()
            .unwrap()
            .weight(),
        Some(300)
    );
    assert!(
        res_err(json!({"BlkioWeight": 5})).starts_with("HostConfig.BlkioWeight: 5 is out of range")
    );
}

#[test]
fn ulimits_become_rlimits() {
    let s = build(json!({"HostConfig": {"Ulimits": [
        {"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "core", "Soft": -1, "Hard": -1}]}}));
    let r: Vec<_> = process(&s)
        .rlimits()
        .clone()
        .unwrap()
        .iter()
        .map(|r| (serde_json::to_value(r.typ()).unwrap(), r.soft(), r.hard()))
        .collect();
    assert_eq!(
        r,
        [
            (json!("RLIMIT_NOFILE"), 1024, 2048),
            (json!("RLIMIT_CORE"), u64::MAX, u64::MAX)
        ]
    );
    assert_eq!(
        err(json!({"HostConfig": {"Ulimits": [{"Name": "nofiles", "Soft": 1, "Hard": 1}]}})),
        "HostConfig.Ulimits[0]: invalid ulimit type: \"nofiles\""
    );
    assert!(
        err(json!({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 2, "Hard": 1}]}}))
            .contains("soft limit must be less than or equal to hard limit")
    );
}

#[test]
fn oom_score_adj() {
    let s = build(json!({"HostConfig": {"OomScoreAdj": 500}}));
    assert_eq!(process(&s).oom_score_adj(), Some(500));
    assert!(
        err(json!({"HostConfig": {"OomScoreAdj": 1001}}))
            .starts_with("HostConfig.OomScoreAdj: invalid value 1001")
    );
}

#[test]
fn sysctls_must_be_namespaced_and_in_our_namespace() {
    let s = build(
        json!({"HostConfig": {"Sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20"}}}),
    );
    assert_eq!(linux(&s).sysctl().as_ref().unwrap().len(), 3);
    assert_eq!(
        err(json!({"HostConfig": {"Sysctls": {"kernel.panic": "1"}}})),
        "HostConfig.Sysctls[\"kernel.panic\"]: sysctl kernel.panic is not namespaced and cannot be set in a container"
    );
    assert!(
        err(
            json!({"HostConfig": {"NetworkMode": "host", "Sysctls": {"net.ipv4.ip_forward": "1"}}})
        )
        .contains("is not allowed")
    );
    assert!(
        err(json!({"HostConfig": {"IpcMode": "host", "Sysctls": {"kernel.sem": "1 2 3 4"}}}))
            .contains("is not allowed")
    );
    assert!(
        err(json!({"HostConfig": {"Sysctls": {"net/../../x": "1"}}}))
            .contains("invalid sysctl name")
    );
}

#[test]
fn cgroup_path_and_parent() {
    let s = build(json!({"HostConfig": {"CgroupParent": "/mygroup/"}}));
    assert_eq!(
        linux(&s).cgroups_path().as_deref(),
        Some(Path::new(&format!("/mygroup/{ID}")))
    );
    let s = build(json!({"HostConfig": {"CgroupParent": "rel"}}));
    assert_eq!(
        linux(&s).cgroups_path().as_deref(),
        Some(Path::new(&format!("/rel/{ID}")))
    );
    assert!(
        err(json!({"HostConfig": {"CgroupParent": "/a/../../b"}}))
            .starts_with("HostConfig.CgroupParent")
    );
}

// ---------------------------------------------------------------------------------------
// Unsupported and engine-level fields
// ---------------------------------------------------------------------------------------

#[test]
fn unsupported_fields_are_refused_by_name() {
    let cases = [
        (
            json!({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}}),
            "HostConfig.PortBindings: not supported yet",
        ),
        (
            json!({"HostConfig": {"PublishAllPorts": true}}),
            "HostConfig.PublishAllPorts: not supported yet",
        ),
        (
            json!({"HostConfig": {"Links": ["db:db"]}}),
            "HostConfig.Links: not supported yet",
        ),
        (
            json!({"HostConfig": {"VolumesFrom": ["data"]}}),
            "HostConfig.VolumesFrom: not supported yet",
        ),
        (
            json!({"HostConfig": {"StorageOpt": {"size": "1G"}}}),
            "HostConfig.StorageOpt: not supported yet",
        ),
        (
            json!({"HostConfig": {"DeviceRequests": [{"Driver": "nvidia", "Count": -1}]}}),
            "HostConfig.DeviceRequests: not supported yet",
        ),
        (
            json!({"HostConfig": {"BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1}]}}),
            "HostConfig.BlkioDeviceReadBps: not supported yet",
        ),
        (
            json!({"HostConfig": {"CpuRealtimeRuntime": 1000}}),
            "HostConfig.CpuRealtimeRuntime: not supported yet",
        ),
        (
            json!({"HostConfig": {"CpuCount": 2}}),
            "HostConfig.CpuCount: not supported yet",
        ),
        (
            json!({"HostConfig": {"Cgroup": "container:x"}}),
            "HostConfig.Cgroup: not supported yet",
        ),
        (
            json!({"Volumes": {"/data": {}}}),
            "Config.Volumes: anonymous volumes are not supported yet",
        ),
        (
            json!({"HostConfig": {"VolumeDriver": "nfs"}}),
            "HostConfig.VolumeDriver: volume driver \"nfs\" is not supported yet",
        ),
        (
            json!({"HostConfig": {"UsernsMode": "private"}}),
            "HostConfig.UsernsMode: \"private\" is not supported yet (only \"host\")",
        ),
        (
            json!({"HostConfig": {"Runtime": "kata"}}),
            "HostConfig.Runtime: unknown runtime \"kata\" (berth has its own only)",
        ),
        (
            json!({"HostConfig": {"Isolation": "hyperv"}}),
            "HostConfig.Isolation: hyperv is not supported on Linux",
        ),
    ];
    for (v, want) in cases {
        let e = try_build(v.clone()).unwrap_err();
        assert!(matches!(e, SpecError::InvalidParameter(_)), "{v}");
        assert_eq!(e.to_string(), want, "{v}");
        let api: berth_types::Error = e.into();
        assert_eq!(api.status(), 400);
    }
}

#[test]
fn default_valued_and_engine_fields_are_accepted() {
    let s = build(json!({
        "Image": "busybox", "Labels": {"a": "b"}, "AttachStdout": true, "OpenStdin": true,
        "StopTimeout": 5, "ExposedPorts": {"80/tcp": {}}, "Shell": ["/bin/sh", "-c"],
        "Healthcheck": {"Test": ["NONE"]}, "Volumes": {},
        "NetworkingConfig": {"EndpointsConfig": {}},
        "HostConfig": {"PortBindings": {}, "PublishAllPorts": false, "Links": [],
            "RestartPolicy": {"Name": "always"}, "AutoRemove": false,
            "LogConfig": {"Type": "json-file", "Config": {}}, "Dns": ["1.1.1.1"],
            "ExtraHosts": ["a:1.2.3.4"], "Runtime": "runc", "Isolation": "default",
            "Annotations": {"org.example": "x"}, "VolumeDriver": "", "CpuCount": 0,
            "ConsoleSize": [0, 0]}
    }));
    assert_eq!(s.annotations().as_ref().unwrap()["org.example"], "x");
}

#[test]
fn console_size_with_a_tty() {
    let s = build(json!({"Tty": true, "HostConfig": {"ConsoleSize": [40, 120]}}));
    let b = process(&s).console_size().unwrap();
    assert_eq!((b.height(), b.width()), (40, 120));
    assert!(
        err(json!({"Tty": true, "HostConfig": {"ConsoleSize": [40]}}))
            .starts_with("HostConfig.ConsoleSize")
    );
}

#[test]
fn errors_map_to_api_kinds() {
    let e: berth_types::Error = SpecError::NotFound("x".into()).into();
    assert_eq!(e.status(), 404);
    let e: berth_types::Error = SpecError::System("x".into()).into();
    assert_eq!(e.status(), 500);
}

#[test]
fn host_detection_reads_this_host() {
    let h = Host::detect().unwrap();
    assert!(h.last_cap >= 37 && h.cpus >= 1);
    assert_eq!(Some(h.arch), crate::seccomp_profile::HostArch::native());
}
