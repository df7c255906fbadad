//! AWS Signature Version 4: the credential scope names the region and the service of every
//! signed request; with `--strict-auth` the signature itself is verified.

use super::error::AwsError;
use crate::protocol::codes;
use http::HeaderMap;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// X-Amz-Date (header or query).
    pub amz_date: String,
    /// Signed in the query string (a presigned URL) rather than the Authorization header.
    pub presigned: bool,
    /// X-Amz-Expires of a presigned URL, as sent.
    pub expires: Option<String>,
    /// X-Amz-Security-Token (header or query): temporary credentials.
    pub security_token: Option<String>,
}

/// Reads the signature from the Authorization header or a presigned query string.
/// `Ok(None)`: the request is not signed.
pub fn parse(
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<Option<Signature>, AwsError> {
    if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
        let auth = auth
            .to_str()
            .map_err(|_| incomplete("Authorization header is not ASCII"))?;
        let rest = auth
            .strip_prefix("AWS4-HMAC-SHA256")
            .ok_or_else(|| incomplete("Only AWS4-HMAC-SHA256 signatures are supported"))?;
        let mut credential = None;
        let mut signed = None;
        let mut signature = None;
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        let credential = credential
            .ok_or_else(|| incomplete("Authorization header requires a 'Credential' parameter"))?;
        let amz_date = headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut sig = build(
            credential,
            signed.unwrap_or(""),
            signature.unwrap_or(""),
            amz_date,
            false,
        )?;
        sig.security_token = headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        return Ok(Some(sig));
    }
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("X-Amz-Algorithm").is_some() || get("X-Amz-Credential").is_some() {
        let credential =
            get("X-Amz-Credential").ok_or_else(|| incomplete("X-Amz-Credential is missing"))?;
        let mut sig = build(
            credential,
            get("X-Amz-SignedHeaders").unwrap_or(""),
            get("X-Amz-Signature").unwrap_or(""),
            get("X-Amz-Date").unwrap_or("").to_string(),
            true,
        )?;
        sig.expires = get("X-Amz-Expires").map(str::to_string);
        sig.security_token = get("X-Amz-Security-Token").map(str::to_string);
        return Ok(Some(sig));
    }
    Ok(None)
}

fn incomplete(msg: &str) -> AwsError {
    AwsError::new(codes::common::IncompleteSignature, msg).with_status(403)
}

fn build(
    credential: &str,
    signed: &str,
    signature: &str,
    amz_date: String,
    presigned: bool,
) -> Result<Signature, AwsError> {
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" {
        return Err(incomplete(&format!(
            "Credential should be scoped to a valid region and service: '{credential}'"
        )));
    }
    Ok(Signature {
        access_key: parts[0].to_string(),
        date: parts[1].to_string(),
        region: parts[2].to_string(),
        service: parts[3].to_string(),
        // Trimmed one by one, as the whole field is: "a ;b" and "a;b" name the same headers.
        signed_headers: signed
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_ascii_lowercase)
            .collect(),
        signature: signature.to_string(),
        amz_date,
        presigned,
        expires: None,
        security_token: None,
    })
}

/// What a signature covers, as it arrived.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path and query as received (still percent-encoded).
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
    /// Host from the URI authority, for HTTP/2 where there is no Host header.
    pub authority: Option<&'a str>,
    /// The body as sent (before any Content-Encoding is undone).
    pub body: &'a [u8],
}

/// The query parameters a presigned URL's signature adds; the signer adds them back itself.
const PRESIGN_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// The longest a presigned URL may be valid (a week, as SigV4 allows).
pub const MAX_EXPIRES_S: u64 = 604_800;

/// X-Amz-Date (`20150830T123600Z`) as epoch seconds.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// `20150830T123600Z` for epoch seconds.
pub fn format_amz_date(epoch: f64) -> String {
    chrono::DateTime::from_timestamp(epoch.floor() as i64, 0)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default()
}

