//! Published ports: `-p [hostip:]hostport:containerport[/tcp|udp]`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// The name nftables and Docker use.
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port. `host_port` 0 asks for a free ephemeral port; the attachment reports
/// the port actually chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// Host address to listen on; `None` means every local address.
    pub host_ip: Option<Ipv4Addr>,
    /// Host port (0 = pick one).
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// Transport protocol.
    pub proto: Proto,
}

/// The ports a container publishes.
pub type PortBindings = Vec<PortBinding>;

impl PortBinding {
    /// Whether two bindings would claim the same host socket.
    pub fn conflicts(&self, other: &PortBinding) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && self.host_port != 0
            && match (self.host_ip, other.host_ip) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for PortBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = self.host_ip {
            write!(f, "{ip}:")?;
        }
        write!(
            f,
            "{}:{}/{}",
            self.host_port,
            self.container_port,
            self.proto.as_str()
        )
    }
}

impl FromStr for PortBinding {
    type Err = Error;
    /// Parses Docker's `-p` syntax (IPv4 only; ranges are not supported yet).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::InvalidPort(s.to_string(), why.to_string());
        let (spec, proto) = match s.rsplit_once('/') {
            Some((spec, "tcp")) => (spec, Proto::Tcp),
            Some((spec, "udp")) => (spec, Proto::Udp),
            Some(_) => return Err(bad("protocol must be tcp or udp")),
            None => (s, Proto::Tcp),
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (host_ip, host_port, container_port) = match parts.as_slice() {
            [c] => (None, "0", *c),
            [h, c] => (None, *h, *c),
            [ip, h, c] => (Some(*ip), *h, *c),
            _ => return Err(bad("expected [hostip:]hostport:containerport[/proto]")),
        };
        let host_ip = match host_ip {
            None | Some("") | Some("0.0.0.0") => None,
            Some(ip) => Some(
                ip.parse::<Ipv4Addr>()
                    .map_err(|_| bad("host address is not an ipv4 address"))?,
            ),
        };
        let host_port = if host_port.is_empty() {
            0
        } else {
            host_port
                .parse::<u16>()
                .map_err(|_| bad("host port is not a number between 0 and 65535"))?
        };
        let container_port: u16 = container_port
            .parse()
            .map_err(|_| bad("container port is not a number between 1 and 65535"))?;
        if container_port == 0 {
            return Err(bad("container port must not be 0"));
        }
        Ok(PortBinding {
            host_ip,
            host_port,
            container_port,
            proto,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_docker_syntax() {
        let p: PortBinding = "8080:80".parse().unwrap();
        assert_eq!((p.host_ip, p.host_port, p.container_port), (None, 8080, 80));
        assert_eq!(p.proto, Proto::Tcp);
        let p: PortBinding = "127.0.0.1:53:5353/udp".parse().unwrap();
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(p.proto, Proto::Udp);
        assert_eq!(p.to_string(), "127.0.0.1:53:5353/udp");
        let p: PortBinding = "80".parse().unwrap();
        assert_eq!(p.host_port, 0);
        for bad in ["80/sctp", "x:80", "1:2:3:4", "70000:80", "80:0", "nope:1:2"] {
            let e = bad.parse::<PortBinding>().unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn conflicts() {
        let a: PortBinding = "8080:80".parse().unwrap();
        let b: PortBinding = "127.0.0.1:8080:81".parse().unwrap();
        let c: PortBinding = "8080:80/udp".parse().unwrap();
        let d: PortBinding = "10.0.0.1:8080:80".parse().unwrap();
        assert!(a.conflicts(&b));
        assert!(!a.conflicts(&c));
        assert!(!b.conflicts(&d));
    }
}
