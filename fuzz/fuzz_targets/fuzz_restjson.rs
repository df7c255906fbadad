//! rest-json (EFS): restjson::match_route over the model's routes with an arbitrary method and
//! path, then restjson::decode with arbitrary query pairs, headers and body, then validation;
//! and the same request through protocol::parse.
#![no_main]

mod common;

use arbitrary::Arbitrary;
use ecs_emulator::protocol::{catalog, model, restjson, validate, HttpRequest};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "get"];

#[derive(Arbitrary, Debug)]
struct Input {
    method: u8,
    /// Built from segments so that the fuzzer reaches the literal segments of the routes.
    segments: Vec<Segment>,
    trailing_slash: bool,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
enum Segment {
    Known(u8),
    Raw(String),
}

const LITERALS: &[&str] = &[
    "2015-02-01",
    "file-systems",
    "mount-targets",
    "access-points",
    "security-groups",
    "lifecycle-configuration",
    "backup-policy",
    "policy",
    "tags",
    "resource-tags",
    "account-preferences",
    "replication-configuration",
    "protection",
    "fs-12345678",
    "fsmt-12345678",
    "fsap-12345678",
    "%2F",
    "",
];

fn routes() -> &'static [restjson::Route] {
    static R: OnceLock<Vec<restjson::Route>> = OnceLock::new();
    R.get_or_init(|| restjson::routes(model::model("efs").expect("efs model")))
}

fuzz_target!(|input: Input| {
    let method = METHODS[input.method as usize % METHODS.len()];
    let mut path = String::new();
    for s in &input.segments {
        path.push('/');
        match s {
            Segment::Known(i) => path.push_str(LITERALS[*i as usize % LITERALS.len()]),
            Segment::Raw(r) => path.push_str(r),
        }
    }
    if input.trailing_slash || path.is_empty() {
        path.push('/');
    }
    let mut headers = HeaderMap::new();
    for (k, v) in &input.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            headers.append(k, v);
        }
    }

    let model = model::model("efs").expect("efs model");
    let info = catalog::by_name("efs").expect("efs in catalog");
    if let Some((op_name, labels)) = restjson::match_route(routes(), method, &path) {
        let op = model.operations.get(op_name).expect("route names a model operation");
        if let Some(shape) = op.input.as_ref().map(|i| &i.shape) {
            if let Ok(value) = restjson::decode(
                model,
                shape,
                &labels,
                &input.query,
                &headers,
                &input.body,
                info.bad_input.invalid,
            ) {
                let _ = validate::validate(model, info, shape, &value);
            }
        }
    }

    let query: String = input
        .query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    common::run(&HttpRequest {
        method,
        path: &path,
        query: Some(&query),
        headers: &headers,
        body: &input.body,
        signing_name: Some("elasticfilesystem"),
    });
});
