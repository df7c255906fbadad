//! A data dir written by an earlier version opens, and its Describe* calls answer as that version
//! answered them.
//!
//! `fixtures/migration/v1/` holds `state.redb` (the data dir) and `expected.json` (the answers),
//! both written by `write_migration_fixture` below run against the binary of main at d2f3c76
//! (before EC2 owned the machines behind container instances). To make a fixture of another
//! version: build that version's binary, then
//!
//! ```sh
//! ECS_EMULATOR_BIN=/path/to/old/ecs-emulator ECS_EMULATOR_MIGRATION_FIXTURE=fixtures/migration/vN \
//!   cargo nextest run --workspace --run-ignored only -E 'test(write_migration_fixture)'
//! ```
//!
//! The fixture is small: a cluster, a task definition, a container instance launched by
//! RunInstances (its agent registered through the user data), one registered with only an
//! identity document, a service at desired count 0 and an ELBv2 target group with the
//! RunInstances instance registered as a target.

use sdk_tests::{workspace_dir, Emulator};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const CLUSTER: &str = "mig";
const ECS_TARGET: &str = "AmazonEC2ContainerServiceV20141113";

/// The calls compared: (name, service, body). ECS calls are awsJson, the others query.
fn calls(run_instance: &str, target_group: &str) -> Vec<(String, &'static str, String)> {
    let ecs = |op: &str, body: Value| (op.to_string(), "ecs", body.to_string());
    vec![
        ecs(
            "DescribeClusters",
            json!({"clusters": [CLUSTER], "include": ["TAGS", "SETTINGS", "STATISTICS"]}),
        ),
        ecs(
            "DescribeTaskDefinition",
            json!({"taskDefinition": "mig-web:1", "include": ["TAGS"]}),
        ),
        ecs("ListContainerInstances", json!({"cluster": CLUSTER})),
        ecs(
            "DescribeServices",
            json!({"cluster": CLUSTER, "services": ["mig-svc"], "include": ["TAGS"]}),
        ),
        (
            "DescribeTargetGroups".into(),
            "elbv2",
            format!("Action=DescribeTargetGroups&Version=2015-12-01&TargetGroupArns.member.1={target_group}"),
        ),
        (
            "DescribeTargetHealth".into(),
            "elbv2",
            format!("Action=DescribeTargetHealth&Version=2015-12-01&TargetGroupArn={target_group}"),
        ),
        (
            "DescribeInstances".into(),
            "ec2",
            format!("Action=DescribeInstances&Version=2016-11-15&InstanceId.1={run_instance}"),
        ),
    ]
}

