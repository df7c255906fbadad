//! What the DNS server answers from: the DNS namespaces with their services' records and
//! instances, rebuilt from the tables after every change (plain data, cheap to share).

use super::instances::{CNAME, IPV4, IPV6, PORT};
use super::state::{scope, State};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Default)]
pub struct DnsView {
    /// Longest names first, so the first zone a query name ends with is the closest one.
    pub zones: Vec<Zone>,
}

#[derive(Debug, Clone)]
pub struct Zone {
    /// Lowercase, without the trailing dot.
    pub name: String,
    pub soa_ttl: u32,
    pub private: bool,
    /// Services by lowercase name.
    pub services: HashMap<String, DnsService>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DnsService {
    pub name: String,
    pub weighted: bool,
    /// (record type, TTL).
    pub records: Vec<(String, u32)>,
    pub instances: Vec<DnsInstance>,
}

impl DnsService {
    pub fn ttl(&self, kind: &str) -> Option<u32> {
        self.records
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, ttl)| *ttl)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DnsInstance {
    pub id: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    pub port: Option<u16>,
    pub cname: Option<String>,
    /// UNHEALTHY instances are left out of answers (unless all are).
    pub healthy: bool,
}

fn ttl(v: i64) -> u32 {
    v.clamp(0, i64::from(i32::MAX)) as u32
}

impl DnsView {
    pub fn build(state: &State) -> DnsView {
        let mut zones: Vec<Zone> = Vec::new();
        let namespaces = state.namespaces.scan("");
        for (_, ns) in namespaces.into_iter().filter(|(_, n)| n.is_dns()) {
            if zones.iter().any(|z| z.name == ns.name) {
                // Two accounts with one zone name: the first (in key order) answers.
                continue;
            }
            let sc = scope(&ns.account, &ns.region);
            let mut services = HashMap::new();
            for svc in state.services_of(&sc, &ns.id) {
                let Some(dns) = &svc.dns else { continue };
                let instances = state
                    .instances_of(&sc, &svc.id)
                    .into_iter()
                    .map(|i| {
                        let attr = |k: &str| i.attributes.get(k);
                        DnsInstance {
                            ipv4: attr(IPV4).and_then(|v| v.parse().ok()),
                            ipv6: attr(IPV6).and_then(|v| v.parse().ok()),
                            port: attr(PORT).and_then(|v| v.parse().ok()),
                            cname: attr(CNAME).cloned(),
                            healthy: i.health != "UNHEALTHY",
                            id: i.id,
                        }
                    })
                    .collect();
                services.insert(
                    svc.name.to_ascii_lowercase(),
                    DnsService {
                        name: svc.name.clone(),
                        weighted: dns.routing_policy == "WEIGHTED",
                        records: dns
                            .records
                            .iter()
                            .map(|r| (r.kind.clone(), ttl(r.ttl)))
                            .collect(),
                        instances,
                    },
                );
            }
            zones.push(Zone {
                name: ns.name.to_ascii_lowercase(),
                soa_ttl: ttl(ns.soa_ttl.unwrap_or(super::state::DEFAULT_SOA_TTL)),
                private: ns.kind == super::state::DNS_PRIVATE,
                services,
            });
        }
        zones.sort_by(|a, b| b.name.len().cmp(&a.name.len()).then(a.name.cmp(&b.name)));
        DnsView { zones }
    }

    /// The closest zone `name` (lowercase, no trailing dot) is in, and the part before it.
    pub fn zone_of<'a>(&'a self, name: &'a str) -> Option<(&'a Zone, &'a str)> {
        self.zones.iter().find_map(|z| {
            if name == z.name {
                Some((z, ""))
            } else {
                name.strip_suffix(z.name.as_str())
                    .and_then(|rest| rest.strip_suffix('.'))
                    .map(|rest| (z, rest))
            }
        })
    }
}
