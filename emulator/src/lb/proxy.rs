//! One HTTP request through an Application Load Balancer listener: rule matching, the action,
//! target choice with stickiness, the forwarded request, and ALB's own error answers.

use super::matching::{rule_matches, RequestView};
use super::routes::{
    read_stick_cookie, stick_cookie, weighted, GroupRoute, ListenerRoutes, RouteTarget,
};
use super::upstream::UpstreamError;
use super::Lb;
use crate::faults::network::Effect;
use crate::services::elbv2::metrics::{Counters, GroupCounters};
use crate::services::elbv2::model::{Action, FixedResponseConfig, ForwardConfig, RedirectConfig};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::upgrade::OnUpgrade;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// How the request arrived: the same for every request of a client connection, so the header
/// values made of it are made once per connection.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub peer: IpAddr,
    /// "http" or "https".
    pub scheme: &'static str,
    /// The listener port (X-Forwarded-Port, #{port}).
    pub port: u16,
    /// `peer` as X-Forwarded-For has it.
    peer_value: HeaderValue,
    /// `port` as X-Forwarded-Port has it.
    port_value: HeaderValue,
}

impl Inbound {
    pub fn new(peer: IpAddr, scheme: &'static str, port: u16) -> Inbound {
        let peer_value = HeaderValue::try_from(peer.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        Inbound {
            peer,
            scheme,
            port,
            peer_value,
            port_value: HeaderValue::from(port),
        }
    }
}

pub fn full(body: impl Into<Bytes>) -> ProxyBody {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An answer the load balancer makes itself, as ALB words it.
pub fn elb_error(status: StatusCode) -> Response<ProxyBody> {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let body = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    );
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(http::header::SERVER, HeaderValue::from_static("awselb/2.0"));
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html"),
    );
    r
}

/// Hop-by-hop headers (RFC 9110 7.6.1): not forwarded either way.
static HOP_BY_HOP: [HeaderName; 8] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    // One look at each of the few headers a message has (comparing names is cheap) rather than
    // a hashed removal of each of the eight names: most messages have none or one of them.
    while let Some(name) = headers.keys().find(|n| HOP_BY_HOP.contains(n)).cloned() {
        headers.remove(name);
    }
}

/// `Connection: upgrade` with an `Upgrade` header.
fn is_upgrade_request(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::UPGRADE)
        && headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// The value of the first cookie called `name` in the request's Cookie headers.
fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn trace_id(existing: Option<&str>, now: f64) -> String {
    let mut id = String::with_capacity(existing.map_or(0, str::len) + 40);
    match existing {
        Some(e) if e.contains("Root=") => {
            id.push_str(e);
            id.push_str(";Self=");
        }
        _ => id.push_str("Root="),
    }
    id.push_str("1-");
    push_hex(&mut id, u128::from(now as u64), 8);
    id.push('-');
    // 96 random bits, 24 hex digits.
    push_hex(&mut id, rand::random::<u128>() >> 32, 24);
    id
}

/// The last `digits` hex digits of `value`, in lower case (what `{:0digits$x}` writes for a
/// value that fits, without the formatting machinery on every request).
fn push_hex(out: &mut String, value: u128, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..digits).rev() {
        out.push(HEX[((value >> (4 * shift)) & 0xf) as usize] as char);
    }
}

