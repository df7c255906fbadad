//! rpcv2-cbor through aws-sdk-cloudwatch (and Cloud Map's error decoding).

use crate::{assert_not_implemented, status};
use aws_sdk_cloudwatch::config::ConfigBag;
use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, DimensionFilter, MetricDatum, StandardUnit, Statistic};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use sdk_tests::{implemented, Emulator};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// (smithy-protocol, content-encoding, content-type) of one request.
type Sent = (Option<String>, Option<String>, Option<String>);

/// Records the protocol headers of every request the client sends.
#[derive(Debug, Default, Clone)]
struct Recorder(Arc<Mutex<Vec<Sent>>>);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let h = context.request().headers();
        let get = |k: &str| h.get(k).map(str::to_string);
        if let Ok(mut seen) = self.0.lock() {
            seen.push((
                get("smithy-protocol"),
                get("content-encoding"),
                get("content-type"),
            ));
        }
        Ok(())
    }
}

/// Now, truncated to the minute, as the SDK's DateTime.
fn this_minute() -> DateTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    DateTime::from_secs((now - now % 60) as i64)
}

fn secs(dt: &DateTime, delta: i64) -> DateTime {
    DateTime::from_secs(dt.secs() + delta)
}

#[tokio::test]
async fn put_metric_data_then_list_metrics_and_statistics() {
    let emu = Emulator::start();
    let recorder = Recorder::default();
    let rec = recorder.clone();
    let cw = emu.cloudwatch_with("test", "test", move |b| b.interceptor(rec));
    let ts = this_minute();
    let dim = Dimension::builder()
        .name("ServiceName")
        .value("web")
        .build();
    let mut put = cw.put_metric_data().namespace("Test/App");
    for v in [10.0, 20.0, 30.0] {
        put = put.metric_data(
            MetricDatum::builder()
                .metric_name("Latency")
                .dimensions(dim.clone())
                .timestamp(ts)
                .value(v)
                .unit(StandardUnit::Milliseconds)
                .build(),
        );
    }
    put.send().await.expect("PutMetricData");
    cw.put_metric_data()
        .namespace("Other/NS")
        .metric_data(
            MetricDatum::builder()
                .metric_name("Count")
                .timestamp(ts)
                .value(1.0)
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData Other/NS");

    let listed = cw
        .list_metrics()
        .namespace("Test/App")
        .send()
        .await
        .expect("ListMetrics");
    assert_eq!(listed.metrics().len(), 1, "{listed:?}");
    let m = &listed.metrics()[0];
    assert_eq!(m.namespace(), Some("Test/App"));
    assert_eq!(m.metric_name(), Some("Latency"));
    assert_eq!(m.dimensions(), std::slice::from_ref(&dim));

    let by_dim = cw
        .list_metrics()
        .dimensions(
            DimensionFilter::builder()
                .name("ServiceName")
                .value("web")
                .build(),
        )
        .send()
        .await
        .expect("ListMetrics by dimension");
    assert_eq!(by_dim.metrics().len(), 1, "{by_dim:?}");
    let all = cw.list_metrics().send().await.expect("ListMetrics");
    assert_eq!(all.metrics().len(), 2, "{all:?}");

    let stats = cw
        .get_metric_statistics()
        .namespace("Test/App")
        .metric_name("Latency")
        .dimensions(dim.clone())
        .start_time(secs(&ts, -600))
        .end_time(secs(&ts, 60))
        .period(60)
        .statistics(Statistic::Sum)
        .statistics(Statistic::Average)
        .statistics(Statistic::Minimum)
        .statistics(Statistic::Maximum)
        .statistics(Statistic::SampleCount)
        .send()
        .await
        .expect("GetMetricStatistics");
    assert_eq!(stats.label(), Some("Latency"));
    assert_eq!(stats.datapoints().len(), 1, "{stats:?}");
    let d = &stats.datapoints()[0];
    assert_eq!(d.timestamp(), Some(&ts));
    assert_eq!(d.sum(), Some(60.0));
    assert_eq!(d.average(), Some(20.0));
    assert_eq!(d.minimum(), Some(10.0));
    assert_eq!(d.maximum(), Some(30.0));
    assert_eq!(d.sample_count(), Some(3.0));
    assert_eq!(d.unit(), Some(&StandardUnit::Milliseconds));

    // Without the dimension it is another metric: no data.
    let none = cw
        .get_metric_statistics()
        .namespace("Test/App")
        .metric_name("Latency")
        .start_time(secs(&ts, -600))
        .end_time(secs(&ts, 60))
        .period(60)
        .statistics(Statistic::Sum)
        .send()
        .await
        .expect("GetMetricStatistics without dimensions");
    assert!(none.datapoints().is_empty(), "{none:?}");

    // The SDK really spoke rpcv2-cbor.
    let seen = recorder.0.lock().expect("lock").clone();
    assert!(!seen.is_empty());
    for (proto, _, ctype) in &seen {
        assert_eq!(proto.as_deref(), Some("rpc-v2-cbor"));
        assert_eq!(ctype.as_deref(), Some("application/cbor"));
    }
}

#[tokio::test]
async fn put_metric_data_gzip_compressed() {
    let emu = Emulator::start();
    let recorder = Recorder::default();
    let rec = recorder.clone();
    let cw = emu.cloudwatch_with("test", "test", move |b| {
        b.request_min_compression_size_bytes(0_u32)
            .disable_request_compression(false)
            .interceptor(rec)
    });
    cw.put_metric_data()
        .namespace("Gzip/Test")
        .metric_data(
            MetricDatum::builder()
                .metric_name("Compressed")
                .timestamp(this_minute())
                .value(42.0)
                .build(),
        )
        .send()
        .await
        .expect("compressed PutMetricData");
    let seen = recorder.0.lock().expect("lock").clone();
    assert_eq!(
        seen.first().and_then(|s| s.1.as_deref()),
        Some("gzip"),
        "the client must have sent a gzip body: {seen:?}"
    );

    let listed = emu
        .cloudwatch()
        .list_metrics()
        .namespace("Gzip/Test")
        .send()
        .await
        .expect("ListMetrics");
    let names: Vec<_> = listed
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    assert_eq!(names, vec!["Compressed"]);
}

#[tokio::test]
async fn cloudwatch_errors_carry_the_query_code() {
    let emu = Emulator::start();
    let cw = emu.cloudwatch();
    // StartTime after EndTime: InvalidParameterValueException, query code InvalidParameterValue
    // (the SDK reads it from x-amzn-query-error).
    let err = cw
        .get_metric_statistics()
        .namespace("Test/App")
        .metric_name("Latency")
        .start_time(this_minute())
        .end_time(secs(&this_minute(), -3600))
        .period(60)
        .statistics(Statistic::Sum)
        .send()
        .await
        .expect_err("StartTime after EndTime");
    assert_eq!(err.code(), Some("InvalidParameterValue"), "{err:?}");
    assert_eq!(status(&err), Some(400));
    assert!(
        err.into_service_error()
            .is_invalid_parameter_value_exception(),
        "typed InvalidParameterValueException"
    );
}

#[tokio::test]
async fn cloud_map_cbor_error_decoding() {
    let emu = Emulator::start();
    let sd = emu.servicediscovery();
    if implemented("servicediscovery", "GetNamespace") {
        let err = sd
            .get_namespace()
            .id("ns-0000000000000000")
            .send()
            .await
            .expect_err("an unknown namespace");
        assert_eq!(err.code(), Some("NamespaceNotFound"), "{err:?}");
        assert!(err.into_service_error().is_namespace_not_found());
    } else {
        let err = sd
            .get_namespace()
            .id("ns-0000000000000000")
            .send()
            .await
            .expect_err("not implemented yet");
        assert_not_implemented(&err, "GetNamespace");
    }
}

/// CloudWatch speaks three protocols: a metric put over rpcv2-cbor is listed over query (AWS CLI v1,
/// older boto3) and over awsJson 1.0 with x-amzn-query-mode (boto3 ≥ 1.42.7, CLI v2).
#[tokio::test]
async fn cloudwatch_metric_is_listed_over_query_and_json() {
    let emu = Emulator::start();
    emu.cloudwatch()
        .put_metric_data()
        .namespace("Proto/Test")
        .metric_data(
            MetricDatum::builder()
                .metric_name("Hits")
                .dimensions(Dimension::builder().name("Svc").value("a").build())
                .value(5.0)
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData");

    let r = emu.raw(
        "POST",
        "/",
        &[(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        b"Action=ListMetrics&Version=2010-08-01&Namespace=Proto%2FTest",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let xml = r.text();
    assert!(
        xml.contains(
            r#"<ListMetricsResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">"#
        ),
        "{xml}"
    );
    assert!(xml.contains("<ListMetricsResult>"), "{xml}");
    assert!(xml.contains("<MetricName>Hits</MetricName>"), "{xml}");
    assert!(xml.contains("<Namespace>Proto/Test</Namespace>"), "{xml}");
    assert!(
        xml.contains("<Name>Svc</Name>") && xml.contains("<Value>a</Value>"),
        "{xml}"
    );
    assert!(xml.contains("<RequestId>"), "{xml}");

    let r = emu.raw(
        "POST",
        "/",
        &[
            ("X-Amz-Target", "GraniteServiceVersion20100801.ListMetrics"),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-query-mode", "true"),
        ],
        br#"{"Namespace":"Proto/Test"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["Metrics"],
        serde_json::json!([{"Namespace": "Proto/Test", "MetricName": "Hits", "Dimensions": [{"Name": "Svc", "Value": "a"}]}]),
        "{v}"
    );

    // An error over awsJson 1.0 carries the query code in x-amzn-query-error.
    let r = emu.raw(
        "POST",
        "/",
        &[
            ("X-Amz-Target", "GraniteServiceVersion20100801.ListMetrics"),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-query-mode", "true"),
        ],
        br#"{"RecentlyActive":"bogus"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("InvalidParameterValue;Sender"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.json()["__type"], "InvalidParameterValueException");
}

/// A CBOR body is one data item: bytes after it are refused, not ignored.
#[tokio::test]
async fn cbor_with_trailing_bytes_is_refused() {
    let emu = Emulator::start();
    let mut body = Vec::new();
    ciborium::ser::into_writer(
        &ciborium::value::Value::Map(vec![(
            ciborium::value::Value::Text("Namespace".into()),
            ciborium::value::Value::Text("Trailing/Test".into()),
        )]),
        &mut body,
    )
    .expect("encode");
    let headers = [
        ("smithy-protocol", "rpc-v2-cbor"),
        ("Content-Type", "application/cbor"),
        ("Accept", "application/cbor"),
    ];
    let path = "/service/GraniteServiceVersion20100801/operation/ListMetrics";
    let r = emu.raw("POST", path, &headers, &body);
    assert_eq!(r.status, 200, "the item alone is fine");
    body.extend_from_slice(&[0xa0, 0x00]);
    let r = emu.raw("POST", path, &headers, &body);
    assert_eq!(r.status, 400, "{}", r.text());
    let v: ciborium::value::Value = ciborium::de::from_reader(r.body.as_slice()).expect("cbor");
    let text = format!("{v:?}");
    assert!(text.contains("SerializationException"), "{text}");
}

/// NaN and the infinities are refused with CloudWatch's message over every protocol: the SDK's
/// rpcv2-cbor (f64), hand-written CBOR half-floats, query and awsJson 1.0 (issue 14).
#[tokio::test]
async fn non_finite_metric_values_are_refused_in_every_protocol() {
    let emu = Emulator::start();
    let message =
        |v: &str| format!("The value {v} for parameter MetricData.member.1.Value is invalid.");
    for (value, shown) in [
        (f64::NAN, "NaN"),
        (f64::INFINITY, "Infinity"),
        (f64::NEG_INFINITY, "-Infinity"),
    ] {
        let err = emu
            .cloudwatch()
            .put_metric_data()
            .namespace("Bad/Values")
            .metric_data(MetricDatum::builder().metric_name("m").value(value).build())
            .send()
            .await
            .expect_err("a non-finite value");
        assert_eq!(err.code(), Some("InvalidParameterValue"), "{err:?}");
        assert_eq!(status(&err), Some(400));
        assert_eq!(err.message(), Some(message(shown).as_str()));
    }

    // {"Namespace": "Bad", "MetricData": [{"MetricName": "m", "Value": <f16>}]}
    let cbor = |half: [u8; 2]| {
        let mut b = vec![0xa2, 0x69];
        b.extend_from_slice(b"Namespace");
        b.push(0x63);
        b.extend_from_slice(b"Bad");
        b.push(0x6a);
        b.extend_from_slice(b"MetricData");
        b.extend_from_slice(&[0x81, 0xa2, 0x6a]);
        b.extend_from_slice(b"MetricName");
        b.extend_from_slice(&[0x61, b'm', 0x65]);
        b.extend_from_slice(b"Value");
        b.extend_from_slice(&[0xf9, half[0], half[1]]);
        b
    };
    for (half, shown) in [
        ([0x7e, 0x00], "NaN"),
        ([0x7c, 0x00], "Infinity"),
        ([0xfc, 0x00], "-Infinity"),
    ] {
        let r = emu.raw(
            "POST",
            "/service/GraniteServiceVersion20100801/operation/PutMetricData",
            &[
                ("smithy-protocol", "rpc-v2-cbor"),
                ("Content-Type", "application/cbor"),
                ("Accept", "application/cbor"),
            ],
            &cbor(half),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(
            r.header("x-amzn-query-error"),
            Some("InvalidParameterValue;Sender")
        );
        assert!(r.text().contains(&message(shown)), "{}", r.text());
    }

    let r = emu.raw(
        "POST",
        "/",
        &[(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        b"Action=PutMetricData&Version=2010-08-01&Namespace=Bad&MetricData.member.1.MetricName=m&MetricData.member.1.Value=NaN",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("<Code>InvalidParameterValue</Code>")
            && r.text().contains(&message("NaN")),
        "{}",
        r.text()
    );

    let r = emu.raw(
        "POST",
        "/",
        &[
            (
                "X-Amz-Target",
                "GraniteServiceVersion20100801.PutMetricData",
            ),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-query-mode", "true"),
        ],
        br#"{"Namespace":"Bad","MetricData":[{"MetricName":"m","Value":"-Infinity"}]}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["message"], message("-Infinity"), "{}", r.text());

    // A dimension named twice.
    let dim = |v: &str| Dimension::builder().name("Svc").value(v).build();
    let err = emu
        .cloudwatch()
        .put_metric_data()
        .namespace("Bad/Dims")
        .metric_data(
            MetricDatum::builder()
                .metric_name("m")
                .value(1.0)
                .dimensions(dim("a"))
                .dimensions(dim("b"))
                .build(),
        )
        .send()
        .await
        .expect_err("a repeated dimension name");
    assert_eq!(err.code(), Some("InvalidParameterValue"), "{err:?}");
    assert_eq!(status(&err), Some(400));
    assert_eq!(
        err.message(),
        Some("No metric may specify the same dimension name twice.")
    );
}
