//! nftables through the `nft` binary with JSON input (`nft -j -f -`), confined to berth's own
//! `ip` table. Every batch is one kernel transaction: it applies whole or not at all.
//!
//! Several networks may share one table: each network's chains carry its bridge's name, and
//! only those are ever flushed or deleted. For a network on bridge `B`:
//! - `pub-B` (regular chain): one DNAT rule per published port, commented `berth:<id>` so
//!   exactly one container's rules can be found and deleted by handle.
//! - `pre-B` (nat, hook prerouting, dstnat): `fib daddr type local` → `jump pub-B`, for
//!   traffic from outside and from containers.
//! - `out-B` (nat, hook output, dstnat): the same for connections the host itself opens,
//!   including to 127.0.0.1 and to the bridge's gateway address.
//! - `post-B` (nat, hook postrouting, srcnat): masquerade the subnet's egress (not to the
//!   bridge); masquerade 127.0.0.0/8 sources leaving through the bridge (the localhost
//!   hairpin, see the `network` module on `route_localnet`); masquerade DNATed traffic that
//!   goes back out the bridge it came in on (container → gateway:port → container).
//! - `guard-B` (filter, hook prerouting, raw priority): drop packets arriving on the bridge
//!   for 127.0.0.0/8, which `route_localnet` would otherwise let containers reach.
//! - `fwd-B` (filter, hook forward): empty, except on an internal network, where it drops
//!   whatever would be routed into or out of the bridge (and `post-B` masquerades nothing).
//!
//! [`setup`] creates the chains and flushes and refills the base chains in one transaction,
//! so re-running it is idempotent and never disturbs `pub-B`.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::Error;
use crate::ipam::Subnet;
use crate::ports::{PortBinding, Proto};

const FAMILY: &str = "ip";

