//! The default bridge network: berth-net behind the engine. A container in `bridge` mode
//! (the default) gets a veth on the bridge, an address, and its published ports once its
//! runtime has created the network namespace, and loses them when it stops.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use berth_api_types::models::{
    EndpointSettings, HostConfig, NetworkSettings, PortBinding as ApiPortBinding, PortMap,
};
use berth_net::{PortBinding, Proto};
use berth_types::Error;

use crate::record::Record;

/// How berthd's bridge is set up (dockerd's `--bridge`, `--bip`).
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The bridge interface (`berth0`).
    pub bridge: String,
    /// The subnet (`172.18.0.0/16`); `None` picks one that no host route uses.
    pub subnet: Option<String>,
    /// berth's own nftables table (`berth`).
    pub table: String,
}

pub(crate) fn net_err(e: berth_net::Error) -> Error {
    use berth_net::Error as E;
    let msg = e.to_string();
    match e {
        E::InvalidPort(..)
        | E::InvalidConfig(..)
        | E::InvalidSubnet(..)
        | E::IpOutsideSubnet { .. }
        | E::IpReserved { .. } => Error::invalid_parameter(msg),
        E::PortInUse { .. } | E::IpInUse { .. } => Error::conflict(msg),
        _ => Error::system(msg),
    }
}

/// Opens (creating if needed) the bridge network under `state_dir`.
pub(crate) fn open(state_dir: &Path, cfg: &NetConfig) -> Result<berth_net::Network, Error> {
    let subnet = cfg
        .subnet
        .as_deref()
        .map(|s| s.parse().map_err(net_err))
        .transpose()?;
    berth_net::Network::open(
        state_dir,
        berth_net::NetworkConfig {
            name: "bridge".into(),
            bridge: cfg.bridge.clone(),
            subnet,
            table: cfg.table.clone(),
            internal: false,
        },
    )
    .map_err(net_err)
}

/// Whether a container's network mode is the default bridge.
pub(crate) fn uses_bridge(hc: &HostConfig) -> bool {
    matches!(
        hc.network_mode.as_deref().unwrap_or(""),
        "" | "default" | "bridge"
    )
}

/// The request's published ports, in berth-net's terms (IPv6 host addresses are skipped).
pub(crate) fn port_bindings(hc: &HostConfig) -> Result<Vec<PortBinding>, Error> {
    let mut out = Vec::new();
    let bad = |m: String| Error::invalid_parameter(format!("HostConfig.PortBindings: {m}"));
    for (key, binds) in hc.port_bindings.clone().unwrap_or_default() {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let container_port: u16 = port
            .parse()
            .map_err(|_| bad(format!("invalid port {key:?}")))?;
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            p => return Err(bad(format!("unsupported protocol {p:?} in {key:?}"))),
        };
        for b in binds.unwrap_or_default() {
            let host_ip = match b.host_ip.as_deref().unwrap_or("") {
                "" | "0.0.0.0" => None,
                ip if ip.contains(':') => continue,
                ip => Some(
                    ip.parse::<Ipv4Addr>()
                        .map_err(|_| bad(format!("invalid host address {ip:?}")))?,
                ),
            };
            let host_port = match b.host_port.as_deref().unwrap_or("") {
                "" => 0,
                p if p.contains('-') => {
                    // A host range for one container port: the first port free on the host.
                    let (a, b) = p.split_once('-').unwrap_or((p, p));
                    let (a, b): (u16, u16) = match (a.parse(), b.parse()) {
                        (Ok(a), Ok(b)) if a > 0 && a <= b => (a, b),
                        _ => return Err(bad(format!("invalid host port range {p:?}"))),
                    };
                    let ip = host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
                    (a..=b)
                        .find(|port| match proto {
                            Proto::Tcp => std::net::TcpListener::bind((ip, *port)).is_ok(),
                            Proto::Udp => std::net::UdpSocket::bind((ip, *port)).is_ok(),
                        })
                        .ok_or_else(|| {
                            Error::conflict(format!(
                                "port is already allocated: no free host port in {p} for {key}"
                            ))
                        })?
                }
                p => p
                    .parse()
                    .map_err(|_| bad(format!("invalid host port {p:?}")))?,
            };
            out.push(PortBinding {
                host_ip,
                host_port,
                container_port,
                proto,
            });
        }
    }
    Ok(out)
}

