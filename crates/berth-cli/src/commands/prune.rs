//! Disk usage and pruning: `system df [-v]`, `image prune [-a]`, `container prune` and
//! `system prune [-a] [--volumes]`, with docker's prompts and output.

use std::io::{BufRead, Write};

use super::filters_query;
use crate::Failure;
use crate::cli::*;
use crate::client::{Client, with_query};
use crate::format::{Output, human_size, human_size_prec};
use serde_json::{Value, json};

/// docker's confirmation prompt; anything but `y`/`Y` (or end of input) declines.
fn confirm(warning: &str) -> bool {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = out.flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y")
}

fn filters_with(
    f: &[String],
    extra: Option<String>,
) -> Result<Vec<(&'static str, String)>, Failure> {
    let mut all = f.to_vec();
    all.extend(extra);
    Ok(filters_query(&all)?
        .map(|q| vec![("filters", q)])
        .unwrap_or_default())
}

fn size_of(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// Runs `POST /containers/prune`; returns the space reclaimed and docker's report.
fn prune_containers(c: &mut Client, filter: &[String]) -> Result<(u64, String), Failure> {
    let q = filters_with(filter, None)?;
    let r = c.post_json::<Value>(&with_query("/containers/prune", &q), None)?;
    let ids: Vec<&str> = r
        .get("ContainersDeleted")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = String::new();
    if !ids.is_empty() {
        out.push_str("Deleted Containers:\n");
        for id in ids {
            out.push_str(id);
            out.push('\n');
        }
    }
    Ok((size_of(&r, "SpaceReclaimed"), out))
}

/// Runs `POST /images/prune`; returns the space reclaimed and docker's report.
fn prune_images(c: &mut Client, all: bool, filter: &[String]) -> Result<(u64, String), Failure> {
    let dangling = format!("dangling={}", !all);
    let q = filters_with(filter, Some(dangling))?;
    let r = c.post_json::<Value>(&with_query("/images/prune", &q), None)?;
    let items = r
        .get("ImagesDeleted")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = String::new();
    if !items.is_empty() {
        out.push_str("Deleted Images:\n");
        for it in items {
            if let Some(u) = it.get("Untagged").and_then(Value::as_str) {
                out.push_str(&format!("untagged: {u}\n"));
            }
            if let Some(d) = it.get("Deleted").and_then(Value::as_str) {
                out.push_str(&format!("deleted: {d}\n"));
            }
        }
    }
    Ok((size_of(&r, "SpaceReclaimed"), out))
}

/// Runs `POST /volumes/prune` (anonymous volumes unless `all`), if the daemon has volumes.
fn prune_volumes(c: &mut Client, filter: &[String]) -> Result<(u64, String), Failure> {
    let q = filters_with(filter, None)?;
    let r = match c.post_json::<Value>(&with_query("/volumes/prune", &q), None) {
        Ok(r) => r,
        // A daemon without volume support has none to prune.
        Err(e) if e.status() == Some(404) => return Ok((0, String::new())),
        Err(e) => return Err(e.into()),
    };
    let names: Vec<&str> = r
        .get("VolumesDeleted")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = String::new();
    if !names.is_empty() {
        out.push_str("Deleted Volumes:\n");
        for n in names {
            out.push_str(n);
            out.push('\n');
        }
    }
    Ok((size_of(&r, "SpaceReclaimed"), out))
}

fn total(n: u64) -> String {
    format!("Total reclaimed space: {}", human_size_prec(n as f64, 4))
}

pub fn container_prune(c: &mut Client, a: PruneArgs) -> Result<i32, Failure> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let (n, out) = prune_containers(c, &a.filter)?;
    print!("{out}");
    if !out.is_empty() {
        println!();
    }
    println!("{}", total(n));
    Ok(0)
}

pub fn image_prune(c: &mut Client, a: ImagePruneArgs) -> Result<i32, Failure> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let (n, out) = prune_images(c, a.all, &a.filter)?;
    print!("{out}");
    if !out.is_empty() {
        println!();
    }
    println!("{}", total(n));
    Ok(0)
}

pub fn system_prune(c: &mut Client, a: SystemPruneArgs) -> Result<i32, Failure> {
    if !a.force {
        let mut w = String::from(
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
        );
        if a.volumes {
            w.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        if a.all {
            w.push_str("  - all images without at least one container associated to them\n  - all build cache\n");
        } else {
            w.push_str("  - all dangling images\n  - unused build cache\n");
        }
        if !confirm(&w) {
            return Ok(0);
        }
    }
    let mut reclaimed = 0;
    let (n, out) = prune_containers(c, &a.filter)?;
    reclaimed += n;
    if !out.is_empty() {
        println!("{out}");
    }
    if a.volumes {
        let (n, out) = prune_volumes(c, &a.filter)?;
        reclaimed += n;
        if !out.is_empty() {
            println!("{out}");
        }
    }
    let (n, out) = prune_images(c, a.all, &a.filter)?;
    reclaimed += n;
    if !out.is_empty() {
        println!("{out}");
    }
    println!("{}", total(reclaimed));
    Ok(0)
}

fn pct(part: u64, whole: u64) -> String {
    match (part * 100).checked_div(whole) {
        Some(p) => format!("{} ({p}%)", human_size_prec(part as f64, 4)),
        None => human_size_prec(part as f64, 4),
    }
}

fn arr<'a>(v: &'a Value, k: &str) -> Vec<&'a Value> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn active_state(c: &Value) -> bool {
    let st = c.get("State").and_then(Value::as_str).unwrap_or("");
    matches!(st, "running" | "paused" | "restarting")
}

