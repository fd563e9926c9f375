//! The container's process: environment, cwd, identity, umask, rlimits, capabilities,
//! no_new_privs, oom_score_adj, seccomp, sysctl, and fds passed with --preserve-fds.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

use serde_json::json;
use support::*;

/// The value of a `/proc/self/status` field in `text`.
fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
}

/// Whether the test process (and so the runtime) has a capability in its effective set.
fn we_have_cap(n: u32) -> bool {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = u64::from_str_radix(field(&s, "CapEff"), 16).unwrap();
    eff & (1 << n) != 0
}

const CAP_CHOWN: u32 = 0;
const CAP_SYS_RESOURCE: u32 = 24;

fn set_caps(c: &mut Ctr, caps: &[&str]) {
    let v = json!(caps);
    c.spec["process"]["capabilities"] = json!({"bounding": v, "effective": v, "permitted": v});
}

#[test]
fn environment_and_home() {
    let mut c = Ctr::new("env", &["env"]);
    c.spec["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz", "EMPTY="]);
    let o = c.run().ok();
    let mut vars: Vec<&str> = o.stdout.lines().collect();
    vars.sort();
    assert_eq!(
        vars,
        ["EMPTY=", "FOO=bar baz", "HOME=/root", "PATH=/bin"],
        "HOME comes from /etc/passwd"
    );

    let mut c = Ctr::new("envuser", &["sh", "-c", "echo $HOME"]);
    c.spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    assert_eq!(c.run().ok().stdout, "/home/user\n");

    let mut c = Ctr::new("envhome", &["sh", "-c", "echo $HOME"]);
    c.spec["process"]["env"] = json!(["HOME=/elsewhere"]);
    assert_eq!(c.run().ok().stdout, "/elsewhere\n", "an explicit HOME wins");
}

#[test]
fn program_is_found_in_path_or_fails_clearly() {
    let mut c = Ctr::new("path", &["no-such-program"]);
    c.run()
        .fails_with(&["no-such-program", "executable file not found in $PATH"]);
    assert_nothing_left(&c);

    let mut c = Ctr::new("path2", &["/bin/no-such-program"]);
    c.create_with(&[]).fails_with(&["/bin/no-such-program"]);
    assert_nothing_left(&c);
}

#[test]
fn working_directory() {
    let mut c = Ctr::new("cwd", &["pwd"]);
    c.spec["process"]["cwd"] = json!("/home/user");
    assert_eq!(c.run().ok().stdout, "/home/user\n");

    let mut c = Ctr::new("cwdmissing", &["pwd"]);
    c.spec["process"]["cwd"] = json!("/no/such/dir");
    c.run().fails_with(&["process.cwd", "/no/such/dir"]);
    assert_nothing_left(&c);
}