/// Computes the signature the client should have sent with `secret`, with the SDKs' own signer
/// (aws-sigv4) rather than a canonicalizer of our own: the received request is handed to it with
/// exactly the headers the client signed, the time of X-Amz-Date, and the SHA-256 of the body as
/// received (never a hash the client claims).
pub fn expected_signature(
    sig: &Signature,
    secret: &str,
    req: &SignedRequest<'_>,
) -> Result<String, AwsError> {
    use aws_sigv4::http_request::{
        sign, SessionTokenMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    };
    let epoch = parse_amz_date(&sig.amz_date)
        .filter(|e| *e >= 0)
        .ok_or_else(|| {
            incomplete("X-Amz-Date must be in the ISO 8601 basic format yyyyMMddTHHmmssZ")
        })?;
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch as u64);
    let token_signed = sig.security_token.is_some()
        && (sig.presigned
            || sig
                .signed_headers
                .iter()
                .any(|h| h == "x-amz-security-token"));
    let identity: aws_smithy_runtime_api::client::identity::Identity =
        aws_credential_types::Credentials::new(
            sig.access_key.clone(),
            secret.to_string(),
            sig.security_token.clone().filter(|_| token_signed),
            None,
            "ecs-emulator",
        )
        .into();
    let mut settings = SigningSettings::default();
    // Exactly the headers the client signed are handed over, so none is excluded.
    settings.excluded_headers = None;
    settings.session_token_mode = if token_signed {
        SessionTokenMode::Include
    } else {
        SessionTokenMode::Exclude
    };
    if sig.presigned {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(std::time::Duration::from_secs(expires_s(sig)?));
    }
    let params: aws_sigv4::http_request::SigningParams =
        aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&sig.region)
            .name(&sig.service)
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| incomplete(&e.to_string()))?
            .into();
    let mut headers: Vec<(&str, &str)> = Vec::new();
    for name in &sig.signed_headers {
        // The signer writes these itself, from the time and the token above.
        if name == "x-amz-security-token" || (name == "x-amz-date" && !sig.presigned) {
            continue;
        }
        let before = headers.len();
        for v in req.headers.get_all(name.as_str()) {
            if let Ok(v) = v.to_str() {
                headers.push((name.as_str(), v));
            }
        }
        if headers.len() == before && name == "host" {
            if let Some(a) = req.authority {
                headers.push(("host", a));
            }
        }
    }
    if !headers.iter().any(|(n, _)| *n == "host") {
        // The signer needs a host; SigV4 always signs it.
        return Err(incomplete(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    // The signer (aws-smithy-http's QueryWriter) panics on a target that parses as an
    // authority ("host.example.com", found by fuzz_sigv4); AWS signs origin-form targets only.
    if !req.path_and_query.starts_with('/') {
        return Err(incomplete("The request target must be an absolute path"));
    }
    let uri = if sig.presigned {
        strip_presign_params(req.path_and_query)
    } else {
        req.path_and_query.to_string()
    };
    let signable = SignableRequest::new(
        req.method,
        uri,
        headers.into_iter(),
        SignableBody::Bytes(req.body),
    )
    .map_err(|e| incomplete(&e.to_string()))?;
    let output = sign(signable, &params).map_err(|e| incomplete(&e.to_string()))?;
    Ok(output.signature().to_string())
}

/// X-Amz-Expires of a presigned URL, in seconds (1 to a week).
pub fn expires_s(sig: &Signature) -> Result<u64, AwsError> {
    let bad = || {
        AwsError::new(
            codes::common::AuthorizationQueryParametersError,
            format!("X-Amz-Expires must be a number of seconds from 1 to {MAX_EXPIRES_S}"),
        )
        .with_status(400)
    };
    let n: u64 = sig
        .expires
        .as_deref()
        .ok_or_else(bad)?
        .parse()
        .map_err(|_| bad())?;
    if n == 0 || n > MAX_EXPIRES_S {
        return Err(bad());
    }
    Ok(n)
}

/// The path and query without the parameters of the presigned signature itself.
fn strip_presign_params(path_and_query: &str) -> String {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split_once('=').map_or(*p, |(k, _)| k);
            let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
            !PRESIGN_PARAMS.contains(&key.as_ref())
        })
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// The hex SHA-256 of a body.
pub fn payload_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Constant-time comparison of two signatures.
pub fn signatures_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published SigV4 test suite (testdata/sigv4-test-suite.json names its source).
    #[test]
    fn aws_sigv4_test_suite() {
        let suite: serde_json::Value =
            serde_json::from_str(include_str!("testdata/sigv4-test-suite.json")).expect("json");
        let secret = suite["secretAccessKey"].as_str().expect("secret");
        let tests = suite["tests"].as_array().expect("tests");
        assert!(tests.len() >= 20);
        for t in tests {
            let name = t["name"].as_str().expect("name");
            let mut headers = HeaderMap::new();
            for h in t["headers"].as_array().expect("headers") {
                headers.append(
                    http::HeaderName::from_bytes(h[0].as_str().expect("k").as_bytes())
                        .expect("name"),
                    h[1].as_str().expect("v").parse().expect("value"),
                );
            }
            let authorization = t["authorization"].as_str().expect("authz");
            headers.insert(
                http::header::AUTHORIZATION,
                authorization.parse().expect("h"),
            );
            let sig = parse(&headers, &[]).expect("parse").expect("signed");
            let body = t["body"].as_str().expect("body").as_bytes();
            let req = SignedRequest {
                method: t["method"].as_str().expect("method"),
                path_and_query: t["uri"].as_str().expect("uri"),
                headers: &headers,
                authority: None,
                body,
            };
            let expected = expected_signature(&sig, secret, &req).expect(name);
            assert_eq!(expected, sig.signature, "{name}");
            assert!(signatures_match(&expected, &sig.signature));
            // Any other body breaks the signature.
            let tampered = SignedRequest {
                body: b"Action=CreateRole",
                ..req
            };
            let other = expected_signature(&sig, secret, &tampered).expect(name);
            assert!(!signatures_match(&other, &sig.signature), "{name}");
        }
    }

    #[test]
    fn presigned_urls_verify_without_their_signature_parameters() {
        // Sign a presigned URL with aws-sigv4, then verify it as received.
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation};
        let identity: aws_smithy_runtime_api::client::identity::Identity =
            aws_credential_types::Credentials::new("AKID", "secret", None, None, "t").into();
        let mut settings = aws_sigv4::http_request::SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(std::time::Duration::from_secs(900));
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        let params: aws_sigv4::http_request::SigningParams =
            aws_sigv4::sign::v4::SigningParams::builder()
                .identity(&identity)
                .region("us-east-1")
                .name("sts")
                .time(time)
                .settings(settings)
                .build()
                .expect("params")
                .into();
        let uri = "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15";
        let req = SignableRequest::new(
            "GET",
            uri,
            [("host", "sts.amazonaws.com")].into_iter(),
            SignableBody::Bytes(b""),
        )
        .expect("signable");
        let (instructions, signature) = sign(req, &params).expect("sign").into_parts();
        let mut request = http::Request::builder().uri(uri).body(()).expect("request");
        instructions.apply_to_request_http1x(&mut request);
        let path_and_query = request
            .uri()
            .path_and_query()
            .expect("pq")
            .as_str()
            .to_string();
        let query: Vec<(String, String)> =
            form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let mut headers = HeaderMap::new();
        headers.insert("host", "sts.amazonaws.com".parse().expect("h"));
        let sig = parse(&headers, &query).expect("parse").expect("signed");
        assert!(sig.presigned);
        assert_eq!(sig.signature, signature);
        assert_eq!(expires_s(&sig).expect("expires"), 900);
        let received = SignedRequest {
            method: "GET",
            path_and_query: &path_and_query,
            headers: &headers,
            authority: None,
            body: b"",
        };
        assert_eq!(
            expected_signature(&sig, "secret", &received).expect("expected"),
            signature
        );
    }

    #[test]
    fn amz_dates_round_trip() {
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(format_amz_date(1_440_938_160.4), "20150830T123600Z");
        assert_eq!(parse_amz_date("2015-08-30"), None);
    }

    #[test]
    fn malformed_credentials_are_incomplete_signatures() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=AK/2015".parse().expect("h"),
        );
        assert_eq!(
            parse(&headers, &[]).unwrap_err().code,
            "IncompleteSignature"
        );
    }

    /// fuzz_sigv4 found that a presigned request whose target is not an absolute path
    /// ("bucket.s3.amazonaws.com", which the http crate reads as an authority) made the SDK's
    /// signer panic; such a target is refused before it reaches the signer.
    #[test]
    fn a_target_that_is_not_an_absolute_path_is_refused_not_a_panic() {
        let query: Vec<(String, String)> = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            (
                "X-Amz-Credential",
                "AKIDEXAMPLE/20130524/us-east-1/s3/aws4_request",
            ),
            ("X-Amz-Date", "20130524T000000Z"),
            ("X-Amz-Expires", "86400"),
            ("X-Amz-SignedHeaders", "host"),
            ("X-Amz-Signature", "00"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut headers = HeaderMap::new();
        headers.insert(
            "host",
            "examplebucket.s3.amazonaws.com".parse().expect("host"),
        );
        let sig = parse(&headers, &query).expect("parses").expect("signed");
        for target in [
            "examplebucket+.s3.amazonaws.com",
            "*",
            "",
            "//a/b?c=d",
            "/ok?x=1",
        ] {
            let got = std::panic::catch_unwind(|| {
                expected_signature(
                    &sig,
                    "secret",
                    &SignedRequest {
                        method: "GET",
                        path_and_query: target,
                        headers: &headers,
                        authority: None,
                        body: b"",
                    },
                )
            });
            let got = got.unwrap_or_else(|_| panic!("{target:?} panicked"));
            assert_eq!(got.is_ok(), target.starts_with('/'), "{target:?}: {got:?}");
        }
    }
}
