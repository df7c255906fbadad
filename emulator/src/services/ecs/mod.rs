//! Amazon ECS: clusters, task definitions, container instances, tasks, services.

mod arns;
mod clusters;
mod tags;
mod task_definitions;

pub use arns::ResourceArn;
pub use clusters::Cluster;
pub use task_definitions::TaskDef;

use super::{Deps, Registry};
use crate::store::Table;
use std::sync::Arc;

/// ECS's state. Other parts of the program reach it with `registry.handle::<Ecs>()`.
pub struct Ecs {
    pub clusters: Arc<Table<Cluster>>,
    pub task_definitions: Arc<Table<TaskDef>>,
}

pub fn register(r: &mut Registry, deps: &Deps) {
    let ecs = Arc::new(Ecs {
        clusters: Table::open(&deps.store, "ecs.clusters"),
        task_definitions: Table::open(&deps.store, "ecs.task_definitions"),
    });
    clusters::register(r, &ecs);
    task_definitions::register(r, &ecs);
    tags::register(r, &ecs);
    r.provide(ecs);
}

#[cfg(test)]
pub(crate) fn for_tests() -> Arc<Ecs> {
    let deps = Deps::for_tests();
    let mut r = Registry::default();
    register(&mut r, &deps);
    r.handle::<Ecs>().expect("ecs handle")
}
