//! DescribeSSLPolicies and DescribeAccountLimits.

use super::{Elbv2, SERVICE};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<Elbv2>) {
    r.sync(SERVICE, "DescribeSSLPolicies", s, describe_ssl_policies);
    r.sync(SERVICE, "DescribeAccountLimits", s, describe_account_limits);
}

const TLS12_CIPHERS: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
];
const TLS13_CIPHERS: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// (name, protocols, TLS 1.3 ciphers included).
pub const SSL_POLICIES: &[(&str, &[&str], bool)] = &[
    (
        "ELBSecurityPolicy-2016-08",
        &["TLSv1", "TLSv1.1", "TLSv1.2"],
        false,
    ),
    ("ELBSecurityPolicy-TLS-1-2-2017-01", &["TLSv1.2"], false),
    ("ELBSecurityPolicy-TLS-1-2-Ext-2018-06", &["TLSv1.2"], false),
    ("ELBSecurityPolicy-FS-1-2-Res-2020-10", &["TLSv1.2"], false),
    (
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        &["TLSv1.2", "TLSv1.3"],
        true,
    ),
    (
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        &["TLSv1.2", "TLSv1.3"],
        true,
    ),
    ("ELBSecurityPolicy-TLS13-1-3-2021-06", &["TLSv1.3"], true),
    (
        "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
        &["TLSv1.2", "TLSv1.3"],
        true,
    ),
];

fn policy_json(name: &str, protocols: &[&str], tls13: bool) -> Value {
    let mut ciphers: Vec<&str> = Vec::new();
    if tls13 {
        ciphers.extend(TLS13_CIPHERS);
    }
    if protocols.iter().any(|p| *p != "TLSv1.3") {
        ciphers.extend(TLS12_CIPHERS);
    }
    json!({
        "Name": name,
        "SslProtocols": protocols,
        "Ciphers": ciphers.iter().enumerate().map(|(i, c)| json!({"Name": c, "Priority": i + 1})).collect::<Vec<_>>(),
        "SupportedLoadBalancerTypes": ["application", "network"],
    })
}

fn describe_ssl_policies(_: &Elbv2, _: &Ctx, input: Value) -> HandlerResult {
    let names = input.string_list("Names");
    let mut out = Vec::new();
    if names.is_empty() {
        out = SSL_POLICIES
            .iter()
            .map(|(n, p, t)| policy_json(n, p, *t))
            .collect();
    } else {
        for n in &names {
            let (name, protocols, tls13) =
                SSL_POLICIES.iter().find(|p| p.0 == n).ok_or_else(|| {
                    AwsError::new(
                        codes::elbv2::SSLPolicyNotFoundException,
                        format!("SSL policy '{n}' not found"),
                    )
                })?;
            out.push(policy_json(name, protocols, *tls13));
        }
    }
    Ok(json!({"SslPolicies": out}))
}

fn describe_account_limits(_: &Elbv2, _: &Ctx, _: Value) -> HandlerResult {
    let limits = [
        ("application-load-balancers", 50),
        ("condition-values-per-alb-rule", 5),
        ("condition-wildcards-per-alb-rule", 5),
        ("gateway-load-balancers", 100),
        ("gateway-load-balancers-per-vpc", 100),
        ("geneve-target-groups", 100),
        ("listeners-per-application-load-balancer", 50),
        ("listeners-per-network-load-balancer", 50),
        ("network-load-balancers", 50),
        ("rules-per-application-load-balancer", 100),
        ("target-groups", 3000),
        ("target-groups-per-action-on-application-load-balancer", 5),
        ("target-groups-per-action-on-network-load-balancer", 1),
        ("target-groups-per-application-load-balancer", 100),
        ("targets-per-application-load-balancer", 1000),
        (
            "targets-per-availability-zone-per-network-load-balancer",
            500,
        ),
        ("targets-per-network-load-balancer", 3000),
    ];
    Ok(json!({
        "Limits": limits.iter().map(|(n, m)| json!({"Name": n, "Max": m.to_string()})).collect::<Vec<_>>(),
    }))
}
