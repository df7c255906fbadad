//! Controllers: background loops on the emulator clock that drive actual state (Docker) towards
//! the desired state the APIs record, and record what they observe.

pub mod agent;
pub mod alarms;
pub mod autoscaling;
pub mod capacity;
pub mod discovery;
pub mod instance_agent;
pub mod lb_targets;
pub mod metrics;
pub mod scheduler;
