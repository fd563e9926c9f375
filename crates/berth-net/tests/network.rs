//! Real-kernel tests (root): private bridges, private nft tables, sleeper processes in their
//! own network namespaces standing in for containers. Traffic only goes to loopback and to
//! the namespaces and bridges these tests create.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth_net::{Error, Network, NetworkConfig, PortBinding, Subnet};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:05x}{n:x}", (std::process::id() ^ t) & 0xfffff)
}

/// A private network: unique bridge, table and state dir, removed on drop even on failure.
struct TestNet {
    net: Option<Network>,
    bridge: String,
    table: String,
    own_table: bool,
    dir: tempfile::TempDir,
}

impl TestNet {
    fn new() -> TestNet {
        Self::with_table(None)
    }

    /// A network in `table` (shared with another test network) or in a table of its own.
    fn with_table(table: Option<&str>) -> TestNet {
        let dir = tempfile::tempdir().unwrap();
        let u = unique();
        let bridge = format!("bt{u}");
        let own_table = table.is_none();
        let table = table.map_or_else(|| format!("berth-test-{u}"), str::to_string);
        for _ in 0..50 {
            let r = rand_u32();
            let subnet: Subnet = format!("10.{}.{}.0/24", 100 + r % 100, (r >> 8) % 256)
                .parse()
                .unwrap();
            match Network::open(dir.path(), config(&bridge, &table, Some(subnet))) {
                Ok(net) => {
                    return TestNet {
                        net: Some(net),
                        bridge,
                        table,
                        own_table,
                        dir,
                    };
                }
                Err(Error::SubnetOverlap { .. }) => continue,
                Err(e) => panic!("open network: {e}"),
            }
        }
        panic!("no free test subnet")
    }

    fn net(&self) -> &Network {
        self.net.as_ref().unwrap()
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        if let Some(n) = self.net.take() {
            let _ = n.destroy();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        if self.own_table {
            let _ = Command::new("nft")
                .args(["delete", "table", "ip", &self.table])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn config(bridge: &str, table: &str, subnet: Option<Subnet>) -> NetworkConfig {
    NetworkConfig {
        name: format!("net-{bridge}"),
        bridge: bridge.to_string(),
        subnet,
        table: table.to_string(),
        internal: false,
    }
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    u32::from_le_bytes(b)
}

/// A "container": a sleeper in its own network namespace.
struct Sandbox {
    child: Child,
}

impl Sandbox {
    fn new() -> Sandbox {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "1000"])
            .spawn()
            .unwrap();
        let s = Sandbox { child };
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::read_link(s.netns()).ok().is_none_or(|l| l == own) {
            assert!(Instant::now() < deadline, "sleeper never got its netns");
            std::thread::sleep(Duration::from_millis(10));
        }
        s
    }

    fn netns(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.child.id()))
    }

    /// Runs a command inside the namespace.
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.netns().display()))
            .args(args)
            .output()
            .unwrap()
    }

    fn links(&self) -> String {
        String::from_utf8(self.run(&["ip", "-o", "link"]).stdout).unwrap()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `f` on a thread that entered the namespace at `netns` (sockets made there stay
/// bound to it).
fn in_netns<T: Send + 'static>(netns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(netns).unwrap();
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// A TCP server inside the sandbox answering every connection with `reply`.
fn serve(sb: &Sandbox, port: u16, reply: &'static str) {
    let l = in_netns(&sb.netns(), move || {
        TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).unwrap()
    });
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let _ = c.write_all(reply.as_bytes());
        }
    });
}

fn fetch(stream: std::io::Result<TcpStream>) -> String {
    let mut s = stream.unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn connect(addr: SocketAddrV4) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&addr.into(), Duration::from_secs(30))
}

