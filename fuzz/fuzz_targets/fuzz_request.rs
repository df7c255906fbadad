//! A whole request as the server hands it to the protocol layer: arbitrary method, path, query,
//! headers (often the ones the router looks at, with plausible values), body and signing name;
//! SigV4 parsing of the same headers; then parse → validate → render.
#![no_main]

mod common;

use arbitrary::Arbitrary;
use ecs_emulator::protocol::{sigv4, HttpRequest};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Text {
    Known(u8),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    method: Text,
    path: Text,
    query: Option<Text>,
    headers: Vec<(Text, Text)>,
    body: Vec<u8>,
    signing_name: Option<Text>,
}

const METHODS: &[&str] = &["POST", "GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
const PATHS: &[&str] = &[
    "/",
    "/service/GraniteServiceVersion20100801/operation/PutMetricData",
    "/service/GraniteServiceVersion20100801/operation/GetMetricData",
    "/service/Route53AutoNaming_v20170314/operation/CreateService",
    "/service/Route53AutoNaming_v20170314/operation/RegisterInstance",
    "/2015-02-01/file-systems",
    "/2015-02-01/file-systems/fs-12345678",
    "/2015-02-01/mount-targets",
    "/2015-02-01/access-points",
    "/2015-02-01/resource-tags/fs-12345678",
];
const QUERIES: &[&str] = &[
    "",
    "Action=DescribeInstances&Version=2016-11-15",
    "Action=DescribeLoadBalancers&Version=2015-12-01",
    "Action=GetCallerIdentity&Version=2011-06-15",
    "Action=ListRoles&Version=2010-05-08",
    "Action=DescribeAutoScalingGroups&Version=2011-01-01",
    "Action=ListMetrics&Version=2010-08-01",
    "Action=DescribeInstances",
    "FileSystemId=fs-12345678&MaxItems=5",
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=test%2F20260101%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-SignedHeaders=host&X-Amz-Signature=00&X-Amz-Date=20260101T000000Z",
];
const HEADER_NAMES: &[&str] = &[
    "x-amz-target",
    "content-type",
    "smithy-protocol",
    "authorization",
    "x-amz-date",
    "content-encoding",
    "x-amz-security-token",
    "host",
];
const HEADER_VALUES: &[&str] = &[
    "AmazonEC2ContainerServiceV20141113.DescribeClusters",
    "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition",
    "AmazonEC2ContainerServiceV20141113.RunTask",
    "AmazonEC2ContainerRegistry_V20150921.PutImage",
    "Logs_20140328.PutLogEvents",
    "Logs_20140328.FilterLogEvents",
    "AmazonSSM.PutParameter",
    "AnyScaleFrontendService.RegisterScalableTarget",
    "GraniteServiceVersion20100801.PutMetricData",
    "Route53AutoNaming_v20170314.CreateService",
    "application/x-amz-json-1.1",
    "application/x-amz-json-1.0",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/cbor",
    "application/json",
    "rpc-v2-cbor",
    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000",
    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00",
    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/elasticfilesystem/aws4_request, SignedHeaders=host, Signature=00",
    "20260101T000000Z",
    "gzip",
];
const SIGNING: &[&str] = &[
    "ecs",
    "ec2",
    "elasticloadbalancing",
    "elasticfilesystem",
    "monitoring",
    "sts",
    "iam",
    "autoscaling",
    "logs",
];

fn text<'a>(t: &'a Text, known: &'a [&'a str]) -> &'a str {
    match t {
        Text::Known(i) => known[*i as usize % known.len()],
        Text::Raw(s) => s,
    }
}

fuzz_target!(|input: Input| {
    let method = text(&input.method, METHODS);
    let full_path = text(&input.path, PATHS);
    // The server splits the URI into path and query; an arbitrary path may carry its own '?'.
    let (path, inline_query) = match full_path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (full_path, None),
    };
    let query = input.query.as_ref().map(|q| text(q, QUERIES)).or(inline_query);
    let mut headers = HeaderMap::new();
    for (k, v) in &input.headers {
        let (k, v) = (text(k, HEADER_NAMES), text(v, HEADER_VALUES));
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            headers.append(k, v);
        }
    }
    // As server.rs: the query pairs for SigV4 (presigned URLs), then the signing name from it.
    let query_pairs: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let sig = sigv4::parse(&headers, &query_pairs).ok().flatten();
    let signing_name = match &input.signing_name {
        Some(t) => Some(text(t, SIGNING)),
        None => sig.as_ref().map(|s| s.service.as_str()),
    };
    common::run(&HttpRequest {
        method,
        path,
        query,
        headers: &headers,
        body: &input.body,
        signing_name,
    });
});
