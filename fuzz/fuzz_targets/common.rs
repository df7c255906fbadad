//! Shared by the fuzz targets: the services and operations of a protocol, and the parse →
//! validate → render chain the server runs on every request (minus the handler).
#![allow(dead_code)]

use ecs_emulator::protocol::{self, catalog, catalog::Protocol, model, HttpRequest};
use std::sync::OnceLock;

/// The services speaking `protocol`, with their operation names sorted (stable indices).
pub fn services(protocol: Protocol) -> Vec<(&'static catalog::ServiceInfo, Vec<&'static str>)> {
    catalog::SERVICES
        .iter()
        .filter(|s| s.protocols.contains(&protocol))
        .filter_map(|s| Some((s, model::model(s.name)?.operation_names())))
        .collect()
}

/// Picks (service, operation) from two selector values.
pub fn pick<'a>(
    table: &'a [(&'static catalog::ServiceInfo, Vec<&'static str>)],
    svc: u8,
    op: u16,
) -> (&'static catalog::ServiceInfo, &'static str) {
    let (s, ops) = &table[svc as usize % table.len()];
    (s, ops[op as usize % ops.len()])
}

pub fn json_services() -> &'static [(&'static catalog::ServiceInfo, Vec<&'static str>)] {
    static T: OnceLock<Vec<(&'static catalog::ServiceInfo, Vec<&'static str>)>> = OnceLock::new();
    T.get_or_init(|| services(Protocol::Json))
}

pub fn cbor_services() -> &'static [(&'static catalog::ServiceInfo, Vec<&'static str>)] {
    static T: OnceLock<Vec<(&'static catalog::ServiceInfo, Vec<&'static str>)>> = OnceLock::new();
    T.get_or_init(|| services(Protocol::Cbor))
}

/// What server.rs does with a request after SigV4 and gzip: parse, validate, and render the error
/// (in the request's protocol) when either fails.
pub fn run(req: &HttpRequest<'_>) {
    match protocol::parse(req) {
        Ok(call) => {
            if let Err(e) = protocol::validate(&call) {
                let _ = protocol::render_error(&call.wire, &e, "fuzz");
            }
        }
        Err(boxed) => {
            let (wire, err) = *boxed;
            let _ = protocol::render_error(&wire, &err, "fuzz");
        }
    }
}
