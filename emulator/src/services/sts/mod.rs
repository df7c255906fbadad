//! sts: GetCallerIdentity, AssumeRole (roles checked against IAM), GetSessionToken. Issued
//! credentials are durable; other parts of the program reach them through the [`Sts`] handle.

pub mod handle;
pub mod handlers;
pub mod state;

#[cfg(test)]
mod tests;

pub use handle::Sts;
pub use state::IssuedCredentials;

use super::iam::Iam;
use super::{Deps, Registry};
use std::sync::Arc;

pub fn register(r: &mut Registry, deps: &Deps, iam: Arc<Iam>) -> Arc<Sts> {
    let sts = Arc::new(Sts::new(Arc::new(state::State::new(&deps.store)), iam));
    r.provide(sts.clone());
    r.sync(
        "sts",
        "GetCallerIdentity",
        &sts,
        handlers::get_caller_identity,
    );
    r.sync("sts", "AssumeRole", &sts, handlers::assume_role);
    r.sync("sts", "GetSessionToken", &sts, handlers::get_session_token);
    sts
}
