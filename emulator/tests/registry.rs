//! The registry end to end: the built binary on 127.0.0.1:0 with its own data dir, driven by
//! raw HTTP (OCI distribution API and ECR's JSON API), the docker CLI, the AWS CLI and skopeo.
//!
//! Docker tests need a running Docker daemon and busybox-static (installed with apt-get when
//! missing); they fail loudly rather than skip when Docker is absent, unless
//! ECS_EMULATOR_SKIP_DOCKER_TESTS is set.

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Emu {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Emu {
    fn start(extra: &[&str]) -> Emu {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecs-emulator"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn emulator");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("ready line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Emu { child, port, dir }
    }

    fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// An ECR API call (awsJson 1.1), unsigned (default account and region).
    fn ecr(&self, op: &str, input: Value) -> (u16, Value) {
        let body = input.to_string();
        let r = http(
            self.port,
            "POST",
            "/",
            &[
                (
                    "X-Amz-Target",
                    &format!("AmazonEC2ContainerRegistry_V20150921.{op}"),
                ),
                ("Content-Type", "application/x-amz-json-1.1"),
            ],
            body.as_bytes(),
        );
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    }

    fn ok(&self, op: &str, input: Value) -> Value {
        let (status, out) = self.ecr(op, input);
        assert_eq!(status, 200, "{op}: {out}");
        out
    }

    /// The registry password from GetAuthorizationToken.
    fn password(&self) -> String {
        let out = self.ok("GetAuthorizationToken", json!({}));
        let token = out["authorizationData"][0]["authorizationToken"]
            .as_str()
            .expect("token");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .expect("b64");
        String::from_utf8(decoded)
            .expect("utf8")
            .strip_prefix("AWS:")
            .expect("AWS:")
            .to_string()
    }

    fn basic(&self) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("AWS:{}", self.password()))
        )
    }
}

struct Resp {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .get(&k.to_ascii_lowercase())
            .map(String::as_str)
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A minimal HTTP/1.1 client: one request per connection.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no response"));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..pos]).trim(), 16)
                .unwrap_or(0);
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[pos + 2..pos + 2 + size]);
            rest = &rest[pos + 2 + size + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Registry calls with credentials.
struct Reg<'a> {
    emu: &'a Emu,
    auth: String,
}

impl Reg<'_> {
    fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut h: Vec<(&str, &str)> = vec![("Authorization", self.auth.as_str())];
        h.extend_from_slice(headers);
        http(self.emu.port, method, path, &h, body)
    }

    /// A monolithic blob upload (POST then PUT); returns the digest.
    fn blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha(data);
        let r = self.call("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
        let loc = r.header("location").expect("location").to_string();
        let r = self.call(
            "PUT",
            &format!("{loc}?digest={d}"),
            &[("Content-Type", "application/octet-stream")],
            data,
        );
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
        d
    }

    /// An OCI image manifest over a config and one layer, pushed under `reference`.
    fn image(&self, repo: &str, seed: &str, arch: &str, reference: &str) -> (String, usize) {
        let config = json!({"architecture": arch, "os": "linux", "seed": seed}).to_string();
        let layer = format!("layer of {seed}").into_bytes();
        let c = self.blob(repo, config.as_bytes());
        let l = self.blob(repo, &layer);
        let m = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l, "size": layer.len()}]
        })
        .to_string();
        let r = self.call(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            m.as_bytes(),
        );
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        (sha(m.as_bytes()), m.len())
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid_like())
}

fn uuid_like() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", n & 0xffff_ffff, std::process::id())
}