#[test]
fn user_group_and_additional_groups() {
    let mut c = Ctr::new("ids", &["cat", "/proc/self/status"]);
    c.spec["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 7, 1001]});
    let o = c.run().ok();
    assert_eq!(
        field(&o.stdout, "Uid")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1000"; 4]
    );
    assert_eq!(
        field(&o.stdout, "Gid")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1001"; 4]
    );
    assert_eq!(
        field(&o.stdout, "Groups")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["5", "7", "1001"]
    );
    // A non-root user keeps the bounding set but no effective capabilities.
    assert_eq!(field(&o.stdout, "CapBnd"), "0000000020000420");
    assert_eq!(field(&o.stdout, "CapEff"), "0000000000000000");

    let mut c = Ctr::new("root-groups", &["cat", "/proc/self/status"]);
    let o = c.run().ok();
    assert_eq!(
        field(&o.stdout, "Groups"),
        "",
        "no supplementary groups by default"
    );
}

#[test]
fn umask() {
    let mut c = Ctr::new(
        "umask",
        &["sh", "-c", "umask; touch /tmp/f; stat -c %a /tmp/f"],
    );
    c.add_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    assert_eq!(c.run().ok().stdout, "0022\n644\n", "0022 by default");

    let mut c = Ctr::new(
        "umask2",
        &["sh", "-c", "umask; touch /tmp/f; stat -c %a /tmp/f"],
    );
    c.add_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    c.spec["process"]["user"]["umask"] = json!(0o027);
    assert_eq!(c.run().ok().stdout, "0027\n640\n");
}

#[test]
fn rlimits_are_applied() {
    let mut c = Ctr::new("rlimits", &["cat", "/proc/self/limits"]);
    c.spec["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
    ]);
    let o = c.run().ok();
    let row = |name: &str| -> Vec<String> {
        let l = o.stdout.lines().find(|l| l.starts_with(name)).unwrap();
        l[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("Max open files"), ["100", "200"]);
    assert_eq!(row("Max core file size"), ["0", "0"]);
    assert_eq!(row("Max processes"), ["300", "400"]);
}

#[test]
fn raising_a_hard_rlimit_needs_cap_sys_resource() {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid struct.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut cur) },
        0
    );
    if cur.rlim_max == libc::RLIM_INFINITY {
        eprintln!("SKIP: RLIMIT_MEMLOCK is unlimited here, nothing to raise");
        return;
    }
    let want = cur.rlim_max + 4096;
    let mut c = Ctr::new("rlimitraise", &["true"]);
    c.spec["process"]["rlimits"] = json!([{"type": "RLIMIT_MEMLOCK", "soft": want, "hard": want}]);
    let o = c.run();
    if we_have_cap(CAP_SYS_RESOURCE) {
        o.ok();
    } else {
        o.fails_with(&["process.rlimits[0]", "RLIMIT_MEMLOCK", "CAP_SYS_RESOURCE"]);
        assert_nothing_left(&c);
    }
}

#[test]
fn capabilities_sets() {
    let mut c = Ctr::new("caps", &["cat", "/proc/self/status"]);
    let o = c.run().ok();
    // The default config: AUDIT_WRITE (29), KILL (5) and NET_BIND_SERVICE (10). It lists them
    // as ambient too, but without inheritable the kernel refuses to raise them (runc ignores
    // that, and so does berth-runtime).
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(field(&o.stdout, set), "0000000020000420", "{set}");
    }
    assert_eq!(field(&o.stdout, "CapAmb"), "0000000000000000");

    let mut c = Ctr::new("caps2", &["cat", "/proc/self/status"]);
    c.spec["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID"],
        "effective": ["CAP_CHOWN"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_KILL"],
    });
    let o = c.run().ok();
    assert_eq!(field(&o.stdout, "CapBnd"), "00000000000000a1");
    // Root's effective set after execve is its permitted set (the kernel's rule for uid 0);
    // no_new_privs keeps permitted from growing beyond what the runtime set.
    assert_eq!(field(&o.stdout, "CapEff"), "0000000000000021");
    assert_eq!(field(&o.stdout, "CapPrm"), "0000000000000021");
    assert_eq!(field(&o.stdout, "CapInh"), "0000000000000020");
    assert_eq!(field(&o.stdout, "CapAmb"), "0000000000000000");
}

#[test]
fn ambient_capabilities_reach_a_non_root_program() {
    let mut c = Ctr::new("ambient", &["cat", "/proc/self/status"]);
    c.spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let kill = json!(["CAP_KILL"]);
    c.spec["process"]["capabilities"] = json!({
        "bounding": kill, "effective": kill, "permitted": kill, "inheritable": kill, "ambient": kill,
    });
    let o = c.run().ok();
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
        assert_eq!(field(&o.stdout, set), "0000000000000020", "{set}");
    }

    // Without ambient, a non-root program keeps no capability across exec.
    let mut c = Ctr::new("noambient", &["cat", "/proc/self/status"]);
    c.spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    set_caps(&mut c, &["CAP_KILL"]);
    let o = c.run().ok();
    assert_eq!(field(&o.stdout, "CapEff"), "0000000000000000");
    assert_eq!(field(&o.stdout, "CapBnd"), "0000000000000020");
}

