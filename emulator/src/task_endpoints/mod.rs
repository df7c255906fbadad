//! Task endpoints, the data plane containers talk back to (ARCHITECTURE.md decision 9): the task
//! metadata endpoint (v3 and v4) and the task-role credentials endpoint, on
//! http://169.254.170.2 as the ECS agent serves them (aws-behaviour.md §2).
//!
//! - `GET /v4/<endpoint id>-<container>` (and `/task`, `/stats`, `/task/stats`), same for `/v3`.
//! - `GET /v2/credentials/<endpoint id>`: the task role's temporary credentials, issued by STS,
//!   readable only from an address of one of the task's containers.
//!
//! `listen.rs` makes the address reachable from containers and shares it between emulators on
//! one machine.

pub mod listen;
pub mod metadata;

use crate::clock::Clock;
use crate::runtime::{ContainerRuntime, ContainerState};
use crate::services::ecs::{Ecs, Task};
use crate::services::sts::{IssuedCredentials, Sts};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::Router;
use http::StatusCode;
use metadata::{rfc3339, Version, View};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Marks an answer about an id this emulator does not know (another emulator may).
pub const UNKNOWN_ID_HEADER: &str = "x-ecs-emulator-unknown-id";
/// The container's address, on requests forwarded between emulators (trusted only with the
/// listener's secret).
pub const SOURCE_HEADER: &str = "x-ecs-emulator-source-ip";
/// The secret of the loopback listener a request is forwarded to (listen.rs: Peers).
pub const FORWARD_TOKEN_HEADER: &str = "x-ecs-emulator-forward-token";

/// Credentials are renewed this long (emulated seconds) before they expire.
const RENEW_BEFORE_S: f64 = 300.0;
/// Lifetime asked of STS (capped by the role's MaxSessionDuration, 1 h by default).
const CREDENTIALS_DURATION_S: i64 = 3600;

/// What the endpoints read: ECS's tasks, STS, Docker, the clock.
pub struct TaskEndpoints {
    pub ecs: Arc<Ecs>,
    pub sts: Arc<Sts>,
    pub runtime: Arc<dyn ContainerRuntime>,
    pub clock: Clock,
    /// Credentials issued per task (endpoint id): the role they are for and the credentials.
    cache: Mutex<HashMap<String, (String, IssuedCredentials)>>,
}

/// One answer: status, JSON body, and whether the id was unknown here.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub unknown_id: bool,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer {
            status: StatusCode::OK,
            body,
            unknown_id: false,
        }
    }

    fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Answer {
        Answer {
            status,
            body: json!({"code": code, "message": message.into(), "HTTPErrorCode": status.as_u16()}),
            unknown_id: false,
        }
    }

    fn unknown(status: StatusCode, code: &str, message: impl Into<String>) -> Answer {
        Answer {
            unknown_id: true,
            ..Answer::error(status, code, message)
        }
    }

    fn into_response(self) -> Response {
        let mut b = Response::builder()
            .status(self.status)
            .header(http::header::CONTENT_TYPE, "application/json");
        if self.unknown_id {
            b = b.header(UNKNOWN_ID_HEADER, "1");
        }
        b.body(Body::from(self.body.to_string()))
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }
}

/// The region and account in a task ARN (arn:aws:ecs:<region>:<account>:task/…).
fn arn_region_account(arn: &str) -> (String, String) {
    let parts: Vec<&str> = arn.split(':').collect();
    (
        parts.get(3).copied().unwrap_or_default().to_string(),
        parts.get(4).copied().unwrap_or_default().to_string(),
    )
}