fn host_links() -> String {
    String::from_utf8(
        Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
}

fn nft_table(table: &str) -> Option<String> {
    let out = Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

fn port(s: &str) -> PortBinding {
    s.parse().unwrap()
}

#[test]
fn attach_configures_eth0_and_containers_talk_over_the_bridge() {
    let t = TestNet::new();
    let (a, b) = (Sandbox::new(), Sandbox::new());
    let aa = t.net().attach("ctr-a", &a.netns(), &[], None).unwrap();
    let ab = t.net().attach("ctr-b", &b.netns(), &[], None).unwrap();
    assert_ne!(aa.ip, ab.ip);
    assert_eq!(aa.gateway, t.net().gateway());
    assert!(t.net().subnet().contains(aa.ip));

    let addr =
        String::from_utf8(a.run(&["ip", "-4", "-o", "addr", "show", "eth0"]).stdout).unwrap();
    assert!(
        addr.contains(&format!("{}/{}", aa.ip, aa.prefix)),
        "eth0 lacks its address: {addr}"
    );
    let link = String::from_utf8(a.run(&["ip", "-o", "link", "show", "eth0"]).stdout).unwrap();
    assert!(link.contains(&aa.mac), "eth0 lacks mac {}: {link}", aa.mac);
    assert!(link.contains(",UP"), "eth0 not up: {link}");
    let lo = String::from_utf8(a.run(&["ip", "-o", "link", "show", "lo"]).stdout).unwrap();
    assert!(lo.contains(",UP"), "lo not up: {lo}");
    let route = String::from_utf8(a.run(&["ip", "-4", "route"]).stdout).unwrap();
    assert!(
        route.contains(&format!("default via {}", aa.gateway)),
        "no default route: {route}"
    );
    let hl = host_links();
    assert!(
        hl.contains(&format!("{}@", aa.veth)) && hl.contains(&format!("master {}", t.bridge)),
        "host veth not on the bridge: {hl}"
    );

    let ping = a.run(&["busybox", "ping", "-c", "1", "-W", "10", &ab.ip.to_string()]);
    assert!(ping.status.success(), "ping failed: {ping:?}");
    serve(&b, 7000, "hello from b");
    let target = SocketAddrV4::new(ab.ip, 7000);
    let got = in_netns(&a.netns(), move || fetch(connect(target)));
    assert_eq!(got, "hello from b");
    // The host reaches containers through the bridge too.
    assert_eq!(fetch(connect(target)), "hello from b");

    // Attaching again is idempotent.
    let again = t.net().attach("ctr-a", &a.netns(), &[], None).unwrap();
    assert_eq!(again, aa);
}

#[test]
fn published_port_reaches_container_via_localhost_and_gateway() {
    let t = TestNet::new();
    let c = Sandbox::new();
    serve(&c, 80, "hello from web");
    let a = t
        .net()
        .attach("web", &c.netns(), &[port("0:80")], None)
        .unwrap();
    let hp = a.ports[0].host_port;
    assert_ne!(hp, 0, "ephemeral port not resolved");
    assert_eq!(
        fetch(connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, hp))),
        "hello from web"
    );
    assert_eq!(
        fetch(connect(SocketAddrV4::new(t.net().gateway(), hp))),
        "hello from web"
    );
    let listing = nft_table(&t.table).unwrap();
    assert!(
        listing.contains(&format!("dnat to {}:80", a.ip)),
        "{listing}"
    );

    // Another container reaches it through the gateway (hairpin).
    let other = Sandbox::new();
    t.net().attach("client", &other.netns(), &[], None).unwrap();
    let gw = SocketAddrV4::new(t.net().gateway(), hp);
    assert_eq!(
        in_netns(&other.netns(), move || fetch(connect(gw))),
        "hello from web"
    );

    t.net().detach("web").unwrap();
    let listing = nft_table(&t.table).unwrap();
    assert!(!listing.contains("dnat to"), "rules left: {listing}");
    assert!(
        connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, hp)).is_err(),
        "port still forwarded after detach"
    );
}

