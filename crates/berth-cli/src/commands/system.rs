//! System commands: version, info, events.

use super::filters_query;
use crate::Failure;
use crate::cli::*;
use crate::client::{Client, with_query};
use crate::format::{self, human_size};
use crate::template::{Template, print};
use berth_api_types::ApiVersion;
use serde_json::{Value, json};
use std::io::Write;

fn tmpl(f: &str) -> Result<Template, Failure> {
    Ok(Template::parse(
        &f.replace("\\t", "\t").replace("\\n", "\n"),
    )?)
}

fn client_info(api: &str) -> Value {
    json!({
        "Platform": {"Name": ""},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": api,
        "APIVersion": api,
        "DefaultAPIVersion": ApiVersion::CURRENT.to_string(),
        "GoVersion": "",
        "GitCommit": "",
        "BuildTime": "",
        "Os": std::env::consts::OS,
        "Arch": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        "Context": "default",
    })
}

pub fn version(c: &mut Client, a: FormatArgs) -> Result<i32, Failure> {
    let (api, server) = match c.version() {
        Ok(v) => (v.to_string(), c.get_json("/version").map_err(Failure::from)),
        Err(e) => (ApiVersion::CURRENT.to_string(), Err(e.into())),
    };
    let mut server_v = server.as_ref().ok().cloned().unwrap_or(Value::Null);
    if let Some(m) = server_v.as_object_mut() {
        // Go field names docker templates use, next to the JSON names.
        for (go, js) in [
            ("APIVersion", "ApiVersion"),
            ("MinAPIVersion", "MinAPIVersion"),
        ] {
            if let Some(v) = m.get(js).cloned() {
                m.insert(go.into(), v);
            }
        }
    }
    let data = json!({"Client": client_info(&api), "Server": server_v});
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        if f == "json" {
            println!("{}", serde_json::to_string(&data).unwrap_or_default());
        } else {
            println!("{}", tmpl(f)?.execute(&data)?);
        }
        return server.map(|_| 0);
    }
    let cl = &data["Client"];
    let mut o = String::new();
    o.push_str("Client:\n");
    o.push_str(&format!(" Version:           {}\n", print(&cl["Version"])));
    o.push_str(&format!(
        " API version:       {}\n",
        print(&cl["ApiVersion"])
    ));
    o.push_str(&format!(
        " OS/Arch:           {}/{}\n",
        print(&cl["Os"]),
        print(&cl["Arch"])
    ));
    o.push_str(" Context:           default\n");
    if let Ok(s) = &server {
        let g = |k: &str| s.get(k).map(print).unwrap_or_default();
        o.push_str(&format!(
            "\nServer: {}\n",
            s.pointer("/Platform/Name").map(print).unwrap_or_default()
        ));
        o.push_str(" Engine:\n");
        o.push_str(&format!("  Version:          {}\n", g("Version")));
        o.push_str(&format!(
            "  API version:      {} (minimum version {})\n",
            g("ApiVersion"),
            g("MinAPIVersion")
        ));
        o.push_str(&format!("  Go version:       {}\n", g("GoVersion")));
        o.push_str(&format!("  Git commit:       {}\n", g("GitCommit")));
        o.push_str(&format!("  Built:            {}\n", g("BuildTime")));
        o.push_str(&format!("  OS/Arch:          {}/{}\n", g("Os"), g("Arch")));
        o.push_str(&format!(
            "  Experimental:     {}\n",
            s.get("Experimental").map(print).unwrap_or("false".into())
        ));
        for comp in s
            .get("Components")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = comp.get("Name").map(print).unwrap_or_default();
            if name == "Engine" {
                continue;
            }
            o.push_str(&format!(" {name}:\n"));
            o.push_str(&format!(
                "  Version:          {}\n",
                comp.get("Version").map(print).unwrap_or_default()
            ));
            if let Some(gc) = comp.pointer("/Details/GitCommit") {
                o.push_str(&format!("  GitCommit:        {}\n", print(gc)));
            }
        }
    }
    print!("{o}");
    server.map(|_| 0)
}

