//! The default bridge: addresses, container-to-container traffic, published ports, teardown.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};

use serde_json::Value;
use support::*;

fn inspect(d: &Daemon, name: &str) -> Value {
    let out = d.docker(&["inspect", name]).ok();
    serde_json::from_str::<Value>(&out.stdout).unwrap()[0].clone()
}

fn http_get(addr: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(
        &addr.parse().ok()?,
        std::time::Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn bridge_addresses_ports_and_teardown() {
    let d = Daemon::start();
    d.busybox();
    let page =
        "mkdir -p /www && echo hello-from-berth > /www/index.html && exec httpd -f -p 8080 -h /www";
    d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1:18080:8080",
        "busybox",
        "sh",
        "-c",
        page,
    ])
    .ok();
    let i = inspect(&d, "web");
    let ip = i["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let gw = i["NetworkSettings"]["Networks"]["bridge"]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!ip.is_empty() && ip != gw, "{i}");
    assert_eq!(
        i["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"],
        "18080"
    );
    // The container sees its address on eth0, and its name in /etc/hosts.
    let addr = d
        .docker(&["exec", "web", "ip", "-4", "addr", "show", "eth0"])
        .ok()
        .stdout;
    assert!(addr.contains(&format!("inet {ip}/")), "{addr}");
    let hosts = d.docker(&["exec", "web", "cat", "/etc/hosts"]).ok().stdout;
    assert!(hosts.contains(&ip), "{hosts}");
    // The published port from the host; the container's address from another container.
    let body = wait_for("the published port", || {
        http_get("127.0.0.1:18080").filter(|b| b.contains("hello-from-berth"))
    });
    assert!(body.starts_with("HTTP/1."), "{body}");
    let got = d
        .docker(&[
            "run",
            "--rm",
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            &format!("http://{ip}:8080/index.html"),
        ])
        .ok()
        .stdout;
    assert_eq!(got.trim(), "hello-from-berth");
    // A second container cannot take the same host port.
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "web2",
        "-p",
        "127.0.0.1:18080:8080",
        "busybox",
        "sleep",
        "100",
    ]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("18080"), "{out:?}");
    // Stopping takes the container off the bridge: no veth, no forwarding.
    let veth_count = || {
        let out = run(
            std::process::Command::new("ip").args(["-o", "link", "show", "master", &d.bridge]),
            None,
        )
        .stdout;
        out.lines().count()
    };
    assert_eq!(veth_count(), 1);
    d.docker(&["rm", "-f", "web", "web2"]);
    // The veth goes with the dead container's namespace (or is deleted in the background).
    wait_for("the veth to go", || (veth_count() == 0).then_some(()));
    assert!(http_get("127.0.0.1:18080").is_none_or(|b| !b.contains("hello-from-berth")));
    let rules = run(
        std::process::Command::new("nft").args(["-a", "list", "table", "ip", &d.table]),
        None,
    )
    .stdout;
    assert!(!rules.contains("18080"), "{rules}");
}
