//! Handler-level tests of SSM Parameter Store.

use super::state::State;
use super::*;
use crate::services::{Ctx, Deps};
use crate::store::Store;
use serde_json::{json, Value};

fn setup() -> (State, Ctx) {
    (State::new(&Deps::for_tests().store), Ctx::for_tests())
}

fn code(r: Result<Value, crate::protocol::AwsError>) -> String {
    r.err().map(|e| e.code.to_string()).unwrap_or_default()
}

#[test]
fn put_get_versions_and_errors() {
    let (s, ctx) = setup();
    let out = params::put_parameter(
        &s,
        &ctx,
        json!({"Name": "/app/db/url", "Value": "v1", "Type": "String"}),
    )
    .expect("put");
    assert_eq!(out, json!({"Version": 1, "Tier": "Standard"}));
    assert_eq!(
        code(params::put_parameter(
            &s,
            &ctx,
            json!({"Name": "/app/db/url", "Value": "v2", "Type": "String"})
        )),
        "ParameterAlreadyExists"
    );
    let out = params::put_parameter(
        &s,
        &ctx,
        json!({"Name": "/app/db/url", "Value": "v2", "Overwrite": true}),
    )
    .expect("overwrite");
    assert_eq!(out["Version"], 2);
    let got = params::get_parameter(&s, &ctx, json!({"Name": "/app/db/url"})).expect("get");
    assert_eq!(got["Parameter"]["Value"], "v2");
    assert_eq!(got["Parameter"]["Type"], "String");
    assert_eq!(
        got["Parameter"]["ARN"],
        "arn:aws:ssm:us-east-1:000000000000:parameter/app/db/url"
    );
    let v1 = params::get_parameter(&s, &ctx, json!({"Name": "/app/db/url:1"})).expect("v1");
    assert_eq!(v1["Parameter"]["Value"], "v1");
    assert_eq!(v1["Parameter"]["Selector"], ":1");
    assert_eq!(
        code(params::get_parameter(
            &s,
            &ctx,
            json!({"Name": "/app/db/url:9"})
        )),
        "ParameterVersionNotFound"
    );
    let by_arn = params::get_parameter(
        &s,
        &ctx,
        json!({"Name": "arn:aws:ssm:us-east-1:000000000000:parameter/app/db/url"}),
    )
    .expect("arn");
    assert_eq!(by_arn["Parameter"]["Value"], "v2");
    assert_eq!(
        code(params::get_parameter(&s, &ctx, json!({"Name": "/nope"}))),
        "ParameterNotFound"
    );
    assert_eq!(
        code(params::put_parameter(
            &s,
            &ctx,
            json!({"Name": "/aws/x", "Value": "v", "Type": "String"})
        )),
        "ValidationException"
    );
    assert_eq!(
        code(params::put_parameter(
            &s,
            &ctx,
            json!({"Name": "new", "Value": "v"})
        )),
        "ValidationException"
    );
    assert_eq!(
        code(params::put_parameter(
            &s,
            &ctx,
            json!({"Name": "p", "Value": "abc", "Type": "String", "AllowedPattern": "^[0-9]+$"})
        )),
        "ParameterPatternMismatchException"
    );
    assert_eq!(
        code(params::put_parameter(
            &s,
            &ctx,
            json!({"Name": "big", "Value": "x".repeat(4097), "Type": "String"})
        )),
        "ValidationException"
    );
    params::put_parameter(
        &s,
        &ctx,
        json!({"Name": "big", "Value": "x".repeat(4097), "Type": "String", "Tier": "Advanced"}),
    )
    .expect("advanced");

    // SecureString: ciphertext unless decrypted.
    params::put_parameter(
        &s,
        &ctx,
        json!({"Name": "/app/secret", "Value": "hunter2", "Type": "SecureString"}),
    )
    .expect("secure");
    let enc = params::get_parameter(&s, &ctx, json!({"Name": "/app/secret"})).expect("enc");
    assert_ne!(enc["Parameter"]["Value"], "hunter2");
    let dec = params::get_parameter(
        &s,
        &ctx,
        json!({"Name": "/app/secret", "WithDecryption": true}),
    )
    .expect("dec");
    assert_eq!(dec["Parameter"]["Value"], "hunter2");

    let many = params::get_parameters(
        &s,
        &ctx,
        json!({"Names": ["/app/db/url", "/missing", "/app/db/url:1"]}),
    )
    .expect("many");
    assert_eq!(many["Parameters"].as_array().map(Vec::len), Some(2));
    assert_eq!(many["InvalidParameters"], json!(["/missing"]));

    let h =
        describe::get_parameter_history(&s, &ctx, json!({"Name": "/app/db/url"})).expect("history");
    let versions: Vec<i64> = h["Parameters"]
        .as_array()
        .expect("h")
        .iter()
        .filter_map(|p| p["Version"].as_i64())
        .collect();
    assert_eq!(versions, vec![1, 2]);

    params::delete_parameter(&s, &ctx, json!({"Name": "/app/db/url"})).expect("delete");
    assert_eq!(
        code(params::delete_parameter(
            &s,
            &ctx,
            json!({"Name": "/app/db/url"})
        )),
        "ParameterNotFound"
    );
    let del = params::delete_parameters(&s, &ctx, json!({"Names": ["/app/secret", "/gone"]}))
        .expect("deletes");
    assert_eq!(del["DeletedParameters"], json!(["/app/secret"]));
    assert_eq!(del["InvalidParameters"], json!(["/gone"]));
}

