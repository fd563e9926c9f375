//! Query parameters of the endpoints berthd serves, as Docker's clients send them.
//!
//! Docker's booleans arrive as `1`/`0`, `true`/`false` (any case) or an empty string, and
//! numbers as strings: the deserializers here accept all of those, and anything else is a
//! 400 naming the parameter (serde's message carries the field name).

use serde::{Deserialize, Deserializer};

/// Docker-style boolean: `1`, `true`, `True`, `yes` are true; `0`, `false`, `` are false.
pub fn de_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    parse_bool(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid boolean {s:?}")))
}

/// Like [`de_bool`] for a parameter whose absence means true (e.g. `stats?stream`).
pub fn de_bool_default_true<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    de_bool(d)
}

fn default_true() -> bool {
    true
}

/// Parses a Docker query boolean.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// An optional integer given as a string (empty means absent).
pub fn de_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("invalid integer {v:?}"))),
    }
}

/// Every `key=value` pair of a raw query string, in order and percent-decoded; for
/// parameters Docker repeats (`changes=…&changes=…`).
pub fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /containers/create`
#[derive(Debug, Default, Deserialize)]
pub struct ContainerCreate {
    pub name: Option<String>,
    pub platform: Option<String>,
}

/// `GET /containers/json`
#[derive(Debug, Default, Deserialize)]
pub struct ContainerList {
    #[serde(default, deserialize_with = "de_bool")]
    pub all: bool,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "de_bool")]
    pub size: bool,
    pub filters: Option<String>,
}

/// `GET /containers/{id}/json`
#[derive(Debug, Default, Deserialize)]
pub struct ContainerInspect {
    #[serde(default, deserialize_with = "de_bool")]
    pub size: bool,
}

/// `GET /containers/{id}/logs`
#[derive(Debug, Default, Deserialize)]
pub struct ContainerLogs {
    #[serde(default, deserialize_with = "de_bool")]
    pub follow: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pub stdout: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pub stderr: bool,
    /// Unix time, possibly fractional (`1700000000.5`), or 0.
    pub since: Option<String>,
    pub until: Option<String>,
    #[serde(default, deserialize_with = "de_bool")]
    pub timestamps: bool,
    /// A number of lines or `all`.
    pub tail: Option<String>,
    #[serde(default, deserialize_with = "de_bool")]
    pub details: bool,
}

/// `POST /containers/{id}/stop` and `/restart`
#[derive(Debug, Default, Deserialize)]
pub struct ContainerStop {
    pub signal: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub t: Option<i64>,
}

/// `POST /containers/{id}/kill`
#[derive(Debug, Default, Deserialize)]
pub struct ContainerKill {
    pub signal: Option<String>,
}

/// `POST /containers/{id}/wait`
#[derive(Debug, Default, Deserialize)]
pub struct ContainerWait {
    pub condition: Option<String>,
}

/// `DELETE /containers/{id}`
#[derive(Debug, Default, Deserialize)]
pub struct ContainerRemove {
    #[serde(default, deserialize_with = "de_bool")]
    pub v: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pub force: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pub link: bool,
}

/// `POST /containers/{id}/attach`
#[derive(Debug, Default, Deserialize)]
pub struct ContainerAttach {
    #[serde(rename = "detachKeys")]
    pub detach_keys: Option<String>,
    #[serde(default, deserialize_with = "de_bool")]
    pub logs: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pub stream: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pub stdin: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pub stdout: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pub stderr: bool,
}

/// `POST /containers/{id}/resize` and `/exec/{id}/resize`
#[derive(Debug, Default, Deserialize)]
pub struct Resize {
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub h: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub w: Option<i64>,
}

/// `POST /containers/{id}/rename`
#[derive(Debug, Default, Deserialize)]
pub struct ContainerRename {
    pub name: Option<String>,
}

/// `GET /containers/{id}/top`
#[derive(Debug, Default, Deserialize)]
pub struct ContainerTop {
    pub ps_args: Option<String>,
}

/// `GET /containers/{id}/stats`
#[derive(Debug, Deserialize)]
pub struct ContainerStats {
    #[serde(default = "default_true", deserialize_with = "de_bool_default_true")]
    pub stream: bool,
    #[serde(rename = "one-shot", default, deserialize_with = "de_bool")]
    pub one_shot: bool,
}

impl Default for ContainerStats {
    fn default() -> Self {
        ContainerStats {
            stream: true,
            one_shot: false,
        }
    }
}

/// `POST /containers/prune`, `/images/prune`, …
#[derive(Debug, Default, Deserialize)]
pub struct Prune {
    pub filters: Option<String>,
}

/// `GET /images/json`
#[derive(Debug, Default, Deserialize)]
pub struct ImageList {
    #[serde(default, deserialize_with = "de_bool")]
    pub all: bool,
    pub filters: Option<String>,
    #[serde(default, deserialize_with = "de_bool")]
    pub digests: bool,
    #[serde(rename = "shared-size", default, deserialize_with = "de_bool")]
    pub shared_size: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pub manifests: bool,
}

/// `POST /images/{name}/tag`
#[derive(Debug, Default, Deserialize)]
pub struct ImageTag {
    pub repo: Option<String>,
    pub tag: Option<String>,
}

/// `DELETE /images/{name}`
#[derive(Debug, Default, Deserialize)]
pub struct ImageRemove {
    #[serde(default, deserialize_with = "de_bool")]
    pub force: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pub noprune: bool,
}

/// `GET /events`
#[derive(Debug, Default, Deserialize)]
pub struct Events {
    pub since: Option<String>,
    pub until: Option<String>,
    pub filters: Option<String>,
}

/// `GET /containers/{id}/archive` etc. carry a `path`.
#[derive(Debug, Default, Deserialize)]
pub struct PathQuery {
    pub path: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_booleans() {
        for t in ["1", "true", "True", "TRUE"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["0", "false", ""] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn repeated_pairs_decode() {
        let p = pairs("changes=CMD%20%5B%22sh%22%5D&changes=ENV+A%3Db&repo=x");
        assert_eq!(p[0], ("changes".into(), "CMD [\"sh\"]".into()));
        assert_eq!(p[1], ("changes".into(), "ENV A=b".into()));
        assert_eq!(p[2], ("repo".into(), "x".into()));
        assert_eq!(pairs("a=%zz%4"), vec![("a".into(), "%zz%4".into())]);
    }
}
