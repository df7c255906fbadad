//! ECS control-plane operations through aws-sdk-ecs that need no container: cluster settings,
//! capacity providers and tags; task definition revisions, listing, deregistration and deletion,
//! and ECS's validation of task definitions.

use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, ClusterField, ClusterSetting, ClusterSettingName, Compatibility,
    ContainerDefinition, NetworkMode, SortOrder, Tag, TaskDefinitionFamilyStatus,
    TaskDefinitionField, TaskDefinitionStatus,
};
use sdk_tests::Emulator;

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

#[tokio::test]
async fn cluster_settings_capacity_providers_and_tags() {
    cluster_settings_capacity_providers_and_tags_on(&Emulator::start()).await
}

/// The body of `cluster_settings_capacity_providers_and_tags`, against any emulator (also the compose-started one).
pub async fn cluster_settings_capacity_providers_and_tags_on(emu: &Emulator) {
    let ecs = emu.ecs();
    let arn = ecs
        .create_cluster()
        .cluster_name("c")
        .tags(tag("team", "a"))
        .send()
        .await
        .expect("create")
        .cluster()
        .and_then(|c| c.cluster_arn().map(str::to_string))
        .expect("arn");
    ecs.update_cluster_settings()
        .cluster("c")
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("enabled")
                .build(),
        )
        .send()
        .await
        .expect("settings");
    ecs.put_cluster_capacity_providers()
        .cluster("c")
        .capacity_providers("FARGATE")
        .capacity_providers("FARGATE_SPOT")
        .default_capacity_provider_strategy(
            CapacityProviderStrategyItem::builder()
                .capacity_provider("FARGATE_SPOT")
                .weight(1)
                .build()
                .expect("item"),
        )
        .send()
        .await
        .expect("capacity providers");
    let bad = ecs
        .put_cluster_capacity_providers()
        .cluster("c")
        .capacity_providers("nope")
        .set_default_capacity_provider_strategy(Some(vec![]))
        .send()
        .await
        .expect_err("unknown provider");
    assert_eq!(bad.code(), Some("InvalidParameterException"));
    ecs.tag_resource()
        .resource_arn(&arn)
        .tags(tag("env", "dev"))
        .send()
        .await
        .expect("tag");
    ecs.untag_resource()
        .resource_arn(&arn)
        .tag_keys("team")
        .send()
        .await
        .expect("untag");
    let tags = ecs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("list tags");
    assert_eq!(tags.tags(), [tag("env", "dev")]);
    let d = ecs
        .describe_clusters()
        .clusters("c")
        .include(ClusterField::Settings)
        .include(ClusterField::Tags)
        .include(ClusterField::Statistics)
        .send()
        .await
        .expect("describe");
    let c = &d.clusters()[0];
    assert_eq!(c.settings()[0].value(), Some("enabled"));
    assert_eq!(c.capacity_providers(), ["FARGATE", "FARGATE_SPOT"]);
    assert_eq!(
        c.default_capacity_provider_strategy()[0].capacity_provider(),
        "FARGATE_SPOT"
    );
    assert_eq!(c.tags(), [tag("env", "dev")]);
    assert!(c
        .statistics()
        .iter()
        .any(|s| s.name() == Some("runningFargateTasksCount")));
}

#[tokio::test]
async fn task_definition_revisions_listing_and_deletion() {
    let emu = Emulator::start();
    let ecs = emu.ecs();
    let def = |memory: i32| {
        ContainerDefinition::builder()
            .name("app")
            .image("busybox")
            .memory(memory)
            .build()
    };
    for m in [32, 64, 128] {
        ecs.register_task_definition()
            .family("api")
            .container_definitions(def(m))
            .tags(tag("v", &m.to_string()))
            .send()
            .await
            .expect("register");
    }
    ecs.register_task_definition()
        .family("worker")
        .container_definitions(def(32))
        .send()
        .await
        .expect("register");
    let latest = ecs
        .describe_task_definition()
        .task_definition("api")
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .expect("describe");
    let td = latest.task_definition().expect("td");
    assert_eq!(td.revision(), 3);
    assert_eq!(td.status(), Some(&TaskDefinitionStatus::Active));
    assert_eq!(td.container_definitions()[0].memory(), Some(128));
    assert_eq!(td.container_definitions()[0].essential(), Some(true));
    assert_eq!(latest.tags(), [tag("v", "128")]);
    let desc = ecs
        .list_task_definitions()
        .family_prefix("api")
        .sort(SortOrder::Desc)
        .max_results(2)
        .send()
        .await
        .expect("list");
    assert_eq!(desc.task_definition_arns().len(), 2);
    assert!(desc.task_definition_arns()[0].ends_with("api:3"));
    let rest = ecs
        .list_task_definitions()
        .family_prefix("api")
        .sort(SortOrder::Desc)
        .max_results(2)
        .set_next_token(desc.next_token().map(str::to_string))
        .send()
        .await
        .expect("page 2");
    assert!(rest.task_definition_arns()[0].ends_with("api:1"));
    ecs.deregister_task_definition()
        .task_definition("api:1")
        .send()
        .await
        .expect("deregister");
    let err = ecs
        .delete_task_definitions()
        .task_definitions("api:2")
        .send()
        .await
        .expect("delete active");
    assert_eq!(
        err.failures()[0].reason(),
        Some("TASK_DEFINITION_IN_ACTIVE_STATE")
    );
    let deleted = ecs
        .delete_task_definitions()
        .task_definitions("api:1")
        .send()
        .await
        .expect("delete");
    assert_eq!(
        deleted.task_definitions()[0].status(),
        Some(&TaskDefinitionStatus::DeleteInProgress)
    );
    let families = ecs
        .list_task_definition_families()
        .status(TaskDefinitionFamilyStatus::Active)
        .send()
        .await
        .expect("families");
    assert_eq!(families.families(), ["api", "worker"]);
    let run_inactive = ecs
        .describe_task_definition()
        .task_definition("api:9")
        .send()
        .await
        .expect_err("no revision 9");
    assert_eq!(run_inactive.code(), Some("ClientException"));
}