impl TaskEndpoints {
    pub fn new(
        ecs: Arc<Ecs>,
        sts: Arc<Sts>,
        runtime: Arc<dyn ContainerRuntime>,
        clock: Clock,
    ) -> Arc<TaskEndpoints> {
        Arc::new(TaskEndpoints {
            ecs,
            sts,
            runtime,
            clock,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The task whose endpoint id is `id`.
    fn task_by_endpoint(&self, id: &str) -> Option<Task> {
        if id.is_empty() {
            return None;
        }
        self.ecs
            .tasks
            .read(|rows| rows.values().find(|t| t.endpoint_id == id).cloned())
    }

    /// The task and container named by a metadata id `<endpoint id>-<container name>`.
    fn task_by_metadata_id(&self, id: &str) -> Option<(Task, String)> {
        self.ecs.tasks.read(|rows| {
            rows.values().find_map(|t| {
                if t.endpoint_id.is_empty() {
                    return None;
                }
                let name = id.strip_prefix(t.endpoint_id.as_str())?.strip_prefix('-')?;
                t.containers
                    .iter()
                    .any(|c| c.name == name)
                    .then(|| (t.clone(), name.to_string()))
            })
        })
    }

    /// Docker's view of the task's containers, by container name.
    async fn inspect(&self, task: &Task) -> HashMap<String, ContainerState> {
        let mut out = HashMap::new();
        for c in &task.containers {
            if let Some(id) = &c.runtime_id {
                if let Ok(state) = self.runtime.inspect(id).await {
                    out.insert(c.name.clone(), state);
                }
            }
        }
        out
    }

    /// Answers a GET of `path` from a container at `source`.
    pub async fn answer(&self, path: &str, source: IpAddr) -> Answer {
        let path = path.split('?').next().unwrap_or_default();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            ["v2", "credentials", id] => self.credentials(id, source).await,
            [v @ ("v3" | "v4"), id, rest @ ..] => {
                let version = if *v == "v3" { Version::V3 } else { Version::V4 };
                self.metadata(version, id, rest).await
            }
            _ => Answer::error(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("No such path: {path}"),
            ),
        }
    }

    async fn metadata(&self, version: Version, id: &str, rest: &[&str]) -> Answer {
        let Some((task, name)) = self.task_by_metadata_id(id) else {
            return Answer::unknown(
                StatusCode::NOT_FOUND,
                "InvalidIdInRequest",
                format!(
                    "V{}: unable to get task arn from request: {id}",
                    if version == Version::V3 { 3 } else { 4 }
                ),
            );
        };
        match rest {
            [] | ["task"] => {
                let def = self.ecs.task_definition_by_arn(&task.task_definition_arn);
                let docker = self.inspect(&task).await;
                let (region, _) = arn_region_account(&task.arn);
                let view = View {
                    task: &task,
                    def: def.as_ref(),
                    docker: &docker,
                    region: &region,
                };
                if rest.is_empty() {
                    match view.container_named(&name, version) {
                        Some(c) => Answer::ok(c),
                        None => Answer::unknown(
                            StatusCode::NOT_FOUND,
                            "InvalidIdInRequest",
                            "no such container",
                        ),
                    }
                } else {
                    Answer::ok(view.task(version))
                }
            }
            ["stats"] => {
                let runtime_id = task
                    .containers
                    .iter()
                    .find(|c| c.name == name)
                    .and_then(|c| c.runtime_id.clone());
                match runtime_id {
                    Some(rid) => Answer::ok(self.runtime.stats(&rid).await.unwrap_or(json!({}))),
                    None => Answer::ok(json!({})),
                }
            }
            ["task", "stats"] => {
                let mut out = serde_json::Map::new();
                for c in &task.containers {
                    if let Some(rid) = &c.runtime_id {
                        let stats = self.runtime.stats(rid).await.unwrap_or(Value::Null);
                        out.insert(rid.clone(), stats);
                    }
                }
                Answer::ok(Value::Object(out))
            }
            _ => Answer::error(StatusCode::NOT_FOUND, "NotFound", "No such path"),
        }
    }

    /// The task role: the RunTask override, else the task definition's.
    fn task_role(&self, task: &Task) -> Option<String> {
        // Planned at launch (the override, else the definition's).
        task.task_role_arn.clone().filter(|r| !r.is_empty())
    }

    /// Whether `source` is one of the task's containers. Host-network tasks share the host's
    /// addresses, so their callers cannot be told apart from any local process: allowed.
    async fn is_task_container(&self, task: &Task, source: IpAddr) -> bool {
        if task.network_mode == "host" {
            return true;
        }
        let docker = self.inspect(task).await;
        let source = source.to_string();
        docker
            .values()
            .any(|d| d.ips.iter().any(|(_, ip)| *ip == source))
    }

    async fn credentials(&self, id: &str, source: IpAddr) -> Answer {
        let Some(task) = self.task_by_endpoint(id) else {
            return Answer::unknown(
                StatusCode::BAD_REQUEST,
                "InvalidIdInRequest",
                "CredentialsV2Request: Credentials not found",
            );
        };
        if !self.is_task_container(&task, source).await {
            tracing::warn!(task = %task.arn, %source, "refused task credentials to a caller outside the task");
            return Answer::error(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "CredentialsV2Request: the caller is not a container of this task",
            );
        }
        let Some(role) = self.task_role(&task) else {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                "InvalidIdInRequest",
                "CredentialsV2Request: Credentials not found (the task has no task role)",
            );
        };
        if task.is_stopped() {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                "InvalidIdInRequest",
                "CredentialsV2Request: Credentials not found (the task has stopped)",
            );
        }
        let now = self.clock.now();
        let cached = self
            .cache
            .lock()
            .get(id)
            .filter(|(r, c)| *r == role && c.expiration - RENEW_BEFORE_S > now)
            .map(|(_, c)| c.clone());
        let creds = match cached {
            Some(c) => c,
            None => {
                let (_, account) = arn_region_account(&task.arn);
                let caller = format!("arn:aws:iam::{account}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS");
                match self.sts.assume_role(
                    &account,
                    &caller,
                    &role,
                    &task.id,
                    Some(CREDENTIALS_DURATION_S),
                    now,
                ) {
                    Ok(c) => {
                        self.cache
                            .lock()
                            .insert(id.to_string(), (role.clone(), c.clone()));
                        c
                    }
                    Err(e) => {
                        tracing::warn!(task = %task.arn, %role, error = %e.message, "cannot issue task role credentials");
                        return Answer::error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "InternalServerError",
                            format!("CredentialsV2Request: cannot assume {role}: {}", e.message),
                        );
                    }
                }
            }
        };
        Answer::ok(json!({
            "RoleArn": role,
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key,
            "Token": creds.session_token,
            "Expiration": rfc3339(creds.expiration.floor()).unwrap_or_default(),
        }))
    }
}

