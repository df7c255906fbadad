//! PutParameter, GetParameter(s), DeleteParameter(s); name, ARN and selector resolution.

use super::public::{is_public, public_arn, public_parameter};
use super::state::{key, Parameter, ParameterVersion, State, MAX_VERSIONS};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use base64::Engine;
use serde_json::{json, Value};

pub fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new(codes::ssm::ValidationException, message)
}

/// A parameter reference: where it lives, its name, and an optional ":version" or ":label".
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub account: String,
    pub region: String,
    pub name: String,
    pub selector: Option<String>,
}

/// Parses a name or ARN, with an optional selector, relative to the caller's account and region.
pub fn parse_reference(account: &str, region: &str, text: &str) -> Reference {
    let (mut account, mut region, mut rest) = (account.to_string(), region.to_string(), text);
    if let Some(arn) = text.strip_prefix("arn:") {
        let parts: Vec<&str> = arn.splitn(5, ':').collect();
        if parts.len() == 5 && parts[1] == "ssm" {
            region = parts[2].to_string();
            if !parts[3].is_empty() {
                account = parts[3].to_string();
            }
            let resource = parts[4].strip_prefix("parameter").unwrap_or(parts[4]);
            rest = resource;
        }
    }
    let (name, selector) = match rest.rsplit_once(':') {
        Some((n, s)) if !s.is_empty() && !s.contains('/') => (n, Some(s.to_string())),
        _ => (rest, None),
    };
    // "parameter/a/b" names "/a/b"; "parameter/flat" names "flat".
    let name = if text.starts_with("arn:") {
        let trimmed = name.strip_prefix('/').unwrap_or(name);
        if trimmed.contains('/') {
            format!("/{trimmed}")
        } else {
            trimmed.to_string()
        }
    } else {
        name.to_string()
    };
    Reference {
        account,
        region,
        name,
        selector,
    }
}

/// The parameter a reference names (user or public), if any.
pub fn lookup(state: &State, r: &Reference) -> Option<Parameter> {
    if is_public(&r.name) {
        return public_parameter(&r.region, &r.name);
    }
    state.get(&r.account, &r.region, &r.name)
}

/// The version a reference selects.
pub fn select<'a>(p: &'a Parameter, r: &Reference) -> Result<&'a ParameterVersion, AwsError> {
    match &r.selector {
        None => p
            .current()
            .ok_or_else(|| AwsError::new(codes::ssm::ParameterNotFound, "")),
        Some(sel) => {
            if let Ok(n) = sel.parse::<i64>() {
                p.versions.iter().find(|v| v.version == n).ok_or_else(|| {
                    AwsError::new(codes::ssm::ParameterVersionNotFound,
                        format!(
                            "Systems Manager could not find version {n} of {}. Verify the version and try again.",
                            p.name
                        ),
                    )
                })
            } else {
                p.versions
                    .iter()
                    .rev()
                    .find(|v| v.labels.contains(sel))
                    .ok_or_else(|| {
                        AwsError::new(codes::ssm::ParameterVersionLabelNotFound,
                            format!(
                                "Systems Manager could not find label {sel} of {}. Verify the label and try again.",
                                p.name
                            ),
                        )
                    })
            }
        }
    }
}

/// What a SecureString looks like without decryption: an opaque ciphertext blob.
pub fn ciphertext(key_id: &str, value: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "AQICAHg{}",
        b64.encode(format!("{key_id}\u{0}{value}").as_bytes())
    )
}

pub fn displayed_value(v: &ParameterVersion, decrypt: bool) -> String {
    if v.kind == "SecureString" && !decrypt {
        ciphertext(v.key_id.as_deref().unwrap_or("alias/aws/ssm"), &v.value)
    } else {
        v.value.clone()
    }
}