fn redirect(
    cfg: &RedirectConfig,
    inbound: &Inbound,
    host: &str,
    path: &str,
    query: Option<&str>,
) -> Response<ProxyBody> {
    let sub = |s: &str| {
        s.replace("#{protocol}", inbound.scheme)
            .replace("#{host}", host)
            .replace("#{port}", &inbound.port.to_string())
            .replace("#{path}", path.trim_start_matches('/'))
            .replace("#{query}", query.unwrap_or(""))
    };
    let protocol = sub(cfg.protocol.as_deref().unwrap_or("#{protocol}")).to_ascii_lowercase();
    let host = sub(cfg.host.as_deref().unwrap_or("#{host}"));
    let port = sub(cfg.port.as_deref().unwrap_or("#{port}"));
    let path = sub(cfg.path.as_deref().unwrap_or("/#{path}"));
    let query = sub(cfg.query.as_deref().unwrap_or("#{query}"));
    let default_port =
        (protocol == "http" && port == "80") || (protocol == "https" && port == "443");
    let mut location = format!("{protocol}://{host}");
    if !default_port {
        location.push(':');
        location.push_str(&port);
    }
    location.push_str(&path);
    if !query.is_empty() {
        location.push('?');
        location.push_str(&query);
    }
    let status = if cfg.status_code == "HTTP_302" {
        StatusCode::FOUND
    } else {
        StatusCode::MOVED_PERMANENTLY
    };
    let mut r = Response::new(full(""));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(http::header::SERVER, HeaderValue::from_static("awselb/2.0"));
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

fn fixed(cfg: &FixedResponseConfig) -> Response<ProxyBody> {
    let mut r = Response::new(full(cfg.message_body.clone().unwrap_or_default()));
    *r.status_mut() = cfg
        .status_code
        .parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::OK);
    let h = r.headers_mut();
    h.insert(http::header::SERVER, HeaderValue::from_static("awselb/2.0"));
    let ct = cfg
        .content_type
        .as_deref()
        .unwrap_or("text/plain; charset=utf-8");
    if let Ok(v) = HeaderValue::from_str(ct) {
        h.insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// Counts the request as outstanding on a target until dropped.
struct Outstanding<'a>(&'a Counters, &'a GroupCounters);

impl<'a> Outstanding<'a> {
    fn new(target: &'a Counters, group: &'a GroupCounters) -> Outstanding<'a> {
        target.here().outstanding.fetch_add(1, Ordering::Relaxed);
        group.all.here().outstanding.fetch_add(1, Ordering::Relaxed);
        Outstanding(target, group)
    }
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        self.0.here().outstanding.fetch_sub(1, Ordering::Relaxed);
        self.1
            .all
            .here()
            .outstanding
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// The Host header without its port (or the URI's authority, as HTTP/2 sends it).
fn request_host(req: &Request<ProxyBody>) -> String {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
        _ => host,
    }
}

/// The actions of the first rule whose conditions hold, else the listener's default actions.
/// Without rules (the common case) nothing of the request is looked at.
fn matched_actions<'r>(
    routes: &'r ListenerRoutes,
    req: &Request<ProxyBody>,
    peer: IpAddr,
) -> &'r [Action] {
    if routes.rules.is_empty() {
        return &routes.default_actions;
    }
    let host = request_host(req);
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let view = RequestView {
        method: req.method().as_str(),
        host: &host,
        path: req.uri().path(),
        query: &query,
        headers: req.headers(),
        source: peer,
    };
    routes
        .rules
        .iter()
        .find(|r| rule_matches(&r.conditions, &view))
        .map(|r| r.actions.as_slice())
        .unwrap_or(&routes.default_actions)
}

/// The target group of a forward action: by the group-stickiness cookie, else by weight.
/// Pushes the group-stickiness cookies to set when it chose anew.
fn choose_group<'r>(
    routes: &'r ListenerRoutes,
    fc: &ForwardConfig,
    headers: &http::HeaderMap,
    now: f64,
    set_cookies: &mut Vec<String>,
) -> Option<&'r Arc<GroupRoute>> {
    if let [only] = fc.target_groups.as_slice() {
        return routes.groups.get(&only.target_group_arn);
    }
    let candidates: Vec<(&Arc<GroupRoute>, f64)> = fc
        .target_groups
        .iter()
        .filter_map(|w| {
            routes
                .groups
                .get(&w.target_group_arn)
                .map(|g| (g, w.weight.unwrap_or(1) as f64))
        })
        .collect();
    if candidates.len() == 1 {
        return candidates.first().map(|(g, _)| *g);
    }
    let group_sticky = fc
        .target_group_stickiness_config
        .as_ref()
        .filter(|s| s.enabled == Some(true))
        .map(|s| s.duration_seconds.unwrap_or(3600));
    let stuck = group_sticky
        .and_then(|_| cookie(headers, "AWSALBTG"))
        .and_then(|c| read_stick_cookie(&c, "tg", now))
        .and_then(|id| {
            candidates
                .iter()
                .find(|(g, w)| g.id == id && *w > 0.0)
                .map(|(g, _)| *g)
        });
    if stuck.is_some() {
        return stuck;
    }
    let groups: Vec<&Arc<GroupRoute>> = candidates.iter().map(|(g, _)| *g).collect();
    let weights: Vec<f64> = candidates.iter().map(|(_, w)| *w).collect();
    let group = *weighted(&groups, &weights)?;
    if let Some(d) = group_sticky {
        let expires = now + d as f64;
        let v = stick_cookie("tg", &group.id, expires);
        let date = http_date(expires);
        set_cookies.push(format!("AWSALBTG={v}; Expires={date}; Path=/"));
        set_cookies.push(format!(
            "AWSALBTGCORS={v}; Expires={date}; Path=/; SameSite=None"
        ));
    }
    Some(group)
}

