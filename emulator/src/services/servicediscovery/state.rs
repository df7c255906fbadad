//! Cloud Map state: namespaces, services, instances and operations, one `store::Table` each,
//! keyed `<account>/<region>/<id>` (instances `<scope><service id>/<instance id>`).

use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::store::{Store, Table};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const HTTP: &str = "HTTP";
pub const DNS_PRIVATE: &str = "DNS_PRIVATE";
pub const DNS_PUBLIC: &str = "DNS_PUBLIC";

/// The SOA TTL Cloud Map gives a DNS namespace created without one.
pub const DEFAULT_SOA_TTL: i64 = 15;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Namespace {
    pub id: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    pub name: String,
    /// HTTP, DNS_PRIVATE or DNS_PUBLIC.
    pub kind: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub creator_request_id: Option<String>,
    #[serde(default)]
    pub vpc: Option<String>,
    /// DNS namespaces: the Route 53 hosted zone id and SOA TTL.
    #[serde(default)]
    pub hosted_zone_id: Option<String>,
    #[serde(default)]
    pub soa_ttl: Option<i64>,
    pub create_date: f64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The operation that created it (a retried create with the same CreatorRequestId returns it).
    #[serde(default)]
    pub operation_id: String,
}

impl Namespace {
    pub fn is_dns(&self) -> bool {
        self.kind != HTTP
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DnsRecord {
    /// A, AAAA, SRV or CNAME.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "TTL")]
    pub ttl: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DnsConfig {
    /// MULTIVALUE or WEIGHTED.
    pub routing_policy: String,
    pub records: Vec<DnsRecord>,
}

impl DnsConfig {
    pub fn has(&self, kind: &str) -> bool {
        self.records.iter().any(|r| r.kind == kind)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct HealthCheckConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(
        rename = "ResourcePath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_path: Option<String>,
    #[serde(
        rename = "FailureThreshold",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_threshold: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Service {
    pub id: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    pub name: String,
    pub namespace_id: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub dns: Option<DnsConfig>,
    #[serde(default)]
    pub health_check: Option<HealthCheckConfig>,
    /// HealthCheckCustomConfig was given (its FailureThreshold, if any).
    #[serde(default)]
    pub custom_health: Option<Option<i64>>,
    pub create_date: f64,
    #[serde(default)]
    pub creator_request_id: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Bumped whenever an instance of the service changes (DiscoverInstancesRevision).
    #[serde(default)]
    pub revision: i64,
}

impl Service {
    /// The model's ServiceType: HTTP (API discovery only) or DNS_HTTP.
    pub fn service_type(&self) -> &'static str {
        if self.dns.is_some() {
            "DNS_HTTP"
        } else {
            "HTTP"
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Instance {
    pub id: String,
    pub service_id: String,
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub creator_request_id: Option<String>,
    /// HEALTHY, UNHEALTHY or UNKNOWN (no health check).
    pub health: String,
    pub operation_id: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Operation {
    pub id: String,
    pub account: String,
    /// CREATE_NAMESPACE, DELETE_NAMESPACE, UPDATE_NAMESPACE, UPDATE_SERVICE, REGISTER_INSTANCE,
    /// DEREGISTER_INSTANCE.
    pub kind: String,
    pub create_date: f64,
    /// NAMESPACE / SERVICE / INSTANCE → id.
    pub targets: BTreeMap<String, String>,
}

/// How long (emulated seconds) an operation stays SUBMITTED, then PENDING, before SUCCESS.
pub const SUBMITTED_FOR: f64 = 0.2;
pub const PENDING_UNTIL: f64 = 1.0;

impl Operation {
    /// Status and its update date at `now`: the change itself is made at once; its operation
    /// reports SUBMITTED → PENDING → SUCCESS on the emulator clock, as Cloud Map's do.
    pub fn status(&self, now: f64) -> (&'static str, f64) {
        let age = now - self.create_date;
        if age < SUBMITTED_FOR {
            ("SUBMITTED", self.create_date)
        } else if age < PENDING_UNTIL {
            ("PENDING", self.create_date + SUBMITTED_FOR)
        } else {
            ("SUCCESS", self.create_date + PENDING_UNTIL)
        }
    }
}

pub struct State {
    pub namespaces: Arc<Table<Namespace>>,
    pub services: Arc<Table<Service>>,
    pub instances: Arc<Table<Instance>>,
    pub operations: Arc<Table<Operation>>,
}

pub fn scope(account: &str, region: &str) -> String {
    format!("{account}/{region}/")
}

pub fn instance_prefix(scope: &str, service_id: &str) -> String {
    format!("{scope}{service_id}/")
}

pub fn instance_key(scope: &str, service_id: &str, instance_id: &str) -> String {
    format!("{scope}{service_id}/{instance_id}")
}

/// Lowercase letters and digits, as Cloud Map's ids use.
pub fn random_id(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

pub fn new_operation_id() -> String {
    format!("{}-{}", random_id(32), random_id(8))
}

pub fn namespace_not_found(id: &str) -> AwsError {
    AwsError::new(
        codes::servicediscovery::NamespaceNotFound,
        format!("Namespace not found: {id}"),
    )
}

pub fn service_not_found(id: &str) -> AwsError {
    AwsError::new(
        codes::servicediscovery::ServiceNotFound,
        format!("Service not found: {id}"),
    )
}

pub fn instance_not_found(id: &str) -> AwsError {
    AwsError::new(
        codes::servicediscovery::InstanceNotFound,
        format!("Instance not found: {id}"),
    )
}

pub fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(codes::servicediscovery::InvalidInput, message)
}

/// The id part of an id-or-ARN (`arn:aws:servicediscovery:…:namespace/ns-…` → `ns-…`).
pub fn id_of(id_or_arn: &str) -> &str {
    if id_or_arn.starts_with("arn:") {
        id_or_arn.rsplit('/').next().unwrap_or(id_or_arn)
    } else {
        id_or_arn
    }
}

impl State {
    pub fn open(store: &Arc<Store>) -> State {
        State {
            namespaces: Table::open(store, "servicediscovery_namespaces"),
            services: Table::open(store, "servicediscovery_services"),
            instances: Table::open(store, "servicediscovery_instances"),
            operations: Table::open(store, "servicediscovery_operations"),
        }
    }

    pub fn namespace(&self, scope: &str, id_or_arn: &str) -> Result<Namespace, AwsError> {
        let id = id_of(id_or_arn);
        self.namespaces
            .get(&format!("{scope}{id}"))
            .ok_or_else(|| namespace_not_found(id))
    }

    pub fn service(&self, scope: &str, id_or_arn: &str) -> Result<Service, AwsError> {
        let id = id_of(id_or_arn);
        self.services
            .get(&format!("{scope}{id}"))
            .ok_or_else(|| service_not_found(id))
    }

    /// The namespace whose HttpName (its name) is `name`.
    pub fn namespace_by_name(&self, scope: &str, name: &str) -> Option<Namespace> {
        self.namespaces.read(|rows| {
            rows.range(scope.to_string()..)
                .take_while(|(k, _)| k.starts_with(scope))
                .map(|(_, n)| n)
                .find(|n| n.name.eq_ignore_ascii_case(name))
                .cloned()
        })
    }

    pub fn services_of(&self, scope: &str, namespace_id: &str) -> Vec<Service> {
        self.services.read(|rows| {
            rows.range(scope.to_string()..)
                .take_while(|(k, _)| k.starts_with(scope))
                .map(|(_, s)| s)
                .filter(|s| s.namespace_id == namespace_id)
                .cloned()
                .collect()
        })
    }

    pub fn instances_of(&self, scope: &str, service_id: &str) -> Vec<Instance> {
        self.instances
            .scan(&instance_prefix(scope, service_id))
            .into_iter()
            .map(|(_, i)| i)
            .collect()
    }

    pub fn instance_count(&self, scope: &str, service_id: &str) -> usize {
        let prefix = instance_prefix(scope, service_id);
        self.instances.read(|rows| {
            rows.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .count()
        })
    }

    /// Records an operation (after the change it reports on was committed); returns its id.
    pub fn record_operation(
        &self,
        account: &str,
        region: &str,
        id: String,
        kind: &str,
        now: f64,
        targets: &[(&str, &str)],
    ) -> Result<String, AwsError> {
        let op = Operation {
            id: id.clone(),
            account: account.to_string(),
            kind: kind.to_string(),
            create_date: now,
            targets: targets
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        self.operations
            .put(&format!("{}{id}", scope(account, region)), op)?;
        Ok(id)
    }
}
