//! nftables through the `nft` binary with JSON input (`nft -j -f -`), confined to berth's own
//! `ip` table. Every batch is one kernel transaction: it applies whole or not at all.
//!
//! Layout of table `ip <table>`:
//! - `publish` (regular chain): one DNAT rule per published port, commented with the
//!   container id so exactly that container's rules can be found and deleted by handle.
//! - `prerouting` (nat, hook prerouting, dstnat): `fib daddr type local` → `jump publish`,
//!   for traffic from outside and from other containers.
//! - `output` (nat, hook output, dstnat): the same for connections the host itself opens,
//!   including to 127.0.0.1 and to the bridge's gateway address.
//! - `postrouting` (nat, hook postrouting, srcnat): masquerade the subnet's egress (not to
//!   the bridge); masquerade 127.0.0.0/8 sources leaving through the bridge (the localhost
//!   hairpin, see [`crate::network`] on `route_localnet`); masquerade DNATed traffic that
//!   goes back out the bridge it came in on (container → gateway:port → container).
//! - `guard` (filter, hook prerouting, raw priority): drop packets arriving on the bridge for
//!   127.0.0.0/8, which `route_localnet` would otherwise let containers reach.
//!
//! The base chains are flushed and refilled by [`setup`] in the same transaction that creates
//! them, so re-running it is idempotent and never disturbs `publish`.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::Error;
use crate::ipam::Subnet;
use crate::ports::PortBinding;

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

/// Creates (or refreshes) the table, its chains and the network-wide rules.
pub fn setup(table: &str, bridge: &str, subnet: &Subnet) -> Result<(), Error> {
    let base = [
        ("prerouting", "nat", "prerouting", -100),
        ("output", "nat", "output", -100),
        ("postrouting", "nat", "postrouting", 100),
        ("guard", "filter", "prerouting", -300),
    ];
    let mut cmds = vec![
        json!({ "add": { "table": { "family": FAMILY, "name": table } } }),
        json!({ "add": { "chain": { "family": FAMILY, "table": table, "name": "publish" } } }),
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
    let to_publish = json!({ "jump": { "target": "publish" } });
    cmds.push(rule(
        table,
        "prerouting",
        vec![local.clone(), to_publish.clone()],
        None,
    ));
    cmds.push(rule(table, "output", vec![local, to_publish], None));
    cmds.push(rule(
        table,
        "postrouting",
        vec![
            m(payload("ip", "saddr"), "==", prefix(subnet)),
            m(meta("oifname"), "!=", json!(bridge)),
            json!({ "masquerade": null }),
        ],
        None,
    ));
    cmds.push(rule(
        table,
        "postrouting",
        vec![
            m(
                payload("ip", "saddr"),
                "==",
                json!({ "prefix": { "addr": "127.0.0.0", "len": 8 } }),
            ),
            m(meta("oifname"), "==", json!(bridge)),
            json!({ "masquerade": null }),
        ],
        None,
    ));
    cmds.push(rule(
        table,
        "postrouting",
        vec![
            m(meta("iifname"), "==", json!(bridge)),
            m(meta("oifname"), "==", json!(bridge)),
            m(json!({ "ct": { "key": "status" } }), "in", json!("dnat")),
            json!({ "masquerade": null }),
        ],
        None,
    ));
    cmds.push(rule(
        table,
        "guard",
        vec![
            m(meta("iifname"), "==", json!(bridge)),
            m(
                payload("ip", "daddr"),
                "==",
                json!({ "prefix": { "addr": "127.0.0.0", "len": 8 } }),
            ),
            json!({ "drop": null }),
        ],
        None,
    ));
    run(cmds)
}

fn comment_for(container_id: &str) -> String {
    format!("berth:{container_id}")
}

/// Adds the DNAT rules publishing `ports` to `ip`, in one transaction.
pub fn add_ports(
    table: &str,
    container_id: &str,
    ip: Ipv4Addr,
    ports: &[PortBinding],
) -> Result<(), Error> {
    if ports.is_empty() {
        return Ok(());
    }
    let comment = comment_for(container_id);
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
            rule(table, "publish", expr, Some(&comment))
        })
        .collect();
    run(cmds)
}

/// Handles of the `publish` rules carrying `container_id`'s comment.
pub fn container_rule_handles(table: &str, container_id: &str) -> Result<Vec<u64>, Error> {
    let Some(listing) = list_table(table)? else {
        return Ok(Vec::new());
    };
    let comment = comment_for(container_id);
    let items = listing
        .get("nftables")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(items
        .iter()
        .filter_map(|i| i.get("rule"))
        .filter(|r| {
            r.get("chain").and_then(Value::as_str) == Some("publish")
                && r.get("comment").and_then(Value::as_str) == Some(comment.as_str())
        })
        .filter_map(|r| r.get("handle").and_then(Value::as_u64))
        .collect())
}

/// Deletes exactly `container_id`'s rules (none is fine).
pub fn remove_container(table: &str, container_id: &str) -> Result<(), Error> {
    let handles = container_rule_handles(table, container_id)?;
    if handles.is_empty() {
        return Ok(());
    }
    let cmds = handles
        .into_iter()
        .map(|h| {
            json!({ "delete": { "rule": {
                "family": FAMILY, "table": table, "chain": "publish", "handle": h
            }}})
        })
        .collect();
    run(cmds)
}

/// Deletes the whole table (a missing table is fine).
pub fn delete_table(table: &str) -> Result<(), Error> {
    if list_table(table)?.is_none() {
        return Ok(());
    }
    run(vec![
        json!({ "delete": { "table": { "family": FAMILY, "name": table } } }),
    ])
}
