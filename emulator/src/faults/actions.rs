//! Making and healing faults: what each one does once, through the same code paths the AWS APIs
//! use. What lasts is applied by `Faults::refresh`.

use super::{Fault, Kind};
use crate::app::App;
use crate::services::ec2::Ec2;
use crate::services::ecs::{ContainerInstance, Ecs};
use crate::services::Ctx;
use http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

/// A fault that cannot be made (or healed): an HTTP status and a message saying what to do.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

fn bad(message: impl Into<String>) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, message)
}

fn not_found(message: impl Into<String>) -> Refusal {
    refuse(StatusCode::NOT_FOUND, message)
}

/// The kinds `POST /_emulator/faults/<kind>` accepts, with their members.
pub const KINDS: &[(&str, &str)] = &[
    ("instance-stop", "{\"instanceId\": \"i-…\"}"),
    ("instance-terminate", "{\"instanceId\": \"i-…\"}"),
    ("az-down", "{\"availabilityZone\": \"us-east-1a\"}"),
    (
        "spot-interruption",
        "{\"instanceId\": \"i-…\"} or {\"taskArn\": \"…\"}",
    ),
    (
        "task-kill",
        "{\"task\": \"<id or ARN>\", \"cluster\": \"default\", \"container\": \"<name>\"}",
    ),
    ("target-blackhole", "{\"target\": \"i-…:32768\"}"),
    (
        "target-slow",
        "{\"target\": \"10.0.1.5:80\", \"delayMs\": 3000}",
    ),
    ("registry-pause", "{}"),
];

fn str_member<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn required<'a>(body: &'a Value, kind: &str, name: &str) -> Result<&'a str, Refusal> {
    str_member(body, name).ok_or_else(|| {
        let shape = KINDS
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, s)| *s)
            .unwrap_or("{}");
        bad(format!("{kind} needs \"{name}\": the body is {shape}"))
    })
}

struct Scope<'a> {
    app: &'a App,
    ctx: Ctx,
}

impl Scope<'_> {
    fn ecs(&self) -> Result<Arc<Ecs>, Refusal> {
        self.app
            .registry
            .handle::<Ecs>()
            .ok_or_else(|| refuse(StatusCode::SERVICE_UNAVAILABLE, "ECS is not available"))
    }

    /// The EC2 instance's state, when EC2 has a row for it.
    /// The state of an EC2 instance that EC2 launched (RunInstances, Auto Scaling). Instances EC2
    /// only recorded for an agent that registered through the API are left out: no emulated agent
    /// boots on them, so stopping them through EC2 could never reconnect; their faults act on the
    /// container instance instead.
    fn ec2_state(&self, instance_id: &str) -> Option<String> {
        let ec2 = self.app.registry.handle::<Ec2>()?;
        ec2.instances(&self.ctx.account, &self.ctx.region, self.ctx.now)
            .into_iter()
            .find(|i| i.instance_id == instance_id && !i.recorded_from_agent)
            .map(|i| i.state)
    }

    /// The live container instances on an EC2 instance id.
    fn container_instances(
        &self,
        ecs: &Ecs,
        instance_id: &str,
    ) -> Vec<(String, ContainerInstance)> {
        ecs.instances
            .scan(&self.ctx.scope())
            .into_iter()
            .filter(|(_, c)| c.ec2_instance_id == instance_id && c.status != "INACTIVE")
            .collect()
    }

    /// Calls an emulated API operation in-process, as a user would.
    async fn call(&self, service: &str, operation: &str, input: Value) -> Result<Value, Refusal> {
        let handler = self
            .app
            .registry
            .get(service, operation)
            .cloned()
            .ok_or_else(|| {
                refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{operation} is not available"),
                )
            })?;
        handler
            .call(self.ctx.clone(), input)
            .await
            .map_err(|e| bad(format!("{operation}: {}: {}", e.code, e.message)))
    }

    fn fault(&self, kind: Kind, effects: Vec<String>) -> Fault {
        Fault {
            id: format!("fault-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            kind,
            account: self.ctx.account.clone(),
            region: self.ctx.region.clone(),
            created_at: self.ctx.now,
            effects,
            disconnected: Vec::new(),
        }
    }
}

