//! `berth save` and `berth load`.

use std::io::{Read, Write};

use serde_json::Value;

use crate::Failure;
use crate::cli::{LoadArgs, SaveArgs};
use crate::client::{Client, enc, with_query};

/// `berth save [-o FILE] [--format docker|oci] IMAGE...`: the images as a tar archive.
pub fn save(c: &mut Client, a: SaveArgs) -> Result<i32, Failure> {
    use std::io::IsTerminal;
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Failure::new(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut q: Vec<(&str, String)> = a.images.iter().map(|i| ("names", i.clone())).collect();
    if let Some(f) = &a.format {
        if !matches!(f.as_str(), "docker" | "oci") {
            return Err(Failure::new(
                125,
                format!("unknown format {f:?}: use docker or oci"),
            ));
        }
        q.push(("format", f.clone()));
    }
    let path = if a.images.len() == 1 && a.format.is_none() {
        format!("/images/{}/get", enc(&a.images[0]))
    } else {
        with_query("/images/get", &q)
    };
    let mut r = c.request("GET", &path, None)?;
    let io_err = |what: &str, e: std::io::Error| Failure::new(1, format!("{what}: {e}"));
    match &a.output {
        Some(path) => {
            // Written next to the target and renamed, so a failed save leaves no file.
            let tmp = format!("{path}.berth-{}.tmp", std::process::id());
            let res = std::fs::File::create(&tmp)
                .map_err(|e| io_err(&format!("creating {tmp}"), e))
                .and_then(|mut f| {
                    copy(&mut r.body, &mut f).map_err(|e| io_err("reading the archive", e))?;
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
            copy(&mut r.body, &mut out).map_err(|e| io_err("reading the archive", e))?;
            out.flush().map_err(|e| io_err("writing the archive", e))?;
        }
    }
    Ok(0)
}

fn copy(r: &mut dyn Read, w: &mut dyn Write) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..got])?;
        n += got as u64;
    }
}

/// `berth load [-i FILE] [-q]`: images from a `docker save` or OCI layout archive.
pub fn load(c: &mut Client, a: LoadArgs) -> Result<i32, Failure> {
    use std::io::IsTerminal;
    let mut src: Box<dyn Read> = match &a.input {
        Some(p) => {
            Box::new(std::fs::File::open(p).map_err(|e| Failure::new(1, format!("open {p}: {e}")))?)
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(Failure::new(
                    1,
                    "requested load from stdin, but stdin is empty",
                ));
            }
            Box::new(std::io::stdin().lock())
        }
    };
    let path = if a.quiet {
        "/images/load?quiet=1"
    } else {
        "/images/load"
    };
    let mut r = c.request_stream("POST", path, "application/x-tar", &mut src)?;
    let mut err = None;
    r.body.json_stream(|v| {
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            err = Some(e.to_string());
            return false;
        }
        if let Some(s) = v.get("stream").and_then(Value::as_str) {
            print!("{s}");
        }
        true
    })?;
    match err {
        Some(e) => Err(Failure::new(1, e)),
        None => Ok(0),
    }
}
