//! IAM state: one durable table of the roles, customer managed policies and instance profiles
//! of every account (IAM is global: keys carry the account only). Names are unique without
//! regard to case, so keys use the lowercased name.

use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::store::{Store, Table};
use base64::Engine;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub type TagList = Vec<(String, String)>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Role {
    pub role_name: String,
    pub path: String,
    pub role_id: String,
    pub arn: String,
    pub create_date: f64,
    /// The trust policy, decoded JSON text as submitted.
    pub assume_role_policy_document: String,
    #[serde(default)]
    pub description: Option<String>,
    pub max_session_duration: i64,
    #[serde(default)]
    pub permissions_boundary: Option<String>,
    #[serde(default)]
    pub tags: TagList,
    /// Inline policies by name.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// ARNs of attached managed policies, in attachment order.
    #[serde(default)]
    pub attached_policies: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManagedPolicy {
    pub policy_name: String,
    pub path: String,
    pub policy_id: String,
    pub arn: String,
    pub document: String,
    #[serde(default)]
    pub description: Option<String>,
    pub create_date: f64,
    pub update_date: f64,
    pub default_version_id: String,
    #[serde(default)]
    pub tags: TagList,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InstanceProfile {
    pub instance_profile_name: String,
    pub path: String,
    pub instance_profile_id: String,
    pub arn: String,
    pub create_date: f64,
    /// Names of the roles in the profile (at most one).
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub tags: TagList,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind")]
pub enum Row {
    Role(Role),
    Policy(ManagedPolicy),
    InstanceProfile(InstanceProfile),
}

pub fn role_key(account: &str, name: &str) -> String {
    format!("{account}/role/{}", name.to_ascii_lowercase())
}
pub fn policy_key(account: &str, name: &str) -> String {
    format!("{account}/policy/{}", name.to_ascii_lowercase())
}
pub fn profile_key(account: &str, name: &str) -> String {
    format!("{account}/instance-profile/{}", name.to_ascii_lowercase())
}

/// An IAM unique id: a 4-letter prefix and 17 uppercase letters and digits.
pub fn unique_id(prefix: &str) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..17)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect();
    format!("{prefix}{tail}")
}

pub struct State {
    pub rows: Arc<Table<Row>>,
}

impl State {
    pub fn new(store: &Arc<Store>) -> State {
        State {
            rows: Table::open(store, "iam"),
        }
    }

    pub fn role(&self, account: &str, name: &str) -> Option<Role> {
        match self.rows.get(&role_key(account, name)) {
            Some(Row::Role(r)) => Some(r),
            _ => None,
        }
    }

    pub fn roles(&self, account: &str) -> Vec<Role> {
        self.rows
            .scan(&format!("{account}/role/"))
            .into_iter()
            .filter_map(|(_, r)| match r {
                Row::Role(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    pub fn policies(&self, account: &str) -> Vec<ManagedPolicy> {
        self.rows
            .scan(&format!("{account}/policy/"))
            .into_iter()
            .filter_map(|(_, r)| match r {
                Row::Policy(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    pub fn profiles(&self, account: &str) -> Vec<InstanceProfile> {
        self.rows
            .scan(&format!("{account}/instance-profile/"))
            .into_iter()
            .filter_map(|(_, r)| match r {
                Row::InstanceProfile(p) => Some(p),
                _ => None,
            })
            .collect()
    }
}

pub fn no_such_entity(message: impl Into<String>) -> AwsError {
    AwsError::new(codes::iam::NoSuchEntityException, message)
}

pub fn role_not_found(name: &str) -> AwsError {
    no_such_entity(format!("The role with name {name} cannot be found."))
}

pub fn tags_json(tags: &TagList) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| serde_json::json!({"Key": k, "Value": v}))
            .collect(),
    )
}

/// Merges `Tags` of the input into `tags` (same key: new value), checking IAM's limits.
pub fn merge_tags(tags: &mut TagList, input: &Value, what: &str) -> Result<(), AwsError> {
    for t in input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let k = t.get("Key").and_then(Value::as_str).unwrap_or_default();
        let v = t.get("Value").and_then(Value::as_str).unwrap_or_default();
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(AwsError::new(
                codes::iam::InvalidInputException,
                "User-defined tags cannot begin with the reserved prefix 'aws:'.",
            ));
        }
        match tags.iter_mut().find(|(key, _)| key == k) {
            Some(existing) => existing.1 = v.to_string(),
            None => tags.push((k.to_string(), v.to_string())),
        }
    }
    if tags.len() > 50 {
        return Err(AwsError::new(
            codes::iam::LimitExceededException,
            format!("Cannot exceed quota for TagsPer{what}: 50."),
        ));
    }
    Ok(())
}

/// One page of `items` after Marker, at most MaxItems (default 100): (page, IsTruncated, Marker).
pub fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    input: &Value,
) -> Result<(Vec<T>, bool, Option<String>), AwsError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let after = match input.get("Marker").and_then(Value::as_str) {
        Some(m) => Some(
            b64.decode(m)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    AwsError::new(codes::iam::InvalidInputException, "Invalid Marker.")
                })?,
        ),
        None => None,
    };
    let max = input
        .get("MaxItems")
        .and_then(Value::as_i64)
        .unwrap_or(100)
        .max(1) as usize;
    let start = match &after {
        None => 0,
        Some(a) => match items.iter().position(|i| key(i) == *a) {
            Some(i) => i + 1,
            None => items.iter().filter(|i| key(i) <= *a).count(),
        },
    };
    let mut out = Vec::new();
    let mut truncated = false;
    for item in items.into_iter().skip(start) {
        if out.len() == max {
            truncated = true;
            break;
        }
        out.push(item);
    }
    let marker = if truncated {
        out.last().map(|l| b64.encode(key(l)))
    } else {
        None
    };
    Ok((out, truncated, marker))
}

/// The output's IsTruncated and Marker members.
pub fn with_page(mut out: Value, truncated: bool, marker: Option<String>) -> Value {
    out["IsTruncated"] = Value::Bool(truncated);
    if let Some(m) = marker {
        out["Marker"] = Value::String(m);
    }
    out
}