#[test]
fn paths_and_describe_filters() {
    let (s, ctx) = setup();
    for (n, t) in [
        ("/a/x", "String"),
        ("/a/y", "SecureString"),
        ("/a/b/z", "String"),
        ("/c", "StringList"),
        ("flat", "String"),
    ] {
        params::put_parameter(&s, &ctx, json!({"Name": n, "Value": "1,2", "Type": t}))
            .expect("put");
    }
    let one = describe::get_parameters_by_path(&s, &ctx, json!({"Path": "/a"})).expect("one level");
    let names: Vec<&str> = one["Parameters"]
        .as_array()
        .expect("p")
        .iter()
        .filter_map(|p| p["Name"].as_str())
        .collect();
    assert_eq!(names, vec!["/a/x", "/a/y"]);
    let p1 = describe::get_parameters_by_path(
        &s,
        &ctx,
        json!({"Path": "/a", "Recursive": true, "MaxResults": 2}),
    )
    .expect("p1");
    assert_eq!(p1["Parameters"].as_array().map(Vec::len), Some(2));
    let p2 = describe::get_parameters_by_path(
        &s,
        &ctx,
        json!({"Path": "/a", "Recursive": true, "MaxResults": 2, "NextToken": p1["NextToken"]}),
    )
    .expect("p2");
    assert_eq!(p2["Parameters"][0]["Name"], "/a/y");
    assert!(p2.get("NextToken").is_none());
    let typed = describe::get_parameters_by_path(
        &s,
        &ctx,
        json!({"Path": "/", "Recursive": true,
        "ParameterFilters": [{"Key": "Type", "Values": ["SecureString"]}]}),
    )
    .expect("typed");
    assert_eq!(typed["Parameters"][0]["Name"], "/a/y");

    let d = describe::describe_parameters(
        &s,
        &ctx,
        json!({"ParameterFilters": [{"Key": "Path", "Option": "Recursive", "Values": ["/a"]}]}),
    )
    .expect("describe");
    assert_eq!(d["Parameters"].as_array().map(Vec::len), Some(3));
    let d = describe::describe_parameters(
        &s,
        &ctx,
        json!({"ParameterFilters": [{"Key": "Name", "Option": "BeginsWith", "Values": ["fl"]}]}),
    )
    .expect("name");
    assert_eq!(d["Parameters"][0]["Name"], "flat");
    assert_eq!(
        d["Parameters"][0]["ARN"],
        "arn:aws:ssm:us-east-1:000000000000:parameter/flat"
    );
    let d = describe::describe_parameters(
        &s,
        &ctx,
        json!({"Filters": [{"Key": "Type", "Values": ["StringList"]}]}),
    )
    .expect("legacy");
    assert_eq!(d["Parameters"][0]["Name"], "/c");
    assert_eq!(
        code(describe::describe_parameters(
            &s,
            &ctx,
            json!({"ParameterFilters": [{"Key": "Bogus", "Values": ["x"]}]})
        )),
        "InvalidFilterKey"
    );
}

