//! `docker import --change` / `docker commit --change`: Dockerfile instructions applied to an
//! image's container config.
//!
//! Supported: `CMD`, `ENTRYPOINT`, `ENV`, `WORKDIR`, `USER`, `LABEL`, `EXPOSE`, `VOLUME`,
//! `STOPSIGNAL`, `HEALTHCHECK`, `ONBUILD`, parsed as Docker's Dockerfile parser and builder do:
//!
//! - `CMD`, `ENTRYPOINT`, `VOLUME` take a JSON array (exec form) or, otherwise, text: shell
//!   form (`["/bin/sh", "-c", text]`) for `CMD`/`ENTRYPOINT`, whitespace-separated paths for
//!   `VOLUME`. An `ENTRYPOINT` resets an inherited `CMD` unless a `CMD` was given before it.
//! - `ENV` and `LABEL` take `key=value …` pairs (quotes and backslash escapes as in a shell) or
//!   the legacy `key value with spaces` form.
//! - `ENV`, `LABEL`, `WORKDIR`, `USER`, `EXPOSE`, `VOLUME`, `STOPSIGNAL` expand `$VAR` and
//!   `${VAR}` from the config's environment (after the earlier changes); `\$` is a literal `$`.
//! - `HEALTHCHECK [--interval=D --timeout=D --start-period=D --start-interval=D --retries=N]
//!   CMD …` (exec form → `["CMD", …]`, shell form → `["CMD-SHELL", text]`) or `HEALTHCHECK
//!   NONE`, stored as the config's `Healthcheck`; `ONBUILD <instruction>` is appended to
//!   `OnBuild` as written (only `ONBUILD`, `FROM` and `MAINTAINER` are refused there).
//! - `WORKDIR` relative to the current working directory; `EXPOSE 80 8000-8001/udp` becomes
//!   `80/tcp`, `8000/udp`, `8001/udp`; `STOPSIGNAL` must name a signal (`SIGTERM`, `TERM`, `15`).
//!
//! Each change is one instruction (several may be given in one string, one per line). Anything
//! else is refused with an error naming the instruction.

use crate::error::{Error, Result};
use crate::model::ContainerConfig;

/// The instructions `--change` accepts.
pub const ALLOWED: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Applies `changes`, in order, to `config`. On error `config` may be partly changed; callers
/// apply to a copy.
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    let mut cmd_set = false;
    for change in changes {
        for line in change.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            apply_one(config, line, &mut cmd_set)?;
        }
    }
    Ok(())
}

fn invalid(line: &str, why: impl std::fmt::Display) -> Error {
    Error::InvalidParameter(format!("invalid change {line:?}: {why}"))
}

fn apply_one(config: &mut ContainerConfig, line: &str, cmd_set: &mut bool) -> Result<()> {
    let (word, rest) = match line.split_once(|c: char| c.is_whitespace()) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let instr = word.to_ascii_uppercase();
    if !ALLOWED.contains(&instr.as_str()) {
        return Err(invalid(
            line,
            format!(
                "{instr} is not a supported instruction (supported: {})",
                ALLOWED.join(", ")
            ),
        ));
    }
    if rest.is_empty() && !matches!(instr.as_str(), "CMD" | "ENTRYPOINT") {
        return Err(invalid(
            line,
            format!("{instr} requires at least one argument"),
        ));
    }
    let env = config.env.clone();
    match instr.as_str() {
        "CMD" => {
            config.cmd = Some(command(line, rest)?);
            *cmd_set = true;
        }
        "ENTRYPOINT" => {
            config.entrypoint = Some(command(line, rest)?);
            if !*cmd_set {
                config.cmd = None;
            }
        }
        "ENV" => {
            for (k, v) in name_values(line, rest, &env)? {
                let prefix = format!("{k}=");
                let entry = format!("{k}={v}");
                match config.env.iter_mut().find(|e| e.starts_with(&prefix)) {
                    Some(e) => *e = entry,
                    None => config.env.push(entry),
                }
            }
        }
        "LABEL" => {
            for (k, v) in name_values(line, rest, &env)? {
                config.labels.insert(k, v);
            }
        }
        "WORKDIR" => {
            let dir = process_word(rest, Some(&env)).map_err(|e| invalid(line, e))?;
            let base = config.working_dir.as_deref().unwrap_or("/");
            let joined = if dir.starts_with('/') {
                dir
            } else {
                format!("{base}/{dir}")
            };
            config.working_dir = Some(clean_path(&joined));
        }
        "USER" => {
            let user = process_word(rest, Some(&env)).map_err(|e| invalid(line, e))?;
            config.user = Some(user);
        }
        "EXPOSE" => {
            for w in split_words(rest) {
                let spec = process_word(&w, Some(&env)).map_err(|e| invalid(line, e))?;
                for p in ports(&spec).map_err(|e| invalid(line, e))? {
                    config
                        .exposed_ports
                        .insert(p, serde_json::Value::Object(Default::default()));
                }
            }
        }
        "VOLUME" => {
            let paths = match json_array(rest) {
                Some(v) => v,
                None => split_words(rest),
            };
            for p in paths {
                let p = process_word(&p, Some(&env)).map_err(|e| invalid(line, e))?;
                if p.trim().is_empty() {
                    return Err(invalid(line, "VOLUME specified can not be an empty string"));
                }
                config
                    .volumes
                    .insert(p, serde_json::Value::Object(Default::default()));
            }
        }
        "STOPSIGNAL" => {
            let sig = process_word(rest, Some(&env)).map_err(|e| invalid(line, e))?;
            if !is_signal(&sig) {
                return Err(invalid(line, format!("invalid signal: {sig}")));
            }
            config.stop_signal = Some(sig);
        }
        "HEALTHCHECK" => {
            let h = healthcheck(line, rest)?;
            config.extra.insert("Healthcheck".into(), h);
        }
        "ONBUILD" => {
            let inner = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            if matches!(inner.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(invalid(
                    line,
                    format!("{inner} isn't allowed as an ONBUILD trigger"),
                ));
            }
            let list = config
                .extra
                .entry("OnBuild")
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if !list.is_array() {
                *list = serde_json::Value::Array(Vec::new());
            }
            if let Some(a) = list.as_array_mut() {
                a.push(serde_json::Value::String(rest.to_string()));
            }
        }
        _ => return Err(invalid(line, "unsupported instruction")),
    }
    Ok(())
}

