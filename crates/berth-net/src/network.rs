//! The high-level API the engine calls: one bridge network with its IPAM state, its nftables
//! table, and the containers attached to it.
//!
//! State lives in `<state_dir>/network.json` (written atomically: temp file + rename) and
//! every operation holds an exclusive `flock` on `<state_dir>/lock`, so several handles (even
//! in several processes) on the same network serialise.
//!
//! Host settings berth changes, and why:
//! - `net.ipv4.ip_forward`: containers' egress is routed through the host, which needs
//!   forwarding. It is written only when it is 0, and whether berth did it is recorded in
//!   the state (`ip_forward_enabled`). It is never turned back off: other networks and other
//!   software may rely on it by then (Docker does the same).
//! - `net.ipv4.conf.<bridge>.route_localnet = 1`, on berth's bridge only: publishing a port on
//!   127.0.0.1 DNATs a connection whose source is 127.0.0.1 to a container; without this the
//!   kernel drops such packets as martians when they are routed out of the bridge. The
//!   postrouting chain then masquerades them to the gateway address. Because the setting
//!   would also let containers address the host's 127.0.0.0/8, the table's `guard` chain
//!   drops packets arriving on the bridge for 127.0.0.0/8.
//!
//! Link MTU: both ends of every veth pair (and so the bridge, whose MTU follows its ports)
//! get [`LINK_MTU`] (64 KiB), while the container's default route carries [`ROUTE_MTU`]
//! (1500, Docker's default). Traffic that stays on the host (container ↔ host, including
//! published ports and the 127.0.0.1 hairpin, and container ↔ container on the bridge)
//! negotiates 64 KiB segments instead of 1460-byte ones, so far fewer packets pay for every
//! hop (veth, bridge, conntrack, NAT): on a 2-core VM a published port's throughput rose by
//! about 1.4× (BENCHMARKS.md). Everything routed beyond the gateway still leaves in
//! 1500-byte segments, and TSO sizes are unchanged, so egress through a NIC costs the same.
//! rootless podman's slirp4netns and pasta use 65520 on their links for the same reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;
use crate::ipam::{self, Subnet};
use crate::netlink::Netlink;
use crate::nft;
use crate::ports::{PortBinding, PortBindings, Proto};

/// MTU of both ends of every container's veth pair: the largest a veth takes, so traffic
/// that stays on the host moves in 64 KiB segments (see the module documentation).
pub const LINK_MTU: u32 = 65535;

/// MTU of a container's default route: what leaves through the gateway for the rest of the
/// world uses Ethernet's (and Docker's) 1500.
pub const ROUTE_MTU: u32 = 1500;

/// What a network is: names chosen by the caller so private instances never collide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The network's name (Docker's `bridge`, or a user network's name).
    pub name: String,
    /// The bridge interface, at most 15 characters (e.g. `berth0`).
    pub bridge: String,
    /// The subnet; `None` picks one from Docker's default pools that overlaps no route on
    /// the host (and keeps the one already recorded, if any).
    pub subnet: Option<Subnet>,
    /// berth's own nftables table (family `ip`), e.g. `berth`.
    pub table: String,
    /// Docker's `--internal`: no masquerade, and nothing forwarded between the bridge and
    /// any other interface (containers reach each other and the gateway only).
    pub internal: bool,
}

/// Where a container's interface goes in its namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachOptions {
    /// The interface name inside (`eth0`, `eth1`, …).
    pub ifname: String,
    /// Whether the gateway becomes the namespace's default route.
    pub default_route: bool,
}

impl Default for AttachOptions {
    fn default() -> Self {
        Self {
            ifname: ETH.to_string(),
            default_route: true,
        }
    }
}

/// A container's place on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The container's address.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The bridge's address, the container's default route.
    pub gateway: Ipv4Addr,
    /// The MAC address of the container's `eth0`.
    pub mac: String,
    /// The host end of the veth pair.
    pub veth: String,
    /// The interface inside the container.
    #[serde(default = "default_ifname")]
    pub ifname: String,
    /// Published ports as installed (host port 0 replaced by the port chosen).
    pub ports: PortBindings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    name: String,
    bridge: String,
    table: String,
    subnet: Subnet,
    #[serde(default)]
    ip_forward_enabled: bool,
    #[serde(default)]
    containers: BTreeMap<String, Attachment>,
}