#[tokio::test]
async fn task_definitions_are_validated_as_ecs_validates_them() {
    let emu = Emulator::start();
    let ecs = emu.ecs();
    let no_memory = ecs
        .register_task_definition()
        .family("x")
        .container_definitions(ContainerDefinition::builder().name("a").image("i").build())
        .send()
        .await
        .expect_err("no memory");
    assert_eq!(no_memory.code(), Some("ClientException"));
    assert!(no_memory
        .message()
        .is_some_and(|m| m.contains("At least one of 'memory' or 'memoryReservation'")));
    let fargate = ecs
        .register_task_definition()
        .family("f")
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu("256")
        .memory("4096")
        .container_definitions(ContainerDefinition::builder().name("a").image("i").build())
        .send()
        .await
        .expect_err("bad fargate pair");
    assert!(fargate
        .message()
        .is_some_and(|m| m
            .contains("No Fargate configuration exists for given values: 256 CPU, 4096 memory")));
    let ports = ecs
        .register_task_definition()
        .family("p")
        .network_mode(NetworkMode::Awsvpc)
        .container_definitions(
            ContainerDefinition::builder()
                .name("a")
                .image("i")
                .memory(32)
                .port_mappings(
                    aws_sdk_ecs::types::PortMapping::builder()
                        .container_port(80)
                        .host_port(81)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect_err("awsvpc ports must match");
    assert!(ports.message().is_some_and(|m| m.contains("must match")));
}

/// The code, HTTP status and message of a failed ECS call.
fn failure<E: ProvideErrorMetadata>(
    err: &aws_sdk_ecs::error::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> (String, Option<u16>, String) {
    (
        err.code().unwrap_or_default().to_string(),
        crate::status(err),
        err.message().unwrap_or_default().to_string(),
    )
}

fn bad(message: &str) -> (String, Option<u16>, String) {
    (
        "InvalidParameterException".into(),
        Some(400),
        message.into(),
    )
}

/// (task definition, subnets, security groups, ECS's message).
type NetworkCase = (&'static str, Vec<String>, Option<Vec<String>>, String);

/// Messages ECS gives for services, tasks and container instances, word for word (issue 14).
#[tokio::test]
async fn ecs_refuses_with_aws_messages() {
    ecs_refuses_with_aws_messages_on(&Emulator::start()).await
}

/// The body of `ecs_refuses_with_aws_messages`, against any emulator (also the compose-started one).
pub async fn ecs_refuses_with_aws_messages_on(emu: &Emulator) {
    use aws_sdk_ecs::types::{AwsVpcConfiguration, NetworkConfiguration};
    let ecs = emu.ecs();
    ecs.create_cluster()
        .cluster_name("msg")
        .send()
        .await
        .expect("cluster");
    for (family, mode) in [
        ("bridge", NetworkMode::Bridge),
        ("vpc", NetworkMode::Awsvpc),
    ] {
        ecs.register_task_definition()
            .family(family)
            .network_mode(mode)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("a")
                    .image("i")
                    .memory(32)
                    .build(),
            )
            .send()
            .await
            .expect("register");
    }

    let err = ecs
        .describe_tasks()
        .cluster("msg")
        .set_tasks(Some(vec![]))
        .send()
        .await
        .expect_err("no tasks");
    assert_eq!(failure(&err), bad("Tasks cannot be empty."));
    let err = ecs
        .describe_container_instances()
        .cluster("msg")
        .set_container_instances(Some(vec![]))
        .send()
        .await
        .expect_err("no instances");
    assert_eq!(failure(&err), bad("Container instance cannot be empty."));

    let missing = ecs
        .describe_services()
        .cluster("msg")
        .services("ghost")
        .send()
        .await
        .expect("DescribeServices");
    assert_eq!(
        missing.failures()[0].arn(),
        Some("arn:aws:ecs:us-east-1:000000000000:service/ghost")
    );
    assert_eq!(missing.failures()[0].reason(), Some("MISSING"));

    // awsvpcConfiguration as RunTask checks it.
    let (subnets, _) = crate::elbv2::subnets_and_vpc(emu).await;
    let create = |def: &str, subnets: Vec<String>, groups: Option<Vec<String>>| {
        let conf = AwsVpcConfiguration::builder()
            .set_subnets(Some(subnets))
            .set_security_groups(groups)
            .build()
            .expect("conf");
        ecs.create_service()
            .cluster("msg")
            .service_name("s")
            .task_definition(def)
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(conf)
                    .build(),
            )
            .send()
    };
    let cases: Vec<NetworkCase> = vec![
        ("vpc", vec![], None, "subnets can not be empty.".into()),
        (
            "vpc",
            vec![subnets[0].clone(); 17],
            None,
            "subnets can have at most 16 items.".into(),
        ),
        (
            "vpc",
            vec![subnets[0].clone()],
            Some(vec!["sg-0123456789abcdef0".into(); 6]),
            "securityGroups can have at most 5 items.".into(),
        ),
        (
            "vpc",
            vec!["subnet-0123456789abcdef0".into()],
            None,
            "Error retrieving subnet information for [subnet-0123456789abcdef0]: The subnet ID 'subnet-0123456789abcdef0' does not exist (ErrorCode: InvalidSubnetID.NotFound)".into(),
        ),
        (
            "vpc",
            vec![subnets[0].clone()],
            Some(vec!["sg-0123456789abcdef0".into()]),
            "Error retrieving security group information for [sg-0123456789abcdef0]: The security group 'sg-0123456789abcdef0' does not exist (ErrorCode: InvalidGroup.NotFound)".into(),
        ),
        (
            "bridge",
            vec![subnets[0].clone()],
            None,
            "Network Configuration is not valid for the given networkMode of this task definition.".into(),
        ),
    ];
    for (def, subnets, groups, message) in cases {
        let err = create(def, subnets, groups).await.expect_err(&message);
        assert_eq!(failure(&err), bad(&message));
    }
    let err = ecs
        .create_service()
        .cluster("msg")
        .service_name("s")
        .task_definition("vpc")
        .send()
        .await
        .expect_err("no network configuration");
    assert_eq!(
        failure(&err),
        bad("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
    );

    ecs.create_service()
        .cluster("msg")
        .service_name("up")
        .task_definition("bridge")
        .desired_count(1)
        .send()
        .await
        .expect("CreateService");
    let err = ecs
        .delete_service()
        .cluster("msg")
        .service("up")
        .send()
        .await
        .expect_err("scaled above 0");
    assert_eq!(
        failure(&err),
        bad("The service cannot be stopped while it is scaled above 0.")
    );
}

/// RegisterTaskDefinition's FARGATE rules and EFS defaults, as ECS words and stores them.
#[tokio::test]
async fn fargate_rules_and_efs_defaults_of_task_definitions() {
    use aws_sdk_ecs::types::{EfsVolumeConfiguration, PidMode, Volume};
    let emu = Emulator::start();
    let ecs = emu.ecs();
    let fargate = || {
        ecs.register_task_definition()
            .family("f")
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .container_definitions(ContainerDefinition::builder().name("a").image("i").build())
    };
    let err = fargate().send().await.expect_err("no networkMode");
    assert_eq!(
        failure(&err),
        (
            "ClientException".into(),
            Some(400),
            "Fargate only supports network mode \u{2018}awsvpc\u{2019}.".into()
        )
    );
    let err = fargate()
        .network_mode(NetworkMode::Awsvpc)
        .pid_mode(PidMode::Host)
        .send()
        .await
        .expect_err("pidMode host");
    assert_eq!(
        failure(&err),
        (
            "ClientException".into(),
            Some(400),
            "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.".into()
        )
    );
    let ok = fargate()
        .network_mode(NetworkMode::Awsvpc)
        .pid_mode(PidMode::Task)
        .volumes(
            Volume::builder()
                .name("data")
                .efs_volume_configuration(
                    EfsVolumeConfiguration::builder()
                        .file_system_id("fs-12345678")
                        .build()
                        .expect("efs"),
                )
                .build(),
        )
        .send()
        .await
        .expect("pidMode task");
    let def = ok.task_definition().expect("definition");
    assert_eq!(
        def.volumes()[0]
            .efs_volume_configuration()
            .and_then(|e| e.root_directory()),
        Some("/")
    );
}
