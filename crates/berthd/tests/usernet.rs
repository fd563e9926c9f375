//! User-defined networks driven by the docker CLI: names, aliases and `--ip`, the embedded
//! DNS, internal networks, connect/disconnect while running, restarts, bad input, teardown.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::process::Command;

use serde_json::Value;
use support::*;

fn inspect(d: &Daemon, what: &[&str]) -> Value {
    let out = d.docker(what).ok();
    serde_json::from_str::<Value>(&out.stdout).unwrap()[0].clone()
}

fn subnet(d: &Daemon, n: u8) -> (String, String) {
    d.own_subnet(n)
}

fn net_bridge(d: &Daemon, name: &str) -> String {
    let v = inspect(d, &["network", "inspect", name]);
    v["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            // Derived names are not options: find the state dir naming it.
            std::fs::read_dir(d.data_root().join("network"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find(|n| {
                    n != &d.bridge
                        && std::fs::read_to_string(
                            d.data_root().join("network").join(n).join("network.json"),
                        )
                        .unwrap_or_default()
                        .contains(&format!("\"name\": \"{name}\""))
                })
                .unwrap()
        })
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

fn nft_table(d: &Daemon) -> String {
    run(
        Command::new("nft").args(["list", "table", "ip", &d.table]),
        None,
    )
    .stdout
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

const PAGE: &str =
    "mkdir -p /www && echo hello-user-net > /www/index.html && exec httpd -f -p 8080 -h /www";

#[test]
fn names_aliases_static_ip_dns_and_teardown() {
    let d = Daemon::start();
    d.busybox();
    let (sub, pre) = subnet(&d, 0);
    let id = d
        .docker(&[
            "network",
            "create",
            "--subnet",
            &sub,
            "--label",
            "team=blue",
            "app",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let bridge = net_bridge(&d, "app");
    assert!(bridge.len() <= 15 && link_exists(&bridge), "{bridge}");
    let ls = d.docker(&["network", "ls"]).ok().stdout;
    for n in ["bridge", "host", "none", "app"] {
        assert!(ls.contains(n), "{ls}");
    }
    let q = d
        .docker(&["network", "ls", "-q", "--filter", "label=team=blue"])
        .ok()
        .stdout;
    assert_eq!(q.trim(), &id[..12]);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "app",
        "--network-alias",
        "www",
        "-P",
        "--expose",
        "8080",
        "busybox",
        "sh",
        "-c",
        PAGE,
    ])
    .ok();
    let ip = format!("{pre}.50");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "app",
        "--ip",
        &ip,
        "--add-host",
        "extra.example:10.9.8.7",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    // --ip is what the container sees.
    let addr = d
        .docker(&["exec", "client", "ip", "-4", "addr", "show", "eth0"])
        .ok()
        .stdout;
    assert!(addr.contains(&format!("{ip}/24")), "{addr}");
    let c = inspect(&d, &["inspect", "client"]);
    let ep = &c["NetworkSettings"]["Networks"]["app"];
    assert_eq!(ep["IPAddress"], ip.as_str(), "{c}");
    assert_eq!(ep["Gateway"], format!("{pre}.1").as_str());
    assert_eq!(ep["NetworkID"], id.as_str());
    assert!(ep["MacAddress"].as_str().unwrap().starts_with("02:42:"));
    assert_eq!(ep["EndpointID"].as_str().unwrap().len(), 64);
    let w = inspect(&d, &["inspect", "web"]);
    let web_ip = w["NetworkSettings"]["Networks"]["app"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        w["NetworkSettings"]["Networks"]["app"]["Aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "www"),
        "{w}"
    );
    // /etc/hosts and resolv.conf.
    let hosts = d
        .docker(&["exec", "client", "cat", "/etc/hosts"])
        .ok()
        .stdout;
    let hostname = c["Config"]["Hostname"].as_str().unwrap();
    assert!(hosts.contains(&format!("{ip}\t{hostname}")), "{hosts}");
    assert!(hosts.contains("10.9.8.7\textra.example"), "{hosts}");
    let resolv = d
        .docker(&["exec", "client", "cat", "/etc/resolv.conf"])
        .ok()
        .stdout;
    assert!(resolv.contains(&format!("nameserver {pre}.1")), "{resolv}");
    // (A search domain would make lookups leave the host: only this container gets one.)
    let resolv = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "app",
            "--dns-search",
            "corp.test",
            "--dns-option",
            "ndots:2",
            "busybox",
            "cat",
            "/etc/resolv.conf",
        ])
        .ok()
        .stdout;
    assert!(resolv.contains(&format!("nameserver {pre}.1")), "{resolv}");
    assert!(resolv.contains("search corp.test"), "{resolv}");
    assert!(resolv.contains("options ndots:2"), "{resolv}");
    // By name and by alias, through the embedded DNS.
    for name in ["web", "www"] {
        let page = wait_for(&format!("http to {name}"), || {
            // (busybox-static's wget crashes on this host; nc does the same job.)
            let o = d.docker(&[
                "exec",
                "client",
                "sh",
                "-c",
                &format!("printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {name} 8080"),
            ]);
            (o.code == 0).then_some(o.stdout)
        });
        assert!(page.contains("hello-user-net"), "{page}");
    }
    d.docker(&["exec", "web", "ping", "-c", "1", "-W", "5", "client"])
        .ok();
    let ns = d.docker(&["exec", "client", "nslookup", "www"]).ok().stdout;
    assert!(ns.contains(&web_ip), "{ns}");
    let short = &w["Id"].as_str().unwrap()[..12];
    let ns = d.docker(&["exec", "client", "nslookup", short]).ok().stdout;
    assert!(ns.contains(&web_ip), "{ns}");
    let nx = d.docker(&["exec", "client", "nslookup", "nosuchname"]);
    assert_ne!(nx.code, 0, "{nx:?}");
    assert!(
        format!("{}{}", nx.stdout, nx.stderr).contains("NXDOMAIN"),
        "{nx:?}"
    );
    // -P published the exposed port on a random host port; docker port shows it.
    let port = d.docker(&["port", "web", "8080"]).ok().stdout;
    let hp: u16 = port
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{port}"));
    assert!(hp >= 1024, "{port}");
    let page = wait_for("published port", || http_get(&format!("127.0.0.1:{hp}")));
    assert!(page.contains("hello-user-net"), "{page}");
    // Inspect of the network lists both containers.
    let n = inspect(&d, &["network", "inspect", "app"]);
    assert_eq!(n["Containers"].as_object().unwrap().len(), 2, "{n}");
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], sub.as_str());
    // In use: refused, naming the network.
    let rm = d.docker(&["network", "rm", "app"]);
    assert_ne!(rm.code, 0);
    assert!(rm.stderr.contains("has active endpoints"), "{rm:?}");
    // Removing the containers and the network leaves nothing behind.
    d.docker(&["rm", "-f", "web", "client"]).ok();
    let t = nft_table(&d);
    assert!(t.contains(&format!("pub-{bridge}")), "{t}");
    d.docker(&["network", "rm", "app"]).ok();
    assert!(!link_exists(&bridge), "bridge {bridge} left behind");
    let t = nft_table(&d);
    assert!(!t.contains(&bridge), "chains left: {t}");
    assert!(!d.data_root().join("network").join(&bridge).exists());
    let ls = d.docker(&["network", "ls"]).ok().stdout;
    assert!(!ls.contains("app"), "{ls}");
    let links = run(Command::new("ip").args(["-o", "link"]), None).stdout;
    assert!(!links.contains(&bridge), "{links}");
}