#[test]
fn a_dropped_capability_denies_its_action() {
    assert!(we_have_cap(CAP_CHOWN));
    let script = "touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u /tmp/f";
    let mut c = Ctr::new("nochown", &["sh", "-c", script]);
    c.add_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    set_caps(&mut c, &["CAP_KILL"]);
    let o = c.run();
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("Operation not permitted"), "{o:?}");

    let mut c = Ctr::new("chown", &["sh", "-c", script]);
    c.add_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    set_caps(&mut c, &["CAP_CHOWN"]);
    assert_eq!(c.run().ok().stdout, "1000\n");
}

#[test]
fn without_cap_net_bind_service_low_ports_are_refused() {
    // nc binds a privileged port only with CAP_NET_BIND_SERVICE.
    let script = "nc -l -p 80 -w 1 </dev/null & sleep 0.3; kill %1 2>/dev/null; wait";
    let mut c = Ctr::new("bind80", &["sh", "-c", script]);
    set_caps(&mut c, &["CAP_KILL"]);
    let o = c.run();
    assert!(
        o.stderr.contains("Permission denied") || o.stderr.contains("Operation not permitted"),
        "{o:?}"
    );
}

#[test]
fn no_new_privileges() {
    let mut c = Ctr::new("nnp", &["grep", "NoNewPrivs", "/proc/self/status"]);
    assert_eq!(c.run().ok().stdout.split_whitespace().last(), Some("1"));
    let mut c = Ctr::new("nnp0", &["grep", "NoNewPrivs", "/proc/self/status"]);
    c.spec["process"]["noNewPrivileges"] = json!(false);
    assert_eq!(c.run().ok().stdout.split_whitespace().last(), Some("0"));
}

#[test]
fn oom_score_adj() {
    let mut c = Ctr::new("oomadj", &["cat", "/proc/self/oom_score_adj"]);
    c.spec["process"]["oomScoreAdj"] = json!(500);
    assert_eq!(c.run().ok().stdout, "500\n");

    // Lowering it below the runtime's own value needs CAP_SYS_RESOURCE.
    let mut c = Ctr::new("oomadjlow", &["cat", "/proc/self/oom_score_adj"]);
    c.spec["process"]["oomScoreAdj"] = json!(-500);
    let o = c.run();
    if we_have_cap(CAP_SYS_RESOURCE) {
        assert_eq!(o.ok().stdout, "-500\n");
    } else {
        eprintln!("SKIP: lowering oom_score_adj needs CAP_SYS_RESOURCE, which root lacks here");
        o.fails_with(&["process.oomScoreAdj"]);
        assert_nothing_left(&c);
    }
}

