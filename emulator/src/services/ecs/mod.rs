//! Amazon ECS: clusters, task definitions, container instances, tasks, services.

mod arns;
mod clusters;
mod tags;

pub use arns::ResourceArn;
pub use clusters::Cluster;

use super::{Deps, Registry};
use crate::store::Table;
use std::sync::Arc;

/// ECS's state. Other parts of the program reach it with `registry.handle::<Ecs>()`.
pub struct Ecs {
    pub clusters: Arc<Table<Cluster>>,
}

pub fn register(r: &mut Registry, deps: &Deps) {
    let ecs = Arc::new(Ecs {
        clusters: Table::open(&deps.store, "ecs.clusters"),
    });
    clusters::register(r, &ecs);
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