/// `HEALTHCHECK`'s flags and command as the image config's `Healthcheck` object.
fn healthcheck(line: &str, rest: &str) -> Result<serde_json::Value> {
    let mut rest = rest.trim_start();
    let mut h = serde_json::Map::new();
    while let Some(opt) = rest.strip_prefix("--") {
        let end = opt.find(char::is_whitespace).unwrap_or(opt.len());
        let (flag, value) = opt[..end]
            .split_once('=')
            .ok_or_else(|| invalid(line, format!("flag --{} needs a value", &opt[..end])))?;
        let key = match flag {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => "Retries",
            other => return Err(invalid(line, format!("unknown flag: --{other}"))),
        };
        let v: i64 = if key == "Retries" {
            value
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| invalid(line, "--retries must be at least 1"))?
        } else {
            let ns = berth_types::time::parse_go_duration(value)
                .ok_or_else(|| invalid(line, format!("--{flag}: invalid duration {value:?}")))?;
            if ns != 0 && ns < 1_000_000 {
                return Err(invalid(line, format!("--{flag} cannot be less than 1ms")));
            }
            ns
        };
        h.insert(key.into(), v.into());
        rest = opt[end..].trim_start();
    }
    let (kind, args) = match rest.split_once(char::is_whitespace) {
        Some((k, a)) => (k.to_ascii_uppercase(), a.trim()),
        None => (rest.to_ascii_uppercase(), ""),
    };
    let test: Vec<String> = match kind.as_str() {
        "NONE" if args.is_empty() && h.is_empty() => vec!["NONE".into()],
        "NONE" => {
            return Err(invalid(
                line,
                "HEALTHCHECK NONE takes no arguments or flags",
            ));
        }
        "CMD" if args.is_empty() => return Err(invalid(line, "missing command after CMD")),
        "CMD" => match json_array(args) {
            Some(v) if !v.is_empty() => std::iter::once("CMD".to_string()).chain(v).collect(),
            _ => vec!["CMD-SHELL".into(), args.to_string()],
        },
        other => {
            return Err(invalid(
                line,
                format!("unknown type {other:?} in HEALTHCHECK (try CMD)"),
            ));
        }
    };
    h.insert("Test".into(), test.into());
    Ok(serde_json::Value::Object(h))
}