/// The summary rows of `system df` (docker's disk usage context).
fn summary_rows(df: &Value) -> Vec<Value> {
    let images = arr(df, "Images");
    let layers = size_of(df, "LayersSize");
    let used: u64 = images
        .iter()
        .filter(|i| i.get("Containers").and_then(Value::as_i64).unwrap_or(0) > 0)
        .map(|i| {
            let size = i.get("Size").and_then(Value::as_i64).unwrap_or(0);
            let shared = i.get("SharedSize").and_then(Value::as_i64).unwrap_or(0);
            if size < 0 || shared < 0 {
                0
            } else {
                (size - shared) as u64
            }
        })
        .sum();
    let active_images = images
        .iter()
        .filter(|i| i.get("Containers").and_then(Value::as_i64).unwrap_or(0) > 0)
        .count();
    let ctrs = arr(df, "Containers");
    let ctr_size: u64 = ctrs.iter().map(|c| size_of(c, "SizeRw")).sum();
    let ctr_free: u64 = ctrs
        .iter()
        .filter(|c| !active_state(c))
        .map(|c| size_of(c, "SizeRw"))
        .sum();
    let vols = arr(df, "Volumes");
    let refs = |v: &Value| {
        v.pointer("/UsageData/RefCount")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let vsize = |v: &Value| {
        v.pointer("/UsageData/Size")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0) as u64
    };
    let vol_size: u64 = vols.iter().map(|v| vsize(v)).sum();
    let vol_free: u64 = vols.iter().filter(|v| refs(v) == 0).map(|v| vsize(v)).sum();
    let cache = arr(df, "BuildCache");
    let cache_size: u64 = cache
        .iter()
        .filter(|b| !b.get("Shared").and_then(Value::as_bool).unwrap_or(false))
        .map(|b| size_of(b, "Size"))
        .sum();
    let cache_free: u64 = cache
        .iter()
        .filter(|b| {
            !b.get("Shared").and_then(Value::as_bool).unwrap_or(false)
                && !b.get("InUse").and_then(Value::as_bool).unwrap_or(false)
        })
        .map(|b| size_of(b, "Size"))
        .sum();
    vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(),
               "Active": active_images.to_string(), "Size": human_size_prec(layers as f64, 4),
               "Reclaimable": pct(layers.saturating_sub(used), layers)}),
        json!({"Type": "Containers", "TotalCount": ctrs.len().to_string(),
               "Active": ctrs.iter().filter(|c| active_state(c)).count().to_string(),
               "Size": human_size_prec(ctr_size as f64, 4),
               "Reclaimable": pct(ctr_free, ctr_size)}),
        json!({"Type": "Local Volumes", "TotalCount": vols.len().to_string(),
               "Active": vols.iter().filter(|v| refs(v) > 0).count().to_string(),
               "Size": human_size_prec(vol_size as f64, 4),
               "Reclaimable": pct(vol_free, vol_size)}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(),
               "Active": cache.iter().filter(|b| b.get("InUse").and_then(Value::as_bool).unwrap_or(false)).count().to_string(),
               "Size": human_size_prec(cache_size as f64, 4),
               "Reclaimable": human_size_prec(cache_free as f64, 4)}),
    ]
}

const DF_TABLE: &str = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
const DF_IMAGES: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const DF_CONTAINERS: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const DF_VOLUMES: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";

pub fn df(c: &mut Client, a: DfArgs) -> Result<i32, Failure> {
    let df = c.get_json("/system/df")?;
    let format = a.format.as_deref().unwrap_or("");
    if !a.verbose {
        let out = Output::parse(format, DF_TABLE)?;
        let header = json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE",
                            "Size": "SIZE", "Reclaimable": "RECLAIMABLE"});
        return super::container::print_rows(&out, summary_rows(&df), &header);
    }
    if !format.is_empty() && format != "table" {
        // A template sees the whole disk usage document with docker's field names.
        let out = Output::parse(format, DF_TABLE)?;
        return super::container::print_rows(&out, vec![df], &json!({}));
    }
    let mut text = String::from("Images space usage:\n\n");
    let mut rows = Vec::new();
    for img in arr(&df, "Images") {
        rows.extend(super::image::rows(img, true));
    }
    text.push_str(&Output::parse(DF_IMAGES, DF_IMAGES)?.render(&rows, &super::image::header())?);
    text.push_str("\nContainers space usage:\n\n");
    let rows: Vec<Value> = arr(&df, "Containers")
        .into_iter()
        .map(|ctr| {
            let mut r = super::container::ps_row(ctr, true);
            r["Size"] = json!(human_size(size_of(ctr, "SizeRw") as f64));
            r
        })
        .collect();
    text.push_str(
        &Output::parse(DF_CONTAINERS, DF_CONTAINERS)?
            .render(&rows, &super::container::ps_header())?,
    );
    text.push_str("\nLocal Volumes space usage:\n\n");
    let rows: Vec<Value> = arr(&df, "Volumes")
        .into_iter()
        .map(|v| {
            json!({"Name": v.get("Name").cloned().unwrap_or(Value::Null),
                   "Links": v.pointer("/UsageData/RefCount").and_then(Value::as_i64).unwrap_or(0).to_string(),
                   "Size": human_size_prec(v.pointer("/UsageData/Size").and_then(Value::as_i64).unwrap_or(0).max(0) as f64, 4)})
        })
        .collect();
    text.push_str(&Output::parse(DF_VOLUMES, DF_VOLUMES)?.render(
        &rows,
        &json!({"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}),
    )?);
    let cache: u64 = arr(&df, "BuildCache")
        .iter()
        .map(|b| size_of(b, "Size"))
        .sum();
    text.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size_prec(cache as f64, 4)
    ));
    text.push_str(&crate::format::tabwrite(
        "CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED\n",
    ));
    print!("{text}");
    Ok(0)
}
