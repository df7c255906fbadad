//! awsQuery through the SDKs: STS, IAM, ELBv2, EC2 Auto Scaling.
//!
//! ELBv2 and Auto Scaling are being built by other agents: their tests check the real behaviour once
//! the emulator lists the operation as implemented (`ecs-emulator operations`), and until then the
//! query error shape of the `NotImplemented` answer (code and HTTP 501), decoded by the SDK.

use crate::assert_not_implemented;
use aws_sdk_iam::error::ProvideErrorMetadata;
use sdk_tests::{implemented, Emulator, ACCOUNT};

const TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

#[tokio::test]
async fn sts_get_caller_identity_names_the_account() {
    let emu = Emulator::start();
    let out = emu
        .sts()
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    assert_eq!(out.account(), Some(ACCOUNT));
    let arn = out.arn().expect("arn");
    assert!(
        arn.starts_with(&format!("arn:aws:iam::{ACCOUNT}:"))
            || arn.starts_with(&format!("arn:aws:sts::{ACCOUNT}:")),
        "{arn}"
    );
    assert!(out.user_id().is_some_and(|u| !u.is_empty()));
}

#[tokio::test]
async fn iam_create_and_get_role() {
    let emu = Emulator::start();
    let iam = emu.iam();
    let created = iam
        .create_role()
        .role_name("task-role")
        .path("/service/")
        .assume_role_policy_document(TRUST_POLICY)
        .description("for tests")
        .send()
        .await
        .expect("CreateRole");
    let role = created.role().expect("role in the CreateRole output");
    assert_eq!(role.role_name(), "task-role");
    assert_eq!(role.path(), "/service/");
    assert_eq!(
        role.arn(),
        format!("arn:aws:iam::{ACCOUNT}:role/service/task-role")
    );
    assert!(role.role_id().starts_with("AROA"), "{}", role.role_id());

    let got = iam
        .get_role()
        .role_name("task-role")
        .send()
        .await
        .expect("GetRole");
    let got = got.role().expect("role in the GetRole output");
    assert_eq!(got.arn(), role.arn());
    assert_eq!(got.role_id(), role.role_id());
    assert_eq!(got.description(), Some("for tests"));
    // The trust policy comes back URL-encoded (as AWS does) or plain; either way the same document.
    let doc = got.assume_role_policy_document().expect("trust policy");
    let decoded: String = form_decode(doc);
    let doc_json: serde_json::Value = serde_json::from_str(&decoded).expect("policy is JSON");
    let sent: serde_json::Value = serde_json::from_str(TRUST_POLICY).expect("JSON");
    assert_eq!(doc_json, sent);

    let err = iam
        .create_role()
        .role_name("task-role")
        .assume_role_policy_document(TRUST_POLICY)
        .send()
        .await
        .expect_err("a second role of the same name");
    assert_eq!(err.code(), Some("EntityAlreadyExists"), "{err:?}");
    assert!(err
        .into_service_error()
        .is_entity_already_exists_exception());

    let err = iam
        .get_role()
        .role_name("nobody")
        .send()
        .await
        .expect_err("an unknown role");
    assert_eq!(err.code(), Some("NoSuchEntity"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
    assert!(err.into_service_error().is_no_such_entity_exception());
}

fn form_decode(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn elbv2_describe_load_balancers_error_decoding() {
    let emu = Emulator::start();
    let elb = emu.elbv2();
    if implemented("elbv2", "DescribeLoadBalancers") {
        let out = elb
            .describe_load_balancers()
            .send()
            .await
            .expect("DescribeLoadBalancers");
        assert!(out.load_balancers().is_empty(), "a fresh emulator has none");
        let err = elb
            .describe_load_balancers()
            .names("no-such-lb")
            .send()
            .await
            .expect_err("an unknown load balancer name");
        assert_eq!(err.code(), Some("LoadBalancerNotFound"), "{err:?}");
        assert!(err
            .into_service_error()
            .is_load_balancer_not_found_exception());
    } else {
        let err = elb
            .describe_load_balancers()
            .send()
            .await
            .expect_err("not implemented yet");
        assert_not_implemented(&err, "DescribeLoadBalancers");
    }
}

#[tokio::test]
async fn autoscaling_describe_groups_error_decoding() {
    let emu = Emulator::start();
    let asg = emu.autoscaling();
    if implemented("autoscaling", "DescribeAutoScalingGroups") {
        let out = asg
            .describe_auto_scaling_groups()
            .send()
            .await
            .expect("DescribeAutoScalingGroups");
        assert!(
            out.auto_scaling_groups().is_empty(),
            "a fresh emulator has none"
        );
        let err = asg
            .delete_auto_scaling_group()
            .auto_scaling_group_name("no-such-group")
            .send()
            .await
            .expect_err("deleting an unknown group");
        assert_eq!(err.code(), Some("ValidationError"), "{err:?}");
    } else {
        let err = asg
            .describe_auto_scaling_groups()
            .send()
            .await
            .expect_err("not implemented yet");
        assert_not_implemented(&err, "DescribeAutoScalingGroups");
    }
}

/// A query-string Action never overrides the body's (the signed form body is the call).
#[test]
fn a_query_string_action_never_overrides_the_body() {
    let emu = sdk_tests::Emulator::start();
    let r = emu.raw(
        "POST",
        "/?Action=CreateRole&Version=2010-05-08&RoleName=from-the-query&AssumeRolePolicyDocument=%7B%7D",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"Action=GetCallerIdentity&Version=2011-06-15",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("<GetCallerIdentityResponse"),
        "{}",
        r.text()
    );
    let r = emu.raw(
        "POST",
        "/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"Action=GetRole&Version=2010-05-08&RoleName=from-the-query",
    );
    assert_eq!(r.status, 404, "no role was created: {}", r.text());
}