/// Exec form (a JSON array of strings) or shell form.
fn command(line: &str, rest: &str) -> Result<Vec<String>> {
    // Docker falls back to shell form when the JSON does not parse.
    if let Some(v) = json_array(rest) {
        return Ok(v);
    }
    if rest.is_empty() {
        return Err(invalid(line, "needs a command"));
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// `k=v k2="v 2"` or legacy `k value…`, with quotes removed and variables expanded.
fn name_values(line: &str, rest: &str, env: &[String]) -> Result<Vec<(String, String)>> {
    let words = split_words(rest);
    let first = words.first().map(String::as_str).unwrap_or_default();
    if !first.contains('=') {
        // Legacy form: one key, the rest of the line its value.
        let (k, v) = match rest.split_once(|c: char| c.is_whitespace()) {
            Some((k, v)) => (k, v.trim()),
            None => return Err(invalid(line, format!("{first} must have two arguments"))),
        };
        let v = process_word(v, Some(env)).map_err(|e| invalid(line, e))?;
        return Ok(vec![(k.to_string(), v)]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(invalid(line, format!("{w:?} is not of the form key=value")));
        };
        let k = process_word(k, Some(env)).map_err(|e| invalid(line, e))?;
        if k.is_empty() {
            return Err(invalid(line, "a key is empty"));
        }
        let v = process_word(v, Some(env)).map_err(|e| invalid(line, e))?;
        out.push((k, v));
    }
    Ok(out)
}

/// Splits at whitespace outside quotes, keeping quotes and escapes for [`process_word`].
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (q, '\\') if q != Some('\'') => {
                cur.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Removes quotes and escapes and expands `$VAR` / `${VAR}` from `env` (unset: empty), as
/// Docker's shell lexer does for one word.
fn process_word(s: &str, env: Option<&[String]>) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'') | (None, '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => out.push(c),
            (_, '\\') => match chars.next() {
                Some(n) => {
                    // Inside double quotes only \" \\ \$ are escapes, as in a shell.
                    if quote == Some('"') && !matches!(n, '"' | '\\' | '$') {
                        out.push('\\');
                    }
                    out.push(n);
                }
                None => out.push('\\'),
            },
            (_, '$') if env.is_some() => {
                let name = if chars.peek() == Some(&'{') {
                    chars.next();
                    let mut n = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) => n.push(ch),
                            None => return Err(format!("missing '}}' in {s:?}")),
                        }
                    }
                    n
                } else {
                    let mut n = String::new();
                    while let Some(&ch) = chars.peek() {
                        if ch.is_ascii_alphanumeric() || ch == '_' {
                            n.push(ch);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    if n.is_empty() {
                        out.push('$');
                        continue;
                    }
                    n
                };
                let prefix = format!("{name}=");
                if let Some(v) = env
                    .unwrap_or_default()
                    .iter()
                    .rev()
                    .find_map(|e| e.strip_prefix(&prefix))
                {
                    out.push_str(v);
                }
            }
            (_, c) => out.push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote in {s:?}"));
    }
    Ok(out)
}

