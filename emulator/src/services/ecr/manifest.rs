//! Reading image manifests: Docker schema 2, Docker manifest lists, OCI image manifests and
//! indexes. What an image references must exist in its repository before it is accepted.

use serde_json::Value;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The manifest media types the registry stores.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX];

pub fn is_manifest_media_type(t: &str) -> bool {
    MANIFEST_MEDIA_TYPES.contains(&t)
}

/// Layers that live elsewhere (Windows base layers): never required to be pushed.
fn is_foreign(layer: &Value) -> bool {
    let t = layer.get("mediaType").and_then(Value::as_str).unwrap_or("");
    t.contains("foreign") || t.contains("nondistributable") || layer.get("urls").is_some()
}

/// What a manifest says about itself and what it references.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    pub media_type: String,
    /// ECR's artifactMediaType: the config's media type (or the OCI artifactType).
    pub artifact_media_type: Option<String>,
    /// Blobs (config, then layers) with their declared sizes.
    pub blobs: Vec<(String, u64)>,
    /// Manifests an index references.
    pub children: Vec<String>,
    pub subject: Option<String>,
}

impl Parsed {
    pub fn is_index(&self) -> bool {
        self.media_type == DOCKER_LIST || self.media_type == OCI_INDEX
    }
}

/// Parses a manifest. `content_type` is the media type the client declared (Content-Type on a
/// registry PUT, imageManifestMediaType on PutImage), if any.
pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Parsed, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the manifest is not valid JSON: {e}"))?;
    if !v.is_object() {
        return Err("the manifest must be a JSON object".into());
    }
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && is_manifest_media_type(c));
    let inner = v.get("mediaType").and_then(Value::as_str);
    if let Some(inner) = inner {
        if !is_manifest_media_type(inner) {
            return Err(format!("unsupported manifest media type {inner}"));
        }
    }
    if let (Some(d), Some(i)) = (declared, inner) {
        if d != i {
            return Err(format!(
                "the manifest's mediaType {i} does not match the declared media type {d}"
            ));
        }
    }
    if v.get("schemaVersion").and_then(Value::as_i64) != Some(2) {
        return Err("only schemaVersion 2 manifests are supported".into());
    }
    let media_type = match declared.or(inner) {
        Some(t) => t.to_string(),
        None if v.get("manifests").is_some() => OCI_INDEX.to_string(),
        None => OCI_MANIFEST.to_string(),
    };
    let digest_of = |d: &Value| -> Result<(String, u64), String> {
        let digest = d
            .get("digest")
            .and_then(Value::as_str)
            .ok_or("a descriptor has no digest")?;
        crate::blobs::Digest::parse(digest)
            .map_err(|e| format!("descriptor digest {digest}: {e}"))?;
        let size = d.get("size").and_then(Value::as_u64).unwrap_or(0);
        Ok((digest.to_string(), size))
    };
    let mut parsed = Parsed {
        media_type,
        ..Parsed::default()
    };
    if let Some(subject) = v.get("subject") {
        parsed.subject = Some(digest_of(subject)?.0);
    }
    if parsed.is_index() {
        let manifests = v
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or("an index needs a manifests list")?;
        for m in manifests {
            parsed.children.push(digest_of(m)?.0);
        }
        parsed.artifact_media_type = v
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_string);
    } else {
        let config = v.get("config").ok_or("an image manifest needs a config")?;
        parsed.blobs.push(digest_of(config)?);
        let config_type = config
            .get("mediaType")
            .and_then(Value::as_str)
            .map(str::to_string);
        parsed.artifact_media_type = v
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(config_type);
        let layers = v
            .get("layers")
            .and_then(Value::as_array)
            .ok_or("an image manifest needs a layers list")?;
        for l in layers {
            let d = digest_of(l)?;
            if is_foreign(l) {
                continue;
            }
            parsed.blobs.push(d);
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifests_and_indexes() {
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": d('a'), "size": 10},
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": d('b'), "size": 100},
                {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": d('c'), "size": 5, "urls": ["http://x"]}
            ]
        });
        let p = parse(m.to_string().as_bytes(), Some(DOCKER_MANIFEST)).expect("parse");
        assert_eq!(p.media_type, DOCKER_MANIFEST);
        assert_eq!(p.blobs, vec![(d('a'), 10), (d('b'), 100)]);
        assert_eq!(
            p.artifact_media_type.as_deref(),
            Some("application/vnd.docker.container.image.v1+json")
        );
        // Declared and inner media types must agree.
        assert!(parse(m.to_string().as_bytes(), Some(OCI_MANIFEST)).is_err());

        let i = serde_json::json!({"schemaVersion": 2, "manifests": [{"digest": d('e'), "size": 3, "mediaType": OCI_MANIFEST}]});
        let p = parse(i.to_string().as_bytes(), None).expect("index");
        assert!(p.is_index());
        assert_eq!(p.children, vec![d('e')]);
        assert!(parse(b"{", None).is_err());
        assert!(parse(
            br#"{"schemaVersion":2,"config":{"digest":"sha256:zz"},"layers":[]}"#,
            None
        )
        .is_err());
        assert!(parse(br#"{"schemaVersion":1}"#, None).is_err());
    }
}
