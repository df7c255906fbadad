//! Controllers: background loops on the emulator clock that drive actual state (Docker) towards
//! the desired state the APIs record, and record what they observe.

pub mod agent;
pub mod alarms;
pub mod autoscaling;
pub mod capacity;
pub mod deployment_alarms;
pub mod discovery;
pub mod instance_agent;
pub mod lb_targets;
pub mod metrics;
#[cfg(test)]
mod rollout_tests;
pub mod scheduler;
#[cfg(test)]
mod task_set_tests;
#[cfg(test)]
pub mod testkit;
