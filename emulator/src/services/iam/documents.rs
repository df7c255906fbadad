//! Policy documents: accepted as JSON or URL-encoded JSON, checked for the basic grammar, and
//! returned URL-encoded as IAM does (SDKs decode them).

use crate::protocol::codes;
use crate::protocol::AwsError;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

/// RFC 3986 unreserved characters stay as they are.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn encode(doc: &str) -> String {
    utf8_percent_encode(doc, ENCODE).to_string()
}

fn malformed(message: impl Into<String>) -> AwsError {
    AwsError::new(codes::iam::MalformedPolicyDocumentException, message)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A role's trust policy: statements name a Principal.
    Trust,
    /// A permissions policy: no Principal.
    Identity,
}

/// Decodes (when URL-encoded) and checks a policy document; returns its JSON text.
pub fn parse(doc: &str, kind: Kind) -> Result<String, AwsError> {
    let text = if serde_json::from_str::<Value>(doc).is_err() && doc.contains('%') {
        percent_decode_str(doc)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| malformed("This policy contains invalid Json"))?
    } else {
        doc.to_string()
    };
    let v: Value =
        serde_json::from_str(&text).map_err(|_| malformed("This policy contains invalid Json"))?;
    let Some(obj) = v.as_object() else {
        return Err(malformed("This policy contains invalid Json"));
    };
    if let Some(ver) = obj.get("Version") {
        if ver != "2012-10-17" && ver != "2008-10-17" {
            return Err(malformed("The policy failed legacy parsing"));
        }
    }
    let statements: Vec<&Value> = match obj.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => return Err(malformed("Syntax errors in policy.")),
    };
    if statements.is_empty() {
        return Err(malformed("Syntax errors in policy."));
    }
    for s in statements {
        let Some(s) = s.as_object() else {
            return Err(malformed("Syntax errors in policy."));
        };
        match s.get("Effect").and_then(Value::as_str) {
            Some("Allow") | Some("Deny") => {}
            Some(_) => return Err(malformed("Invalid effect")),
            None => return Err(malformed("Missing required field Effect")),
        }
        if !s.contains_key("Action") && !s.contains_key("NotAction") {
            return Err(malformed("Missing required field Action"));
        }
        let has_principal = s.contains_key("Principal") || s.contains_key("NotPrincipal");
        match kind {
            Kind::Trust if !has_principal => {
                return Err(malformed("Missing required field Principal"))
            }
            Kind::Identity if has_principal => {
                return Err(malformed("Policy document should not specify a principal."))
            }
            Kind::Identity if !s.contains_key("Resource") && !s.contains_key("NotResource") => {
                return Err(malformed("Policy statement must contain resources."))
            }
            _ => {}
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_checks_and_encodes() {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert_eq!(parse(trust, Kind::Trust).expect("trust"), trust);
        let encoded = encode(trust);
        assert!(encoded.starts_with("%7B%22Version%22%3A%222012-10-17%22"));
        assert!(encoded.contains("ecs-tasks.amazonaws.com"));
        assert_eq!(parse(&encoded, Kind::Trust).expect("decoded"), trust);
        let code = |r: Result<String, AwsError>| r.err().map(|e| e.code.to_string());
        assert_eq!(
            code(parse("not json", Kind::Trust)).as_deref(),
            Some("MalformedPolicyDocumentException")
        );
        assert!(parse(trust, Kind::Identity).is_err());
        let no_principal = r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
        assert!(parse(no_principal, Kind::Identity).is_ok());
        assert!(parse(no_principal, Kind::Trust).is_err());
    }
}
