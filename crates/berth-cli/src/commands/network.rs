//! `berth network create|ls|inspect|rm|prune|connect|disconnect`.

use super::filters_query;
use crate::Failure;
use crate::cli::*;
use crate::client::{Client, enc, with_query};
use crate::format::{Output, short_id};
use crate::template::Template;
use serde_json::{Map, Value, json};
use std::io::Write;

const LS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

fn kv(list: &[String], what: &str) -> Result<Map<String, Value>, Failure> {
    let mut m = Map::new();
    for x in list {
        let (k, v) = x.split_once('=').unwrap_or((x.as_str(), ""));
        if k.is_empty() {
            return Err(Failure::new(125, format!("invalid {what} {x:?}")));
        }
        m.insert(k.to_string(), json!(v));
    }
    Ok(m)
}

/// `network create`.
pub fn create(c: &mut Client, a: NetworkCreateArgs) -> Result<i32, Failure> {
    let mut ipam = Map::new();
    if a.subnet.is_some() || a.gateway.is_some() || a.ip_range.is_some() {
        let mut conf = Map::new();
        for (k, v) in [
            ("Subnet", &a.subnet),
            ("Gateway", &a.gateway),
            ("IPRange", &a.ip_range),
        ] {
            if let Some(v) = v {
                conf.insert(k.into(), json!(v));
            }
        }
        ipam.insert("Config".into(), json!([conf]));
    }
    ipam.insert("Driver".into(), json!("default"));
    let body = json!({
        "Name": a.name,
        "Driver": a.driver,
        "Internal": a.internal,
        "IPAM": ipam,
        "Options": kv(&a.opt, "option")?,
        "Labels": kv(&a.label, "label")?,
    });
    let r = c.post_json("/networks/create", Some(&body))?;
    println!("{}", r.get("Id").and_then(Value::as_str).unwrap_or(""));
    Ok(0)
}

/// `network ls`.
pub fn ls(c: &mut Client, a: NetworkLsArgs) -> Result<i32, Failure> {
    let mut q = vec![];
    if let Some(f) = filters_query(&a.filter)? {
        q.push(("filters", f));
    }
    let list = c.get_json(&with_query("/networks", &q))?;
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let id = n.get("Id").and_then(Value::as_str).unwrap_or("");
            let labels = n
                .get("Labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            json!({
                "ID": if a.no_trunc { id.to_string() } else { short_id(id) },
                "Name": n.get("Name").cloned().unwrap_or(json!("")),
                "Driver": n.get("Driver").cloned().unwrap_or(json!("")),
                "Scope": n.get("Scope").cloned().unwrap_or(json!("local")),
                "IPv6": n.get("EnableIPv6").and_then(Value::as_bool).unwrap_or(false).to_string(),
                "Internal": n.get("Internal").and_then(Value::as_bool).unwrap_or(false).to_string(),
                "Labels": labels,
                "CreatedAt": n.get("Created").cloned().unwrap_or(json!("")),
            })
        })
        .collect();
    if a.quiet && a.format.is_none() {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let header = json!({"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"});
    let out = Output::parse(a.format.as_deref().unwrap_or(""), LS_TABLE)?;
    super::container::print_rows(&out, rows, &header)
}

/// `network inspect`.
pub fn inspect(c: &mut Client, a: NetworkInspectArgs) -> Result<i32, Failure> {
    let tmpl = match a.format.as_deref() {
        None | Some("") | Some("json") => None,
        Some(f) => Some(Template::parse(
            &f.replace("\\t", "\t").replace("\\n", "\n"),
        )?),
    };
    let mut found = Vec::new();
    let mut errs = Vec::new();
    for n in &a.networks {
        match c.get_json(&format!("/networks/{}", enc(n))) {
            Ok(v) => found.push(v),
            Err(e) => errs.push(e.to_string()),
        }
    }
    let mut out = std::io::stdout().lock();
    match tmpl {
        None => {
            let text = serde_json::to_string_pretty(&Value::Array(found)).unwrap_or_default();
            let _ = writeln!(out, "{text}");
        }
        Some(t) => {
            for v in &found {
                let _ = writeln!(out, "{}", t.execute(v)?);
            }
        }
    }
    if errs.is_empty() {
        Ok(0)
    } else {
        Err(Failure::new(1, errs.join("\n")))
    }
}

/// `network rm`.
pub fn rm(c: &mut Client, a: NetworkRmArgs) -> Result<i32, Failure> {
    super::each(
        &a.networks,
        |n| {
            c.delete(&format!("/networks/{}", enc(n)))?;
            Ok(())
        },
        true,
    )
}

