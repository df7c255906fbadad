//! GetParametersByPath, DescribeParameters, GetParameterHistory.

use super::params::{displayed_value, parameter_json, parse_reference, validation};
use super::public::{is_public, public_parameters};
use super::state::{Parameter, State};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use base64::Engine;
use serde_json::{json, Value};

/// One page after NextToken (items in a stable order identified by `id`).
fn page<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> String,
    input: &Value,
    default_max: i64,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let after = match input.str("NextToken") {
        Some(t) => Some(
            b64.decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    AwsError::new(
                        codes::ssm::InvalidNextToken,
                        "The specified token is not valid.",
                    )
                })?,
        ),
        None => None,
    };
    let max = input.i64("MaxResults").unwrap_or(default_max).max(1) as usize;
    let mut out = Vec::new();
    let mut more = false;
    for i in items {
        if after.as_ref().is_some_and(|a| id(&i) <= *a) {
            continue;
        }
        if out.len() == max {
            more = true;
            break;
        }
        out.push(i);
    }
    let token = if more {
        out.last().map(|l| b64.encode(id(l)))
    } else {
        None
    };
    Ok((out, token))
}

struct StringFilter {
    key: String,
    option: String,
    values: Vec<String>,
}

fn string_filters(input: &Value) -> Vec<StringFilter> {
    input
        .get("ParameterFilters")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|f| StringFilter {
                    key: f.str("Key").unwrap_or_default().to_string(),
                    option: f.str("Option").unwrap_or("Equals").to_string(),
                    values: f.string_list("Values"),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn one_level(path: &str, name: &str) -> bool {
    let base = if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    };
    name.strip_prefix(&base)
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

fn under(path: &str, name: &str) -> bool {
    if path == "/" {
        return name.starts_with('/');
    }
    let base = if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    };
    name.starts_with(&base)
}

fn matches(p: &Parameter, f: &StringFilter, allow_path: bool) -> Result<bool, AwsError> {
    let Some(v) = p.current() else {
        return Ok(false);
    };
    let any = |field: &str| f.values.iter().any(|x| x == field);
    Ok(match f.key.as_str() {
        "Name" => {
            let name = p.name.as_str();
            let plain = name.trim_start_matches('/');
            match f.option.as_str() {
                "Equals" => f.values.iter().any(|x| x == name || x.trim_start_matches('/') == plain),
                "BeginsWith" => f.values.iter().any(|x| name.starts_with(x.as_str()) || plain.starts_with(x.trim_start_matches('/'))),
                "Contains" => f.values.iter().any(|x| name.contains(x.as_str())),
                o => {
                    return Err(AwsError::new(codes::ssm::InvalidFilterOption,
                        format!("The filter option '{o}' is not valid. Valid options are Equals, BeginsWith, Contains."),
                    ))
                }
            }
        }
        "Type" => any(&v.kind),
        "KeyId" => v.key_id.as_deref().is_some_and(any),
        "Tier" => any(&v.tier),
        "DataType" => any(&v.data_type),
        "Label" => f.values.iter().any(|l| v.labels.contains(l)),
        "Path" if allow_path => {
            let recursive = match f.option.as_str() {
                "Recursive" => true,
                "OneLevel" => false,
                o => {
                    return Err(AwsError::new(codes::ssm::InvalidFilterOption,
                        format!("The filter option '{o}' is not valid. Valid options are Recursive, OneLevel."),
                    ))
                }
            };
            f.values.iter().any(|path| {
                if recursive {
                    under(path, &p.name)
                } else {
                    one_level(path, &p.name)
                }
            })
        }
        k if k.starts_with("tag:") => {
            let key = &k[4..];
            p.tags
                .iter()
                .any(|(tk, tv)| tk == key && (f.values.is_empty() || f.values.contains(tv)))
        }
        k => {
            return Err(AwsError::new(
                codes::ssm::InvalidFilterKey,
                format!("The following filter key is not valid: {k}"),
            ))
        }
    })
}

pub fn get_parameters_by_path(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let path = input.str("Path").unwrap_or_default().to_string();
    if !path.starts_with('/') {
        return Err(validation(
            "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\".",
        ));
    }
    let recursive = input.bool("Recursive") == Some(true);
    let decrypt = input.bool("WithDecryption") == Some(true);
    let filters = string_filters(&input);
    let mut all = state.all(&ctx.account, &ctx.region);
    if is_public(&path) {
        all = public_parameters(&ctx.region);
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let mut found = Vec::new();
    for p in all {
        let inside = if recursive {
            under(&path, &p.name)
        } else {
            one_level(&path, &p.name)
        };
        if !inside {
            continue;
        }
        let mut ok = true;
        for f in &filters {
            if f.key == "Path" || f.key == "Name" {
                return Err(AwsError::new(
                    codes::ssm::InvalidFilterKey,
                    format!("The following filter key is not valid: {}", f.key),
                ));
            }
            ok &= matches(&p, f, false)?;
        }
        if ok {
            found.push(p);
        }
    }
    let (page, token) = page(found, |p| p.name.clone(), &input, 10)?;
    let mut out = json!({
        "Parameters": page.iter().filter_map(|p| p.current().map(|v| parameter_json(p, v, decrypt, None))).collect::<Vec<_>>()
    });
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

fn metadata_json(p: &Parameter) -> Value {
    let Some(v) = p.current() else {
        return json!({});
    };
    let mut out = json!({
        "Name": p.name,
        "ARN": p.arn(),
        "Type": v.kind,
        "LastModifiedDate": v.last_modified,
        "LastModifiedUser": v.last_modified_user,
        "Version": v.version,
        "Tier": v.tier,
        "Policies": [],
        "DataType": v.data_type,
    });
    if let Some(k) = &v.key_id {
        out["KeyId"] = json!(k);
    }
    if let Some(d) = &v.description {
        out["Description"] = json!(d);
    }
    if let Some(a) = &v.allowed_pattern {
        out["AllowedPattern"] = json!(a);
    }
    out
}

pub fn describe_parameters(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let mut filters = string_filters(&input);
    for f in input
        .get("Filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        filters.push(StringFilter {
            key: f.str("Key").unwrap_or_default().to_string(),
            option: if f.str("Key") == Some("Name") {
                "BeginsWith".into()
            } else {
                "Equals".into()
            },
            values: f.string_list("Values"),
        });
    }
    let mut all = state.all(&ctx.account, &ctx.region);
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let mut found = Vec::new();
    for p in all {
        let mut ok = true;
        for f in &filters {
            ok &= matches(&p, f, true)?;
        }
        if ok {
            found.push(p);
        }
    }
    let (page, token) = page(found, |p| p.name.clone(), &input, 50)?;
    let mut out = json!({"Parameters": page.iter().map(metadata_json).collect::<Vec<_>>()});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

pub fn get_parameter_history(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let r = parse_reference(
        &ctx.account,
        &ctx.region,
        input.str("Name").unwrap_or_default(),
    );
    let p = state.get(&r.account, &r.region, &r.name).ok_or_else(|| {
        AwsError::new(
            codes::ssm::ParameterNotFound,
            format!("Parameter {} not found.", r.name),
        )
    })?;
    let decrypt = input.bool("WithDecryption") == Some(true);
    let (page, token) = page(
        p.versions.clone(),
        |v| format!("{:020}", v.version),
        &input,
        50,
    )?;
    let mut out = json!({
        "Parameters": page.iter().map(|v| {
            let mut h = json!({
                "Name": p.name,
                "Type": v.kind,
                "LastModifiedDate": v.last_modified,
                "LastModifiedUser": v.last_modified_user,
                "Value": displayed_value(v, decrypt),
                "Version": v.version,
                "Labels": v.labels,
                "Tier": v.tier,
                "Policies": [],
                "DataType": v.data_type,
            });
            if let Some(k) = &v.key_id { h["KeyId"] = json!(k); }
            if let Some(d) = &v.description { h["Description"] = json!(d); }
            if let Some(a) = &v.allowed_pattern { h["AllowedPattern"] = json!(a); }
            h
        }).collect::<Vec<_>>()
    });
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
