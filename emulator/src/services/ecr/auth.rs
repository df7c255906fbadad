//! Registry credentials: GetAuthorizationToken and the checks the registry makes.
//!
//! The password is self-validating: `base64url(account:region:expiresAt).<HMAC-SHA256 hex>` under
//! a key kept in the store, so tokens survive a restart and carry the (account, region) whose
//! repositories they open. They are valid 12 hours of emulator time.

use super::{Ecr, SERVICE};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::{Ctx, HandlerResult, Registry};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::Arc;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How long a token lives, in emulated seconds.
pub const TOKEN_LIFETIME: f64 = 12.0 * 3600.0;

/// Who a valid registry password lets in.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenScope {
    pub account: String,
    pub region: String,
    pub expires_at: f64,
}

impl TokenScope {
    /// "<account>/<region>/", the key prefix of this scope's rows.
    pub fn scope(&self) -> String {
        format!("{}/{}/", self.account, self.region)
    }
}

pub(super) fn register(r: &mut Registry, s: &Arc<Ecr>) {
    r.sync(SERVICE, "GetAuthorizationToken", s, get_authorization_token);
}

impl Ecr {
    fn mac(&self, payload: &str) -> String {
        match Hmac::<Sha256>::new_from_slice(&self.secret) {
            Ok(mut m) => {
                m.update(payload.as_bytes());
                hex::encode(m.finalize().into_bytes())
            }
            Err(_) => String::new(),
        }
    }

    /// A registry password for (account, region), valid until `now` + 12 h.
    pub fn issue_password(&self, account: &str, region: &str, now: f64) -> (String, f64) {
        let expires_at = (now + TOKEN_LIFETIME).floor();
        let payload = B64.encode(format!("{account}:{region}:{expires_at}"));
        let sig = self.mac(&payload);
        (format!("{payload}.{sig}"), expires_at)
    }

    /// The docker-login token for (account, region): base64 of "AWS:<password>".
    pub fn authorization_token(&self, account: &str, region: &str, now: f64) -> (String, f64) {
        let (password, expires_at) = self.issue_password(account, region, now);
        (
            base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}")),
            expires_at,
        )
    }

    /// Checks a registry password at emulator time `now`.
    pub fn check_password(&self, password: &str, now: f64) -> Option<TokenScope> {
        let (payload, sig) = password.trim().split_once('.')?;
        let expected = self.mac(payload);
        if expected.is_empty() || !constant_time_eq(expected.as_bytes(), sig.as_bytes()) {
            return None;
        }
        let decoded = String::from_utf8(B64.decode(payload).ok()?).ok()?;
        let mut parts = decoded.splitn(3, ':');
        let account = parts.next()?.to_string();
        let region = parts.next()?.to_string();
        let expires_at: f64 = parts.next()?.parse().ok()?;
        if now > expires_at {
            return None;
        }
        Some(TokenScope {
            account,
            region,
            expires_at,
        })
    }

    /// A signature for an unauthenticated download of one blob until `expires` (what
    /// GetDownloadUrlForLayer hands out, like ECR's pre-signed S3 URLs).
    pub fn download_signature(
        &self,
        scope: &str,
        repo: &str,
        digest: &str,
        expires: f64,
    ) -> String {
        self.mac(&format!("download\n{scope}\n{repo}\n{digest}\n{expires}"))
    }

    pub fn check_download(
        &self,
        scope: &str,
        repo: &str,
        digest: &str,
        expires: f64,
        signature: &str,
    ) -> bool {
        expires >= self.clock.now()
            && constant_time_eq(
                self.download_signature(scope, repo, digest, expires)
                    .as_bytes(),
                signature.as_bytes(),
            )
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn get_authorization_token(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let ids: Vec<String> = input
        .get("registryIds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Some(other) = ids.iter().find(|id| **id != ctx.account) {
        return Err(AwsError::new(codes::ecr::InvalidParameterException,
            format!("Invalid parameter at 'registryIds' failed to satisfy constraint: 'The registry with id '{other}' is not accessible with these credentials'"),
        ));
    }
    let (token, expires_at) = ecr.authorization_token(&ctx.account, &ctx.region, ctx.now);
    let entry = json!({
        "authorizationToken": token,
        "expiresAt": expires_at,
        "proxyEndpoint": ecr.proxy_endpoint(),
    });
    let n = ids.len().max(1);
    Ok(json!({ "authorizationData": vec![entry; n] }))
}
