//! ssm: Parameter Store (String, StringList, SecureString; versions and history; paths) and the
//! public ECS-optimized AMI parameters. Other services resolve parameters through [`Ssm`].

pub mod describe;
pub mod handle;
pub mod params;
pub mod public;
pub mod state;

#[cfg(test)]
mod tests;

pub use handle::{ResolvedParameter, Ssm};

use super::{Deps, Registry};
use std::sync::Arc;

pub fn register(r: &mut Registry, deps: &Deps) {
    let state = Arc::new(state::State::new(&deps.store));
    r.provide(Arc::new(Ssm::new(state.clone())));
    let s = &state;
    r.sync("ssm", "PutParameter", s, params::put_parameter);
    r.sync("ssm", "GetParameter", s, params::get_parameter);
    r.sync("ssm", "GetParameters", s, params::get_parameters);
    r.sync("ssm", "DeleteParameter", s, params::delete_parameter);
    r.sync("ssm", "DeleteParameters", s, params::delete_parameters);
    r.sync(
        "ssm",
        "GetParametersByPath",
        s,
        describe::get_parameters_by_path,
    );
    r.sync(
        "ssm",
        "DescribeParameters",
        s,
        describe::describe_parameters,
    );
    r.sync(
        "ssm",
        "GetParameterHistory",
        s,
        describe::get_parameter_history,
    );
}
