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
    let emu = Emulator::start();
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
