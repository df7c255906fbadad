//! Pagination with opaque tokens, as every List/Describe call pages.

use crate::protocol::codes::Code;
use crate::protocol::AwsError;
use base64::Engine;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One page of `items` (already in the service's order), resuming after the item whose key the
/// token names. Returns the page and the next token, if more remain.
pub fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    token: Option<&str>,
    max: usize,
    invalid_token_code: Code,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let start = match token.filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => {
            let after = decode_token(t).ok_or_else(|| {
                AwsError::new(invalid_token_code, "The specified nextToken is invalid")
            })?;
            items
                .iter()
                .position(|i| key(i) > after)
                .unwrap_or(items.len())
        }
    };
    let max = max.max(1);
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    if rest.len() > max {
        rest.truncate(max);
        let next = rest.last().map(|i| encode_token(&key(i)));
        Ok((rest, next))
    } else {
        Ok((rest, None))
    }
}

/// The opaque token naming the key a page ended at.
pub fn encode_token(after: &str) -> String {
    B64.encode(after)
}

/// The key a token names; None for a token this emulator did not write.
pub fn decode_token(token: &str) -> Option<String> {
    B64.decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// Adds `nextToken` to a List output when more pages remain.
pub fn with_next(mut out: serde_json::Value, next: Option<String>) -> serde_json::Value {
    if let Some(n) = next {
        out["nextToken"] = serde_json::Value::String(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_resume_after_the_last_key() {
        let items: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let (p1, t1) = page(
            items.clone(),
            |s| s.clone(),
            None,
            2,
            crate::protocol::codes::ecs::InvalidParameterException,
        )
        .expect("p1");
        assert_eq!(p1, vec!["k0", "k1"]);
        let (p2, t2) = page(
            items.clone(),
            |s| s.clone(),
            t1.as_deref(),
            2,
            crate::protocol::codes::common::ValidationException,
        )
        .expect("p2");
        assert_eq!(p2, vec!["k2", "k3"]);
        let (p3, t3) = page(
            items.clone(),
            |s| s.clone(),
            t2.as_deref(),
            2,
            crate::protocol::codes::common::ValidationException,
        )
        .expect("p3");
        assert_eq!((p3, t3), (vec!["k4".to_string()], None));
        assert_eq!(
            page(
                items,
                |s| s.clone(),
                Some("!!"),
                2,
                crate::protocol::codes::ecs::InvalidParameterException
            )
            .unwrap_err()
            .code,
            "InvalidParameterException"
        );
    }
}
