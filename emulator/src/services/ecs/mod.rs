//! ecs: state and handlers.

use super::{Deps, Registry};

pub fn register(r: &mut Registry, deps: &Deps) {
    let _ = (r, deps);
}