/// One call over raw HTTP; the answer as JSON (query answers as their XML text, request ids
/// removed, so two runs compare equal).
fn call(emu: &Emulator, service: &str, op: &str, body: &str) -> Value {
    let r = if service == "ecs" {
        let target = format!("{ECS_TARGET}.{op}");
        emu.raw(
            "POST",
            "/",
            &[
                ("X-Amz-Target", target.as_str()),
                ("Content-Type", "application/x-amz-json-1.1"),
            ],
            body.as_bytes(),
        )
    } else {
        emu.raw(
            "POST",
            "/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    };
    assert_eq!(r.status, 200, "{op}: {}", r.text());
    if service == "ecs" {
        r.json()
    } else {
        Value::String(without_request_id(&r.text()))
    }
}

fn without_request_id(xml: &str) -> String {
    let mut out = xml.to_string();
    for tag in ["RequestId", "requestId"] {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        if let (Some(a), Some(b)) = (out.find(&open), out.find(&close)) {
            if a < b {
                out.replace_range(a..b + close.len(), "");
            }
        }
    }
    out
}

/// The container instances as DescribeContainerInstances describes them (ARNs from the list).
fn container_instances(emu: &Emulator, listed: &Value) -> Value {
    let arns = listed["containerInstanceArns"].clone();
    let body = json!({"cluster": CLUSTER, "containerInstances": arns, "include": ["TAGS"]});
    let mut out = call(emu, "ecs", "DescribeContainerInstances", &body.to_string());
    if let Some(list) = out["containerInstances"].as_array_mut() {
        list.sort_by_key(|c| c["ec2InstanceId"].as_str().map(str::to_string));
    }
    out
}

/// Everything compared, by call name. A service's events are left to `compare` (the scheduler
/// may add new ones later; the old ones must still be there).
fn answers(emu: &Emulator, run_instance: &str, target_group: &str) -> Value {
    let mut out = serde_json::Map::new();
    for (name, service, body) in calls(run_instance, target_group) {
        let v = call(emu, service, &name, &body);
        if name == "ListContainerInstances" {
            out.insert(
                "DescribeContainerInstances".into(),
                container_instances(emu, &v),
            );
        }
        out.insert(name, v);
    }
    Value::Object(out)
}

fn fixture_dir() -> PathBuf {
    match std::env::var_os("ECS_EMULATOR_MIGRATION_FIXTURE") {
        Some(d) => workspace_dir().join(d),
        None => workspace_dir().join("fixtures/migration/v1"),
    }
}

#[tokio::test]
async fn a_data_dir_of_the_previous_version_answers_as_it_did() {
    let dir = fixture_dir();
    let expected: Value = serde_json::from_slice(
        &std::fs::read(dir.join("expected.json")).expect("fixtures/migration/v1/expected.json"),
    )
    .expect("expected.json is JSON");
    let emu = Emulator::start_from(&dir, &[]);
    let ids = &expected["ids"];
    let run_instance = ids["runInstance"].as_str().expect("runInstance");
    let target_group = ids["targetGroup"].as_str().expect("targetGroup");
    let got = answers(&emu, run_instance, target_group);
    for (name, want) in expected["answers"].as_object().expect("answers") {
        let mut want = want.clone();
        let mut have = got[name.as_str()].clone();
        if name == "DescribeServices" {
            let old: Vec<Value> = take_events(&mut want);
            let new: Vec<Value> = take_events(&mut have);
            assert!(
                new.ends_with(&old),
                "the service's old events are kept (newest first): {new:#?} vs {old:#?}"
            );
        }
        assert_eq!(have, want, "{name} answers as the previous version did");
    }
    // The container instance registered with only an identity document has its EC2 instance
    // now, which ELB and ELBv2 ask for its address.
    let doc_instance = ids["documentInstance"].as_str().expect("documentInstance");
    let body = format!("Action=DescribeInstances&Version=2016-11-15&InstanceId.1={doc_instance}");
    let described = call(&emu, "ec2", "DescribeInstances", &body);
    let xml = described.as_str().unwrap_or_default();
    assert!(
        xml.contains(doc_instance) && xml.contains("<name>running</name>"),
        "the identity-document instance is an EC2 instance after migration: {xml}"
    );
}

fn take_events(v: &mut Value) -> Vec<Value> {
    v["services"][0]
        .as_object_mut()
        .and_then(|s| s.remove("events"))
        .and_then(|e| e.as_array().cloned())
        .unwrap_or_default()
}

/// Writes the fixture with whatever binary `ECS_EMULATOR_BIN` names (see the module doc).
#[tokio::test]
#[ignore = "writes fixtures/migration/…: run by hand with an older binary"]
async fn write_migration_fixture() {
    let mut emu = Emulator::start();
    let ecs = emu.ecs();
    let ec2 = emu.ec2();
    let elbv2 = emu.elbv2();
    ecs.create_cluster()
        .cluster_name(CLUSTER)
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("team")
                .value("migration")
                .build(),
        )
        .send()
        .await
        .expect("CreateCluster");
    ecs.register_task_definition()
        .family("mig-web")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("web")
                .image("ecs-emulator-test/busybox:latest")
                .memory(64)
                .cpu(128)
                .command("httpd")
                .command("-f")
                .port_mappings(
                    aws_sdk_ecs::types::PortMapping::builder()
                        .container_port(80)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let ami = ec2
        .describe_images()
        .owners("amazon")
        .send()
        .await
        .expect("DescribeImages")
        .images()
        .iter()
        .find(|i| i.architecture().map(|a| a.as_str()) == Some("x86_64"))
        .and_then(|i| i.image_id())
        .expect("an x86_64 ECS-optimized AMI")
        .to_string();
    use base64::Engine;
    let user_data = base64::engine::general_purpose::STANDARD.encode(format!(
        "#!/bin/bash\necho ECS_CLUSTER={CLUSTER} >> /etc/ecs/ecs.config\n"
    ));
    let run = ec2
        .run_instances()
        .image_id(&ami)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Small)
        .min_count(1)
        .max_count(1)
        .user_data(user_data)
        .send()
        .await
        .expect("RunInstances");
    let run_instance = run.instances()[0].instance_id().expect("id").to_string();
    let doc = ecs
        .register_container_instance()
        .cluster(CLUSTER)
        .instance_identity_document(
            r#"{"instanceType":"m5.large","availabilityZone":"us-east-1b","instanceId":"i-0a1b2c3d4e5f60718"}"#,
        )
        .send()
        .await
        .expect("RegisterContainerInstance");
    let doc_instance = doc
        .container_instance()
        .and_then(|c| c.ec2_instance_id())
        .expect("ec2InstanceId")
        .to_string();
    // The instance agent registers the RunInstances instance.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = ecs
            .list_container_instances()
            .cluster(CLUSTER)
            .send()
            .await
            .expect("ListContainerInstances");
        if listed.container_instance_arns().len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the instance agent never registered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ecs.create_service()
        .cluster(CLUSTER)
        .service_name("mig-svc")
        .task_definition("mig-web")
        .desired_count(0)
        .send()
        .await
        .expect("CreateService");
    let vpc = ec2
        .describe_vpcs()
        .send()
        .await
        .expect("DescribeVpcs")
        .vpcs()[0]
        .vpc_id()
        .expect("vpc")
        .to_string();
    let tg = elbv2
        .create_target_group()
        .name("mig-tg")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpc)
        .send()
        .await
        .expect("CreateTargetGroup")
        .target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_string();
    elbv2
        .register_targets()
        .target_group_arn(&tg)
        .targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id(&run_instance)
                .port(8080)
                .build(),
        )
        .send()
        .await
        .expect("RegisterTargets");
    // The deployment of a service at 0 completes at once; wait until the scheduler said so.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = ecs
            .describe_services()
            .cluster(CLUSTER)
            .services("mig-svc")
            .send()
            .await
            .expect("DescribeServices");
        let done = d.services()[0]
            .deployments()
            .iter()
            .all(|d| d.rollout_state().map(|r| r.as_str()) == Some("COMPLETED"));
        if done && !d.services()[0].events().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the deployment never completed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let answers = answers(&emu, &run_instance, &tg);
    emu.kill9();
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).expect("fixture dir");
    std::fs::copy(emu.data_dir().join("state.redb"), dir.join("state.redb"))
        .expect("copy state.redb");
    let expected = json!({
        "ids": {"runInstance": run_instance, "documentInstance": doc_instance, "targetGroup": tg},
        "answers": answers,
    });
    std::fs::write(
        dir.join("expected.json"),
        serde_json::to_string_pretty(&expected).expect("json") + "\n",
    )
    .expect("write expected.json");
}
