//! A small synchronous rtnetlink client: just the link, address and route operations berth
//! needs. One socket per network namespace; a socket opened inside a namespace keeps talking
//! to that namespace, so the calling thread never has to change its own.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteMetric, RouteProtocol,
    RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::Error;

/// An IPv4 route as read from the kernel's main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network address.
    pub dst: Ipv4Addr,
    /// Destination prefix length (0 for the default route).
    pub prefix: u8,
    /// Output interface index, when the route names one.
    pub oif: Option<u32>,
}

/// A netlink route socket bound to one network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

fn nl_err(op: impl Into<String>, source: io::Error) -> Error {
    Error::Netlink {
        op: op.into(),
        source,
    }
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, Error> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| nl_err("open socket", e))?;
        sock.bind_auto().map_err(|e| nl_err("bind socket", e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| nl_err("connect socket", e))?;
        // Kernel error messages with extended acks are nicer but optional.
        let _ = sock.set_ext_ack(true);
        Ok(Self { sock, seq: 1 })
    }

    /// Opens a socket inside the network namespace at `netns` (a `/proc/<pid>/ns/net` or a
    /// bind-mounted namespace file). The namespace is entered by a short-lived thread that
    /// only creates the socket, so no thread of the caller ever changes namespace.
    pub fn open_in(netns: &Path) -> Result<Self, Error> {
        let file = open_netns(netns)?;
        let path = netns.to_path_buf();
        std::thread::Builder::new()
            .name("berth-netns".into())
            .spawn(move || {
                rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(|e| Error::Netns {
                    path: path.clone(),
                    source: e.into(),
                })?;
                Self::open()
            })
            .map_err(|e| nl_err("spawn netns thread", e))?
            .join()
            .map_err(|_| nl_err("netns thread", io::Error::other("panicked")))?
    }

    fn request(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, Error> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(|e| nl_err(op, e))?;

        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full().map_err(|e| nl_err(op, e))?;
            let mut off = 0;
            while off < data.len() {
                let len = NetlinkBuffer::new_checked(&data[off..])
                    .map_err(|e| nl_err(op, io::Error::other(e.to_string())))?
                    .length() as usize;
                if len == 0 || off + len > data.len() {
                    return Err(nl_err(op, io::Error::other("truncated netlink message")));
                }
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..off + len])
                    .map_err(|e| nl_err(op, io::Error::other(e.to_string())))?;
                off += len;
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(out),
                        Some(_) => return Err(nl_err(op, e.to_io())),
                    },
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    /// The index of the link called `name`, or `None` when there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, Error> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(
            &format!("get link {name}"),
            RouteNetlinkMessage::GetLink(msg),
            0,
        ) {
            Ok(msgs) => Ok(msgs.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(Error::Netlink { source, .. }) if source.raw_os_error() == Some(libc_enodev()) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Names of all links in this namespace.
    pub fn link_names(&mut self) -> Result<Vec<String>, Error> {
        let msgs = self.request(
            "list links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// Creates a bridge called `name`; an existing link of that name is kept.
    pub fn create_bridge(&mut self, name: &str) -> Result<u32, Error> {
        if let Some(index) = self.link_index(name)? {
            return Ok(index);
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            &format!("create bridge {name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        self.link_index(name)?.ok_or_else(|| {
            nl_err(
                format!("create bridge {name}"),
                io::Error::other("bridge vanished after creation"),
            )
        })
    }

    /// Deletes the link called `name`; a missing link is not an error.
    pub fn delete_link(&mut self, name: &str) -> Result<(), Error> {
        let Some(index) = self.link_index(name)? else {
            return Ok(());
        };
        self.delete_link_index(index, name)
    }

    /// Deletes link `index` (called `name` in messages); a link already gone is fine. By
    /// index, so that a link of the same name made since is never the one deleted.
    pub fn delete_link_index(&mut self, index: u32, name: &str) -> Result<(), Error> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        match self.request(
            &format!("delete link {name}"),
            RouteNetlinkMessage::DelLink(msg),
            0,
        ) {
            Err(Error::Netlink { source, .. }) if source.raw_os_error() == Some(libc_enodev()) => {
                Ok(())
            }
            r => r.map(|_| ()),
        }
    }

    /// Sets link `index` up.
    pub fn set_up(&mut self, index: u32) -> Result<(), Error> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(
            &format!("set link {index} up"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )?;
        Ok(())
    }

    /// Adds `addr/prefix` to link `index`; an address already there is kept.
    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<(), Error> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(addr.into()));
        msg.attributes.push(AddressAttribute::Address(addr.into()));
        let bits = u32::from(addr);
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        msg.attributes
            .push(AddressAttribute::Broadcast(Ipv4Addr::from(bits | !mask)));
        match self.request(
            &format!("add address {addr}/{prefix}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(Error::Netlink { source, .. }) if source.raw_os_error() == Some(libc_eexist()) => {
                Ok(())
            }
            r => r.map(|_| ()),
        }
    }

    /// Creates a veth pair: `host` stays here, attached to bridge `master` (when given); its
    /// peer is created directly inside the namespace at `peer_netns` as `peer_name` with MAC
    /// `peer_mac`, so no temporary name ever appears in the host namespace. Both ends get
    /// `mtu` in the same request.
    pub fn create_veth(
        &mut self,
        host: &str,
        master: Option<u32>,
        peer_name: &str,
        peer_mac: [u8; 6],
        peer_netns: &Path,
        mtu: u32,
    ) -> Result<u32, Error> {
        let ns = open_netns(peer_netns)?;
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(peer_name.to_string()));
        peer.attributes
            .push(LinkAttribute::Address(peer_mac.to_vec()));
        peer.attributes.push(LinkAttribute::Mtu(mtu));
        peer.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        if let Some(master) = master {
            msg.attributes.push(LinkAttribute::Controller(master));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(
            &format!("create veth {host}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        drop(ns);
        self.link_index(host)?.ok_or_else(|| {
            nl_err(
                format!("create veth {host}"),
                io::Error::other("veth vanished after creation"),
            )
        })
    }

    /// Adds a default route via `gateway`; with `mtu`, the route carries that MTU (smaller
    /// than the link's when only on-link peers may use the link's full MTU).
    pub fn add_default_route(
        &mut self,
        gateway: Ipv4Addr,
        oif: u32,
        mtu: Option<u32>,
    ) -> Result<(), Error> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        msg.attributes.push(RouteAttribute::Oif(oif));
        if let Some(mtu) = mtu {
            msg.attributes
                .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
        }
        match self.request(
            &format!("add default route via {gateway}"),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(Error::Netlink { source, .. }) if source.raw_os_error() == Some(libc_eexist()) => {
                Ok(())
            }
            r => r.map(|_| ()),
        }
    }

    /// IPv4 routes of all tables.
    pub fn routes(&mut self) -> Result<Vec<Route>, Error> {
        let mut req = RouteMessage::default();
        req.header.address_family = AddressFamily::Inet;
        let msgs = self.request(
            "list routes",
            RouteNetlinkMessage::GetRoute(req),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for m in msgs {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            if r.header.kind != RouteType::Unicast {
                continue;
            }
            let mut route = Route {
                dst: Ipv4Addr::UNSPECIFIED,
                prefix: r.header.destination_prefix_length,
                oif: None,
            };
            for a in r.attributes {
                match a {
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => route.dst = d,
                    RouteAttribute::Oif(o) => route.oif = Some(o),
                    _ => {}
                }
            }
            out.push(route);
        }
        Ok(out)
    }
}

/// Opens a network namespace file, naming it in the error.
fn open_netns(path: &Path) -> Result<File, Error> {
    File::open(path).map_err(|source| Error::Netns {
        path: path.to_path_buf(),
        source,
    })
}

fn libc_enodev() -> i32 {
    rustix::io::Errno::NODEV.raw_os_error()
}

fn libc_eexist() -> i32 {
    rustix::io::Errno::EXIST.raw_os_error()
}
