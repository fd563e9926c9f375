//! Docker image references (`busybox`, `localhost:5000/a/b:tag`, `a/b@sha256:…`), parsed and
//! normalized exactly as Docker does (the grammar and normalization of distribution/reference,
//! which moby uses).
//!
//! Grammar:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ domain "/" ] path
//! domain           := host [ ":" port ]
//! host             := domain-name | "[" ipv6 "]"
//! domain-name      := domain-component ( "." domain-component )*
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9] [a-zA-Z0-9-]* [a-zA-Z0-9]
//! port             := [0-9]+
//! ipv6             := [a-fA-F0-9:]+
//! path             := path-component ( "/" path-component )*       (at most 255 characters)
//! path-component   := alnum ( separator alnum )*
//! alnum            := [a-z0-9]+
//! separator        := "." | "_" | "__" | "-"+
//! tag              := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest           := algorithm ":" hex                            (validated by [`Digest`])
//! ```
//!
//! Normalization, for what a user types:
//! - the first `/`-separated component is a domain only if it is `localhost`, contains `.` or
//!   `:`, or has an upper-case letter; otherwise the domain is `docker.io`;
//! - `index.docker.io` is written `docker.io`;
//! - a one-component path on `docker.io` gets `library/` (`busybox` → `docker.io/library/busybox`);
//! - the path must be lower-case, and a bare 64-hex string is refused (it would be an image id);
//! - [`Reference::parse`] adds the tag `latest` when there is neither a tag nor a digest.
//!
//! The familiar form ([`Reference::familiar`]) undoes the first three for display:
//! `docker.io/library/busybox:latest` → `busybox:latest`.
//!
//! One corner is kept as Docker has it: a first component that contains `.` or `:` but is not a
//! valid host (`foo_bar.com/x`) is then read as part of the path, and the reference has no
//! domain at all.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError, is_lower_hex};

/// Docker Hub's domain, the default.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's legacy domain, rewritten to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag used when a reference names none.
pub const DEFAULT_TAG: &str = "latest";
/// The longest path (repository name without domain) Docker accepts.
pub const PATH_MAX_LEN: usize = 255;

/// Why a string is not a valid image reference. Each message says which part is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The input is empty.
    #[error("invalid reference format: repository name must have at least one component")]
    Empty,
    /// The input does not follow the grammar; holds the input.
    #[error("invalid reference format: {0}")]
    Format(String),
    /// The repository name has upper-case letters; holds the name.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    /// The path is longer than [`PATH_MAX_LEN`]; holds its length.
    #[error(
        "invalid reference format: repository name must not be more than 255 characters ({0} given)"
    )]
    NameTooLong(usize),
    /// The tag does not follow the grammar; holds the tag.
    #[error(
        "invalid reference format: tag ({0}) must be 1 to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'"
    )]
    Tag(String),
    /// The digest part is not a valid digest.
    #[error("invalid reference format: {0}")]
    Digest(#[from] DigestError),
    /// The input is a 64-hex string, which names an image id, not a repository.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
}

/// A parsed, normalized image reference.
///
/// `Display` writes the full normalized form (`docker.io/library/busybox:latest`); serde uses
/// that string too, and deserializes with [`Reference::parse_normalized`] (no default tag), so
/// a value round-trips unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// What a user may pass where Docker accepts "an image": an id or a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyReference {
    /// A bare 64-hex id (read as sha256) or a full `algorithm:hex` digest.
    Id(Digest),
    /// A name, normalized, without a default tag.
    Named(Reference),
}

/// Parses an image id or a reference, as Docker's `ParseAnyReference` does: a 64-hex string
/// is a sha256 id, a valid digest is an id, anything else must be a reference.
pub fn parse_any(s: &str) -> Result<AnyReference, ReferenceError> {
    if s.len() == 64 && is_lower_hex(s) {
        return Ok(AnyReference::Id(Digest::parse(&format!("sha256:{s}"))?));
    }
    if let Ok(d) = Digest::parse(s) {
        return Ok(AnyReference::Id(d));
    }
    Reference::parse_normalized(s).map(AnyReference::Named)
}

