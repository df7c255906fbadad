//! Unit tests of ECR: the API handlers over real (temporary) state.

use super::lifecycle::{evaluate, parse_policy};
use super::*;
use crate::services::{Ctx, Deps, Registry};
use base64::Engine;
use serde_json::json;

struct T {
    r: Registry,
    ctx: Ctx,
    ecr: Arc<Ecr>,
}

fn setup() -> T {
    let deps = Deps::for_tests();
    let r = crate::app::build(&deps);
    let ecr = r.handle::<Ecr>().expect("ecr handle");
    T {
        r,
        ctx: Ctx::for_tests(),
        ecr,
    }
}

impl T {
    async fn call(&self, op: &str, input: Value) -> Result<Value, AwsError> {
        let h = self.r.get("ecr", op).expect("handler");
        h.call(self.ctx.clone(), input).await
    }

    async fn ok(&self, op: &str, input: Value) -> Value {
        match self.call(op, input).await {
            Ok(v) => v,
            Err(e) => panic!("{op} failed: {e}"),
        }
    }

    async fn code(&self, op: &str, input: Value) -> String {
        self.call(op, input).await.expect_err(op).code.to_string()
    }

    /// Uploads a layer through the API; returns its digest.
    async fn layer(&self, repo: &str, data: &[u8]) -> String {
        let up = self
            .ok("InitiateLayerUpload", json!({"repositoryName": repo}))
            .await;
        let id = up["uploadId"].as_str().expect("id").to_string();
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        let part = self
            .ok(
                "UploadLayerPart",
                json!({"repositoryName": repo, "uploadId": id, "partFirstByte": 0,
                       "partLastByte": data.len() - 1, "layerPartBlob": b64}),
            )
            .await;
        assert_eq!(part["lastByteReceived"], json!(data.len() - 1));
        let digest = crate::blobs::Digest::of(data).to_string();
        self.ok(
            "CompleteLayerUpload",
            json!({"repositoryName": repo, "uploadId": id, "layerDigests": [digest]}),
        )
        .await;
        digest
    }

    /// A Docker schema 2 manifest over a fresh config and layer.
    async fn manifest(&self, repo: &str, seed: &str) -> String {
        let config = format!("{{\"seed\":\"{seed}\"}}");
        let c = self.layer(repo, config.as_bytes()).await;
        let l = self.layer(repo, format!("layer {seed}").as_bytes()).await;
        json!({
            "schemaVersion": 2,
            "mediaType": manifest::DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": c, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": l, "size": 6 + seed.len()}]
        })
        .to_string()
    }
}

