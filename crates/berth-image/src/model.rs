//! The image model: OCI image config, manifest and index, with Docker's schema2 media types
//! accepted alongside OCI's.
//!
//! Small serde structs rather than a full OCI crate: every struct keeps the fields it does not
//! model in `extra`, so a config or manifest written by someone else round-trips unchanged
//! (Docker configs carry `container_config`, `docker_version`, `Healthcheck`, `OnBuild`, …).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_store::Platform;
use berth_types::{Algorithm, Digest};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// OCI image manifest.
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer, plain tar.
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip.
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd.
pub const MEDIA_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker schema2 manifest.
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer, gzip.
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker foreign (non-distributable) layer, gzip.
pub const MEDIA_DOCKER_FOREIGN_LAYER: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker schema1 (signed) manifest: refused, as current Docker does.
pub const MEDIA_DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Whether `media_type` names a layer berth can apply (plain, gzip or zstd tar; OCI or Docker).
pub fn is_layer_media_type(media_type: &str) -> bool {
    matches!(
        media_type,
        MEDIA_OCI_LAYER
            | MEDIA_OCI_LAYER_GZIP
            | MEDIA_OCI_LAYER_ZSTD
            | MEDIA_DOCKER_LAYER_GZIP
            | MEDIA_DOCKER_FOREIGN_LAYER
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
    )
}

type Extra = serde_json::Map<String, serde_json::Value>;

/// Docker writes `null` for empty lists and maps (`"Env": null`, `"Labels": null`).
fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An image config (`application/vnd.oci.image.config.v1+json` or Docker's equivalent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// When the image was created, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// CPU architecture, Go-style (`amd64`).
    pub architecture: String,
    /// Architecture variant (`v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Operating system (`linux`).
    pub os: String,
    /// The defaults for containers run from the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    /// The layers, by uncompressed digest.
    pub rootfs: RootFs,
    /// How each layer was made.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<History>,
    /// Fields not modelled here, kept as they were.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ImageConfig {
    /// The platform the config declares.
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }
}

/// The container defaults of an image config (`config` in the JSON; Docker's `Config` of
/// `docker image inspect`). Field names are Docker's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `user`, `user:group`, `uid:gid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `port/proto` → `{}`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    /// `KEY=value` entries.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    /// The entrypoint, exec form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// The default command, exec form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Volume paths → `{}`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub volumes: BTreeMap<String, serde_json::Value>,
    /// The working directory, absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Labels.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// The signal that stops the container (`SIGTERM`, `15`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Fields not modelled here (`Healthcheck`, `OnBuild`, `Shell`, `ArgsEscaped`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub typ: String,
    /// The uncompressed digests of the layers, bottom first.
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            typ: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// One `history` entry of an image config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// When, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command that made the layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A free-form comment (`docker import --message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Whether the step made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// A content descriptor: what a manifest or index points at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The target's media type.
    pub media_type: String,
    /// The target's digest.
    pub digest: Digest,
    /// The target's size in bytes.
    pub size: u64,
    /// The platform (index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields not modelled here (`urls`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// An image manifest: OCI (`application/vnd.oci.image.manifest.v1+json`) or Docker schema2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type (optional in OCI, required by Docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields not modelled here (`subject`, `artifactType`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// One manifest per platform.
    pub manifests: Vec<Descriptor>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A parsed manifest document: a single-platform manifest or an index.
#[derive(Debug, Clone, PartialEq)]
pub enum ManifestDoc {
    /// An image manifest and its media type.
    Manifest(Manifest, String),
    /// An index or manifest list and its media type.
    Index(Index, String),
}

