//! `ecs-emulator fault …`: makes, lists and heals faults of a running emulator through its
//! control API.

use crate::cli::{block_on, request};
use anyhow::bail;
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Debug, Clone, Subcommand)]
pub enum FaultAction {
    /// List the faults (what each did, and its id for `heal`).
    List,
    /// Undo a fault by id (a one-shot fault is only forgotten).
    Heal { id: String },
    /// Stop an EC2 instance (or an API-registered container instance, by its ec2InstanceId):
    /// its tasks stop ("Host EC2 (instance …) stopped."), its agent disconnects.
    StopInstance { instance_id: String },
    /// Terminate an instance: its tasks stop ("… terminated."), its container instance goes
    /// INACTIVE; an Auto Scaling group replaces it.
    TerminateInstance { instance_id: String },
    /// Take an Availability Zone down: its agents disconnect, its load balancer targets stop
    /// answering, services move their tasks to the other zones.
    AzDown { availability_zone: String },
    /// Bring an Availability Zone back (heals its az-down fault).
    AzUp { availability_zone: String },
    /// The two-minute Spot interruption notice for a Spot instance or a FARGATE_SPOT task.
    SpotInterruption {
        #[arg(long, required_unless_present = "task", conflicts_with = "task")]
        instance: Option<String>,
        #[arg(long)]
        task: Option<String>,
    },
    /// SIGKILL a task's container (its first essential one unless --container names one).
    KillTask {
        /// The task's id or ARN.
        task: String,
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long)]
        container: Option<String>,
    },
    /// Make a load balancer target stop answering (health checks time out, ALB answers 504).
    /// TARGET as describe-target-health shows it: i-…:32768, 10.0.1.5:80, or without the port.
    Blackhole { target: String },
    /// Make a load balancer target answer late.
    Slow {
        target: String,
        /// The delay in milliseconds.
        #[arg(long)]
        delay_ms: u64,
    },
    /// Pause the registry: docker push and pull get 503 until `resume-registry`.
    PauseRegistry,
    /// Resume the registry (heals its registry-pause fault).
    ResumeRegistry,
}

async fn call(method: http::Method, url: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let (code, bytes) = request(method, url, body.map(|b| b.to_string().into_bytes())).await?;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if code == 404 && v.is_null() {
        bail!("the emulator at {url} has no fault API (HTTP 404): is it an older version?");
    }
    if !(200..300).contains(&code) {
        bail!(
            "{}",
            v["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("the emulator answered HTTP {code}"))
        );
    }
    Ok(v)
}

fn print_fault(f: &Value) {
    println!(
        "{}  {}",
        f["id"].as_str().unwrap_or("?"),
        f["summary"].as_str().unwrap_or("")
    );
    for e in f["effects"].as_array().into_iter().flatten() {
        println!("  {}", e.as_str().unwrap_or(""));
    }
}

async fn create(endpoint: &str, kind: &str, body: Value) -> anyhow::Result<()> {
    let f = call(
        http::Method::POST,
        &format!("{endpoint}/_emulator/faults/{kind}"),
        Some(body),
    )
    .await?;
    print_fault(&f);
    let id = f["id"].as_str().unwrap_or("?");
    if f["lasting"].as_bool() == Some(true) {
        println!("  heal: ecs-emulator fault heal {id}");
    }
    Ok(())
}

async fn heal(endpoint: &str, id: &str) -> anyhow::Result<()> {
    let v = call(
        http::Method::DELETE,
        &format!("{endpoint}/_emulator/faults/{id}"),
        None,
    )
    .await?;
    println!("{id} healed ({})", v["summary"].as_str().unwrap_or(""));
    for u in v["undone"].as_array().into_iter().flatten() {
        println!("  {}", u.as_str().unwrap_or(""));
    }
    Ok(())
}

async fn list(endpoint: &str) -> anyhow::Result<Vec<Value>> {
    let v = call(
        http::Method::GET,
        &format!("{endpoint}/_emulator/faults"),
        None,
    )
    .await?;
    Ok(v["faults"].as_array().cloned().unwrap_or_default())
}

/// Heals every fault `pick` selects; fails when there is none.
async fn heal_where(
    endpoint: &str,
    what: &str,
    pick: impl Fn(&Value) -> bool,
) -> anyhow::Result<()> {
    let matching: Vec<Value> = list(endpoint).await?.into_iter().filter(pick).collect();
    if matching.is_empty() {
        bail!("no fault for {what} (see `ecs-emulator fault list`)");
    }
    for f in matching {
        heal(endpoint, f["id"].as_str().unwrap_or_default()).await?;
    }
    Ok(())
}

pub fn run(endpoint: String, action: FaultAction) -> anyhow::Result<()> {
    block_on(async move {
        let e = endpoint.as_str();
        match action {
            FaultAction::List => {
                let faults = list(e).await?;
                if faults.is_empty() {
                    println!("No faults.");
                }
                for f in &faults {
                    print_fault(f);
                }
                Ok(())
            }
            FaultAction::Heal { id } => heal(e, &id).await,
            FaultAction::StopInstance { instance_id } => {
                create(e, "instance-stop", json!({"instanceId": instance_id})).await
            }
            FaultAction::TerminateInstance { instance_id } => {
                create(e, "instance-terminate", json!({"instanceId": instance_id})).await
            }
            FaultAction::AzDown { availability_zone } => {
                create(e, "az-down", json!({"availabilityZone": availability_zone})).await
            }
            FaultAction::AzUp { availability_zone } => {
                heal_where(e, &availability_zone, |f| {
                    f["kind"] == "az-down" && f["availabilityZone"] == availability_zone.as_str()
                })
                .await
            }
            FaultAction::SpotInterruption { instance, task } => {
                let body = match (instance, task) {
                    (Some(i), _) => json!({"instanceId": i}),
                    (None, Some(t)) => json!({"taskArn": t}),
                    (None, None) => bail!("name --instance or --task"),
                };
                create(e, "spot-interruption", body).await
            }
            FaultAction::KillTask {
                task,
                cluster,
                container,
            } => {
                let mut body = json!({"task": task});
                if let Some(c) = cluster {
                    body["cluster"] = json!(c);
                }
                if let Some(c) = container {
                    body["container"] = json!(c);
                }
                create(e, "task-kill", body).await
            }
            FaultAction::Blackhole { target } => {
                create(e, "target-blackhole", json!({"target": target})).await
            }
            FaultAction::Slow { target, delay_ms } => {
                create(
                    e,
                    "target-slow",
                    json!({"target": target, "delayMs": delay_ms}),
                )
                .await
            }
            FaultAction::PauseRegistry => create(e, "registry-pause", json!({})).await,
            FaultAction::ResumeRegistry => {
                heal_where(e, "the registry", |f| f["kind"] == "registry-pause").await
            }
        }
    })
}
