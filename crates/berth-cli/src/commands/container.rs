//! Container commands that are plain requests: ps, stop, kill, rm, logs, inspect, wait, top,
//! stats, pause, rename, update.

use super::{cpath, each, filters_query};
use crate::Failure;
use crate::cli::*;
use crate::client::{Client, Error, enc, with_query};
use crate::format::{self, Output, ago, ellipsis, go_time, human_size, short_id};
use crate::template::Template;
use serde_json::{Map, Value, json};
use std::io::{Read, Write};

const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// Key under which a row keeps its labels for `.Label "key"` (hidden from `json`).
pub const LABELS_KEY: &str = "\u{0}labels";

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// Docker's ps context for one container summary.
pub fn ps_row(c: &Value, trunc: bool) -> Value {
    let id = s(c, "Id");
    let names: Vec<String> = c
        .get("Names")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|n| n.trim_start_matches('/').to_string())
                .filter(|n| !trunc || !n.contains('/'))
                .collect()
        })
        .unwrap_or_default();
    let mut image = s(c, "Image");
    if trunc && (image.starts_with("sha256:") || image.len() == 64) {
        image = short_id(&image);
    }
    let command = s(c, "Command");
    let command = if trunc {
        ellipsis(&command, 20)
    } else {
        command
    };
    let created = c.get("Created").and_then(Value::as_i64).unwrap_or(0);
    let labels = c.get("Labels").cloned().unwrap_or(Value::Null);
    let mut lab: Vec<String> = labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    lab.sort();
    let size = match (
        c.get("SizeRw").and_then(Value::as_f64),
        c.get("SizeRootFs").and_then(Value::as_f64),
    ) {
        (rw, Some(root)) => format!(
            "{} (virtual {})",
            human_size(rw.unwrap_or(0.0)),
            human_size(root)
        ),
        (Some(rw), None) => human_size(rw),
        _ => "0B".to_string(),
    };
    let mounts: Vec<String> = c
        .get("Mounts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|m| {
                    let n = s(m, "Name");
                    let n = if n.is_empty() { s(m, "Source") } else { n };
                    if trunc { ellipsis(&n, 15) } else { n }
                })
                .collect()
        })
        .unwrap_or_default();
    let local_volumes = c
        .get("Mounts")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter(|m| s(m, "Driver") == "local").count())
        .unwrap_or(0);
    let mut networks: Vec<String> = c
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let mut row = json!({
        "ID": if trunc { short_id(&id) } else { id },
        "Names": names.join(","),
        "Image": image,
        "Command": format!("\"{command}\""),
        "CreatedAt": go_time(created),
        "RunningFor": ago(created as f64),
        "Ports": ports(c),
        "State": s(c, "State"),
        "Status": s(c, "Status"),
        "Size": size,
        "Labels": lab.join(","),
        "Mounts": mounts.join(","),
        "LocalVolumes": local_volumes.to_string(),
        "Networks": networks.join(","),
        "Platform": c.pointer("/ImageManifestDescriptor/platform").map(|p| {
            Value::String(format!("{}/{}", s(p, "os"), s(p, "architecture")))
        }).unwrap_or(Value::Null),
    });
    if let Some(m) = row.as_object_mut() {
        m.insert(LABELS_KEY.into(), labels);
    }
    row
}