pub fn parameter_json(
    p: &Parameter,
    v: &ParameterVersion,
    decrypt: bool,
    selector: Option<&str>,
) -> Value {
    let arn = if p.account.is_empty() {
        public_arn(&p.region, &p.name)
    } else {
        p.arn()
    };
    let mut out = json!({
        "Name": p.name,
        "Type": v.kind,
        "Value": displayed_value(v, decrypt),
        "Version": v.version,
        "LastModifiedDate": v.last_modified,
        "ARN": arn,
        "DataType": v.data_type,
    });
    if let Some(s) = selector {
        out["Selector"] = json!(format!(":{s}"));
    }
    out
}

fn check_name(name: &str) -> Result<(), AwsError> {
    let lower = name.trim_start_matches('/').to_ascii_lowercase();
    if lower.starts_with("aws") || lower.starts_with("ssm") {
        return Err(validation(
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_",
        ));
    }
    if name.contains('/') && !name.starts_with('/') {
        return Err(validation("Parameter name must be a fully qualified name."));
    }
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    if !ok_chars || name.contains("//") || name.ends_with('/') && name.len() > 1 {
        return Err(validation(
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_",
        ));
    }
    if name.matches('/').count() > 15 {
        return Err(AwsError::new(
            codes::ssm::HierarchyLevelLimitExceededException,
            "Parameter name has too many levels. A parameter name can have a maximum of 15 levels.",
        ));
    }
    Ok(())
}

pub fn put_parameter(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("Name").unwrap_or_default().to_string();
    let value = input.str("Value").unwrap_or_default().to_string();
    let overwrite = input.bool("Overwrite") == Some(true);
    if name.starts_with("arn:") {
        return Err(validation("Parameter name must not be an ARN."));
    }
    check_name(&name)?;
    if overwrite && input.get("Tags").is_some_and(|t| !t.is_null()) {
        return Err(validation(
            "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
        ));
    }
    let tier = match input.str("Tier").unwrap_or("Standard") {
        "Intelligent-Tiering" if value.len() > 4096 => "Advanced",
        "Intelligent-Tiering" => "Standard",
        t => t,
    }
    .to_string();
    if tier == "Standard" && value.chars().count() > 4096 {
        return Err(validation(
            "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html",
        ));
    }
    let data_type = input.str("DataType").unwrap_or("text").to_string();
    if !["text", "aws:ec2:image", "aws:ssm:integration"].contains(&data_type.as_str()) {
        return Err(validation(format!(
            "The following data type is not supported: {data_type} (Data type names are all lowercase.)"
        )));
    }
    if data_type == "aws:ec2:image" && !value.starts_with("ami-") {
        return Err(validation(format!(
            "Parameter value, {value}, is not a valid AMI ID"
        )));
    }
    if let Some(pattern) = input.str("AllowedPattern") {
        let re = regex::Regex::new(pattern).map_err(|_| {
            AwsError::new(
                codes::ssm::InvalidAllowedPatternException,
                "The request does not meet the regular expression requirement.",
            )
        })?;
        if !re.is_match(&value) {
            return Err(AwsError::new(
                codes::ssm::ParameterPatternMismatchException,
                format!("Parameter value, cannot be validated against allowedPattern: {pattern}"),
            ));
        }
    }
    let mut tags = Vec::new();
    for t in input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        tags.push((
            t.str("Key").unwrap_or_default().to_string(),
            t.str("Value").unwrap_or_default().to_string(),
        ));
    }
    let k = key(&ctx.account, &ctx.region, &name);
    let (account, region) = (ctx.account.clone(), ctx.region.clone());
    let user = format!("arn:aws:iam::{}:root", ctx.account);
    let (version, tier) = state.params.transact(|t| {
        let existing = t.get(&k).cloned();
        if existing.is_some() && !overwrite {
            return Err(AwsError::new(codes::ssm::ParameterAlreadyExists,
                "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
            ));
        }
        let prev = existing.as_ref().and_then(|p| p.current().cloned());
        let kind = match (input.str("Type"), &prev) {
            (Some(k), _) => k.to_string(),
            (None, Some(p)) => p.kind.clone(),
            (None, None) => {
                return Err(validation("A parameter type is required when you create a parameter."))
            }
        };
        if prev.as_ref().is_some_and(|p| p.tier == "Advanced") && tier == "Standard" {
            return Err(validation(
                "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.",
            ));
        }
        let key_id = if kind == "SecureString" {
            Some(input.str("KeyId").unwrap_or("alias/aws/ssm").to_string())
        } else {
            None
        };
        let version = prev.as_ref().map(|p| p.version + 1).unwrap_or(1);
        let v = ParameterVersion {
            version,
            value: value.clone(),
            kind,
            description: input
                .str("Description")
                .map(str::to_string)
                .or_else(|| prev.as_ref().and_then(|p| p.description.clone())),
            key_id,
            allowed_pattern: input
                .str("AllowedPattern")
                .map(str::to_string)
                .or_else(|| prev.as_ref().and_then(|p| p.allowed_pattern.clone())),
            tier: tier.clone(),
            data_type: data_type.clone(),
            last_modified: ctx.now,
            last_modified_user: user.clone(),
            labels: vec![],
        };
        let mut p = existing.unwrap_or(Parameter {
            name: name.clone(),
            account: account.clone(),
            region: region.clone(),
            versions: vec![],
            tags: tags.clone(),
        });
        if p.versions.len() >= MAX_VERSIONS {
            if p.versions.first().is_some_and(|v| !v.labels.is_empty()) {
                return Err(AwsError::new(codes::ssm::ParameterMaxVersionLimitExceeded,
                    format!("You attempted to create a new version of {name} by calling the PutParameter API with the overwrite flag. Version {}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.", p.versions[0].version),
                ));
            }
            p.versions.remove(0);
        }
        p.versions.push(v);
        t.put(&k, p);
        Ok((version, tier.clone()))
    })?;
    Ok(json!({"Version": version, "Tier": tier}))
}

