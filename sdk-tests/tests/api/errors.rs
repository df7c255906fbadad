//! Validation and malformed requests, sent raw (unsigned, std TcpStream): each answered with the
//! service's own code in the request's protocol.

use ciborium::value::Value as Cbor;
use sdk_tests::{Emulator, RawResponse};

const ECS: &str = "AmazonEC2ContainerServiceV20141113";
const JSON11: &str = "application/x-amz-json-1.1";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

fn ecs_call(emu: &Emulator, op: &str, body: &str) -> RawResponse {
    let target = format!("{ECS}.{op}");
    emu.raw(
        "POST",
        "/",
        &[("X-Amz-Target", &target), ("Content-Type", JSON11)],
        body.as_bytes(),
    )
}

/// A JSON error: status, `__type`, the X-Amzn-ErrorType header, a request id; returns the message.
fn json_error(r: &RawResponse, status: u16, code: &str) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    let body = r.json();
    let ty = body["__type"].as_str().unwrap_or_default();
    assert!(
        ty == code || ty.ends_with(&format!("#{code}")),
        "__type {ty:?} is not {code}: {body}"
    );
    assert!(
        r.header("x-amzn-errortype")
            .is_some_and(|h| h.starts_with(code)),
        "X-Amzn-ErrorType: {:?}",
        r.headers
    );
    assert!(r.header("x-amzn-requestid").is_some_and(|h| !h.is_empty()));
    body["message"]
        .as_str()
        .or(body["Message"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A query error document: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>`.
fn query_error(r: &RawResponse, status: u16, code: &str) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    let xml = r.text();
    let body = xml
        .trim_start()
        .trim_start_matches(|c| c != '<')
        .to_string();
    let body = if body.starts_with("<?xml") {
        body[body.find("?>").map_or(0, |i| i + 2)..]
            .trim_start()
            .to_string()
    } else {
        body
    };
    assert!(body.starts_with("<ErrorResponse"), "{xml}");
    assert!(xml.contains("<Type>Sender</Type>"), "{xml}");
    assert!(xml.contains(&format!("<Code>{code}</Code>")), "{xml}");
    let rid = between(&xml, "<RequestId>", "</RequestId>");
    assert!(rid.is_some_and(|s| !s.is_empty()), "{xml}");
    unescape(between(&xml, "<Message>", "</Message>").unwrap_or_default())
}

/// XML character entities back to text.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let start = s.find(a)? + a.len();
    let end = s[start..].find(b)? + start;
    Some(&s[start..end])
}

fn post_form(emu: &Emulator, form: &str) -> RawResponse {
    emu.raw("POST", "/", &[("Content-Type", FORM)], form.as_bytes())
}

fn cbor_call(emu: &Emulator, service: &str, op: &str, body: &[u8]) -> RawResponse {
    emu.raw(
        "POST",
        &format!("/service/{service}/operation/{op}"),
        &[
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Type", "application/cbor"),
            ("Accept", "application/cbor"),
        ],
        body,
    )
}

fn cbor_map(entries: Vec<(&str, Cbor)>) -> Vec<u8> {
    let map = Cbor::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Cbor::Text(k.to_string()), v))
            .collect(),
    );
    let mut out = Vec::new();
    ciborium::into_writer(&map, &mut out).expect("encode CBOR");
    out
}

fn cbor_get<'a>(v: &'a Cbor, key: &str) -> Option<&'a Cbor> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

/// A CBOR error: status, smithy-protocol header, `__type` in the CBOR body; returns the message.
fn cbor_error(r: &RawResponse, status: u16, code: &str) -> String {
    assert_eq!(r.status, status, "{:?} {:?}", r.headers, r.body);
    assert_eq!(
        r.header("smithy-protocol"),
        Some("rpc-v2-cbor"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("content-type"), Some("application/cbor"));
    let v: Cbor = ciborium::from_reader(r.body.as_slice()).expect("the error body is CBOR");
    let ty = cbor_get(&v, "__type")
        .and_then(Cbor::as_text)
        .unwrap_or_default();
    assert!(
        ty == code || ty.ends_with(&format!("#{code}")),
        "__type {ty:?} is not {code}: {v:?}"
    );
    cbor_get(&v, "message")
        .or(cbor_get(&v, "Message"))
        .and_then(Cbor::as_text)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn json_missing_required_member_is_invalid_parameter_exception() {
    let emu = Emulator::start();
    let r = ecs_call(&emu, "DescribeServices", "{}");
    let msg = json_error(&r, 400, "InvalidParameterException");
    assert!(
        msg.contains(
            "Value null at 'services' failed to satisfy constraint: Member must not be null"
        ),
        "{msg}"
    );
}

#[test]
fn json_bad_enum_is_invalid_parameter_exception() {
    let emu = Emulator::start();
    let r = ecs_call(&emu, "ListServices", r#"{"launchType":"BOGUS"}"#);
    let msg = json_error(&r, 400, "InvalidParameterException");
    assert!(
        msg.contains("'BOGUS'") && msg.contains("'launchType'") && msg.contains("enum value set"),
        "{msg}"
    );
}

#[test]
fn json_wrong_type_is_rejected() {
    let emu = Emulator::start();
    // clusterName is a string; a number is a serialization/validation failure, never a success.
    let r = ecs_call(&emu, "CreateCluster", r#"{"clusterName": 42}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let ty = r.json()["__type"].as_str().unwrap_or_default().to_string();
    assert!(
        ty.ends_with("SerializationException") || ty.ends_with("InvalidParameterException"),
        "{ty}"
    );
}

#[test]
fn malformed_json_is_serialization_exception() {
    let emu = Emulator::start();
    let r = ecs_call(&emu, "ListClusters", "{not json");
    json_error(&r, 400, "SerializationException");
}

#[test]
fn unknown_target_is_unknown_operation_exception() {
    let emu = Emulator::start();
    let r = ecs_call(&emu, "NoSuchOperation", "{}");
    json_error(&r, 400, "UnknownOperationException");
}

#[test]
fn query_missing_required_member_is_validation_error() {
    let emu = Emulator::start();
    let r = post_form(&emu, "Action=CreateLoadBalancer&Version=2015-12-01");
    let msg = query_error(&r, 400, "ValidationError");
    assert!(
        msg.to_ascii_lowercase().contains("'name'") && msg.contains("must not be null"),
        "{msg}"
    );
    assert!(r
        .text()
        .contains("http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"));
}

#[test]
fn query_bad_enum_is_validation_error() {
    let emu = Emulator::start();
    let r = post_form(
        &emu,
        "Action=CreateLoadBalancer&Version=2015-12-01&Name=lb&Type=bogus",
    );
    let msg = query_error(&r, 400, "ValidationError");
    assert!(
        msg.contains("'bogus'") && msg.contains("enum value set"),
        "{msg}"
    );
}

#[test]
fn unknown_query_action_is_invalid_action() {
    let emu = Emulator::start();
    let r = post_form(&emu, "Action=NoSuchAction&Version=2015-12-01");
    query_error(&r, 400, "InvalidAction");
}

#[test]
fn cbor_missing_required_member_is_missing_parameter() {
    let emu = Emulator::start();
    // GetMetricStatistics without Namespace (and its other required members).
    let body = cbor_map(vec![("MetricName", Cbor::Text("Latency".into()))]);
    let r = cbor_call(
        &emu,
        "GraniteServiceVersion20100801",
        "GetMetricStatistics",
        &body,
    );
    cbor_error(&r, 400, "MissingRequiredParameterException");
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("MissingParameter;Sender"),
        "{:?}",
        r.headers
    );
}

#[test]
fn cbor_bad_enum_is_invalid_parameter_value() {
    let emu = Emulator::start();
    let body = cbor_map(vec![("RecentlyActive", Cbor::Text("bogus".into()))]);
    let r = cbor_call(&emu, "GraniteServiceVersion20100801", "ListMetrics", &body);
    let msg = cbor_error(&r, 400, "InvalidParameterValueException");
    assert!(msg.contains("'bogus'"), "{msg}");
    assert_eq!(
        r.header("x-amzn-query-error"),
        Some("InvalidParameterValue;Sender"),
        "{:?}",
        r.headers
    );
}

#[test]
fn malformed_cbor_is_serialization_exception() {
    let emu = Emulator::start();
    // A map header announcing one entry, then nothing.
    let r = cbor_call(
        &emu,
        "GraniteServiceVersion20100801",
        "ListMetrics",
        &[0xa1],
    );
    cbor_error(&r, 400, "SerializationException");
    // Not a map at all.
    let r = cbor_call(
        &emu,
        "GraniteServiceVersion20100801",
        "ListMetrics",
        &[0x01],
    );
    cbor_error(&r, 400, "SerializationException");
}

#[test]
fn unknown_cbor_operation_is_unknown_operation_exception() {
    let emu = Emulator::start();
    let body = cbor_map(vec![]);
    let r = cbor_call(
        &emu,
        "GraniteServiceVersion20100801",
        "NoSuchOperation",
        &body,
    );
    // Smithy servers answer 404 for an unknown rpcv2-cbor operation; AWS front ends 400.
    let status = if r.status == 404 { 404 } else { 400 };
    cbor_error(&r, status, "UnknownOperationException");
}

#[test]
fn ec2_missing_parameter_uses_the_ec2_error_shape() {
    let emu = Emulator::start();
    let r = post_form(&emu, "Action=DeleteVpc&Version=2016-11-15");
    assert_eq!(r.status, 400, "{}", r.text());
    let xml = r.text();
    let body = xml[xml.find("?>").map_or(0, |i| i + 2)..].trim_start();
    assert!(body.starts_with("<Response>"), "{xml}");
    assert!(
        xml.contains("<Errors><Error><Code>MissingParameter</Code>"),
        "{xml}"
    );
    assert!(
        between(&xml, "<RequestID>", "</RequestID>").is_some_and(|s| !s.is_empty()),
        "the ec2 protocol spells it RequestID: {xml}"
    );
    let msg = unescape(between(&xml, "<Message>", "</Message>").unwrap_or_default());
    assert!(
        msg.to_ascii_lowercase().contains("vpcid"),
        "names the parameter: {msg}"
    );

    let r = post_form(
        &emu,
        "Action=DeleteVpc&Version=2016-11-15&VpcId=vpc-0000000000000dead",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("<Code>InvalidVpcID.NotFound</Code>"),
        "{}",
        r.text()
    );
}