fn scope<'a>(app: &'a App, body: &Value) -> Scope<'a> {
    let region = str_member(body, "region")
        .unwrap_or(&app.config.region)
        .to_string();
    Scope {
        app,
        ctx: Ctx {
            account: app.config.account_id.clone(),
            region,
            request_id: uuid::Uuid::new_v4().to_string(),
            now: app.clock.now(),
            access_key: None,
        },
    }
}

/// Makes a fault of `kind` from a JSON body; returns what `POST` answers.
pub async fn create(app: &App, kind: &str, body: &Value) -> Result<Value, Refusal> {
    let s = scope(app, body);
    let (fault, extra) = match kind {
        "instance-stop" => (
            stop_instance(&s, required(body, kind, "instanceId")?).await?,
            json!({}),
        ),
        "instance-terminate" => (
            terminate_instance(&s, required(body, kind, "instanceId")?).await?,
            json!({}),
        ),
        "az-down" => (
            az_down(&s, required(body, kind, "availabilityZone")?)?,
            json!({}),
        ),
        "spot-interruption" => spot_interruption(&s, body)?,
        "task-kill" => (kill_task(&s, body).await?, json!({})),
        "target-blackhole" => (
            target(
                &s,
                Kind::TargetBlackhole {
                    target: required(body, kind, "target")?.to_string(),
                },
            )?,
            json!({}),
        ),
        "target-slow" => {
            let target = required(body, kind, "target")?.to_string();
            let delay_ms = body
                .get("delayMs")
                .and_then(Value::as_u64)
                .filter(|d| (1..=600_000).contains(d))
                .ok_or_else(|| bad("target-slow needs \"delayMs\", 1 to 600000 (milliseconds)"))?;
            (s_target_slow(&s, target, delay_ms)?, json!({}))
        }
        "registry-pause" => (registry_pause(&s)?, json!({})),
        other => {
            let kinds: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
            return Err(not_found(format!(
                "no fault kind {other:?}: the kinds are {}",
                kinds.join(", ")
            )));
        }
    };
    let faults = &app.faults;
    faults
        .insert(&fault)
        .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.message))?;
    faults.refresh(app.registry.handle::<Ecs>().as_deref());
    crate::feedback!(
        "fault {} ({}): {}",
        fault.id,
        fault.kind.describe(),
        fault.effects.join(" ")
    );
    let mut out = app.faults.get(&fault.id).unwrap_or(fault).to_json();
    if let (Some(o), Some(e)) = (out.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    Ok(out)
}

fn s_target_slow(s: &Scope<'_>, target: String, delay_ms: u64) -> Result<Fault, Refusal> {
    self::target(s, Kind::TargetSlow { target, delay_ms })
}

/// The tasks on these container instances stop as ECS stops them when their host goes away.
fn host_gone(
    s: &Scope<'_>,
    ecs: &Ecs,
    instance_id: &str,
    regs: &[(String, ContainerInstance)],
    terminated: bool,
) -> Result<usize, Refusal> {
    let reason = format!(
        "Host EC2 (instance {instance_id}) {}.",
        if terminated { "terminated" } else { "stopped" }
    );
    let mut stopped = 0;
    for (key, c) in regs {
        let arn = c.arn.clone();
        stopped += ecs
            .stop_tasks_where(
                &s.ctx,
                &c.cluster,
                |t| t.container_instance_arn.as_deref() == Some(arn.as_str()),
                "TerminationNotice",
                &reason,
            )
            .map_err(|e| bad(e.message))?;
        let now = s.ctx.now;
        ecs.instances
            .transact::<_, crate::store::StoreError, _>(|t| {
                if let Some(c) = t.get_mut(key) {
                    c.agent_connected = false;
                    if terminated {
                        c.status = "INACTIVE".into();
                        c.deregistered_at = Some(now);
                    }
                    c.version += 1;
                }
                Ok(())
            })
            .map_err(|e| bad(e.to_string()))?;
    }
    ecs.wake_agent();
    ecs.wake_scheduler();
    Ok(stopped)
}

