//! The DNS wire format, as much as an embedded resolver needs: parsing one query and building
//! its answer (RFC 1035). Pure functions over byte slices; the server loop (sockets,
//! forwarding to the host's resolvers) lives with its caller.
//!
//! Packets come from containers and are hostile: every read is bounds-checked, names are
//! limited to 255 bytes and 63-byte labels, compression pointers are refused in questions
//! (clients never send them there), and only single-question standard queries are answered.
//! Anything else gets `FORMERR`/`NOTIMP` when its header is readable and no answer otherwise.

use std::net::Ipv4Addr;

/// The DNS header length.
const HEADER: usize = 12;
/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// Class IN.
pub const CLASS_IN: u16 = 1;

/// Response codes used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// No error.
    NoError = 0,
    /// The query could not be parsed.
    FormErr = 1,
    /// The resolver failed (e.g. no upstream answered).
    ServFail = 2,
    /// The name does not exist.
    NxDomain = 3,
    /// Not a kind of query this resolver handles.
    NotImp = 4,
}

/// Why a packet is not a query this resolver answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Shorter than a header: nothing can be answered.
    #[error("packet too short")]
    Short,
    /// A response, not a query: ignored.
    #[error("not a query")]
    NotQuery,
    /// Malformed question (answered with `FORMERR`).
    #[error("malformed query: {0}")]
    Malformed(&'static str),
    /// An opcode or question count not handled (answered with `NOTIMP`).
    #[error("unsupported query: {0}")]
    Unsupported(&'static str),
}

/// One parsed standard query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The transaction id.
    pub id: u16,
    /// Recursion desired.
    pub rd: bool,
    /// The name asked for, lower-cased, labels joined by `.`, no trailing dot (`""` for
    /// the root).
    pub name: String,
    /// The record type.
    pub qtype: u16,
    /// The class.
    pub qclass: u16,
    /// The question section as received, echoed in the answer.
    question: Vec<u8>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Parses a query.
pub fn parse_query(b: &[u8]) -> Result<Query, DnsError> {
    if b.len() < HEADER {
        return Err(DnsError::Short);
    }
    let id = u16_at(b, 0).ok_or(DnsError::Short)?;
    let flags = u16_at(b, 2).ok_or(DnsError::Short)?;
    if flags & 0x8000 != 0 {
        return Err(DnsError::NotQuery);
    }
    if (flags >> 11) & 0xf != 0 {
        return Err(DnsError::Unsupported("opcode"));
    }
    if u16_at(b, 4) != Some(1) {
        return Err(DnsError::Unsupported("question count other than 1"));
    }
    let mut pos = HEADER;
    let mut labels: Vec<String> = Vec::new();
    let mut wire_len = 0usize;
    loop {
        let len = usize::from(*b.get(pos).ok_or(DnsError::Malformed("truncated name"))?);
        pos += 1;
        wire_len += 1 + len;
        if wire_len > 255 {
            return Err(DnsError::Malformed("name longer than 255 bytes"));
        }
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            return Err(DnsError::Malformed(
                "compressed or extended label in question",
            ));
        }
        let label = b
            .get(pos..pos + len)
            .ok_or(DnsError::Malformed("truncated label"))?;
        pos += len;
        labels.push(
            label
                .iter()
                .map(|c| char::from(c.to_ascii_lowercase()))
                .collect(),
        );
    }
    let qtype = u16_at(b, pos).ok_or(DnsError::Malformed("truncated question"))?;
    let qclass = u16_at(b, pos + 2).ok_or(DnsError::Malformed("truncated question"))?;
    let question = b[HEADER..pos + 4].to_vec();
    Ok(Query {
        id,
        rd: flags & 0x0100 != 0,
        name: labels.join("."),
        qtype,
        qclass,
        question,
    })
}

/// The answer to `q` with `rcode` and, for A queries, one A record per address.
pub fn response(q: &Query, rcode: Rcode, addrs: &[Ipv4Addr], ttl: u32) -> Vec<u8> {
    let addrs: &[Ipv4Addr] = if q.qtype == TYPE_A && rcode == Rcode::NoError {
        &addrs[..addrs.len().min(32)]
    } else {
        &[]
    };
    let mut out = Vec::with_capacity(HEADER + q.question.len() + addrs.len() * 16);
    out.extend_from_slice(&q.id.to_be_bytes());
    // QR, AA, RD as asked, RA.
    let flags: u16 = 0x8000 | 0x0400 | if q.rd { 0x0100 } else { 0 } | 0x0080 | rcode as u16;
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&q.question);
    for a in addrs {
        out.extend_from_slice(&0xc00cu16.to_be_bytes());
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&a.octets());
    }
    out
}

/// An answer with only a header (no question): for packets whose question is unusable.
pub fn error_response(packet: &[u8], rcode: Rcode) -> Option<Vec<u8>> {
    let id = u16_at(packet, 0)?;
    let flags = u16_at(packet, 2)?;
    let mut out = Vec::with_capacity(HEADER);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(0x8000 | (flags & 0x7900) | 0x0080 | rcode as u16).to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    Some(out)
}

/// What the resolver does with a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this answer back.
    Reply(Vec<u8>),
    /// Not a local name: pass the packet to the host's resolvers, relay their answer.
    Forward,
    /// Not worth an answer (responses, runts).
    Drop,
}