fn ports(c: &Value) -> String {
    let Some(ps) = c.get("Ports").and_then(Value::as_array) else {
        return String::new();
    };
    let mut out: Vec<String> = ps
        .iter()
        .map(|p| {
            let private = p.get("PrivatePort").and_then(Value::as_i64).unwrap_or(0);
            let typ = s(p, "Type");
            match p.get("PublicPort").and_then(Value::as_i64) {
                Some(public) if public != 0 => {
                    format!("{}:{public}->{private}/{typ}", s(p, "IP"))
                }
                _ => format!("{private}/{typ}"),
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out.join(", ")
}

/// Column titles of the ps context.
pub fn ps_header() -> Value {
    json!({
        "ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
        "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE",
        "Status": "STATUS", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
        "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS", "Platform": "PLATFORM",
        LABELS_KEY: {},
    })
}

/// Strips hidden keys before JSON output.
pub fn visible(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.retain(|k, _| !k.starts_with('\u{0}'));
    }
    v
}

pub fn ps(c: &mut Client, a: PsArgs) -> Result<i32, Failure> {
    let mut q = vec![];
    if a.all {
        q.push(("all", "1".to_string()));
    }
    let limit = if a.latest { 1 } else { a.last };
    if limit > 0 {
        q.push(("limit", limit.to_string()));
    }
    let fmt = a.format.clone().unwrap_or_default();
    // docker asks for sizes when the format shows them (or everything: `json`).
    let size = a.size || ((fmt.contains(".Size") || fmt.contains("json")) && !a.quiet);
    if size {
        q.push(("size", "1".to_string()));
    }
    if let Some(f) = filters_query(&a.filter)? {
        q.push(("filters", f));
    }
    let list = c.get_json(&with_query("/containers/json", &q))?;
    let rows: Vec<Value> = list
        .as_array()
        .map(|a2| a2.iter().map(|x| ps_row(x, !a.no_trunc)).collect())
        .unwrap_or_default();
    let default = if a.quiet {
        "{{.ID}}".to_string()
    } else if a.size {
        format!("{PS_TABLE}\t{{{{.Size}}}}")
    } else {
        PS_TABLE.to_string()
    };
    let out = if a.quiet && a.format.is_none() {
        Output::parse("", &default)?
    } else {
        Output::parse(&fmt, &default)?
    };
    print_rows(&out, rows, &ps_header())
}

/// Renders rows with hidden keys kept for templates but dropped for JSON.
pub fn print_rows(out: &Output, rows: Vec<Value>, header: &Value) -> Result<i32, Failure> {
    let text = match out {
        Output::Json => {
            let rows: Vec<Value> = rows.into_iter().map(visible).collect();
            out.render(&rows, header)?
        }
        _ => out.render(&rows, header)?,
    };
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    Ok(0)
}

pub fn stop(c: &mut Client, a: StopArgs, restart: bool) -> Result<i32, Failure> {
    let mut q = vec![];
    if let Some(t) = a.timeout {
        q.push(("t", t.to_string()));
    }
    if let Some(sig) = &a.signal {
        q.push(("signal", sig.clone()));
    }
    let verb = if restart { "/restart" } else { "/stop" };
    each(
        &a.containers,
        |n| {
            c.post_json::<Value>(&with_query(&cpath(n, verb), &q), None)?;
            Ok(())
        },
        true,
    )
}

pub fn kill(c: &mut Client, a: KillArgs) -> Result<i32, Failure> {
    let mut q = vec![];
    if let Some(sig) = &a.signal {
        q.push(("signal", sig.clone()));
    }
    each(
        &a.containers,
        |n| {
            c.post_json::<Value>(&with_query(&cpath(n, "/kill"), &q), None)?;
            Ok(())
        },
        true,
    )
}

pub fn rm(c: &mut Client, a: RmArgs) -> Result<i32, Failure> {
    let mut q = vec![];
    if a.force {
        q.push(("force", "1".to_string()));
    }
    if a.volumes {
        q.push(("v", "1".to_string()));
    }
    each(
        &a.containers,
        |n| {
            c.delete(&with_query(&cpath(n, ""), &q))?;
            Ok(())
        },
        true,
    )
}

pub fn simple(c: &mut Client, a: IdsArgs, verb: &str) -> Result<i32, Failure> {
    each(
        &a.containers,
        |n| {
            c.post_json::<Value>(&cpath(n, &format!("/{verb}")), None)?;
            Ok(())
        },
        true,
    )
}

pub fn rename(c: &mut Client, a: RenameArgs) -> Result<i32, Failure> {
    let name = a.new_name.trim();
    if name.is_empty() {
        return Err(Failure::new(
            1,
            "Error: neither old nor new names may be empty",
        ));
    }
    c.post_json::<Value>(
        &with_query(
            &cpath(&a.container, "/rename"),
            &[("name", name.to_string())],
        ),
        None,
    )?;
    Ok(0)
}

pub fn wait(c: &mut Client, a: IdsArgs) -> Result<i32, Failure> {
    let mut errs = Vec::new();
    for n in &a.containers {
        match c.post_json::<Value>(&cpath(n, "/wait"), None) {
            Ok(v) => println!(
                "{}",
                v.get("StatusCode").and_then(Value::as_i64).unwrap_or(-1)
            ),
            Err(e) => errs.push(e.to_string()),
        }
    }
    if errs.is_empty() {
        Ok(0)
    } else {
        Err(Failure::new(1, errs.join("\n")))
    }
}

pub fn top(c: &mut Client, a: TopArgs) -> Result<i32, Failure> {
    let mut q = vec![];
    if !a.ps_args.is_empty() {
        q.push(("ps_args", a.ps_args.join(" ")));
    }
    let v = c.get_json(&with_query(&cpath(&a.container, "/top"), &q))?;
    let mut text = String::new();
    let titles: Vec<String> = v
        .get("Titles")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    text.push_str(&titles.join("\t"));
    text.push('\n');
    for p in v
        .get("Processes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let cells: Vec<String> = p
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    print!("{}", format::tabwrite(&text));
    Ok(0)
}

/// Parses docker's memory sizes (`64m`, `1g`, `512k`, `1024`): binary units.
pub fn ram_bytes(s: &str) -> Result<i64, Failure> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('p') => (&t[..t.len() - 1], 1 << 50),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| Failure::new(125, format!("invalid size: '{s}'")))?;
    if n < 0.0 {
        return Err(Failure::new(125, format!("invalid size: '{s}'")));
    }
    Ok((n * mult as f64) as i64)
}

/// `--memory-swap`: -1 means unlimited.
pub fn swap_bytes(s: &str) -> Result<i64, Failure> {
    if s.trim() == "-1" {
        Ok(-1)
    } else {
        ram_bytes(s)
    }
}

/// `--restart`: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn restart_policy(s: &str) -> Result<Value, Failure> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (
            n,
            Some(c.parse::<i64>().map_err(|_| {
                Failure::new(
                    125,
                    format!(
                        "invalid restart policy format: maximum retry count must be an integer: {c}"
                    ),
                )
            })?),
        ),
        None => (s, None),
    };
    match name {
        "no" | "always" | "unless-stopped" | "on-failure" => {}
        _ => {
            return Err(Failure::new(
                125,
                format!(
                    "invalid restart policy format: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
                ),
            ));
        }
    }
    if count.is_some() && name != "on-failure" {
        return Err(Failure::new(
            125,
            "invalid restart policy format: maximum retry count can only be used with 'on-failure'"
                .to_string(),
        ));
    }
    let mut m = Map::new();
    m.insert("Name".into(), Value::String(name.into()));
    if let Some(c) = count {
        m.insert("MaximumRetryCount".into(), Value::from(c));
    }
    Ok(Value::Object(m))
}