fn unknown_instance(id: &str) -> Refusal {
    not_found(format!(
        "no instance {id}: name an EC2 instance id (aws ec2 describe-instances) or a container \
         instance's ec2InstanceId (aws ecs describe-container-instances)"
    ))
}

async fn stop_instance(s: &Scope<'_>, id: &str) -> Result<Fault, Refusal> {
    let ecs = s.ecs()?;
    if let Some(state) = s.ec2_state(id) {
        if state != "running" {
            return Err(refuse(
                StatusCode::CONFLICT,
                format!("the instance {id} is {state}, not running"),
            ));
        }
        s.call("ec2", "StopInstances", json!({"InstanceIds": [id]}))
            .await?;
        return Ok(s.fault(
            Kind::InstanceStop {
                instance_id: id.into(),
                ec2_backed: true,
            },
            vec![format!(
                "EC2 instance {id} is stopping: its tasks stop (Host EC2 (instance {id}) stopped.) and its agent disconnects; heal starts it again."
            )],
        ));
    }
    let regs = s.container_instances(&ecs, id);
    if regs.is_empty() {
        return Err(unknown_instance(id));
    }
    if regs.iter().all(|(_, c)| !c.agent_connected) {
        return Err(refuse(
            StatusCode::CONFLICT,
            format!("the instance {id} is already disconnected"),
        ));
    }
    let stopped = host_gone(s, &ecs, id, &regs, false)?;
    let mut f = s.fault(
        Kind::InstanceStop {
            instance_id: id.into(),
            ec2_backed: false,
        },
        vec![format!(
            "{stopped} tasks stopping (Host EC2 (instance {id}) stopped.); agent disconnected until healed."
        )],
    );
    f.disconnected = regs.into_iter().map(|(k, _)| k).collect();
    Ok(f)
}

async fn terminate_instance(s: &Scope<'_>, id: &str) -> Result<Fault, Refusal> {
    let ecs = s.ecs()?;
    if let Some(state) = s.ec2_state(id) {
        if matches!(state.as_str(), "shutting-down" | "terminated") {
            return Err(refuse(
                StatusCode::CONFLICT,
                format!("the instance {id} is already {state}"),
            ));
        }
        s.call("ec2", "TerminateInstances", json!({"InstanceIds": [id]}))
            .await?;
        return Ok(s.fault(
            Kind::InstanceTerminate {
                instance_id: id.into(),
                ec2_backed: true,
            },
            vec![format!(
                "EC2 instance {id} is terminating: its tasks stop (Host EC2 (instance {id}) terminated.) and its container instance goes INACTIVE."
            )],
        ));
    }
    let regs = s.container_instances(&ecs, id);
    if regs.is_empty() {
        return Err(unknown_instance(id));
    }
    let stopped = host_gone(s, &ecs, id, &regs, true)?;
    Ok(s.fault(
        Kind::InstanceTerminate {
            instance_id: id.into(),
            ec2_backed: false,
        },
        vec![format!(
            "{stopped} tasks stopping (Host EC2 (instance {id}) terminated.); container instance INACTIVE. Terminations cannot be healed."
        )],
    ))
}

