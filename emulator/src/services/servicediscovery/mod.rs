//! AWS Cloud Map (servicediscovery; rpcv2-cbor and awsJson 1.1): HTTP, private DNS and public
//! DNS namespaces, services with DNS records and health checks, instances, discovery, operations
//! and tags. State lives in `store::Table`s ([`state::State`]).
//!
//! The typed handle [`CloudMap`] is what ECS registers its tasks through and what the DNS server
//! (`crate::dns`) answers from: [`CloudMap::dns_view`] is rebuilt after every change.

pub mod dns_view;
pub mod instances;
pub mod namespaces;
pub mod operations;
pub mod service;
pub mod state;
pub mod tags;

#[cfg(test)]
mod tests;

use super::ec2::Ec2;
use super::{Deps, Registry};
use crate::protocol::AwsError;
use dns_view::DnsView;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

const SVC: &str = "servicediscovery";

/// Cloud Map's state and the typed handle other parts of the emulator use.
pub struct CloudMap {
    pub(crate) state: state::State,
    pub(crate) ec2: Option<Arc<Ec2>>,
    view: RwLock<Arc<DnsView>>,
    changes: tokio::sync::watch::Sender<u64>,
}

/// What ECS needs to know of a registry service to validate serviceRegistries and register.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryService {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub namespace_name: String,
    /// The service has an SRV record (registrations need a port).
    pub srv: bool,
    /// The service has an A or AAAA record.
    pub address: bool,
    pub custom_health: bool,
}

impl CloudMap {
    pub fn new(store: &Arc<crate::store::Store>, ec2: Option<Arc<Ec2>>) -> CloudMap {
        let state = state::State::open(store);
        let view = RwLock::new(Arc::new(DnsView::build(&state)));
        CloudMap {
            state,
            ec2,
            view,
            changes: tokio::sync::watch::channel(0).0,
        }
    }

    /// The records the DNS server answers from (a snapshot).
    pub fn dns_view(&self) -> Arc<DnsView> {
        self.view.read().clone()
    }

    /// Rebuilds the DNS view after a change (and wakes whoever watches).
    pub fn changed(&self) {
        let view = Arc::new(DnsView::build(&self.state));
        *self.view.write() = view;
        self.changes.send_modify(|n| *n += 1);
    }

    /// Bumped after every change.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A service by id or ARN, as ECS's serviceRegistries name it.
    pub fn registry_service(
        &self,
        account: &str,
        region: &str,
        arn: &str,
    ) -> Option<RegistryService> {
        let scope = state::scope(account, region);
        let svc = self.state.service(&scope, arn).ok()?;
        let ns = self.state.namespace(&scope, &svc.namespace_id).ok()?;
        let has = |k: &str| svc.dns.as_ref().is_some_and(|d| d.has(k));
        Some(RegistryService {
            srv: has("SRV"),
            address: has("A") || has("AAAA"),
            custom_health: svc.custom_health.is_some(),
            id: svc.id,
            arn: svc.arn,
            name: svc.name,
            namespace_name: ns.name,
        })
    }

    /// Registers (or updates) an instance, validated as RegisterInstance validates it.
    pub fn register_instance(
        &self,
        account: &str,
        region: &str,
        now: f64,
        service: &str,
        instance_id: &str,
        attributes: BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        instances::register(
            self,
            account,
            region,
            now,
            instances::Registration {
                service_id: service,
                instance_id,
                attributes,
                creator: None,
            },
        )
    }