/// An open bridge network.
#[derive(Debug)]
pub struct Network {
    dir: PathBuf,
    cfg: NetworkConfig,
    subnet: Subnet,
}

struct Lock(#[allow(dead_code)] File);

const STATE_FILE: &str = "network.json";
const ETH: &str = "eth0";
/// Host-wide lock held while a subnet is picked and its bridge addressed, so that two
/// daemons (or tests) creating networks at once never pick the same free subnet.
const PICK_LOCK: &str = "/run/lock/berth-net-subnets.lock";

fn default_ifname() -> String {
    ETH.to_string()
}

fn host_lock() -> Result<Lock, Error> {
    let path = Path::new(PICK_LOCK);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| state_err(dir, e))?;
    }
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| state_err(path, e))?;
    flock(&f, FlockOperation::LockExclusive).map_err(|e| state_err(path, e.into()))?;
    Ok(Lock(f))
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s != "."
        && s != ".."
}

impl Network {
    /// Opens (creating when needed) the network: state dir, bridge with the gateway address,
    /// up, `route_localnet` on it, forwarding, and the nftables table. Idempotent; on error
    /// whatever this call created is removed again.
    pub fn open(state_dir: &Path, config: NetworkConfig) -> Result<Self, Error> {
        if !valid_name(&config.bridge, 15) {
            return Err(Error::InvalidConfig(format!(
                "invalid bridge name {:?}: 1-15 characters of [A-Za-z0-9_.-]",
                config.bridge
            )));
        }
        if !valid_name(&config.table, 64) || config.table.contains('.') {
            return Err(Error::InvalidConfig(format!(
                "invalid nftables table name {:?}: 1-64 characters of [A-Za-z0-9_-]",
                config.table
            )));
        }
        if config.name.is_empty() {
            return Err(Error::InvalidConfig("empty network name".into()));
        }
        fs::create_dir_all(state_dir).map_err(|e| state_err(state_dir, e))?;
        let mut net = Network {
            dir: state_dir.to_path_buf(),
            cfg: config.clone(),
            subnet: Subnet::new(Ipv4Addr::new(10, 0, 0, 0), 8)?,
        };
        let _lock = net.lock()?;
        let _host_lock = host_lock()?;
        let existing = net.load()?;
        if let Some(st) = &existing {
            if st.bridge != config.bridge || st.table != config.table {
                return Err(Error::InvalidConfig(format!(
                    "network {} in {} uses bridge {} and table {}, not {} and {}",
                    st.name,
                    state_dir.display(),
                    st.bridge,
                    st.table,
                    config.bridge,
                    config.table
                )));
            }
            if let Some(s) = config.subnet
                && s != st.subnet
            {
                return Err(Error::InvalidConfig(format!(
                    "network {} has subnet {}, not {s}",
                    st.name, st.subnet
                )));
            }
        }
        let mut nl = Netlink::open()?;
        let bridge_existed = nl.link_index(&config.bridge)?;
        let routes = nl.routes()?;
        let subnet = match (&existing, config.subnet) {
            (Some(st), _) => st.subnet,
            (None, Some(s)) => s,
            // A bridge that is already there (left by an earlier daemon, or made by the
            // admin, as with dockerd's `-b`) keeps its subnet rather than gaining another.
            (None, None) => match bridge_existed.and_then(|idx| {
                routes
                    .iter()
                    .find(|r| r.oif == Some(idx) && (1..=30).contains(&r.prefix))
            }) {
                Some(r) => Subnet::new(r.dst, r.prefix)?,
                None => ipam::pick_subnet(&routes)?,
            },
        };
        if let Some(r) = ipam::overlapping_route(&subnet, &routes, bridge_existed) {
            // Routes through our own bridge are ours (skipped above); anything else conflicts.
            return Err(Error::SubnetOverlap {
                subnet: subnet.to_string(),
                route: format!("{}/{}", r.dst, r.prefix),
            });
        }
        net.subnet = subnet;
        let result = (|| {
            let idx = nl.create_bridge(&config.bridge)?;
            nl.add_address(idx, subnet.gateway(), subnet.prefix())?;
            nl.set_up(idx)?;
            write_sysctl(
                &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", config.bridge),
                "1",
            )?;
            let mut forward_set = existing.as_ref().is_some_and(|s| s.ip_forward_enabled);
            let fwd = "/proc/sys/net/ipv4/ip_forward";
            if read_sysctl(fwd)? == "0" {
                write_sysctl(fwd, "1")?;
                tracing::info!(bridge = %config.bridge, "enabled net.ipv4.ip_forward for container egress");
                forward_set = true;
            }
            nft::setup(&config.table, &config.bridge, &subnet, config.internal)?;
            let st = existing.clone().unwrap_or_else(|| State {
                name: config.name.clone(),
                bridge: config.bridge.clone(),
                table: config.table.clone(),
                subnet,
                ip_forward_enabled: false,
                containers: BTreeMap::new(),
            });
            net.save(&State {
                ip_forward_enabled: forward_set,
                ..st
            })
        })();
        if let Err(e) = result {
            if bridge_existed.is_none() {
                let _ = nl.delete_link(&config.bridge);
            }
            if existing.is_none() {
                let _ = nft::remove_network(&config.table, &config.bridge);
            }
            return Err(e);
        }
        Ok(net)
    }