/// The target of a group for this request, by the AWSALB cookie when the group is sticky;
/// pushes the stickiness cookies, which ALB sets again on every response.
fn choose_target<'g>(
    group: &'g GroupRoute,
    headers: &http::HeaderMap,
    now: f64,
    set_cookies: &mut Vec<String>,
) -> Option<&'g RouteTarget> {
    let sticky_to = group
        .sticky
        .and_then(|_| cookie(headers, "AWSALB"))
        .and_then(|c| read_stick_cookie(&c, &group.id, now));
    let target = group.pick(sticky_to.as_deref(), now)?;
    if let Some(d) = group.sticky {
        let expires = now + d as f64;
        let v = stick_cookie(&group.id, &target.key, expires);
        let date = http_date(expires);
        set_cookies.push(format!("AWSALB={v}; Expires={date}; Path=/"));
        set_cookies.push(format!(
            "AWSALBCORS={v}; Expires={date}; Path=/; SameSite=None; Secure"
        ));
    }
    Some(target)
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");

/// The X-Forwarded-* and X-Amzn-Trace-Id headers ALB adds.
fn add_forwarded_headers(h: &mut http::HeaderMap, inbound: &Inbound, now: f64) {
    let xff = match h.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) => HeaderValue::try_from(format!("{prev}, {}", inbound.peer)).ok(),
        None => Some(inbound.peer_value.clone()),
    };
    if let Some(v) = xff {
        h.insert(X_FORWARDED_FOR, v);
    }
    let trace = trace_id(h.get(&X_AMZN_TRACE_ID).and_then(|v| v.to_str().ok()), now);
    if let Ok(v) = HeaderValue::try_from(trace) {
        h.insert(X_AMZN_TRACE_ID, v);
    }
    h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(inbound.scheme));
    h.insert(X_FORWARDED_PORT, inbound.port_value.clone());
}

/// The request as the target gets it (HTTP/1.1 to the target's address, hop-by-hop headers
/// dropped, ALB's headers added), and the client side of an upgrade it asks for; else the
/// status ALB answers with.
fn upstream_request(
    mut req: Request<ProxyBody>,
    target: &RouteTarget,
    inbound: &Inbound,
    now: f64,
) -> Result<(Request<ProxyBody>, Option<OnUpgrade>), StatusCode> {
    let upgrade = req
        .headers()
        .get(http::header::UPGRADE)
        .cloned()
        .filter(|_| is_upgrade_request(req.headers()));
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    // The target gets origin-form ("/path?query") and the client's Host (HTTP/2 clients send
    // it as the URI's authority; else the target's address, as an HTTP client would).
    if !parts.headers.contains_key(http::header::HOST) {
        let authority = parts.uri.authority().unwrap_or(&target.authority);
        if let Ok(v) = HeaderValue::from_str(authority.as_str()) {
            parts.headers.insert(http::header::HOST, v);
        }
    }
    parts.uri = match parts.uri.path_and_query() {
        Some(p) if p.as_str().starts_with('/') => http::Uri::from(p.clone()),
        Some(p) if p.as_str() == "*" && parts.method == http::Method::OPTIONS => {
            http::Uri::from(p.clone())
        }
        Some(_) => return Err(StatusCode::BAD_REQUEST),
        None => http::Uri::from_static("/"),
    };
    parts.version = http::Version::HTTP_11;
    let h = &mut parts.headers;
    strip_hop_by_hop(h);
    // An upgrade (WebSocket): the upgrade headers travel to the target, and once it answers
    // 101 the two connections are spliced together.
    if let Some(u) = upgrade {
        h.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
        h.insert(http::header::UPGRADE, u);
    }
    add_forwarded_headers(h, inbound, now);
    Ok((Request::from_parts(parts, body), client_upgrade))
}

