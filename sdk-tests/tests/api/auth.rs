//! --strict-auth: SigV4 signatures are verified against --auth-keys.

use crate::status;
use aws_sdk_ecs::error::ProvideErrorMetadata;
use sdk_tests::Emulator;

#[tokio::test]
async fn strict_auth_accepts_the_right_key_and_rejects_others() {
    let emu = Emulator::start_with(&["--strict-auth"]);

    // awsJson, signed with test/test: accepted.
    emu.ecs()
        .list_clusters()
        .send()
        .await
        .expect("a request signed with test/test");
    // The ec2 query protocol (a signed form body): accepted.
    let vpcs = emu
        .ec2()
        .describe_vpcs()
        .send()
        .await
        .expect("EC2 signed with test/test");
    assert!(!vpcs.vpcs().is_empty());

    // The right key with a wrong secret: SignatureDoesNotMatch, 403.
    let err = emu
        .ecs_with("test", "wrong-secret", |b| b)
        .list_clusters()
        .send()
        .await
        .expect_err("a wrong secret must be rejected");
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"), "{err:?}");
    assert_eq!(status(&err), Some(403));

    // An access key not in --auth-keys: UnrecognizedClientException, 403.
    let err = emu
        .ecs_with("AKIDUNKNOWN", "test", |b| b)
        .list_clusters()
        .send()
        .await
        .expect_err("an unknown key must be rejected");
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");
    assert_eq!(status(&err), Some(403));

    // The same over the ec2 protocol: the error is a <Response><Errors> the SDK decodes.
    let err = emu
        .ec2_with("test", "wrong-secret", |b| b)
        .describe_vpcs()
        .send()
        .await
        .expect_err("a wrong secret over ec2 query");
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"), "{err:?}");
    assert_eq!(status(&err), Some(403));

    // And over awsQuery (ELBv2; its handlers need not exist: auth comes first).
    let err = emu
        .elbv2_with("AKIDUNKNOWN", "test", |b| b)
        .describe_load_balancers()
        .send()
        .await
        .expect_err("an unknown key over query");
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");
    assert_eq!(status(&err), Some(403));

    // Unsigned requests are refused too.
    let r = emu.raw(
        "POST",
        "/",
        &[
            (
                "X-Amz-Target",
                "AmazonEC2ContainerServiceV20141113.ListClusters",
            ),
            ("Content-Type", "application/x-amz-json-1.1"),
        ],
        b"{}",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["__type"], "MissingAuthenticationToken");
}

#[tokio::test]
async fn strict_auth_verifies_cbor_and_gzip_bodies() {
    let emu = Emulator::start_with(&["--strict-auth"]);
    // The signature covers the gzip body as sent.
    let cw = emu.cloudwatch_with("test", "test", |b| {
        b.request_min_compression_size_bytes(0_u32)
    });
    cw.put_metric_data()
        .namespace("Auth/Test")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("Signed")
                .value(1.0)
                .build(),
        )
        .send()
        .await
        .expect("signed, compressed rpcv2-cbor PutMetricData");
    let listed = cw
        .list_metrics()
        .namespace("Auth/Test")
        .send()
        .await
        .expect("signed rpcv2-cbor ListMetrics");
    assert_eq!(listed.metrics().len(), 1);

    let err = emu
        .cloudwatch_with("test", "nope", |b| b)
        .list_metrics()
        .send()
        .await
        .expect_err("a wrong secret over rpcv2-cbor");
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"), "{err:?}");
    assert_eq!(crate::status(&err), Some(403));
}

#[tokio::test]
async fn without_strict_auth_any_key_is_accepted() {
    let emu = Emulator::start();
    emu.ecs_with("anything", "whatever", |b| b)
        .list_clusters()
        .send()
        .await
        .expect("any credentials work without --strict-auth");
}

/// The query-protocol error code in an XML error body.
fn xml_code(r: &sdk_tests::RawResponse) -> String {
    let t = r.text();
    t.split("<Code>")
        .nth(1)
        .and_then(|s| s.split("</Code>").next())
        .unwrap_or_default()
        .to_string()
}

