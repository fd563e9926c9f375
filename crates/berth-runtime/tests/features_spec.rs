//! `features`, `spec` and `--version`.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::*;

fn runtime(args: &[&str]) -> Out {
    run_cmd(Command::new(RUNTIME).args(args), None)
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn features_document() {
    let o = runtime(&["features"]).ok();
    let f: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(
        f["ociVersionMax"].as_str().unwrap().starts_with("1."),
        "{f}"
    );
    let mut ns = strings(&f["linux"]["namespaces"]);
    ns.sort();
    assert_eq!(
        ns,
        [
            "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"
        ]
    );
    let hooks = strings(&f["hooks"]);
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.contains(&h), "{h}");
    }
    let sc = &f["linux"]["seccomp"];
    assert_eq!(sc["enabled"], true);
    let actions = strings(&sc["actions"]);
    for a in [
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert!(strings(&sc["archs"]).contains(&"SCMP_ARCH_X86_64"), "{sc}");
    let opts = strings(&f["mountOptions"]);
    for o in ["ro", "rbind", "rro", "idmap", "nosymfollow"] {
        assert!(opts.contains(&o), "{o}");
    }
    let caps = strings(&f["linux"]["capabilities"]);
    assert!(
        caps.contains(&"CAP_CHOWN") && caps.contains(&"CAP_SYS_ADMIN"),
        "{caps:?}"
    );
    assert_eq!(f["linux"]["cgroup"]["v1"], true);
}

#[test]
fn spec_writes_a_config_that_parses_and_runs() {
    let dir = temp_dir();
    let b = dir.path().to_str().unwrap();
    runtime(&["spec", "--bundle", b]).ok();
    let data = std::fs::read(dir.path().join("config.json")).unwrap();
    let spec = berth_runtime::config::parse(&data).unwrap();
    berth_runtime::config::check_version(spec.version()).unwrap();
    let v: Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(v["process"]["args"][0], "sh");
    assert_eq!(v["root"]["path"], "rootfs");

    // It does not overwrite.
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    runtime(&["spec", "--bundle", b]).fails_with(&["exists"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("config.json")).unwrap(),
        "{}"
    );
    std::fs::remove_file(dir.path().join("config.json")).unwrap();

    runtime(&["spec", "--rootless", "--bundle", b]).ok();
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert!(
        v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "user"),
        "{v}"
    );
    assert!(v["linux"]["uidMappings"].is_array());
}

#[test]
fn version() {
    let o = runtime(&["--version"]).ok();
    assert!(o.stdout.contains("berth-runtime"), "{o:?}");
    assert!(o.stdout.contains("spec: 1."), "{o:?}");
}
