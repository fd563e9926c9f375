//! IPv4 address management: subnets, the default pools, and picking addresses.
//! Pure logic; persistence lives in [`crate::network`] with the rest of the network's state.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::netlink::Route;

/// An IPv4 subnet such as `172.18.0.0/16`, always stored with host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// Builds a subnet; host bits must be clear and the prefix between 8 and 30 (a network
    /// needs at least a gateway and one container).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, Error> {
        let text = format!("{addr}/{prefix}");
        if !(8..=30).contains(&prefix) {
            return Err(Error::InvalidSubnet(
                text,
                "prefix length must be between 8 and 30",
            ));
        }
        let s = Self { addr, prefix };
        if u32::from(addr) & !s.mask() != 0 {
            return Err(Error::InvalidSubnet(text, "host bits are set"));
        }
        Ok(s)
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        mask(self.prefix)
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// The gateway berth gives the bridge: the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }

    /// Whether `ip` lies inside the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// Whether two networks share any address.
    pub fn overlaps(&self, addr: Ipv4Addr, prefix: u8) -> bool {
        let m = mask(self.prefix.min(prefix));
        u32::from(self.addr) & m == u32::from(addr) & m
    }

    /// Whether `ip` may be given to a container (not the network, gateway or broadcast).
    pub fn assignable(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.addr && ip != self.gateway() && ip != self.broadcast()
    }

    /// The first assignable address not in `taken`.
    pub fn next_free(&self, taken: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        let first = u32::from(self.gateway()) + 1;
        let last = u32::from(self.broadcast());
        (first..last)
            .map(Ipv4Addr::from)
            .find(|ip| !taken.contains(ip))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| Error::InvalidSubnet(s.to_string(), "expected address/prefix"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| Error::InvalidSubnet(s.to_string(), "not an ipv4 address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| Error::InvalidSubnet(s.to_string(), "bad prefix length"))?;
        Self::new(addr, prefix)
    }
}

impl TryFrom<String> for Subnet {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

/// Docker's default pools: 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s.
pub fn default_pool() -> impl Iterator<Item = Subnet> {
    let a = (17u8..=31).map(|b| Subnet {
        addr: Ipv4Addr::new(172, b, 0, 0),
        prefix: 16,
    });
    let b = (0u8..16).map(|i| Subnet {
        addr: Ipv4Addr::new(192, 168, i * 16, 0),
        prefix: 20,
    });
    a.chain(b)
}

/// The first route (other than a default route or one through `own_oif`) that overlaps
/// `subnet`.
pub fn overlapping_route<'a>(
    subnet: &Subnet,
    routes: &'a [Route],
    own_oif: Option<u32>,
) -> Option<&'a Route> {
    routes.iter().find(|r| {
        r.prefix != 0 && (own_oif.is_none() || r.oif != own_oif) && subnet.overlaps(r.dst, r.prefix)
    })
}

/// Picks the first default-pool subnet that overlaps no route on the host.
pub fn pick_subnet(routes: &[Route]) -> Result<Subnet, Error> {
    default_pool()
        .find(|s| overlapping_route(s, routes, None).is_none())
        .ok_or(Error::NoFreeSubnet)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn subnet_parsing_and_math() {
        let s: Subnet = "10.88.0.0/24".parse().unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 88, 0, 255));
        assert!(s.assignable(Ipv4Addr::new(10, 88, 0, 2)));
        assert!(!s.assignable(Ipv4Addr::new(10, 88, 0, 1)));
        assert!(!s.assignable(Ipv4Addr::new(10, 88, 0, 255)));
        assert!(!s.assignable(Ipv4Addr::new(10, 88, 1, 2)));
        assert!(s.overlaps(Ipv4Addr::new(10, 0, 0, 0), 8));
        assert!(!s.overlaps(Ipv4Addr::new(10, 89, 0, 0), 24));
        let mut taken = BTreeSet::new();
        taken.insert(Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(s.next_free(&taken), Some(Ipv4Addr::new(10, 88, 0, 3)));
        let e = "10.88.0.1/24".parse::<Subnet>().unwrap_err().to_string();
        assert!(e.contains("host bits"), "{e}");
        assert!("10.88.0.0/31".parse::<Subnet>().is_err());
        assert!("nonsense".parse::<Subnet>().is_err());
        let tiny: Subnet = "10.9.9.0/30".parse().unwrap();
        let mut t = BTreeSet::new();
        assert_eq!(tiny.next_free(&t), Some(Ipv4Addr::new(10, 9, 9, 2)));
        t.insert(Ipv4Addr::new(10, 9, 9, 2));
        assert_eq!(tiny.next_free(&t), None);
    }

    #[test]
    fn pick_avoids_routes() {
        let routes = vec![
            Route {
                dst: Ipv4Addr::UNSPECIFIED,
                prefix: 0,
                oif: Some(2),
            },
            Route {
                dst: Ipv4Addr::new(172, 16, 0, 0),
                prefix: 12,
                oif: Some(3),
            },
        ];
        let s = pick_subnet(&routes).unwrap();
        assert_eq!(s.to_string(), "192.168.0.0/20");
        assert_eq!(pick_subnet(&[]).unwrap().to_string(), "172.17.0.0/16");
    }
}