/// Parses a manifest or index, deciding its kind from `content_type` (the registry's
/// `Content-Type` or a descriptor's media type) or, failing that, from its `mediaType` field
/// and shape. Schema1 manifests and unknown media types are refused with an error naming them.
pub fn parse_manifest(bytes: &[u8], content_type: Option<&str>) -> Result<ManifestDoc> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidParameter(format!("manifest is not valid JSON: {e}")))?;
    let media = content_type
        .filter(|c| !c.is_empty() && *c != "application/json")
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .or(probe.media_type.clone())
        .unwrap_or_else(|| {
            if probe.manifests.is_some() {
                MEDIA_OCI_INDEX.to_string()
            } else if probe.config.is_some() {
                MEDIA_OCI_MANIFEST.to_string()
            } else {
                String::new()
            }
        });
    if probe.schema_version == Some(1) || media == MEDIA_DOCKER_SCHEMA1 {
        return Err(Error::InvalidParameter(
            "docker image manifest schema 1 is not supported: push the image again with a current client".into(),
        ));
    }
    let bad = |e: serde_json::Error| Error::InvalidParameter(format!("invalid {media}: {e}"));
    match media.as_str() {
        MEDIA_OCI_MANIFEST | MEDIA_DOCKER_MANIFEST => {
            let m: Manifest = serde_json::from_slice(bytes).map_err(bad)?;
            if m.schema_version != 2 {
                return Err(Error::InvalidParameter(format!(
                    "manifest has schema version {}, expected 2",
                    m.schema_version
                )));
            }
            Ok(ManifestDoc::Manifest(m, media))
        }
        MEDIA_OCI_INDEX | MEDIA_DOCKER_LIST => {
            let i: Index = serde_json::from_slice(bytes).map_err(bad)?;
            Ok(ManifestDoc::Index(i, media))
        }
        "" => Err(Error::InvalidParameter(
            "manifest has no media type and is neither a manifest nor an index".into(),
        )),
        other => Err(Error::InvalidParameter(format!(
            "unsupported manifest media type {other}"
        ))),
    }
}

/// The chain ids of a layer stack, bottom first (OCI: `ChainID(L0) = DiffID(L0)`,
/// `ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))`). The last one names the
/// committed snapshot that holds the whole stack.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::of(Algorithm::Sha256, format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// This host's platform, with Go's architecture names.
pub fn host_platform() -> Platform {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "x86" => ("386", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "powerpc64" => ("ppc64le", None),
        "loongarch64" => ("loong64", None),
        other => (other, None),
    };
    Platform {
        os: "linux".into(),
        architecture: architecture.into(),
        variant: variant.map(Into::into),
    }
}

/// `t` as RFC 3339 with nanoseconds in UTC, as Go's `time.RFC3339Nano` writes it (trailing
/// zeros of the fraction dropped).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = berth_types::time::civil_from_days(days as i64);
    let mut s = format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_matches_go() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.12Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // leap day 2000
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn manifests_of_both_flavours_parse_and_schema1_is_refused() {
        let cfg = Digest::sha256_of(b"c");
        let layer = Digest::sha256_of(b"l");
        let docker = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_DOCKER_MANIFEST,
            "config": {"mediaType": MEDIA_DOCKER_CONFIG, "size": 7, "digest": cfg},
            "layers": [{"mediaType": MEDIA_DOCKER_LAYER_GZIP, "size": 9, "digest": layer,
                        "urls": ["https://example.invalid/l"]}]
        });
        let bytes = serde_json::to_vec(&docker).unwrap();
        let ManifestDoc::Manifest(m, media) = parse_manifest(&bytes, None).unwrap() else {
            panic!("not a manifest");
        };
        assert_eq!(media, MEDIA_DOCKER_MANIFEST);
        assert_eq!(m.config.digest, cfg);
        assert!(is_layer_media_type(&m.layers[0].media_type));
        // Unknown fields survive a round trip.
        assert_eq!(serde_json::to_value(&m).unwrap(), docker);

        let oci = serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": MEDIA_OCI_MANIFEST, "size": 1, "digest": cfg,
             "platform": {"os": "linux", "architecture": "amd64"}}]});
        let bytes = serde_json::to_vec(&oci).unwrap();
        assert!(matches!(
            parse_manifest(&bytes, Some("application/vnd.oci.image.index.v1+json; charset=utf-8")).unwrap(),
            ManifestDoc::Index(i, _) if i.manifests.len() == 1
        ));
        assert!(matches!(
            parse_manifest(&bytes, None).unwrap(),
            ManifestDoc::Index(..)
        ));

        let e = parse_manifest(br#"{"schemaVersion": 1, "fsLayers": []}"#, None).unwrap_err();
        assert!(e.to_string().contains("schema 1 is not supported"), "{e}");
        let e = parse_manifest(b"{}", Some("text/html")).unwrap_err();
        assert_eq!(e.to_string(), "unsupported manifest media type text/html");
    }
}
