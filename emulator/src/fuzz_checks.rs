//! The properties the fuzz targets in `fuzz/` check, one function per target taking the raw
//! input, so that the cargo-fuzz targets (outside the workspace) and the unit test that replays
//! the committed corpora (`fuzz/corpus/<target>/`) run exactly the same code. Each function
//! panics when a property does not hold; none may panic on any other input.
//!
//! Inputs are bytes laid out so that seeds can be written by hand from the docs' examples
//! (text lines, a JSON part and a request part separated by a NUL byte), which the fuzzer mutates.

use crate::lb::matching::{condition_matches, rule_matches, wildcard, RequestView};
use crate::protocol::sigv4;
use crate::services::cloudwatch::expr::Env;
use crate::services::ecr::manifest;
use crate::services::ecs::placement::{Candidate, Query, MAX_EXPRESSION_LENGTH};
use crate::services::elbv2::actions::{normalize_conditions, MAX_CONDITION_VALUE};
use crate::services::elbv2::model::{Condition, ValuesConfig};
use std::collections::{BTreeMap, HashSet};

/// One target's checks, on the raw input.
pub type Check = fn(&[u8]);

/// The targets, by their cargo-fuzz name, for the corpus replay.
pub const TARGETS: &[(&str, Check)] = &[
    ("fuzz_manifest", manifest_parser),
    ("fuzz_cluster_query", cluster_query),
    ("fuzz_alb_rules", alb_rules),
    ("fuzz_sigv4", sigv4_parser),
    ("fuzz_metric_math", metric_math),
];

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Registry manifests

/// `fuzz_manifest`: the first byte picks the declared Content-Type, the rest is the manifest.
/// Accepted manifests name a stored media type (the declared one when declared), reference only
/// well-formed sha256 digests, and parse to the same result once re-serialized (key order and
/// whitespace do not matter).
pub fn manifest_parser(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    const DECLARED: [Option<&str>; 8] = [
        None,
        Some(manifest::DOCKER_MANIFEST),
        Some(manifest::DOCKER_LIST),
        Some(manifest::OCI_MANIFEST),
        Some(manifest::OCI_INDEX),
        Some("application/json"),
        Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
        Some(""),
    ];
    let declared = DECLARED[usize::from(selector) % DECLARED.len()];
    let Ok(parsed) = manifest::parse(body, declared) else {
        return;
    };
    assert!(
        manifest::is_manifest_media_type(&parsed.media_type),
        "{parsed:?}"
    );
    if let Some(d) = declared
        .map(|d| d.split(';').next().unwrap_or("").trim())
        .filter(|d| manifest::is_manifest_media_type(d))
    {
        assert_eq!(parsed.media_type, d, "the declared media type wins");
    }
    if parsed.is_index() {
        assert!(parsed.blobs.is_empty(), "an index references no blobs");
    } else {
        assert!(!parsed.blobs.is_empty(), "an image manifest has its config");
        assert!(
            parsed.children.is_empty(),
            "an image references no manifests"
        );
    }
    for d in parsed
        .blobs
        .iter()
        .map(|(d, _)| d)
        .chain(&parsed.children)
        .chain(&parsed.subject)
    {
        assert!(crate::blobs::Digest::parse(d).is_ok(), "digest {d}");
    }
    let value: serde_json::Value = serde_json::from_slice(body).expect("parsed, so JSON");
    let again = serde_json::to_vec_pretty(&value).expect("serialize");
    assert_eq!(
        manifest::parse(&again, declared).as_ref(),
        Ok(&parsed),
        "re-serialized"
    );
}

// ---------------------------------------------------------------------------------------------
// The cluster query language (memberOf)

fn candidates() -> Vec<Candidate> {
    let attrs = |pairs: &[(&str, Option<&str>)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect::<BTreeMap<_, _>>()
    };
    vec![
        Candidate {
            arn: "arn:aws:ecs:us-east-1:000000000000:container-instance/c/1".into(),
            ec2_instance_id: "i-0123456789abcdef0".into(),
            status: "ACTIVE".into(),
            agent_connected: true,
            agent_version: "1.80.0".into(),
            registered_at: 1_767_225_600.0,
            attributes: attrs(&[
                ("ecs.availability-zone", Some("us-east-1a")),
                ("ecs.instance-type", Some("t3.micro")),
                ("ecs.os-type", Some("linux")),
                ("stack", Some("prod")),
                ("gpu", None),
                ("n", Some("12")),
            ]),
            running_tasks_count: 3,
            task_groups: vec![
                "service:web".into(),
                "service:web".into(),
                "family:db".into(),
            ],
            ..Candidate::default()
        },
        Candidate {
            ec2_instance_id: "i-1".into(),
            status: "ACTIVE".into(),
            agent_version: "1.14.5".into(),
            registered_at: 0.0,
            attributes: attrs(&[
                ("ecs.availability-zone", Some("us-east-1b")),
                ("ecs.instance-type", Some("m5.large")),
                ("stack", Some("")),
            ]),
            ..Candidate::default()
        },
        Candidate::default(),
    ]
}