#[test]
fn public_ecs_ami_parameters_match_ec2_images() {
    let (s, ctx) = setup();
    let id = params::get_parameter(
        &s,
        &ctx,
        json!({"Name": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"}),
    )
    .expect("image id");
    let ami = crate::services::ec2::ECS_OPTIMIZED_AMIS[0];
    assert_eq!(id["Parameter"]["Value"], ami.image_id("us-east-1"));
    assert_eq!(
        id["Parameter"]["ARN"],
        "arn:aws:ssm:us-east-1::parameter/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
    );
    let rec = params::get_parameter(
        &s,
        &ctx,
        json!({"Name": "/aws/service/ecs/optimized-ami/amazon-linux-2/arm64/recommended"}),
    )
    .expect("recommended");
    let v: Value =
        serde_json::from_str(rec["Parameter"]["Value"].as_str().expect("json")).expect("parse");
    assert_eq!(v["image_name"], "amzn2-ami-ecs-hvm-2.0.20261120-arm64-ebs");
    assert_eq!(v["os"], "Amazon Linux 2");
    assert_eq!(v["schema_version"], 1);
    assert!(
        crate::services::ec2::find_ami("us-east-1", v["image_id"].as_str().expect("id")).is_some()
    );
    let under = describe::get_parameters_by_path(
        &s,
        &ctx,
        json!({"Path": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended"}),
    )
    .expect("path");
    assert_eq!(under["Parameters"].as_array().map(Vec::len), Some(8));
    assert_eq!(
        code(params::delete_parameter(
            &s,
            &ctx,
            json!({"Name": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended"})
        )),
        "ParameterNotFound"
    );
}

/// The Amazon Linux parameters (al2023 and amzn2 names) name AMIs EC2 knows, by architecture.
#[test]
fn public_amazon_linux_parameters_name_known_amis() {
    let (s, ctx) = setup();
    for (name, arch) in [
        ("al2023-ami-kernel-default-x86_64", "x86_64"),
        ("al2023-ami-kernel-6.1-arm64", "arm64"),
        ("al2023-ami-minimal-kernel-default-x86_64", "x86_64"),
        ("amzn2-ami-hvm-x86_64-gp2", "x86_64"),
        ("amzn2-ami-kernel-5.10-hvm-arm64-gp2", "arm64"),
    ] {
        let path = format!("/aws/service/ami-amazon-linux-latest/{name}");
        let p = params::get_parameter(&s, &ctx, json!({"Name": path})).expect(name);
        let id = p["Parameter"]["Value"].as_str().expect("value");
        let ami = crate::services::ec2::find_ami("us-east-1", id).expect("a known AMI");
        assert_eq!(ami.architecture, arch, "{name}");
        assert_eq!(p["Parameter"]["DataType"], "aws:ec2:image");
        assert_eq!(
            p["Parameter"]["ARN"],
            format!("arn:aws:ssm:us-east-1::parameter{path}")
        );
    }
    let default = params::get_parameter(
        &s,
        &ctx,
        json!({"Name": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"}),
    )
    .expect("default");
    let six_one = params::get_parameter(
        &s,
        &ctx,
        json!({"Name": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"}),
    )
    .expect("6.1");
    assert_eq!(default["Parameter"]["Value"], six_one["Parameter"]["Value"]);
    let (mut listed, mut token) = (0, None::<String>);
    loop {
        let mut input = json!({"Path": "/aws/service/ami-amazon-linux-latest"});
        if let Some(t) = &token {
            input["NextToken"] = json!(t);
        }
        let page = describe::get_parameters_by_path(&s, &ctx, input).expect("path");
        listed += page["Parameters"].as_array().map_or(0, Vec::len);
        token = page["NextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(listed, crate::services::ec2::AMAZON_LINUX_PARAMETERS.len());
    assert_eq!(
        code(params::get_parameter(
            &s,
            &ctx,
            json!({"Name": "/aws/service/ami-amazon-linux-latest/amzn-ami-hvm-x86_64-gp2"})
        )),
        "ParameterNotFound"
    );
}

#[test]
fn handle_resolves_names_and_arns() {
    let deps = Deps::for_tests();
    let mut r = crate::services::Registry::default();
    register(&mut r, &deps);
    let ssm = r.handle::<Ssm>().expect("handle");
    let h = r.get("ssm", "PutParameter").expect("put").clone();
    futures::executor::block_on(h.call(
        Ctx::for_tests(),
        json!({"Name": "/db/pass", "Value": "s3cret", "Type": "SecureString"}),
    ))
    .expect("put");
    assert_eq!(
        ssm.value("000000000000", "us-east-1", "/db/pass")
            .expect("name"),
        "s3cret"
    );
    assert_eq!(
        ssm.value(
            "999999999999",
            "eu-west-1",
            "arn:aws:ssm:us-east-1:000000000000:parameter/db/pass"
        )
        .expect("arn"),
        "s3cret"
    );
    assert_eq!(
        ssm.resolve("000000000000", "us-east-1", "/db/pass")
            .expect("r")
            .kind,
        "SecureString"
    );
    assert_eq!(
        ssm.value("000000000000", "us-east-1", "/nope")
            .expect_err("missing")
            .code,
        "ParameterNotFound"
    );
    assert!(ssm
        .value(
            "000000000000",
            "us-west-2",
            "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
        )
        .is_ok());
}

#[test]
fn parameters_survive_reopening_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = Ctx::for_tests();
    {
        let store = Store::open(dir.path()).expect("open");
        let s = State::new(&store);
        params::put_parameter(
            &s,
            &ctx,
            json!({"Name": "/keep", "Value": "a", "Type": "String"}),
        )
        .expect("put");
        params::put_parameter(
            &s,
            &ctx,
            json!({"Name": "/keep", "Value": "b", "Overwrite": true}),
        )
        .expect("put");
    }
    let store = Store::open(dir.path()).expect("reopen");
    let s = State::new(&store);
    let got = params::get_parameter(&s, &ctx, json!({"Name": "/keep"})).expect("get");
    assert_eq!(got["Parameter"]["Value"], "b");
    assert_eq!(got["Parameter"]["Version"], 2);
}