#[test]
fn host_traffic_gets_the_64k_link_and_egress_keeps_1500() {
    let t = TestNet::new();
    let c = Sandbox::new();
    serve(&c, 80, "hello over a big link");
    let a = t
        .net()
        .attach("big", &c.netns(), &[port("0:80")], None)
        .unwrap();
    let mtu = format!("mtu {}", berth_net::LINK_MTU);
    let eth0 = String::from_utf8(c.run(&["ip", "-o", "link", "show", "eth0"]).stdout).unwrap();
    assert!(eth0.contains(&mtu), "eth0 not at {mtu}: {eth0}");
    let hl = host_links();
    for dev in [format!("{}@", a.veth), format!("{}:", t.bridge)] {
        let line = hl.lines().find(|l| l.contains(&dev)).unwrap_or_default();
        assert!(line.contains(&mtu), "{dev} not at {mtu}: {line}");
    }
    // A route lookup only (TEST-NET-1, nothing is sent): what leaves through the gateway
    // keeps Ethernet's MTU, while the gateway itself is reached at the link's.
    let out = String::from_utf8(c.run(&["ip", "-4", "route", "get", "192.0.2.1"]).stdout).unwrap();
    assert!(
        out.contains(&format!("mtu {}", berth_net::ROUTE_MTU)),
        "egress route without mtu {}: {out}",
        berth_net::ROUTE_MTU
    );
    let gw = a.gateway.to_string();
    let out = String::from_utf8(c.run(&["ip", "-4", "route", "get", &gw]).stdout).unwrap();
    assert!(!out.contains("mtu"), "gateway route limited: {out}");

    // A connection to the published port on 127.0.0.1 (the hairpin) negotiates segments
    // larger than Ethernet's 1460 bytes.
    let hp = a.ports[0].host_port;
    let s = connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, hp)).unwrap();
    let lp = s.local_addr().unwrap().port();
    let ss = Command::new("ss")
        .args(["-Htin", "state", "all", "src", &format!("127.0.0.1:{lp}")])
        .output()
        .unwrap();
    let ss = String::from_utf8(ss.stdout).unwrap();
    let mss: u32 = ss
        .split_whitespace()
        .find_map(|w| w.strip_prefix("mss:"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no mss in ss output: {ss}"));
    assert!(mss > 1460, "mss {mss} through the hairpin: {ss}");
    assert_eq!(fetch(Ok(s)), "hello over a big link");
}

#[test]
fn host_ip_binding_only_matches_that_address() {
    let t = TestNet::new();
    let c = Sandbox::new();
    serve(&c, 8080, "only localhost");
    let a = t
        .net()
        .attach("lo-only", &c.netns(), &[port("127.0.0.1:0:8080")], None)
        .unwrap();
    let hp = a.ports[0].host_port;
    assert_eq!(
        fetch(connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, hp))),
        "only localhost"
    );
    assert!(connect(SocketAddrV4::new(t.net().gateway(), hp)).is_err());
}

#[test]
fn port_conflicts_are_refused_and_leave_nothing() {
    let t = TestNet::new();
    let (c1, c2) = (Sandbox::new(), Sandbox::new());
    let a = t
        .net()
        .attach("first", &c1.netns(), &[port("0:80")], None)
        .unwrap();
    let hp = a.ports[0].host_port;
    let e = t
        .net()
        .attach("second", &c2.netns(), &[port(&format!("{hp}:81"))], None)
        .unwrap_err();
    assert!(matches!(e, Error::PortInUse { .. }), "{e}");
    assert!(e.to_string().contains(&hp.to_string()), "{e}");
    // Same port twice in one request.
    let e = t
        .net()
        .attach(
            "second",
            &c2.netns(),
            &[port("40999:1"), port("40999:2")],
            None,
        )
        .unwrap_err();
    assert!(matches!(e, Error::PortInUse { .. }), "{e}");

    // A host socket holds the port: refused after the veth was made, which is rolled back.
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let held = holder.local_addr().unwrap().port();
    let e = t
        .net()
        .attach("second", &c2.netns(), &[port(&format!("{held}:80"))], None)
        .unwrap_err();
    assert!(matches!(e, Error::PortInUse { .. }), "{e}");
    assert!(!host_links().contains(&t.net().veth_name("second")));
    assert!(!c2.links().contains("eth0"), "eth0 left in netns");
    let atts = t.net().attachments().unwrap();
    assert_eq!(atts.keys().collect::<Vec<_>>(), vec!["first"]);
    assert!(!nft_table(&t.table).unwrap().contains("berth:second"));

    // The released address is handed out again.
    let ok = t.net().attach("second", &c2.netns(), &[], None).unwrap();
    assert_eq!(u32::from(ok.ip), u32::from(a.ip) + 1);
}

#[test]
fn static_ips_are_honoured_or_refused() {
    let t = TestNet::new();
    let (c1, c2) = (Sandbox::new(), Sandbox::new());
    let want = Ipv4Addr::from(u32::from(t.net().subnet().addr()) + 50);
    let a = t.net().attach("s1", &c1.netns(), &[], Some(want)).unwrap();
    assert_eq!(a.ip, want);
    let e = t
        .net()
        .attach("s2", &c2.netns(), &[], Some(want))
        .unwrap_err();
    assert!(matches!(e, Error::IpInUse { .. }), "{e}");
    assert!(e.to_string().contains("s1"), "{e}");
    let e = t
        .net()
        .attach("s2", &c2.netns(), &[], Some(Ipv4Addr::new(192, 0, 2, 200)))
        .unwrap_err();
    assert!(matches!(e, Error::IpOutsideSubnet { .. }), "{e}");
    let e = t
        .net()
        .attach("s2", &c2.netns(), &[], Some(t.net().gateway()))
        .unwrap_err();
    assert!(matches!(e, Error::IpReserved { .. }), "{e}");
    assert!(!c2.links().contains("eth0"));
    assert_eq!(t.net().attachments().unwrap().len(), 1);
}

