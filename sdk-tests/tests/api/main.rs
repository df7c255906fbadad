//! One integration-test binary (linking the AWS SDKs is slow): a module per area.
//!
//! Every test starts its own emulator (own port, own data directory), so they run in parallel.
//! Build the binary first: `cargo build -p ecs-emulator && cargo nextest run --workspace`.

mod auth;
mod autoscaling_app;
mod autoscaling_cluster;
mod cbor;
mod compose;
mod control;
mod dashboard;
mod discovery;
mod disk_full;
mod ec2;
mod ec2_instances;
mod ecs;
mod ecs_api;
mod ecs_docker;
mod ecs_services;
mod ecs_task_sets;
mod efs_api;
mod efs_tasks;
mod elb_classic;
mod elbv2;
mod errors;
mod faults;
mod lb_protocols;
mod limits;
mod logs;
mod migration;
mod persistence;
mod python;
mod query;
mod readme;
mod restjson;
mod security;
mod simulated;
mod task_endpoints;
mod testcontainers_rs;
mod workshop;

use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// The HTTP status of a failed SDK call's response.
pub fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// The SDK decoded a `NotImplemented` answer: its code, a message naming the operation, HTTP 501.
pub fn assert_not_implemented<E>(err: &SdkError<E, HttpResponse>, op: &str)
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    assert_eq!(err.code(), Some("NotImplemented"), "{err:?}");
    assert!(
        err.message().is_some_and(|m| m.contains(op)),
        "the message names {op}: {err:?}"
    );
    assert_eq!(status(err), Some(501), "{err:?}");
}
