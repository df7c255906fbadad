//! CreateRule, ModifyRule, DeleteRule, DescribeRules, SetRulePriorities. The default rule of a
//! listener is its DefaultActions; DescribeRules shows it last with Priority "default".

use super::model::{Action, Condition, Listener, Rule};
use super::{key, listener_not_found, rule_not_found, tags, validation, Elbv2, SERVICE};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{random_hex, Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const MAX_RULES: usize = 100;

pub fn register(r: &mut Registry, s: &Arc<Elbv2>) {
    r.sync(SERVICE, "CreateRule", s, create);
    r.sync(SERVICE, "ModifyRule", s, modify);
    r.sync(SERVICE, "DeleteRule", s, delete);
    r.sync(SERVICE, "DescribeRules", s, describe);
    r.sync(SERVICE, "SetRulePriorities", s, set_priorities);
}

impl Rule {
    pub fn to_json(&self) -> Value {
        json!({
            "RuleArn": self.arn,
            "Priority": self.priority.to_string(),
            "Conditions": self.conditions,
            "Actions": self.actions,
            "IsDefault": false,
        })
    }
}

fn default_rule_json(l: &Listener) -> Value {
    json!({
        "RuleArn": l.default_rule_arn,
        "Priority": "default",
        "Conditions": [],
        "Actions": l.default_actions,
        "IsDefault": true,
    })
}

fn priority_in_use(p: i64) -> AwsError {
    AwsError::new(
        codes::elbv2::PriorityInUseException,
        format!("Priority '{p}' is currently in use"),
    )
}

fn check_priority(p: i64) -> Result<(), AwsError> {
    if (1..=50_000).contains(&p) {
        Ok(())
    } else {
        Err(validation(format!(
            "Priority '{p}' is not valid: it must be between 1 and 50000"
        )))
    }
}

fn lb_of(s: &Elbv2, ctx: &Ctx, l: &Listener) -> Result<super::model::LoadBalancer, AwsError> {
    s.load_balancers
        .get(&key(ctx, &l.lb_arn))
        .ok_or_else(super::lb_not_found)
}

fn create(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let listener_arn = input.str("ListenerArn").unwrap_or_default().to_string();
    let listener = s
        .listeners
        .get(&key(ctx, &listener_arn))
        .ok_or_else(listener_not_found)?;
    let lb = lb_of(s, ctx, &listener)?;
    if !lb.is_application() {
        return Err(validation(
            "Rules are only supported on Application Load Balancer listeners",
        ));
    }
    let priority = input
        .i64("Priority")
        .ok_or_else(|| validation("A priority must be specified"))?;
    check_priority(priority)?;
    let conditions: Vec<Condition> = input.member("Conditions")?.unwrap_or_default();
    if conditions.is_empty() {
        return Err(validation("A rule must have at least one condition"));
    }
    let conditions = super::actions::normalize_conditions(conditions)?;
    let actions: Vec<Action> = input.member("Actions")?.unwrap_or_default();
    let actions = super::actions::normalize(s, ctx, &lb, &listener.protocol, actions)?;
    let new_tags = tags::parse(&input)?;
    let arn = ctx.arn(
        "elasticloadbalancing",
        &format!(
            "listener-rule/{}/{}/{}/{}/{}",
            lb.short_kind(),
            lb.name,
            lb.id,
            listener_arn.rsplit('/').next().unwrap_or_default(),
            random_hex(16)
        ),
    );
    let rule = Rule {
        arn: arn.clone(),
        listener_arn: listener_arn.clone(),
        priority,
        conditions,
        actions,
    };
    let scope = ctx.scope();
    s.rules.transact(|t| {
        let siblings: Vec<&Rule> = t
            .rows()
            .range(scope.clone()..)
            .take_while(|(k, _)| k.starts_with(&scope))
            .map(|(_, r)| r)
            .filter(|r| r.listener_arn == listener_arn)
            .collect();
        if siblings.iter().any(|r| r.priority == priority) {
            return Err(priority_in_use(priority));
        }
        if siblings.len() >= MAX_RULES {
            return Err(AwsError::new(
                codes::elbv2::TooManyRulesException,
                "The listener has the maximum number of rules",
            ));
        }
        t.put(&key(ctx, &arn), rule.clone());
        Ok(())
    })?;
    tags::set(s, ctx, &arn, &new_tags)?;
    s.bump();
    Ok(json!({"Rules": [rule.to_json()]}))
}

/// The listener whose default rule this is.
fn default_rule_listener(s: &Elbv2, ctx: &Ctx, arn: &str) -> Option<Listener> {
    s.listeners
        .scan(&ctx.scope())
        .into_iter()
        .map(|(_, l)| l)
        .find(|l| l.default_rule_arn == arn)
}

fn modify(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("RuleArn").unwrap_or_default().to_string();
    let conditions: Option<Vec<Condition>> = input.member("Conditions")?;
    let actions: Option<Vec<Action>> = input.member("Actions")?;
    if let Some(mut listener) = default_rule_listener(s, ctx, &arn) {
        if conditions.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(AwsError::new(
                codes::elbv2::OperationNotPermittedException,
                "The default rule cannot have conditions",
            ));
        }
        if let Some(a) = actions {
            let lb = lb_of(s, ctx, &listener)?;
            listener.default_actions =
                super::actions::normalize(s, ctx, &lb, &listener.protocol, a)?;
            s.listeners
                .put(&key(ctx, &listener.arn), listener.clone())?;
            s.bump();
        }
        return Ok(json!({"Rules": [default_rule_json(&listener)]}));
    }
    let mut rule = s.rules.get(&key(ctx, &arn)).ok_or_else(rule_not_found)?;
    let listener = s
        .listeners
        .get(&key(ctx, &rule.listener_arn))
        .ok_or_else(listener_not_found)?;
    if let Some(c) = conditions {
        if c.is_empty() {
            return Err(validation("A rule must have at least one condition"));
        }
        rule.conditions = super::actions::normalize_conditions(c)?;
    }
    if let Some(a) = actions {
        let lb = lb_of(s, ctx, &listener)?;
        rule.actions = super::actions::normalize(s, ctx, &lb, &listener.protocol, a)?;
    }
    s.rules.transact(|t| {
        if !t.contains(&key(ctx, &arn)) {
            return Err(rule_not_found());
        }
        t.put(&key(ctx, &arn), rule.clone());
        Ok(())
    })?;
    s.bump();
    Ok(json!({"Rules": [rule.to_json()]}))
}