#[test]
fn bad_netns_is_refused_and_leaves_nothing() {
    let t = TestNet::new();
    let e = t
        .net()
        .attach(
            "ghost",
            Path::new("/proc/999999999/ns/net"),
            &[port("0:80")],
            None,
        )
        .unwrap_err();
    assert!(e.to_string().contains("/proc/999999999/ns/net"), "{e}");
    let not_ns = t.dir.path().join("plain");
    std::fs::write(&not_ns, "x").unwrap();
    assert!(t.net().attach("ghost", &not_ns, &[], None).is_err());
    assert!(!host_links().contains(&t.net().veth_name("ghost")));
    assert!(t.net().attachments().unwrap().is_empty());
    assert!(!nft_table(&t.table).unwrap().contains("berth:ghost"));
    let e = t
        .net()
        .attach("../evil", Path::new("/proc/self/ns/net"), &[], None)
        .unwrap_err();
    assert!(e.to_string().contains("invalid container id"), "{e}");
}

#[test]
fn destroy_leaves_nothing_behind() {
    let mut t = TestNet::new();
    let c = Sandbox::new();
    let a = t
        .net()
        .attach("d1", &c.netns(), &[port("0:80")], None)
        .unwrap();
    assert!(nft_table(&t.table).is_some());
    assert!(t.dir.path().join("network.json").exists());
    t.net.take().unwrap().destroy().unwrap();
    let hl = host_links();
    assert!(!hl.contains(&a.veth), "veth left: {hl}");
    assert!(
        !hl.contains(&format!(": {}:", t.bridge)),
        "bridge left: {hl}"
    );
    assert!(nft_table(&t.table).is_none(), "table left");
    assert!(!t.dir.path().join("network.json").exists());
    assert!(!c.links().contains("eth0"));
}

#[test]
fn reopen_keeps_state_and_rejects_other_subnet() {
    let t = TestNet::new();
    let c = Sandbox::new();
    let a = t.net().attach("keep", &c.netns(), &[], None).unwrap();
    let again = Network::open(t.dir.path(), config(&t.bridge, &t.table, None)).unwrap();
    assert_eq!(again.subnet(), t.net().subnet());
    assert_eq!(again.attachments().unwrap()["keep"], a);
    let other: Subnet = "10.99.0.0/24".parse().unwrap();
    let e = Network::open(t.dir.path(), config(&t.bridge, &t.table, Some(other))).unwrap_err();
    assert!(e.to_string().contains("10.99.0.0/24"), "{e}");
}

#[test]
fn overlapping_subnet_is_refused_and_creates_nothing() {
    let t = TestNet::new();
    let dir = tempfile::tempdir().unwrap();
    let u = unique();
    let (bridge, table) = (format!("bo{u}"), format!("berth-test-o{u}"));
    let sub = t.net().subnet();
    let half: Subnet = format!("{}/25", sub.addr()).parse().unwrap();
    let e = Network::open(dir.path(), config(&bridge, &table, Some(half))).unwrap_err();
    assert!(matches!(e, Error::SubnetOverlap { .. }), "{e}");
    assert!(e.to_string().contains(&sub.to_string()), "{e}");
    assert!(!host_links().contains(&format!(": {bridge}:")));
    assert!(nft_table(&table).is_none());
    let e = Network::open(dir.path(), config("much-too-long-bridge", &table, None)).unwrap_err();
    assert!(e.to_string().contains("much-too-long-bridge"), "{e}");
}

