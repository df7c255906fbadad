//! GetCallerIdentity, AssumeRole, GetSessionToken.

use super::handle::Sts;
use super::state::IssuedCredentials;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

/// Who signed the request: (account, arn, user id). Temporary credentials issued here act as
/// their assumed role; anything else is the account's root.
pub fn caller(sts: &Sts, ctx: &Ctx) -> Result<(String, String, String), AwsError> {
    if let Some(c) = ctx.access_key.as_deref().and_then(|k| sts.credentials(k)) {
        if c.expiration <= ctx.now {
            return Err(AwsError::new(
                codes::sts::ExpiredTokenException,
                "The security token included in the request is expired",
            ));
        }
        return Ok((c.account, c.arn, c.user_id));
    }
    Ok((
        ctx.account.clone(),
        format!("arn:aws:iam::{}:root", ctx.account),
        ctx.account.clone(),
    ))
}

fn credentials_json(c: &IssuedCredentials) -> Value {
    json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key,
        "SessionToken": c.session_token,
        "Expiration": c.expiration,
    })
}

pub fn get_caller_identity(sts: &Sts, ctx: &Ctx, _input: Value) -> HandlerResult {
    let (account, arn, user_id) = caller(sts, ctx)?;
    Ok(json!({"UserId": user_id, "Account": account, "Arn": arn}))
}

pub fn assume_role(sts: &Sts, ctx: &Ctx, input: Value) -> HandlerResult {
    let (account, caller_arn, _) = caller(sts, ctx)?;
    if let Some(policy) = input.str("Policy") {
        if serde_json::from_str::<Value>(policy).is_err() {
            return Err(AwsError::new(
                codes::sts::MalformedPolicyDocumentException,
                "The policy is not in the valid JSON format.",
            ));
        }
    }
    let c = sts.assume_role(
        &account,
        &caller_arn,
        input.str("RoleArn").unwrap_or_default(),
        input.str("RoleSessionName").unwrap_or_default(),
        input.i64("DurationSeconds"),
        ctx.now,
    )?;
    let mut out = json!({
        "Credentials": credentials_json(&c),
        "AssumedRoleUser": {"AssumedRoleId": c.user_id, "Arn": c.arn},
    });
    if input.str("Policy").is_some() || input.get("PolicyArns").is_some() {
        out["PackedPolicySize"] = json!(6);
    }
    if let Some(s) = input.str("SourceIdentity") {
        out["SourceIdentity"] = json!(s);
    }
    Ok(out)
}

pub fn get_session_token(sts: &Sts, ctx: &Ctx, input: Value) -> HandlerResult {
    let (account, arn, user_id) = caller(sts, ctx)?;
    if arn.contains(":assumed-role/") {
        return Err(AwsError::new(
            codes::sts::AccessDenied,
            "Cannot call GetSessionToken with session credentials",
        )
        .with_status(403));
    }
    let c = sts.session_token(
        &account,
        &arn,
        &user_id,
        input.i64("DurationSeconds"),
        ctx.now,
    )?;
    Ok(json!({"Credentials": credentials_json(&c)}))
}