    /// Deregisters an instance; Ok(None) when it was not registered.
    pub fn deregister_instance(
        &self,
        account: &str,
        region: &str,
        now: f64,
        service: &str,
        instance_id: &str,
    ) -> Result<Option<String>, AwsError> {
        match instances::deregister(self, account, region, now, service, instance_id) {
            Ok(op) => Ok(Some(op)),
            Err(e) if e.code == "InstanceNotFound" || e.code == "ServiceNotFound" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An instance's health (HEALTHY, UNHEALTHY or UNKNOWN), None when it is not registered.
    pub fn instance_health(
        &self,
        account: &str,
        region: &str,
        service: &str,
        id: &str,
    ) -> Option<String> {
        let scope = state::scope(account, region);
        let svc = state::id_of(service);
        self.state
            .instances
            .get(&state::instance_key(&scope, svc, id))
            .map(|i| i.health)
    }

    /// The instances of a service: (id, attributes).
    pub fn instances(
        &self,
        account: &str,
        region: &str,
        service: &str,
    ) -> Vec<(String, BTreeMap<String, String>)> {
        let scope = state::scope(account, region);
        self.state
            .instances_of(&scope, state::id_of(service))
            .into_iter()
            .map(|i| (i.id, i.attributes))
            .collect()
    }

    /// Sets an instance's custom health (HealthCheckCustomConfig services only).
    pub fn set_health(
        &self,
        account: &str,
        region: &str,
        service: &str,
        instance_id: &str,
        healthy: bool,
    ) -> Result<(), AwsError> {
        let status = if healthy { "HEALTHY" } else { "UNHEALTHY" };
        instances::set_custom_health(self, account, region, service, instance_id, status)
    }
}

pub fn register(r: &mut Registry, deps: &Deps, ec2: Arc<Ec2>) -> Arc<CloudMap> {
    let cm = Arc::new(CloudMap::new(&deps.store, Some(ec2)));
    let c = &cm;
    r.sync(
        SVC,
        "CreateHttpNamespace",
        c,
        namespaces::create_http_namespace,
    );
    r.sync(
        SVC,
        "CreatePrivateDnsNamespace",
        c,
        namespaces::create_private_dns_namespace,
    );
    r.sync(
        SVC,
        "CreatePublicDnsNamespace",
        c,
        namespaces::create_public_dns_namespace,
    );
    r.sync(SVC, "GetNamespace", c, namespaces::get_namespace);
    r.sync(SVC, "ListNamespaces", c, namespaces::list_namespaces);
    r.sync(SVC, "DeleteNamespace", c, namespaces::delete_namespace);
    r.sync(
        SVC,
        "UpdateHttpNamespace",
        c,
        namespaces::update_http_namespace,
    );
    r.sync(
        SVC,
        "UpdatePrivateDnsNamespace",
        c,
        namespaces::update_private_dns_namespace,
    );
    r.sync(
        SVC,
        "UpdatePublicDnsNamespace",
        c,
        namespaces::update_public_dns_namespace,
    );
    r.sync(SVC, "CreateService", c, service::create_service);
    r.sync(SVC, "GetService", c, service::get_service);
    r.sync(SVC, "ListServices", c, service::list_services);
    r.sync(SVC, "UpdateService", c, service::update_service);
    r.sync(SVC, "DeleteService", c, service::delete_service);
    r.sync(
        SVC,
        "GetServiceAttributes",
        c,
        service::get_service_attributes,
    );
    r.sync(
        SVC,
        "UpdateServiceAttributes",
        c,
        service::update_service_attributes,
    );
    r.sync(
        SVC,
        "DeleteServiceAttributes",
        c,
        service::delete_service_attributes,
    );
    r.sync(SVC, "RegisterInstance", c, instances::register_instance);
    r.sync(SVC, "DeregisterInstance", c, instances::deregister_instance);
    r.sync(SVC, "GetInstance", c, instances::get_instance);
    r.sync(SVC, "ListInstances", c, instances::list_instances);
    r.sync(
        SVC,
        "GetInstancesHealthStatus",
        c,
        instances::get_instances_health_status,
    );
    r.sync(
        SVC,
        "UpdateInstanceCustomHealthStatus",
        c,
        instances::update_instance_custom_health_status,
    );
    r.sync(SVC, "DiscoverInstances", c, instances::discover_instances);
    r.sync(
        SVC,
        "DiscoverInstancesRevision",
        c,
        instances::discover_instances_revision,
    );
    r.sync(SVC, "GetOperation", c, operations::get_operation);
    r.sync(SVC, "ListOperations", c, operations::list_operations);
    r.sync(SVC, "TagResource", c, tags::tag_resource);
    r.sync(SVC, "UntagResource", c, tags::untag_resource);
    r.sync(SVC, "ListTagsForResource", c, tags::list_tags_for_resource);
    r.provide(cm.clone());
    cm
}
