//! ALB rule conditions, matched as ALB matches them: conditions ANDed, the values of one
//! condition ORed, wildcards `*` and `?`; host and header values and query strings compared
//! case-insensitively, paths and methods case-sensitively; source-ip is the peer address, not
//! X-Forwarded-For.

use crate::services::elbv2::model::{cidr_contains, parse_cidr, Condition};
use std::net::IpAddr;

/// What a rule is matched against.
pub struct RequestView<'a> {
    pub method: &'a str,
    /// Host header without the port.
    pub host: &'a str,
    pub path: &'a str,
    /// Decoded query pairs.
    pub query: &'a [(String, String)],
    pub headers: &'a http::HeaderMap,
    pub source: IpAddr,
}

/// `*` any run of characters (including none), `?` exactly one.
pub fn wildcard(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let eq = |a: char, b: char| {
        if case_insensitive {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn values<'c>(c: &'c Condition, field_config: Option<&'c Vec<String>>) -> &'c [String] {
    field_config
        .or(c.values.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Whether one condition holds.
pub fn condition_matches(c: &Condition, r: &RequestView<'_>) -> bool {
    match c.field.as_deref().unwrap_or_default() {
        "host-header" => values(c, c.host_header_config.as_ref().map(|v| &v.values))
            .iter()
            .any(|v| wildcard(v, r.host, true)),
        "path-pattern" => values(c, c.path_pattern_config.as_ref().map(|v| &v.values))
            .iter()
            .any(|v| wildcard(v, r.path, false)),
        "http-request-method" => {
            values(c, c.http_request_method_config.as_ref().map(|v| &v.values))
                .iter()
                .any(|v| v == r.method)
        }
        "source-ip" => values(c, c.source_ip_config.as_ref().map(|v| &v.values))
            .iter()
            .filter_map(|v| parse_cidr(v))
            .any(|block| cidr_contains(block, r.source)),
        "http-header" => {
            let Some(h) = &c.http_header_config else {
                return false;
            };
            r.headers
                .get_all(h.http_header_name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|actual| h.values.iter().any(|v| wildcard(v, actual, true)))
        }
        "query-string" => {
            let Some(q) = &c.query_string_config else {
                return false;
            };
            q.values.iter().any(|kv| {
                r.query.iter().any(|(k, v)| {
                    kv.key.as_deref().is_none_or(|want| wildcard(want, k, true))
                        && wildcard(&kv.value, v, true)
                })
            })
        }
        _ => false,
    }
}

/// Whether every condition of a rule holds.
pub fn rule_matches(conditions: &[Condition], r: &RequestView<'_>) -> bool {
    conditions.iter().all(|c| condition_matches(c, r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::elbv2::model::{
        HttpHeaderConfig, KeyValue, QueryStringConfig, ValuesConfig,
    };

    fn view<'a>(headers: &'a http::HeaderMap, query: &'a [(String, String)]) -> RequestView<'a> {
        RequestView {
            method: "GET",
            host: "API.Example.com",
            path: "/api/v1/Users",
            query,
            headers,
            source: "10.1.2.3".parse().expect("ip"),
        }
    }

    fn cond(field: &str, v: &[&str]) -> Condition {
        Condition {
            field: Some(field.into()),
            values: Some(v.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*.example.com", "api.example.com", true));
        assert!(wildcard("/api/*", "/api/", false));
        assert!(wildcard("/api/*", "/api/v1/x", false));
        assert!(!wildcard("/api/*", "/API/v1", false));
        assert!(wildcard("/a?c", "/abc", false));
        assert!(!wildcard("/a?c", "/ac", false));
        assert!(wildcard("*", "", false));
        assert!(wildcard("a*b*c", "aXXbYYc", false));
        assert!(!wildcard("a*b*c", "aXXbYY", false));
    }

    #[test]
    fn conditions_and_values_or() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-env", "Canary".parse().expect("header"));
        let query = vec![("Version".to_string(), "Two".to_string())];
        let r = view(&headers, &query);
        assert!(condition_matches(
            &cond("host-header", &["api.example.com"]),
            &r
        ));
        assert!(condition_matches(
            &cond("host-header", &["nope", "*.EXAMPLE.com"]),
            &r
        ));
        assert!(condition_matches(&cond("path-pattern", &["/api/*"]), &r));
        assert!(
            !condition_matches(&cond("path-pattern", &["/api/v1/users"]), &r),
            "paths are case-sensitive"
        );
        assert!(condition_matches(
            &cond("http-request-method", &["POST", "GET"]),
            &r
        ));
        assert!(!condition_matches(
            &cond("http-request-method", &["get"]),
            &r
        ));
        assert!(condition_matches(&cond("source-ip", &["10.0.0.0/8"]), &r));
        assert!(!condition_matches(
            &cond("source-ip", &["192.168.0.0/16"]),
            &r
        ));
        let header = Condition {
            field: Some("http-header".into()),
            http_header_config: Some(HttpHeaderConfig {
                http_header_name: "X-Env".into(),
                values: vec!["canary".into()],
            }),
            ..Default::default()
        };
        assert!(condition_matches(&header, &r));
        let q = |key: Option<&str>, value: &str| Condition {
            field: Some("query-string".into()),
            query_string_config: Some(QueryStringConfig {
                values: vec![KeyValue {
                    key: key.map(str::to_string),
                    value: value.into(),
                }],
            }),
            ..Default::default()
        };
        assert!(condition_matches(&q(Some("version"), "t*"), &r));
        assert!(condition_matches(&q(None, "two"), &r));
        assert!(!condition_matches(&q(Some("other"), "two"), &r));
        let host_cfg = Condition {
            field: Some("host-header".into()),
            host_header_config: Some(ValuesConfig {
                values: vec!["other.com".into()],
            }),
            ..Default::default()
        };
        assert!(
            !rule_matches(&[cond("path-pattern", &["/api/*"]), host_cfg], &r),
            "conditions are ANDed"
        );
        assert!(rule_matches(
            &[
                cond("path-pattern", &["/api/*"]),
                cond("host-header", &["api.*"])
            ],
            &r
        ));
    }
}
