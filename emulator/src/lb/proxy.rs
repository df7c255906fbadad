//! One HTTP request through an Application Load Balancer listener: rule matching, the action,
//! target choice with stickiness, the forwarded request, and ALB's own error answers.

use super::matching::{rule_matches, RequestView};
use super::routes::{read_stick_cookie, stick_cookie, weighted, GroupRoute, ListenerRoutes};
use super::Lb;
use crate::faults::network::Effect;
use crate::services::elbv2::model::{Action, FixedResponseConfig, RedirectConfig};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// How the request arrived.
#[derive(Debug, Clone, Copy)]
pub struct Inbound {
    pub peer: IpAddr,
    /// "http" or "https".
    pub scheme: &'static str,
    /// The listener port (X-Forwarded-Port, #{port}).
    pub port: u16,
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

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

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

fn cookies(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn cookie<'a>(all: &'a [(String, String)], name: &str) -> Option<&'a str> {
    all.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn trace_id(existing: Option<&str>, now: f64) -> String {
    let fresh = format!("1-{:08x}-{}", now as u64, crate::services::random_hex(24));
    match existing {
        Some(e) if e.contains("Root=") => format!("{e};Self={fresh}"),
        _ => format!("Root={fresh}"),
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
struct Outstanding(
    Arc<crate::services::elbv2::metrics::Counters>,
    Arc<crate::services::elbv2::metrics::GroupCounters>,
);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
        self.1.all.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Lb {
    /// Serves one request arriving at a listener (or at the main port by Host).
    pub async fn handle(
        &self,
        routes: Arc<ListenerRoutes>,
        req: Request<ProxyBody>,
        inbound: Inbound,
    ) -> Response<ProxyBody> {
        let lb_counters = routes.counters.clone();
        lb_counters.requests.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let host_header = req
            .headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .unwrap_or_default();
        let host = match host_header.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
            _ => host_header.clone(),
        };
        let path = req.uri().path().to_string();
        let query_raw = req.uri().query().map(str::to_string);
        let query: Vec<(String, String)> =
            form_urlencoded::parse(query_raw.as_deref().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let actions: &[Action] = {
            let view = RequestView {
                method: req.method().as_str(),
                host: &host,
                path: &path,
                query: &query,
                headers: req.headers(),
                source: inbound.peer,
            };
            routes
                .rules
                .iter()
                .find(|r| rule_matches(&r.conditions, &view))
                .map(|r| r.actions.as_slice())
                .unwrap_or(&routes.default_actions)
        };
        // authenticate-* actions are not emulated: the terminal action (last) decides.
        let Some(action) = actions.last().cloned() else {
            lb_counters.elb_answer(503);
            return elb_error(StatusCode::SERVICE_UNAVAILABLE);
        };
        let response = match action.kind.as_str() {
            "redirect" => match &action.redirect_config {
                Some(cfg) => redirect(cfg, &inbound, &host, &path, query_raw.as_deref()),
                None => elb_error(StatusCode::INTERNAL_SERVER_ERROR),
            },
            "fixed-response" => match &action.fixed_response_config {
                Some(cfg) => fixed(cfg),
                None => elb_error(StatusCode::INTERNAL_SERVER_ERROR),
            },
            "forward" => return self.forward(&routes, &action, req, inbound, now).await,
            _ => elb_error(StatusCode::INTERNAL_SERVER_ERROR),
        };
        lb_counters.elb_answer(response.status().as_u16());
        response
    }

    async fn forward(
        &self,
        routes: &ListenerRoutes,
        action: &Action,
        req: Request<ProxyBody>,
        inbound: Inbound,
        now: f64,
    ) -> Response<ProxyBody> {
        let jar = cookies(req.headers());
        let mut set_cookies: Vec<String> = Vec::new();
        let Some(fc) = &action.forward_config else {
            return elb_error(StatusCode::INTERNAL_SERVER_ERROR);
        };
        // The target group: by the group-stickiness cookie, else by weight.
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
        let group_sticky = fc
            .target_group_stickiness_config
            .as_ref()
            .filter(|s| s.enabled == Some(true) && candidates.len() > 1)
            .map(|s| s.duration_seconds.unwrap_or(3600));
        let stuck_group = group_sticky
            .and_then(|_| cookie(&jar, "AWSALBTG"))
            .and_then(|c| read_stick_cookie(c, "tg", now))
            .and_then(|id| {
                candidates
                    .iter()
                    .find(|(g, w)| g.id == id && *w > 0.0)
                    .map(|(g, _)| (*g).clone())
            });
        let group = match stuck_group {
            Some(g) => g,
            None => {
                let groups: Vec<&Arc<GroupRoute>> = candidates.iter().map(|(g, _)| *g).collect();
                let weights: Vec<f64> = candidates.iter().map(|(_, w)| *w).collect();
                let chosen = if groups.len() == 1 {
                    groups.first().copied()
                } else {
                    weighted(&groups, &weights).copied()
                };
                let Some(g) = chosen else {
                    routes.counters.elb_answer(503);
                    return elb_error(StatusCode::SERVICE_UNAVAILABLE);
                };
                if let Some(d) = group_sticky {
                    let v = stick_cookie("tg", &g.id, now + d as f64);
                    set_cookies.push(format!(
                        "AWSALBTG={v}; Expires={}; Path=/",
                        http_date(now + d as f64)
                    ));
                    set_cookies.push(format!(
                        "AWSALBTGCORS={v}; Expires={}; Path=/; SameSite=None",
                        http_date(now + d as f64)
                    ));
                }
                g.clone()
            }
        };
        let sticky_to = group
            .sticky
            .and_then(|_| cookie(&jar, "AWSALB"))
            .and_then(|c| read_stick_cookie(c, &group.id, now));
        let Some(target) = group.pick(sticky_to.as_deref(), now).cloned() else {
            group.counters.all.elb_answer(503);
            routes.counters.elb_answer(503);
            return elb_error(StatusCode::SERVICE_UNAVAILABLE);
        };
        if let Some(d) = group.sticky {
            // ALB sets the cookie again on every response.
            let v = stick_cookie(&group.id, &target.key, now + d as f64);
            set_cookies.push(format!(
                "AWSALB={v}; Expires={}; Path=/",
                http_date(now + d as f64)
            ));
            set_cookies.push(format!(
                "AWSALBCORS={v}; Expires={}; Path=/; SameSite=None; Secure",
                http_date(now + d as f64)
            ));
        }
        group.counters.all.requests.fetch_add(1, Ordering::Relaxed);
        target.counters.requests.fetch_add(1, Ordering::Relaxed);
        // An upgrade (WebSocket): the upgrade headers travel to the target, and once it answers
        // 101 the two connections are spliced together.
        let mut req = req;
        let upgrade = req
            .headers()
            .get(http::header::UPGRADE)
            .cloned()
            .filter(|_| is_upgrade_request(req.headers()));
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        // The forwarded request.
        let (mut parts, body) = req.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let uri = format!("http://{}{}", target.addr, path_and_query);
        parts.uri = match uri.parse() {
            Ok(u) => u,
            Err(_) => return elb_error(StatusCode::BAD_REQUEST),
        };
        parts.version = http::Version::HTTP_11;
        let h = &mut parts.headers;
        for name in HOP_BY_HOP {
            h.remove(name);
        }
        if let Some(u) = &upgrade {
            h.insert(
                http::header::CONNECTION,
                HeaderValue::from_static("upgrade"),
            );
            h.insert(http::header::UPGRADE, u.clone());
        }
        let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prev) => format!("{prev}, {}", inbound.peer),
            None => inbound.peer.to_string(),
        };
        let trace = trace_id(h.get("x-amzn-trace-id").and_then(|v| v.to_str().ok()), now);
        for (k, v) in [
            ("x-forwarded-for", xff),
            ("x-forwarded-proto", inbound.scheme.to_string()),
            ("x-forwarded-port", inbound.port.to_string()),
            ("x-amzn-trace-id", trace),
        ] {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(HeaderName::from_static(k), v);
            }
        }
        let upstream = Request::from_parts(parts, body);
        target.counters.outstanding.fetch_add(1, Ordering::Relaxed);
        group
            .counters
            .all
            .outstanding
            .fetch_add(1, Ordering::Relaxed);
        let guard = Outstanding(target.counters.clone(), group.counters.clone());
        let started = Instant::now();
        let idle = Duration::from_secs_f64(routes.idle_timeout.max(1.0));
        let effect = self.effect(target.addr);
        let exchange = async {
            match effect {
                // Nothing answers the connection: ALB gives up after its connect timeout.
                Some(Effect::Blackhole) => {
                    tokio::time::sleep(super::CONNECT_TIMEOUT).await;
                    None
                }
                Some(Effect::Delay(d)) => {
                    tokio::time::sleep(d).await;
                    Some(self.client.request(upstream).await)
                }
                None => Some(self.client.request(upstream).await),
            }
        };
        let result = match tokio::time::timeout(idle, exchange).await {
            Ok(Some(r)) => Ok(r),
            _ => Err(()),
        };
        drop(guard);
        let mut response = match result {
            Ok(Ok(r)) => {
                let micros = started.elapsed().as_micros() as u64;
                let status = r.status().as_u16();
                target.counters.target_answer(status, micros);
                group.counters.all.target_answer(status, micros);
                routes.counters.target_answer(status, micros);
                let mut r = r;
                if let (Some(client), StatusCode::SWITCHING_PROTOCOLS) =
                    (client_upgrade, r.status())
                {
                    let target_side = hyper::upgrade::on(&mut r);
                    tokio::spawn(async move {
                        if let (Ok(a), Ok(b)) = (client.await, target_side.await) {
                            let mut a = hyper_util::rt::TokioIo::new(a);
                            let mut b = hyper_util::rt::TokioIo::new(b);
                            let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                        }
                    });
                    let (parts, body) = r.into_parts();
                    return Response::from_parts(
                        parts,
                        body.map_err(|e| Box::new(e) as BoxError).boxed_unsync(),
                    );
                }
                let (mut parts, body) = r.into_parts();
                for name in HOP_BY_HOP {
                    parts.headers.remove(name);
                }
                Response::from_parts(
                    parts,
                    body.map_err(|e| Box::new(e) as BoxError).boxed_unsync(),
                )
            }
            Ok(Err(e)) => {
                let timed_out = format!("{e:?}").contains("timed out");
                target
                    .counters
                    .connection_errors
                    .fetch_add(1, Ordering::Relaxed);
                group
                    .counters
                    .all
                    .connection_errors
                    .fetch_add(1, Ordering::Relaxed);
                let status = if e.is_connect() && timed_out {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                };
                tracing::debug!(target = %target.addr, error = ?e, "target failed");
                group.counters.all.elb_answer(status.as_u16());
                routes.counters.elb_answer(status.as_u16());
                elb_error(status)
            }
            Err(_) => {
                group.counters.all.elb_answer(504);
                routes.counters.elb_answer(504);
                elb_error(StatusCode::GATEWAY_TIMEOUT)
            }
        };
        for c in set_cookies {
            if let Ok(v) = HeaderValue::from_str(&c) {
                response.headers_mut().append(http::header::SET_COOKIE, v);
            }
        }
        response
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
        let inbound = Inbound {
            peer: "127.0.0.1".parse().expect("ip"),
            scheme: "http",
            port: 80,
        };
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
    }
}
