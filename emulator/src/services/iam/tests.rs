//! Handler-level tests of IAM.

use super::state::State;
use super::*;
use crate::services::{Ctx, Deps};
use crate::store::Store;
use serde_json::{json, Value};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const PERMS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
const EXEC: &str = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";

fn setup() -> (State, Ctx) {
    (State::new(&Deps::for_tests().store), Ctx::for_tests())
}

fn code(r: Result<Value, crate::protocol::AwsError>) -> String {
    r.err().map(|e| e.code.to_string()).unwrap_or_default()
}

#[test]
fn roles_lifecycle_with_policies_and_conflicts() {
    let (s, ctx) = setup();
    let out = roles::create_role(
        &s,
        &ctx,
        json!({"RoleName": "taskExec", "AssumeRolePolicyDocument": TRUST,
        "Tags": [{"Key": "team", "Value": "a"}]}),
    )
    .expect("create");
    let role = &out["Role"];
    assert_eq!(role["Arn"], "arn:aws:iam::000000000000:role/taskExec");
    let id = role["RoleId"].as_str().expect("id");
    assert!(id.starts_with("AROA") && id.len() == 21);
    assert!(id[4..]
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    assert_eq!(role["CreateDate"], 1_767_225_600.0);
    assert_eq!(role["AssumeRolePolicyDocument"], documents::encode(TRUST));
    assert_eq!(
        code(roles::create_role(
            &s,
            &ctx,
            json!({"RoleName": "TASKEXEC", "AssumeRolePolicyDocument": TRUST})
        )),
        "EntityAlreadyExistsException"
    );
    assert_eq!(
        code(roles::create_role(
            &s,
            &ctx,
            json!({"RoleName": "bad", "AssumeRolePolicyDocument": "{not json"})
        )),
        "MalformedPolicyDocumentException"
    );
    assert_eq!(
        code(roles::get_role(&s, &ctx, json!({"RoleName": "nope"}))),
        "NoSuchEntityException"
    );

    policies::attach_role_policy(&s, &ctx, json!({"RoleName": "taskExec", "PolicyArn": EXEC}))
        .expect("attach");
    assert_eq!(
        code(policies::attach_role_policy(
            &s,
            &ctx,
            json!({"RoleName": "taskExec", "PolicyArn": "arn:aws:iam::aws:policy/Nope"})
        )),
        "NoSuchEntityException"
    );
    let listed = policies::list_attached_role_policies(&s, &ctx, json!({"RoleName": "taskExec"}))
        .expect("list");
    assert_eq!(
        listed["AttachedPolicies"][0]["PolicyName"],
        "AmazonECSTaskExecutionRolePolicy"
    );
    let p = policies::get_policy(&s, &ctx, json!({"PolicyArn": EXEC})).expect("get policy");
    assert_eq!(p["Policy"]["AttachmentCount"], 1);

    // URL-encoded documents are accepted.
    roles::put_role_policy(&s, &ctx, json!({"RoleName": "taskExec", "PolicyName": "s3", "PolicyDocument": documents::encode(PERMS)}))
        .expect("put inline");
    let got = roles::get_role_policy(
        &s,
        &ctx,
        json!({"RoleName": "taskExec", "PolicyName": "s3"}),
    )
    .expect("get inline");
    assert_eq!(got["PolicyDocument"], documents::encode(PERMS));
    assert_eq!(
        code(roles::get_role_policy(
            &s,
            &ctx,
            json!({"RoleName": "taskExec", "PolicyName": "x"})
        )),
        "NoSuchEntityException"
    );
    let names =
        roles::list_role_policies(&s, &ctx, json!({"RoleName": "taskExec"})).expect("names");
    assert_eq!(names["PolicyNames"], json!(["s3"]));

    assert_eq!(
        code(roles::delete_role(
            &s,
            &ctx,
            json!({"RoleName": "taskExec"})
        )),
        "DeleteConflictException"
    );
    policies::detach_role_policy(&s, &ctx, json!({"RoleName": "taskExec", "PolicyArn": EXEC}))
        .expect("detach");
    assert_eq!(
        code(policies::detach_role_policy(
            &s,
            &ctx,
            json!({"RoleName": "taskExec", "PolicyArn": EXEC})
        )),
        "NoSuchEntityException"
    );
    assert_eq!(
        code(roles::delete_role(
            &s,
            &ctx,
            json!({"RoleName": "taskExec"})
        )),
        "DeleteConflictException"
    );
    roles::delete_role_policy(
        &s,
        &ctx,
        json!({"RoleName": "taskExec", "PolicyName": "s3"}),
    )
    .expect("del inline");

    roles::tag_role(&s, &ctx, json!({"RoleName": "taskExec", "Tags": [{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "b"}]}))
        .expect("tag");
    roles::untag_role(
        &s,
        &ctx,
        json!({"RoleName": "taskExec", "TagKeys": ["env"]}),
    )
    .expect("untag");
    let tags = roles::list_role_tags(&s, &ctx, json!({"RoleName": "taskExec"})).expect("tags");
    assert_eq!(tags["Tags"], json!([{"Key": "team", "Value": "b"}]));
    assert_eq!(tags["IsTruncated"], false);

    roles::update_assume_role_policy(
        &s,
        &ctx,
        json!({"RoleName": "taskExec", "PolicyDocument": TRUST.replace("ecs-tasks", "ec2")}),
    )
    .expect("update trust");
    assert_eq!(
        code(roles::update_assume_role_policy(
            &s,
            &ctx,
            json!({"RoleName": "taskExec", "PolicyDocument": PERMS})
        )),
        "MalformedPolicyDocumentException"
    );
    roles::delete_role(&s, &ctx, json!({"RoleName": "taskExec"})).expect("delete");
    assert_eq!(
        code(roles::delete_role(
            &s,
            &ctx,
            json!({"RoleName": "taskExec"})
        )),
        "NoSuchEntityException"
    );
}

#[test]
fn list_roles_pages_and_path_prefix() {
    let (s, ctx) = setup();
    for (name, path) in [("a", "/"), ("b", "/svc/"), ("c", "/svc/"), ("d", "/")] {
        roles::create_role(
            &s,
            &ctx,
            json!({"RoleName": name, "Path": path, "AssumeRolePolicyDocument": TRUST}),
        )
        .expect("create");
    }
    let p1 = roles::list_roles(&s, &ctx, json!({"MaxItems": 3})).expect("p1");
    assert_eq!(p1["Roles"].as_array().map(Vec::len), Some(3));
    assert_eq!(p1["IsTruncated"], true);
    let p2 =
        roles::list_roles(&s, &ctx, json!({"MaxItems": 3, "Marker": p1["Marker"]})).expect("p2");
    assert_eq!(p2["Roles"][0]["RoleName"], "d");
    assert_eq!(p2["IsTruncated"], false);
    let svc = roles::list_roles(&s, &ctx, json!({"PathPrefix": "/svc/"})).expect("svc");
    assert_eq!(svc["Roles"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        svc["Roles"][0]["Arn"],
        "arn:aws:iam::000000000000:role/svc/b"
    );
}

#[test]
fn customer_and_aws_managed_policies() {
    let (s, ctx) = setup();
    let out = policies::create_policy(
        &s,
        &ctx,
        json!({"PolicyName": "read", "PolicyDocument": PERMS, "Description": "r"}),
    )
    .expect("create");
    let arn = out["Policy"]["Arn"].as_str().expect("arn").to_string();
    assert_eq!(arn, "arn:aws:iam::000000000000:policy/read");
    assert_eq!(out["Policy"]["DefaultVersionId"], "v1");
    assert_eq!(
        code(policies::create_policy(
            &s,
            &ctx,
            json!({"PolicyName": "read", "PolicyDocument": PERMS})
        )),
        "EntityAlreadyExistsException"
    );
    assert_eq!(
        code(policies::create_policy(
            &s,
            &ctx,
            json!({"PolicyName": "trust", "PolicyDocument": TRUST})
        )),
        "MalformedPolicyDocumentException"
    );
    let v = policies::get_policy_version(&s, &ctx, json!({"PolicyArn": arn, "VersionId": "v1"}))
        .expect("version");
    assert_eq!(v["PolicyVersion"]["Document"], documents::encode(PERMS));
    assert_eq!(
        code(policies::get_policy_version(
            &s,
            &ctx,
            json!({"PolicyArn": arn, "VersionId": "v2"})
        )),
        "NoSuchEntityException"
    );

    let local = policies::list_policies(&s, &ctx, json!({"Scope": "Local"})).expect("local");
    assert_eq!(local["Policies"].as_array().map(Vec::len), Some(1));
    let aws = policies::list_policies(&s, &ctx, json!({"Scope": "AWS"})).expect("aws");
    let names: Vec<&str> = aws["Policies"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["PolicyName"].as_str())
        .collect();
    for n in [
        "AmazonECSTaskExecutionRolePolicy",
        "AmazonEC2ContainerServiceforEC2Role",
        "AmazonECSInfrastructureRolePolicyForVolumes",
        "AmazonEC2ContainerRegistryReadOnly",
        "CloudWatchLogsFullAccess",
        "AmazonSSMReadOnlyAccess",
        "AdministratorAccess",
        "ReadOnlyAccess",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    let admin = policies::get_policy_version(
        &s,
        &ctx,
        json!({"PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess", "VersionId": "v1"}),
    )
    .expect("admin");
    assert!(admin["PolicyVersion"]["Document"]
        .as_str()
        .expect("doc")
        .contains("%22Action%22%3A%22%2A%22"));

    roles::create_role(
        &s,
        &ctx,
        json!({"RoleName": "r", "AssumeRolePolicyDocument": TRUST}),
    )
    .expect("role");
    policies::attach_role_policy(&s, &ctx, json!({"RoleName": "r", "PolicyArn": arn}))
        .expect("attach");
    let attached =
        policies::list_policies(&s, &ctx, json!({"OnlyAttached": true})).expect("attached");
    assert_eq!(attached["Policies"][0]["Arn"], arn.as_str());
    assert_eq!(
        code(policies::delete_policy(&s, &ctx, json!({"PolicyArn": arn}))),
        "DeleteConflictException"
    );
    policies::detach_role_policy(&s, &ctx, json!({"RoleName": "r", "PolicyArn": arn}))
        .expect("detach");
    policies::delete_policy(&s, &ctx, json!({"PolicyArn": arn})).expect("delete");
    assert_eq!(
        code(policies::get_policy(&s, &ctx, json!({"PolicyArn": arn}))),
        "NoSuchEntityException"
    );
    assert_eq!(
        code(policies::get_policy(
            &s,
            &ctx,
            json!({"PolicyArn": "not-an-arn"})
        )),
        "InvalidInputException"
    );
}

#[test]
fn instance_profiles_hold_one_role() {
    let (s, ctx) = setup();
    roles::create_role(
        &s,
        &ctx,
        json!({"RoleName": "ecsInstanceRole", "AssumeRolePolicyDocument": TRUST}),
    )
    .expect("role");
    roles::create_role(
        &s,
        &ctx,
        json!({"RoleName": "other", "AssumeRolePolicyDocument": TRUST}),
    )
    .expect("role");
    let out = instance_profiles::create_instance_profile(
        &s,
        &ctx,
        json!({"InstanceProfileName": "ecsInstanceProfile"}),
    )
    .expect("create");
    assert_eq!(
        out["InstanceProfile"]["Arn"],
        "arn:aws:iam::000000000000:instance-profile/ecsInstanceProfile"
    );
    assert!(out["InstanceProfile"]["InstanceProfileId"]
        .as_str()
        .expect("id")
        .starts_with("AIPA"));
    assert_eq!(
        code(instance_profiles::create_instance_profile(
            &s,
            &ctx,
            json!({"InstanceProfileName": "ecsInstanceProfile"})
        )),
        "EntityAlreadyExistsException"
    );
    instance_profiles::add_role_to_instance_profile(
        &s,
        &ctx,
        json!({"InstanceProfileName": "ecsInstanceProfile", "RoleName": "ecsInstanceRole"}),
    )
    .expect("add");
    assert_eq!(
        code(instance_profiles::add_role_to_instance_profile(
            &s,
            &ctx,
            json!({"InstanceProfileName": "ecsInstanceProfile", "RoleName": "other"})
        )),
        "LimitExceededException"
    );
    let got = instance_profiles::get_instance_profile(
        &s,
        &ctx,
        json!({"InstanceProfileName": "ecsInstanceProfile"}),
    )
    .expect("get");
    assert_eq!(
        got["InstanceProfile"]["Roles"][0]["RoleName"],
        "ecsInstanceRole"
    );
    assert_eq!(
        code(roles::delete_role(
            &s,
            &ctx,
            json!({"RoleName": "ecsInstanceRole"})
        )),
        "DeleteConflictException"
    );
    assert_eq!(
        code(instance_profiles::delete_instance_profile(
            &s,
            &ctx,
            json!({"InstanceProfileName": "ecsInstanceProfile"})
        )),
        "DeleteConflictException"
    );
    instance_profiles::remove_role_from_instance_profile(
        &s,
        &ctx,
        json!({"InstanceProfileName": "ecsInstanceProfile", "RoleName": "ecsInstanceRole"}),
    )
    .expect("remove");
    let list = instance_profiles::list_instance_profiles(&s, &ctx, json!({})).expect("list");
    assert_eq!(list["InstanceProfiles"][0]["Roles"], json!([]));
    instance_profiles::delete_instance_profile(
        &s,
        &ctx,
        json!({"InstanceProfileName": "ecsInstanceProfile"}),
    )
    .expect("delete");
    assert_eq!(
        code(instance_profiles::get_instance_profile(
            &s,
            &ctx,
            json!({"InstanceProfileName": "ecsInstanceProfile"})
        )),
        "NoSuchEntityException"
    );
}

#[test]
fn handle_finds_roles_by_name_and_arn() {
    let deps = Deps::for_tests();
    let mut r = crate::services::Registry::default();
    register(&mut r, &deps);
    let iam = r.handle::<Iam>().expect("handle");
    // Create through the registered handler, which shares the handle's state.
    let h = r.get("iam", "CreateRole").expect("handler").clone();
    let ctx = Ctx::for_tests();
    futures::executor::block_on(h.call(
        ctx.clone(),
        json!({"RoleName": "app", "Path": "/x/", "AssumeRolePolicyDocument": TRUST}),
    ))
    .expect("create");
    let by_name = iam.role("000000000000", "app").expect("by name");
    assert_eq!(by_name.arn, "arn:aws:iam::000000000000:role/x/app");
    assert!(iam
        .role_by_arn("arn:aws:iam::000000000000:role/x/app")
        .is_some());
    assert!(iam
        .role_by_arn("arn:aws:iam::000000000000:role/app")
        .is_none());
    assert!(iam.role("111111111111", "app").is_none());
    assert_eq!(
        parse_role_arn("arn:aws:iam::1:role/a/b/c"),
        Some(("1".into(), "/a/b/".into(), "c".into()))
    );
    assert!(iam.policy("000000000000", EXEC).is_some());
}

#[test]
fn state_survives_reopening_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = Ctx::for_tests();
    {
        let store = Store::open(dir.path()).expect("open");
        let s = State::new(&store);
        roles::create_role(
            &s,
            &ctx,
            json!({"RoleName": "durable", "AssumeRolePolicyDocument": TRUST}),
        )
        .expect("role");
        policies::attach_role_policy(&s, &ctx, json!({"RoleName": "durable", "PolicyArn": EXEC}))
            .expect("attach");
    }
    let store = Store::open(dir.path()).expect("reopen");
    let s = State::new(&store);
    let role = s.role("000000000000", "durable").expect("role");
    assert_eq!(role.attached_policies, vec![EXEC.to_string()]);
    assert_eq!(role.assume_role_policy_document, TRUST);
}
