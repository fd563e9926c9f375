//! User-defined networks (`docker network create`) and their embedded DNS.
//!
//! Each network is a berth-net [`berth_net::Network`] of its own: a bridge named
//! `br-<12 hex>` (a hash of berthd's nftables table and the network id, so networks of
//! different daemons never share a name), a subnet from the default pools (or the one asked
//! for), its chains in berthd's table. Networks are stored as JSON in the database's
//! `networks` table and reopened (bridge, rules, DNS) when berthd starts.
//!
//! Containers name their networks at create (`NetworkMode`, `NetworkingConfig`) or join them
//! later (`connect`); [`Endpoint`]s are kept in the container's record and become interfaces
//! (`eth0`, `eth1`, …) while it runs. The first one carries the default route (not on an
//! internal network).
//!
//! DNS: like aardvark-dns, berthd answers on UDP and TCP port 53 of each network's gateway
//! address (in the host's namespace), and containers on user networks get that address as
//! their nameserver. Names of containers on the same network (name, aliases, short id)
//! are answered from a table kept per network; unknown names without a dot get NXDOMAIN;
//! other names are forwarded, from the host's side, to the host's resolvers.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use berth_api_types::Filters;
use berth_api_types::models::{
    ContainerCreateBody, EndpointResource, EndpointSettings, Ipam, IpamConfig, Network,
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkInspect, NetworkPruneResponse,
};
use berth_net::dns::{self, Action};
use berth_net::{AttachOptions, Subnet};
use berth_store::db::NETWORKS;
use berth_types::Error;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock;
use crate::engine::{Ctr, Engine};
use crate::record::Record;

/// The option naming a network's bridge.
pub const BRIDGE_NAME_OPT: &str = "com.docker.network.bridge.name";

/// A user network as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NetRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    pub driver: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    #[serde(default)]
    pub options: HashMap<String, String>,
    pub subnet: String,
    #[serde(default)]
    pub ip_range: Option<String>,
    pub bridge: String,
}

/// A container's membership of a user network (kept in its record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The network's id.
    pub network_id: String,
    /// Docker's endpoint id (64 hex).
    pub endpoint_id: String,
    /// `--network-alias`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`.
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    /// The network's gateway (the container's nameserver).
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// Its interface while the container runs.
    #[serde(default)]
    pub attachment: Option<berth_net::Attachment>,
}

/// Names the DNS server answers for one network.
#[derive(Debug, Default)]
pub(crate) struct DnsTable {
    /// container id → (names, address)
    entries: RwLock<BTreeMap<String, (Vec<String>, Ipv4Addr)>>,
}

impl DnsTable {
    fn insert(&self, id: &str, names: Vec<String>, ip: Ipv4Addr) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), (names, ip));
    }

    fn remove(&self, id: &str) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// The addresses of containers called `name` (case-insensitive).
    pub(crate) fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        let e = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let found: Vec<Ipv4Addr> = e
            .values()
            .filter(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .map(|(_, ip)| *ip)
            .collect();
        (!found.is_empty()).then_some(found)
    }

    fn container_at(&self, ip: Ipv4Addr) -> Option<String> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(_, (_, a))| *a == ip)
            .map(|(id, _)| id.clone())
    }

    fn has(&self, id: &str) -> bool {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }

    fn is_empty(&self) -> bool {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }
}

/// Every network's table, so a container on several networks resolves the names of all of
/// them, whichever gateway it asks.
pub(crate) type Registry = Arc<RwLock<BTreeMap<String, Arc<DnsTable>>>>;

/// What the DNS server of one network answers for a client at `peer`.
struct Resolver {
    own: Arc<DnsTable>,
    all: Registry,
}

impl Resolver {
    fn lookup(&self, peer: std::net::IpAddr, name: &str) -> Option<Vec<Ipv4Addr>> {
        if let Some(found) = self.own.lookup(name) {
            return Some(found);
        }
        let std::net::IpAddr::V4(peer) = peer else {
            return None;
        };
        let id = self.own.container_at(peer)?;
        let tables: Vec<Arc<DnsTable>> = self
            .all
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        tables
            .iter()
            .filter(|t| t.has(&id))
            .find_map(|t| t.lookup(name))
    }
}

/// One open user network.
pub(crate) struct UserNet {
    pub rec: NetRecord,
    pub net: berth_net::Network,
    pub dns: Arc<DnsTable>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for UserNet {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// The daemon's user networks.
#[derive(Default)]
pub(crate) struct Networks {
    map: RwLock<BTreeMap<String, Arc<UserNet>>>,
    registry: Registry,
    /// Serialises create/remove (name uniqueness, subnet choice).
    op: tokio::sync::Mutex<()>,
}

impl Networks {
    fn all(&self) -> Vec<Arc<UserNet>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn insert(&self, n: Arc<UserNet>) {
        self.registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(n.rec.id.clone(), n.dns.clone());
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(n.rec.id.clone(), n);
    }

    fn take(&self, id: &str) -> Option<Arc<UserNet>> {
        self.registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }

    /// By exact id, exact name, then unique id prefix.
    pub(crate) fn find(&self, key: &str) -> Option<Arc<UserNet>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        if key.is_empty() {
            return None;
        }
        if let Some(n) = map.get(key) {
            return Some(n.clone());
        }
        if let Some(n) = map.values().find(|n| n.rec.name == key) {
            return Some(n.clone());
        }
        let mut it = map.values().filter(|n| n.rec.id.starts_with(key));
        match (it.next(), it.next()) {
            (Some(n), None) => Some(n.clone()),
            _ => None,
        }
    }

    /// Opens every stored network (bridge, rules) and starts its DNS server. A network that
    /// cannot be opened is logged and skipped, so one broken network does not stop berthd.
    pub(crate) fn load(cfg: &crate::Config, db: &berth_store::Db) -> Result<Networks, Error> {
        let nets = Networks::default();
        let recs = db
            .read(|tx| tx.list(&NETWORKS, ""))
            .map_err(|e: berth_store::Error| Error::system(format!("loading networks: {e}")))?;
        for (id, v) in recs {
            let rec: NetRecord = match serde_json::from_value(v) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("network {id}: unreadable record, skipped: {e}");
                    continue;
                }
            };
            match open_net(cfg, &rec) {
                Ok(net) => nets.insert(Arc::new(UserNet {
                    rec,
                    net,
                    dns: Arc::default(),
                    tasks: Mutex::new(Vec::new()),
                })),
                Err(e) => tracing::error!("network {}: cannot be set up: {e}", rec.name),
            }
        }
        Ok(nets)
    }
}

