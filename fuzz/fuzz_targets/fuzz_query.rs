//! awsQuery / ec2: FormTree::parse on the bytes after the first, then query::decode against the
//! input shape picked by the first byte (elbv2 and ec2 operations with lists, maps, nested
//! structures, numbers, booleans and timestamps), then model validation of what was decoded.
//! Every tenth input also goes through protocol::parse as a form POST.
#![no_main]

mod common;

use ecs_emulator::protocol::{catalog, model, query, validate, HttpRequest};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

const SHAPES: &[(&str, &str)] = &[
    ("elbv2", "CreateLoadBalancer"),
    ("elbv2", "CreateTargetGroup"),
    ("elbv2", "RegisterTargets"),
    ("elbv2", "CreateListener"),
    ("elbv2", "CreateRule"),
    ("elbv2", "ModifyTargetGroupAttributes"),
    ("elbv2", "DescribeTargetHealth"),
    ("elbv2", "AddTags"),
    ("ec2", "RunInstances"),
    ("ec2", "DescribeInstances"),
    ("ec2", "CreateSecurityGroup"),
    ("ec2", "AuthorizeSecurityGroupIngress"),
    ("ec2", "CreateLaunchTemplate"),
    ("ec2", "DescribeSubnets"),
    ("ec2", "CreateTags"),
    ("ec2", "CreateVpc"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let (svc_name, op_name) = SHAPES[sel as usize % SHAPES.len()];
    let info = catalog::by_name(svc_name).expect("service in catalog");
    let model = model::model(svc_name).expect("model");
    let op = model.operations.get(op_name).expect("operation in model");
    let shape = &op.input.as_ref().expect("input shape").shape;
    let ec2 = svc_name == "ec2";

    let form = query::FormTree::parse(body);
    let _ = form.get("Action");
    if let Ok(value) = query::decode(model, shape, &form, ec2, info.bad_input.invalid) {
        let _ = validate::validate(model, info, shape, &value);
    }

    if sel % 10 == 0 {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let mut full = format!("Action={op_name}&Version={}&", model.metadata.api_version)
            .into_bytes();
        full.extend_from_slice(body);
        common::run(&HttpRequest {
            method: "POST",
            path: "/",
            query: None,
            headers: &headers,
            body: &full,
            signing_name: Some(info.signing_name),
        });
    }
});