/// Every binding the container publishes: `-p`, plus with `-P` each exposed port not
/// bound otherwise on a random host port (from the kernel's ephemeral range).
pub(crate) fn all_port_bindings(rec: &Record) -> Result<Vec<PortBinding>, Error> {
    let mut out = port_bindings(&rec.host_config)?;
    if rec.host_config.publish_all_ports == Some(true) {
        let mut exposed: Vec<String> = rec
            .config
            .exposed_ports
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        exposed.sort();
        for key in exposed {
            let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            let proto = match proto {
                "udp" => Proto::Udp,
                "tcp" => Proto::Tcp,
                _ => continue,
            };
            let Ok(container_port) = port.parse::<u16>() else {
                continue;
            };
            if out
                .iter()
                .any(|b| b.container_port == container_port && b.proto == proto)
            {
                continue;
            }
            out.push(PortBinding {
                host_ip: None,
                host_port: 0,
                container_port,
                proto,
            });
        }
    }
    Ok(out)
}

/// What inspect shows of a container's network.
pub(crate) fn settings(rec: &Record) -> NetworkSettings {
    let mode = rec
        .host_config
        .network_mode
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "bridge".into());
    let mut ports: PortMap = HashMap::new();
    let mut networks = HashMap::new();
    let published = rec
        .net
        .iter()
        .chain(rec.endpoints.values().filter_map(|e| e.attachment.as_ref()))
        .flat_map(|a| a.ports.iter());
    for p in published {
        {
            let key = format!(
                "{}/{}",
                p.container_port,
                if p.proto == Proto::Udp { "udp" } else { "tcp" }
            );
            ports
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(ApiPortBinding {
                    host_ip: Some(p.host_ip.map_or("0.0.0.0".into(), |ip| ip.to_string())),
                    host_port: Some(p.host_port.to_string()),
                });
        }
    }
    for (name, e) in &rec.endpoints {
        let a = e.attachment.as_ref();
        networks.insert(
            name.clone(),
            EndpointSettings {
                aliases: Some(e.aliases.clone()),
                network_id: Some(e.network_id.clone()),
                endpoint_id: Some(if a.is_some() {
                    e.endpoint_id.clone()
                } else {
                    String::new()
                }),
                gateway: Some(a.map_or(String::new(), |a| a.gateway.to_string())),
                ip_address: Some(a.map_or(String::new(), |a| a.ip.to_string())),
                ip_prefix_len: Some(a.map_or(0, |a| i64::from(a.prefix))),
                mac_address: Some(a.map_or(String::new(), |a| a.mac.clone())),
                ipam_config: e
                    .ipv4
                    .map(|ip| berth_api_types::models::EndpointIpamConfig {
                        ipv4_address: Some(ip.to_string()),
                        ..Default::default()
                    }),
                dns_names: Some(
                    std::iter::once(rec.short_name().to_string())
                        .chain(std::iter::once(rec.id[..12].to_string()))
                        .chain(e.aliases.iter().cloned())
                        .collect(),
                ),
                ..Default::default()
            },
        );
    }
    if let Some(a) = rec.net.as_ref() {
        networks.insert(
            "bridge".to_string(),
            EndpointSettings {
                gateway: Some(a.gateway.to_string()),
                ip_address: Some(a.ip.to_string()),
                ip_prefix_len: Some(i64::from(a.prefix)),
                mac_address: Some(a.mac.clone()),
                network_id: Some("bridge".into()),
                ..Default::default()
            },
        );
    } else if mode != "bridge" && !rec.endpoints.contains_key(&mode) {
        networks.insert(
            mode.clone(),
            EndpointSettings {
                network_id: Some(mode.clone()),
                ..Default::default()
            },
        );
    }
    NetworkSettings {
        sandbox_id: Some(String::new()),
        sandbox_key: Some(if rec.state.pid > 0 {
            format!("/proc/{}/ns/net", rec.state.pid)
        } else {
            String::new()
        }),
        ports: Some(ports),
        networks: Some(networks),
    }
}
