//! Image commands: images, tag, rmi, import.

use super::filters_query;
use crate::Failure;
use crate::cli::*;
use crate::client::{Client, enc, with_query};
use crate::format::{Output, ago, go_time, human_size, human_size_prec, short_id};
use serde_json::{Value, json};
use std::io::Read;

const IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGES_TABLE_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

pub(crate) fn header() -> Value {
    json!({"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
           "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
           "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
           "VirtualSize": "VIRTUAL SIZE"})
}

/// One row per `repo:tag` (docker's image context); untagged images show `<none>`.
pub(crate) fn rows(img: &Value, trunc: bool) -> Vec<Value> {
    let id = img.get("Id").and_then(Value::as_str).unwrap_or("");
    let id_shown = if trunc { short_id(id) } else { id.to_string() };
    let created = img.get("Created").and_then(Value::as_i64).unwrap_or(0);
    let size = img.get("Size").and_then(Value::as_f64).unwrap_or(0.0);
    let shared = img
        .get("SharedSize")
        .and_then(Value::as_f64)
        .unwrap_or(-1.0);
    let strs = |k: &str| -> Vec<String> {
        img.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let tags: Vec<String> = strs("RepoTags")
        .into_iter()
        .filter(|t| t != "<none>:<none>")
        .collect();
    let digests: Vec<String> = strs("RepoDigests")
        .into_iter()
        .filter(|d| d != "<none>@<none>")
        .collect();
    let mk = |repo: &str, tag: &str, digest: &str| {
        json!({
            "Repository": repo, "Tag": tag, "ID": id_shown, "Digest": digest,
            "CreatedSince": ago(created as f64), "CreatedAt": go_time(created),
            "Size": human_size(size),
            "Containers": match img.get("Containers").and_then(Value::as_i64) {
                Some(n) if n >= 0 => n.to_string(), _ => "N/A".to_string() },
            "SharedSize": if shared >= 0.0 { human_size_prec(shared, 4) } else { "N/A".into() },
            "UniqueSize": if shared >= 0.0 { human_size_prec(size - shared, 4) } else { "N/A".into() },
            "VirtualSize": human_size_prec(size, 4),
        })
    };
    let digest_for = |repo: &str| {
        digests
            .iter()
            .find_map(|d| {
                d.split_once('@')
                    .filter(|(r, _)| *r == repo)
                    .map(|(_, x)| x.to_string())
            })
            .unwrap_or_else(|| "<none>".into())
    };
    if tags.is_empty() {
        if digests.is_empty() {
            return vec![mk("<none>", "<none>", "<none>")];
        }
        return digests
            .iter()
            .map(|d| {
                let (r, x) = d.split_once('@').unwrap_or((d, ""));
                mk(r, "<none>", x)
            })
            .collect();
    }
    tags.iter()
        .map(|t| {
            let slash = t.rfind('/').map_or(0, |i| i + 1);
            let (repo, tag) = match t[slash..].rfind(':') {
                Some(i) => (&t[..slash + i], &t[slash + i + 1..]),
                None => (t.as_str(), "<none>"),
            };
            mk(repo, tag, &digest_for(repo))
        })
        .collect()
}

pub fn images(c: &mut Client, a: ImagesArgs) -> Result<i32, Failure> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let mut q = vec![];
    if a.all {
        q.push(("all", "1".to_string()));
    }
    if a.digests {
        q.push(("digests", "1".to_string()));
    }
    if let Some(f) = filters_query(&filters)? {
        q.push(("filters", f));
    }
    let list = c.get_json(&with_query("/images/json", &q))?;
    let mut all: Vec<Value> = Vec::new();
    for img in list.as_array().into_iter().flatten() {
        all.extend(rows(img, !a.no_trunc));
    }
    if a.quiet && a.format.is_none() {
        let mut seen = std::collections::HashSet::new();
        for r in &all {
            let id = r["ID"].as_str().unwrap_or("");
            if seen.insert(id.to_string()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    let default = if a.digests {
        IMAGES_TABLE_DIGESTS
    } else {
        IMAGES_TABLE
    };
    let out = Output::parse(a.format.as_deref().unwrap_or(""), default)?;
    super::container::print_rows(&out, all, &header())
}

fn split_ref(r: &str) -> (String, String) {
    let slash = r.rfind('/').map_or(0, |i| i + 1);
    match r[slash..].rfind(':') {
        Some(i) => (r[..slash + i].to_string(), r[slash + i + 1..].to_string()),
        None => (r.to_string(), "latest".to_string()),
    }
}

pub fn tag(c: &mut Client, a: TagArgs) -> Result<i32, Failure> {
    let (repo, tag) = split_ref(&a.target);
    c.post_json::<Value>(
        &with_query(
            &format!("/images/{}/tag", enc(&a.source)),
            &[("repo", repo), ("tag", tag)],
        ),
        None,
    )?;
    Ok(0)
}

pub fn rmi(c: &mut Client, a: RmiArgs) -> Result<i32, Failure> {
    let mut q = vec![];
    if a.force {
        q.push(("force", "1".to_string()));
    }
    if a.no_prune {
        q.push(("noprune", "1".to_string()));
    }
    let mut errs = Vec::new();
    for n in &a.images {
        match c.delete(&with_query(&format!("/images/{}", enc(n)), &q)) {
            Ok(v) => {
                for item in v.as_array().into_iter().flatten() {
                    if let Some(u) = item.get("Untagged").and_then(Value::as_str) {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = item.get("Deleted").and_then(Value::as_str) {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => errs.push(e.to_string()),
        }
    }
    if errs.is_empty() {
        Ok(0)
    } else {
        Err(Failure::new(1, errs.join("\n")))
    }
}

pub fn import(c: &mut Client, a: ImportArgs) -> Result<i32, Failure> {
    let mut q: Vec<(&str, String)> = vec![("fromSrc", "-".to_string())];
    if let Some(r) = &a.reference {
        let (repo, tag) = split_ref(r);
        q.push(("repo", repo));
        q.push(("tag", tag));
    }
    if let Some(m) = &a.message {
        q.push(("message", m.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    for ch in &a.change {
        q.push(("changes", ch.clone()));
    }
    let path = with_query("/images/create", &q);
    let mut src: Box<dyn Read> = if a.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&a.file)
                .map_err(|e| Failure::new(1, format!("open {}: {e}", a.file)))?,
        )
    };
    let mut r = c.request_stream("POST", &path, "application/x-tar", &mut src)?;
    let mut err = None;
    r.body.json_stream(|v| {
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            err = Some(e.to_string());
            return false;
        }
        if let Some(s) = v.get("status").and_then(Value::as_str) {
            println!("{s}");
        }
        true
    })?;
    match err {
        Some(e) => Err(Failure::new(1, e)),
        None => Ok(0),
    }
}

/// `berth image bootstrap`: asks berthd to make a base image from the host's packages and
/// shows its progress.
pub fn bootstrap(c: &mut Client, a: crate::cli::BootstrapArgs) -> Result<i32, Failure> {
    let (template, suite) = match a.template.split_once(':') {
        Some((t, s)) => (t.to_string(), Some(s.to_string())),
        None => (a.template.clone(), None),
    };
    if !matches!(template.as_str(), "busybox" | "debian")
        || (template == "busybox" && suite.is_some())
    {
        return Err(Failure::new(
            125,
            format!(
                "unknown template {:?}: choose busybox or debian[:SUITE]",
                a.template
            ),
        ));
    }
    let mut q: Vec<(&str, String)> = vec![("template", template)];
    if let Some(s) = suite {
        q.push(("suite", s));
    }
    if let Some(t) = &a.tag {
        q.push(("tag", t.clone()));
    }
    if let Some(m) = &a.mirror {
        q.push(("mirror", m.clone()));
    }
    let path = with_query("/berth/images/bootstrap", &q);
    let mut empty: &[u8] = &[];
    let mut r = c.request_stream("POST", &path, "application/json", &mut empty)?;
    let mut err = None;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut steps = 0usize;
    r.body.json_stream(|v| {
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            err = Some(e.to_string());
            return false;
        }
        if let Some(s) = v.get("status").and_then(Value::as_str) {
            steps += 1;
            if s.starts_with("Tagged ") || s.starts_with("bootstrapping ") || !tty {
                if tty {
                    eprint!("\r\x1b[2K");
                }
                println!("{s}");
            } else {
                // Debootstrap's many lines as one progress line.
                let line: String = s.chars().take(70).collect();
                eprint!("\r\x1b[2K[{steps:>4}] {line}");
            }
        }
        true
    })?;
    match err {
        Some(e) => Err(Failure::new(1, e)),
        None => Ok(0),
    }
}

const HISTORY_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

/// `berth history`: newest layer first, as docker shows it.
pub fn history(c: &mut Client, a: HistoryArgs) -> Result<i32, Failure> {
    let list = c.get_json(&format!("/images/{}/history", enc(&a.image)))?;
    let items: Vec<&Value> = list.as_array().into_iter().flatten().collect();
    if a.quiet && a.format.is_none() {
        for h in items {
            let id = h.get("Id").and_then(Value::as_str).unwrap_or("");
            println!(
                "{}",
                if a.no_trunc {
                    id.to_string()
                } else {
                    short_id(id)
                }
            );
        }
        return Ok(0);
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|h| {
            let id = h.get("Id").and_then(Value::as_str).unwrap_or("");
            let created = h.get("Created").and_then(Value::as_i64).unwrap_or(0);
            let size = h.get("Size").and_then(Value::as_f64).unwrap_or(0.0);
            let by = h
                .get("CreatedBy")
                .and_then(Value::as_str)
                .unwrap_or("")
                .replace('\t', " ");
            let by = if a.no_trunc {
                by
            } else {
                crate::format::ellipsis(&by, 45)
            };
            json!({
                "ID": if a.no_trunc || id == "<missing>" { id.to_string() } else { short_id(id) },
                "CreatedSince": if a.human { ago(created as f64) } else { go_time(created) },
                "CreatedAt": go_time(created),
                "CreatedBy": by,
                "Size": if a.human { human_size(size) } else { format!("{size}") },
                "Comment": h.get("Comment").and_then(Value::as_str).unwrap_or(""),
            })
        })
        .collect();
    let header = json!({"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                        "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"});
    let out = Output::parse(a.format.as_deref().unwrap_or(""), HISTORY_TABLE)?;
    super::container::print_rows(&out, rows, &header)
}