pub fn update(c: &mut Client, a: UpdateArgs) -> Result<i32, Failure> {
    let mut body = Map::new();
    if let Some(m) = &a.memory {
        body.insert("Memory".into(), ram_bytes(m)?.into());
    }
    if let Some(m) = &a.memory_swap {
        body.insert("MemorySwap".into(), swap_bytes(m)?.into());
    }
    if let Some(cpus) = a.cpus {
        body.insert("NanoCpus".into(), ((cpus * 1e9) as i64).into());
    }
    if let Some(x) = a.cpu_shares {
        body.insert("CpuShares".into(), x.into());
    }
    if let Some(x) = &a.cpuset_cpus {
        body.insert("CpusetCpus".into(), x.clone().into());
    }
    if let Some(x) = a.pids_limit {
        body.insert("PidsLimit".into(), x.into());
    }
    if let Some(r) = &a.restart {
        body.insert("RestartPolicy".into(), restart_policy(r)?);
    }
    if body.is_empty() {
        return Err(Failure::new(
            125,
            "you must provide one or more flags when using this command",
        ));
    }
    let body = Value::Object(body);
    each(
        &a.containers,
        |n| {
            let v = c.post_json(&cpath(n, "/update"), Some(&body))?;
            for w in v
                .get("Warnings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                eprintln!("WARNING: {}", w.as_str().unwrap_or(""));
            }
            Ok(())
        },
        true,
    )
}

