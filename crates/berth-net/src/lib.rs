//! berth's container networking, and the only crate that touches netlink and nftables.
//!
//! Modelled on netavark: plain synchronous Rust, no daemon of its own. A [`Network`] is a
//! Linux bridge with a gateway address, an IPv4 subnet managed by a small IPAM persisted as
//! JSON in a caller-given state directory, and berth's own nftables table (masquerade for
//! egress, DNAT for published ports). Containers are attached by their network namespace
//! file: a veth pair whose peer becomes `eth0` inside.
//!
//! Calls block (netlink round trips, running `nft`); async callers use `spawn_blocking`.
//! No thread of the caller ever changes network namespace: sockets for a container's
//! namespace are opened by a short-lived thread that enters it.

pub mod dns;
pub mod ipam;
pub mod netlink;
mod network;
mod nft;
pub mod ports;

use std::net::Ipv4Addr;
use std::path::PathBuf;

pub use ipam::Subnet;
pub use network::{
    AttachOptions, Attachment, LINK_MTU, Network, NetworkConfig, PendingLink, ROUTE_MTU,
};
pub use ports::{PortBinding, PortBindings, Proto};

/// Everything that can go wrong, naming the object concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A netlink request failed.
    #[error("netlink: {op}: {source}")]
    Netlink {
        /// What was being done.
        op: String,
        /// The kernel's answer.
        source: std::io::Error,
    },
    /// A network namespace file could not be used.
    #[error("network namespace {path}: {source}")]
    Netns {
        /// The namespace file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `nft` failed.
    #[error("nftables: {0}")]
    Nft(String),
    /// A subnet string or value is unusable.
    #[error("invalid subnet {0:?}: {1}")]
    InvalidSubnet(String, &'static str),
    /// A `-p` port binding is unusable.
    #[error("invalid port binding {0:?}: {1}")]
    InvalidPort(String, String),
    /// Bad names or a configuration that contradicts the recorded one.
    #[error("{0}")]
    InvalidConfig(String),
    /// The requested subnet overlaps a route on the host.
    #[error("subnet {subnet} overlaps with the existing route to {route}")]
    SubnetOverlap {
        /// The subnet asked for.
        subnet: String,
        /// The route it collides with.
        route: String,
    },
    /// No default-pool subnet is free.
    #[error("no free subnet left in the default address pools")]
    NoFreeSubnet,
    /// A static address outside the subnet.
    #[error("ip address {ip} is outside the network's subnet {subnet}")]
    IpOutsideSubnet {
        /// The address asked for.
        ip: Ipv4Addr,
        /// The network's subnet.
        subnet: String,
    },
    /// A static address that is the network, gateway or broadcast address.
    #[error("ip address {ip} is reserved (network, gateway or broadcast address)")]
    IpReserved {
        /// The address asked for.
        ip: Ipv4Addr,
    },
    /// A static address another container holds.
    #[error("ip address {ip} is already in use by container {container}")]
    IpInUse {
        /// The address asked for.
        ip: Ipv4Addr,
        /// Who has it.
        container: String,
    },
    /// The subnet has no free address.
    #[error("no free ip address left in subnet {0}")]
    PoolExhausted(String),
    /// A published port is taken.
    #[error("port is already allocated: {binding}: {reason}")]
    PortInUse {
        /// The binding asked for.
        binding: String,
        /// Who has it.
        reason: String,
    },
    /// Reading or writing the state directory failed.
    #[error("network state {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state file is not what berth writes.
    #[error("corrupt network state {path}: {reason}")]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
