//! What every EC2 Describe shares: filters (with * and ? wildcards), id lists, pagination,
//! DryRun, tags and the EC2 error style.

use crate::protocol::codes;
use crate::protocol::codes::Code;
use crate::protocol::AwsError;
use crate::services::input::Input;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub type Tags = BTreeMap<String, String>;

pub fn err(code: Code, message: impl Into<String>) -> AwsError {
    AwsError::new(code, message)
}

pub fn invalid_value(message: impl Into<String>) -> AwsError {
    err(codes::common::InvalidParameterValue, message)
}

/// Answers DryRunOperation (HTTP 412) when the request asks for a dry run.
pub fn dry_run(input: &Value) -> Result<(), AwsError> {
    if input.bool("DryRun") == Some(true) {
        return Err(err(
            codes::ec2::DryRunOperation,
            "Request would have succeeded, but DryRun flag is set.",
        )
        .with_status(412));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

pub fn parse_filters(input: &Value) -> Vec<Filter> {
    input
        .get("Filters")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|f| Filter {
                    name: f.str("Name").unwrap_or_default().to_string(),
                    values: f.string_list("Values"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A resource that Describe filters apply to.
pub trait Filterable {
    /// The values of a named filter for this resource; None: the filter name is unknown.
    fn filter_values(&self, name: &str) -> Option<Vec<String>>;
    fn tag_map(&self) -> Option<&Tags> {
        None
    }
}

/// Shell-style match: `*` any run, `?` one character, `\` escapes.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&p[2..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

pub fn bool_str(b: bool) -> String {
    if b { "true" } else { "false" }.to_string()
}

/// Whether `item` passes every filter (filters AND, values OR).
pub fn matches<T: Filterable>(item: &T, filters: &[Filter]) -> Result<bool, AwsError> {
    for f in filters {
        let have: Vec<String> = if let Some(key) = f.name.strip_prefix("tag:") {
            item.tag_map()
                .and_then(|t| t.get(key))
                .map(|v| vec![v.clone()])
                .unwrap_or_default()
        } else if f.name == "tag-key" && item.tag_map().is_some() {
            item.tag_map()
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default()
        } else if f.name == "tag-value" && item.tag_map().is_some() {
            item.tag_map()
                .map(|t| t.values().cloned().collect())
                .unwrap_or_default()
        } else {
            match item.filter_values(&f.name) {
                Some(v) => v,
                None => return Err(invalid_value(format!("The filter '{}' is invalid", f.name))),
            }
        };
        let ok = f
            .values
            .iter()
            .any(|pat| have.iter().any(|h| wildcard_match(pat, h)));
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Applies filters to a list.
pub fn filter_all<T: Filterable>(items: Vec<T>, filters: &[Filter]) -> Result<Vec<T>, AwsError> {
    let mut out = Vec::with_capacity(items.len());
    for i in items {
        if matches(&i, filters)? {
            out.push(i);
        }
    }
    Ok(out)
}

/// Rejects MaxResults together with an id list, as EC2 does.
pub fn check_ids_with_max(
    input: &Value,
    ids_member: &str,
    wire_name: &str,
) -> Result<(), AwsError> {
    if input.i64("MaxResults").is_some() && !input.string_list(ids_member).is_empty() {
        return Err(err(
            codes::common::InvalidParameterCombination,
            format!("The parameter {wire_name} cannot be used with the parameter maxResults"),
        ));
    }
    Ok(())
}

/// One page of `items` (already in a stable order, identified by `id`), from NextToken, at most
/// MaxResults (all when absent). Returns the page and the next token.
pub fn paginate<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> String,
    input: &Value,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let start_after = match input.str("NextToken") {
        Some(tok) if !tok.is_empty() => Some(decode_token(tok)?),
        _ => None,
    };
    let max = input
        .i64("MaxResults")
        .map(|m| m.max(1) as usize)
        .unwrap_or(usize::MAX);
    let mut page = Vec::new();
    let mut more = false;
    for item in items {
        if let Some(after) = &start_after {
            if id(&item).as_str() <= after.as_str() {
                continue;
            }
        }
        if page.len() == max {
            more = true;
            break;
        }
        page.push(item);
    }
    let token = if more {
        page.last().map(|last| encode_token(&id(last)))
    } else {
        None
    };
    Ok((page, token))
}

pub fn encode_token(last: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("v1:{last}"))
}

pub fn decode_token(token: &str) -> Result<String, AwsError> {
    base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("v1:").map(str::to_string))
        .ok_or_else(|| {
            err(
                codes::ec2::InvalidPaginationToken,
                format!("Invalid pagination token: {token}"),
            )
        })
}

/// The model's TagList.
pub fn tags_json(tags: &Tags) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

/// Tags of `TagSpecifications` that apply to `resource_type`.
pub fn tags_from_specs(input: &Value, resource_type: &str) -> Result<Tags, AwsError> {
    let mut tags = Tags::new();
    let Some(specs) = input.get("TagSpecifications").and_then(Value::as_array) else {
        return Ok(tags);
    };
    for spec in specs {
        let rt = spec.str("ResourceType").unwrap_or_default();
        if rt != resource_type {
            return Err(invalid_value(format!(
                "'{rt}' is not a valid taggable resource type for this operation."
            )));
        }
        for t in spec
            .get("Tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = t.str("Key").unwrap_or_default().to_string();
            validate_tag_key(&key)?;
            tags.insert(key, t.str("Value").unwrap_or_default().to_string());
        }
    }
    Ok(tags)
}

pub fn validate_tag_key(key: &str) -> Result<(), AwsError> {
    if key.is_empty() {
        return Err(err(
            codes::common::InvalidParameterValue,
            "Tag key cannot be empty",
        ));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(invalid_value(
            "Value ( aws: ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use",
        ));
    }
    if key.chars().count() > 128 {
        return Err(invalid_value(format!(
            "Tag key exceeds the maximum length of 128 characters: {key}"
        )));
    }
    Ok(())
}

/// "The vpc ID 'vpc-1' does not exist" / "The vpc IDs 'vpc-1, vpc-2' do not exist".
/// A Describe call's common part: keep the items `ids` names (all when empty; an unknown id is
/// `code`), apply the request's filters, page, and render the page under `key`.
pub fn describe<T: Filterable>(
    items: Vec<T>,
    input: &Value,
    ids_member: &str,
    (code, what): (Code, &str),
    key: &str,
    id: impl Fn(&T) -> String,
    render: impl Fn(&T) -> Value,
) -> Result<Value, AwsError> {
    let ids: Vec<String> = input
        .get(ids_member)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut items = items;
    if !ids.is_empty() {
        let missing: Vec<String> = ids
            .iter()
            .filter(|i| !items.iter().any(|t| &id(t) == *i))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(not_found_ids(code, what, &missing));
        }
        items.retain(|t| ids.contains(&id(t)));
    }
    let items = filter_all(items, &parse_filters(input))?;
    let (page, token) = paginate(items, &id, input)?;
    let mut out = serde_json::Map::new();
    out.insert(
        key.to_string(),
        Value::Array(page.iter().map(render).collect()),
    );
    if let Some(t) = token {
        out.insert("NextToken".to_string(), Value::String(t));
    }
    Ok(Value::Object(out))
}

pub fn not_found_ids(code: Code, what: &str, missing: &[String]) -> AwsError {
    if missing.len() == 1 {
        err(
            code,
            format!("The {what} ID '{}' does not exist", missing[0]),
        )
    } else {
        err(
            code,
            format!("The {what} IDs '{}' do not exist", missing.join(", ")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("vpc-*", "vpc-123"));
        assert!(wildcard_match("us-east-1?", "us-east-1a"));
        assert!(!wildcard_match("us-east-1?", "us-east-1"));
        assert!(wildcard_match("a\\*", "a*"));
        assert!(!wildcard_match("a\\*", "ab"));
        assert!(wildcard_match("*", ""));
    }

    #[test]
    fn pages_follow_tokens() {
        let items: Vec<String> = (0..5).map(|i| format!("id-{i}")).collect();
        let (p1, t1) =
            paginate(items.clone(), |s| s.clone(), &json!({"MaxResults": 2})).expect("p1");
        assert_eq!(p1, vec!["id-0", "id-1"]);
        let t1 = t1.expect("token");
        let (p2, _) = paginate(
            items.clone(),
            |s| s.clone(),
            &json!({"MaxResults": 2, "NextToken": t1}),
        )
        .expect("p2");
        assert_eq!(p2, vec!["id-2", "id-3"]);
        let (p3, t3) = paginate(
            items,
            |s| s.clone(),
            &json!({"MaxResults": 3, "NextToken": encode_token("id-3")}),
        )
        .expect("p3");
        assert_eq!(p3, vec!["id-4"]);
        assert!(t3.is_none());
        let bad = paginate(vec![1], |i| i.to_string(), &json!({"NextToken": "zz"}));
        assert_eq!(
            bad.err().map(|e| e.code.as_str()),
            Some("InvalidPaginationToken")
        );
    }
}