fn table(cfg: &crate::Config) -> String {
    cfg.network
        .as_ref()
        .map_or_else(|| "berth".to_string(), |n| n.table.clone())
}

fn state_dir(cfg: &crate::Config, bridge: &str) -> PathBuf {
    cfg.data_root.join("network").join(bridge)
}

fn open_net(cfg: &crate::Config, rec: &NetRecord) -> Result<berth_net::Network, Error> {
    let subnet: Subnet = rec.subnet.parse().map_err(crate::net::net_err)?;
    berth_net::Network::open(
        &state_dir(cfg, &rec.bridge),
        berth_net::NetworkConfig {
            name: rec.name.clone(),
            bridge: rec.bridge.clone(),
            subnet: Some(subnet),
            table: table(cfg),
            internal: rec.internal,
        },
    )
    .map_err(crate::net::net_err)
}

fn hex_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"/");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The default bridge's id (stable for a bridge name).
fn bridge_id(bridge: &str) -> String {
    hex_hash(&["berth-default-bridge", bridge])
}

fn valid_network_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && n.len() <= 128
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn parse_subnet(s: &str, what: &str) -> Result<Subnet, Error> {
    s.parse::<Subnet>()
        .map_err(|e| Error::invalid_parameter(format!("invalid {what} {s:?}: {e}")))
}

const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

fn net_event(engine: &Engine, action: &str, id: &str, name: &str, extra: Option<(&str, &str)>) {
    let mut attrs = BTreeMap::new();
    attrs.insert("name".to_string(), name.to_string());
    attrs.insert("type".to_string(), "bridge".to_string());
    if let Some((k, v)) = extra {
        attrs.insert(k.to_string(), v.to_string());
    }
    engine
        .inner
        .events
        .publish("network", action.to_string(), id.to_string(), attrs);
}

/// The names a container answers to on a network.
fn dns_names(rec: &Record, ep: &Endpoint) -> Vec<String> {
    let mut names = vec![rec.short_name().to_string(), rec.id[..12].to_string()];
    names.extend(ep.aliases.iter().cloned());
    names
}

impl Engine {
    /// Starts the DNS servers of every network and fills their tables from the running
    /// containers (after the containers were re-adopted at startup).
    pub(crate) async fn start_networks(&self) {
        for n in self.inner.networks.all() {
            self.start_dns(&n).await;
        }
        for ctr in self.all() {
            let rec = ctr.record();
            for (name, ep) in &rec.endpoints {
                if let (Some(a), Some(n)) = (&ep.attachment, self.inner.networks.find(name)) {
                    n.dns.insert(&rec.id, dns_names(&rec, ep), a.ip);
                }
            }
        }
    }