fn az_down(s: &Scope<'_>, az: &str) -> Result<Fault, Refusal> {
    let ecs = s.ecs()?;
    let region = &s.ctx.region;
    let suffix = az.strip_prefix(region.as_str()).unwrap_or_default();
    if suffix.is_empty()
        || !suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(bad(format!(
            "{az:?} is not an Availability Zone of {region} (e.g. {region}a)"
        )));
    }
    let already = s.app.faults.list().into_iter().find(|f| {
        f.scope() == s.ctx.scope()
            && matches!(&f.kind, Kind::AzDown { availability_zone } if availability_zone == az)
    });
    if let Some(f) = already {
        return Err(refuse(
            StatusCode::CONFLICT,
            format!(
                "{az} is already down ({}); heal it with: ecs-emulator fault heal {}",
                f.id, f.id
            ),
        ));
    }
    let n = ecs
        .instances
        .scan(&s.ctx.scope())
        .into_iter()
        .filter(|(_, c)| c.availability_zone == az && c.status != "INACTIVE")
        .count();
    Ok(s.fault(
        Kind::AzDown {
            availability_zone: az.into(),
        },
        vec![format!(
            "{n} container instances in {az} disconnected (agentConnected false, no new placements there); \
             load balancer targets there unreachable, so their health checks time out and ECS replaces \
             the service tasks in other zones."
        )],
    ))
}

/// The two-minute Spot interruption notice, for a Spot instance or a FARGATE_SPOT task.
fn spot_interruption(s: &Scope<'_>, body: &Value) -> Result<(Fault, Value), Refusal> {
    let ecs = s.ecs()?;
    if let Some(id) = str_member(body, "instanceId") {
        let ec2 = s
            .app
            .registry
            .handle::<Ec2>()
            .ok_or_else(|| refuse(StatusCode::SERVICE_UNAVAILABLE, "EC2 is not available"))?;
        let i = ec2
            .interrupt_spot(&s.ctx.account, &s.ctx.region, id, s.ctx.now)
            .map_err(|e| {
                if e.code == "InvalidInstanceID.NotFound" {
                    not_found(e.message)
                } else {
                    bad(e.message)
                }
            })?;
        let drained = ecs.drain_ec2_instance(&s.ctx.scope(), id);
        let fault = s.fault(
            Kind::SpotInterruption {
                instance_id: Some(id.into()),
                task_arn: None,
            },
            vec![format!(
                "{} container instances DRAINING; the instance terminates two minutes later (emulator time).",
                drained.len()
            )],
        );
        return Ok((
            fault,
            json!({"instanceId": id, "terminatesAt": i.interruption_at, "containerInstancesDraining": drained}),
        ));
    }
    let Some(arn) = str_member(body, "taskArn") else {
        return Err(bad("name an instanceId or a taskArn"));
    };
    let task = ecs
        .tasks
        .scan(&s.ctx.scope())
        .into_iter()
        .map(|(_, t)| t)
        .find(|t| t.arn == arn || t.id == arn)
        .ok_or_else(|| not_found(format!("no task {arn}")))?;
    if task.capacity_provider_name.as_deref() != Some("FARGATE_SPOT") || !task.wanted() {
        return Err(bad(format!(
            "the task {arn} is not a running FARGATE_SPOT task"
        )));
    }
    let task_arn = task.arn.clone();
    ecs.stop_tasks_where(
        &s.ctx,
        &task.cluster,
        |t| t.arn == task_arn,
        "SpotInterruption",
        "Your Spot Task was interrupted.",
    )
    .map_err(|e| bad(e.message))?;
    let fault = s.fault(
        Kind::SpotInterruption {
            instance_id: None,
            task_arn: Some(task.arn.clone()),
        },
        vec!["the task stops with stopCode SpotInterruption.".into()],
    );
    Ok((
        fault,
        json!({"taskArn": task.arn, "stopCode": "SpotInterruption"}),
    ))
}