#[tokio::test]
async fn repositories_lifecycle_of_create_describe_delete() {
    let t = setup();
    let created = t
        .ok(
            "CreateRepository",
            json!({"repositoryName": "team/app", "imageTagMutability": "IMMUTABLE",
                   "tags": [{"Key": "env", "Value": "dev"}],
                   "imageScanningConfiguration": {"scanOnPush": true},
                   "encryptionConfiguration": {"encryptionType": "KMS"}}),
        )
        .await;
    let repo = &created["repository"];
    assert_eq!(repo["repositoryUri"], json!("localhost:4566/team/app"));
    assert_eq!(repo["registryId"], json!("000000000000"));
    assert_eq!(
        repo["repositoryArn"],
        json!("arn:aws:ecr:us-east-1:000000000000:repository/team/app")
    );
    assert_eq!(repo["imageTagMutability"], json!("IMMUTABLE"));
    assert_eq!(
        repo["imageScanningConfiguration"]["scanOnPush"],
        json!(true)
    );
    assert_eq!(
        repo["encryptionConfiguration"]["encryptionType"],
        json!("KMS")
    );
    assert_eq!(
        t.code("CreateRepository", json!({"repositoryName": "team/app"}))
            .await,
        "RepositoryAlreadyExistsException"
    );
    assert_eq!(
        t.code(
            "CreateRepository",
            json!({"repositoryName": "x", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"})
        )
        .await,
        "InvalidParameterException"
    );
    t.ok("CreateRepository", json!({"repositoryName": "other"}))
        .await;
    let all = t.ok("DescribeRepositories", json!({"maxResults": 1})).await;
    assert_eq!(all["repositories"].as_array().map(Vec::len), Some(1));
    let rest = t
        .ok(
            "DescribeRepositories",
            json!({"nextToken": all["nextToken"]}),
        )
        .await;
    assert_eq!(rest["repositories"][0]["repositoryName"], json!("team/app"));
    assert_eq!(
        t.code("DescribeRepositories", json!({"repositoryNames": ["nope"]}))
            .await,
        "RepositoryNotFoundException"
    );

    let arn = repo["repositoryArn"].clone();
    t.ok(
        "TagResource",
        json!({"resourceArn": arn, "tags": [{"Key": "team", "Value": "a"}]}),
    )
    .await;
    t.ok(
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["env"]}),
    )
    .await;
    let tags = t
        .ok("ListTagsForResource", json!({"resourceArn": arn}))
        .await;
    assert_eq!(tags["tags"], json!([{"Key": "team", "Value": "a"}]));

    t.ok("SetRepositoryPolicy", json!({"repositoryName": "other", "policyText": "{\"Version\":\"2012-10-17\",\"Statement\":[]}"})).await;
    let p = t
        .ok("GetRepositoryPolicy", json!({"repositoryName": "other"}))
        .await;
    assert!(p["policyText"]
        .as_str()
        .is_some_and(|s| s.contains("2012-10-17")));
    t.ok("DeleteRepositoryPolicy", json!({"repositoryName": "other"}))
        .await;
    assert_eq!(
        t.code("GetRepositoryPolicy", json!({"repositoryName": "other"}))
            .await,
        "RepositoryPolicyNotFoundException"
    );

    let m = t.manifest("other", "a").await;
    t.ok(
        "PutImage",
        json!({"repositoryName": "other", "imageManifest": m, "imageTag": "v1"}),
    )
    .await;
    assert_eq!(
        t.code("DeleteRepository", json!({"repositoryName": "other"}))
            .await,
        "RepositoryNotEmptyException"
    );
    t.ok(
        "DeleteRepository",
        json!({"repositoryName": "other", "force": true}),
    )
    .await;
    assert_eq!(
        t.code("DescribeImages", json!({"repositoryName": "other"}))
            .await,
        "RepositoryNotFoundException"
    );
    assert!(t
        .ecr
        .layers
        .scan("000000000000/us-east-1/other@")
        .is_empty());
}