impl Reference {
    /// Parses and normalizes what a user typed, adding the tag `latest` when the reference has
    /// neither tag nor digest: `busybox` → `docker.io/library/busybox:latest`. Docker's
    /// `ParseNormalizedNamed` followed by `TagNameOnly`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_normalized(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalizes without adding a default tag (Docker's `ParseNormalizedNamed`):
    /// for filters and `--all-tags`, where `busybox` means the whole repository.
    pub fn parse_normalized(s: &str) -> Result<Self, ReferenceError> {
        if s.len() == 64 && is_lower_hex(s) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::Uppercase(remote.to_string()));
        }
        // Errors about the whole input quote what the user typed, not the expanded form.
        parse_full(&format!("{domain}/{remainder}")).map_err(|e| match e {
            ReferenceError::Format(_) => ReferenceError::Format(s.to_string()),
            e => e,
        })
    }

    /// The registry's domain (`docker.io`, `localhost:5000`); empty only in the corner case
    /// described in the module documentation.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The full repository name, `domain/path` (`docker.io/library/busybox`).
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Whether the reference has neither tag nor digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The same repository with `tag` (replacing any tag; a digest is kept).
    pub fn with_tag(mut self, tag: &str) -> Result<Self, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::Tag(tag.to_string()));
        }
        self.tag = Some(tag.to_string());
        Ok(self)
    }

    /// The same repository with `digest` (replacing any digest; a tag is kept).
    pub fn with_digest(mut self, digest: Digest) -> Self {
        self.digest = Some(digest);
        self
    }

    /// The repository alone, without tag or digest.
    pub fn trim(&self) -> Self {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// The form Docker stores and pulls by (`ParseDockerRef`): a reference with both tag and
    /// digest loses its tag, since the digest alone decides the content; a name alone gets
    /// `latest`.
    pub fn docker_ref(&self) -> Self {
        let mut r = self.clone();
        if r.digest.is_some() {
            r.tag = None;
        } else if r.tag.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        r
    }

    /// The repository name as Docker shows it: without `docker.io/`, and without `library/`
    /// for official images (`docker.io/library/busybox` → `busybox`).
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The reference as Docker shows it: the familiar name with tag and digest
    /// (`busybox:latest`, `localhost:5000/a/b@sha256:…`).
    ///
    /// For display only: as in Docker, it does not always parse back to the same reference
    /// (`docker.io/a.b/c` is shown as `a.b/c`, which names the registry `a.b`). Store and
    /// compare the full form ([`Display`](fmt::Display)).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    /// Same as [`Reference::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Reference::parse_normalized(&s).map_err(serde::de::Error::custom)
    }
}

/// Splits what a user typed into a domain and the rest, applying Docker's defaults.
fn split_docker_domain(s: &str) -> (&str, String) {
    let Some((maybe_domain, maybe_remote)) = s.split_once('/') else {
        // A single component ("busybox", "busybox:1.36") is always an official image, even if
        // it looks like a host.
        return (DEFAULT_DOMAIN, format!("{OFFICIAL_REPO_PREFIX}{s}"));
    };
    let (domain, remote) = if maybe_domain == "localhost"
        || maybe_domain.contains(['.', ':'])
        || maybe_domain.to_lowercase() != maybe_domain
    {
        if maybe_domain == LEGACY_DEFAULT_DOMAIN {
            (DEFAULT_DOMAIN, maybe_remote)
        } else {
            (maybe_domain, maybe_remote)
        }
    } else {
        (DEFAULT_DOMAIN, s)
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        (domain, format!("{OFFICIAL_REPO_PREFIX}{remote}"))
    } else {
        (domain, remote.to_string())
    }
}