/// SIGKILL to a running task's container, from outside ECS (as a crash or the OOM killer
/// would): the task agent sees it die and ECS does the rest.
async fn kill_task(s: &Scope<'_>, body: &Value) -> Result<Fault, Refusal> {
    let ecs = s.ecs()?;
    let reference = required(body, "task-kill", "task")?;
    let cluster = str_member(body, "cluster");
    let id = reference.rsplit('/').next().unwrap_or(reference);
    let task = ecs
        .tasks
        .scan(&s.ctx.scope())
        .into_iter()
        .map(|(_, t)| t)
        .find(|t| (t.arn == reference || t.id == id) && cluster.is_none_or(|c| c == t.cluster))
        .ok_or_else(|| {
            not_found(format!(
                "no task {reference}{}",
                cluster
                    .map(|c| format!(" in cluster {c}"))
                    .unwrap_or_default()
            ))
        })?;
    if !task.is_running() {
        return Err(refuse(
            StatusCode::CONFLICT,
            format!(
                "the task {} is {:?}, not RUNNING",
                task.id, task.last_status
            ),
        ));
    }
    let wanted = str_member(body, "container");
    let victims: Vec<(String, String)> = task
        .containers
        .iter()
        .filter(|c| match wanted {
            Some(name) => c.name == name,
            None => c.essential,
        })
        .filter_map(|c| c.runtime_id.clone().map(|id| (c.name.clone(), id)))
        .take(if wanted.is_some() { usize::MAX } else { 1 })
        .collect();
    if victims.is_empty() {
        let names: Vec<&str> = task.containers.iter().map(|c| c.name.as_str()).collect();
        return Err(not_found(format!(
            "no running container {} in task {} (its containers: {})",
            wanted.unwrap_or("(essential)"),
            task.id,
            names.join(", ")
        )));
    }
    let runtime = s.app.runtime.get().ok_or_else(|| {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "Docker is not connected: no container to kill",
        )
    })?;
    for (name, id) in &victims {
        runtime
            .kill(id)
            .await
            .map_err(|e| bad(format!("cannot kill container {name}: {e}")))?;
    }
    Ok(s.fault(
        Kind::TaskKill {
            task_arn: task.arn.clone(),
            containers: victims.iter().map(|(n, _)| n.clone()).collect(),
        },
        vec![format!(
            "SIGKILL sent to {}; the task agent records the exit (137) and ECS stops or replaces the task.",
            victims.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
        )],
    ))
}

fn target(s: &Scope<'_>, kind: Kind) -> Result<Fault, Refusal> {
    let ecs = s.ecs()?;
    let target = match &kind {
        Kind::TargetBlackhole { target } | Kind::TargetSlow { target, .. } => target.clone(),
        _ => return Err(bad("not a target fault")),
    };
    let (id, _) = super::network::split_target(&target);
    if id.parse::<std::net::IpAddr>().is_err() && s.container_instances(&ecs, &id).is_empty() {
        return Err(not_found(format!(
            "no target {target}: name it as describe-target-health shows it, <instance id>:<port> \
             or <ip>:<port> (the port may be left out)"
        )));
    }
    let effect = match &kind {
        Kind::TargetSlow { delay_ms, .. } => format!(
            "answers {delay_ms} ms late: health checks time out past their timeout, ALB answers 504 past its idle timeout."
        ),
        _ => "never answers: its health checks time out (Target.Timeout), ALB answers 504.".into(),
    };
    Ok(s.fault(kind, vec![format!("traffic to {target} {effect}")]))
}

fn registry_pause(s: &Scope<'_>) -> Result<Fault, Refusal> {
    if let Some(id) = s.app.faults.network().registry_paused() {
        return Err(refuse(
            StatusCode::CONFLICT,
            format!("the registry is already paused ({id})"),
        ));
    }
    Ok(s.fault(
        Kind::RegistryPause,
        vec!["the registry answers 503 UNAVAILABLE: docker push and pull fail, tasks stop with CannotPullContainerError.".into()],
    ))
}