#[test]
fn internal_network_connect_disconnect() {
    let d = Daemon::start();
    d.busybox();
    let (sub, _) = subnet(&d, 1);
    let (sub2, pre2) = subnet(&d, 2);
    d.docker(&["network", "create", "--internal", "--subnet", &sub, "priv"])
        .ok();
    d.docker(&["network", "create", "--subnet", &sub2, "front"])
        .ok();
    let priv_bridge = net_bridge(&d, "priv");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "ca",
        "--network",
        "priv",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "cb",
        "--network",
        "front",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    // Internal: no default route, no masquerade, forwarding dropped.
    let routes = d.docker(&["exec", "ca", "ip", "route"]).ok().stdout;
    assert!(!routes.contains("default"), "{routes}");
    let ping = d.docker(&[
        "exec",
        "ca",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        &format!("{pre2}.2"),
    ]);
    assert_ne!(
        ping.code, 0,
        "internal container reached another network: {ping:?}"
    );
    let t = nft_table(&d);
    let post: String = t
        .split(&format!("chain post-{priv_bridge}"))
        .nth(1)
        .unwrap()
        .split("chain ")
        .next()
        .unwrap()
        .to_string();
    assert!(
        !post.contains(&sub),
        "masquerade on an internal network: {post}"
    );
    assert!(t.contains(&format!("chain fwd-{priv_bridge}")), "{t}");
    // Connect while running: a second interface, a DNS record on the other network.
    d.docker(&["network", "connect", "--alias", "alpha", "front", "ca"])
        .ok();
    let eth1 = d
        .docker(&["exec", "ca", "ip", "-4", "addr", "show", "eth1"])
        .ok()
        .stdout;
    assert!(eth1.contains(&pre2), "{eth1}");
    let i = inspect(&d, &["inspect", "ca"]);
    let nets = i["NetworkSettings"]["Networks"].as_object().unwrap();
    assert!(
        nets.contains_key("priv") && nets.contains_key("front"),
        "{i}"
    );
    let a_front = nets["front"]["IPAddress"].as_str().unwrap().to_string();
    let ns = wait_for("alias after connect", || {
        let o = d.docker(&["exec", "cb", "nslookup", "alpha"]);
        (o.code == 0).then_some(o.stdout)
    });
    assert!(ns.contains(&a_front), "{ns}");
    d.docker(&["exec", "cb", "ping", "-c", "1", "-W", "5", "ca"])
        .ok();
    // a asks its first network's gateway and still finds b on the other network.
    let b_ip = inspect(&d, &["inspect", "cb"])["NetworkSettings"]["Networks"]["front"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let ns = d.docker(&["exec", "ca", "nslookup", "cb"]).ok().stdout;
    assert!(ns.contains(&b_ip), "{ns}");
    // Disconnect: the interface and the record go.
    d.docker(&["network", "disconnect", "front", "ca"]).ok();
    let links = d.docker(&["exec", "ca", "ip", "link"]).ok().stdout;
    assert!(!links.contains("eth1"), "{links}");
    let nx = d.docker(&["exec", "cb", "nslookup", "ca"]);
    assert_ne!(nx.code, 0, "{nx:?}");
    let again = d.docker(&["network", "disconnect", "front", "ca"]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("not connected"), "{again:?}");
    d.docker(&["rm", "-f", "ca", "cb"]).ok();
    let pruned = d.docker(&["network", "prune", "-f"]).ok().stdout;
    assert!(
        pruned.contains("priv") && pruned.contains("front"),
        "{pruned}"
    );
    assert!(!link_exists(&priv_bridge));
}

#[test]
fn networks_survive_a_daemon_restart() {
    let mut d = Daemon::start();
    d.busybox();
    let (sub, pre) = subnet(&d, 3);
    d.docker(&["network", "create", "--subnet", &sub, "keep"])
        .ok();
    let bridge = net_bridge(&d, "keep");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "one",
        "--network",
        "keep",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    // (SIGKILL: a crash; a SIGTERMed berthd waits for its monitors, which is not this test.)
    d.kill(libc::SIGKILL);
    d.spawn();
    let ls = d.docker(&["network", "ls"]).ok().stdout;
    assert!(ls.contains("keep"), "{ls}");
    assert!(link_exists(&bridge));
    d.docker(&[
        "run",
        "-d",
        "--name",
        "two",
        "--network",
        "keep",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    let one_ip =
        inspect(&d, &["inspect", "one"])["NetworkSettings"]["Networks"]["keep"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(one_ip.starts_with(&pre), "{one_ip}");
    let ns = wait_for("dns after restart", || {
        let o = d.docker(&["exec", "two", "nslookup", "one"]);
        (o.code == 0).then_some(o.stdout)
    });
    assert!(ns.contains(&one_ip), "{ns}");
    d.docker(&["exec", "one", "ping", "-c", "1", "-W", "5", "two"])
        .ok();
}

#[test]
fn bad_network_input_is_refused_and_leaves_nothing() {
    let d = Daemon::start();
    d.busybox();
    let (sub, pre) = subnet(&d, 4);
    let bad = d.docker(&["network", "create", "--subnet", "10.1.2.300/24", "x"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("invalid subnet"), "{bad:?}");
    let bad = d.docker(&["network", "create", "-d", "overlay", "x"]);
    assert_ne!(bad.code, 0);
    d.docker(&["network", "create", "--subnet", &sub, "good"])
        .ok();
    let dup = d.docker(&["network", "create", "good"]);
    assert_ne!(dup.code, 0);
    assert!(dup.stderr.contains("already exists"), "{dup:?}");
    let overlap = d.docker(&["network", "create", "--subnet", &sub, "other"]);
    assert_ne!(overlap.code, 0);
    assert!(overlap.stderr.contains("overlaps"), "{overlap:?}");
    let outside = d.docker(&[
        "run",
        "-d",
        "--name",
        "co",
        "--network",
        "good",
        "--ip",
        "10.255.255.9",
        "busybox",
        "true",
    ]);
    assert_ne!(outside.code, 0);
    assert!(outside.stderr.contains("does not belong"), "{outside:?}");
    let on_default = d.docker(&["run", "-d", "--ip", "172.17.0.9", "busybox", "true"]);
    assert_ne!(on_default.code, 0);
    assert!(
        on_default.stderr.contains("user defined networks"),
        "{on_default:?}"
    );
    let ip = format!("{pre}.7");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "first",
        "--network",
        "good",
        "--ip",
        &ip,
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    let clash = d.docker(&[
        "run",
        "-d",
        "--name",
        "second",
        "--network",
        "good",
        "--ip",
        &ip,
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_ne!(clash.code, 0);
    assert!(clash.stderr.contains("already in use"), "{clash:?}");
    // (docker's CLI answers a 404 at create by pulling the image: ask the API directly.)
    let (code, body) = d.request(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"nosuchnet"}}"#),
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("network nosuchnet not found"), "{body}");
    // Only "good" was made; nothing else is left.
    let ls = d
        .docker(&["network", "ls", "--format", "{{.Name}}"])
        .ok()
        .stdout;
    let mut names: Vec<&str> = ls.lines().collect();
    names.sort();
    assert_eq!(names, ["bridge", "good", "host", "none"]);
    let dirs: Vec<String> = std::fs::read_dir(d.data_root().join("network"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let good = net_bridge(&d, "good");
    d.docker(&["rm", "-f", "first", "second"]);
    d.docker(&["network", "rm", "good"]).ok();
    assert!(!link_exists(&good), "bridge {good} left behind");
    let dirs: Vec<String> = std::fs::read_dir(d.data_root().join("network"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs, std::slice::from_ref(&d.bridge));
    assert!(!nft_table(&d).contains(&good));
}

#[test]
fn links_and_port_ranges_on_the_default_bridge() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&["run", "-d", "--name", "db", "busybox", "sleep", "1000"])
        .ok();
    let db_ip =
        inspect(&d, &["inspect", "db"])["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string();
    let hosts = d
        .docker(&[
            "run",
            "--rm",
            "--link",
            "db:dbalias",
            "busybox",
            "cat",
            "/etc/hosts",
        ])
        .ok()
        .stdout;
    let line = hosts
        .lines()
        .find(|l| l.starts_with(&format!("{db_ip}\t")))
        .unwrap_or_else(|| panic!("{hosts}"));
    assert!(line.contains("dbalias") && line.contains(" db"), "{line}");
    // 2:2 ranges map port by port; a host range for one port takes a free one in it.
    let h: u32 = d.table.bytes().map(u32::from).sum();
    let base = 41000 + (h % 2000) as u16 * 2;
    let spec = format!("127.0.0.1:{}-{}:8080-8081", base, base + 1);
    let range = format!("127.0.0.1:{}-{}:9090", base + 4000, base + 4010);
    d.docker(&[
        "run", "-d", "--name", "ranged", "-p", &spec, "-p", &range, "busybox", "sh", "-c", PAGE,
    ])
    .ok();
    let ports = d.docker(&["port", "ranged"]).ok().stdout;
    assert!(
        ports.contains(&format!("8080/tcp -> 127.0.0.1:{base}")),
        "{ports}"
    );
    assert!(
        ports.contains(&format!("8081/tcp -> 127.0.0.1:{}", base + 1)),
        "{ports}"
    );
    let p9090: u16 = ports
        .lines()
        .find(|l| l.starts_with("9090/tcp"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{ports}"));
    assert!((base + 4000..=base + 4010).contains(&p9090), "{ports}");
    let page = wait_for("published range", || http_get(&format!("127.0.0.1:{base}")));
    assert!(page.contains("hello-user-net"), "{page}");
}

#[test]
fn berth_network_commands() {
    let d = Daemon::start();
    d.busybox();
    let (sub, pre) = subnet(&d, 5);
    let id = d
        .berth(&[
            "network",
            "create",
            "--subnet",
            &sub,
            "--label",
            "a=b",
            "-o",
            "com.docker.network.bridge.name=bn-test0",
            "tools",
        ])
        .ok()
        .stdout;
    assert_eq!(id.trim().len(), 64, "{id}");
    assert!(link_exists("bn-test0"));
    let ls = d.berth(&["network", "ls"]).ok().stdout;
    assert!(ls.starts_with("NETWORK ID") && ls.contains("tools"), "{ls}");
    let q = d
        .berth(&["network", "ls", "-q", "--filter", "name=tools"])
        .ok()
        .stdout;
    assert_eq!(q.trim(), &id.trim()[..12]);
    let gw = d
        .berth(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Gateway}}",
            "tools",
        ])
        .ok()
        .stdout;
    assert_eq!(gw.trim(), format!("{pre}.1"));
    d.berth(&[
        "run",
        "-d",
        "--name",
        "tool1",
        "--network",
        "tools",
        "--ip",
        &format!("{pre}.9"),
        "--network-alias",
        "t1",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    d.berth(&["run", "-d", "--name", "tool2", "busybox", "sleep", "1000"])
        .ok();
    d.berth(&["network", "connect", "--alias", "t2", "tools", "tool2"])
        .ok();
    let ns = d.docker(&["exec", "tool1", "nslookup", "t2"]).ok().stdout;
    assert!(ns.contains(&pre), "{ns}");
    // (tool2 keeps the host's resolvers, as in docker: its first network is the default
    // bridge; it reaches tool1 by address.)
    d.docker(&[
        "exec",
        "tool2",
        "ping",
        "-c",
        "1",
        "-W",
        "5",
        &format!("{pre}.9"),
    ])
    .ok();
    d.berth(&["network", "disconnect", "tools", "tool2"]).ok();
    d.berth(&["rm", "-f", "tool1", "tool2"]).ok();
    d.berth(&["network", "rm", "tools"]).ok();
    assert!(!link_exists("bn-test0"));
}
