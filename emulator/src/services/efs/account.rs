//! Account preferences: whether new file system and mount target ids are long (17 hex digits)
//! or short (8).

use super::state::Preferences;
use super::Efs;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

fn preference(id_type: &str) -> Value {
    json!({"ResourceIdType": id_type, "Resources": ["FILE_SYSTEM", "MOUNT_TARGET"]})
}

pub fn describe_account_preferences(efs: &Efs, ctx: &Ctx, _input: Value) -> HandlerResult {
    let id_type = efs.state.resource_id_type(&ctx.scope());
    Ok(json!({"ResourceIdPreference": preference(&id_type)}))
}

pub fn put_account_preferences(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    let id_type = input.str("ResourceIdType").unwrap_or("LONG_ID").to_string();
    efs.state.preferences.put(
        &ctx.scope(),
        Preferences {
            resource_id_type: id_type.clone(),
        },
    )?;
    Ok(json!({"ResourceIdPreference": preference(&id_type)}))
}