/// Runs one JSON batch.
fn run(cmds: Vec<Value>) -> Result<(), Error> {
    let body = json!({ "nftables": cmds }).to_string();
    let out = nft(&["-j", "-f", "-"], Some(body.as_bytes()))?;
    if !out.status.success() {
        return Err(Error::Nft(format!(
            "nft -j -f - failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn nft(args: &[&str], stdin: Option<&[u8]>) -> Result<std::process::Output, Error> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Nft(format!("cannot run nft: {e}")))?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data)
            .map_err(|e| Error::Nft(format!("writing to nft: {e}")))?;
    }
    child
        .wait_with_output()
        .map_err(|e| Error::Nft(format!("waiting for nft: {e}")))
}

/// The table as nft's JSON listing, or `None` when it does not exist.
pub fn list_table(table: &str) -> Result<Option<Value>, Error> {
    let out = nft(&["-j", "list", "table", FAMILY, table], None)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such file or directory") {
            return Ok(None);
        }
        return Err(Error::Nft(format!(
            "nft list table {FAMILY} {table} failed: {}",
            err.trim()
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map(Some)
        .map_err(|e| Error::Nft(format!("unreadable nft listing: {e}")))
}

fn m(left: Value, op: &str, right: Value) -> Value {
    json!({ "match": { "op": op, "left": left, "right": right } })
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({ "payload": { "protocol": protocol, "field": field } })
}

fn meta(key: &str) -> Value {
    json!({ "meta": { "key": key } })
}

fn prefix(s: &Subnet) -> Value {
    json!({ "prefix": { "addr": s.addr().to_string(), "len": s.prefix() } })
}

fn rule(table: &str, chain: &str, expr: Vec<Value>, comment: Option<&str>) -> Value {
    let mut r = json!({ "family": FAMILY, "table": table, "chain": chain, "expr": expr });
    if let (Some(c), Some(obj)) = (comment, r.as_object_mut()) {
        obj.insert("comment".into(), json!(c));
    }
    json!({ "add": { "rule": r } })
}

fn base_chain(table: &str, name: &str, kind: &str, hook: &str, prio: i32) -> Value {
    json!({ "add": { "chain": {
        "family": FAMILY, "table": table, "name": name,
        "type": kind, "hook": hook, "prio": prio, "policy": "accept"
    }}})
}

/// The names of one network's chains.
struct Chains {
    publish: String,
    pre: String,
    out: String,
    post: String,
    guard: String,
    fwd: String,
}

fn chains(bridge: &str) -> Chains {
    Chains {
        publish: format!("pub-{bridge}"),
        pre: format!("pre-{bridge}"),
        out: format!("out-{bridge}"),
        post: format!("post-{bridge}"),
        guard: format!("guard-{bridge}"),
        fwd: format!("fwd-{bridge}"),
    }
}

fn loopback_net() -> Value {
    json!({ "prefix": { "addr": "127.0.0.0", "len": 8 } })
}

/// Creates (or refreshes) the table, the network's chains and its network-wide rules.
pub fn setup(table: &str, bridge: &str, subnet: &Subnet, internal: bool) -> Result<(), Error> {
    let c = chains(bridge);
    let base = [
        (&c.pre, "nat", "prerouting", -100),
        (&c.out, "nat", "output", -100),
        (&c.post, "nat", "postrouting", 100),
        (&c.guard, "filter", "prerouting", -300),
        (&c.fwd, "filter", "forward", 0),
    ];
    let mut cmds = vec![
        json!({ "add": { "table": { "family": FAMILY, "name": table } } }),
        json!({ "add": { "chain": { "family": FAMILY, "table": table, "name": c.publish } } }),
    ];
    for (name, kind, hook, prio) in base {
        cmds.push(base_chain(table, name, kind, hook, prio));
        cmds.push(
            json!({ "flush": { "chain": { "family": FAMILY, "table": table, "name": name } } }),
        );
    }
    let local = m(
        json!({ "fib": { "result": "type", "flags": ["daddr"] } }),
        "==",
        json!("local"),
    );
    let to_publish = json!({ "jump": { "target": c.publish } });
    cmds.push(rule(
        table,
        &c.pre,
        vec![local.clone(), to_publish.clone()],
        None,
    ));
    cmds.push(rule(table, &c.out, vec![local, to_publish], None));
    let masq = json!({ "masquerade": null });
    if internal {
        for (a, b) in [("iifname", "oifname"), ("oifname", "iifname")] {
            cmds.push(rule(
                table,
                &c.fwd,
                vec![
                    m(meta(a), "==", json!(bridge)),
                    m(meta(b), "!=", json!(bridge)),
                    json!({ "drop": null }),
                ],
                None,
            ));
        }
    } else {
        cmds.push(rule(
            table,
            &c.post,
            vec![
                m(payload("ip", "saddr"), "==", prefix(subnet)),
                m(meta("oifname"), "!=", json!(bridge)),
                masq.clone(),
            ],
            None,
        ));
    }
    cmds.push(rule(
        table,
        &c.post,
        vec![
            m(payload("ip", "saddr"), "==", loopback_net()),
            m(meta("oifname"), "==", json!(bridge)),
            masq.clone(),
        ],
        None,
    ));
    cmds.push(rule(
        table,
        &c.post,
        vec![
            m(meta("iifname"), "==", json!(bridge)),
            m(meta("oifname"), "==", json!(bridge)),
            m(json!({ "ct": { "key": "status" } }), "in", json!("dnat")),
            masq,
        ],
        None,
    ));
    cmds.push(rule(
        table,
        &c.guard,
        vec![
            m(meta("iifname"), "==", json!(bridge)),
            m(payload("ip", "daddr"), "==", loopback_net()),
            json!({ "drop": null }),
        ],
        None,
    ));
    run(cmds)
}

const COMMENT_PREFIX: &str = "berth:";

fn comment_for(container_id: &str) -> String {
    format!("{COMMENT_PREFIX}{container_id}")
}

/// Adds the DNAT rules publishing `ports` to `ip`, in one transaction.
pub fn add_ports(
    table: &str,
    bridge: &str,
    container_id: &str,
    ip: Ipv4Addr,
    ports: &[PortBinding],
) -> Result<(), Error> {
    if ports.is_empty() {
        return Ok(());
    }
    let comment = comment_for(container_id);
    let chain = chains(bridge).publish;
    let cmds = ports
        .iter()
        .map(|p| {
            let mut expr = Vec::new();
            if let Some(h) = p.host_ip {
                expr.push(m(payload("ip", "daddr"), "==", json!(h.to_string())));
            }
            expr.push(m(
                payload(p.proto.as_str(), "dport"),
                "==",
                json!(p.host_port),
            ));
            expr.push(json!({ "dnat": { "addr": ip.to_string(), "port": p.container_port } }));
            rule(table, &chain, expr, Some(&comment))
        })
        .collect();
    run(cmds)
}

fn rules(listing: &Value) -> impl Iterator<Item = &Value> {
    listing
        .get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("rule"))
}

/// Handles of the rules in the network's publish chain carrying `container_id`'s comment.
pub fn container_rule_handles(
    table: &str,
    bridge: &str,
    container_id: &str,
) -> Result<Vec<u64>, Error> {
    let Some(listing) = list_table(table)? else {
        return Ok(Vec::new());
    };
    let comment = comment_for(container_id);
    let chain = chains(bridge).publish;
    Ok(rules(&listing)
        .filter(|r| {
            r.get("chain").and_then(Value::as_str) == Some(chain.as_str())
                && r.get("comment").and_then(Value::as_str) == Some(comment.as_str())
        })
        .filter_map(|r| r.get("handle").and_then(Value::as_u64))
        .collect())
}

/// Every port published in the table by any network sharing it (rules commented by berth),
/// with the container it belongs to; used to refuse conflicts across networks.
pub fn published_ports(table: &str) -> Result<Vec<(String, PortBinding)>, Error> {
    let Some(listing) = list_table(table)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for r in rules(&listing) {
        let Some(id) = r
            .get("comment")
            .and_then(Value::as_str)
            .and_then(|c| c.strip_prefix(COMMENT_PREFIX))
        else {
            continue;
        };
        let mut binding = PortBinding {
            host_ip: None,
            host_port: 0,
            container_port: 0,
            proto: Proto::Tcp,
        };
        for e in r
            .get("expr")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(mt) = e.get("match") {
                let left = mt.get("left").and_then(|l| l.get("payload"));
                let proto = left.and_then(|p| p.get("protocol")).and_then(Value::as_str);
                let field = left.and_then(|p| p.get("field")).and_then(Value::as_str);
                let right = mt.get("right");
                match (proto, field) {
                    (Some("ip"), Some("daddr")) => {
                        binding.host_ip =
                            right.and_then(Value::as_str).and_then(|s| s.parse().ok());
                    }
                    (Some(p @ ("tcp" | "udp")), Some("dport")) => {
                        binding.proto = if p == "udp" { Proto::Udp } else { Proto::Tcp };
                        binding.host_port = right
                            .and_then(Value::as_u64)
                            .and_then(|v| u16::try_from(v).ok())
                            .unwrap_or(0);
                    }
                    _ => {}
                }
            }
        }
        if binding.host_port != 0 {
            out.push((id.to_string(), binding));
        }
    }
    Ok(out)
}

/// Deletes exactly `container_id`'s rules (none is fine).
pub fn remove_container(table: &str, bridge: &str, container_id: &str) -> Result<(), Error> {
    let handles = container_rule_handles(table, bridge, container_id)?;
    if handles.is_empty() {
        return Ok(());
    }
    let chain = chains(bridge).publish;
    let cmds = handles
        .into_iter()
        .map(|h| {
            json!({ "delete": { "rule": {
                "family": FAMILY, "table": table, "chain": chain, "handle": h
            }}})
        })
        .collect();
    run(cmds)
}

/// Deletes the network's chains, and the table when no other network uses it. Missing
/// chains or table are fine.
pub fn remove_network(table: &str, bridge: &str) -> Result<(), Error> {
    let Some(listing) = list_table(table)? else {
        return Ok(());
    };
    let c = chains(bridge);
    let ours = [&c.pre, &c.out, &c.post, &c.guard, &c.fwd, &c.publish];
    let present: Vec<String> = listing
        .get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("chain"))
        .filter_map(|ch| ch.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let others = present.iter().any(|n| !ours.contains(&n));
    let cmds = if others {
        // Base chains first: they jump to the publish chain, which must be unreferenced.
        ours.iter()
            .filter(|o| present.iter().any(|n| n == **o))
            .map(|name| {
                json!({ "delete": { "chain": { "family": FAMILY, "table": table, "name": name } } })
            })
            .collect()
    } else {
        vec![json!({ "delete": { "table": { "family": FAMILY, "name": table } } })]
    };
    if cmds.is_empty() {
        return Ok(());
    }
    run(cmds)
}
