//! DNS packets: the Cloud Map DNS server's packet path (hickory-proto decoding, zone lookup,
//! record selection, EDNS0, truncation, FORMERR for garbage) over UDP and TCP rules, against a
//! view with a zone holding A, AAAA, SRV and CNAME services. Never panics, never answers a
//! response, and a UDP answer always fits the client's buffer.
#![no_main]

use ecs_emulator::dns::answer::{answer, Outcome, Transport, EDNS_PAYLOAD};
use ecs_emulator::services::servicediscovery::dns_view::{DnsInstance, DnsService, DnsView, Zone};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::sync::OnceLock;

fn view() -> &'static DnsView {
    static VIEW: OnceLock<DnsView> = OnceLock::new();
    VIEW.get_or_init(|| {
        let instances: Vec<DnsInstance> = (0..12u8)
            .map(|n| DnsInstance {
                id: format!("{n:0>32}"),
                ipv4: Some([10, 0, 0, n].into()),
                ipv6: Some(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(n))),
                port: Some(8000 + u16::from(n)),
                cname: None,
                healthy: n % 3 != 0,
            })
            .collect();
        let mut services = HashMap::new();
        for (name, records, weighted) in [
            ("api", vec![("A", 10), ("AAAA", 10), ("SRV", 10)], false),
            ("one", vec![("A", 60)], true),
        ] {
            services.insert(
                name.to_string(),
                DnsService {
                    name: name.into(),
                    weighted,
                    records: records.into_iter().map(|(k, t)| (k.to_string(), t)).collect(),
                    instances: instances.clone(),
                },
            );
        }
        services.insert(
            "alias".into(),
            DnsService {
                name: "alias".into(),
                weighted: true,
                records: vec![("CNAME".into(), 30)],
                instances: vec![DnsInstance {
                    id: "c".into(),
                    ipv4: None,
                    ipv6: None,
                    port: None,
                    cname: Some("example.com".into()),
                    healthy: true,
                }],
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
    })
}

fuzz_target!(|data: &[u8]| {
    for transport in [Transport::Udp, Transport::Tcp] {
        if let Outcome::Reply(bytes) = answer(view(), data, transport) {
            assert!(bytes.len() >= 12);
            assert!(bytes[2] & 0x80 != 0, "a reply is a response");
            if transport == Transport::Udp {
                assert!(bytes.len() <= usize::from(EDNS_PAYLOAD));
            }
        }
    }
});
