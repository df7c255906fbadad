//! ecs-emulator: a local emulator of Amazon ECS and the services around it.
//! See docs/architecture.md for the layering.

pub mod app;
pub mod blobs;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod controllers;
pub mod dns;
pub mod efs;
pub mod faults;
pub mod feedback;
pub mod fence;
#[doc(hidden)]
pub mod fuzz_checks;
pub mod lb;
pub mod netlink;
pub mod operations_doc;
pub mod protocol;
pub mod registry;
pub mod runtime;
pub mod serve;
pub mod server;
pub mod services;
pub mod shutdown;
pub mod store;
pub mod task_endpoints;
pub mod tempdirs;
pub mod ui;
