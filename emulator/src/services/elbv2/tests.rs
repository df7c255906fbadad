//! Handler tests over the real registry (EC2's default VPC provides the subnets).

use crate::app::build;
use crate::services::{Ctx, Deps, Registry};
use serde_json::{json, Value};

async fn call(r: &Registry, op: &str, input: Value) -> Result<Value, crate::protocol::AwsError> {
    let h = r.get("elbv2", op).ok_or_else(|| {
        crate::protocol::AwsError::new(crate::protocol::codes::common::InternalFailure, op)
    })?;
    h.call(Ctx::for_tests(), input).await
}

async fn ok(r: &Registry, op: &str, input: Value) -> Value {
    match call(r, op, input).await {
        Ok(v) => v,
        Err(e) => panic!("{op}: {e}"),
    }
}

fn subnets(r: &Registry) -> Vec<String> {
    let ec2 = r.handle::<crate::services::ec2::Ec2>().expect("ec2");
    ec2.default_subnets("000000000000", "us-east-1")
        .expect("subnets")
        .into_iter()
        .map(|s| s.subnet_id)
        .collect()
}

#[tokio::test]
async fn load_balancer_listener_rules_and_targets() {
    let r = build(&Deps::for_tests());
    let subnets = subnets(&r);
    let err = call(
        &r,
        "CreateLoadBalancer",
        json!({"Name": "one", "Subnets": [subnets[0]]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ValidationError");
    let err = call(
        &r,
        "CreateLoadBalancer",
        json!({"Name": "bad", "Subnets": ["subnet-nope", subnets[0]]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "SubnetNotFoundException");
    let lb = ok(
        &r,
        "CreateLoadBalancer",
        json!({"Name": "web", "Subnets": [subnets[0], subnets[1]]}),
    )
    .await;
    let lb = &lb["LoadBalancers"][0];
    let lb_arn = lb["LoadBalancerArn"].as_str().expect("arn").to_string();
    assert!(lb["DNSName"]
        .as_str()
        .expect("dns")
        .ends_with(".us-east-1.elb.localhost"));
    assert_eq!(lb["State"]["Code"], "provisioning");
    assert_eq!(lb["AvailabilityZones"].as_array().map(Vec::len), Some(2));
    let vpc = lb["VpcId"].as_str().expect("vpc").to_string();
    let err = call(
        &r,
        "CreateLoadBalancer",
        json!({"Name": "web", "Subnets": [subnets[0], subnets[2]]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "DuplicateLoadBalancerNameException");

    let tg = ok(
        &r,
        "CreateTargetGroup",
        json!({"Name": "tg", "Protocol": "HTTP", "Port": 80, "VpcId": vpc, "TargetType": "ip"}),
    )
    .await;
    let tg = &tg["TargetGroups"][0];
    assert_eq!(tg["HealthCheckIntervalSeconds"], 30);
    assert_eq!(tg["HealthyThresholdCount"], 5);
    assert_eq!(tg["Matcher"]["HttpCode"], "200");
    assert_eq!(tg["HealthCheckPath"], "/");
    let tg_arn = tg["TargetGroupArn"].as_str().expect("arn").to_string();

    let l = ok(
        &r,
        "CreateListener",
        json!({"LoadBalancerArn": lb_arn, "Protocol": "HTTP", "Port": 80,
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}]}),
    )
    .await;
    let l = &l["Listeners"][0];
    assert_eq!(
        l["DefaultActions"][0]["ForwardConfig"]["TargetGroups"][0]["Weight"],
        1
    );
    let l_arn = l["ListenerArn"].as_str().expect("arn").to_string();
    let err = call(
        &r,
        "CreateListener",
        json!({"LoadBalancerArn": lb_arn, "Protocol": "HTTP", "Port": 80,
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "DuplicateListenerException");

    let rule = json!({"ListenerArn": l_arn, "Priority": 10,
        "Conditions": [{"Field": "path-pattern", "Values": ["/api/*"]}],
        "Actions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200", "MessageBody": "hi"}}]});
    let created = ok(&r, "CreateRule", rule.clone()).await;
    assert_eq!(
        created["Rules"][0]["Conditions"][0]["PathPatternConfig"]["Values"][0],
        "/api/*"
    );
    let err = call(&r, "CreateRule", rule).await.unwrap_err();
    assert_eq!(err.code, "PriorityInUseException");
    let rules = ok(&r, "DescribeRules", json!({"ListenerArn": l_arn})).await;
    assert_eq!(rules["Rules"][1]["Priority"], "default");
    assert_eq!(rules["Rules"][1]["IsDefault"], true);

    ok(
        &r,
        "RegisterTargets",
        json!({"TargetGroupArn": tg_arn, "Targets": [{"Id": "127.0.0.1", "Port": 8080}]}),
    )
    .await;
    let err = call(
        &r,
        "RegisterTargets",
        json!({"TargetGroupArn": tg_arn, "Targets": [{"Id": "i-123"}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InvalidTargetException");
    let h = ok(
        &r,
        "DescribeTargetHealth",
        json!({"TargetGroupArn": tg_arn}),
    )
    .await;
    assert_eq!(
        h["TargetHealthDescriptions"][0]["TargetHealth"]["State"],
        "initial"
    );
    assert_eq!(
        h["TargetHealthDescriptions"][0]["TargetHealth"]["Reason"],
        "Elb.RegistrationInProgress"
    );
    let err = call(&r, "DeleteTargetGroup", json!({"TargetGroupArn": tg_arn}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "ResourceInUseException");
    ok(
        &r,
        "DeregisterTargets",
        json!({"TargetGroupArn": tg_arn, "Targets": [{"Id": "127.0.0.1", "Port": 8080}]}),
    )
    .await;
    let h = ok(
        &r,
        "DescribeTargetHealth",
        json!({"TargetGroupArn": tg_arn}),
    )
    .await;
    assert_eq!(
        h["TargetHealthDescriptions"][0]["TargetHealth"]["State"],
        "draining"
    );

    let lb2 = ok(
        &r,
        "CreateLoadBalancer",
        json!({"Name": "other", "Subnets": [subnets[0], subnets[1]]}),
    )
    .await;
    let lb2_arn = lb2["LoadBalancers"][0]["LoadBalancerArn"]
        .as_str()
        .expect("arn")
        .to_string();
    let err = call(
        &r,
        "CreateListener",
        json!({"LoadBalancerArn": lb2_arn, "Protocol": "HTTP", "Port": 80,
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "TargetGroupAssociationLimitException");

    ok(&r, "DeleteLoadBalancer", json!({"LoadBalancerArn": lb_arn})).await;
    let err = call(&r, "DescribeListeners", json!({"ListenerArns": [l_arn]}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "ListenerNotFoundException");
    ok(&r, "DeleteTargetGroup", json!({"TargetGroupArn": tg_arn})).await;
}

/// Rule conditions within ELBv2's limits, fixed responses' content types from AWS's list, an
/// ALB listener without a protocol and a query-string pair without Value: each a ValidationError
/// with a message naming the problem (never a deserializer's "missing field").
#[tokio::test]
async fn rule_condition_limits_content_types_and_listener_protocol() {
    let r = build(&Deps::for_tests());
    let subnets = subnets(&r);
    let lb = ok(
        &r,
        "CreateLoadBalancer",
        json!({"Name": "limits", "Subnets": [subnets[0], subnets[1]]}),
    )
    .await;
    let lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
        .as_str()
        .expect("arn")
        .to_string();
    let fixed = |ct: &str| json!([{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200", "ContentType": ct}}]);
    let err = call(
        &r,
        "CreateListener",
        json!({"LoadBalancerArn": lb_arn, "Port": 80, "DefaultActions": fixed("text/plain")}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ValidationError");
    assert_eq!(err.message, "A listener protocol must be specified");
    let err = call(
        &r,
        "CreateListener",
        json!({"LoadBalancerArn": lb_arn, "Protocol": "HTTP", "Port": 80, "DefaultActions": fixed("text/xml")}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "ValidationError");
    assert_eq!(err.message, "The content type 'text/xml' is not valid; valid content types are: text/plain, text/css, text/html, application/javascript, application/json");
    for ct in [
        "text/plain",
        "text/css",
        "text/html",
        "application/javascript",
    ] {
        let l = ok(
            &r,
            "CreateListener",
            json!({"LoadBalancerArn": lb_arn, "Protocol": "HTTP", "Port": 80, "DefaultActions": fixed(ct)}),
        )
        .await;
        let arn = l["Listeners"][0]["ListenerArn"]
            .as_str()
            .expect("arn")
            .to_string();
        ok(&r, "DeleteListener", json!({"ListenerArn": arn})).await;
    }
    let l = ok(
        &r,
        "CreateListener",
        json!({"LoadBalancerArn": lb_arn, "Protocol": "HTTP", "Port": 80, "DefaultActions": fixed("application/json")}),
    )
    .await;
    let l_arn = l["Listeners"][0]["ListenerArn"]
        .as_str()
        .expect("arn")
        .to_string();
    let long = "a".repeat(129);
    let ok128 = format!("/{}", "a".repeat(127));
    let refused = |conditions: Value, message: String| {
        let r = &r;
        let l_arn = l_arn.clone();
        async move {
            let err = call(
                r,
                "CreateRule",
                json!({"ListenerArn": l_arn, "Priority": 1, "Conditions": conditions,
                       "Actions": fixed("text/plain")}),
            )
            .await
            .expect_err("refused");
            assert_eq!(err.code, "ValidationError", "{conditions}");
            assert_eq!(err.message, message, "{conditions}");
            assert!(!err.message.contains("missing field"));
        }
    };
    refused(
        json!([{"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "version"}]}}]),
        "A query-string condition's key/value pair must have a Value".into(),
    )
    .await;
    refused(
        json!([{"Field": "host-header", "Values": ["a.example.com", "b.example.com"]}]),
        "Only one value can be specified in Values for a condition of type 'host-header'; use 'HostHeaderConfig' for more".into(),
    )
    .await;
    refused(
        json!([{"Field": "http-request-method", "Values": ["GET"]}]),
        "Values can only be specified for 'host-header' and 'path-pattern' conditions; use 'HttpRequestMethodConfig' for a condition of type 'http-request-method'".into(),
    )
    .await;
    refused(
        json!([{"Field": "path-pattern", "Values": ["/a"], "PathPatternConfig": {"Values": ["/b"]}}]),
        "You cannot provide both Values and 'PathPatternConfig' for a condition of type 'path-pattern'".into(),
    )
    .await;
    refused(
        json!([{"Field": "path-pattern", "PathPatternConfig": {"Values": [format!("/{long}")]}}]),
        format!(
            "The value '/{long}' of the 'path-pattern' condition is longer than 128 characters"
        ),
    )
    .await;
    refused(
        json!([{"Field": "host-header", "HostHeaderConfig": {"Values": [long]}}]),
        format!("The value '{long}' of the 'host-header' condition is longer than 128 characters"),
    )
    .await;
    refused(
        json!([{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": [long]}}]),
        format!("The value '{long}' of the 'http-header' condition is longer than 128 characters"),
    )
    .await;
    let name41 = "X".repeat(41);
    refused(
        json!([{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": name41, "Values": ["v"]}}]),
        format!("The value '{name41}' of the 'http-header' condition is longer than 40 characters"),
    )
    .await;
    refused(
        json!([{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X Env", "Values": ["v"]}}]),
        "The HTTP header name 'X Env' contains characters that are not valid".into(),
    )
    .await;
    let method41 = "M".repeat(41);
    refused(
        json!([{"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": [method41]}}]),
        format!("The value '{method41}' of the 'http-request-method' condition is longer than 40 characters"),
    )
    .await;
    refused(
        json!([{"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": long, "Value": "v"}]}}]),
        format!("The value '{long}' of the 'query-string' condition is longer than 128 characters"),
    )
    .await;
    refused(
        json!([{"Values": ["/x"]}]),
        "A condition field must be specified".into(),
    )
    .await;
    // At the limits, accepted.
    ok(
        &r,
        "CreateRule",
        json!({"ListenerArn": l_arn, "Priority": 1, "Actions": fixed("text/plain"), "Conditions": [
            {"Field": "path-pattern", "Values": [ok128]},
            {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X".repeat(40), "Values": ["a".repeat(128)]}},
            {"Field": "query-string", "QueryStringConfig": {"Values": [{"Value": "a".repeat(128)}]}},
            {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET", "CUSTOM_VERB"]}}]}),
    )
    .await;
}