    async fn start_dns(&self, n: &Arc<UserNet>) {
        let addr = SocketAddr::from((n.net.gateway(), 53));
        let mut tasks = Vec::new();
        let resolver = Arc::new(Resolver {
            own: n.dns.clone(),
            all: self.inner.networks.registry.clone(),
        });
        match tokio::net::UdpSocket::bind(addr).await {
            Ok(sock) => tasks.push(tokio::spawn(serve_udp(Arc::new(sock), resolver.clone()))),
            Err(e) => {
                tracing::warn!(network = %n.rec.name, "dns: cannot listen on udp {addr}: {e}")
            }
        }
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => tasks.push(tokio::spawn(serve_tcp(l, resolver))),
            Err(e) => {
                tracing::warn!(network = %n.rec.name, "dns: cannot listen on tcp {addr}: {e}")
            }
        }
        n.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(tasks);
    }

    fn default_bridge_summary(&self) -> Option<Network> {
        let net = self.inner.net.as_ref()?;
        let bridge = &net.config().bridge;
        let mut options = HashMap::new();
        options.insert(BRIDGE_NAME_OPT.to_string(), bridge.clone());
        options.insert(
            "com.docker.network.bridge.default_bridge".into(),
            "true".into(),
        );
        Some(Network {
            name: Some("bridge".into()),
            id: Some(bridge_id(bridge)),
            scope: Some("local".into()),
            driver: Some("bridge".into()),
            enable_ipv4: Some(true),
            enable_ipv6: Some(false),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(vec![IpamConfig {
                    subnet: Some(net.subnet().to_string()),
                    gateway: Some(net.gateway().to_string()),
                    ..Default::default()
                }]),
                options: None,
            }),
            internal: Some(false),
            attachable: Some(false),
            ingress: Some(false),
            config_only: Some(false),
            options: Some(options),
            labels: Some(HashMap::new()),
            ..Default::default()
        })
    }

    fn simple_summary(name: &str, driver: &str) -> Network {
        Network {
            name: Some(name.into()),
            id: Some(hex_hash(&["berth-predefined", name])),
            scope: Some("local".into()),
            driver: Some(driver.into()),
            enable_ipv4: Some(true),
            enable_ipv6: Some(false),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(Vec::new()),
                options: None,
            }),
            internal: Some(false),
            attachable: Some(false),
            ingress: Some(false),
            config_only: Some(false),
            options: Some(HashMap::new()),
            labels: Some(HashMap::new()),
            ..Default::default()
        }
    }

    fn user_summary(n: &UserNet) -> Network {
        Network {
            name: Some(n.rec.name.clone()),
            id: Some(n.rec.id.clone()),
            created: Some(n.rec.created.clone()),
            scope: Some("local".into()),
            driver: Some(n.rec.driver.clone()),
            enable_ipv4: Some(true),
            enable_ipv6: Some(false),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(vec![IpamConfig {
                    subnet: Some(n.rec.subnet.clone()),
                    gateway: Some(n.net.gateway().to_string()),
                    ip_range: n.rec.ip_range.clone(),
                    ..Default::default()
                }]),
                options: Some(HashMap::new()),
            }),
            internal: Some(n.rec.internal),
            attachable: Some(false),
            ingress: Some(false),
            config_only: Some(false),
            options: Some(n.rec.options.clone()),
            labels: Some(n.rec.labels.clone()),
            ..Default::default()
        }
    }

    /// Every network with whether it is predefined.
    fn summaries(&self) -> Vec<(Network, bool)> {
        let mut out = Vec::new();
        if let Some(b) = self.default_bridge_summary() {
            out.push((b, true));
        }
        out.push((Self::simple_summary("host", "host"), true));
        out.push((Self::simple_summary("none", "null"), true));
        for n in self.inner.networks.all() {
            out.push((Self::user_summary(&n), false));
        }
        out
    }

    /// `GET /networks`.
    pub async fn network_list(&self, filters: &Filters) -> Result<Vec<Network>, Error> {
        filters
            .check(&["dangling", "driver", "id", "label", "name", "scope", "type"])
            .map_err(Error::invalid_parameter)?;
        for t in filters.get("type") {
            if t != "custom" && t != "builtin" {
                return Err(Error::invalid_parameter(format!(
                    "invalid filter: 'type'='{t}'"
                )));
            }
        }
        let used = self.used_networks();
        Ok(self
            .summaries()
            .into_iter()
            .filter(|(n, builtin)| {
                let name = n.name.as_deref().unwrap_or("");
                let id = n.id.as_deref().unwrap_or("");
                let driver = n.driver.as_deref().unwrap_or("");
                let any = |f: &str, p: &dyn Fn(&str) -> bool| {
                    let v = filters.get(f);
                    v.is_empty() || v.iter().any(|x| p(x))
                };
                any("name", &|x| name.contains(x))
                    && any("id", &|x| id.starts_with(x))
                    && any("driver", &|x| driver == x)
                    && any("scope", &|x| x == "local")
                    && any("type", &|x| (x == "builtin") == *builtin)
                    && any("dangling", &|x| {
                        let dangling = !builtin && !used.contains(name);
                        matches!(x, "true" | "1") == dangling
                    })
                    && filters.match_labels("label", &n.labels.clone().unwrap_or_default())
            })
            .map(|(n, _)| n)
            .collect())
    }

    /// Names of user networks some running container is attached to.
    fn used_networks(&self) -> std::collections::BTreeSet<String> {
        self.all()
            .iter()
            .flat_map(|c| {
                c.record()
                    .endpoints
                    .into_iter()
                    .filter(|(_, e)| e.attachment.is_some())
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// `GET /networks/{id}`.
    pub async fn network_inspect(&self, key: &str) -> Result<NetworkInspect, Error> {
        let (summary, containers) = if let Some(n) = self.inner.networks.find(key) {
            let mut cs = HashMap::new();
            for c in self.all() {
                let rec = c.record();
                if let Some(ep) = rec.endpoints.get(&n.rec.name)
                    && let Some(a) = &ep.attachment
                {
                    cs.insert(rec.id.clone(), endpoint_resource(&rec, &ep.endpoint_id, a));
                }
            }
            (Self::user_summary(&n), cs)
        } else {
            let s = self
                .summaries()
                .into_iter()
                .map(|(s, _)| s)
                .find(|s| {
                    s.name.as_deref() == Some(key)
                        || s.id.as_deref() == Some(key)
                        || (key.len() >= 3 && s.id.as_deref().is_some_and(|i| i.starts_with(key)))
                })
                .ok_or_else(|| Error::not_found(format!("network {key} not found")))?;
            let mut cs = HashMap::new();
            if s.name.as_deref() == Some("bridge") {
                for c in self.all() {
                    let rec = c.record();
                    if let Some(a) = &rec.net {
                        let eid = hex_hash(&["endpoint", &rec.id]);
                        cs.insert(rec.id.clone(), endpoint_resource(&rec, &eid, a));
                    }
                }
            }
            (s, cs)
        };
        Ok(NetworkInspect {
            name: summary.name,
            id: summary.id,
            created: summary.created,
            scope: summary.scope,
            driver: summary.driver,
            enable_ipv4: summary.enable_ipv4,
            enable_ipv6: summary.enable_ipv6,
            ipam: summary.ipam,
            internal: summary.internal,
            attachable: summary.attachable,
            ingress: summary.ingress,
            config_only: summary.config_only,
            options: summary.options,
            labels: summary.labels,
            containers: Some(containers),
            ..Default::default()
        })
    }

    /// `POST /networks/create`.
    pub async fn network_create(
        &self,
        req: NetworkCreateRequest,
    ) -> Result<NetworkCreateResponse, Error> {
        let _g = self.inner.networks.op.lock().await;
        let name = req.name.clone();
        if !valid_network_name(&name) {
            return Err(Error::invalid_parameter(format!(
                "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        if PREDEFINED.contains(&name.as_str()) || self.inner.networks.find(&name).is_some() {
            return Err(Error::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let driver = req.driver.clone().filter(|d| !d.is_empty());
        if let Some(d) = driver.as_deref()
            && d != "bridge"
        {
            return Err(Error::invalid_parameter(format!(
                "network driver {d:?} is not supported: berth has only bridge networks"
            )));
        }
        if req.enable_ipv6 == Some(true) {
            return Err(Error::invalid_parameter(
                "EnableIPv6: IPv6 networks are not supported yet",
            ));
        }
        let ipam = req.ipam.clone().unwrap_or_default();
        if let Some(d) = ipam
            .driver
            .as_deref()
            .filter(|d| !d.is_empty() && *d != "default")
        {
            return Err(Error::invalid_parameter(format!(
                "IPAM driver {d:?} is not supported"
            )));
        }
        let configs = ipam.config.clone().unwrap_or_default();
        if configs.len() > 1 {
            return Err(Error::invalid_parameter(
                "IPAM.Config: only one IPv4 subnet per network is supported",
            ));
        }
        let conf = configs.into_iter().next().unwrap_or_default();
        let subnet = conf
            .subnet
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| parse_subnet(s, "subnet"))
            .transpose()?;
        if let Some(gw) = conf.gateway.as_deref().filter(|s| !s.is_empty()) {
            let Some(s) = subnet else {
                return Err(Error::invalid_parameter(
                    "IPAM.Config.Gateway: a gateway needs a subnet",
                ));
            };
            let ip: Ipv4Addr = gw
                .parse()
                .map_err(|_| Error::invalid_parameter(format!("invalid gateway address {gw:?}")))?;
            if !s.contains(ip) {
                return Err(Error::invalid_parameter(format!(
                    "gateway {ip} is outside subnet {s}"
                )));
            }
            if ip != s.gateway() {
                return Err(Error::invalid_parameter(format!(
                    "gateway {ip}: berth gives the bridge the subnet's first address ({})",
                    s.gateway()
                )));
            }
        }
        let ip_range = match conf.ip_range.as_deref().filter(|s| !s.is_empty()) {
            Some(r) => {
                let Some(s) = subnet else {
                    return Err(Error::invalid_parameter(
                        "IPAM.Config.IPRange: an ip range needs a subnet",
                    ));
                };
                let range = parse_subnet(r, "ip range")?;
                if !s.contains(range.addr()) || range.prefix() < s.prefix() {
                    return Err(Error::invalid_parameter(format!(
                        "ip range {range} is not inside subnet {s}"
                    )));
                }
                Some(range.to_string())
            }
            None => None,
        };
        // Other networks of this daemon (their bridges' routes cover the rest).
        if let Some(s) = subnet {
            let mut others: Vec<(String, Subnet)> = self
                .inner
                .networks
                .all()
                .iter()
                .map(|n| (n.rec.name.clone(), n.net.subnet()))
                .collect();
            if let Some(b) = self.inner.net.as_ref() {
                others.push(("bridge".into(), b.subnet()));
            }
            if let Some((n, o)) = others
                .iter()
                .find(|(_, o)| s.overlaps(o.addr(), o.prefix()))
            {
                return Err(Error::forbidden(format!(
                    "invalid pool request: subnet {s} overlaps with network {n} ({o})"
                )));
            }
        }
        let mut options = req.options.clone().unwrap_or_default();
        let id = berth_types::ContainerId::generate().as_str().to_string();
        let bridge = match options.get(BRIDGE_NAME_OPT).filter(|b| !b.is_empty()) {
            Some(b) => {
                let ok = b.len() <= 15
                    && b.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !ok {
                    return Err(Error::invalid_parameter(format!(
                        "invalid bridge name {b:?}: 1-15 characters of [A-Za-z0-9_.-]"
                    )));
                }
                let taken = self.inner.networks.all().iter().any(|n| &n.rec.bridge == b)
                    || self
                        .inner
                        .net
                        .as_ref()
                        .is_some_and(|n| &n.config().bridge == b)
                    || std::path::Path::new("/sys/class/net").join(b).exists();
                if taken {
                    return Err(Error::conflict(format!(
                        "bridge name {b} is already in use"
                    )));
                }
                b.clone()
            }
            None => format!("br-{}", &hex_hash(&[&table(&self.inner.cfg), &id])[..12]),
        };
        options.retain(|k, _| k.starts_with("com.docker.network."));
        let internal = req.internal.unwrap_or(false);
        let cfg = self.inner.cfg.clone();
        let dir = state_dir(&cfg, &bridge);
        let ncfg = berth_net::NetworkConfig {
            name: name.clone(),
            bridge: bridge.clone(),
            subnet,
            table: table(&cfg),
            internal,
        };
        let net = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || berth_net::Network::open(&dir, ncfg)
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
        let net = match net {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(match e {
                    berth_net::Error::SubnetOverlap { .. } | berth_net::Error::NoFreeSubnet => {
                        Error::forbidden(format!("invalid pool request: {e}"))
                    }
                    e => crate::net::net_err(e),
                });
            }
        };
        let rec = NetRecord {
            id: id.clone(),
            name: name.clone(),
            created: clock::now_rfc3339(),
            driver: "bridge".into(),
            internal,
            labels: req.labels.clone().unwrap_or_default(),
            options,
            subnet: net.subnet().to_string(),
            ip_range,
            bridge,
        };
        let stored = serde_json::to_value(&rec)
            .map_err(|e| Error::internal(e.to_string()))
            .and_then(|v| {
                self.inner
                    .db
                    .write(|tx| tx.put(&NETWORKS, &id, &v))
                    .map_err(|e: berth_store::Error| {
                        Error::system(format!("saving network {name}: {e}"))
                    })
            });
        if let Err(e) = stored {
            let _ = tokio::task::spawn_blocking(move || net.destroy()).await;
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        let n = Arc::new(UserNet {
            rec,
            net,
            dns: Arc::default(),
            tasks: Mutex::new(Vec::new()),
        });
        self.start_dns(&n).await;
        self.inner.networks.insert(n);
        net_event(self, "create", &id, &name, None);
        Ok(NetworkCreateResponse {
            id,
            warning: String::new(),
        })
    }

    /// `DELETE /networks/{id}`.
    pub async fn network_remove(&self, key: &str) -> Result<(), Error> {
        let _g = self.inner.networks.op.lock().await;
        self.remove_locked(key).await
    }

    async fn remove_locked(&self, key: &str) -> Result<(), Error> {
        let Some(n) = self.inner.networks.find(key) else {
            if let Some((s, _)) = self
                .summaries()
                .into_iter()
                .find(|(s, _)| s.name.as_deref() == Some(key) || s.id.as_deref() == Some(key))
            {
                return Err(Error::forbidden(format!(
                    "{} is a pre-defined network and cannot be removed",
                    s.name.unwrap_or_default()
                )));
            }
            return Err(Error::not_found(format!("network {key} not found")));
        };
        if self.used_networks().contains(&n.rec.name) || !n.dns.is_empty() {
            return Err(Error::forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.rec.name, n.rec.id
            )));
        }
        let n = self
            .inner
            .networks
            .take(&n.rec.id)
            .ok_or_else(|| Error::not_found(format!("network {key} not found")))?;
        for t in n.tasks.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            t.abort();
        }
        let dir = state_dir(&self.inner.cfg, &n.rec.bridge);
        let (id, name) = (n.rec.id.clone(), n.rec.name.clone());
        let n2 = n.clone();
        let res = tokio::task::spawn_blocking(move || {
            // The handle is shared; destroy through a fresh one of the same network.
            berth_net::Network::open(&dir, n2.net.config().clone())
                .and_then(berth_net::Network::destroy)
                .map(|()| {
                    let _ = std::fs::remove_dir_all(&dir);
                })
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
        if let Err(e) = res {
            self.inner.networks.insert(n.clone());
            self.start_dns(&n).await;
            return Err(Error::system(format!("removing network {name}: {e}")));
        }
        self.inner
            .db
            .write(|tx| tx.delete(&NETWORKS, &id))
            .map_err(|e: berth_store::Error| {
                Error::system(format!("removing network {name}: {e}"))
            })?;
        net_event(self, "destroy", &id, &name, None);
        Ok(())
    }

    /// `POST /networks/prune`: removes user networks no running container uses.
    pub async fn network_prune(&self, filters: &Filters) -> Result<NetworkPruneResponse, Error> {
        filters
            .check(&["label", "label!", "until"])
            .map_err(Error::invalid_parameter)?;
        let now = clock::now_ns();
        let until = filters
            .get("until")
            .first()
            .map(|u| {
                clock::parse_timestamp(u, now)
                    .ok_or_else(|| Error::invalid_parameter(format!("invalid until filter {u:?}")))
            })
            .transpose()?;
        let _g = self.inner.networks.op.lock().await;
        let used = self.used_networks();
        let mut deleted = Vec::new();
        for n in self.inner.networks.all() {
            if used.contains(&n.rec.name) || !n.dns.is_empty() {
                continue;
            }
            if !filters.match_labels("label", &n.rec.labels) {
                continue;
            }
            if filters
                .get("label!")
                .iter()
                .any(|l| match l.split_once('=') {
                    Some((k, v)) => n.rec.labels.get(k).is_some_and(|x| x == v),
                    None => n.rec.labels.contains_key(l),
                })
            {
                continue;
            }
            if let Some(u) = until
                && clock::parse_timestamp(&n.rec.created, now).is_some_and(|c| c >= u)
            {
                continue;
            }
            if self.remove_locked(&n.rec.id).await.is_ok() {
                deleted.push(n.rec.name.clone());
            }
        }
        Ok(NetworkPruneResponse {
            networks_deleted: Some(deleted),
        })
    }

    /// `POST /networks/{id}/connect`.
    pub async fn network_connect(
        &self,
        key: &str,
        req: NetworkConnectRequest,
    ) -> Result<(), Error> {
        let n = self.user_net(key)?;
        let ctr = self.lookup(&req.container)?;
        let _g = ctr.op.lock().await;
        let rec = ctr.record();
        let mode = rec.host_config.network_mode.as_deref().unwrap_or("");
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Err(Error::forbidden(format!(
                "container {} is in network mode {mode} and cannot join network {}",
                rec.short_name(),
                n.rec.name
            )));
        }
        if rec.endpoints.contains_key(&n.rec.name) {
            return Err(Error::forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.short_name(),
                n.rec.name
            )));
        }
        let ep = new_endpoint(&n, req.endpoint_config.as_ref())?;
        let mut rec = ctr.with_rec(|r| {
            r.endpoints.insert(n.rec.name.clone(), ep.clone());
            r.clone()
        });
        if rec.state.status.is_alive() && rec.state.pid > 0 {
            let used: Vec<String> = rec
                .endpoints
                .values()
                .filter_map(|e| e.attachment.as_ref().map(|a| a.ifname.clone()))
                .chain(rec.net.as_ref().map(|a| a.ifname.clone()))
                .collect();
            let ifname = (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !used.contains(n))
                .unwrap_or_default();
            if let Err(e) = self
                .attach_one(&ctr, &n, rec.state.pid as i32, ifname, used.is_empty())
                .await
            {
                ctr.with_rec(|r| r.endpoints.remove(&n.rec.name));
                return Err(e);
            }
            rec = ctr.record();
            self.write_hosts(&rec);
        }
        self.persist(&rec)?;
        net_event(
            self,
            "connect",
            &n.rec.id,
            &n.rec.name,
            Some(("container", &rec.id)),
        );
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn network_disconnect(
        &self,
        key: &str,
        req: NetworkDisconnectRequest,
    ) -> Result<(), Error> {
        let n = self.user_net(key)?;
        let ctr = self.lookup(&req.container)?;
        let _g = ctr.op.lock().await;
        let Some(ep) = ctr.record().endpoints.get(&n.rec.name).cloned() else {
            return Err(Error::forbidden(format!(
                "container {} is not connected to network {}",
                req.container, n.rec.name
            )));
        };
        if ep.attachment.is_some() {
            self.detach_one(&ctr, &n).await;
        }
        let rec = ctr.with_rec(|r| {
            r.endpoints.remove(&n.rec.name);
            r.clone()
        });
        if rec.state.status.is_alive() {
            self.write_hosts(&rec);
        }
        self.persist(&rec)?;
        net_event(
            self,
            "disconnect",
            &n.rec.id,
            &n.rec.name,
            Some(("container", &rec.id)),
        );
        Ok(())
    }

    fn user_net(&self, key: &str) -> Result<Arc<UserNet>, Error> {
        self.inner.networks.find(key).ok_or_else(|| {
            if PREDEFINED.contains(&key) {
                Error::forbidden(format!(
                    "connecting to or disconnecting from the pre-defined network {key} is not supported"
                ))
            } else {
                Error::not_found(format!("network {key} not found"))
            }
        })
    }

    /// At create: turns `NetworkMode` and `NetworkingConfig` into endpoints on user
    /// networks, validating addresses and refusing what only user networks support.
    pub(crate) fn prepare_endpoints(
        &self,
        rec: &mut Record,
        body: &ContainerCreateBody,
    ) -> Result<(), Error> {
        let configs = body
            .networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.clone())
            .unwrap_or_default();
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        if matches!(mode.as_str(), "" | "default" | "bridge") {
            if let Some(c) = configs.get("bridge").or_else(|| configs.get("default")) {
                if c.ipam_config
                    .as_ref()
                    .and_then(|i| i.ipv4_address.as_deref())
                    .is_some_and(|s| !s.is_empty())
                {
                    return Err(Error::invalid_parameter(
                        "user specified IP address is supported on user defined networks only",
                    ));
                }
                if c.aliases.as_ref().is_some_and(|a| !a.is_empty()) {
                    return Err(Error::invalid_parameter(
                        "network-scoped alias is supported only for containers in user defined networks",
                    ));
                }
            }
        } else if let Some(n) = self.inner.networks.find(&mode) {
            let cfg = configs
                .get(&mode)
                .or_else(|| configs.get(&n.rec.name))
                .or_else(|| configs.get(&n.rec.id));
            let ep = new_endpoint(&n, cfg)?;
            rec.host_config.network_mode = Some(n.rec.name.clone());
            rec.endpoints.insert(n.rec.name.clone(), ep);
        }
        let primary = rec.host_config.network_mode.clone().unwrap_or_default();
        for (key, cfg) in &configs {
            if key == &mode || key == &primary || PREDEFINED.contains(&key.as_str()) {
                continue;
            }
            let n = self
                .inner
                .networks
                .find(key)
                .ok_or_else(|| Error::not_found(format!("network {key} not found")))?;
            if rec.endpoints.contains_key(&n.rec.name) {
                continue;
            }
            let ep = new_endpoint(&n, Some(cfg))?;
            rec.endpoints.insert(n.rec.name.clone(), ep);
        }
        for l in rec.host_config.links.clone().unwrap_or_default() {
            let target = l.split(':').next().unwrap_or("");
            self.lookup(target)
                .map_err(|_| Error::not_found(format!("could not get container for {target}")))?;
        }
        Ok(())
    }

    /// At start, once the namespace exists: an interface per endpoint.
    pub(crate) async fn attach_endpoints(&self, ctr: &Arc<Ctr>, pid: i32) -> Result<(), Error> {
        let rec = ctr.record();
        if rec.endpoints.is_empty() {
            return Ok(());
        }
        let primary = rec.host_config.network_mode.clone().unwrap_or_default();
        let mut names: Vec<String> = rec.endpoints.keys().cloned().collect();
        names.sort_by_key(|n| *n != primary);
        for (i, name) in (usize::from(rec.net.is_some())..).zip(names) {
            let n = self
                .inner
                .networks
                .find(&name)
                .ok_or_else(|| Error::not_found(format!("network {name} not found")))?;
            self.attach_one(ctr, &n, pid, format!("eth{i}"), i == 0)
                .await
                .map_err(|e| {
                    Error::system(format!(
                        "failed to set up the network of container {} on {name}: {}",
                        rec.short_name(),
                        e.message()
                    ))
                })?;
        }
        self.write_hosts(&ctr.record());
        Ok(())
    }

    async fn attach_one(
        &self,
        ctr: &Arc<Ctr>,
        n: &Arc<UserNet>,
        pid: i32,
        ifname: String,
        first: bool,
    ) -> Result<(), Error> {
        let rec = ctr.record();
        let ep = rec
            .endpoints
            .get(&n.rec.name)
            .cloned()
            .ok_or_else(|| Error::internal("endpoint vanished"))?;
        let ports = if first {
            crate::net::all_port_bindings(&rec)?
        } else {
            Vec::new()
        };
        let mut ip = ep.ipv4;
        if ip.is_none()
            && let Some(r) = n
                .rec
                .ip_range
                .as_deref()
                .and_then(|r| r.parse::<Subnet>().ok())
        {
            let taken: std::collections::BTreeSet<Ipv4Addr> = n
                .net
                .attachments()
                .map_err(crate::net::net_err)?
                .values()
                .map(|a| a.ip)
                .collect();
            ip = (u32::from(r.addr())..=u32::from(r.broadcast()))
                .map(Ipv4Addr::from)
                .find(|a| n.net.subnet().assignable(*a) && !taken.contains(a));
            if ip.is_none() {
                return Err(Error::system(format!(
                    "no free ip address left in ip range {r} of network {}",
                    n.rec.name
                )));
            }
        }
        let opts = AttachOptions {
            ifname,
            default_route: first && !n.rec.internal,
        };
        let n2 = n.clone();
        let id = ctr.id.clone();
        let a = tokio::task::spawn_blocking(move || {
            n2.net.attach_with(
                &id,
                std::path::Path::new(&format!("/proc/{pid}/ns/net")),
                &ports,
                ip,
                &opts,
            )
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?
        .map_err(crate::net::net_err)?;
        n.dns.insert(&rec.id, dns_names(&rec, &ep), a.ip);
        ctr.with_rec(|r| {
            if let Some(e) = r.endpoints.get_mut(&n.rec.name) {
                e.attachment = Some(a);
                e.endpoint_id = berth_types::ContainerId::generate().as_str().to_string();
            }
        });
        Ok(())
    }

    async fn detach_one(&self, ctr: &Arc<Ctr>, n: &Arc<UserNet>) {
        n.dns.remove(&ctr.id);
        let n2 = n.clone();
        let id = ctr.id.clone();
        let res = tokio::task::spawn_blocking(move || n2.net.detach(&id)).await;
        if let Ok(Err(e)) = res {
            tracing::warn!("container {}: leaving network {}: {e}", ctr.id, n.rec.name);
        }
        ctr.with_rec(|r| {
            if let Some(e) = r.endpoints.get_mut(&n.rec.name) {
                e.attachment = None;
            }
        });
    }

    /// At stop: every user-network interface goes (the DNS records with it).
    pub(crate) async fn detach_endpoints(&self, ctr: &Arc<Ctr>) {
        let rec = ctr.record();
        for (name, ep) in &rec.endpoints {
            if ep.attachment.is_none() {
                continue;
            }
            match self.inner.networks.find(name) {
                Some(n) => self.detach_one(ctr, &n).await,
                None => ctr.with_rec(|r| {
                    if let Some(e) = r.endpoints.get_mut(name) {
                        e.attachment = None;
                    }
                }),
            }
        }
    }

    /// Rewrites the container's `/etc/hosts` in place (it is bind-mounted): the base
    /// entries, its own addresses, `--link`s and `--add-host`s.
    pub(crate) fn write_hosts(&self, rec: &Record) {
        if rec.host_config.network_mode.as_deref() == Some("host") {
            return;
        }
        let mut own: Vec<Ipv4Addr> = rec.net.iter().map(|a| a.ip).collect();
        let primary = rec.host_config.network_mode.clone().unwrap_or_default();
        let mut eps: Vec<(&String, &Endpoint)> = rec.endpoints.iter().collect();
        eps.sort_by_key(|(n, _)| **n != primary);
        own.extend(
            eps.iter()
                .filter_map(|(_, e)| e.attachment.as_ref().map(|a| a.ip)),
        );
        let mut links = Vec::new();
        for l in rec.host_config.links.clone().unwrap_or_default() {
            let (target, alias) = l.split_once(':').unwrap_or((l.as_str(), l.as_str()));
            if let Ok(c) = self.lookup(target) {
                let t = c.record();
                if let Some(a) = &t.net {
                    let alias = alias.rsplit('/').next().unwrap_or(alias);
                    let mut names = vec![alias.to_string()];
                    for n in [
                        t.config.hostname.clone().unwrap_or_default(),
                        t.short_name().to_string(),
                    ] {
                        if !n.is_empty() && !names.contains(&n) {
                            names.push(n);
                        }
                    }
                    links.push((a.ip, names.join(" ")));
                }
            }
        }
        let text = hosts_text(rec, &own, &links);
        if let Err(e) = std::fs::write(&rec.hosts_path, text) {
            tracing::warn!("container {}: writing {}: {e}", rec.id, rec.hosts_path);
        }
    }
}

fn endpoint_resource(rec: &Record, eid: &str, a: &berth_net::Attachment) -> EndpointResource {
    EndpointResource {
        name: Some(rec.short_name().to_string()),
        endpoint_id: Some(eid.to_string()),
        mac_address: Some(a.mac.clone()),
        ipv4_address: Some(format!("{}/{}", a.ip, a.prefix)),
        ipv6_address: Some(String::new()),
    }
}

fn new_endpoint(n: &UserNet, cfg: Option<&EndpointSettings>) -> Result<Endpoint, Error> {
    let ipv4 = cfg
        .and_then(|c| c.ipam_config.as_ref())
        .and_then(|i| i.ipv4_address.as_deref())
        .filter(|s| !s.is_empty())
        .map(|s| {
            let ip: Ipv4Addr = s
                .parse()
                .map_err(|_| Error::invalid_parameter(format!("invalid ip address {s:?}")))?;
            let subnet = n.net.subnet();
            if !subnet.contains(ip) {
                return Err(Error::invalid_parameter(format!(
                    "invalid address {ip}: it does not belong to the subnet {subnet} of network {}",
                    n.rec.name
                )));
            }
            if !subnet.assignable(ip) {
                return Err(Error::invalid_parameter(format!(
                    "invalid address {ip}: it is the network, gateway or broadcast address of network {}",
                    n.rec.name
                )));
            }
            Ok(ip)
        })
        .transpose()?;
    let mut aliases = Vec::new();
    for a in cfg.and_then(|c| c.aliases.clone()).unwrap_or_default() {
        if a.is_empty() || a.len() > 253 || a.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid_parameter(format!("invalid alias {a:?}")));
        }
        if !aliases.contains(&a) {
            aliases.push(a);
        }
    }
    Ok(Endpoint {
        network_id: n.rec.id.clone(),
        endpoint_id: String::new(),
        aliases,
        ipv4,
        gateway: Some(n.net.gateway()),
        attachment: None,
    })
}

/// `/etc/hosts` content.
pub(crate) fn hosts_text(rec: &Record, own: &[Ipv4Addr], links: &[(Ipv4Addr, String)]) -> String {
    let hostname = rec.config.hostname.clone().unwrap_or_default();
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (ip, names) in links {
        out.push_str(&format!("{ip}\t{names}\n"));
    }
    out.push_str(&extra_hosts_text(rec));
    if own.is_empty() {
        out.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    for ip in own {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    out
}

/// `--add-host name:ip` lines (`host-gateway` is the default bridge's gateway when known).
pub(crate) fn extra_hosts_text(rec: &Record) -> String {
    let mut out = String::new();
    for h in rec.host_config.extra_hosts.clone().unwrap_or_default() {
        let Some((name, ip)) = h.split_once(':').or_else(|| h.split_once('=')) else {
            continue;
        };
        let ip = if ip == "host-gateway" {
            match rec.endpoints.values().find_map(|e| e.gateway) {
                Some(g) => g.to_string(),
                None => match &rec.net {
                    Some(a) => a.gateway.to_string(),
                    None => continue,
                },
            }
        } else {
            ip.trim_start_matches('[').trim_end_matches(']').to_string()
        };
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

/// Checks `--add-host` entries at create.
pub(crate) fn check_extra_hosts(rec: &Record) -> Result<(), Error> {
    for h in rec.host_config.extra_hosts.clone().unwrap_or_default() {
        let Some((name, ip)) = h.split_once(':').or_else(|| h.split_once('=')) else {
            return Err(Error::invalid_parameter(format!(
                "invalid extra host {h:?}: expected name:ip"
            )));
        };
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if name.is_empty()
            || name.chars().any(|c| c.is_whitespace())
            || (ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err())
        {
            return Err(Error::invalid_parameter(format!(
                "invalid extra host {h:?}: expected name:ip"
            )));
        }
    }
    Ok(())
}

/// `/etc/resolv.conf` content: on a user network the gateway (berthd's DNS); otherwise
/// `--dns` or the host's nameservers; `--dns-search` and `--dns-option` replace the host's
/// `search` and `options`.
pub(crate) fn resolv_text(rec: &Record, host: &str) -> String {
    let hc = &rec.host_config;
    if hc.network_mode.as_deref() == Some("host") && hc.dns.as_ref().is_none_or(Vec::is_empty) {
        return host.to_string();
    }
    let primary = hc.network_mode.clone().unwrap_or_default();
    let gw = rec
        .endpoints
        .get(&primary)
        .or_else(|| rec.endpoints.values().next())
        .and_then(|e| e.gateway);
    let mut ns: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    for l in host.lines() {
        let mut w = l.split_whitespace();
        match w.next() {
            Some("nameserver") => ns.extend(w.next().map(str::to_string)),
            Some("search" | "domain") => search = w.map(str::to_string).collect(),
            Some("options") => options.extend(w.map(str::to_string)),
            _ => {}
        }
    }
    if let Some(d) = hc.dns.as_ref().filter(|d| !d.is_empty()) {
        ns = d.clone();
    }
    if let Some(g) = gw {
        ns = vec![g.to_string()];
    }
    if let Some(s) = hc.dns_search.as_ref().filter(|d| !d.is_empty()) {
        search = s.iter().filter(|s| s.as_str() != ".").cloned().collect();
    }
    if let Some(o) = hc.dns_options.as_ref().filter(|d| !d.is_empty()) {
        options = o.clone();
    }
    let mut out = String::new();
    for n in ns {
        out.push_str(&format!("nameserver {n}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

fn forward_targets() -> Vec<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .take(3)
        .collect()
}

/// Asks the host's resolvers (from the host's side), or answers SERVFAIL.
async fn forward(packet: Vec<u8>) -> Option<Vec<u8>> {
    for target in forward_targets() {
        let bind: SocketAddr = if target.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.send_to(&packet, target).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((len, from))) =
            tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf)).await
            && from == target
            && len >= 2
            && buf[..2] == packet[..2]
        {
            buf.truncate(len);
            return Some(buf);
        }
    }
    let q = dns::parse_query(&packet).ok()?;
    Some(dns::response(&q, dns::Rcode::ServFail, &[], 0))
}

async fn serve_udp(sock: Arc<tokio::net::UdpSocket>, table: Arc<Resolver>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, peer)) = sock.recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let packet = buf[..len].to_vec();
        match dns::handle(&packet, |n| table.lookup(peer.ip(), n)) {
            Action::Reply(r) => {
                let _ = sock.send_to(&r, peer).await;
            }
            Action::Forward => {
                let sock = sock.clone();
                tokio::spawn(async move {
                    if let Some(r) = forward(packet).await {
                        let _ = sock.send_to(&r, peer).await;
                    }
                });
            }
            Action::Drop => {}
        }
    }
}

async fn serve_tcp(listener: tokio::net::TcpListener, table: Arc<Resolver>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut conn, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let table = table.clone();
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 2];
                let read = tokio::time::timeout(Duration::from_secs(10), async {
                    conn.read_exact(&mut len).await?;
                    let mut p = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    conn.read_exact(&mut p).await?;
                    Ok::<_, std::io::Error>(p)
                })
                .await;
                let Ok(Ok(packet)) = read else { return };
                let reply = match dns::handle(&packet, |n| table.lookup(peer.ip(), n)) {
                    Action::Reply(r) => Some(r),
                    Action::Forward => forward(packet).await,
                    Action::Drop => None,
                };
                let Some(r) = reply.filter(|r| r.len() <= usize::from(u16::MAX)) else {
                    return;
                };
                let mut out = (r.len() as u16).to_be_bytes().to_vec();
                out.extend_from_slice(&r);
                if conn.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec(host_config: serde_json::Value) -> Record {
        serde_json::from_value(serde_json::json!({
            "id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "name": "/web", "created": "", "path": "sh", "args": [],
            "config": {"Hostname": "h1"}, "host_config": host_config,
            "image": "", "image_name": "", "state": crate::record::State::default(), "snapshot_key": "",
            "log_path": "", "hostname_path": "", "hosts_path": "", "resolv_conf_path": "",
        }))
        .unwrap()
    }

    const HOST: &str = "# comment\nnameserver 10.0.0.53\nnameserver 10.0.0.54\nsearch corp.example\noptions ndots:1\n";

    #[test]
    fn resolv_conf() {
        let r = rec(serde_json::json!({}));
        assert_eq!(
            resolv_text(&r, HOST),
            "nameserver 10.0.0.53\nnameserver 10.0.0.54\nsearch corp.example\noptions ndots:1\n"
        );
        let r = rec(
            serde_json::json!({"Dns": ["1.1.1.1"], "DnsSearch": ["a.test"], "DnsOptions": ["rotate"]}),
        );
        assert_eq!(
            resolv_text(&r, HOST),
            "nameserver 1.1.1.1\nsearch a.test\noptions rotate\n"
        );
        // On a user network the gateway answers.
        let mut r = rec(serde_json::json!({"NetworkMode": "app"}));
        r.endpoints.insert(
            "app".into(),
            Endpoint {
                gateway: Some(Ipv4Addr::new(10, 5, 0, 1)),
                ..Default::default()
            },
        );
        assert!(resolv_text(&r, HOST).starts_with("nameserver 10.5.0.1\nsearch corp.example\n"));
        // Host mode keeps the host's file as it is.
        let r = rec(serde_json::json!({"NetworkMode": "host"}));
        assert_eq!(resolv_text(&r, HOST), HOST);
    }

    #[test]
    fn hosts_file() {
        let r = rec(serde_json::json!({"ExtraHosts": ["db.local:10.1.1.1", "v6:[::1]"]}));
        check_extra_hosts(&r).unwrap();
        let t = hosts_text(
            &r,
            &[Ipv4Addr::new(10, 5, 0, 2)],
            &[(Ipv4Addr::new(172, 18, 0, 3), "alias db".into())],
        );
        assert!(t.contains("10.1.1.1\tdb.local\n"), "{t}");
        assert!(t.contains("::1\tv6\n"), "{t}");
        assert!(t.contains("172.18.0.3\talias db\n"), "{t}");
        assert!(t.ends_with("10.5.0.2\th1\n"), "{t}");
        assert!(!t.contains("127.0.1.1"), "{t}");
        for bad in ["nocolon", ":1.2.3.4", "x:not-an-ip", "a b:1.2.3.4"] {
            let r = rec(serde_json::json!({ "ExtraHosts": [bad] }));
            let e = check_extra_hosts(&r).unwrap_err();
            assert!(e.message().contains(bad), "{bad}: {}", e.message());
        }
    }

    #[test]
    fn dns_table_lookups() {
        let t = DnsTable::default();
        t.insert(
            "c1",
            vec!["web".into(), "www".into()],
            Ipv4Addr::new(10, 0, 0, 2),
        );
        t.insert("c2", vec!["web".into()], Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(t.lookup("WWW"), Some(vec![Ipv4Addr::new(10, 0, 0, 2)]));
        assert_eq!(t.lookup("web").map(|v| v.len()), Some(2));
        assert_eq!(
            t.container_at(Ipv4Addr::new(10, 0, 0, 3)).as_deref(),
            Some("c2")
        );
        t.remove("c1");
        assert_eq!(t.lookup("www"), None);
        assert!(!t.is_empty());
    }
}