/// How a listener treats its callers.
#[derive(Clone)]
struct Served {
    endpoints: Arc<TaskEndpoints>,
    /// Loopback listener for other emulators: serves only requests that carry this secret in
    /// FORWARD_TOKEN_HEADER, trusts their SOURCE_HEADER, never forwards.
    private: Option<Arc<str>>,
    /// Asks the other emulators on this machine about ids unknown here.
    peers: Option<Arc<listen::Peers>>,
}

async fn serve(
    State(s): State<Served>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return Answer::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "Only GET",
        )
        .into_response();
    }
    let mut source = peer.ip();
    if let Some(secret) = &s.private {
        let presented = req
            .headers()
            .get(FORWARD_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !source.is_loopback() || !crate::protocol::sigv4::signatures_match(presented, secret) {
            return Answer::error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "only emulators sharing the task endpoint address may call this listener",
            )
            .into_response();
        }
        if let Some(ip) = req
            .headers()
            .get(SOURCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
        {
            source = ip;
        }
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let answer = s.endpoints.answer(&path, source).await;
    if answer.unknown_id {
        if let Some(peers) = &s.peers {
            if let Some(r) = peers.forward(&path, source).await {
                return r;
            }
        }
    }
    answer.into_response()
}

/// The router of one listener. `private`: the loopback listener other emulators forward to, and
/// the secret they must present.
fn router(
    endpoints: Arc<TaskEndpoints>,
    private: Option<Arc<str>>,
    peers: Option<Arc<listen::Peers>>,
) -> Router {
    Router::new().fallback(serve).with_state(Served {
        endpoints,
        private,
        peers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{ContainerSpec, ImageInfo, RegistryAuth, RuntimeError, RuntimeEvent};
    use crate::services::ecs::model::{ContainerStatus, DesiredStatus, TaskStatus};
    use crate::services::ecs::TaskContainer;
    use async_trait::async_trait;
    use futures::stream::BoxStream;

    /// Docker stand-in: every container is at 172.17.0.9.
    struct FakeRuntime;

    fn no() -> RuntimeError {
        RuntimeError::new("fake")
    }

    #[async_trait]
    impl ContainerRuntime for FakeRuntime {
        fn name(&self) -> &'static str {
            "fake"
        }
        async fn local_image(&self, _: &str) -> Result<Option<ImageInfo>, RuntimeError> {
            Err(no())
        }
        async fn pull(&self, _: &str, _: Option<RegistryAuth>) -> Result<ImageInfo, RuntimeError> {
            Err(no())
        }
        async fn create(&self, _: &ContainerSpec) -> Result<String, RuntimeError> {
            Err(no())
        }
        async fn start(&self, _: &str) -> Result<(), RuntimeError> {
            Err(no())
        }
        async fn stop(&self, _: &str, _: i64) -> Result<(), RuntimeError> {
            Err(no())
        }
        async fn remove(&self, _: &str) -> Result<(), RuntimeError> {
            Err(no())
        }
        async fn inspect(&self, id: &str) -> Result<ContainerState, RuntimeError> {
            Ok(ContainerState {
                id: id.to_string(),
                name: format!("ecs-web-1-{id}"),
                running: true,
                ips: vec![("bridge".into(), "172.17.0.9".into())],
                ..Default::default()
            })
        }
        async fn list(&self, _: &str, _: &str) -> Result<Vec<ContainerState>, RuntimeError> {
            Ok(vec![])
        }
        async fn ensure_network(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: HashMap<String, String>,
        ) -> Result<(), RuntimeError> {
            Err(no())
        }
        async fn remove_network(&self, _: &str) -> Result<(), RuntimeError> {
            Err(no())
        }
        async fn stats(&self, id: &str) -> Result<Value, RuntimeError> {
            Ok(json!({"id": id, "memory_stats": {"usage": 1}}))
        }
        async fn volume_exists(&self, _: &str) -> Result<bool, RuntimeError> {
            Ok(false)
        }
        async fn create_volume(
            &self,
            _: &str,
            _: Option<&str>,
            _: HashMap<String, String>,
            _: HashMap<String, String>,
        ) -> Result<(), RuntimeError> {
            Ok(())
        }
        async fn remove_volume(&self, _: &str) -> Result<(), RuntimeError> {
            Ok(())
        }
        async fn bridge_gateway(&self) -> Option<String> {
            None
        }
        fn events(&self, _: &str) -> BoxStream<'static, Result<RuntimeEvent, RuntimeError>> {
            Box::pin(futures::stream::empty())
        }
        fn logs(
            &self,
            _: &str,
            _: i64,
            _: bool,
        ) -> BoxStream<'static, Result<(i64, String), RuntimeError>> {
            Box::pin(futures::stream::empty())
        }
    }

    fn endpoints(role: Option<&str>, network_mode: &str) -> Arc<TaskEndpoints> {
        let deps = crate::services::Deps::for_tests();
        let registry = crate::app::build(&deps);
        let ecs = registry.handle::<Ecs>().expect("ecs");
        let sts = registry.handle::<Sts>().expect("sts");
        let task = Task {
            arn: "arn:aws:ecs:us-east-1:000000000000:task/c/abc".into(),
            id: "abc".into(),
            family: "web".into(),
            revision: 1,
            last_status: TaskStatus::Running,
            desired_status: DesiredStatus::Running,
            network_mode: network_mode.into(),
            endpoint_id: "0f1e-22".into(),
            task_role_arn: role.map(str::to_string),
            containers: vec![TaskContainer {
                name: "my-app".into(),
                runtime_id: Some("d0c".into()),
                last_status: ContainerStatus::Running,
                ..Default::default()
            }],
            ..Default::default()
        };
        ecs.tasks
            .put("000000000000/us-east-1/c/abc", task)
            .expect("put");
        TaskEndpoints::new(ecs, sts, Arc::new(FakeRuntime), Clock::new(1.0))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn finds_tasks_by_endpoint_and_metadata_id() {
        let e = endpoints(None, "bridge");
        assert!(e.task_by_endpoint("0f1e-22").is_some());
        assert!(e.task_by_endpoint("").is_none());
        let (t, name) = e.task_by_metadata_id("0f1e-22-my-app").expect("found");
        assert_eq!(t.arn, "arn:aws:ecs:us-east-1:000000000000:task/c/abc");
        assert_eq!(name, "my-app");
        assert!(e.task_by_metadata_id("0f1e-22-other").is_none());
        assert!(e.task_by_metadata_id("0f1e-2-my-app").is_none());
        assert_eq!(
            arn_region_account("arn:aws:ecs:us-east-1:000000000000:task/c/abc"),
            ("us-east-1".to_string(), "000000000000".to_string())
        );
    }

    #[tokio::test]
    async fn metadata_paths() {
        let e = endpoints(None, "bridge");
        let src = ip("172.17.0.9");
        let c = e.answer("/v4/0f1e-22-my-app", src).await;
        assert_eq!(c.status, StatusCode::OK);
        assert_eq!(c.body["Name"], "my-app");
        assert_eq!(c.body["DockerName"], "ecs-web-1-d0c");
        let t = e.answer("/v4/0f1e-22-my-app/task", src).await;
        assert_eq!(
            t.body["TaskARN"],
            "arn:aws:ecs:us-east-1:000000000000:task/c/abc"
        );
        assert_eq!(
            t.body["Containers"][0]["Networks"][0]["IPv4Addresses"][0],
            "172.17.0.9"
        );
        let v3 = e.answer("/v3/0f1e-22-my-app/task", src).await;
        assert!(v3.body.get("LaunchType").is_none());
        let s = e.answer("/v4/0f1e-22-my-app/stats", src).await;
        assert_eq!(s.body["id"], "d0c");
        let ts = e.answer("/v4/0f1e-22-my-app/task/stats", src).await;
        assert_eq!(ts.body["d0c"]["memory_stats"]["usage"], 1);
        let unknown = e.answer("/v4/nope-my-app", src).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert!(unknown.unknown_id);
        assert_eq!(e.answer("/v9/x", src).await.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn credentials_for_the_task_only() {
        // A role of another account: STS does not look it up in IAM.
        let role = "arn:aws:iam::111111111111:role/app";
        let e = endpoints(Some(role), "bridge");
        let a = e.answer("/v2/credentials/0f1e-22", ip("172.17.0.9")).await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        assert_eq!(a.body["RoleArn"], role);
        let key = a.body["AccessKeyId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(key.starts_with("ASIA"));
        assert!(a.body["SecretAccessKey"]
            .as_str()
            .is_some_and(|s| s.len() == 40));
        assert!(a.body["Token"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(a.body["Expiration"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')));
        let issued = e.sts.credentials(&key).expect("issued by STS");
        assert_eq!(issued.arn, "arn:aws:sts::111111111111:assumed-role/app/abc");
        // Cached: the same credentials again.
        let b = e.answer("/v2/credentials/0f1e-22", ip("172.17.0.9")).await;
        assert_eq!(b.body["AccessKeyId"], key.as_str());
        // Another caller is refused.
        let c = e.answer("/v2/credentials/0f1e-22", ip("172.17.0.10")).await;
        assert_eq!(c.status, StatusCode::FORBIDDEN);
        // Unknown ids.
        let d = e.answer("/v2/credentials/nope", ip("172.17.0.9")).await;
        assert_eq!(d.status, StatusCode::BAD_REQUEST);
        assert!(d.unknown_id);
    }

    #[tokio::test]
    async fn host_network_tasks_cannot_be_told_apart() {
        let e = endpoints(Some("arn:aws:iam::111111111111:role/app"), "host");
        let a = e.answer("/v2/credentials/0f1e-22", ip("192.0.2.2")).await;
        assert_eq!(a.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn no_role_no_credentials() {
        let e = endpoints(None, "bridge");
        let a = e.answer("/v2/credentials/0f1e-22", ip("172.17.0.9")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert!(!a.unknown_id);
    }
}