fn with_signature<'a>(
    base: &[(&'a str, &'a str)],
    signed: &'a [(String, String)],
) -> Vec<(&'a str, &'a str)> {
    let mut all = base.to_vec();
    all.extend(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    all
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const CALLER_IDENTITY: &[u8] = b"Action=GetCallerIdentity&Version=2011-06-15";
const CREATE_ROLE: &[u8] =
    b"Action=CreateRole&Version=2010-05-08&RoleName=replayed&AssumeRolePolicyDocument=%7B%7D";

/// A captured signature authorizes its own request only: the body, the service and the region
/// are covered, and `x-amz-content-sha256` cannot vouch for another body.
#[tokio::test]
async fn strict_auth_signatures_cover_the_body_service_and_region() {
    let emu = Emulator::start_with(&["--strict-auth"]);
    let port = emu.port();
    let sts = sdk_tests::Signing::new("sts");
    let signed = sdk_tests::sign(port, "POST", "/", &[FORM], CALLER_IDENTITY, &sts);
    let r = emu.raw(
        "POST",
        "/",
        &with_signature(&[FORM], &signed),
        CALLER_IDENTITY,
    );
    assert_eq!(r.status, 200, "the signed request itself: {}", r.text());

    // The STS signature replayed with an IAM CreateRole body, its hash claimed unsigned, or the
    // original body's hash claimed: refused, and no role is created.
    let original_hash = sdk_tests::sha256_hex(CALLER_IDENTITY);
    for claimed in [None, Some("UNSIGNED-PAYLOAD"), Some(original_hash.as_str())] {
        let mut headers = with_signature(&[FORM], &signed);
        if let Some(c) = claimed {
            headers.push(("x-amz-content-sha256", c));
        }
        let r = emu.raw("POST", "/", &headers, CREATE_ROLE);
        assert_eq!(r.status, 403, "{claimed:?}: {}", r.text());
        assert_eq!(xml_code(&r), "SignatureDoesNotMatch", "{claimed:?}");
    }
    let err = emu
        .iam()
        .get_role()
        .role_name("replayed")
        .send()
        .await
        .expect_err("no role was created");
    assert_eq!(err.code(), Some("NoSuchEntity"), "{err:?}");

    // Within one service: a signed ListClusters (its x-amz-content-sha256 signed too) replayed
    // with a CreateCluster body.
    let ecs = sdk_tests::Signing::new("ecs");
    let json = ("Content-Type", "application/x-amz-json-1.1");
    let list = (
        "X-Amz-Target",
        "AmazonEC2ContainerServiceV20141113.ListClusters",
    );
    let create = (
        "X-Amz-Target",
        "AmazonEC2ContainerServiceV20141113.CreateCluster",
    );
    let list_hash = sdk_tests::sha256_hex(b"{}");
    let content_sha = ("x-amz-content-sha256", list_hash.as_str());
    let signed = sdk_tests::sign(port, "POST", "/", &[json, create, content_sha], b"{}", &ecs);
    let r = emu.raw(
        "POST",
        "/",
        &with_signature(&[json, create, content_sha], &signed),
        br#"{"clusterName":"replayed"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["__type"], "XAmzContentSHA256Mismatch");
    let r = emu.raw(
        "POST",
        "/",
        &with_signature(&[json, create], &signed),
        br#"{"clusterName":"replayed"}"#,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["__type"], "SignatureDoesNotMatch");
    let clusters = emu.ecs().list_clusters().send().await.expect("list");
    assert!(clusters.cluster_arns().is_empty(), "{clusters:?}");

    // The scope must name the routed service and a known region.
    let as_ecr = sdk_tests::Signing {
        service: "ecr".into(),
        ..ecs.clone()
    };
    let signed = sdk_tests::sign(port, "POST", "/", &[json, list], b"{}", &as_ecr);
    let r = emu.raw("POST", "/", &with_signature(&[json, list], &signed), b"{}");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["__type"], "InvalidSignatureException");
    assert!(
        r.text().contains("scoped to correct service: 'ecs'"),
        "{}",
        r.text()
    );
    let on_mars = sdk_tests::Signing {
        region: "mars-north-1".into(),
        ..ecs.clone()
    };
    let signed = sdk_tests::sign(port, "POST", "/", &[json, list], b"{}", &on_mars);
    let r = emu.raw("POST", "/", &with_signature(&[json, list], &signed), b"{}");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("valid region"), "{}", r.text());
    // Another known region is fine (the request acts there).
    let eu = sdk_tests::Signing {
        region: "eu-west-1".into(),
        ..ecs.clone()
    };
    let signed = sdk_tests::sign(port, "POST", "/", &[json, list], b"{}", &eu);
    let r = emu.raw("POST", "/", &with_signature(&[json, list], &signed), b"{}");
    assert_eq!(r.status, 200, "{}", r.text());
}

/// X-Amz-Date within 15 minutes of the emulator clock; presigned URLs within X-Amz-Expires.
#[tokio::test]
async fn strict_auth_checks_the_request_time() {
    use std::time::{Duration, SystemTime};
    let emu = Emulator::start_with(&["--strict-auth"]);
    let port = emu.port();
    let json = ("Content-Type", "application/x-amz-json-1.1");
    let list = (
        "X-Amz-Target",
        "AmazonEC2ContainerServiceV20141113.ListClusters",
    );
    let at = |t: SystemTime| sdk_tests::Signing {
        time: t,
        ..sdk_tests::Signing::new("ecs")
    };
    let now = SystemTime::now();
    for (time, ok, needle) in [
        (
            now - Duration::from_secs(20 * 60),
            false,
            "Signature expired",
        ),
        (
            now + Duration::from_secs(20 * 60),
            false,
            "Signature not yet current",
        ),
        (now - Duration::from_secs(10 * 60), true, ""),
    ] {
        let signed = sdk_tests::sign(port, "POST", "/", &[json, list], b"{}", &at(time));
        let r = emu.raw("POST", "/", &with_signature(&[json, list], &signed), b"{}");
        if ok {
            assert_eq!(r.status, 200, "{}", r.text());
        } else {
            assert_eq!(r.status, 403, "{}", r.text());
            assert_eq!(r.json()["__type"], "InvalidSignatureException");
            assert!(r.text().contains(needle), "{}", r.text());
        }
    }
    // EC2 says RequestExpired.
    let body = b"Action=DescribeVpcs&Version=2016-11-15";
    let old = sdk_tests::Signing {
        time: now - Duration::from_secs(20 * 60),
        ..sdk_tests::Signing::new("ec2")
    };
    let signed = sdk_tests::sign(port, "POST", "/", &[FORM], body, &old);
    let r = emu.raw("POST", "/", &with_signature(&[FORM], &signed), body);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(xml_code(&r), "RequestExpired");

    // A presigned STS GetCallerIdentity: valid within its X-Amz-Expires, not after.
    let path = "/?Action=GetCallerIdentity&Version=2011-06-15";
    let sts = sdk_tests::Signing::new("sts");
    let fresh = sdk_tests::presign(port, path, Duration::from_secs(300), &sts);
    let r = emu.raw("GET", &fresh, &[], b"");
    assert_eq!(r.status, 200, "{fresh}: {}", r.text());
    let stale = sdk_tests::Signing {
        time: now - Duration::from_secs(600),
        ..sts.clone()
    };
    let expired = sdk_tests::presign(port, path, Duration::from_secs(60), &stale);
    let r = emu.raw("GET", &expired, &[], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("Request has expired"), "{}", r.text());
    // The presigned URL covers its query: another action with the same signature fails.
    let tampered = fresh.replace("GetCallerIdentity", "GetSessionToken");
    let r = emu.raw("GET", &tampered, &[], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(xml_code(&r), "SignatureDoesNotMatch");
}

/// The skew is measured in emulator time: with --time-scale the emulator's clock runs ahead, a
/// request signed with the real time is refused, and the SDKs (which correct their clock from
/// the `Date` of every answer) keep working.
#[tokio::test]
async fn strict_auth_time_is_the_emulator_clock() {
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
    let emu = Emulator::start_with(&["--strict-auth", "--time-scale", "200"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = emu.raw("GET", "/_emulator/state", &[], b"").json();
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("epoch")
            .as_secs_f64();
        if state["now"].as_f64().expect("now") - real > 20.0 * 60.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the emulator clock never ran ahead"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let json = ("Content-Type", "application/x-amz-json-1.1");
    let list = (
        "X-Amz-Target",
        "AmazonEC2ContainerServiceV20141113.ListClusters",
    );
    let signed = sdk_tests::sign(
        emu.port(),
        "POST",
        "/",
        &[json, list],
        b"{}",
        &sdk_tests::Signing::new("ecs"),
    );
    let r = emu.raw("POST", "/", &with_signature(&[json, list], &signed), b"{}");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("Signature expired"), "{}", r.text());
    assert!(r.header("date").is_some());
    emu.ecs()
        .list_clusters()
        .send()
        .await
        .expect("the SDK corrects its clock from the emulator's Date");
}

/// Under --strict-auth the control API takes the admin token; health stays open.
#[tokio::test]
async fn strict_auth_control_api_takes_the_admin_token() {
    let emu = Emulator::start_with(&["--strict-auth", "--admin-token", "s3cret-token"]);
    let port = emu.port();
    for (method, path) in [
        ("GET", "/_emulator/state"),
        ("POST", "/_emulator/reset"),
        ("GET", "/_emulator/"),
        ("GET", "/_emulator/summary"),
    ] {
        let r = sdk_tests::http(port, method, path, &[], b"");
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
        let r = sdk_tests::http(port, method, path, &[("Authorization", "Bearer nope")], b"");
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
    }
    let r = sdk_tests::http(port, "GET", "/_emulator/health", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = sdk_tests::http(
        port,
        "GET",
        "/_emulator/state",
        &[("Authorization", "Bearer s3cret-token")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // The dashboard: ?token= sets a cookie its links then carry.
    let r = sdk_tests::http(port, "GET", "/_emulator/?token=s3cret-token", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = r.header("set-cookie").expect("a cookie").to_string();
    let pair = cookie.split(';').next().expect("pair");
    let r = sdk_tests::http(port, "GET", "/_emulator/summary", &[("Cookie", pair)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    // The CLI sends it too.
    let out = std::process::Command::new(sdk_tests::binary())
        .args([
            "status",
            "--endpoint",
            &emu.endpoint(),
            "--admin-token",
            "s3cret-token",
        ])
        .output()
        .expect("run ecs-emulator status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(sdk_tests::binary())
        .args(["status", "--endpoint", &emu.endpoint()])
        .env_remove("ECS_EMULATOR_ADMIN_TOKEN")
        .output()
        .expect("run ecs-emulator status");
    assert!(!out.status.success());
}

/// Without --admin-token, --strict-auth makes one up and prints it at start.
#[tokio::test]
async fn strict_auth_prints_a_generated_admin_token() {
    let emu = Emulator::start_with(&["--strict-auth", "--admin-token", ""]);
    let log = emu.log();
    let token = log
        .lines()
        .find_map(|l| l.split("(the control API, /_emulator/*): ").nth(1))
        .unwrap_or_else(|| panic!("no admin token line in the log:\n{log}"))
        .trim()
        .to_string();
    assert!(token.len() >= 32, "{token}");
    let bearer = format!("Bearer {token}");
    let r = sdk_tests::http(emu.port(), "GET", "/_emulator/state", &[], b"");
    assert_eq!(r.status, 401);
    let r = sdk_tests::http(
        emu.port(),
        "GET",
        "/_emulator/state",
        &[("Authorization", bearer.as_str())],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Temporary credentials STS issued sign requests too, with their own session token only.
#[tokio::test]
async fn strict_auth_accepts_credentials_sts_issued() {
    let emu = Emulator::start_with(&["--strict-auth"]);
    let creds = emu
        .sts()
        .get_session_token()
        .send()
        .await
        .expect("GetSessionToken")
        .credentials
        .expect("credentials");
    let with_token = |token: &str| {
        let (ak, sk) = (creds.access_key_id(), creds.secret_access_key());
        let token = token.to_string();
        emu.sts_with(ak, sk, move |b| {
            b.credentials_provider(aws_sdk_sts::config::Credentials::new(
                ak,
                sk,
                Some(token),
                None,
                "session",
            ))
        })
    };
    with_token(creds.session_token())
        .get_caller_identity()
        .send()
        .await
        .expect("signed with the session's credentials");
    let err = with_token("not-the-token")
        .get_caller_identity()
        .send()
        .await
        .expect_err("another session token");
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");
    assert_eq!(status(&err), Some(403));
}
