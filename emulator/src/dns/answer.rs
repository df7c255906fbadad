//! One DNS query in, one answer out: the namespaces' records as Route 53 serves Cloud Map's
//! zones, or "forward this" for names outside every namespace. Pure (no sockets), so the packet
//! path is unit-tested and fuzzed as it is.

use crate::services::servicediscovery::dns_view::{DnsInstance, DnsService, DnsView, Zone};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::seq::IndexedRandom;

/// MULTIVALUE answers carry at most this many records (as Route 53's multivalue answers do).
pub const MULTIVALUE_MAX: usize = 8;
/// The UDP payload size this server advertises and accepts up to (the 2020 DNS flag day value).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Without EDNS0 a UDP answer fits in 512 bytes, or is truncated.
pub const CLASSIC_UDP: usize = 512;

/// What to do with a packet.
#[derive(Debug)]
pub enum Outcome {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// The name is in no namespace: ask the upstream resolvers.
    Forward,
    /// Not worth an answer (not a query, or too short to carry an id).
    Drop,
}

/// Transport the query came over; UDP answers are truncated to the client's payload size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Answers one packet from the view.
pub fn answer(view: &DnsView, packet: &[u8], transport: Transport) -> Outcome {
    let request = match Message::from_vec(packet) {
        Ok(m) => m,
        Err(_) => return malformed(packet),
    };
    if request.message_type() != MessageType::Query {
        return Outcome::Drop;
    }
    let mut response = response_to(&request);
    if request.op_code() != OpCode::Query {
        response.set_response_code(ResponseCode::NotImp);
        return finish(response, &request, transport);
    }
    if let Some(edns) = request.extensions() {
        if edns.version() > 0 {
            response.set_response_code(ResponseCode::BADVERS);
            return finish(response, &request, transport);
        }
    }
    let [query] = request.queries() else {
        response.set_response_code(ResponseCode::FormErr);
        return finish(response, &request, transport);
    };
    let name = query.name().to_ascii().to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name);
    let Some((zone, relative)) = view.zone_of(name) else {
        return Outcome::Forward;
    };
    response.add_query(query.clone());
    response.set_authoritative(true);
    if resolve(
        zone,
        relative,
        query.name(),
        query.query_type(),
        &mut response,
    )
    .is_err()
    {
        response.set_response_code(ResponseCode::ServFail);
    }
    finish(response, &request, transport)
}

/// A FORMERR for a packet whose header could be read, else nothing.
fn malformed(packet: &[u8]) -> Outcome {
    if packet.len() < 12 || packet[2] & 0x80 != 0 {
        // No id to answer, or it is a response itself (answering responses makes loops).
        return Outcome::Drop;
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let op = OpCode::from_u8((packet[2] >> 3) & 0x0f);
    let mut m = Message::error_msg(id, op, ResponseCode::FormErr);
    m.set_recursion_desired(packet[2] & 0x01 != 0);
    m.to_vec().map(Outcome::Reply).unwrap_or(Outcome::Drop)
}

fn response_to(request: &Message) -> Message {
    let mut m = Message::new();
    m.set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_checking_disabled(request.checking_disabled());
    m
}

/// Adds EDNS (when the client used it), encodes, and truncates a UDP answer that does not fit.
fn finish(mut response: Message, request: &Message, transport: Transport) -> Outcome {
    let mut limit = CLASSIC_UDP;
    if let Some(req) = request.extensions() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD).set_version(0);
        edns.set_dnssec_ok(false);
        response.set_edns(edns);
        limit = usize::from(req.max_payload().clamp(CLASSIC_UDP as u16, EDNS_PAYLOAD));
    }
    let Ok(bytes) = response.to_vec() else {
        let mut m = response_to(request);
        m.set_response_code(ResponseCode::ServFail);
        return m.to_vec().map(Outcome::Reply).unwrap_or(Outcome::Drop);
    };
    if transport == Transport::Udp && bytes.len() > limit {
        // Too big for the client's buffer: TC=1 and no records, so it retries over TCP.
        return response
            .truncate()
            .to_vec()
            .map(Outcome::Reply)
            .unwrap_or(Outcome::Drop);
    }
    Outcome::Reply(bytes)
}