/// `fuzz_cluster_query`: the input is an expression. A query that parses renders to a form that
/// parses again, renders identically and selects the same container instances.
pub fn cluster_query(data: &[u8]) {
    let expr = text(data);
    let Ok(query) = Query::parse(&expr) else {
        return;
    };
    let pool = candidates();
    let selected: Vec<bool> = pool.iter().map(|c| query.matches(c)).collect();
    let rendered = query.to_string();
    if rendered.chars().count() > MAX_EXPRESSION_LENGTH {
        return; // quoting made it longer than ECS accepts
    }
    let again = Query::parse(&rendered)
        .unwrap_or_else(|e| panic!("{expr:?} rendered as {rendered:?} does not parse: {e}"));
    assert_eq!(again.to_string(), rendered, "{expr:?}");
    let selected_again: Vec<bool> = pool.iter().map(|c| again.matches(c)).collect();
    assert_eq!(selected, selected_again, "{expr:?} / {rendered:?}");
}

// ---------------------------------------------------------------------------------------------
// ALB rule conditions

/// `fuzz_alb_rules`: `<Conditions as JSON>\0<method>\n<host>\n<path>\n<query>\n<name: value>…`.
/// Validation never panics and is stable (the stored form, without its legacy `Values` mirror,
/// validates to itself); matching never panics on arbitrary requests; a pattern matches itself,
/// and the request's own host and path match host-header / path-pattern conditions naming them.
pub fn alb_rules(data: &[u8]) {
    let (json, request) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let request = text(request);
    let mut lines = request.split('\n');
    let method = lines.next().unwrap_or("GET").to_string();
    let host = lines.next().unwrap_or("").to_string();
    let path = lines.next().unwrap_or("/").to_string();
    let query: Vec<(String, String)> = lines
        .next()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect();
    let mut headers = http::HeaderMap::new();
    for line in lines {
        if let Some((n, v)) = line.split_once(':') {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(n.trim().as_bytes()),
                http::HeaderValue::from_str(v.trim()),
            ) {
                headers.append(n, v);
            }
        }
    }
    let view = RequestView {
        method: &method,
        host: &host,
        path: &path,
        query: &query,
        headers: &headers,
        source: std::net::IpAddr::from([10, 0, 0, 7]),
    };
    for t in [&method, &host, &path] {
        assert!(wildcard(t, t, false) && wildcard(t, t, true), "{t:?}");
        assert!(wildcard("*", t, false));
    }
    for (field, value) in [("host-header", &host), ("path-pattern", &path)] {
        if !value.is_empty() && value.chars().count() <= MAX_CONDITION_VALUE {
            let own = Condition {
                field: Some(field.into()),
                values: Some(vec![value.clone()]),
                ..Condition::default()
            };
            let own = normalize_conditions(vec![own]).expect("one value, in the limit");
            assert!(condition_matches(&own[0], &view), "{field} {value:?}");
        }
    }
    let Ok(conditions) = serde_json::from_slice::<Vec<Condition>>(json) else {
        return;
    };
    let Ok(normalized) = normalize_conditions(conditions) else {
        return;
    };
    let _ = rule_matches(&normalized, &view);
    let stored: Vec<Condition> = normalized
        .iter()
        .cloned()
        .map(|mut c| {
            let has_config = [&c.host_header_config, &c.path_pattern_config]
                .iter()
                .any(|cfg| {
                    cfg.as_ref()
                        .is_some_and(|v: &ValuesConfig| !v.values.is_empty())
                });
            if has_config {
                c.values = None;
            }
            c
        })
        .collect();
    assert_eq!(
        normalize_conditions(stored)
            .as_ref()
            .map_err(|e| &e.message),
        Ok(&normalized),
        "validating the stored conditions again"
    );
}

// ---------------------------------------------------------------------------------------------
// SigV4