/// `network prune`.
pub fn prune(c: &mut Client, a: NetworkPruneArgs) -> Result<i32, Failure> {
    if !a.force {
        eprint!(
            "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "
        );
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let mut q = vec![];
    if let Some(f) = filters_query(&a.filter)? {
        q.push(("filters", f));
    }
    let r = c.post_json::<Value>(&with_query("/networks/prune", &q), None)?;
    let deleted: Vec<&str> = r
        .get("NetworksDeleted")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !deleted.is_empty() {
        println!("Deleted Networks:");
        for d in deleted {
            println!("{d}");
        }
    }
    Ok(0)
}

/// `network connect`.
pub fn connect(c: &mut Client, a: NetworkConnectArgs) -> Result<i32, Failure> {
    let mut ep = Map::new();
    if let Some(ip) = &a.ip {
        ep.insert("IPAMConfig".into(), json!({ "IPv4Address": ip }));
    }
    if !a.alias.is_empty() {
        ep.insert("Aliases".into(), json!(a.alias));
    }
    let body = json!({ "Container": a.container, "EndpointConfig": ep });
    c.request(
        "POST",
        &format!("/networks/{}/connect", enc(&a.network)),
        Some(("application/json", body.to_string().as_bytes())),
    )?;
    Ok(0)
}

/// `network disconnect`.
pub fn disconnect(c: &mut Client, a: NetworkDisconnectArgs) -> Result<i32, Failure> {
    let body = json!({ "Container": a.container, "Force": a.force });
    c.request(
        "POST",
        &format!("/networks/{}/disconnect", enc(&a.network)),
        Some(("application/json", body.to_string().as_bytes())),
    )?;
    Ok(0)
}

/// `run`/`create`'s network flags: `--ip`, `--network-alias`, `--add-host`, `--dns*`,
/// `--link`, `-p` (with ranges) and `-P`, into the host config, the networking config and
/// the exposed ports.
#[allow(clippy::type_complexity)]
pub fn run_fields(
    a: &RunArgs,
    mut host: berth_api_types::models::HostConfig,
) -> Result<
    (
        berth_api_types::models::HostConfig,
        Option<berth_api_types::models::NetworkingConfig>,
        Option<Vec<String>>,
    ),
    Failure,
> {
    use berth_api_types::models::{
        EndpointIpamConfig, EndpointSettings, NetworkingConfig, PortBinding,
    };
    use std::collections::HashMap;
    let nonempty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    host.extra_hosts = nonempty(&a.add_host);
    host.dns = nonempty(&a.dns);
    host.dns_search = nonempty(&a.dns_search);
    host.dns_options = nonempty(&a.dns_option);
    host.links = nonempty(&a.link);
    host.publish_all_ports = a.publish_all.then_some(true);
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let mut exposed: Vec<String> = Vec::new();
    for p in &a.publish {
        for (key, b) in parse_publish(p)? {
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(b);
        }
    }
    if !bindings.is_empty() {
        host.port_bindings = Some(bindings);
    }
    let networking = if a.ip.is_some() || !a.network_alias.is_empty() {
        let net = a.network.clone().unwrap_or_else(|| "default".into());
        let ep = EndpointSettings {
            ipam_config: a.ip.as_ref().map(|ip| EndpointIpamConfig {
                ipv4_address: Some(ip.clone()),
                ..Default::default()
            }),
            aliases: nonempty(&a.network_alias),
            ..Default::default()
        };
        Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(net, ep)])),
        })
    } else {
        None
    };
    Ok((host, networking, (!exposed.is_empty()).then_some(exposed)))
}

fn port_range(s: &str, spec: &str) -> Result<(u16, u16), Failure> {
    let bad = || Failure::new(125, format!("invalid port specification: {spec:?}"));
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// `[ip:][hostPort[-end]:]containerPort[-end][/proto]` → (`port/proto`, binding) pairs.
fn parse_publish(
    spec: &str,
) -> Result<Vec<(String, berth_api_types::models::PortBinding)>, Failure> {
    let bad = || Failure::new(125, format!("invalid port specification: {spec:?}"));
    let (rest, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    let parts: Vec<&str> = rest.rsplitn(3, ':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => ("", "", *c),
        [c, h] => ("", *h, *c),
        [c, h, i] => (*i, *h, *c),
        _ => return Err(bad()),
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let (c0, c1) = port_range(ctr, spec)?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(port_range(host, spec)?)
    };
    let n = c1 - c0;
    let mut out = Vec::new();
    for i in 0..=n {
        let host_port = match host_range {
            None => String::new(),
            Some((h0, h1)) if h1 - h0 == n => (h0 + i).to_string(),
            Some((h0, h1)) if n == 0 => format!("{h0}-{h1}"),
            Some(_) => return Err(bad()),
        };
        out.push((
            format!("{}/{proto}", c0 + i),
            berth_api_types::models::PortBinding {
                host_ip: Some(ip.to_string()),
                host_port: Some(host_port),
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pairs(spec: &str) -> Vec<(String, String, String)> {
        parse_publish(spec)
            .unwrap()
            .into_iter()
            .map(|(k, b)| (k, b.host_ip.unwrap(), b.host_port.unwrap()))
            .collect()
    }

    #[test]
    fn publish_specs() {
        let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(pairs("80"), [s("80/tcp", "", "")]);
        assert_eq!(pairs("8080:80/udp"), [s("80/udp", "", "8080")]);
        assert_eq!(
            pairs("127.0.0.1:8000-8001:80-81"),
            [
                s("80/tcp", "127.0.0.1", "8000"),
                s("81/tcp", "127.0.0.1", "8001")
            ]
        );
        assert_eq!(pairs("9000-9010:80"), [s("80/tcp", "", "9000-9010")]);
        for bad in ["", "x:80", "8000-8002:80-81", "80/icmp", "0:80", "81-80"] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }
}