pub fn info(c: &mut Client, a: FormatArgs) -> Result<i32, Failure> {
    let api = c.version()?.to_string();
    let s = c.get_json("/info")?;
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let mut data = s.clone();
        if let Some(m) = data.as_object_mut() {
            m.insert("ClientInfo".into(), client_info(&api));
        }
        if f == "json" {
            println!("{}", serde_json::to_string(&data).unwrap_or_default());
        } else {
            println!("{}", tmpl(f)?.execute(&data)?);
        }
        return Ok(0);
    }
    let g = |k: &str| s.get(k).map(print).unwrap_or_default();
    let mut o = String::new();
    o.push_str("Client:\n");
    o.push_str(&format!(" Version:    {}\n", env!("CARGO_PKG_VERSION")));
    o.push_str(" Context:    default\n Debug Mode: false\n\nServer:\n");
    o.push_str(&format!(" Containers: {}\n", g("Containers")));
    o.push_str(&format!("  Running: {}\n", g("ContainersRunning")));
    o.push_str(&format!("  Paused: {}\n", g("ContainersPaused")));
    o.push_str(&format!("  Stopped: {}\n", g("ContainersStopped")));
    o.push_str(&format!(" Images: {}\n", g("Images")));
    o.push_str(&format!(" Server Version: {}\n", g("ServerVersion")));
    o.push_str(&format!(" Storage Driver: {}\n", g("Driver")));
    for d in s
        .get("DriverStatus")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(p) = d.as_array().filter(|p| p.len() == 2) {
            o.push_str(&format!("  {}: {}\n", print(&p[0]), print(&p[1])));
        }
    }
    o.push_str(&format!(" Logging Driver: {}\n", g("LoggingDriver")));
    o.push_str(&format!(" Cgroup Driver: {}\n", g("CgroupDriver")));
    o.push_str(&format!(" Cgroup Version: {}\n", g("CgroupVersion")));
    if let Some(rt) = s.get("Runtimes").and_then(Value::as_object) {
        let mut names: Vec<&String> = rt.keys().collect();
        names.sort();
        let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        o.push_str(&format!(" Runtimes: {}\n", names.join(" ")));
    }
    o.push_str(&format!(" Default Runtime: {}\n", g("DefaultRuntime")));
    if let Some(so) = s.get("SecurityOptions").and_then(Value::as_array) {
        o.push_str(" Security Options:\n");
        for x in so {
            let x = print(x);
            for part in x.split(',') {
                if let Some(n) = part.strip_prefix("name=") {
                    o.push_str(&format!("  {n}\n"));
                } else {
                    o.push_str(&format!("   {}\n", part.replace('=', ": ")));
                }
            }
        }
    }
    o.push_str(&format!(" Kernel Version: {}\n", g("KernelVersion")));
    o.push_str(&format!(" Operating System: {}\n", g("OperatingSystem")));
    o.push_str(&format!(" OSType: {}\n", g("OSType")));
    o.push_str(&format!(" Architecture: {}\n", g("Architecture")));
    o.push_str(&format!(" CPUs: {}\n", g("NCPU")));
    let mem = s.get("MemTotal").and_then(Value::as_f64).unwrap_or(0.0);
    o.push_str(&format!(" Total Memory: {}\n", format::bytes_size(mem)));
    o.push_str(&format!(" Name: {}\n", g("Name")));
    o.push_str(&format!(" ID: {}\n", g("ID")));
    o.push_str(&format!(" Docker Root Dir: {}\n", g("DockerRootDir")));
    o.push_str(&format!(" Debug Mode: {}\n", g("Debug")));
    o.push_str(&format!(" Experimental: {}\n", g("ExperimentalBuild")));
    o.push_str(&format!(
        " Live Restore Enabled: {}\n",
        g("LiveRestoreEnabled")
    ));
    for w in s
        .get("Warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        eprintln!("{}", print(w));
    }
    let _ = human_size;
    print!("{o}");
    Ok(0)
}

/// docker's default event line: `time type action id (k=v, …)`.
fn event_line(e: &Value) -> String {
    let nano = e.get("timeNano").and_then(Value::as_i64).unwrap_or(0);
    let secs = nano.div_euclid(1_000_000_000);
    // docker's fixed-width RFC 3339 with nanoseconds.
    let whole = format::rfc3339_nano(secs as f64);
    let date = whole.split('.').next().unwrap_or("");
    let ts = format!("{date}.{:09}Z", nano.rem_euclid(1_000_000_000));
    let typ = e.get("Type").map(print).unwrap_or_default();
    let action = e.get("Action").map(print).unwrap_or_default();
    let id = e.pointer("/Actor/ID").map(print).unwrap_or_default();
    let mut attrs: Vec<String> = e
        .pointer("/Actor/Attributes")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", print(v))).collect())
        .unwrap_or_default();
    attrs.sort();
    let mut line = format!("{ts} {typ} {action} {id}");
    if !attrs.is_empty() {
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line
}

pub fn events(c: &mut Client, a: EventsArgs) -> Result<i32, Failure> {
    let mut q = vec![];
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
    if let Some(f) = filters_query(&a.filter)? {
        q.push(("filters", f));
    }
    let t = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(tmpl("{{json .}}")?),
        Some(f) => Some(tmpl(f)?),
    };
    let mut r = c.request("GET", &with_query("/events", &q), None)?;
    let mut failure = None;
    r.body.json_stream(|e| {
        let line = match &t {
            None => Ok(event_line(&e)),
            Some(t) => t.execute(&e),
        };
        match line {
            Ok(l) => {
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "{l}");
                let _ = o.flush();
                true
            }
            Err(err) => {
                failure = Some(err);
                false
            }
        }
    })?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(0),
    }
}