/// `fuzz_sigv4`: lines `<Authorization>\n<query>\n<X-Amz-Date>\n<method>\n<path?query>\n<host>\n`
/// then the body. A parsed header signature renders back to an Authorization header that parses
/// to the same signature; the expected signature is deterministic and never covers another body;
/// X-Amz-Date parse / format round-trips.
pub fn sigv4_parser(data: &[u8]) {
    let mut parts = data.splitn(7, |b| *b == b'\n');
    let mut line = || text(parts.next().unwrap_or_default());
    let (auth, query, date, method, target, host) =
        (line(), line(), line(), line(), line(), line());
    let body = parts.next().unwrap_or_default();
    let mut headers = http::HeaderMap::new();
    let mut header = |name: &'static str, value: &str| {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    if !auth.is_empty() {
        header("authorization", &auth);
    }
    header("x-amz-date", &date);
    header("host", &host);
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let Ok(Some(sig)) = sigv4::parse(&headers, &pairs) else {
        return;
    };
    if !sig.presigned {
        let rendered = format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={}",
            sig.access_key,
            sig.date,
            sig.region,
            sig.service,
            sig.signed_headers.join(";"),
            sig.signature
        );
        let mut again = headers.clone();
        again.insert(
            "authorization",
            http::HeaderValue::from_str(&rendered).expect("made of the header's own characters"),
        );
        let reparsed = sigv4::parse(&again, &pairs);
        assert_eq!(
            reparsed.as_ref().ok(),
            Some(&Some(sig.clone())),
            "{rendered:?}"
        );
    }
    if let Some(epoch) = sigv4::parse_amz_date(&sig.amz_date) {
        assert_eq!(
            sigv4::parse_amz_date(&sigv4::format_amz_date(epoch as f64)),
            Some(epoch),
            "{:?}",
            sig.amz_date
        );
    }
    let request = |body: &'_ [u8]| {
        sigv4::expected_signature(
            &sig,
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            &sigv4::SignedRequest {
                method: &method,
                path_and_query: &target,
                headers: &headers,
                authority: None,
                body,
            },
        )
    };
    if let Ok(expected) = request(body) {
        assert_eq!(request(body).ok(), Some(expected.clone()), "deterministic");
        let mut other = body.to_vec();
        other.push(b'x');
        if let Ok(for_other) = request(&other) {
            assert_ne!(for_other, expected, "a signature covers one body");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CloudWatch metric math

/// `fuzz_metric_math`: one expression per line (ids e0, e1, …, which may refer to each other and
/// to the metric queries m1 and m2). Evaluation never panics or recurses without bound, and every
/// datapoint of a result is a finite number.
pub fn metric_math(data: &[u8]) {
    let input = text(data);
    let series = |points: &[(i64, f64)]| points.iter().copied().collect::<BTreeMap<i64, f64>>();
    let mut expressions = BTreeMap::new();
    for (i, line) in input.split('\n').take(8).enumerate() {
        // GetMetricData's and PutMetricAlarm's limit on an expression.
        if !line.is_empty() && line.chars().count() <= 2048 {
            expressions.insert(format!("e{i}"), line.to_string());
        }
    }
    let ids: Vec<String> = expressions.keys().cloned().collect();
    let mut env = Env {
        series: BTreeMap::from([
            (
                "m1".to_string(),
                series(&[(0, 1.0), (60, 2.5), (120, -4.0)]),
            ),
            (
                "m2".to_string(),
                series(&[(60, 0.0), (120, 8.0), (180, 1e300)]),
            ),
        ]),
        metric_ids: vec!["m1".into(), "m2".into()],
        expressions,
        in_progress: HashSet::new(),
    };
    for id in ids {
        if let Ok(s) = env.resolve(&id) {
            assert!(s.values().all(|v| v.is_finite()), "{id}: {s:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays every committed corpus file (`seed-*`: seeds and the inputs of crashes found) through
    /// its target's checks: the cheap CI counterpart of the fuzz runs (bench/fuzz.sh).
    #[test]
    fn committed_fuzz_corpora_replay_without_a_failed_property() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        for (target, check) in TARGETS {
            let dir = root.join(target);
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .flatten()
                .map(|e| e.path())
                // The committed files; what a local fuzz run adds is not replayed.
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("seed-"))
                })
                .collect();
            files.sort();
            assert!(!files.is_empty(), "{target} has a committed corpus");
            for file in files {
                let data = std::fs::read(&file).expect("read a corpus file");
                let outcome = std::panic::catch_unwind(|| check(&data));
                assert!(outcome.is_ok(), "{target}: {} fails", file.display());
            }
        }
    }
}
