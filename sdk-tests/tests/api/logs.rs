//! awsJson 1.1: CloudWatch Logs and SSM.

use crate::status;
use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use sdk_tests::Emulator;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

#[tokio::test]
async fn log_group_stream_put_and_get_events() {
    log_group_stream_put_and_get_events_on(&Emulator::start()).await
}

/// The body of `log_group_stream_put_and_get_events`, against any emulator (also the compose-started one).
pub async fn log_group_stream_put_and_get_events_on(emu: &Emulator) {
    let logs = emu.logs();
    logs.create_log_group()
        .log_group_name("/ecs/web")
        .send()
        .await
        .expect("CreateLogGroup");
    logs.create_log_stream()
        .log_group_name("/ecs/web")
        .log_stream_name("web/app/1")
        .send()
        .await
        .expect("CreateLogStream");

    let t = now_ms();
    logs.put_log_events()
        .log_group_name("/ecs/web")
        .log_stream_name("web/app/1")
        .log_events(
            InputLogEvent::builder()
                .timestamp(t)
                .message("first line")
                .build()
                .expect("event"),
        )
        .log_events(
            InputLogEvent::builder()
                .timestamp(t + 1)
                .message("second line")
                .build()
                .expect("event"),
        )
        .send()
        .await
        .expect("PutLogEvents");

    let got = logs
        .get_log_events()
        .log_group_name("/ecs/web")
        .log_stream_name("web/app/1")
        .start_from_head(true)
        .send()
        .await
        .expect("GetLogEvents");
    let messages: Vec<_> = got.events().iter().filter_map(|e| e.message()).collect();
    assert_eq!(messages, vec!["first line", "second line"]);
    assert_eq!(got.events()[0].timestamp(), Some(t));
    assert_eq!(got.events()[1].timestamp(), Some(t + 1));
    assert!(got.events()[0]
        .ingestion_time()
        .is_some_and(|i| i >= t - 60_000));
    assert!(got.next_forward_token().is_some());

    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/ecs/")
        .send()
        .await
        .expect("DescribeLogGroups");
    let names: Vec<_> = groups
        .log_groups()
        .iter()
        .filter_map(|g| g.log_group_name())
        .collect();
    assert_eq!(names, vec!["/ecs/web"]);
}

#[tokio::test]
async fn duplicate_log_group_is_resource_already_exists() {
    let emu = Emulator::start();
    let logs = emu.logs();
    logs.create_log_group()
        .log_group_name("dup")
        .send()
        .await
        .expect("CreateLogGroup");
    let err = logs
        .create_log_group()
        .log_group_name("dup")
        .send()
        .await
        .expect_err("a second group of the same name");
    assert_eq!(
        err.code(),
        Some("ResourceAlreadyExistsException"),
        "{err:?}"
    );
    assert_eq!(status(&err), Some(400));
    assert!(err
        .into_service_error()
        .is_resource_already_exists_exception());

    let err = logs
        .create_log_stream()
        .log_group_name("no-such-group")
        .log_stream_name("s")
        .send()
        .await
        .expect_err("a stream in an unknown group");
    assert!(
        err.into_service_error().is_resource_not_found_exception(),
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn ssm_ecs_optimized_ami_parameter() {
    let emu = Emulator::start();
    let name = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id";
    let out = emu
        .ssm()
        .get_parameter()
        .name(name)
        .send()
        .await
        .expect("GetParameter");
    let p = out.parameter().expect("parameter");
    assert_eq!(p.name(), Some(name));
    let value = p.value().expect("value");
    assert!(
        value.starts_with("ami-") && value.len() > 4,
        "an AMI id: {value}"
    );
    assert_eq!(p.r#type().map(|t| t.as_str()), Some("String"));

    let err = emu
        .ssm()
        .get_parameter()
        .name("/no/such/parameter")
        .send()
        .await
        .expect_err("an unknown parameter");
    assert!(
        err.into_service_error().is_parameter_not_found(),
        "ParameterNotFound"
    );
}