/// A 101 answer: the client's and the target's upgraded connections are copied into each other
/// once both are ready.
fn splice(mut response: Response<ProxyBody>, client: OnUpgrade) -> Response<ProxyBody> {
    let target_side = hyper::upgrade::on(&mut response);
    tokio::spawn(async move {
        if let (Ok(a), Ok(b)) = (client.await, target_side.await) {
            let mut a = hyper_util::rt::TokioIo::new(a);
            let mut b = hyper_util::rt::TokioIo::new(b);
            let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
        }
    });
    response
}

/// The target's answer as the client gets it.
fn pass_back(mut response: Response<ProxyBody>) -> Response<ProxyBody> {
    strip_hop_by_hop(response.headers_mut());
    response
}

impl Lb {
    /// Serves one request arriving at a listener (or at the main port by Host).
    pub async fn handle(
        &self,
        routes: Arc<ListenerRoutes>,
        req: Request<ProxyBody>,
        inbound: &Inbound,
    ) -> Response<ProxyBody> {
        routes
            .counters
            .here()
            .requests
            .fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        // authenticate-* actions are not emulated: the terminal action (last) decides.
        let Some(action) = matched_actions(&routes, &req, inbound.peer).last() else {
            routes.counters.elb_answer(503);
            return elb_error(StatusCode::SERVICE_UNAVAILABLE);
        };
        let response = match action.kind.as_str() {
            "forward" => return self.forward(&routes, action, req, inbound, now).await,
            "redirect" => match &action.redirect_config {
                Some(cfg) => {
                    let host = request_host(&req);
                    redirect(cfg, inbound, &host, req.uri().path(), req.uri().query())
                }
                None => elb_error(StatusCode::INTERNAL_SERVER_ERROR),
            },
            "fixed-response" => match &action.fixed_response_config {
                Some(cfg) => fixed(cfg),
                None => elb_error(StatusCode::INTERNAL_SERVER_ERROR),
            },
            _ => elb_error(StatusCode::INTERNAL_SERVER_ERROR),
        };
        routes.counters.elb_answer(response.status().as_u16());
        response
    }