/// Decides the answer to `packet`: names `lookup` knows are answered (A records for A
/// queries, an empty NOERROR for other types), unknown names without a dot get NXDOMAIN,
/// everything else is forwarded.
pub fn handle(packet: &[u8], lookup: impl Fn(&str) -> Option<Vec<Ipv4Addr>>) -> Action {
    let q = match parse_query(packet) {
        Ok(q) => q,
        Err(DnsError::Short | DnsError::NotQuery) => return Action::Drop,
        Err(DnsError::Malformed(_)) => {
            return error_response(packet, Rcode::FormErr).map_or(Action::Drop, Action::Reply);
        }
        Err(DnsError::Unsupported(_)) => {
            return error_response(packet, Rcode::NotImp).map_or(Action::Drop, Action::Reply);
        }
    };
    if q.qclass != CLASS_IN || q.name.is_empty() {
        return Action::Forward;
    }
    match lookup(&q.name) {
        Some(addrs) if !addrs.is_empty() => {
            Action::Reply(response(&q, Rcode::NoError, &addrs, 600))
        }
        _ if !q.name.contains('.') => Action::Reply(response(&q, Rcode::NxDomain, &[], 0)),
        _ => Action::Forward,
    }
}

/// A fuzzing entry point: parses and answers `data` against a fixed name table; panics only
/// on a bug (an answer that does not parse back, or a panic inside).
pub fn fuzz_dns(data: &[u8]) {
    let lookup = |n: &str| (n == "web").then(|| vec![Ipv4Addr::new(10, 0, 0, 2)]);
    if let Action::Reply(r) = handle(data, lookup) {
        assert!(r.len() >= HEADER, "short reply");
        assert_eq!(r[..2], data[..2], "reply id differs");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut b = id.to_be_bytes().to_vec();
        b.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name.split('.').filter(|l| !l.is_empty()) {
            b.push(l.len() as u8);
            b.extend_from_slice(l.as_bytes());
        }
        b.push(0);
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&CLASS_IN.to_be_bytes());
        b
    }

    fn lookup(n: &str) -> Option<Vec<Ipv4Addr>> {
        match n {
            "web" | "alias.one" => Some(vec![Ipv4Addr::new(10, 1, 2, 3)]),
            _ => None,
        }
    }

    #[test]
    fn answers_known_names() {
        let q = query(0xbeef, "WEB", TYPE_A);
        let Action::Reply(r) = handle(&q, lookup) else {
            panic!("no reply")
        };
        assert_eq!(&r[..2], &[0xbe, 0xef]);
        assert_eq!(r[3] & 0xf, 0, "rcode");
        assert_eq!(u16_at(&r, 6), Some(1), "one answer");
        assert_eq!(&r[r.len() - 4..], &[10, 1, 2, 3]);
        // The question is echoed as sent.
        assert_eq!(&r[12..12 + q.len() - 12], &q[12..]);
        let Action::Reply(r) = handle(&query(1, "alias.one.", TYPE_A), lookup) else {
            panic!("no reply")
        };
        assert_eq!(u16_at(&r, 6), Some(1));
        // AAAA of a known name: NOERROR, no records.
        let Action::Reply(r) = handle(&query(2, "web", TYPE_AAAA), lookup) else {
            panic!("no reply")
        };
        assert_eq!((r[3] & 0xf, u16_at(&r, 6)), (0, Some(0)));
    }

    #[test]
    fn unknown_names() {
        let Action::Reply(r) = handle(&query(3, "nosuch", TYPE_A), lookup) else {
            panic!("no reply")
        };
        assert_eq!(r[3] & 0xf, Rcode::NxDomain as u8);
        assert_eq!(
            handle(&query(4, "example.org", TYPE_A), lookup),
            Action::Forward
        );
    }

    #[test]
    fn malformed_packets() {
        assert_eq!(handle(&[], lookup), Action::Drop);
        assert_eq!(handle(&[1, 2, 3], lookup), Action::Drop);
        // A response is never answered.
        let mut resp = query(5, "web", TYPE_A);
        resp[2] |= 0x80;
        assert_eq!(handle(&resp, lookup), Action::Drop);
        // Truncated name, truncated question, oversized label, compression pointer,
        // endless labels: FORMERR with the id.
        let mut cases: Vec<Vec<u8>> = Vec::new();
        let q = query(6, "web", TYPE_A);
        cases.push(q[..14].to_vec());
        cases.push(q[..q.len() - 1].to_vec());
        let mut p = q[..12].to_vec();
        p.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        cases.push(p);
        let mut p = q[..12].to_vec();
        p.push(63);
        cases.push(p);
        let mut p = q[..12].to_vec();
        for _ in 0..100 {
            p.extend_from_slice(&[3, b'a', b'b', b'c']);
        }
        p.extend_from_slice(&[0, 0, 1, 0, 1]);
        cases.push(p);
        for c in cases {
            let Action::Reply(r) = handle(&c, lookup) else {
                panic!("no reply to {c:?}")
            };
            assert_eq!(&r[..2], &c[..2]);
            assert_eq!(r[3] & 0xf, Rcode::FormErr as u8, "{c:?}");
        }
        // Two questions, or an update: NOTIMP.
        let mut p = query(7, "web", TYPE_A);
        p[5] = 2;
        let Action::Reply(r) = handle(&p, lookup) else {
            panic!()
        };
        assert_eq!(r[3] & 0xf, Rcode::NotImp as u8);
    }

    #[test]
    fn fuzz_smoke() {
        // Every prefix and single-byte mutation of a valid query.
        let q = query(9, "some.name.example", TYPE_A);
        for cut in 0..=q.len() {
            fuzz_dns(&q[..cut]);
        }
        for i in 0..q.len() {
            for v in [0u8, 1, 0x3f, 0x40, 0xc0, 0xff] {
                let mut m = q.clone();
                m[i] = v;
                fuzz_dns(&m);
            }
        }
    }
}