fn seccomp_deny(action: serde_json::Value) -> serde_json::Value {
    let mut rule = json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"});
    for (k, v) in action.as_object().unwrap() {
        rule[k] = v.clone();
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": [rule]})
}

#[test]
fn seccomp_errno() {
    let script = "mkdir /tmp/d && echo made || echo refused; touch /tmp/f && echo touched";
    let mut c = Ctr::new("scerrno", &["sh", "-c", script]);
    c.add_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    c.spec["linux"]["seccomp"] = seccomp_deny(json!({}));
    let o = c.run().ok();
    assert_eq!(o.stdout, "refused\ntouched\n");
    assert!(
        o.stderr.contains("Operation not permitted"),
        "EPERM by default: {o:?}"
    );

    let mut c = Ctr::new("scerrno2", &["sh", "-c", script]);
    c.add_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    c.spec["linux"]["seccomp"] = seccomp_deny(json!({"errnoRet": libc::ENOSPC}));
    let o = c.run().ok();
    assert_eq!(o.stdout, "refused\ntouched\n");
    assert!(
        o.stderr.contains("No space left on device"),
        "errnoRet: {o:?}"
    );
}

#[test]
fn seccomp_kill_process() {
    let mut c = Ctr::new("sckill", &["mkdir", "/tmp/d"]);
    c.add_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    c.spec["linux"]["seccomp"] = seccomp_deny(json!({"action": "SCMP_ACT_KILL_PROCESS"}));
    assert_eq!(c.run().code, 128 + libc::SIGSYS);
}

#[test]
fn seccomp_without_no_new_privileges() {
    // Without no_new_privs the filter is installed while the runtime still has CAP_SYS_ADMIN.
    let mut c = Ctr::new("scnnp", &["sh", "-c", "mkdir /tmp/d || echo refused"]);
    c.add_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    c.spec["process"]["noNewPrivileges"] = json!(false);
    c.spec["linux"]["seccomp"] = seccomp_deny(json!({}));
    assert_eq!(c.run().ok().stdout, "refused\n");
}

#[test]
fn sysctl_in_new_namespaces() {
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shm = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let mut c = Ctr::new(
        "sysctl",
        &[
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/kernel/shmmni",
        ],
    );
    let fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    c.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": fwd, "kernel.shmmni": "1234"});
    assert_eq!(c.run().ok().stdout, format!("{fwd}\n1234\n"));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        host_shm
    );
}

#[test]
fn non_namespaced_sysctl_is_refused_at_create() {
    let mut c = Ctr::new("sysctlbad", &["true"]);
    c.spec["linux"]["sysctl"] = json!({"kernel.panic": "1"});
    c.create_with(&[])
        .fails_with(&["linux.sysctl.kernel.panic", "not namespaced"]);
    assert_nothing_left(&c);

    // A namespaced one, but the container shares the host's network namespace.
    let mut c = Ctr::new("sysctlhostnet", &["true"]);
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    c.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    c.create_with(&[])
        .fails_with(&["linux.sysctl.net.ipv4.ip_forward", "network namespace"]);
    assert_nothing_left(&c);
}

#[test]
fn preserve_fds() {
    let dir = temp_dir();
    let path = dir.path().join("passed");
    std::fs::write(&path, "through fd 3").unwrap();
    for (n, want) in [(1, "through fd 3"), (0, "")] {
        let c = Ctr::new(
            "preserve",
            // No pipeline (the shell holds a pipe fd while setting one up), and not the last
            // command (the shell would exec it, and ls would list its own directory fd).
            &["sh", "-c", "cat <&3; echo; ls /proc/$$/fd; true"],
        );
        c.write_config();
        let file = std::fs::File::open(&path).unwrap();
        let fd = file.as_raw_fd();
        let mut cmd = c.cmd();
        cmd.args(["run", "--preserve-fds", &n.to_string(), "--bundle"])
            .arg(c.bundle())
            .arg(&c.id);
        // SAFETY: dup2 between fork and exec, async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let o = run_cmd(&mut cmd, None);
        if n == 1 {
            let o = o.ok();
            let lines: Vec<&str> = o.stdout.lines().collect();
            assert_eq!(lines[0], want);
            assert_eq!(lines[1..], ["0", "1", "2", "3"], "{o:?}");
        } else {
            // Not preserved: fd 3 is not the container's, and no other fd leaked in.
            assert!(
                o.stderr.contains("Bad file descriptor") || o.stderr.contains("3:"),
                "{o:?}"
            );
            let fds: Vec<&str> = o.stdout.lines().skip(1).collect();
            assert_eq!(fds, ["0", "1", "2"], "{o:?}");
        }
    }
}

#[test]
fn preserve_fds_that_are_not_open_are_refused() {
    let c = Ctr::new("preservebad", &["true"]);
    c.write_config();
    let o = run_cmd(
        c.cmd()
            .args(["run", "--preserve-fds", "5", "--bundle"])
            .arg(c.bundle())
            .arg(&c.id),
        None,
    );
    o.fails_with(&["--preserve-fds 5", "is not open"]);
    assert_nothing_left(&c);
}
