//! rpcv2-cbor: cbor::decode on the raw bytes, then the whole request path (smithy-protocol
//! routing, decode, validation, error rendering) for an operation picked by the first three bytes.
#![no_main]

mod common;

use ecs_emulator::protocol::{cbor, HttpRequest};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cbor::decode(data);
    if data.len() < 3 {
        return;
    }
    let (svc, op) = common::pick(
        common::cbor_services(),
        data[0],
        u16::from_le_bytes([data[1], data[2]]),
    );
    let body = &data[3..];
    let path = format!(
        "/service/{}/operation/{}",
        svc.target_prefix.unwrap_or_default(),
        op
    );
    let mut headers = HeaderMap::new();
    headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    headers.insert("content-type", HeaderValue::from_static("application/cbor"));
    common::run(&HttpRequest {
        method: "POST",
        path: &path,
        query: None,
        headers: &headers,
        body,
        signing_name: Some(svc.signing_name),
    });
});
