//! SSM Parameter Store state: one durable row per parameter of an (account, region), holding
//! every version (history). Keys: "<account>/<region>/<name>".

use crate::store::{Store, Table};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Versions kept per parameter, as AWS does.
pub const MAX_VERSIONS: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ParameterVersion {
    pub version: i64,
    pub value: String,
    /// String, StringList or SecureString.
    pub kind: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub allowed_pattern: Option<String>,
    pub tier: String,
    pub data_type: String,
    pub last_modified: f64,
    pub last_modified_user: String,
    #[serde(default)]
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Parameter {
    pub name: String,
    pub account: String,
    pub region: String,
    /// Oldest first; the last is current.
    pub versions: Vec<ParameterVersion>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

impl Parameter {
    pub fn current(&self) -> Option<&ParameterVersion> {
        self.versions.last()
    }

    pub fn arn(&self) -> String {
        arn(&self.region, &self.account, &self.name)
    }
}

/// arn:aws:ssm:<region>:<account>:parameter/<name without its leading slash>.
pub fn arn(region: &str, account: &str, name: &str) -> String {
    format!(
        "arn:aws:ssm:{region}:{account}:parameter/{}",
        name.strip_prefix('/').unwrap_or(name)
    )
}

pub fn key(account: &str, region: &str, name: &str) -> String {
    format!("{account}/{region}/{name}")
}

pub struct State {
    pub params: Arc<Table<Parameter>>,
}

impl State {
    pub fn new(store: &Arc<Store>) -> State {
        State {
            params: Table::open(store, "ssm-parameters"),
        }
    }

    pub fn get(&self, account: &str, region: &str, name: &str) -> Option<Parameter> {
        self.params.get(&key(account, region, name))
    }

    pub fn all(&self, account: &str, region: &str) -> Vec<Parameter> {
        self.params
            .scan(&format!("{account}/{region}/"))
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }
}
