//! awsJson: json::decode on the raw bytes, then the whole request path (X-Amz-Target routing,
//! decode, model validation, error rendering) for an operation picked by the first three bytes.
#![no_main]

mod common;

use ecs_emulator::protocol::{json, HttpRequest};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = json::decode(data);
    if data.len() < 3 {
        return;
    }
    let (svc, op) = common::pick(
        common::json_services(),
        data[0],
        u16::from_le_bytes([data[1], data[2]]),
    );
    let body = &data[3..];
    let target = format!("{}.{}", svc.target_prefix.unwrap_or_default(), op);
    let mut headers = HeaderMap::new();
    headers.insert("x-amz-target", HeaderValue::from_str(&target).expect("ascii target"));
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    common::run(&HttpRequest {
        method: "POST",
        path: "/",
        query: None,
        headers: &headers,
        body,
        signing_name: Some(svc.signing_name),
    });
});