pub fn inspect(c: &mut Client, a: InspectArgs, kind: Option<&str>) -> Result<i32, Failure> {
    let typ = a.typ.as_deref().or(kind);
    if let Some(t) = typ
        && !matches!(t, "container" | "image")
    {
        return Err(Failure::new(
            125,
            format!("\"{t}\" is not a valid value for --type"),
        ));
    }
    let tmpl = match a.format.as_deref() {
        None | Some("") | Some("json") => None,
        Some(f) => Some(Template::parse(
            &f.replace("\\t", "\t").replace("\\n", "\n"),
        )?),
    };
    let mut raws: Vec<Vec<u8>> = Vec::new();
    let mut errs = Vec::new();
    for n in &a.names {
        let size = if a.size { "?size=1" } else { "" };
        let try_container = || format!("{}{size}", cpath(n, "/json"));
        let try_image = || format!("/images/{}/json", enc(n));
        let paths: Vec<String> = match typ {
            Some("container") => vec![try_container()],
            Some("image") => vec![try_image()],
            _ => vec![try_container(), try_image()],
        };
        let mut got = None;
        let mut last_err = None;
        for p in &paths {
            match c.request("GET", p, None) {
                Ok(mut r) => {
                    got = Some(r.body.read_all()?);
                    break;
                }
                Err(e @ Error::Daemon { status: 404, .. }) => last_err = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        match (got, last_err) {
            (Some(b), _) => raws.push(b),
            (None, Some(e)) => {
                if typ.is_none() {
                    errs.push(format!("Error: No such object: {n}"));
                } else {
                    errs.push(e.to_string());
                }
            }
            (None, None) => errs.push(format!("Error: No such object: {n}")),
        }
    }
    let mut out = std::io::stdout().lock();
    match tmpl {
        None => {
            let mut text = String::from("[");
            for (i, r) in raws.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&String::from_utf8_lossy(r));
            }
            text.push(']');
            let _ = out.write_all(indent_json(&text, "    ").as_bytes());
            let _ = out.write_all(b"\n");
        }
        Some(t) => {
            for r in &raws {
                let v: Value = serde_json::from_slice(r)
                    .map_err(|e| Failure::new(1, format!("invalid JSON from daemon: {e}")))?;
                let s = t.execute(&v)?;
                let _ = out.write_all(s.as_bytes());
                let _ = out.write_all(b"\n");
            }
        }
    }
    if errs.is_empty() {
        Ok(0)
    } else {
        Err(Failure::new(1, errs.join("\n")))
    }
}

