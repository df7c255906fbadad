//! CreateListener, DescribeListeners, ModifyListener, DeleteListener, and listener certificates.

use super::model::{Action, Listener, LoadBalancer};
use super::{key, lb_not_found, listener_not_found, tags, validation, Elbv2, SERVICE};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{random_hex, Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";

pub fn register(r: &mut Registry, s: &Arc<Elbv2>) {
    r.sync(SERVICE, "CreateListener", s, create);
    r.sync(SERVICE, "DescribeListeners", s, describe);
    r.sync(SERVICE, "ModifyListener", s, modify);
    r.sync(SERVICE, "DeleteListener", s, delete);
    r.sync(
        SERVICE,
        "DescribeListenerCertificates",
        s,
        describe_certificates,
    );
    r.sync(SERVICE, "AddListenerCertificates", s, add_certificates);
    r.sync(
        SERVICE,
        "RemoveListenerCertificates",
        s,
        remove_certificates,
    );
    r.sync(
        SERVICE,
        "DescribeListenerAttributes",
        s,
        describe_attributes,
    );
    r.sync(SERVICE, "ModifyListenerAttributes", s, modify_attributes);
}

impl Listener {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "ListenerArn": self.arn,
            "LoadBalancerArn": self.lb_arn,
            "Port": self.port,
            "Protocol": self.protocol,
            "DefaultActions": self.default_actions,
        });
        if !self.certificates.is_empty() {
            v["Certificates"] = json!(self
                .certificates
                .iter()
                .map(|c| json!({"CertificateArn": c.get("CertificateArn")}))
                .collect::<Vec<_>>());
        }
        if let Some(p) = &self.ssl_policy {
            v["SslPolicy"] = json!(p);
        }
        if !self.alpn_policy.is_empty() {
            v["AlpnPolicy"] = json!(self.alpn_policy);
        }
        v
    }

    pub fn is_tls(&self) -> bool {
        self.protocol == "HTTPS" || self.protocol == "TLS"
    }
}

fn check_protocol(lb: &LoadBalancer, protocol: &str) -> Result<(), AwsError> {
    let ok = if lb.is_application() {
        matches!(protocol, "HTTP" | "HTTPS")
    } else {
        matches!(protocol, "TCP" | "TLS" | "UDP" | "TCP_UDP")
    };
    if ok {
        Ok(())
    } else {
        Err(AwsError::new(
            codes::elbv2::UnsupportedProtocolException,
            format!(
                "Protocol '{protocol}' is not supported by a load balancer of type '{}'",
                lb.kind
            ),
        ))
    }
}

/// Certificates and SSL policy for a TLS listener (any certificate ARN is accepted: the data
/// plane serves a self-signed certificate for the load balancer's DNS name).
fn tls_settings(
    protocol: &str,
    certificates: &[Value],
    policy: Option<&str>,
) -> Result<Option<String>, AwsError> {
    if protocol != "HTTPS" && protocol != "TLS" {
        return Ok(None);
    }
    if certificates.is_empty() {
        return Err(AwsError::new(
            codes::elbv2::CertificateNotFoundException,
            format!("A certificate must be specified for {protocol} listeners"),
        ));
    }
    let policy = policy.unwrap_or(DEFAULT_SSL_POLICY);
    if !super::misc::SSL_POLICIES.iter().any(|p| p.0 == policy) {
        return Err(AwsError::new(
            codes::elbv2::SSLPolicyNotFoundException,
            format!("SSL policy '{policy}' not found"),
        ));
    }
    Ok(Some(policy.to_string()))
}