    /// The network's subnet.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// The bridge's address.
    pub fn gateway(&self) -> Ipv4Addr {
        self.subnet.gateway()
    }

    /// The configuration this handle was opened with.
    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    /// The containers attached, by id.
    pub fn attachments(&self) -> Result<BTreeMap<String, Attachment>, Error> {
        let _lock = self.lock()?;
        Ok(self.load()?.map(|s| s.containers).unwrap_or_default())
    }

    /// Connects the container whose network namespace is `netns` (a `/proc/<pid>/ns/net` or
    /// bind-mounted netns file): allocates an address (`static_ip` if given and free), creates
    /// a veth pair whose peer becomes `eth0` in the namespace with address, default route and
    /// loopback up, attaches the host end to the bridge, and publishes `ports`.
    ///
    /// Attaching an attached container returns its attachment. On error everything this call
    /// made (veth, address allocation, rules) is removed again.
    pub fn attach(
        &self,
        container_id: &str,
        netns: &Path,
        ports: &[PortBinding],
        static_ip: Option<Ipv4Addr>,
    ) -> Result<Attachment, Error> {
        self.attach_with(
            container_id,
            netns,
            ports,
            static_ip,
            &AttachOptions::default(),
        )
    }

    /// [`Network::attach`] with the interface's name and whether it carries the default
    /// route (a container's second network is `eth1` without one). Internal networks publish
    /// no ports (Docker ignores them there too).
    pub fn attach_with(
        &self,
        container_id: &str,
        netns: &Path,
        ports: &[PortBinding],
        static_ip: Option<Ipv4Addr>,
        opts: &AttachOptions,
    ) -> Result<Attachment, Error> {
        check_container_id(container_id)?;
        if !valid_name(&opts.ifname, 15) {
            return Err(Error::InvalidConfig(format!(
                "invalid interface name {:?}",
                opts.ifname
            )));
        }
        let ports = if self.cfg.internal { &[][..] } else { ports };
        let _lock = self.lock()?;
        let mut st = self.load_required()?;
        let veth = self.veth_name(container_id);
        let mut host = Netlink::open()?;
        if let Some(a) = st.containers.get(container_id) {
            if host.link_index(&veth)?.is_some() {
                return Ok(a.clone());
            }
            // Recorded but its veth is gone (the namespace died): start afresh.
            if !a.ports.is_empty() {
                nft::remove_container(&self.cfg.table, &self.cfg.bridge, container_id)?;
            }
            st.containers.remove(container_id);
        }
        let taken: BTreeSet<Ipv4Addr> = st.containers.values().map(|a| a.ip).collect();
        let ip = match static_ip {
            Some(ip) => {
                if !self.subnet.contains(ip) {
                    return Err(Error::IpOutsideSubnet {
                        ip,
                        subnet: self.subnet.to_string(),
                    });
                }
                if !self.subnet.assignable(ip) {
                    return Err(Error::IpReserved { ip });
                }
                if let Some((other, _)) = st.containers.iter().find(|(_, a)| a.ip == ip) {
                    return Err(Error::IpInUse {
                        ip,
                        container: other.clone(),
                    });
                }
                ip
            }
            None => self
                .subnet
                .next_free(&taken)
                .ok_or_else(|| Error::PoolExhausted(self.subnet.to_string()))?,
        };
        // Conflicts with bindings berth already made (this network's, and any other network's
        // sharing the table) are refused before touching anything. A container publishing
        // nothing has nothing to check and no rule to add: its attach never runs `nft`.
        let resolved = if ports.is_empty() {
            Vec::new()
        } else {
            let mut in_use: Vec<(String, PortBinding)> = st
                .containers
                .iter()
                .flat_map(|(id, a)| a.ports.iter().map(move |p| (id.clone(), *p)))
                .collect();
            in_use.extend(nft::published_ports(&self.cfg.table)?);
            for (i, p) in ports.iter().enumerate() {
                if let Some((who, q)) = in_use.iter().find(|(_, q)| p.conflicts(q)) {
                    return Err(port_in_use(
                        p,
                        &format!("already published as {q} by container {who}"),
                    ));
                }
                if let Some(q) = ports[..i].iter().find(|q| p.conflicts(q)) {
                    return Err(port_in_use(p, &format!("requested twice (also as {q})")));
                }
            }
            resolve_ports(ports, &in_use)?
        };
        let o = u32::from(ip).to_be_bytes();
        let mac = format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]);
        let attachment = Attachment {
            ip,
            prefix: self.subnet.prefix(),
            gateway: self.subnet.gateway(),
            mac,
            veth: veth.clone(),
            ifname: opts.ifname.clone(),
            ports: resolved,
        };
        // Record first, ports included, so a crash in the middle leaves something detach can
        // clean: rules exist only for attachments whose record lists ports.
        st.containers
            .insert(container_id.to_string(), attachment.clone());
        self.save(&st)?;
        let result = (|| {
            self.plumb(&mut host, &veth, netns, ip, o, opts)?;
            nft::add_ports(
                &self.cfg.table,
                &self.cfg.bridge,
                container_id,
                ip,
                &attachment.ports,
            )
        })();
        match result {
            Ok(()) => {
                tracing::debug!(container = container_id, %ip, "attached");
                Ok(attachment)
            }
            Err(e) => {
                if !attachment.ports.is_empty() {
                    let _ = nft::remove_container(&self.cfg.table, &self.cfg.bridge, container_id);
                }
                let _ = host.delete_link(&veth);
                st.containers.remove(container_id);
                let _ = self.save(&st);
                Err(e)
            }
        }
    }

    fn plumb(
        &self,
        host: &mut Netlink,
        veth: &str,
        netns: &Path,
        ip: Ipv4Addr,
        o: [u8; 4],
        opts: &AttachOptions,
    ) -> Result<(), Error> {
        let bridge = host
            .link_index(&self.cfg.bridge)?
            .ok_or_else(|| Error::InvalidConfig(format!("bridge {} is gone", self.cfg.bridge)))?;
        let mac = [0x02, 0x42, o[0], o[1], o[2], o[3]];
        let eth_name = opts.ifname.as_str();
        // A leftover of an earlier attach whose deletion was deferred (detach_deferred).
        host.delete_link(veth)?;
        let vidx = host.create_veth(veth, Some(bridge), eth_name, mac, netns, LINK_MTU)?;
        host.set_up(vidx)?;
        let mut ns = Netlink::open_in(netns)?;
        if let Some(lo) = ns.link_index("lo")? {
            ns.set_up(lo)?;
        }
        let eth = ns.link_index(eth_name)?.ok_or_else(|| Error::Netlink {
            op: format!("find {eth_name} in {}", netns.display()),
            source: std::io::Error::other("missing after creation"),
        })?;
        ns.add_address(eth, ip, self.subnet.prefix())?;
        ns.set_up(eth)?;
        if opts.default_route {
            ns.add_default_route(self.subnet.gateway(), eth, Some(ROUTE_MTU))?;
        }
        Ok(())
    }

    /// Disconnects a container: its rules, its veth pair and its address. Detaching an
    /// unknown container is not an error.
    pub fn detach(&self, container_id: &str) -> Result<(), Error> {
        self.detach_with(container_id, false).map(|_| ())
    }

    /// [`Network::detach`] for a container whose processes have all exited, without waiting
    /// for its veth to go: deleting a link waits for RCU grace periods (20–40 ms on a busy
    /// host), and a dead container's namespace takes its veth pair with it anyway. Rules,
    /// address and state are dropped now; the returned link, if any, is for the caller to
    /// delete later ([`PendingLink::delete`]), which also covers a namespace kept alive by
    /// another container (`--network container:`). A new attach under the same name first
    /// removes such a leftover.
    pub fn detach_deferred(&self, container_id: &str) -> Result<Option<PendingLink>, Error> {
        self.detach_with(container_id, true)
    }

    /// Both detaches: the rules, then the veth (deleted here unless `defer`), then the state.
    fn detach_with(&self, container_id: &str, defer: bool) -> Result<Option<PendingLink>, Error> {
        check_container_id(container_id)?;
        let _lock = self.lock()?;
        let mut st = self.load_required()?;
        let published = st
            .containers
            .get(container_id)
            .is_some_and(|a| !a.ports.is_empty());
        if published {
            nft::remove_container(&self.cfg.table, &self.cfg.bridge, container_id)?;
        }
        let name = self.veth_name(container_id);
        let mut link = Netlink::open()?
            .link_index(&name)?
            .map(|index| PendingLink { index, name });
        if !defer && let Some(l) = link.take() {
            l.delete()?;
        }
        if st.containers.remove(container_id).is_some() {
            self.save(&st)?;
        }
        Ok(link)
    }

    /// Removes a container's veth, and its rules when its record lists published ports
    /// (attach records the ports before it adds any rule).
    fn teardown(&self, container_id: &str, published: bool) -> Result<(), Error> {
        if published {
            nft::remove_container(&self.cfg.table, &self.cfg.bridge, container_id)?;
        }
        Netlink::open()?.delete_link(&self.veth_name(container_id))
    }

    /// Removes the network: every container's veth, the nftables table, the bridge and the
    /// state file. `ip_forward` is left as it is (see the module docs).
    pub fn destroy(self) -> Result<(), Error> {
        let _lock = self.lock()?;
        if let Some(st) = self.load()? {
            for (id, a) in &st.containers {
                self.teardown(id, !a.ports.is_empty())?;
            }
        }
        nft::remove_network(&self.cfg.table, &self.cfg.bridge)?;
        Netlink::open()?.delete_link(&self.cfg.bridge)?;
        let path = self.dir.join(STATE_FILE);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(state_err(&path, e)),
            _ => Ok(()),
        }
    }

    /// The host end's name: `veth` + 11 hex digits of a hash of bridge and container, so
    /// it fits IFNAMSIZ and differs between networks and test instances.
    pub fn veth_name(&self, container_id: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.cfg.bridge.as_bytes());
        h.update(b"/");
        h.update(container_id.as_bytes());
        let d = h.finalize();
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        format!("veth{}", &hex[..11])
    }

    fn lock(&self) -> Result<Lock, Error> {
        let path = self.dir.join("lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| state_err(&path, e))?;
        flock(&f, FlockOperation::LockExclusive).map_err(|e| state_err(&path, e.into()))?;
        Ok(Lock(f))
    }

    fn load(&self) -> Result<Option<State>, Error> {
        let path = self.dir.join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(state_err(&path, e)),
        };
        let st: State = serde_json::from_slice(&data).map_err(|e| Error::CorruptState {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        for (id, a) in &st.containers {
            if check_container_id(id).is_err() || !st.subnet.assignable(a.ip) {
                return Err(Error::CorruptState {
                    path,
                    reason: format!("bad entry for container {id:?}"),
                });
            }
        }
        Ok(Some(st))
    }

    fn load_required(&self) -> Result<State, Error> {
        self.load()?.ok_or_else(|| {
            Error::InvalidConfig(format!(
                "network {} was destroyed (no state in {})",
                self.cfg.name,
                self.dir.display()
            ))
        })
    }

    fn save(&self, st: &State) -> Result<(), Error> {
        let path = self.dir.join(STATE_FILE);
        let data = serde_json::to_vec_pretty(st).map_err(|e| Error::CorruptState {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut tmp =
            tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| state_err(&path, e))?;
        tmp.write_all(&data).map_err(|e| state_err(&path, e))?;
        // Not fsynced: the state mirrors kernel objects (veths, addresses, rules) that a host
        // crash takes away with the containers, and the rename alone is atomic for a daemon
        // killed mid-write. An fsync here cost every attach and detach a journal commit.
        tmp.persist(&path).map_err(|e| state_err(&path, e.error))?;
        Ok(())
    }
}

/// A container's host-side veth left for later deletion by [`Network::detach_deferred`].
#[derive(Debug)]
pub struct PendingLink {
    index: u32,
    name: String,
}

impl PendingLink {
    /// Deletes the link (by index: a link of the same name made since stays); one already
    /// gone with its namespace is fine.
    pub fn delete(self) -> Result<(), Error> {
        Netlink::open()?.delete_link_index(self.index, &self.name)
    }
}

fn check_container_id(id: &str) -> Result<(), Error> {
    if valid_name(id, 100) {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "invalid container id {id:?}: 1-100 characters of [A-Za-z0-9_.-]"
        )))
    }
}