/// The zone's SOA record, as Route 53 writes the SOA of a Cloud Map zone.
fn soa(zone: &Zone) -> Result<Record, hickory_proto::ProtoError> {
    let apex = Name::from_ascii(format!("{}.", zone.name))?;
    let rdata = SOA::new(
        Name::from_ascii("ns-1536.awsdns-00.co.uk.")?,
        Name::from_ascii("awsdns-hostmaster.amazon.com.")?,
        1,
        7200,
        900,
        1_209_600,
        86_400,
    );
    Ok(Record::from_rdata(apex, zone.soa_ttl, RData::SOA(rdata)))
}

fn ns(zone: &Zone) -> Result<Record, hickory_proto::ProtoError> {
    let apex = Name::from_ascii(format!("{}.", zone.name))?;
    Ok(Record::from_rdata(
        apex,
        172_800,
        RData::NS(NS(Name::from_ascii("ns-1536.awsdns-00.co.uk.")?)),
    ))
}

/// Fills `response` for `relative` (the query name without the zone) inside `zone`.
fn resolve(
    zone: &Zone,
    relative: &str,
    qname: &Name,
    qtype: RecordType,
    response: &mut Message,
) -> Result<(), hickory_proto::ProtoError> {
    if relative.is_empty() {
        match qtype {
            RecordType::SOA => {
                response.add_answer(soa(zone)?);
            }
            RecordType::NS => {
                response.add_answer(ns(zone)?);
            }
            RecordType::ANY => {
                response.add_answer(soa(zone)?);
                response.add_answer(ns(zone)?);
            }
            _ => {
                response.add_name_server(soa(zone)?);
            }
        }
        return Ok(());
    }
    if let Some(service) = zone.services.get(relative) {
        let answers = service_records(zone, service, qname, qtype, response)?;
        if answers == 0 {
            response.add_name_server(soa(zone)?);
        }
        return Ok(());
    }
    // `<instance id>.<service>`: the target of an SRV record.
    if let Some((instance_id, service_name)) = relative.split_once('.') {
        if let Some(service) = zone.services.get(service_name) {
            if let Some(instance) = service
                .instances
                .iter()
                .find(|i| i.id.eq_ignore_ascii_case(instance_id))
            {
                let ttl = service
                    .ttl("A")
                    .or(service.ttl("AAAA"))
                    .or(service.ttl("SRV"))
                    .unwrap_or(zone.soa_ttl);
                let mut n = 0;
                for r in address_records(qname, instance, qtype, ttl) {
                    response.add_answer(r);
                    n += 1;
                }
                if n == 0 {
                    response.add_name_server(soa(zone)?);
                }
                return Ok(());
            }
        }
    }
    response.set_response_code(ResponseCode::NXDomain);
    response.add_name_server(soa(zone)?);
    Ok(())
}

/// The instances an answer names: healthy ones (all when none is healthy), at most 8 at random
/// for MULTIVALUE, one at random for WEIGHTED.
fn pick(service: &DnsService, usable: impl Fn(&DnsInstance) -> bool) -> Vec<&DnsInstance> {
    let candidates: Vec<&DnsInstance> = service.instances.iter().filter(|i| usable(i)).collect();
    let healthy: Vec<&DnsInstance> = candidates.iter().copied().filter(|i| i.healthy).collect();
    let pool = if healthy.is_empty() {
        candidates
    } else {
        healthy
    };
    let n = if service.weighted { 1 } else { MULTIVALUE_MAX };
    let mut rng = rand::rng();
    pool.choose_multiple(&mut rng, n).copied().collect()
}

fn address_records(qname: &Name, i: &DnsInstance, qtype: RecordType, ttl: u32) -> Vec<Record> {
    let mut out = Vec::new();
    if matches!(qtype, RecordType::A | RecordType::ANY) {
        if let Some(ip) = i.ipv4 {
            out.push(Record::from_rdata(qname.clone(), ttl, RData::A(A(ip))));
        }
    }
    if matches!(qtype, RecordType::AAAA | RecordType::ANY) {
        if let Some(ip) = i.ipv6 {
            out.push(Record::from_rdata(
                qname.clone(),
                ttl,
                RData::AAAA(AAAA(ip)),
            ));
        }
    }
    out
}