fn create(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let lb_arn = input.str("LoadBalancerArn").unwrap_or_default().to_string();
    let lb = s
        .load_balancers
        .get(&key(ctx, &lb_arn))
        .ok_or_else(lb_not_found)?;
    // Application and Network Load Balancers need a protocol (the API reference: "For
    // Application Load Balancers, the supported protocols are HTTP and HTTPS"; there is no
    // default); a Gateway Load Balancer's listener takes none.
    let protocol = match input.str("Protocol") {
        Some(p) => p.to_string(),
        None if lb.kind == "gateway" => "TCP".to_string(),
        None => return Err(validation("A listener protocol must be specified")),
    };
    check_protocol(&lb, &protocol)?;
    let port = input
        .i64("Port")
        .ok_or_else(|| validation("A listener port must be specified"))?;
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| validation("The port must be between 1 and 65535"))?;
    let certificates: Vec<Value> = input.member("Certificates")?.unwrap_or_default();
    let ssl_policy = tls_settings(&protocol, &certificates, input.str("SslPolicy"))?;
    let actions: Vec<Action> = input.member("DefaultActions")?.unwrap_or_default();
    let actions = super::actions::normalize(s, ctx, &lb, &protocol, actions)?;
    let new_tags = tags::parse(&input)?;
    let id = random_hex(16);
    let arn = ctx.arn(
        "elasticloadbalancing",
        &format!("listener/{}/{}/{}/{id}", lb.short_kind(), lb.name, lb.id),
    );
    let listener = Listener {
        arn: arn.clone(),
        lb_arn: lb_arn.clone(),
        port,
        protocol,
        certificates: certificates
            .into_iter()
            .map(|c| json!({"CertificateArn": c.get("CertificateArn"), "IsDefault": true}))
            .collect(),
        ssl_policy,
        default_actions: actions,
        alpn_policy: input.string_list("AlpnPolicy"),
        default_rule_arn: ctx.arn(
            "elasticloadbalancing",
            &format!(
                "listener-rule/{}/{}/{}/{id}/{}",
                lb.short_kind(),
                lb.name,
                lb.id,
                random_hex(16)
            ),
        ),
        attributes: Default::default(),
    };
    let scope = ctx.scope();
    s.listeners.transact(|t| {
        let clash = t
            .keys(&scope)
            .into_iter()
            .filter_map(|k| t.get(&k))
            .any(|l| l.lb_arn == lb_arn && l.port == port);
        if clash {
            return Err(AwsError::new(
                codes::elbv2::DuplicateListenerException,
                "A listener already exists on this port for this load balancer",
            ));
        }
        t.put(&key(ctx, &arn), listener.clone());
        Ok(())
    })?;
    tags::set(s, ctx, &arn, &new_tags)?;
    s.bump();
    Ok(json!({"Listeners": [listener.to_json()]}))
}

fn describe(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arns = input.string_list("ListenerArns");
    let lb_arn = input.str("LoadBalancerArn");
    let all: Vec<Listener> = s
        .listeners
        .scan(&ctx.scope())
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let mut found: Vec<Listener> = match (lb_arn, arns.is_empty()) {
        (Some(_), false) => {
            return Err(validation(
                "Listener ARNs and a load balancer ARN cannot be specified at the same time",
            ))
        }
        (Some(lb), true) => {
            if !s.load_balancers.contains(&key(ctx, lb)) {
                return Err(lb_not_found());
            }
            all.into_iter().filter(|l| l.lb_arn == lb).collect()
        }
        (None, false) => {
            let mut out = Vec::new();
            for a in &arns {
                out.push(
                    all.iter()
                        .find(|l| &l.arn == a)
                        .cloned()
                        .ok_or_else(listener_not_found)?,
                );
            }
            out
        }
        (None, true) => {
            return Err(validation(
                "You must specify either listener ARNs or a load balancer ARN",
            ))
        }
    };
    found.sort_by(|a, b| a.port.cmp(&b.port).then(a.arn.cmp(&b.arn)));
    let size = input.i64("PageSize").unwrap_or(400).clamp(1, 400) as usize;
    let (items, next) = page(
        found,
        |l| format!("{:05}\0{}", l.port, l.arn),
        input.str("Marker"),
        size,
        codes::common::ValidationError,
    )?;
    let mut out = json!({"Listeners": items.iter().map(Listener::to_json).collect::<Vec<_>>()});
    if let Some(n) = next {
        out["NextMarker"] = json!(n);
    }
    Ok(out)
}

fn modify(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("ListenerArn").unwrap_or_default().to_string();
    let mut listener = s
        .listeners
        .get(&key(ctx, &arn))
        .ok_or_else(listener_not_found)?;
    let lb = s
        .load_balancers
        .get(&key(ctx, &listener.lb_arn))
        .ok_or_else(lb_not_found)?;
    if let Some(p) = input.str("Protocol") {
        check_protocol(&lb, p)?;
        listener.protocol = p.to_string();
    }
    if let Some(p) = input.i64("Port") {
        listener.port = u16::try_from(p)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| validation("The port must be between 1 and 65535"))?;
    }
    if let Some(c) = input.member::<Vec<Value>>("Certificates")? {
        listener.certificates = c
            .into_iter()
            .map(|c| json!({"CertificateArn": c.get("CertificateArn"), "IsDefault": true}))
            .collect();
    }
    let policy = input
        .str("SslPolicy")
        .map(str::to_string)
        .or(listener.ssl_policy.clone());
    listener.ssl_policy = tls_settings(
        &listener.protocol,
        &listener.certificates,
        policy.as_deref(),
    )?;
    if !listener.is_tls() {
        listener.certificates.clear();
    }
    if let Some(actions) = input.member::<Vec<Action>>("DefaultActions")? {
        listener.default_actions =
            super::actions::normalize(s, ctx, &lb, &listener.protocol, actions)?;
    }
    if let Some(a) = input.member::<Vec<String>>("AlpnPolicy")? {
        listener.alpn_policy = a;
    }
    let scope = ctx.scope();
    s.listeners.transact(|t| {
        let clash = t
            .keys(&scope)
            .into_iter()
            .filter_map(|k| t.get(&k))
            .any(|l| {
                l.lb_arn == listener.lb_arn && l.port == listener.port && l.arn != listener.arn
            });
        if clash {
            return Err(AwsError::new(
                codes::elbv2::DuplicateListenerException,
                "A listener already exists on this port for this load balancer",
            ));
        }
        t.put(&key(ctx, &arn), listener.clone());
        Ok(())
    })?;
    s.bump();
    Ok(json!({"Listeners": [listener.to_json()]}))
}