fn port_in_use(p: &PortBinding, why: &str) -> Error {
    Error::PortInUse {
        binding: p.to_string(),
        reason: why.to_string(),
    }
}

/// Checks each binding against the host's sockets (binding and releasing the port) and
/// replaces host port 0 with a free port.
fn resolve_ports(
    ports: &[PortBinding],
    in_use: &[(String, PortBinding)],
) -> Result<PortBindings, Error> {
    let mut out: Vec<PortBinding> = Vec::new();
    for p in ports {
        let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let mut chosen = None;
        for _ in 0..20 {
            let port = probe(p.proto, SocketAddrV4::new(ip, p.host_port))
                .map_err(|e| port_in_use(p, &format!("cannot bind on the host: {e}")))?;
            let candidate = PortBinding {
                host_port: port,
                ..*p
            };
            let clash = in_use
                .iter()
                .map(|(_, q)| q)
                .chain(out.iter())
                .any(|q| candidate.conflicts(q));
            if !clash {
                chosen = Some(candidate);
                break;
            }
            if p.host_port != 0 {
                return Err(port_in_use(p, "already published"));
            }
        }
        out.push(chosen.ok_or_else(|| port_in_use(p, "no free ephemeral port"))?);
    }
    Ok(out)
}

fn probe(proto: Proto, addr: SocketAddrV4) -> std::io::Result<u16> {
    Ok(match proto {
        Proto::Tcp => TcpListener::bind(addr)?.local_addr()?.port(),
        Proto::Udp => UdpSocket::bind(addr)?.local_addr()?.port(),
    })
}

fn state_err(path: &Path, source: std::io::Error) -> Error {
    Error::State {
        path: path.to_path_buf(),
        source,
    }
}

fn read_sysctl(path: &str) -> Result<String, Error> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| state_err(Path::new(path), e))
}

fn write_sysctl(path: &str, value: &str) -> Result<(), Error> {
    fs::write(path, value).map_err(|e| state_err(Path::new(path), e))
}

// The engine shares one handle between tokio tasks.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Network>();
};
