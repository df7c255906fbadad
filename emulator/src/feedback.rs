//! One readable log line (info, target `ecs_emulator::feedback`) per thing a user caused or
//! should know: a cluster created, a task RUNNING or STOPPED, a service event (ECS's own
//! wording: deployments, steady state, unhealthy tasks), a load balancer target turning healthy
//! or unhealthy, an image pushed, a scaling activity. Reads log nothing. Quiet them with
//! `--log-level info,ecs_emulator::feedback=warn`.

/// Logs one feedback line: `feedback!("task {id} RUNNING")`.
#[macro_export]
macro_rules! feedback {
    ($($arg:tt)*) => {
        tracing::info!(target: "ecs_emulator::feedback", $($arg)*)
    };
}
