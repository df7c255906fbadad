//! iam: roles (trust policies, tags, inline and attached policies), customer and AWS managed
//! policies, instance profiles. Global: rows are keyed by account only.
//!
//! Other services read roles through the [`Iam`] handle.

pub mod documents;
pub mod handle;
pub mod instance_profiles;
pub mod managed;
pub mod policies;
pub mod roles;
pub mod state;

#[cfg(test)]
mod tests;

pub use handle::{parse_role_arn, Iam};
pub use state::{InstanceProfile, ManagedPolicy, Role};

use super::{Deps, Registry};
use std::sync::Arc;

pub fn register(r: &mut Registry, deps: &Deps) -> Arc<Iam> {
    let state = Arc::new(state::State::new(&deps.store));
    let iam = Arc::new(Iam::new(state.clone()));
    r.provide(iam.clone());
    let s = &state;
    r.sync("iam", "CreateRole", s, roles::create_role);
    r.sync("iam", "GetRole", s, roles::get_role);
    r.sync("iam", "ListRoles", s, roles::list_roles);
    r.sync("iam", "DeleteRole", s, roles::delete_role);
    r.sync(
        "iam",
        "UpdateAssumeRolePolicy",
        s,
        roles::update_assume_role_policy,
    );
    r.sync("iam", "TagRole", s, roles::tag_role);
    r.sync("iam", "UntagRole", s, roles::untag_role);
    r.sync("iam", "ListRoleTags", s, roles::list_role_tags);
    r.sync("iam", "PutRolePolicy", s, roles::put_role_policy);
    r.sync("iam", "GetRolePolicy", s, roles::get_role_policy);
    r.sync("iam", "DeleteRolePolicy", s, roles::delete_role_policy);
    r.sync("iam", "ListRolePolicies", s, roles::list_role_policies);
    r.sync("iam", "AttachRolePolicy", s, policies::attach_role_policy);
    r.sync("iam", "DetachRolePolicy", s, policies::detach_role_policy);
    r.sync(
        "iam",
        "ListAttachedRolePolicies",
        s,
        policies::list_attached_role_policies,
    );
    r.sync("iam", "CreatePolicy", s, policies::create_policy);
    r.sync("iam", "GetPolicy", s, policies::get_policy);
    r.sync("iam", "DeletePolicy", s, policies::delete_policy);
    r.sync("iam", "ListPolicies", s, policies::list_policies);
    r.sync("iam", "GetPolicyVersion", s, policies::get_policy_version);
    r.sync(
        "iam",
        "CreateInstanceProfile",
        s,
        instance_profiles::create_instance_profile,
    );
    r.sync(
        "iam",
        "GetInstanceProfile",
        s,
        instance_profiles::get_instance_profile,
    );
    r.sync(
        "iam",
        "ListInstanceProfiles",
        s,
        instance_profiles::list_instance_profiles,
    );
    r.sync(
        "iam",
        "AddRoleToInstanceProfile",
        s,
        instance_profiles::add_role_to_instance_profile,
    );
    r.sync(
        "iam",
        "RemoveRoleFromInstanceProfile",
        s,
        instance_profiles::remove_role_from_instance_profile,
    );
    r.sync(
        "iam",
        "DeleteInstanceProfile",
        s,
        instance_profiles::delete_instance_profile,
    );
    iam
}
