//! AWS Signature Version 4: the credential scope names the region and the service of every
//! signed request; with `--strict-auth` the signature itself is verified.

use super::error::AwsError;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
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
        return build(
            credential,
            signed.unwrap_or(""),
            signature.unwrap_or(""),
            amz_date,
            false,
        )
        .map(Some);
    }
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("X-Amz-Algorithm").is_some() || get("X-Amz-Credential").is_some() {
        let credential =
            get("X-Amz-Credential").ok_or_else(|| incomplete("X-Amz-Credential is missing"))?;
        return build(
            credential,
            get("X-Amz-SignedHeaders").unwrap_or(""),
            get("X-Amz-Signature").unwrap_or(""),
            get("X-Amz-Date").unwrap_or("").to_string(),
            true,
        )
        .map(Some);
    }
    Ok(None)
}

fn incomplete(msg: &str) -> AwsError {
    AwsError::new("IncompleteSignature", msg).with_status(403)
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
        signed_headers: signed
            .split(';')
            .filter(|s| !s.is_empty())
            .map(str::to_ascii_lowercase)
            .collect(),
        signature: signature.to_string(),
        amz_date,
        presigned,
    })
}

/// Characters SigV4 leaves unescaped: A-Z a-z 0-9 - _ . ~
const SIGV4: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, SIGV4).to_string()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// What a signature covers, as it arrived.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as received (still percent-encoded).
    pub path: &'a str,
    /// The raw query string.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// Host from the URI authority, for HTTP/2 where there is no Host header.
    pub authority: Option<&'a str>,
    /// The body as sent (before any Content-Encoding is undone).
    pub body: &'a [u8],
}

/// Computes the signature the client should have sent with `secret`.
pub fn expected_signature(sig: &Signature, secret: &str, req: &SignedRequest<'_>) -> String {
    // Canonical URI: non-S3 services encode the already-encoded path once more.
    let canonical_uri = if req.path.is_empty() {
        "/".to_string()
    } else {
        req.path.split('/').map(enc).collect::<Vec<_>>().join("/")
    };
    let mut pairs: Vec<(String, String)> = req
        .query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dk = percent_decode_str(&k.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            let dv = percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            (enc(&dk), enc(&dv))
        })
        .filter(|(k, _)| !(sig.presigned && k == "X-Amz-Signature"))
        .collect();
    pairs.sort();
    let canonical_query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut canonical_headers = String::new();
    for name in &sig.signed_headers {
        let values: Vec<String> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let value = if values.is_empty() && name == "host" {
            req.authority.unwrap_or_default().to_string()
        } else {
            values.join(",")
        };
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let payload_hash = req
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| hex::encode(Sha256::digest(req.body)));
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri,
        canonical_query,
        canonical_headers,
        sig.signed_headers.join(";"),
        payload_hash
    );
    let scope = format!("{}/{}/{}/aws4_request", sig.date, sig.region, sig.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{}\n{}",
        sig.amz_date,
        scope,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), sig.date.as_bytes());
    let k_region = hmac(&k_date, sig.region.as_bytes());
    let k_service = hmac(&k_region, sig.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
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

    /// The "get-vanilla" example of the AWS SigV4 test suite.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().expect("h"));
        headers.insert("x-amz-date", "20150830T123600Z".parse().expect("h"));
        headers.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
                .parse()
                .expect("h"),
        );
        let sig = parse(&headers, &[]).expect("parse").expect("signed");
        assert_eq!(sig.region, "us-east-1");
        assert_eq!(sig.service, "service");
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query: None,
            headers: &headers,
            authority: None,
            body: b"",
        };
        let expected = expected_signature(&sig, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &req);
        assert_eq!(expected, sig.signature);
        assert!(signatures_match(&expected, &sig.signature));
        assert!(!signatures_match(&expected, "00"));
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
}