#[test]
fn default_subnet_avoids_host_routes() {
    let dir = tempfile::tempdir().unwrap();
    let u = unique();
    let (bridge, table) = (format!("bd{u}"), format!("berth-test-d{u}"));
    let before = String::from_utf8(
        Command::new("ip")
            .args(["-4", "route", "show", "table", "all"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let net = Network::open(dir.path(), config(&bridge, &table, None));
    let cleanup = || {
        let _ = Command::new("ip").args(["link", "del", &bridge]).status();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &table])
            .status();
    };
    let net = match net {
        Ok(n) => n,
        Err(e) => {
            cleanup();
            panic!("open: {e}");
        }
    };
    let s = net.subnet();
    for line in before.lines() {
        let dst = line.split_whitespace().next().unwrap_or("");
        if let Ok(r) = dst.parse::<Subnet>() {
            assert!(!s.overlaps(r.addr(), r.prefix()), "{s} overlaps {line}");
        }
    }
    let routes = String::from_utf8(
        Command::new("ip")
            .args(["-4", "route"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(routes.contains(&format!("{s} dev {bridge}")), "{routes}");
    net.destroy().unwrap();
    cleanup();
}

#[test]
fn fifty_attach_detach_cycles_leave_nothing() {
    let t = TestNet::new();
    let c = Sandbox::new();
    let mut first_ip = None;
    for i in 0..50 {
        let a = t
            .net()
            .attach("cycle", &c.netns(), &[port("0:80"), port("0:53/udp")], None)
            .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
        assert_eq!(*first_ip.get_or_insert(a.ip), a.ip, "address not released");
        t.net().detach("cycle").unwrap();
        // Detach twice is fine.
        t.net().detach("cycle").unwrap();
    }
    assert!(!host_links().contains(&t.net().veth_name("cycle")));
    assert!(!c.links().contains("eth0"));
    assert!(t.net().attachments().unwrap().is_empty());
    let listing = nft_table(&t.table).unwrap();
    assert!(!listing.contains("dnat to"), "rules left: {listing}");
}

#[test]
fn networks_sharing_a_table_keep_to_their_own_chains() {
    let a = TestNet::new();
    let mut b = TestNet::with_table(Some(&a.table));
    let (ca, cb) = (Sandbox::new(), Sandbox::new());
    serve(&ca, 80, "from a");
    let att = a
        .net()
        .attach("on-a", &ca.netns(), &[port("0:80")], None)
        .unwrap();
    let hp = att.ports[0].host_port;
    // The port is taken across networks sharing the table.
    let e = b
        .net()
        .attach("on-b", &cb.netns(), &[port(&format!("{hp}:80"))], None)
        .unwrap_err();
    assert!(e.to_string().contains("on-a"), "{e}");
    b.net()
        .attach("on-b", &cb.netns(), &[port("0:81")], None)
        .unwrap();
    // Destroying b removes its chains only; a keeps working.
    b.net.take().unwrap().destroy().unwrap();
    let listing = nft_table(&a.table).unwrap();
    assert!(!listing.contains(&b.bridge), "b's chains left: {listing}");
    assert!(listing.contains(&format!("pub-{}", a.bridge)), "{listing}");
    assert_eq!(
        fetch(connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, hp))),
        "from a"
    );
    drop(b);
    assert!(
        nft_table(&a.table).is_some(),
        "b's cleanup removed a's table"
    );
}

#[test]
fn concurrent_attaches_get_distinct_addresses() {
    let t = TestNet::new();
    let boxes: Vec<Sandbox> = (0..6).map(|_| Sandbox::new()).collect();
    let ips: Vec<Ipv4Addr> = std::thread::scope(|s| {
        let handles: Vec<_> = boxes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let net = t.net();
                s.spawn(move || net.attach(&format!("par{i}"), &b.netns(), &[port("0:80")], None))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap().ip)
            .collect()
    });
    let distinct: std::collections::BTreeSet<_> = ips.iter().collect();
    assert_eq!(distinct.len(), ips.len(), "duplicate addresses: {ips:?}");
    assert_eq!(t.net().attachments().unwrap().len(), 6);
    // A second handle on the same state dir sees the same allocations.
    let other = Network::open(t.dir.path(), config(&t.bridge, &t.table, None)).unwrap();
    assert_eq!(other.attachments().unwrap().len(), 6);
}

#[test]
fn dead_container_is_reattached_afresh_and_detaches_cleanly() {
    let t = TestNet::new();
    let first = Sandbox::new();
    let a = t
        .net()
        .attach("phoenix", &first.netns(), &[port("0:80")], None)
        .unwrap();
    drop(first); // the namespace dies, and the kernel deletes the veth pair with it
    let deadline = Instant::now() + Duration::from_secs(30);
    while host_links().contains(&a.veth) {
        assert!(Instant::now() < deadline, "veth outlived its namespace");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = Sandbox::new();
    let b = t
        .net()
        .attach("phoenix", &second.netns(), &[port("0:80")], None)
        .unwrap();
    assert!(second.links().contains("eth0"));
    let listing = nft_table(&t.table).unwrap();
    assert_eq!(
        listing.matches("berth:phoenix").count(),
        1,
        "stale rules kept: {listing}"
    );
    assert_eq!(b.ip, a.ip);
    t.net().detach("phoenix").unwrap();
    assert!(t.net().attachments().unwrap().is_empty());
}

#[test]
fn corrupt_state_is_refused_naming_the_file() {
    let t = TestNet::new();
    let state = t.dir.path().join("network.json");
    let good = std::fs::read(&state).unwrap();
    std::fs::write(&state, b"{\"name\": 5").unwrap();
    let c = Sandbox::new();
    let e = t.net().attach("x", &c.netns(), &[], None).unwrap_err();
    assert!(matches!(e, Error::CorruptState { .. }), "{e}");
    assert!(e.to_string().contains("network.json"), "{e}");
    assert!(!c.links().contains("eth0"));
    // An entry whose address lies outside the subnet is refused too.
    let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
    v["containers"]["evil"] = serde_json::json!({
        "ip": "192.0.2.2", "prefix": 24, "gateway": "192.0.2.1", "mac": "x",
        "veth": "eth0", "ports": []
    });
    std::fs::write(&state, serde_json::to_vec(&v).unwrap()).unwrap();
    let e = t.net().detach("evil").unwrap_err();
    assert!(e.to_string().contains("evil"), "{e}");
    assert!(host_links().contains("eth0:"), "host eth0 touched");
    std::fs::write(&state, good).unwrap();
}

#[test]
fn udp_port_is_published() {
    let t = TestNet::new();
    let c = Sandbox::new();
    let sock = in_netns(&c.netns(), || {
        std::net::UdpSocket::bind("0.0.0.0:5353").unwrap()
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&buf[..n], from);
        }
    });
    let a = t
        .net()
        .attach("dns", &c.netns(), &[port("0:5353/udp")], None)
        .unwrap();
    let hp = a.ports[0].host_port;
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(30);
    let n = loop {
        client.send_to(b"ping", ("127.0.0.1", hp)).unwrap();
        if let Ok((n, _)) = client.recv_from(&mut buf) {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "no udp echo through the published port"
        );
    };
    assert_eq!(&buf[..n], b"ping");
}

