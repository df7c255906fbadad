//! STS state: every temporary credential issued, keyed by access key id, durable so that a later
//! request (or an ECS task) signed with it is recognised after a restart.

use crate::store::{Store, Table};
use base64::Engine;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IssuedCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Epoch seconds.
    pub expiration: f64,
    pub account: String,
    /// The identity the credentials act as: an assumed-role ARN, or the caller's ARN for
    /// GetSessionToken.
    pub arn: String,
    /// "AROA…:<session>" for assumed roles, the account id otherwise.
    pub user_id: String,
    /// The role assumed, when AssumeRole issued them.
    #[serde(default)]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub session_name: Option<String>,
    pub issued: f64,
}

pub struct State {
    pub credentials: Arc<Table<IssuedCredentials>>,
}

impl State {
    pub fn new(store: &Arc<Store>) -> State {
        State {
            credentials: Table::open(store, "sts-credentials"),
        }
    }
}

fn random_of(chars: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(chars[rng.random_range(0..chars.len())]))
        .collect()
}

/// "ASIA" + 16 uppercase letters and digits: a temporary access key id.
pub fn access_key_id() -> String {
    format!("ASIA{}", random_of(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16))
}

pub fn secret_access_key() -> String {
    random_of(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        40,
    )
}

pub fn session_token() -> String {
    let mut rng = rand::rng();
    let bytes: Vec<u8> = (0..320).map(|_| rng.random()).collect();
    format!(
        "IQoJb3JpZ2luX2VjE{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}