/// Heals a fault: removes it and undoes what can be undone. Returns what `DELETE` answers.
pub async fn heal(app: &App, id: &str) -> Result<Value, Refusal> {
    let Some(fault) = app.faults.get(id) else {
        return Err(not_found(format!(
            "no fault {id}: list them with `ecs-emulator fault list` (GET /_emulator/faults)"
        )));
    };
    let s = Scope {
        app,
        ctx: Ctx {
            account: fault.account.clone(),
            region: fault.region.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            now: app.clock.now(),
            access_key: None,
        },
    };
    app.faults
        .remove(id)
        .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.message))?;
    let ecs = app.registry.handle::<Ecs>();
    app.faults.refresh(ecs.as_deref());
    let mut undone = Vec::new();
    if let Kind::InstanceStop {
        instance_id,
        ec2_backed: true,
    } = &fault.kind
    {
        start_when_stopped(&s, instance_id.clone());
        undone.push(format!(
            "EC2 instance {instance_id} starts again; its agent reconnects."
        ));
    }
    if let Some(ecs) = &ecs {
        let n = reconnect(&s, ecs, &fault.disconnected);
        if n > 0 {
            undone.push(format!("{n} container instances reconnected."));
        }
    }
    if !fault.kind.lasting() {
        undone.push("nothing to undo (it happened once); forgotten.".into());
    } else if undone.is_empty() {
        undone.push(format!("{} no more.", fault.kind.describe()));
    }
    crate::feedback!("fault {id} healed: {}", undone.join(" "));
    Ok(
        json!({"healed": id, "kind": fault.kind.name(), "summary": fault.kind.describe(), "undone": undone}),
    )
}

/// Reconnects the agents a fault disconnected, unless another fault still holds them or their
/// EC2 instance is not running (then the instance agent reconnects them when it runs again).
fn reconnect(s: &Scope<'_>, ecs: &Ecs, keys: &[String]) -> usize {
    let network = s.app.faults.network();
    let mut n = 0;
    for key in keys {
        let Some(c) = ecs.instances.get(key) else {
            continue;
        };
        if c.status == "INACTIVE" || c.agent_connected || network.holds(&c.ec2_instance_id) {
            continue;
        }
        if s.ec2_state(&c.ec2_instance_id)
            .is_some_and(|st| st != "running")
        {
            continue;
        }
        let ok = ecs
            .instances
            .transact::<_, crate::store::StoreError, _>(|t| {
                if let Some(c) = t.get_mut(key) {
                    c.agent_connected = true;
                    c.version += 1;
                }
                Ok(())
            });
        if ok.is_ok() {
            n += 1;
        }
    }
    if n > 0 {
        ecs.wake_agent();
        ecs.wake_scheduler();
    }
    n
}

/// StartInstances once the instance has finished stopping (a heal right after the stop finds
/// it still `stopping`); gives up after a minute.
fn start_when_stopped(s: &Scope<'_>, instance_id: String) {
    let Some(handler) = s.app.registry.get("ec2", "StartInstances").cloned() else {
        return;
    };
    let Some(ec2) = s.app.registry.handle::<Ec2>() else {
        return;
    };
    let ctx = s.ctx.clone();
    let clock = s.app.clock.clone();
    tokio::spawn(async move {
        for _ in 0..240 {
            let state = ec2
                .instances(&ctx.account, &ctx.region, clock.now())
                .into_iter()
                .find(|i| i.instance_id == instance_id)
                .map(|i| i.state);
            match state.as_deref() {
                Some("stopped") => {
                    let mut ctx = ctx.clone();
                    ctx.now = clock.now();
                    if let Err(e) = handler
                        .call(ctx, json!({"InstanceIds": [instance_id]}))
                        .await
                    {
                        tracing::warn!(instance = %instance_id, error = %e.message, "healing a stopped instance");
                    }
                    return;
                }
                Some("stopping") => {}
                _ => return,
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    });
}
