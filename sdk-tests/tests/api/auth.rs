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