fn error_code(r: &Resp) -> String {
    r.json()["errors"][0]["code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn oci_distribution_api_over_http() {
    let emu = Emu::start(&["--ephemeral"]);
    // Without credentials: 401 with a Basic challenge.
    let r = http(emu.port, "GET", "/v2/", &[], b"");
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .is_some_and(|h| h.starts_with("Basic realm=")));
    assert_eq!(error_code(&r), "UNAUTHORIZED");
    let r = http(
        emu.port,
        "GET",
        "/v2/",
        &[("Authorization", "Basic QVdTOm5vcGU=")],
        b"",
    );
    assert_eq!(r.status, 401);

    let reg = Reg {
        emu: &emu,
        auth: emu.basic(),
    };
    let r = reg.call("GET", "/v2/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );

    let repo = "team/app";
    let other = "team/other";
    // Pushing to a repository that does not exist: NAME_UNKNOWN, as ECR answers.
    let r = reg.call("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    assert_eq!((r.status, error_code(&r).as_str()), (404, "NAME_UNKNOWN"));
    let created = emu.ok("CreateRepository", json!({"repositoryName": repo}));
    assert_eq!(
        created["repository"]["repositoryUri"],
        json!(format!("localhost:{}/{repo}", emu.port))
    );
    emu.ok("CreateRepository", json!({"repositoryName": other}));

    // Chunked upload: PATCH, PATCH, PUT; a chunk out of order is refused with 416.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let d = sha(&data);
    let r = reg.call("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    assert_eq!(r.status, 202);
    assert_eq!(r.header("range"), Some("0-0"));
    let loc = r.header("location").expect("loc").to_string();
    let r = reg.call(
        "PATCH",
        &loc,
        &[("Content-Range", "0-99999")],
        &data[..100_000],
    );
    assert_eq!((r.status, r.header("range")), (202, Some("0-99999")));
    let r = reg.call("PATCH", &loc, &[("Content-Range", "5-10")], &data[5..11]);
    assert_eq!(r.status, 416);
    let r = reg.call(
        "PATCH",
        &loc,
        &[("Content-Range", "100000-199999")],
        &data[100_000..200_000],
    );
    assert_eq!((r.status, r.header("range")), (202, Some("0-199999")));
    let r = reg.call("GET", &loc, &[], b"");
    assert_eq!((r.status, r.header("range")), (204, Some("0-199999")));
    let r = reg.call("PUT", &format!("{loc}?digest={d}"), &[], &data[200_000..]);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));

    // Reads: HEAD, GET, Range.
    let r = reg.call("HEAD", &format!("/v2/{repo}/blobs/{d}"), &[], b"");
    assert_eq!(
        (r.status, r.header("content-length")),
        (200, Some("300000"))
    );
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    let r = reg.call("GET", &format!("/v2/{repo}/blobs/{d}"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    let r = reg.call(
        "GET",
        &format!("/v2/{repo}/blobs/{d}"),
        &[("Range", "bytes=10-19")],
        b"",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/300000"));
    assert_eq!(r.body, &data[10..20]);
    let r = reg.call("GET", &format!("/v2/{other}/blobs/{d}"), &[], b"");
    assert_eq!((r.status, error_code(&r).as_str()), (404, "BLOB_UNKNOWN"));

    // A wrong digest: DIGEST_INVALID, nothing stored.
    let r = reg.call(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={}", sha(b"x")),
        &[],
        b"y",
    );
    assert_eq!((r.status, error_code(&r).as_str()), (400, "DIGEST_INVALID"));

    // Cross-repository mount.
    let r = reg.call(
        "POST",
        &format!("/v2/{other}/blobs/uploads/?mount={d}&from={repo}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/{other}/blobs/{d}").as_str())
    );
    let r = reg.call("HEAD", &format!("/v2/{other}/blobs/{d}"), &[], b"");
    assert_eq!(r.status, 200);

    // Manifests: a missing blob is refused; tags, HEAD/GET by tag and digest.
    let missing = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(b"nope"), "size": 4}, "layers": []});
    let r = reg.call(
        "PUT",
        &format!("/v2/{repo}/manifests/bad"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        missing.to_string().as_bytes(),
    );
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    let r = reg.call("PUT", &format!("/v2/{repo}/manifests/bad:tag"), &[], b"{}");
    assert_eq!(error_code(&r), "DIGEST_INVALID");
    let mut digests = Vec::new();
    for i in 0..5 {
        let (md, _) = reg.image(repo, &format!("img{i}"), "amd64", &format!("t{i}"));
        digests.push(md);
    }
    let r = reg.call("HEAD", &format!("/v2/{repo}/manifests/t0"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("docker-content-digest"), Some(digests[0].as_str()));
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    let r = reg.call(
        "GET",
        &format!("/v2/{repo}/manifests/{}", digests[1]),
        &[],
        b"",
    );
    assert_eq!(sha(&r.body), digests[1]);
    let r = reg.call("GET", &format!("/v2/{repo}/manifests/nope"), &[], b"");
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (404, "MANIFEST_UNKNOWN")
    );

    // Pushed images are ECR images.
    let described = emu.ok(
        "DescribeImages",
        json!({"repositoryName": repo, "imageIds": [{"imageTag": "t0"}]}),
    );
    let detail = &described["imageDetails"][0];
    assert_eq!(detail["imageDigest"], json!(digests[0]));
    assert_eq!(
        detail["imageManifestMediaType"],
        json!("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(
        detail["artifactMediaType"],
        json!("application/vnd.oci.image.config.v1+json")
    );
    assert!(detail["imageSizeInBytes"].as_u64().is_some_and(|s| s > 0));
    assert!(detail["imagePushedAt"].is_number());
    // And ECR images are pullable: PutImage with a new tag, then GET by it.
    let got = emu.ok(
        "BatchGetImage",
        json!({"repositoryName": repo, "imageIds": [{"imageTag": "t1"}]}),
    );
    let manifest = got["images"][0]["imageManifest"]
        .as_str()
        .expect("manifest")
        .to_string();
    emu.ok(
        "PutImage",
        json!({"repositoryName": repo, "imageManifest": manifest, "imageTag": "from-api"}),
    );
    let r = reg.call("GET", &format!("/v2/{repo}/manifests/from-api"), &[], b"");
    assert_eq!(r.header("docker-content-digest"), Some(digests[1].as_str()));

    // tags/list pages with n, last and a Link header.
    let r = reg.call("GET", &format!("/v2/{repo}/tags/list?n=2"), &[], b"");
    assert_eq!(r.json()["tags"], json!(["from-api", "t0"]));
    let link = r.header("link").expect("link").to_string();
    assert!(
        link.contains("last=t0") && link.contains("rel=\"next\""),
        "{link}"
    );
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("url")
        .to_string();
    let r = reg.call("GET", &next, &[], b"");
    assert_eq!(r.json()["tags"], json!(["t1", "t2"]));

    // A multi-arch index over two manifests pushed by digest.
    let (arm, arm_len) = reg.image(repo, "arm", "arm64", "arm-only");
    let (amd, amd_len) = reg.image(repo, "amd", "amd64", "amd-only");
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": arm_len, "platform": {"architecture": "arm64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": amd_len, "platform": {"architecture": "amd64", "os": "linux"}}
    ]}).to_string();
    let r = reg.call(
        "PUT",
        &format!("/v2/{repo}/manifests/multi"),
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        index.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = reg.call(
        "GET",
        &format!("/v2/{repo}/manifests/multi"),
        &[("Accept", "application/vnd.oci.image.index.v1+json")],
        b"",
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    assert_eq!(r.body, index.as_bytes());
    let bogus = index.replace(&arm[7..], &"0".repeat(64));
    let r = reg.call(
        "PUT",
        &format!("/v2/{repo}/manifests/bogus"),
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        bogus.as_bytes(),
    );
    assert_eq!(error_code(&r), "MANIFEST_BLOB_UNKNOWN");
    // A child of an index cannot be deleted alone.
    let r = reg.call("DELETE", &format!("/v2/{repo}/manifests/{arm}"), &[], b"");
    assert_eq!(r.status, 409);

    // DELETE by digest.
    let r = reg.call(
        "DELETE",
        &format!("/v2/{repo}/manifests/{}", digests[4]),
        &[],
        b"",
    );
    assert_eq!(r.status, 202);
    let r = reg.call("GET", &format!("/v2/{repo}/manifests/t4"), &[], b"");
    assert_eq!(r.status, 404);

    // IMMUTABLE: a moved tag is TAG_INVALID with ECR's wording; re-pushing the same is fine.
    emu.ok(
        "PutImageTagMutability",
        json!({"repositoryName": repo, "imageTagMutability": "IMMUTABLE"}),
    );
    let r = reg.call("GET", &format!("/v2/{repo}/manifests/t2"), &[], b"");
    let same = r.body.clone();
    let r = reg.call(
        "PUT",
        &format!("/v2/{repo}/manifests/t2"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &same,
    );
    assert_eq!(r.status, 201);
    let r = reg.call("GET", &format!("/v2/{repo}/manifests/t3"), &[], b"");
    let r = reg.call(
        "PUT",
        &format!("/v2/{repo}/manifests/t2"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &r.body,
    );
    assert_eq!((r.status, error_code(&r).as_str()), (400, "TAG_INVALID"));
    assert!(r.json()["errors"][0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("The image tag 't2' already exists in the 'team/app' repository and cannot be overwritten because the repository is immutable.")));

    // GetDownloadUrlForLayer hands out a URL that works without credentials.
    let url = emu.ok(
        "GetDownloadUrlForLayer",
        json!({"repositoryName": repo, "layerDigest": d}),
    );
    let url = url["downloadUrl"].as_str().expect("url").to_string();
    let path = url
        .splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .expect("path");
    let r = http(emu.port, "GET", &path, &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), data.len());
}

#[test]
fn concurrent_pushes_of_the_same_layer() {
    let emu = Emu::start(&["--ephemeral"]);
    let repos: Vec<String> = (0..3).map(|i| format!("conc/r{i}")).collect();
    for r in &repos {
        emu.ok("CreateRepository", json!({"repositoryName": r}));
    }
    let auth = emu.basic();
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let d = sha(&data);
    let start = Instant::now();
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for i in 0..8 {
            let (emu, auth, data, d, repo) = (&emu, &auth, &data, &d, &repos[i % repos.len()]);
            handles.push(s.spawn(move || {
                let reg = Reg {
                    emu,
                    auth: auth.clone(),
                };
                let r = reg.call("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
                assert_eq!(r.status, 202);
                let loc = r.header("location").expect("loc").to_string();
                // Two chunks, then the PUT.
                let half = data.len() / 2;
                let r = reg.call("PATCH", &loc, &[], &data[..half]);
                assert_eq!(r.status, 202);
                let r = reg.call("PUT", &format!("{loc}?digest={d}"), &[], &data[half..]);
                assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
                r.header("docker-content-digest").map(str::to_string)
            }));
        }
        for h in handles {
            assert_eq!(h.join().expect("thread"), Some(d.clone()));
        }
    });
    eprintln!(
        "8 concurrent 2 MB pushes of one layer into 3 repositories: {:?}",
        start.elapsed()
    );
    let reg = Reg { emu: &emu, auth };
    for r in &repos {
        let got = reg.call("GET", &format!("/v2/{r}/blobs/{d}"), &[], b"");
        assert_eq!(sha(&got.body), d);
    }
    let avail = emu.ok(
        "BatchCheckLayerAvailability",
        json!({"repositoryName": repos[0], "layerDigests": [d]}),
    );
    assert_eq!(avail["layers"][0]["layerSize"], json!(2_000_000));
}

#[test]
fn lifecycle_policy_expires_images_as_days_pass() {
    // 86400x: an emulated day passes every real second.
    let emu = Emu::start(&["--ephemeral", "--time-scale", "86400"]);
    emu.ok("CreateRepository", json!({"repositoryName": "lc"}));
    let reg = Reg {
        emu: &emu,
        auth: emu.basic(),
    };
    for i in 0..4 {
        reg.image("lc", &format!("v{i}"), "amd64", &format!("v{i}"));
    }
    // Moving a tag leaves the image it was on untagged.
    reg.image("lc", "old", "amd64", "tmp");
    reg.image("lc", "new", "amd64", "tmp");
    let policy = json!({"rules": [
        {"rulePriority": 1, "description": "keep two release images",
         "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "imageCountMoreThan", "countNumber": 2},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": "untagged after 3 days",
         "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 3},
         "action": {"type": "expire"}}
    ]})
    .to_string();
    emu.ok(
        "PutLifecyclePolicy",
        json!({"repositoryName": "lc", "lifecyclePolicyText": policy}),
    );
    emu.ok(
        "StartLifecyclePolicyPreview",
        json!({"repositoryName": "lc"}),
    );
    let preview = emu.ok("GetLifecyclePolicyPreview", json!({"repositoryName": "lc"}));
    assert_eq!(preview["status"], json!("COMPLETE"));
    // The tagged rule expires two images at once; the untagged one is not 3 days old yet.
    assert_eq!(
        preview["summary"]["expiringImageTotalCount"],
        json!(2),
        "{preview}"
    );
    let start = Instant::now();
    let deadline = start + Duration::from_secs(30);
    let remaining = loop {
        let imgs = emu.ok("DescribeImages", json!({"repositoryName": "lc"}));
        let details = imgs["imageDetails"].as_array().cloned().expect("details");
        let mut tags: Vec<String> = details
            .iter()
            .flat_map(|d| d["imageTags"].as_array().cloned().unwrap_or_default())
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        tags.sort();
        if details.len() <= 3 || Instant::now() > deadline {
            break (details.len(), tags);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!(
        "lifecycle expired 3 of 6 images in {:?} of real time",
        start.elapsed()
    );
    assert_eq!(
        remaining,
        (3, vec!["tmp".to_string(), "v2".into(), "v3".into()])
    );
    // Tokens last 12 emulated hours (half a second here): log in again.
    let r = reg.call("GET", "/v2/lc/manifests/v0", &[], b"");
    assert_eq!(r.status, 401, "the old token has expired");
    let fresh = Reg {
        emu: &emu,
        auth: emu.basic(),
    };
    let r = fresh.call("GET", "/v2/lc/manifests/v0", &[], b"");
    assert_eq!(
        r.status, 404,
        "an expired image is gone from the registry too"
    );
    let got = emu.ok("GetLifecyclePolicy", json!({"repositoryName": "lc"}));
    assert!(got["lastEvaluatedAt"].is_number());
}

// ---- Docker, the AWS CLI and skopeo ----

fn docker_available() -> bool {
    if std::env::var_os("ECS_EMULATOR_SKIP_DOCKER_TESTS").is_some() {
        return false;
    }
    let ok = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "Docker is not usable (set ECS_EMULATOR_SKIP_DOCKER_TESTS=1 to skip these tests)"
    );
    true
}

fn ensure_package(binary: &Path, package: &str) {
    if binary.exists() {
        return;
    }
    let _ = Command::new("apt-get")
        .arg("update")
        .stdout(Stdio::null())
        .status();
    let status = Command::new("apt-get")
        .args(["install", "-y", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .expect("apt-get");
    assert!(
        status.success() && binary.exists(),
        "cannot install {package}"
    );
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn must(cmd: &mut Command) -> String {
    let desc = format!("{cmd:?}");
    let (ok, text) = run(cmd);
    assert!(ok, "{desc} failed:\n{text}");
    text
}

/// Docker images this test made, removed at the end whatever happens.
struct DockerImages(Vec<String>);

impl Drop for DockerImages {
    fn drop(&mut self) {
        for i in &self.0 {
            let _ = Command::new("docker").args(["rmi", "-f", i]).output();
        }
    }
}

/// Builds a tiny image FROM scratch with busybox; `message` makes each build distinct.
fn build_image(docker_config: &Path, tag: &str, message: &str) -> String {
    let ctx = tempfile::tempdir().expect("ctx");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/registry-busybox/Dockerfile");
    std::fs::copy(&fixture, ctx.path().join("Dockerfile")).expect("Dockerfile fixture");
    std::fs::copy("/bin/busybox", ctx.path().join("busybox")).expect("busybox");
    std::fs::write(ctx.path().join("message"), message).expect("message");
    must(
        Command::new("docker")
            .env("DOCKER_CONFIG", docker_config)
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", tag])
            .arg(ctx.path()),
    );
    // The image id, so that cleanup finds the image even after its tag moves on.
    must(Command::new("docker").args(["image", "inspect", "-f", "{{.Id}}", tag]))
        .trim()
        .to_string()
}

fn docker(config: &Path) -> Command {
    let mut c = Command::new("docker");
    c.env("DOCKER_CONFIG", config);
    c
}

#[test]
fn docker_cli_push_pull_and_skopeo() {
    if !docker_available() {
        return;
    }
    ensure_package(Path::new("/bin/busybox"), "busybox-static");
    let emu = Emu::start(&[]);
    let host = emu.host();
    let config: PathBuf = emu.dir.path().join("docker-config");
    std::fs::create_dir_all(&config).expect("docker config dir");
    let repo = unique("it/busybox");
    let immutable = unique("it/immutable");
    let image = format!("{host}/{repo}:v1");
    let mut made = DockerImages(vec![image.clone()]);
    emu.ok("CreateRepository", json!({"repositoryName": repo}));
    emu.ok(
        "CreateRepository",
        json!({"repositoryName": immutable, "imageTagMutability": "IMMUTABLE"}),
    );
    // The message carries the unique repository name: an identical build would hit Docker's build
    // cache and share its image id with a concurrent run, whose cleanup (`rmi -f <id>`) would
    // then remove this run's tag too.
    let first = build_image(&config, &image, &format!("one {repo}"));
    made.0.push(first);

    // Without login: refused.
    let (ok, text) = run(docker(&config).args(["push", &image]));
    assert!(
        !ok && (text.contains("no basic auth credentials") || text.contains("unauthorized")),
        "{text}"
    );

    // aws ecr get-login-password | docker login.
    let start = Instant::now();
    let password = must(
        Command::new("aws")
            .args([
                "ecr",
                "get-login-password",
                "--region",
                "us-east-1",
                "--endpoint-url",
            ])
            .arg(format!("http://127.0.0.1:{}", emu.port))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1"),
    );
    let mut login = docker(&config)
        .args(["login", "--username", "AWS", "--password-stdin", &host])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker login");
    login
        .stdin
        .take()
        .expect("stdin")
        .write_all(password.trim().as_bytes())
        .expect("password");
    let out = login.wait_with_output().expect("login");
    assert!(
        out.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    must(docker(&config).args(["push", &image]));
    eprintln!("login + push of a busybox image: {:?}", start.elapsed());
    let described = emu.ok("DescribeImages", json!({"repositoryName": repo}));
    let detail = &described["imageDetails"][0];
    assert_eq!(detail["imageTags"], json!(["v1"]));
    assert!(
        detail["imageSizeInBytes"]
            .as_u64()
            .is_some_and(|s| s > 500_000),
        "{detail}"
    );
    assert_eq!(
        detail["imageManifestMediaType"],
        json!("application/vnd.docker.distribution.manifest.v2+json")
    );
    assert_eq!(
        detail["artifactMediaType"],
        json!("application/vnd.docker.container.image.v1+json")
    );

    // rmi, pull, run.
    must(docker(&config).args(["rmi", &image]));
    let start = Instant::now();
    must(docker(&config).args(["pull", &image]));
    eprintln!("pull: {:?}", start.elapsed());
    let out = must(docker(&config).args(["run", "--rm", &image]));
    assert!(out.contains("one"), "{out}");
    let pulled = emu.ok("DescribeImages", json!({"repositoryName": repo}));
    assert!(pulled["imageDetails"][0]["lastRecordedPullTime"].is_number());

    // A push to a repository that does not exist fails as with ECR.
    let stray = format!("{host}/{}:v1", unique("it/missing"));
    made.0.push(stray.clone());
    must(docker(&config).args(["tag", &image, &stray]));
    let (ok, text) = run(docker(&config).args(["push", &stray]));
    assert!(!ok && text.contains("does not exist"), "{text}");

    // IMMUTABLE: the same tag on a different image is refused.
    let imm1 = format!("{host}/{immutable}:v1");
    made.0.push(imm1.clone());
    must(docker(&config).args(["tag", &image, &imm1]));
    must(docker(&config).args(["push", &imm1]));
    let second = build_image(&config, &imm1, &format!("two {repo}"));
    made.0.push(second);
    let (ok, text) = run(docker(&config).args(["push", &imm1]));
    assert!(
        !ok && text.contains("cannot be overwritten because the repository is immutable"),
        "{text}"
    );

    // skopeo copies between repositories (cross-repository mounts), and copies an index.
    ensure_package(Path::new("/usr/bin/skopeo"), "skopeo");
    let copy = unique("it/copy");
    emu.ok("CreateRepository", json!({"repositoryName": copy}));
    let creds = format!("AWS:{}", password.trim());
    let start = Instant::now();
    must(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        &creds,
        "--dest-creds",
        &creds,
        &format!("docker://{image}"),
        &format!("docker://{host}/{copy}:copied"),
    ]));
    eprintln!("skopeo copy: {:?}", start.elapsed());
    let src = emu.ok("DescribeImages", json!({"repositoryName": repo}));
    let dst = emu.ok("DescribeImages", json!({"repositoryName": copy}));
    assert_eq!(
        src["imageDetails"][0]["imageDigest"],
        dst["imageDetails"][0]["imageDigest"]
    );
    let tags = must(Command::new("skopeo").args([
        "list-tags",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{host}/{copy}"),
    ]));
    assert!(tags.contains("copied"), "{tags}");

    // A multi-arch index built by hand, then copied whole with skopeo --all.
    let reg = Reg {
        emu: &emu,
        auth: emu.basic(),
    };
    let (a, alen) = reg.image(&copy, "arm", "arm64", "arm");
    let (b, blen) = reg.image(&copy, "amd", "amd64", "amd");
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": a, "size": alen, "platform": {"architecture": "arm64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": b, "size": blen, "platform": {"architecture": "amd64", "os": "linux"}}
    ]}).to_string();
    let r = reg.call(
        "PUT",
        &format!("/v2/{copy}/manifests/multi"),
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        index.as_bytes(),
    );
    assert_eq!(r.status, 201);
    let multi = unique("it/multi");
    emu.ok("CreateRepository", json!({"repositoryName": multi}));
    must(Command::new("skopeo").args([
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        &creds,
        "--dest-creds",
        &creds,
        &format!("docker://{host}/{copy}:multi"),
        &format!("docker://{host}/{multi}:multi"),
    ]));
    let raw = must(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{host}/{multi}:multi"),
    ]));
    let raw: Value = serde_json::from_str(raw.trim()).expect("index json");
    assert_eq!(raw["manifests"].as_array().map(Vec::len), Some(2));
    let images = emu.ok("DescribeImages", json!({"repositoryName": multi}));
    assert_eq!(
        images["imageDetails"].as_array().map(Vec::len),
        Some(3),
        "the index and its two images"
    );
    drop(made);
}