    async fn forward(
        &self,
        routes: &ListenerRoutes,
        action: &Action,
        req: Request<ProxyBody>,
        inbound: &Inbound,
        now: f64,
    ) -> Response<ProxyBody> {
        let Some(fc) = &action.forward_config else {
            return elb_error(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let mut set_cookies: Vec<String> = Vec::new();
        let Some(group) = choose_group(routes, fc, req.headers(), now, &mut set_cookies) else {
            routes.counters.elb_answer(503);
            return elb_error(StatusCode::SERVICE_UNAVAILABLE);
        };
        let Some(target) = choose_target(group, req.headers(), now, &mut set_cookies) else {
            group.counters.all.elb_answer(503);
            routes.counters.elb_answer(503);
            return elb_error(StatusCode::SERVICE_UNAVAILABLE);
        };
        group
            .counters
            .all
            .here()
            .requests
            .fetch_add(1, Ordering::Relaxed);
        target
            .counters
            .here()
            .requests
            .fetch_add(1, Ordering::Relaxed);
        let (upstream, client_upgrade) = match upstream_request(req, target, inbound, now) {
            Ok(r) => r,
            Err(status) => return elb_error(status),
        };
        let mut response = match (
            self.exchange(routes, group, target, upstream).await,
            client_upgrade,
        ) {
            (Ok(r), Some(client)) if r.status() == StatusCode::SWITCHING_PROTOCOLS => {
                return splice(r, client)
            }
            (Ok(r), _) => pass_back(r),
            (Err(status), _) => elb_error(status),
        };
        for c in set_cookies {
            if let Ok(v) = HeaderValue::try_from(c) {
                response.headers_mut().append(http::header::SET_COOKIE, v);
            }
        }
        response
    }

    /// Sends the request to the target (as faults allow) within the load balancer's idle
    /// timeout and counts the outcome; an error is the status ALB answers with itself.
    async fn exchange(
        &self,
        routes: &ListenerRoutes,
        group: &GroupRoute,
        target: &RouteTarget,
        upstream: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, StatusCode> {
        let guard = Outstanding::new(&target.counters, &group.counters);
        let started = Instant::now();
        let idle = Duration::from_secs_f64(routes.idle_timeout.max(1.0));
        let effect = self.effect(target.addr);
        let sent = async {
            match effect {
                // Nothing answers the connection: ALB gives up after its connect timeout.
                Some(Effect::Blackhole) => {
                    tokio::time::sleep(super::CONNECT_TIMEOUT).await;
                    None
                }
                Some(Effect::Delay(d)) => {
                    tokio::time::sleep(d).await;
                    Some(self.upstreams.send(target.addr, upstream).await)
                }
                None => Some(self.upstreams.send(target.addr, upstream).await),
            }
        };
        let result = tokio::time::timeout(idle, sent).await;
        drop(guard);
        let status = match result {
            Ok(Some(Ok(r))) => {
                let micros = started.elapsed().as_micros() as u64;
                let status = r.status().as_u16();
                target.counters.target_answer(status, micros);
                group.counters.all.target_answer(status, micros);
                routes.counters.target_answer(status, micros);
                return Ok(r);
            }
            Ok(Some(Err(e))) => {
                target
                    .counters
                    .here()
                    .connection_errors
                    .fetch_add(1, Ordering::Relaxed);
                group
                    .counters
                    .all
                    .here()
                    .connection_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(target = %target.addr, error = ?e, "target failed");
                match e {
                    UpstreamError::ConnectTimeout => StatusCode::GATEWAY_TIMEOUT,
                    UpstreamError::Connect(_) | UpstreamError::Exchange(_) => {
                        StatusCode::BAD_GATEWAY
                    }
                }
            }
            Ok(None) | Err(_) => StatusCode::GATEWAY_TIMEOUT,
        };
        group.counters.all.elb_answer(status.as_u16());
        routes.counters.elb_answer(status.as_u16());
        Err(status)
    }
}

/// An HTTP date (cookie Expires) for an epoch second.
fn http_date(epoch: f64) -> String {
    chrono::DateTime::from_timestamp(epoch as i64, 0)
        .map(|d| d.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_substitute_components() {
        let cfg = RedirectConfig {
            protocol: Some("HTTPS".into()),
            port: Some("443".into()),
            host: Some("#{host}".into()),
            path: Some("/new/#{path}".into()),
            query: Some("#{query}&x=1".into()),
            status_code: "HTTP_301".into(),
        };
        let inbound = Inbound::new("127.0.0.1".parse().expect("ip"), "http", 80);
        let r = redirect(&cfg, &inbound, "example.com", "/a/b", Some("q=2"));
        assert_eq!(r.status(), 301);
        assert_eq!(
            r.headers()["location"],
            "https://example.com/new/a/b?q=2&x=1"
        );
        let cfg = RedirectConfig {
            status_code: "HTTP_302".into(),
            port: Some("8080".into()),
            ..Default::default()
        };
        let r = redirect(&cfg, &inbound, "h", "/p", None);
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], "http://h:8080/p");
    }

    #[test]
    fn error_pages_look_like_alb() {
        let r = elb_error(StatusCode::BAD_GATEWAY);
        assert_eq!(r.headers()["server"], "awselb/2.0");
        assert_eq!(r.status(), 502);
        assert!(trace_id(None, 1.0).starts_with("Root=1-00000001-"));
        assert!(trace_id(Some("Root=1-a-b"), 1.0).starts_with("Root=1-a-b;Self=1-"));
        let id = trace_id(None, 1_767_225_600.7);
        let (_, random) = id.rsplit_once('-').expect("three parts");
        assert!(id.starts_with("Root=1-6955b900-"), "{id}");
        assert_eq!(random.len(), 24, "{id}");
        assert!(random
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn hex_digits_are_those_of_the_formatter() {
        for (value, digits) in [
            (0u128, 8),
            (0x6955b900, 8),
            (u128::MAX >> 32, 24),
            (0xabc, 24),
        ] {
            let mut s = String::new();
            push_hex(&mut s, value, digits);
            assert_eq!(s, format!("{value:0width$x}", width = digits as usize));
        }
    }

    #[test]
    fn hop_by_hop_headers_are_stripped_and_the_rest_kept() {
        let mut h = http::HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-type", "text/plain"),
            ("te", "trailers"),
            ("x-app", "1"),
        ] {
            h.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        h.append(http::header::CONNECTION, HeaderValue::from_static("close"));
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-app"]);
        let mut none = http::HeaderMap::new();
        strip_hop_by_hop(&mut none);
        assert!(none.is_empty());
    }
}
