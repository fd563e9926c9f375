//! Volume commands (`volume create|ls|inspect|rm|prune`) and docker's `--mount` grammar.

use super::container::{LABELS_KEY, indent_json, print_rows, ram_bytes};
use super::{each, filters_query};
use crate::Failure;
use crate::cli::*;
use crate::client::{Client, enc, with_query};
use crate::format::{Output, human_size};
use crate::template::Template;
use berth_api_types::models::{
    Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType,
    MountVolumeOptions, MountVolumeOptionsDriverConfig, VolumeCreateRequest,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, Write};

const VOLUMES_TABLE: &str = "table {{.Driver}}\t{{.Name}}";

fn usage(msg: impl Into<String>) -> Failure {
    Failure::new(125, msg)
}

/// `KEY=VALUE` list into a map (a bare `KEY` has an empty value).
fn kv_map(items: &[String]) -> HashMap<String, String> {
    items
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

pub fn create(c: &mut Client, a: VolumeCreateArgs) -> Result<i32, Failure> {
    let name = match (&a.name, &a.name_flag) {
        (Some(x), Some(y)) if x != y => {
            return Err(usage(format!(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg ({y} and {x})"
            )));
        }
        (Some(n), _) | (None, Some(n)) => Some(n.clone()),
        (None, None) => None,
    };
    let mut opts = HashMap::new();
    for o in &a.opt {
        let Some((k, v)) = o.split_once('=') else {
            return Err(usage(format!(
                "invalid argument \"{o}\" for \"-o, --opt\" flag: invalid key value pair format in driver options"
            )));
        };
        opts.insert(k.to_string(), v.to_string());
    }
    let req = VolumeCreateRequest {
        name,
        driver: Some(a.driver.clone()),
        driver_opts: Some(opts),
        labels: Some(kv_map(&a.label)),
        cluster_volume_spec: None,
    };
    let v = c.post_json("/volumes/create", Some(&req))?;
    println!("{}", v.get("Name").and_then(Value::as_str).unwrap_or(""));
    Ok(0)
}

/// Docker's volume context for `ls --format`.
fn row(v: &Value) -> Value {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let labels = v.get("Labels").cloned().unwrap_or(Value::Null);
    let mut lab: Vec<String> = labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    lab.sort();
    let size = v
        .get("UsageData")
        .and_then(|u| u.get("Size"))
        .and_then(Value::as_f64)
        .filter(|n| *n >= 0.0)
        .map_or("N/A".to_string(), human_size);
    let links = v
        .get("UsageData")
        .and_then(|u| u.get("RefCount"))
        .and_then(Value::as_i64)
        .filter(|n| *n >= 0)
        .map_or("N/A".to_string(), |n| n.to_string());
    json!({
        "Name": s("Name"), "Driver": s("Driver"), "Scope": s("Scope"),
        "Mountpoint": s("Mountpoint"), "CreatedAt": s("CreatedAt"), "Labels": lab.join(","),
        "Links": links, "Size": size, "Availability": "N/A", "Group": "N/A",
        LABELS_KEY: labels,
    })
}

pub fn ls(c: &mut Client, a: VolumeLsArgs) -> Result<i32, Failure> {
    let mut q = vec![];
    if let Some(f) = filters_query(&a.filter)? {
        q.push(("filters", f));
    }
    let list = c.get_json(&with_query("/volumes", &q))?;
    let mut vols: Vec<Value> = list
        .get("Volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    vols.sort_by(|x, y| {
        let n = |v: &Value| {
            v.get("Name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        n(x).cmp(&n(y))
    });
    if a.quiet && a.format.is_none() {
        for v in &vols {
            println!("{}", v.get("Name").and_then(Value::as_str).unwrap_or(""));
        }
        return Ok(0);
    }
    let header = json!({"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "Mountpoint": "MOUNTPOINT", "CreatedAt": "CREATED", "Labels": "LABELS",
        "Links": "LINKS", "Size": "SIZE", "Availability": "AVAILABILITY", "Group": "GROUP"});
    let out = Output::parse(a.format.as_deref().unwrap_or(""), VOLUMES_TABLE)?;
    print_rows(&out, vols.iter().map(row).collect(), &header)
}

pub fn inspect(c: &mut Client, a: VolumeInspectArgs) -> Result<i32, Failure> {
    let tmpl = match a.format.as_deref() {
        None | Some("") | Some("json") => None,
        Some(f) => Some(Template::parse(
            &f.replace("\\t", "\t").replace("\\n", "\n"),
        )?),
    };
    let mut found = Vec::new();
    let mut errs = Vec::new();
    for n in &a.names {
        match c.request("GET", &format!("/volumes/{}", enc(n)), None) {
            Ok(mut r) => found.push(r.body.read_all()?),
            Err(e) => errs.push(e.to_string()),
        }
    }
    let mut out = std::io::stdout().lock();
    match tmpl {
        None => {
            let parts: Vec<String> = found
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect();
            let text = format!("[{}]", parts.join(","));
            let _ = out.write_all(indent_json(&text, "    ").as_bytes());
            let _ = out.write_all(b"\n");
        }
        Some(t) => {
            for b in &found {
                let v: Value = serde_json::from_slice(b)
                    .map_err(|e| Failure::new(1, format!("invalid JSON from daemon: {e}")))?;
                let _ = out.write_all(t.execute(&v)?.as_bytes());
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

pub fn rm(c: &mut Client, a: VolumeRmArgs) -> Result<i32, Failure> {
    let q = if a.force {
        vec![("force", "1".to_string())]
    } else {
        vec![]
    };
    each(
        &a.names,
        |n| {
            c.delete(&with_query(&format!("/volumes/{}", enc(n)), &q))?;
            Ok(())
        },
        true,
    )
}

pub fn prune(c: &mut Client, a: VolumePruneArgs) -> Result<i32, Failure> {
    let mut filters = a.filter.clone();
    if a.all {
        filters.push("all=true".into());
    }
    if !a.force {
        let what = if a.all {
            "all local volumes"
        } else {
            "anonymous local volumes"
        };
        print!(
            "WARNING! This will remove {what} not used by at least one container.\nAre you sure you want to continue? [y/N] "
        );
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if !matches!(line.trim(), "y" | "Y" | "yes" | "Yes" | "YES") {
            return Ok(0);
        }
    }
    let mut q = vec![];
    if let Some(f) = filters_query(&filters)? {
        q.push(("filters", f));
    }
    let r: Value = c.post_json::<Value>(&with_query("/volumes/prune", &q), None)?;
    let deleted: Vec<&str> = r
        .get("VolumesDeleted")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for d in deleted {
            println!("{d}");
        }
        println!();
    }
    let space = r
        .get("SpaceReclaimed")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    println!("Total reclaimed space: {}", human_size(space));
    Ok(0)
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Splits a CSV line as Go's `encoding/csv` does for one record (double quotes group,
/// `""` inside quotes is a quote).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if at_start => quoted = true,
            ',' if !quoted => {
                out.push(std::mem::take(&mut cur));
                at_start = true;
                continue;
            }
            c => cur.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err("extraneous or missing \" in quoted-field".into());
    }
    out.push(cur);
    Ok(out)
}

/// docker's `--mount` value (`type=volume,src=data,dst=/data,volume-nocopy`) as the API's
/// `Mount`, with docker's checks and messages.
pub fn parse_mount(value: &str) -> Result<Mount, Failure> {
    let bad = |msg: String| {
        usage(format!(
            "invalid argument \"{value}\" for \"--mount\" flag: {msg}"
        ))
    };
    let fields = csv_fields(value).map_err(bad)?;
    let mut m = Mount::default();
    let mut typ = MountType::VOLUME;
    let mut bind = MountBindOptions::default();
    let mut vol = MountVolumeOptions::default();
    let mut tmpfs = MountTmpfsOptions::default();
    let (mut has_bind, mut has_vol, mut has_tmpfs) = (false, false, false);
    let mut driver: Option<String> = None;
    let mut driver_opts: HashMap<String, String> = HashMap::new();
    let mut labels: HashMap<String, String> = HashMap::new();
    for field in fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |v: &Option<String>| {
            v.clone()
                .ok_or_else(|| bad(format!("invalid field '{field}' must be a key=value pair")))
        };
        let boolean = |v: &Option<String>| match v {
            None => Ok(true),
            Some(s) => parse_bool(s).ok_or_else(|| bad(format!("invalid value for {key}: {s}"))),
        };
        match key.as_str() {
            "type" => {
                let t = need(&val)?;
                typ = t
                    .to_ascii_lowercase()
                    .parse()
                    .map_err(|()| bad(format!("invalid mount type {t:?}")))?;
            }
            "source" | "src" => m.source = Some(need(&val)?),
            "target" | "dst" | "destination" => m.target = Some(need(&val)?),
            "readonly" | "ro" => m.read_only = Some(boolean(&val)?),
            "consistency" => m.consistency = Some(need(&val)?),
            "bind-propagation" => {
                has_bind = true;
                let p = need(&val)?;
                bind.propagation = Some(
                    p.to_ascii_lowercase()
                        .parse::<MountBindOptionsPropagationEnum>()
                        .ok()
                        .filter(|p| *p != MountBindOptionsPropagationEnum::EMPTY)
                        .ok_or_else(|| bad(format!("invalid bind-propagation: {p:?}")))?,
                );
            }
            "bind-nonrecursive" => {
                has_bind = true;
                bind.non_recursive = Some(boolean(&val)?);
            }
            "bind-recursive" => {
                has_bind = true;
                match need(&val)?.as_str() {
                    "enabled" => {}
                    "disabled" => bind.non_recursive = Some(true),
                    "writable" => bind.read_only_non_recursive = Some(true),
                    "readonly" => bind.read_only_force_recursive = Some(true),
                    other => {
                        return Err(bad(format!(
                            "invalid value for bind-recursive: {other} (enabled, disabled, writable, readonly)"
                        )));
                    }
                }
            }
            "bind-create-mountpoint" => {
                has_bind = true;
                bind.create_mountpoint = Some(boolean(&val)?);
            }
            "volume-nocopy" => {
                has_vol = true;
                vol.no_copy = Some(boolean(&val)?);
            }
            "volume-label" => {
                has_vol = true;
                let l = need(&val)?;
                let (k, v) = l.split_once('=').unwrap_or((&l, ""));
                labels.insert(k.to_string(), v.to_string());
            }
            "volume-driver" => {
                has_vol = true;
                driver = Some(need(&val)?);
            }
            "volume-opt" => {
                has_vol = true;
                let o = need(&val)?;
                let (k, v) = o.split_once('=').unwrap_or((&o, ""));
                driver_opts.insert(k.to_string(), v.to_string());
            }
            "volume-subpath" => {
                has_vol = true;
                vol.subpath = Some(need(&val)?);
            }
            "tmpfs-size" => {
                has_tmpfs = true;
                let s = need(&val)?;
                tmpfs.size_bytes =
                    Some(ram_bytes(&s).map_err(|_| bad(format!("invalid value for {key}: {s}")))?);
            }
            "tmpfs-mode" => {
                has_tmpfs = true;
                let s = need(&val)?;
                tmpfs.mode = Some(
                    i64::from_str_radix(&s, 8)
                        .map_err(|_| bad(format!("invalid value for {key}: {s}")))?,
                );
            }
            _ => return Err(bad(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    if m.target.as_deref().is_none_or(str::is_empty) {
        return Err(bad("target is required".into()));
    }
    let mix = |opts: &str| {
        bad(format!(
            "cannot mix '{opts}-*' options with mount type '{typ}'"
        ))
    };
    if has_bind && typ != MountType::BIND {
        return Err(mix("bind"));
    }
    if has_vol && typ != MountType::VOLUME {
        return Err(mix("volume"));
    }
    if has_tmpfs && typ != MountType::TMPFS {
        return Err(mix("tmpfs"));
    }
    if driver.is_some() || !driver_opts.is_empty() {
        vol.driver_config = Some(MountVolumeOptionsDriverConfig {
            name: driver,
            options: (!driver_opts.is_empty()).then_some(driver_opts),
        });
    }
    if !labels.is_empty() {
        vol.labels = Some(labels);
    }
    m.typ = Some(typ);
    m.bind_options = has_bind.then_some(bind);
    m.volume_options = has_vol.then_some(vol);
    m.tmpfs_options = has_tmpfs.then_some(tmpfs);
    Ok(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mount_grammar() {
        let m =
            parse_mount("type=bind,src=/srv,dst=/data,readonly,bind-propagation=rslave").unwrap();
        assert_eq!(m.typ, Some(MountType::BIND));
        assert_eq!(m.source.as_deref(), Some("/srv"));
        assert_eq!(m.target.as_deref(), Some("/data"));
        assert_eq!(m.read_only, Some(true));
        assert_eq!(
            m.bind_options.unwrap().propagation,
            Some(MountBindOptionsPropagationEnum::RSLAVE)
        );
        let m = parse_mount("src=v,target=/v,volume-nocopy,volume-opt=type=tmpfs,volume-label=a=b")
            .unwrap();
        assert_eq!(m.typ, Some(MountType::VOLUME));
        let vo = m.volume_options.unwrap();
        assert_eq!(vo.no_copy, Some(true));
        assert_eq!(vo.labels.unwrap()["a"], "b");
        assert_eq!(vo.driver_config.unwrap().options.unwrap()["type"], "tmpfs");
        let m = parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        let t = m.tmpfs_options.unwrap();
        assert_eq!((t.size_bytes, t.mode), (Some(1 << 20), Some(0o1770)));
        let m = parse_mount("\"type=bind\",\"src=/a,b\",dst=/x").unwrap();
        assert_eq!(m.source.as_deref(), Some("/a,b"));
        for (bad, want) in [
            ("type=bind,src=/a,dst=/b,foo=bar", "unexpected key 'foo'"),
            ("type=bind,src=/a", "target is required"),
            ("type=tmpfs,dst=/a,volume-nocopy", "cannot mix 'volume-*'"),
            ("type=nope,dst=/a", "invalid mount type"),
            ("type=bind,src=/a,dst=/b,ro=maybe", "invalid value for ro"),
        ] {
            let e = parse_mount(bad).unwrap_err();
            assert!(e.msg.contains(want), "{bad}: {}", e.msg);
            assert_eq!(e.code, 125);
        }
    }
}
