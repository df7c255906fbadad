//! Durable state: what an acknowledged call wrote survives kill -9; --ephemeral keeps nothing.

use sdk_tests::{Emulator, ACCOUNT, REGION};

#[tokio::test]
async fn cluster_survives_kill_9_and_restart() {
    let mut emu = Emulator::start();
    emu.ecs()
        .create_cluster()
        .cluster_name("durable")
        .send()
        .await
        .expect("CreateCluster");
    let first_port = emu.port();
    emu.kill9();
    emu.restart();
    assert!(
        emu.data_dir().join("state.redb").is_file(),
        "state lives in <data dir>/state.redb"
    );
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert_eq!(
        listed.cluster_arns(),
        [format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/durable")],
        "after kill -9 and restart on the same data dir (ports {first_port} then {})",
        emu.port()
    );
    let described = emu
        .ecs()
        .describe_clusters()
        .clusters("durable")
        .send()
        .await
        .expect("DescribeClusters");
    assert_eq!(described.clusters().len(), 1);
    assert_eq!(described.clusters()[0].status(), Some("ACTIVE"));

    // And a second crash right after more writes.
    emu.ecs()
        .delete_cluster()
        .cluster("durable")
        .send()
        .await
        .expect("DeleteCluster");
    emu.restart();
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert!(listed.cluster_arns().is_empty(), "{listed:?}");
}

#[tokio::test]
async fn ephemeral_state_is_gone_after_restart() {
    let mut emu = Emulator::start_with(&["--ephemeral"]);
    emu.ecs()
        .create_cluster()
        .cluster_name("fleeting")
        .send()
        .await
        .expect("CreateCluster");
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert_eq!(listed.cluster_arns().len(), 1, "listed before the restart");
    emu.restart();
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert!(listed.cluster_arns().is_empty(), "{listed:?}");
}

/// Every service keeps what it acknowledged: EC2, CloudWatch, Logs and IAM state after kill -9.
#[tokio::test]
async fn other_services_survive_kill_9() {
    let mut emu = Emulator::start();
    let vpc_id = emu
        .ec2()
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .send()
        .await
        .expect("CreateVpc")
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    emu.cloudwatch()
        .put_metric_data()
        .namespace("Durable/Test")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("Kept")
                .value(7.0)
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData");
    let logs = emu.logs();
    logs.create_log_group()
        .log_group_name("durable")
        .send()
        .await
        .expect("CreateLogGroup");
    logs.create_log_stream()
        .log_group_name("durable")
        .log_stream_name("s")
        .send()
        .await
        .expect("CreateLogStream");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    logs.put_log_events()
        .log_group_name("durable")
        .log_stream_name("s")
        .log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now_ms)
                .message("kept line")
                .build()
                .expect("event"),
        )
        .send()
        .await
        .expect("PutLogEvents");
    emu.iam()
        .create_role()
        .role_name("durable-role")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("CreateRole");

    emu.restart(); // SIGKILL, then the same data dir

    let vpcs = emu
        .ec2()
        .describe_vpcs()
        .vpc_ids(&vpc_id)
        .send()
        .await
        .expect("DescribeVpcs after restart");
    assert_eq!(vpcs.vpcs().len(), 1);
    assert_eq!(vpcs.vpcs()[0].cidr_block(), Some("10.9.0.0/16"));
    let default_vpcs = emu
        .ec2()
        .describe_vpcs()
        .send()
        .await
        .expect("DescribeVpcs");
    assert_eq!(
        default_vpcs
            .vpcs()
            .iter()
            .filter(|v| v.is_default() == Some(true))
            .count(),
        1,
        "still exactly one default VPC after a restart"
    );

    let metrics = emu
        .cloudwatch()
        .list_metrics()
        .namespace("Durable/Test")
        .send()
        .await
        .expect("ListMetrics after restart");
    assert_eq!(metrics.metrics().len(), 1, "{metrics:?}");

    let events = emu
        .logs()
        .get_log_events()
        .log_group_name("durable")
        .log_stream_name("s")
        .start_from_head(true)
        .send()
        .await
        .expect("GetLogEvents after restart");
    let messages: Vec<_> = events.events().iter().filter_map(|e| e.message()).collect();
    assert_eq!(messages, vec!["kept line"]);

    let role = emu
        .iam()
        .get_role()
        .role_name("durable-role")
        .send()
        .await
        .expect("GetRole after restart");
    assert_eq!(
        role.role().map(|r| r.arn().to_string()),
        Some(format!("arn:aws:iam::{ACCOUNT}:role/durable-role"))
    );
}