#[tokio::test]
async fn images_put_describe_get_delete_and_immutability() {
    let t = setup();
    t.ok("CreateRepository", json!({"repositoryName": "app"}))
        .await;
    let m1 = t.manifest("app", "one").await;
    let m2 = t.manifest("app", "two").await;

    // Missing layers are refused.
    let bad = m1.replace(
        &m1[m1.find("sha256:").unwrap_or(0)..][..71],
        &format!("sha256:{}", "0".repeat(64)),
    );
    assert_eq!(
        t.code(
            "PutImage",
            json!({"repositoryName": "app", "imageManifest": bad, "imageTag": "x"})
        )
        .await,
        "LayersNotFoundException"
    );

    let put = t
        .ok(
            "PutImage",
            json!({"repositoryName": "app", "imageManifest": m1, "imageTag": "latest"}),
        )
        .await;
    let d1 = put["image"]["imageId"]["imageDigest"]
        .as_str()
        .expect("digest")
        .to_string();
    assert_eq!(
        put["image"]["imageManifestMediaType"],
        json!(manifest::DOCKER_MANIFEST)
    );
    assert_eq!(
        t.code(
            "PutImage",
            json!({"repositoryName": "app", "imageManifest": m1, "imageTag": "latest"})
        )
        .await,
        "ImageAlreadyExistsException"
    );
    assert_eq!(
        t.code("PutImage", json!({"repositoryName": "app", "imageManifest": m1, "imageDigest": format!("sha256:{}", "1".repeat(64))})).await,
        "ImageDigestDoesNotMatchException"
    );
    // A second tag on the same image, then the tag moves to another image (mutable).
    t.ok(
        "PutImage",
        json!({"repositoryName": "app", "imageManifest": m1, "imageTag": "v1"}),
    )
    .await;
    t.ok(
        "PutImage",
        json!({"repositoryName": "app", "imageManifest": m2, "imageTag": "latest"}),
    )
    .await;

    let d = t
        .ok("DescribeImages", json!({"repositoryName": "app"}))
        .await;
    let details = d["imageDetails"].as_array().expect("details");
    assert_eq!(details.len(), 2);
    let first = details
        .iter()
        .find(|x| x["imageDigest"] == json!(d1))
        .expect("d1");
    assert_eq!(first["imageTags"], json!(["v1"]));
    assert!(first["imageSizeInBytes"].as_u64().is_some_and(|s| s > 0));
    assert_eq!(
        first["artifactMediaType"],
        json!("application/vnd.docker.container.image.v1+json")
    );
    let tagged = t
        .ok(
            "DescribeImages",
            json!({"repositoryName": "app", "imageIds": [{"imageTag": "latest"}]}),
        )
        .await;
    assert_ne!(tagged["imageDetails"][0]["imageDigest"], json!(d1));
    assert_eq!(
        t.code(
            "DescribeImages",
            json!({"repositoryName": "app", "imageIds": [{"imageTag": "nope"}]})
        )
        .await,
        "ImageNotFoundException"
    );
    let listed = t.ok("ListImages", json!({"repositoryName": "app"})).await;
    assert_eq!(listed["imageIds"].as_array().map(Vec::len), Some(2));

    let got = t
        .ok("BatchGetImage", json!({"repositoryName": "app", "imageIds": [{"imageTag": "v1"}, {"imageTag": "gone"}]}))
        .await;
    assert_eq!(got["images"][0]["imageManifest"], json!(m1));
    assert_eq!(got["failures"][0]["failureCode"], json!("ImageNotFound"));

    // Immutable: moving a tag is refused, a new tag is fine.
    t.ok(
        "PutImageTagMutability",
        json!({"repositoryName": "app", "imageTagMutability": "IMMUTABLE"}),
    )
    .await;
    let e = t
        .call(
            "PutImage",
            json!({"repositoryName": "app", "imageManifest": m1, "imageTag": "latest"}),
        )
        .await
        .expect_err("immutable");
    assert_eq!(e.code, "ImageTagAlreadyExistsException");
    assert!(e
        .message
        .contains("cannot be overwritten because the repository is immutable"));
    t.ok(
        "PutImage",
        json!({"repositoryName": "app", "imageManifest": m1, "imageTag": "v2"}),
    )
    .await;
    // With exclusions, tags matching the filter stay mutable.
    t.ok(
        "PutImageTagMutability",
        json!({"repositoryName": "app", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
        "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "lat*"}]}),
    )
    .await;
    t.ok(
        "PutImage",
        json!({"repositoryName": "app", "imageManifest": m1, "imageTag": "latest"}),
    )
    .await;
    assert_eq!(
        t.code(
            "PutImage",
            json!({"repositoryName": "app", "imageManifest": m2, "imageTag": "v2"})
        )
        .await,
        "ImageTagAlreadyExistsException"
    );

    // Delete by tag (the image keeps its other tags), by digest, and failures.
    let del = t
        .ok("BatchDeleteImage", json!({"repositoryName": "app", "imageIds": [{"imageTag": "v2"}, {"imageTag": "missing"}, {}]}))
        .await;
    assert_eq!(
        del["imageIds"],
        json!([{"imageDigest": d1, "imageTag": "v2"}])
    );
    let codes: Vec<&Value> = del["failures"]
        .as_array()
        .expect("f")
        .iter()
        .map(|f| &f["failureCode"])
        .collect();
    assert_eq!(
        codes,
        vec![&json!("ImageNotFound"), &json!("MissingDigestAndTag")]
    );
    let del = t
        .ok(
            "BatchDeleteImage",
            json!({"repositoryName": "app", "imageIds": [{"imageDigest": d1}]}),
        )
        .await;
    assert_eq!(del["imageIds"].as_array().map(Vec::len), Some(2), "{del}");

    // Scans: honest and empty.
    let d2 = tagged["imageDetails"][0]["imageDigest"].clone();
    assert_eq!(
        t.code(
            "DescribeImageScanFindings",
            json!({"repositoryName": "app", "imageId": {"imageDigest": d2}})
        )
        .await,
        "ScanNotFoundException"
    );
    t.ok(
        "StartImageScan",
        json!({"repositoryName": "app", "imageId": {"imageDigest": d2}}),
    )
    .await;
    let f = t
        .ok(
            "DescribeImageScanFindings",
            json!({"repositoryName": "app", "imageId": {"imageDigest": d2}}),
        )
        .await;
    assert_eq!(f["imageScanFindings"]["findings"], json!([]));
    assert_eq!(f["imageScanStatus"]["status"], json!("COMPLETE"));
}

#[tokio::test]
async fn layers_check_availability_and_verify_digests() {
    let t = setup();
    t.ok("CreateRepository", json!({"repositoryName": "l"}))
        .await;
    let d = t.layer("l", b"some bytes").await;
    let check = t
        .ok("BatchCheckLayerAvailability", json!({"repositoryName": "l", "layerDigests": [d, format!("sha256:{}", "2".repeat(64)), "bad"]}))
        .await;
    assert_eq!(check["layers"][0]["layerAvailability"], json!("AVAILABLE"));
    assert_eq!(check["layers"][0]["layerSize"], json!(10));
    assert_eq!(
        check["failures"][0]["failureCode"],
        json!("MissingLayerDigest")
    );
    assert_eq!(
        check["failures"][1]["failureCode"],
        json!("InvalidLayerDigest")
    );

    let up = t
        .ok("InitiateLayerUpload", json!({"repositoryName": "l"}))
        .await;
    let id = up["uploadId"].clone();
    let part = |first: u64, data: &[u8]| {
        json!({"repositoryName": "l", "uploadId": id, "partFirstByte": first, "partLastByte": first + data.len() as u64 - 1,
               "layerPartBlob": base64::engine::general_purpose::STANDARD.encode(data)})
    };
    t.ok("UploadLayerPart", part(0, b"abc")).await;
    assert_eq!(
        t.code("UploadLayerPart", part(0, b"def")).await,
        "InvalidLayerPartException"
    );
    t.ok("UploadLayerPart", part(3, b"def")).await;
    assert_eq!(
        t.code("CompleteLayerUpload", json!({"repositoryName": "l", "uploadId": id, "layerDigests": [crate::blobs::Digest::of(b"abc").to_string()]})).await,
        "InvalidLayerException"
    );
    assert_eq!(
        t.code(
            "CompleteLayerUpload",
            json!({"repositoryName": "l", "uploadId": id, "layerDigests": [d]})
        )
        .await,
        "UploadNotFoundException"
    );
    assert_eq!(
        t.code("CompleteLayerUpload", json!({"repositoryName": "l", "uploadId": uuid::Uuid::new_v4().to_string(), "layerDigests": [d]})).await,
        "UploadNotFoundException"
    );
    let url = t
        .ok(
            "GetDownloadUrlForLayer",
            json!({"repositoryName": "l", "layerDigest": d}),
        )
        .await;
    let url = url["downloadUrl"].as_str().expect("url");
    assert!(
        url.starts_with(&format!("http://localhost:4566/v2/l/blobs/{d}?")),
        "{url}"
    );
    assert_eq!(
        t.code(
            "GetDownloadUrlForLayer",
            json!({"repositoryName": "l", "layerDigest": format!("sha256:{}", "3".repeat(64))})
        )
        .await,
        "LayersNotFoundException"
    );
}

#[tokio::test]
async fn authorization_tokens_open_the_registry_for_twelve_hours() {
    let t = setup();
    let out = t.ok("GetAuthorizationToken", json!({})).await;
    let data = &out["authorizationData"][0];
    assert_eq!(data["proxyEndpoint"], json!("http://localhost:4566"));
    let exp = data["expiresAt"].as_f64().expect("exp");
    assert!((exp - (t.ctx.now + 43_200.0)).abs() < 1.0);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data["authorizationToken"].as_str().expect("token"))
        .expect("b64");
    let decoded = String::from_utf8(decoded).expect("utf8");
    let password = decoded.strip_prefix("AWS:").expect("AWS:");
    let scope = t
        .ecr
        .check_password(password, t.ctx.now + 3600.0)
        .expect("valid");
    assert_eq!(scope.scope(), "000000000000/us-east-1/");
    assert!(
        t.ecr
            .check_password(password, t.ctx.now + 43_300.0)
            .is_none(),
        "expired"
    );
    assert!(
        t.ecr
            .check_password(&format!("{password}0"), t.ctx.now)
            .is_none(),
        "tampered"
    );
    assert!(t.ecr.check_password("garbage", t.ctx.now).is_none());
}

fn img(digest: char, tags: &[&str], pushed_days_ago: f64, now: f64) -> Image {
    Image {
        repository: "r".into(),
        digest: format!("sha256:{}", digest.to_string().repeat(64)),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        manifest: "{}".into(),
        media_type: manifest::DOCKER_MANIFEST.into(),
        artifact_media_type: None,
        size: 1,
        pushed_at: now - pushed_days_ago * 86_400.0,
        last_pull: None,
        blobs: vec![],
        children: vec![],
        subject: None,
        scanned_at: None,
    }
}

fn rule(priority: u32, selection: Value) -> Value {
    json!({"rulePriority": priority, "selection": selection, "action": {"type": "expire"}})
}

#[test]
fn lifecycle_policies_validate_and_evaluate_by_priority() {
    let bad = |rules: Value| parse_policy(&json!({ "rules": rules }).to_string()).is_err();
    assert!(bad(json!([rule(
        1,
        json!({"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1})
    )])));
    assert!(bad(json!([rule(
        1,
        json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 1})
    )])));
    assert!(bad(json!([
        rule(
            1,
            json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1})
        ),
        rule(
            2,
            json!({"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1})
        )
    ])));
    assert!(bad(json!([])));

    let now = 1_000_000_000.0;
    let images = vec![
        img('a', &["prod-1"], 10.0, now),
        img('b', &["prod-2"], 5.0, now),
        img('c', &["prod-3"], 1.0, now),
        img('d', &[], 3.0, now),
        img('e', &[], 0.5, now),
        img('f', &["dev-1"], 20.0, now),
        img('g', &["dev-2"], 0.1, now),
    ];
    let policy = json!({"rules": [
        rule(1, json!({"tagStatus": "tagged", "tagPrefixList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 2})),
        rule(2, json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 2})),
        rule(3, json!({"tagStatus": "tagged", "tagPatternList": ["dev-*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7})),
        rule(4, json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1})),
    ]});
    let rules = parse_policy(&policy.to_string()).expect("valid");
    let expired: Vec<(char, i64)> = evaluate(&rules, &images, now)
        .into_iter()
        .map(|(i, p)| (i.digest.chars().nth(7).unwrap_or('?'), p))
        .collect();
    // prod: keep the 2 newest (b, c), expire a; untagged older than 2 days: d; dev older than
    // 7 days: f. The any-rule cannot touch images the earlier rules selected (all of them).
    assert_eq!(expired, vec![('a', 1), ('d', 2), ('f', 3)]);
}

#[tokio::test]
async fn lifecycle_policy_api_preview_and_application() {
    let t = setup();
    t.ok("CreateRepository", json!({"repositoryName": "lc"}))
        .await;
    for i in 0..3 {
        let m = t.manifest("lc", &format!("img{i}")).await;
        t.ok(
            "PutImage",
            json!({"repositoryName": "lc", "imageManifest": m, "imageTag": format!("v{i}")}),
        )
        .await;
    }
    assert_eq!(
        t.code("GetLifecyclePolicy", json!({"repositoryName": "lc"}))
            .await,
        "LifecyclePolicyNotFoundException"
    );
    let policy = json!({"rules": [rule(1, json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}))]}).to_string();
    assert_eq!(
        t.code(
            "PutLifecyclePolicy",
            json!({"repositoryName": "lc", "lifecyclePolicyText": policy.replace("any", "some")})
        )
        .await,
        "InvalidParameterException"
    );
    t.ok(
        "PutLifecyclePolicy",
        json!({"repositoryName": "lc", "lifecyclePolicyText": policy}),
    )
    .await;
    let got = t
        .ok("GetLifecyclePolicy", json!({"repositoryName": "lc"}))
        .await;
    assert_eq!(got["lifecyclePolicyText"], json!(policy));
    let start = t
        .ok(
            "StartLifecyclePolicyPreview",
            json!({"repositoryName": "lc"}),
        )
        .await;
    assert_eq!(start["status"], json!("IN_PROGRESS"));
    let preview = t
        .ok("GetLifecyclePolicyPreview", json!({"repositoryName": "lc"}))
        .await;
    assert_eq!(preview["status"], json!("COMPLETE"));
    assert_eq!(preview["summary"]["expiringImageTotalCount"], json!(2));
    assert_eq!(
        preview["previewResults"][0]["action"]["type"],
        json!("EXPIRE")
    );

    assert_eq!(t.ecr.apply_lifecycle(t.ecr.clock.now()), 2);
    let left = t
        .ok("DescribeImages", json!({"repositoryName": "lc"}))
        .await;
    assert_eq!(left["imageDetails"][0]["imageTags"], json!(["v2"]));
    let got = t
        .ok("GetLifecyclePolicy", json!({"repositoryName": "lc"}))
        .await;
    assert!(got["lastEvaluatedAt"].is_number());
    t.ok("DeleteLifecyclePolicy", json!({"repositoryName": "lc"}))
        .await;

    // Garbage collection keeps the blobs the remaining image needs.
    let r = t.ecr.collect_garbage().await.expect("gc");
    assert_eq!(r.removed, 0);
}

#[tokio::test]
async fn registry_settings_are_stored() {
    let t = setup();
    assert_eq!(
        t.code("GetRegistryPolicy", json!({})).await,
        "RegistryPolicyNotFoundException"
    );
    t.ok(
        "PutRegistryPolicy",
        json!({"policyText": json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"}, "Action": "ecr:ReplicateImage", "Resource": "arn:aws:ecr:us-east-1:000000000000:repository/*"}]}).to_string()}),
    )
    .await;
    assert!(t.ok("GetRegistryPolicy", json!({})).await["policyText"].is_string());
    let conf = json!({"rules": [{"destinations": [{"region": "eu-west-1", "registryId": "000000000000"}]}]});
    t.ok(
        "PutReplicationConfiguration",
        json!({"replicationConfiguration": conf}),
    )
    .await;
    let reg = t.ok("DescribeRegistry", json!({})).await;
    assert_eq!(reg["replicationConfiguration"], conf);
    t.ok(
        "CreatePullThroughCacheRule",
        json!({"ecrRepositoryPrefix": "hub", "upstreamRegistryUrl": "registry-1.docker.io"}),
    )
    .await;
    assert_eq!(
        t.code(
            "CreatePullThroughCacheRule",
            json!({"ecrRepositoryPrefix": "hub", "upstreamRegistryUrl": "registry-1.docker.io"})
        )
        .await,
        "PullThroughCacheRuleAlreadyExistsException"
    );
    let rules = t.ok("DescribePullThroughCacheRules", json!({})).await;
    assert_eq!(
        rules["pullThroughCacheRules"][0]["upstreamRegistry"],
        json!("docker-hub")
    );
    assert!(t
        .ecr
        .pull_through_rule("000000000000/us-east-1/", "hub/library/nginx")
        .is_some());
    assert!(t
        .ecr
        .pull_through_rule("000000000000/us-east-1/", "hubx/nginx")
        .is_none());
    t.ok(
        "DeletePullThroughCacheRule",
        json!({"ecrRepositoryPrefix": "hub"}),
    )
    .await;
    assert_eq!(
        t.code(
            "DeletePullThroughCacheRule",
            json!({"ecrRepositoryPrefix": "hub"})
        )
        .await,
        "PullThroughCacheRuleNotFoundException"
    );
}

#[test]
fn wildcards_match_whole_tags() {
    assert!(wildcard("v*", "v1.2"));
    assert!(wildcard("*-rc*", "1.0-rc2"));
    assert!(!wildcard("v*", "latest"));
    assert!(wildcard("latest", "latest"));
    assert!(!wildcard("late", "latest"));
}

/// KMS without a key names the AWS managed key by its `key/<uuid>` ARN (the same key for every
/// repository of the registry), never the alias.
#[tokio::test]
async fn kms_without_a_key_reports_the_aws_managed_key_arn() {
    let t = setup();
    let mut keys = Vec::new();
    for name in ["kms-a", "kms-b"] {
        let out = t
            .ok(
                "CreateRepository",
                json!({"repositoryName": name, "encryptionConfiguration": {"encryptionType": "KMS"}}),
            )
            .await;
        keys.push(
            out["repository"]["encryptionConfiguration"]["kmsKey"]
                .as_str()
                .expect("kmsKey")
                .to_string(),
        );
    }
    let id = keys[0]
        .strip_prefix("arn:aws:kms:us-east-1:000000000000:key/")
        .expect("a key/<uuid> ARN");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id} is a uuid");
    assert_eq!(keys[0], keys[1]);
    let own = "arn:aws:kms:us-east-1:000000000000:key/11111111-2222-3333-4444-555555555555";
    let out = t
        .ok(
            "CreateRepository",
            json!({"repositoryName": "kms-c", "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": own}}),
        )
        .await;
    assert_eq!(
        out["repository"]["encryptionConfiguration"]["kmsKey"],
        json!(own)
    );
}

/// Replicating to the source registry itself (same Region and account) is refused.
#[tokio::test]
async fn replication_to_the_source_registry_is_refused() {
    let t = setup();
    let err = t
        .call(
            "PutReplicationConfiguration",
            json!({"replicationConfiguration": {"rules": [{"destinations": [
                {"region": "eu-west-1", "registryId": "000000000000"},
                {"region": "us-east-1", "registryId": "000000000000"}]}]}}),
        )
        .await
        .expect_err("to itself");
    assert_eq!(err.code, "InvalidParameterException");
    assert_eq!(
        err.resolve(crate::protocol::model::model("ecr")).status,
        400
    );
    assert_eq!(err.message, "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'Replication destination cannot be the same as the source registry'");
    let reg = t.ok("DescribeRegistry", json!({})).await;
    assert_eq!(reg["replicationConfiguration"], json!({"rules": []}));
    // Another account in the same Region is a destination.
    t.ok(
        "PutReplicationConfiguration",
        json!({"replicationConfiguration": {"rules": [{"destinations": [
            {"region": "us-east-1", "registryId": "210987654321"}]}]}}),
    )
    .await;
}

/// BatchGetRepositoryScanningConfiguration applies the registry's scanning rules: the rules whose
/// filters match decide (continuous before scan on push), no match is MANUAL; without registry
/// rules the repository's scanOnPush does.
#[tokio::test]
async fn repository_scanning_follows_the_registry_rules() {
    let t = setup();
    t.ok(
        "CreateRepository",
        json!({"repositoryName": "prod-api", "imageScanningConfiguration": {"scanOnPush": true}}),
    )
    .await;
    t.ok("CreateRepository", json!({"repositoryName": "dev-api"}))
        .await;
    let get = |names: Value| {
        t.ok(
            "BatchGetRepositoryScanningConfiguration",
            json!({"repositoryNames": names}),
        )
    };
    let out = get(json!(["prod-api", "dev-api"])).await;
    let c = &out["scanningConfigurations"];
    assert_eq!(c[0]["scanFrequency"], json!("SCAN_ON_PUSH"));
    assert_eq!(c[0]["scanOnPush"], json!(true));
    assert_eq!(c[1]["scanFrequency"], json!("MANUAL"));
    assert_eq!(c[1]["appliedScanFilters"], json!([]));
    t.ok(
        "PutRegistryScanningConfiguration",
        json!({"scanType": "ENHANCED", "rules": [
            {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "*-api", "filterType": "WILDCARD"}]},
            {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "prod-*", "filterType": "WILDCARD"}]}]}),
    )
    .await;
    t.ok("CreateRepository", json!({"repositoryName": "tools"}))
        .await;
    let out = get(json!(["prod-api", "dev-api", "tools", "missing"])).await;
    let c = &out["scanningConfigurations"];
    assert_eq!(c[0]["scanFrequency"], json!("CONTINUOUS_SCAN"));
    assert_eq!(
        c[0]["appliedScanFilters"],
        json!([{"filter": "prod-*", "filterType": "WILDCARD"}])
    );
    assert_eq!(c[1]["scanFrequency"], json!("SCAN_ON_PUSH"));
    assert_eq!(c[1]["scanOnPush"], json!(true));
    assert_eq!(
        c[1]["appliedScanFilters"],
        json!([{"filter": "*-api", "filterType": "WILDCARD"}])
    );
    assert_eq!(c[2]["scanFrequency"], json!("MANUAL"));
    assert_eq!(c[2]["scanOnPush"], json!(false));
    assert_eq!(
        out["failures"][0]["failureCode"],
        json!("REPOSITORY_NOT_FOUND")
    );
}

/// A policy naming an IAM role that does not exist is refused as ECR refuses it (400
/// InvalidParameterException, "Principal not found"); once the role exists it is accepted.
/// Account principals and `*` need no IAM entity.
#[tokio::test]
async fn policies_naming_a_missing_role_are_refused() {
    let t = setup();
    t.ok("CreateRepository", json!({"repositoryName": "app"}))
        .await;
    let role = "arn:aws:iam::000000000000:role/puller";
    let policy = |principal: &str| {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::123456789012:root", principal]},
            "Action": "ecr:BatchGetImage"}]})
        .to_string()
    };
    let not_found =
        "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Principal not found'";
    let e = t
        .call(
            "SetRepositoryPolicy",
            json!({"repositoryName": "app", "policyText": policy(role)}),
        )
        .await
        .expect_err("a missing role");
    let model = crate::protocol::model::model("ecr");
    assert_eq!(
        (
            e.code.to_string(),
            e.resolve(model).status,
            e.message.as_str()
        ),
        ("InvalidParameterException".to_string(), 400, not_found)
    );
    let e = t
        .call("PutRegistryPolicy", json!({"policyText": policy(role)}))
        .await
        .expect_err("a missing role");
    assert_eq!(e.message, not_found);
    let iam = t.r.get("iam", "CreateRole").expect("CreateRole").clone();
    iam.call(
        t.ctx.clone(),
        json!({"RoleName": "puller", "AssumeRolePolicyDocument": json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}).to_string()}),
    )
    .await
    .expect("CreateRole");
    t.ok(
        "SetRepositoryPolicy",
        json!({"repositoryName": "app", "policyText": policy(role)}),
    )
    .await;
    t.ok(
        "SetRepositoryPolicy",
        json!({"repositoryName": "app", "policyText": policy("*")}),
    )
    .await;
}