pub fn get_parameter(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let text = input.str("Name").unwrap_or_default();
    let r = parse_reference(&ctx.account, &ctx.region, text);
    let p = lookup(state, &r).ok_or_else(|| AwsError::new(codes::ssm::ParameterNotFound, ""))?;
    let v = select(&p, &r)?;
    let decrypt = input.bool("WithDecryption") == Some(true);
    Ok(json!({"Parameter": parameter_json(&p, v, decrypt, r.selector.as_deref())}))
}

pub fn get_parameters(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let decrypt = input.bool("WithDecryption") == Some(true);
    let mut found = Vec::new();
    let mut invalid = Vec::new();
    for text in input.string_list("Names") {
        let r = parse_reference(&ctx.account, &ctx.region, &text);
        match lookup(state, &r) {
            Some(p) => match select(&p, &r) {
                Ok(v) => found.push(parameter_json(&p, v, decrypt, r.selector.as_deref())),
                Err(_) => invalid.push(text),
            },
            None => invalid.push(text),
        }
    }
    Ok(json!({"Parameters": found, "InvalidParameters": invalid}))
}

pub fn delete_parameter(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let text = input.str("Name").unwrap_or_default();
    let r = parse_reference(&ctx.account, &ctx.region, text);
    let k = key(&ctx.account, &ctx.region, &r.name);
    state.params.transact(|t| {
        t.remove(&k).map(|_| ()).ok_or_else(|| {
            AwsError::new(
                codes::ssm::ParameterNotFound,
                format!("Parameter {} not found.", r.name),
            )
        })
    })?;
    Ok(json!({}))
}

pub fn delete_parameters(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let names = input.string_list("Names");
    let (account, region) = (&ctx.account, &ctx.region);
    let (deleted, invalid) = state.params.transact::<_, AwsError, _>(|t| {
        let (mut deleted, mut invalid) = (Vec::new(), Vec::new());
        for n in &names {
            let r = parse_reference(account, region, n);
            if t.remove(&key(account, region, &r.name)).is_some() {
                deleted.push(n.clone());
            } else {
                invalid.push(n.clone());
            }
        }
        Ok((deleted, invalid))
    })?;
    Ok(json!({"DeletedParameters": deleted, "InvalidParameters": invalid}))
}