/// The records of one service for `qtype`; returns how many answers were added.
fn service_records(
    zone: &Zone,
    service: &DnsService,
    qname: &Name,
    qtype: RecordType,
    response: &mut Message,
) -> Result<usize, hickory_proto::ProtoError> {
    let mut n = 0;
    if let Some(ttl) = service.ttl("CNAME") {
        // A CNAME owns its name: it answers every type.
        for i in pick(service, |i| i.cname.is_some()) {
            if let Some(target) = &i.cname {
                let target = Name::from_ascii(format!("{}.", target.trim_end_matches('.')))?;
                response.add_answer(Record::from_rdata(
                    qname.clone(),
                    ttl,
                    RData::CNAME(CNAME(target)),
                ));
                n += 1;
            }
        }
        return Ok(n);
    }
    for kind in [RecordType::A, RecordType::AAAA] {
        if !(qtype == kind || qtype == RecordType::ANY) {
            continue;
        }
        let Some(ttl) = service.ttl(&kind.to_string()) else {
            continue;
        };
        let usable = |i: &DnsInstance| match kind {
            RecordType::A => i.ipv4.is_some(),
            _ => i.ipv6.is_some(),
        };
        for i in pick(service, usable) {
            for r in address_records(qname, i, kind, ttl) {
                response.add_answer(r);
                n += 1;
            }
        }
    }
    if matches!(qtype, RecordType::SRV | RecordType::ANY) {
        if let Some(ttl) = service.ttl("SRV") {
            let target_ttl = service.ttl("A").or(service.ttl("AAAA")).unwrap_or(ttl);
            for i in pick(service, |i| {
                i.port.is_some() && (i.ipv4.is_some() || i.ipv6.is_some())
            }) {
                let target = Name::from_ascii(format!("{}.{}.{}.", i.id, service.name, zone.name))?;
                let port = i.port.unwrap_or_default();
                response.add_answer(Record::from_rdata(
                    qname.clone(),
                    ttl,
                    RData::SRV(SRV::new(1, 1, port, target.clone())),
                ));
                n += 1;
                for r in address_records(&target, i, RecordType::ANY, target_ttl) {
                    response.add_additional(r);
                }
            }
        }
    }
    Ok(n)
}