/// Parses a complete reference (distribution/reference's `Parse`), with no defaults applied.
fn parse_full(s: &str) -> Result<Reference, ReferenceError> {
    if s.is_empty() {
        return Err(ReferenceError::Empty);
    }
    match split_reference(s) {
        Ok(parts) => parts.build(),
        Err(e) => {
            // Like Parse: if lower-casing the input would make it valid, the problem is case.
            let lower = s.to_lowercase();
            if lower != s && split_reference(&lower).is_ok() {
                let name = s.split(['@']).next().unwrap_or(s);
                let name = strip_tag(name);
                Err(ReferenceError::Uppercase(name.to_string()))
            } else {
                Err(e)
            }
        }
    }
}

/// The syntactically valid parts of a reference.
struct Parts<'a> {
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

impl Parts<'_> {
    fn build(self) -> Result<Reference, ReferenceError> {
        if self.path.len() > PATH_MAX_LEN {
            return Err(ReferenceError::NameTooLong(self.path.len()));
        }
        let digest = self.digest.map(Digest::parse).transpose()?;
        Ok(Reference {
            domain: self.domain.to_string(),
            path: self.path.to_string(),
            tag: self.tag.map(str::to_string),
            digest,
        })
    }
}

/// The name part of `name[:tag]` (the tag's colon is the first one after the last `/`).
fn strip_tag(s: &str) -> &str {
    let last = s.rfind('/').map_or(0, |i| i + 1);
    match s[last..].find(':') {
        Some(i) => &s[..last + i],
        None => s,
    }
}

/// Checks `s` against the reference grammar and splits it; errors name the failing part.
fn split_reference(s: &str) -> Result<Parts<'_>, ReferenceError> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, d)) => (rest, Some(d)),
        None => (s, None),
    };
    let name = strip_tag(rest);
    let tag = (name.len() < rest.len()).then(|| &rest[name.len() + 1..]);
    let (domain, path) = split_name(name).ok_or_else(|| ReferenceError::Format(s.to_string()))?;
    if let Some(t) = tag
        && !is_tag(t)
    {
        return Err(ReferenceError::Tag(t.to_string()));
    }
    if let Some(d) = digest
        && !is_reference_digest(d)
    {
        return Err(match Digest::parse(d) {
            Err(e) => ReferenceError::Digest(e),
            Ok(_) => ReferenceError::Format(s.to_string()),
        });
    }
    Ok(Parts {
        domain,
        path,
        tag,
        digest,
    })
}

/// Splits `[domain/]path`: the first component is the domain when it is a valid host and the
/// rest a valid path; otherwise the whole name must be a path.
fn split_name(name: &str) -> Option<(&str, &str)> {
    if let Some((first, rest)) = name.split_once('/')
        && is_domain(first)
        && is_path(rest)
    {
        return Some((first, rest));
    }
    is_path(name).then_some(("", name))
}

/// `host [":" port]`.
fn is_domain(s: &str) -> bool {
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(i) => (&s[..=i], &s[i + 1..]),
            None => return false,
        }
    } else {
        match s.find(':') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        }
    };
    let port_ok = port.is_empty()
        || (port.len() > 1
            && port.starts_with(':')
            && port[1..].bytes().all(|b| b.is_ascii_digit()));
    port_ok && is_host(host)
}

fn is_host(s: &str) -> bool {
    if let Some(inner) = s.strip_prefix('[') {
        return inner.strip_suffix(']').is_some_and(|v6| {
            !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
        });
    }
    !s.is_empty()
        && s.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        })
}

fn is_path(s: &str) -> bool {
    !s.is_empty() && s.split('/').all(is_path_component)
}

/// `[a-z0-9]+ ( ("." | "_" | "__" | "-"+) [a-z0-9]+ )*`.
fn is_path_component(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = s.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run, between two alphanumerics (guaranteed by the checks above and below).
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// The reference grammar's digest: `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*` `:`
/// and at least 32 hex digits (either case). [`Digest::parse`] then applies the real rules.
fn is_reference_digest(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|c| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|x| x.is_ascii_alphanumeric())
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests;