/// A bridge that already exists with an address (left by an earlier daemon whose state is
/// gone, or made by the admin) keeps that subnet: no second address is added to it.
#[test]
fn an_existing_bridge_keeps_its_subnet() {
    let u = unique();
    let (bridge, table) = (format!("be{u}"), format!("berth-test-e{u}"));
    let cleanup = || {
        let _ = Command::new("ip").args(["link", "del", &bridge]).status();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &table])
            .status();
    };
    // A free /24 for the pre-made bridge.
    let mut made = None;
    for _ in 0..50 {
        let r = rand_u32();
        let sub = format!("10.{}.{}", 100 + r % 100, (r >> 8) % 256);
        let routes = String::from_utf8(
            Command::new("ip")
                .args(["-4", "route"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        if routes.contains(&format!("{sub}.")) {
            continue;
        }
        made = Some(sub);
        break;
    }
    let sub = made.expect("a free subnet");
    let ok = Command::new("ip")
        .args(["link", "add", &bridge, "type", "bridge"])
        .status()
        .unwrap()
        .success()
        && Command::new("ip")
            .args(["addr", "add", &format!("{sub}.1/24"), "dev", &bridge])
            .status()
            .unwrap()
            .success()
        && Command::new("ip")
            .args(["link", "set", &bridge, "up"])
            .status()
            .unwrap()
            .success();
    if !ok {
        cleanup();
        panic!("could not make the test bridge");
    }
    let dir = tempfile::tempdir().unwrap();
    let net = Network::open(dir.path(), config(&bridge, &table, None));
    let addrs = String::from_utf8(
        Command::new("ip")
            .args(["-4", "-o", "addr", "show", "dev", &bridge])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    cleanup();
    let net = net.unwrap();
    assert_eq!(net.subnet().to_string(), format!("{sub}.0/24"));
    assert_eq!(addrs.lines().count(), 1, "{addrs}");
    assert!(addrs.contains(&format!("{sub}.1/24")), "{addrs}");
}