/// `80`, `80/tcp`, `8000-8010/udp` → `["80/tcp"]`, … (as Docker's `nat.ParsePortSpecs`).
fn ports(spec: &str) -> std::result::Result<Vec<String>, String> {
    let (range, proto) = match spec.split_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let port = |s: &str| -> std::result::Result<u16, String> {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("invalid containerPort: {s}"))
    };
    let (lo, hi) = match range.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(range)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(format!("invalid port range: {range}"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// Lexically cleans an absolute path (`/a/./b/../c/` → `/a/c`), as Go's `filepath.Clean`.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "UNUSED", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// Whether `s` names a signal: a number 1–64, a name with or without `SIG`, or `RTMIN+n`.
fn is_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if SIGNALS.contains(&name) {
        return true;
    }
    for base in ["RTMIN", "RTMAX"] {
        if let Some(rest) = name.strip_prefix(base) {
            let off = rest.trim_start_matches(['+', '-']);
            if rest.is_empty() || off.parse::<u32>().is_ok_and(|n| n <= 30) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(changes: &[&str]) -> Result<ContainerConfig> {
        let mut c = ContainerConfig {
            env: vec!["PATH=/usr/bin:/bin".into()],
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        apply_changes(
            &mut c,
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(c)
    }

    #[test]
    fn healthcheck_and_onbuild() {
        let c = run(&["HEALTHCHECK --interval=2s --retries=4 CMD wget -q localhost || exit 1"])
            .unwrap();
        assert_eq!(
            c.extra["Healthcheck"],
            serde_json::json!({"Interval": 2_000_000_000i64, "Retries": 4,
                "Test": ["CMD-SHELL", "wget -q localhost || exit 1"]})
        );
        let c = run(&[r#"healthcheck --timeout=1m30s cmd ["/bin/true", "x"]"#]).unwrap();
        assert_eq!(
            c.extra["Healthcheck"],
            serde_json::json!({"Timeout": 90_000_000_000i64, "Test": ["CMD", "/bin/true", "x"]})
        );
        let c = run(&["HEALTHCHECK NONE"]).unwrap();
        assert_eq!(
            c.extra["Healthcheck"],
            serde_json::json!({"Test": ["NONE"]})
        );
        let c = run(&["ONBUILD RUN echo hi", "ONBUILD ENV X=1"]).unwrap();
        assert_eq!(
            c.extra["OnBuild"],
            serde_json::json!(["RUN echo hi", "ENV X=1"])
        );
        for (bad, why) in [
            ("HEALTHCHECK --interval=5x CMD true", "invalid duration"),
            ("HEALTHCHECK --interval=1ns CMD true", "less than 1ms"),
            ("HEALTHCHECK --retries=0 CMD true", "at least 1"),
            ("HEALTHCHECK --bogus=1 CMD true", "unknown flag"),
            ("HEALTHCHECK --interval CMD true", "needs a value"),
            ("HEALTHCHECK CMD", "missing command"),
            ("HEALTHCHECK RUN true", "unknown type"),
            ("HEALTHCHECK --interval=1s NONE", "no arguments"),
            ("ONBUILD ONBUILD RUN x", "isn't allowed"),
            ("ONBUILD FROM busybox", "isn't allowed"),
        ] {
            let e = run(&[bad]).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn cmd_and_entrypoint_forms() {
        let c = run(&[r#"CMD ["echo", "hi there"]"#]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["echo", "hi there"]);
        let c = run(&["cmd echo $HOME"]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "echo $HOME"]);
        // A bad JSON array is shell form, as in Docker.
        let c = run(&["CMD [oops"]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "[oops"]);
        // ENTRYPOINT resets the inherited CMD, but not one set by an earlier change.
        let c = run(&[r#"ENTRYPOINT ["/bin/top"]"#]).unwrap();
        assert_eq!(
            (c.entrypoint.unwrap(), c.cmd),
            (vec!["/bin/top".into()], None)
        );
        let c = run(&["CMD -b", "ENTRYPOINT top"]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "-b"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "top"]);
    }

    #[test]
    fn env_and_label_forms_with_quotes_and_expansion() {
        let c = run(&[
            "ENV A=1",
            // Expansion uses the environment from before the instruction, as in Docker.
            r#"ENV A=2 B="two words" C='$A literal' D=$A${A}x"#,
            "ENV PATH=$PATH:/opt/bin",
            "ENV LEGACY value with  spaces",
            "ENV A=replaced",
            r#"LABEL "com.example.x"="y z" v=$A"#,
            "LABEL legacy some value",
        ])
        .unwrap();
        assert_eq!(
            c.env,
            [
                "PATH=/usr/bin:/bin:/opt/bin",
                "A=replaced",
                "B=two words",
                "C=$A literal",
                "D=11x",
                "LEGACY=value with  spaces",
            ]
        );
        assert_eq!(c.labels["com.example.x"], "y z");
        assert_eq!(c.labels["v"], "replaced");
        assert_eq!(c.labels["legacy"], "some value");
    }

    #[test]
    fn workdir_user_expose_volume_stopsignal() {
        let c = run(&[
            "WORKDIR /app",
            "WORKDIR sub/../data/",
            "USER 1000:1000",
            "EXPOSE 80 53/UDP 8000-8002/tcp",
            r#"VOLUME ["/data", "/logs"]"#,
            "VOLUME /cache /tmp/x",
            "STOPSIGNAL SIGQUIT",
        ])
        .unwrap();
        assert_eq!(c.working_dir.as_deref(), Some("/app/data"));
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        let ports: Vec<_> = c.exposed_ports.keys().cloned().collect();
        assert_eq!(
            ports,
            ["53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp"]
        );
        let vols: Vec<_> = c.volumes.keys().cloned().collect();
        assert_eq!(vols, ["/cache", "/data", "/logs", "/tmp/x"]);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        for ok in ["9", "TERM", "sigusr1", "SIGRTMIN+3"] {
            run(&[&format!("STOPSIGNAL {ok}")]).unwrap();
        }
    }

    #[test]
    fn bad_changes_are_refused_naming_what_is_wrong() {
        let cases = [
            ("RUN echo hi", "RUN is not a supported instruction"),
            ("FROM busybox", "FROM is not a supported instruction"),
            ("EXPOSE 80/foo", "invalid proto: foo"),
            ("EXPOSE 0", "invalid containerPort: 0"),
            ("EXPOSE 90-80", "invalid port range: 90-80"),
            ("STOPSIGNAL SIGNOPE", "invalid signal: SIGNOPE"),
            ("ENV A=1 B", "\"B\" is not of the form key=value"),
            ("ENV ONLYKEY", "ONLYKEY must have two arguments"),
            ("ENV A=\"unterminated", "unterminated \" quote"),
            ("WORKDIR", "WORKDIR requires at least one argument"),
            ("VOLUME [\"\"]", "can not be an empty string"),
        ];
        for (change, want) in cases {
            let e = run(&[change]).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("invalid change {change:?}: ")),
                "{msg}"
            );
            assert!(msg.contains(want), "{change}: {msg}");
        }
    }
}