/// Re-indents JSON text keeping the daemon's key order and escapes (Go's `json.Indent`).
pub fn indent_json(src: &str, ind: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let nl = |out: &mut String, d: usize| {
        out.push('\n');
        for _ in 0..d {
            out.push_str(ind);
        }
    };
    while i < chars.len() {
        let ch = chars[i];
        if in_str {
            out.push(ch);
            if esc {
                esc = false;
            } else if ch == '\\' {
                esc = true;
            } else if ch == '"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match ch {
            '"' => {
                in_str = true;
                out.push(ch);
            }
            '{' | '[' => {
                // Empty containers stay `{}` / `[]`.
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if j < chars.len() && (chars[j] == '}' || chars[j] == ']') {
                    out.push(ch);
                    out.push(chars[j]);
                    i = j + 1;
                    continue;
                }
                out.push(ch);
                depth += 1;
                nl(&mut out, depth);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                nl(&mut out, depth);
                out.push(ch);
            }
            ',' => {
                out.push(',');
                nl(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

pub fn logs(c: &mut Client, a: LogsArgs) -> Result<i32, Failure> {
    let info = c.get_json(&cpath(&a.container, "/json"))?;
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut q = vec![("stdout", "1".to_string()), ("stderr", "1".to_string())];
    if a.follow {
        q.push(("follow", "1".into()));
    }
    if a.timestamps {
        q.push(("timestamps", "1".into()));
    }
    if a.details {
        q.push(("details", "1".into()));
    }
    if let Some(s) = &a.since {
        q.push((
            "since",
            format::parse_time_arg(s).map_err(|e| Failure::new(1, e))?,
        ));
    }
    if let Some(s) = &a.until {
        q.push((
            "until",
            format::parse_time_arg(s).map_err(|e| Failure::new(1, e))?,
        ));
    }
    q.push(("tail", a.tail.clone()));
    let mut r = c.request("GET", &with_query(&cpath(&a.container, "/logs"), &q), None)?;
    let mut buf = vec![0u8; 32 * 1024];
    let mut dec = berth_api_types::stdcopy::Decoder::default();
    loop {
        let n = r.body.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if tty {
            let mut o = std::io::stdout().lock();
            o.write_all(&buf[..n])?;
            o.flush()?;
            continue;
        }
        dec.push(&buf[..n]);
        while let Some((st, data)) = dec.next_frame().map_err(|e| Failure::new(1, e))? {
            use berth_api_types::stdcopy::Stream;
            if st == Stream::Stdout {
                let mut o = std::io::stdout().lock();
                o.write_all(&data)?;
                o.flush()?;
            } else {
                let mut o = std::io::stderr().lock();
                o.write_all(&data)?;
            }
        }
    }
    Ok(0)
}

const STATS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn stats_header() -> Value {
    json!({"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
           "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
           "BlockIO": "BLOCK I/O", "PIDs": "PIDS"})
}

/// Docker's stats context from one stats sample.
pub fn stats_row(v: &Value, name_or_id: &str, trunc: bool) -> Value {
    let f = |p: &str| v.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    let cpu_delta =
        f("/cpu_stats/cpu_usage/total_usage") - f("/precpu_stats/cpu_usage/total_usage");
    let sys_delta = f("/cpu_stats/system_cpu_usage") - f("/precpu_stats/system_cpu_usage");
    let mut online = f("/cpu_stats/online_cpus");
    if online == 0.0 {
        online = v
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(Value::as_array)
            .map_or(0.0, |a| a.len() as f64);
    }
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let usage = f("/memory_stats/usage");
    let cache = {
        let v1 = f("/memory_stats/stats/total_inactive_file");
        if v1 > 0.0 && v1 < usage {
            v1
        } else {
            let v2 = f("/memory_stats/stats/inactive_file");
            if v2 < usage { v2 } else { 0.0 }
        }
    };
    let mem = usage - cache;
    let limit = f("/memory_stats/limit");
    let mem_perc = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = v.get("networks").and_then(Value::as_object) {
        for n in nets.values() {
            rx += n.get("rx_bytes").and_then(Value::as_f64).unwrap_or(0.0);
            tx += n.get("tx_bytes").and_then(Value::as_f64).unwrap_or(0.0);
        }
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in v
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let val = e.get("value").and_then(Value::as_f64).unwrap_or(0.0);
        match s(e, "op").to_ascii_lowercase().as_str() {
            "read" => rd += val,
            "write" => wr += val,
            _ => {}
        }
    }
    let id = s(v, "id");
    let name = s(v, "name").trim_start_matches('/').to_string();
    json!({
        "ID": if trunc { short_id(&id) } else { id },
        "Container": name_or_id,
        "Name": name,
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", format::bytes_size(mem), format::bytes_size(limit)),
        "MemPerc": format!("{mem_perc:.2}%"),
        "NetIO": format!("{} / {}", human_size(rx), human_size(tx)),
        "BlockIO": format!("{} / {}", human_size(rd), human_size(wr)),
        "PIDs": format!("{}", f("/pids_stats/current") as i64),
    })
}

pub fn stats(c: &mut Client, a: StatsArgs) -> Result<i32, Failure> {
    let out = Output::parse(a.format.as_deref().unwrap_or(""), STATS_TABLE)?;
    loop {
        let names: Vec<String> = if a.containers.is_empty() {
            let q = if a.all { "?all=1" } else { "" };
            let list = c.get_json(&format!("/containers/json{q}"))?;
            list.as_array()
                .into_iter()
                .flatten()
                .map(|x| s(x, "Id"))
                .collect()
        } else {
            a.containers.clone()
        };
        let mut rows = Vec::new();
        let mut errs = Vec::new();
        for n in &names {
            match c.get_json(&cpath(n, "/stats?stream=0")) {
                Ok(v) => rows.push(stats_row(&v, n, !a.no_trunc)),
                Err(e) => errs.push(e.to_string()),
            }
        }
        if !errs.is_empty() {
            return Err(Failure::new(1, errs.join("\n")));
        }
        if !a.no_stream {
            print!("\x1b[2J\x1b[H");
        }
        print_rows(&out, rows, &stats_header())?;
        let _ = std::io::stdout().flush();
        if a.no_stream {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// `berth diff`: one `A|C|D path` line per change, as the daemon sorted them.
pub fn diff(c: &mut Client, a: DiffArgs) -> Result<i32, Failure> {
    let list = c.get_json(&cpath(&a.container, "/changes"))?;
    for ch in list.as_array().into_iter().flatten() {
        let kind = match ch.get("Kind").and_then(Value::as_i64) {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!(
            "{kind} {}",
            ch.get("Path").and_then(Value::as_str).unwrap_or("")
        );
    }
    Ok(0)
}

/// `berth commit`: prints the new image's id.
pub fn commit(c: &mut Client, a: CommitArgs) -> Result<i32, Failure> {
    let mut q: Vec<(&str, String)> = vec![("container", a.container.clone())];
    if let Some(r) = &a.reference {
        let slash = r.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match r[slash..].rfind(':') {
            Some(i) => (r[..slash + i].to_string(), r[slash + i + 1..].to_string()),
            None => (r.clone(), String::new()),
        };
        q.push(("repo", repo));
        if !tag.is_empty() {
            q.push(("tag", tag));
        }
    }
    if let Some(m) = &a.message {
        q.push(("comment", m.clone()));
    }
    if let Some(au) = &a.author {
        q.push(("author", au.clone()));
    }
    if !a.pause {
        q.push(("pause", "0".to_string()));
    }
    for ch in &a.change {
        q.push(("changes", ch.clone()));
    }
    let r = c.post_json::<Value>(&with_query("/commit", &q), None)?;
    println!("{}", r.get("Id").and_then(Value::as_str).unwrap_or(""));
    Ok(0)
}

/// `berth export`: the container's file system as a tar, to a file or stdout (refused when
/// stdout is a terminal, as docker does).
pub fn export(c: &mut Client, a: ExportArgs) -> Result<i32, Failure> {
    use std::io::IsTerminal;
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Failure::new(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut r = c.request("GET", &cpath(&a.container, "/export"), None)?;
    let io_err = |what: &str, e: std::io::Error| Failure::new(1, format!("{what}: {e}"));
    match &a.output {
        Some(path) => {
            // Written next to the target and renamed, so a failed export leaves no file.
            let tmp = format!("{path}.berth-{}.tmp", std::process::id());
            let res = std::fs::File::create(&tmp)
                .map_err(|e| io_err(&format!("creating {tmp}"), e))
                .and_then(|mut f| {
                    std::io::copy(&mut r.body, &mut f)
                        .map_err(|e| io_err("reading the export", e))?;
                    f.sync_all()
                        .map_err(|e| io_err(&format!("writing {tmp}"), e))
                })
                .and_then(|_| {
                    std::fs::rename(&tmp, path).map_err(|e| io_err(&format!("writing {path}"), e))
                });
            if res.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            res?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            std::io::copy(&mut r.body, &mut out).map_err(|e| io_err("reading the export", e))?;
            out.flush().map_err(|e| io_err("writing the export", e))?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes_and_policies_parse() {
        assert_eq!(ram_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(ram_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_bytes("512kb").unwrap(), 512 << 10);
        assert_eq!(ram_bytes("100").unwrap(), 100);
        assert!(ram_bytes("lots").is_err());
        assert_eq!(swap_bytes("-1").unwrap(), -1);
        assert_eq!(
            restart_policy("on-failure:3").unwrap(),
            json!({"Name":"on-failure","MaximumRetryCount":3})
        );
        assert!(restart_policy("always:3").is_err());
        assert!(restart_policy("sometimes").is_err());
    }

    #[test]
    fn json_indent_keeps_order() {
        assert_eq!(
            indent_json(r#"[{"b":1,"a":[],"c":{"x":"a,b:{"}}]"#, "  "),
            "[\n  {\n    \"b\": 1,\n    \"a\": [],\n    \"c\": {\n      \"x\": \"a,b:{\"\n    }\n  }\n]"
        );
    }
}
