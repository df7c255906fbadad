//! Tests of STS, wired to IAM as app::build does (IAM first).

use super::*;
use crate::services::{Ctx, Deps, Registry};
use crate::store::Store;
use serde_json::{json, Value};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn registry(deps: &Deps) -> Registry {
    let mut r = Registry::default();
    let iam = crate::services::iam::register(&mut r, deps);
    register(&mut r, deps, iam);
    r
}

fn call(
    r: &Registry,
    svc: &str,
    op: &str,
    ctx: &Ctx,
    input: Value,
) -> Result<Value, crate::protocol::AwsError> {
    let h = r.get(svc, op).expect("handler").clone();
    futures::executor::block_on(h.call(ctx.clone(), input))
}

#[test]
fn caller_identity_of_root_and_of_assumed_role() {
    let deps = Deps::for_tests();
    let r = registry(&deps);
    let ctx = Ctx::for_tests();
    let me = call(&r, "sts", "GetCallerIdentity", &ctx, json!({})).expect("identity");
    assert_eq!(
        me,
        json!({"UserId": "000000000000", "Account": "000000000000", "Arn": "arn:aws:iam::000000000000:root"})
    );

    let err = call(
        &r,
        "sts",
        "AssumeRole",
        &ctx,
        json!({"RoleArn": "arn:aws:iam::000000000000:role/missing", "RoleSessionName": "s"}),
    )
    .expect_err("missing role");
    assert_eq!((err.code.as_ref(), err.status), ("AccessDenied", Some(403)));

    let role = call(
        &r,
        "iam",
        "CreateRole",
        &ctx,
        json!({"RoleName": "app", "AssumeRolePolicyDocument": TRUST}),
    )
    .expect("role");
    let role_id = role["Role"]["RoleId"].as_str().expect("id").to_string();
    let out = call(&r, "sts", "AssumeRole", &ctx, json!({"RoleArn": "arn:aws:iam::000000000000:role/app", "RoleSessionName": "sess", "DurationSeconds": 900}))
        .expect("assume");
    let c = &out["Credentials"];
    let key = c["AccessKeyId"].as_str().expect("key").to_string();
    assert!(key.starts_with("ASIA") && key.len() == 20);
    assert_eq!(c["SecretAccessKey"].as_str().map(str::len), Some(40));
    assert!(c["SessionToken"].as_str().is_some_and(|t| t.len() > 100));
    assert_eq!(c["Expiration"], json!(ctx.now + 900.0));
    assert_eq!(
        out["AssumedRoleUser"]["AssumedRoleId"],
        format!("{role_id}:sess")
    );
    assert_eq!(
        out["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::000000000000:assumed-role/app/sess"
    );

    // Signed with the new key, the caller is the assumed role.
    let mut as_role = ctx.clone();
    as_role.access_key = Some(key);
    let me = call(&r, "sts", "GetCallerIdentity", &as_role, json!({})).expect("identity");
    assert_eq!(me["Arn"], "arn:aws:sts::000000000000:assumed-role/app/sess");
    assert_eq!(me["UserId"], format!("{role_id}:sess"));
    as_role.now += 901.0;
    assert_eq!(
        call(&r, "sts", "GetCallerIdentity", &as_role, json!({}))
            .expect_err("expired")
            .code,
        "ExpiredTokenException"
    );

    assert_eq!(
        call(&r, "sts", "AssumeRole", &ctx, json!({"RoleArn": "arn:aws:iam::000000000000:role/app", "RoleSessionName": "s", "DurationSeconds": 7200}))
            .expect_err("too long").code,
        "ValidationError"
    );
    // A role of another account is not checked here.
    let other = call(
        &r,
        "sts",
        "AssumeRole",
        &ctx,
        json!({"RoleArn": "arn:aws:iam::111122223333:role/x", "RoleSessionName": "s"}),
    )
    .expect("cross account");
    assert_eq!(
        other["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::111122223333:assumed-role/x/s"
    );
    assert_eq!(other["Credentials"]["Expiration"], json!(ctx.now + 3600.0));
}

#[test]
fn session_tokens_and_handle() {
    let deps = Deps::for_tests();
    let r = registry(&deps);
    let ctx = Ctx::for_tests();
    let out = call(&r, "sts", "GetSessionToken", &ctx, json!({})).expect("token");
    let key = out["Credentials"]["AccessKeyId"].as_str().expect("key");
    assert_eq!(out["Credentials"]["Expiration"], json!(ctx.now + 43200.0));
    let sts = r.handle::<Sts>().expect("handle");
    let c = sts.credentials(key).expect("stored");
    assert_eq!(c.arn, "arn:aws:iam::000000000000:root");
    assert_eq!(
        call(
            &r,
            "sts",
            "GetSessionToken",
            &ctx,
            json!({"DurationSeconds": 100})
        )
        .expect_err("short")
        .code,
        "ValidationError"
    );
}

/// STS over `store`, with the IAM it asks about roles.
fn sts_over(store: &std::sync::Arc<Store>) -> Sts {
    let iam = crate::services::iam::handle::Iam::new(std::sync::Arc::new(
        crate::services::iam::state::State::new(store),
    ));
    Sts::new(
        std::sync::Arc::new(state::State::new(store)),
        std::sync::Arc::new(iam),
    )
}

#[test]
fn issued_credentials_survive_reopening_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = {
        let store = Store::open(dir.path()).expect("open");
        let sts = sts_over(&store);
        sts.assume_role(
            "000000000000",
            "arn:aws:iam::000000000000:root",
            "arn:aws:iam::999999999999:role/r",
            "s",
            None,
            100.0,
        )
        .expect("assume")
        .access_key_id
    };
    let store = Store::open(dir.path()).expect("reopen");
    let sts = sts_over(&store);
    let c = sts.credentials(&key).expect("kept");
    assert_eq!(c.expiration, 3700.0);
    assert_eq!(
        c.role_arn.as_deref(),
        Some("arn:aws:iam::999999999999:role/r")
    );
}