/// Removes a listener and its rules.
pub fn remove_listener(s: &Elbv2, ctx: &Ctx, arn: &str) -> Result<(), AwsError> {
    let rules: Vec<String> = s
        .rules
        .scan(&ctx.scope())
        .into_iter()
        .filter(|(_, r)| r.listener_arn == arn)
        .map(|(k, r)| {
            let _ = tags::remove_all(s, ctx, &r.arn);
            k
        })
        .collect();
    s.rules.transact::<_, AwsError, _>(|t| {
        for k in &rules {
            t.remove(k);
        }
        Ok(())
    })?;
    if let Some(l) = s.listeners.remove(&key(ctx, arn))? {
        tags::remove_all(s, ctx, &l.default_rule_arn)?;
    }
    tags::remove_all(s, ctx, arn)?;
    Ok(())
}

fn delete(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("ListenerArn").unwrap_or_default().to_string();
    if !s.listeners.contains(&key(ctx, &arn)) {
        return Err(listener_not_found());
    }
    remove_listener(s, ctx, &arn)?;
    s.bump();
    Ok(json!({}))
}

fn describe_certificates(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("ListenerArn").unwrap_or_default();
    let l = s
        .listeners
        .get(&key(ctx, arn))
        .ok_or_else(listener_not_found)?;
    Ok(json!({"Certificates": l.certificates}))
}

fn add_certificates(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("ListenerArn").unwrap_or_default().to_string();
    let add: Vec<Value> = input.member("Certificates")?.unwrap_or_default();
    let l = s.listeners.transact::<_, AwsError, _>(|t| {
        let l = t.get_mut(&key(ctx, &arn)).ok_or_else(listener_not_found)?;
        for c in add {
            let cert = c.get("CertificateArn").cloned().unwrap_or(Value::Null);
            if !l
                .certificates
                .iter()
                .any(|x| x.get("CertificateArn") == Some(&cert))
            {
                l.certificates
                    .push(json!({"CertificateArn": cert, "IsDefault": false}));
            }
        }
        Ok(l.clone())
    })?;
    Ok(
        json!({"Certificates": l.certificates.iter().filter(|c| c.get("IsDefault") != Some(&json!(true))).collect::<Vec<_>>()}),
    )
}

fn remove_certificates(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("ListenerArn").unwrap_or_default().to_string();
    let remove: Vec<Value> = input.member("Certificates")?.unwrap_or_default();
    s.listeners.transact(|t| {
        let l = t.get_mut(&key(ctx, &arn)).ok_or_else(listener_not_found)?;
        for c in remove {
            let cert = c.get("CertificateArn").cloned().unwrap_or(Value::Null);
            if l.certificates.iter().any(|x| {
                x.get("CertificateArn") == Some(&cert) && x.get("IsDefault") == Some(&json!(true))
            }) {
                return Err(AwsError::new(
                    codes::elbv2::OperationNotPermittedException,
                    "The default certificate cannot be removed",
                ));
            }
            l.certificates
                .retain(|x| x.get("CertificateArn") != Some(&cert));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

fn describe_attributes(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("ListenerArn").unwrap_or_default();
    let l = s
        .listeners
        .get(&key(ctx, arn))
        .ok_or_else(listener_not_found)?;
    Ok(json!({"Attributes": super::attributes::to_list(&l.attributes)}))
}

fn modify_attributes(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("ListenerArn").unwrap_or_default().to_string();
    let changes = super::attributes::from_list(&input)?;
    let l = s.listeners.transact::<_, AwsError, _>(|t| {
        let l = t.get_mut(&key(ctx, &arn)).ok_or_else(listener_not_found)?;
        l.attributes.extend(changes.clone());
        Ok(l.clone())
    })?;
    Ok(json!({"Attributes": super::attributes::to_list(&l.attributes)}))
}