/// A SERVFAIL for a query that could not be forwarded.
pub fn servfail(packet: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(packet).ok()?;
    let mut m = response_to(&request);
    m.add_queries(request.queries().iter().cloned());
    m.set_response_code(ResponseCode::ServFail);
    if request.extensions().is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        m.set_edns(edns);
    }
    m.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::servicediscovery::dns_view::DnsService;
    use hickory_proto::op::Query;
    use std::collections::HashMap;

    fn instance(id: &str, ip: [u8; 4], port: Option<u16>, healthy: bool) -> DnsInstance {
        DnsInstance {
            id: id.into(),
            ipv4: Some(ip.into()),
            ipv6: None,
            port,
            cname: None,
            healthy,
        }
    }

    fn view(instances: Vec<DnsInstance>, records: &[(&str, u32)], weighted: bool) -> DnsView {
        let mut services = HashMap::new();
        services.insert(
            "api".to_string(),
            DnsService {
                name: "api".into(),
                weighted,
                records: records.iter().map(|(k, t)| (k.to_string(), *t)).collect(),
                instances,
            },
        );
        DnsView {
            zones: vec![Zone {
                name: "prod.local".into(),
                soa_ttl: 15,
                private: true,
                services,
            }],
        }
    }

    fn query(name: &str, t: RecordType, edns: Option<u16>) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(77).set_recursion_desired(true);
        m.add_query(Query::query(Name::from_ascii(name).expect("name"), t));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        m.to_vec().expect("encode")
    }

    fn ask(v: &DnsView, name: &str, t: RecordType, edns: Option<u16>, tr: Transport) -> Message {
        match answer(v, &query(name, t, edns), tr) {
            Outcome::Reply(b) => Message::from_vec(&b).expect("decode"),
            other => panic!("no reply: {other:?}"),
        }
    }

    #[test]
    fn a_records_of_healthy_instances_with_the_record_ttl() {
        let v = view(
            vec![
                instance("t1", [10, 0, 0, 1], None, true),
                instance("t2", [10, 0, 0, 2], None, false),
                instance("t3", [10, 0, 0, 3], None, true),
            ],
            &[("A", 10)],
            false,
        );
        let m = ask(&v, "API.prod.local.", RecordType::A, None, Transport::Udp);
        assert_eq!(m.id(), 77);
        assert!(m.authoritative());
        let mut ips: Vec<String> = m
            .answers()
            .iter()
            .map(|r| {
                assert_eq!(r.ttl(), 10);
                r.data().to_string()
            })
            .collect();
        ips.sort();
        assert_eq!(ips, vec!["10.0.0.1", "10.0.0.3"]);
        // AAAA: the name exists, no such records: NOERROR with the SOA.
        let m = ask(
            &v,
            "api.prod.local.",
            RecordType::AAAA,
            None,
            Transport::Udp,
        );
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert!(m.answers().is_empty());
        assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);
    }

    #[test]
    fn multivalue_caps_at_eight_and_weighted_answers_one_and_all_unhealthy_counts_as_healthy() {
        let many: Vec<DnsInstance> = (0..20)
            .map(|n| instance(&format!("t{n}"), [10, 0, 0, n], None, false))
            .collect();
        let v = view(many.clone(), &[("A", 5)], false);
        let m = ask(&v, "api.prod.local.", RecordType::A, None, Transport::Udp);
        assert_eq!(m.answers().len(), MULTIVALUE_MAX);
        let v = view(many, &[("A", 5)], true);
        let m = ask(&v, "api.prod.local.", RecordType::A, None, Transport::Udp);
        assert_eq!(m.answers().len(), 1);
    }

    #[test]
    fn srv_targets_resolve_to_the_instance_address() {
        let v = view(
            vec![instance("abc123", [10, 0, 0, 9], Some(32768), true)],
            &[("SRV", 20)],
            false,
        );
        let m = ask(&v, "api.prod.local.", RecordType::SRV, None, Transport::Udp);
        let RData::SRV(srv) = m.answers()[0].data() else {
            panic!("not SRV: {:?}", m.answers());
        };
        assert_eq!(srv.port(), 32768);
        assert_eq!(srv.target().to_ascii(), "abc123.api.prod.local.");
        assert_eq!(m.additionals()[0].data().to_string(), "10.0.0.9");
        let m = ask(
            &v,
            "abc123.api.prod.local.",
            RecordType::A,
            None,
            Transport::Udp,
        );
        assert_eq!(m.answers()[0].data().to_string(), "10.0.0.9");
    }

    #[test]
    fn unknown_names_in_a_zone_are_nxdomain_with_the_soa_and_others_forward() {
        let v = view(vec![], &[("A", 10)], false);
        let m = ask(&v, "nope.prod.local.", RecordType::A, None, Transport::Udp);
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
        let soa = &m.name_servers()[0];
        assert_eq!(soa.ttl(), 15);
        assert_eq!(soa.name().to_ascii(), "prod.local.");
        assert!(matches!(
            answer(
                &v,
                &query("example.com.", RecordType::A, None),
                Transport::Udp
            ),
            Outcome::Forward
        ));
        assert!(matches!(
            answer(
                &v,
                &query("xprod.local.", RecordType::A, None),
                Transport::Udp
            ),
            Outcome::Forward
        ));
    }

    #[test]
    fn large_udp_answers_are_truncated_unless_edns_allows_them_and_tcp_is_whole() {
        let v = view(
            (0..8)
                .map(|n| instance(&format!("{n:0>32}"), [10, 0, 0, n], Some(8080), true))
                .collect(),
            &[("SRV", 10), ("A", 10)],
            false,
        );
        let m = ask(&v, "api.prod.local.", RecordType::SRV, None, Transport::Udp);
        assert!(m.truncated());
        assert!(m.answers().is_empty());
        let m = ask(
            &v,
            "api.prod.local.",
            RecordType::SRV,
            Some(1232),
            Transport::Udp,
        );
        assert!(!m.truncated());
        assert_eq!(m.answers().len(), 8);
        assert_eq!(
            m.extensions().as_ref().map(|e| e.max_payload()),
            Some(EDNS_PAYLOAD)
        );
        let m = ask(&v, "api.prod.local.", RecordType::SRV, None, Transport::Tcp);
        assert!(!m.truncated());
        assert_eq!(m.answers().len(), 8);
    }

    #[test]
    fn garbage_never_panics_and_gets_formerr_when_it_has_an_id() {
        let v = view(vec![], &[("A", 10)], false);
        assert!(matches!(
            answer(&v, &[1, 2, 3], Transport::Udp),
            Outcome::Drop
        ));
        let mut junk = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        junk.extend_from_slice(&[0xff; 40]);
        match answer(&v, &junk, Transport::Udp) {
            Outcome::Reply(b) => {
                let m = Message::from_vec(&b).expect("decode");
                assert_eq!(m.id(), 0x1234);
                assert_eq!(m.response_code(), ResponseCode::FormErr);
            }
            other => panic!("{other:?}"),
        }
    }
}