fn delete(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("RuleArn").unwrap_or_default().to_string();
    if default_rule_listener(s, ctx, &arn).is_some() {
        return Err(AwsError::new(
            codes::elbv2::OperationNotPermittedException,
            "The default rule cannot be deleted",
        ));
    }
    if s.rules.remove(&key(ctx, &arn))?.is_none() {
        return Err(rule_not_found());
    }
    tags::remove_all(s, ctx, &arn)?;
    s.bump();
    Ok(json!({}))
}

fn describe(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arns = input.string_list("RuleArns");
    let listener_arn = input.str("ListenerArn");
    let mut out: Vec<(String, Value)> = Vec::new();
    match (listener_arn, arns.is_empty()) {
        (Some(l), true) => {
            let listener = s
                .listeners
                .get(&key(ctx, l))
                .ok_or_else(listener_not_found)?;
            for r in s.listener_rules(&listener) {
                out.push((format!("{:05}", r.priority), r.to_json()));
            }
            out.push(("99999".into(), default_rule_json(&listener)));
        }
        (None, false) => {
            for a in &arns {
                if let Some(r) = s.rules.get(&key(ctx, a)) {
                    out.push((format!("{:05}\0{a}", r.priority), r.to_json()));
                } else if let Some(l) = default_rule_listener(s, ctx, a) {
                    out.push((format!("99999\0{a}"), default_rule_json(&l)));
                } else {
                    return Err(rule_not_found());
                }
            }
        }
        (Some(_), false) => {
            return Err(validation(
                "Rule ARNs and a listener ARN cannot be specified at the same time",
            ))
        }
        (None, true) => {
            return Err(validation(
                "You must specify either listener ARN or rule ARNs",
            ))
        }
    }
    let size = input.i64("PageSize").unwrap_or(400).clamp(1, 400) as usize;
    let (items, next) = page(
        out,
        |(k, _)| k.clone(),
        input.str("Marker"),
        size,
        codes::common::ValidationError,
    )?;
    let mut v = json!({"Rules": items.into_iter().map(|(_, r)| r).collect::<Vec<_>>()});
    if let Some(n) = next {
        v["NextMarker"] = json!(n);
    }
    Ok(v)
}

fn set_priorities(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let Some(Value::Array(items)) = input.get("RulePriorities") else {
        return Err(validation("RulePriorities must be specified"));
    };
    let mut wanted: BTreeMap<String, i64> = BTreeMap::new();
    for i in items {
        let arn = i.str("RuleArn").unwrap_or_default().to_string();
        let p = i
            .i64("Priority")
            .ok_or_else(|| validation("A priority must be specified"))?;
        check_priority(p)?;
        if default_rule_listener(s, ctx, &arn).is_some() {
            return Err(AwsError::new(
                codes::elbv2::OperationNotPermittedException,
                "The priority of the default rule cannot be changed",
            ));
        }
        if wanted.insert(arn, p).is_some() {
            return Err(validation("A rule is named more than once"));
        }
    }
    let scope = ctx.scope();
    let changed = s.rules.transact(|t| {
        let mut changed = Vec::new();
        for (arn, p) in &wanted {
            let r = t.get_mut(&key(ctx, arn)).ok_or_else(rule_not_found)?;
            r.priority = *p;
            changed.push(r.clone());
        }
        // Priorities stay unique within each listener.
        let mut seen: BTreeMap<(String, i64), ()> = BTreeMap::new();
        for (_, r) in t
            .rows()
            .range(scope.clone()..)
            .take_while(|(k, _)| k.starts_with(&scope))
        {
            if seen
                .insert((r.listener_arn.clone(), r.priority), ())
                .is_some()
            {
                return Err(priority_in_use(r.priority));
            }
        }
        Ok(changed)
    })?;
    s.bump();
    Ok(json!({"Rules": changed.iter().map(Rule::to_json).collect::<Vec<_>>()}))
}
