//! The AWS services: state plus handlers, plain data in and out. One folder per service.
//!
//! A handler takes the call's context and its input as model-shaped JSON (keys are the model's
//! member names) and returns the output the same way, or an [`AwsError`] naming a model error.

pub mod application_autoscaling;
pub mod autoscaling;
pub mod cloudwatch;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod efs;
pub mod elb;
pub mod elbv2;
pub mod iam;
pub mod input;
pub mod logs;
pub mod page;
pub mod servicediscovery;
pub mod ssm;
pub mod sts;

use crate::clock::Clock;
use crate::config::Config;
use crate::protocol::AwsError;
use crate::store::Store;
use futures::future::BoxFuture;
use serde_json::Value;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

/// Who calls, where, and when.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub account: String,
    pub region: String,
    pub request_id: String,
    /// Emulated time of the call, epoch seconds.
    pub now: f64,
    /// The access key that signed the request, when signed.
    pub access_key: Option<String>,
}

impl Ctx {
    /// The key prefix of this (account, region)'s rows: "<account>/<region>/".
    pub fn scope(&self) -> String {
        format!("{}/{}/", self.account, self.region)
    }

    /// An ARN in this account and region.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            self.region, self.account
        )
    }
}

pub type HandlerResult = Result<Value, AwsError>;

type SyncFn = dyn Fn(&Ctx, Value) -> HandlerResult + Send + Sync;
type AsyncFn = dyn Fn(Ctx, Value) -> BoxFuture<'static, HandlerResult> + Send + Sync;

/// A registered operation.
#[derive(Clone)]
pub enum Handler {
    /// Answers from state at once (most operations).
    Sync(Arc<SyncFn>),
    /// Waits on something (Docker, the network, a controller).
    Async(Arc<AsyncFn>),
}

impl Handler {
    pub async fn call(&self, ctx: Ctx, input: Value) -> HandlerResult {
        match self {
            Handler::Sync(f) => f(&ctx, input),
            Handler::Async(f) => f(ctx, input).await,
        }
    }
}

/// Every implemented operation, by (service, operation), and the services' typed handles.
#[derive(Default)]
pub struct Registry {
    handlers: HashMap<&'static str, HashMap<&'static str, Handler>>,
    handles: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Registry {
    /// Makes a service's state reachable by type, for other services, data planes and controllers
    /// (e.g. the registry's HTTP layer asks for ECR's state). Services meet through these typed
    /// handles, never through HTTP.
    pub fn provide<T: Any + Send + Sync>(&mut self, handle: Arc<T>) {
        self.handles.insert(TypeId::of::<T>(), handle);
    }

    pub fn handle<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.handles
            .get(&TypeId::of::<T>())?
            .clone()
            .downcast::<T>()
            .ok()
    }

    /// Registers a synchronous handler: `f(&state, &ctx, input)`.
    pub fn sync<S: Send + Sync + 'static>(
        &mut self,
        service: &'static str,
        operation: &'static str,
        state: &Arc<S>,
        f: fn(&S, &Ctx, Value) -> HandlerResult,
    ) {
        let state = state.clone();
        self.insert(
            service,
            operation,
            Handler::Sync(Arc::new(move |ctx, input| f(&state, ctx, input))),
        );
    }

    /// Registers an asynchronous handler: `f(state, ctx, input).await`.
    pub fn asynchronous<S, Fut>(
        &mut self,
        service: &'static str,
        operation: &'static str,
        state: &Arc<S>,
        f: fn(Arc<S>, Ctx, Value) -> Fut,
    ) where
        S: Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let state = state.clone();
        self.insert(
            service,
            operation,
            Handler::Async(Arc::new(move |ctx, input| {
                Box::pin(f(state.clone(), ctx, input))
            })),
        );
    }

    fn insert(&mut self, service: &'static str, operation: &'static str, handler: Handler) {
        debug_assert!(
            crate::protocol::model::model(service)
                .is_some_and(|m| m.operations.contains_key(operation)),
            "{service}:{operation} is not in the model"
        );
        self.handlers
            .entry(service)
            .or_default()
            .insert(operation, handler);
    }

    pub fn get(&self, service: &str, operation: &str) -> Option<&Handler> {
        self.handlers.get(service)?.get(operation)
    }

    /// Implemented operations of a service, sorted.
    pub fn implemented(&self, service: &str) -> Vec<&'static str> {
        let mut ops: Vec<&'static str> = self
            .handlers
            .get(service)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        ops.sort_unstable();
        ops
    }
}

/// What services are built from.
pub struct Deps {
    pub store: Arc<Store>,
    pub clock: Clock,
    pub config: Config,
}

impl Deps {
    /// Ephemeral dependencies for unit tests.
    pub fn for_tests() -> Deps {
        let config = Config::for_tests();
        Deps {
            store: Store::memory(),
            clock: Clock::new(1.0),
            config,
        }
    }
}

impl Ctx {
    /// A context in the default account and region, for unit tests.
    pub fn for_tests() -> Ctx {
        Ctx {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            request_id: "test-request".into(),
            now: 1_767_225_600.0,
            access_key: Some("test".into()),
        }
    }
}

/// Random lowercase hex, for resource ids.
pub fn random_hex(len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_lookup_with_borrowed_strings() {
        let mut r = Registry::default();
        let state = Arc::new(());
        r.sync("ecs", "ListClusters", &state, |_, _, _| Ok(Value::Null));
        let op = String::from("ListClusters");
        assert!(r.get("ecs", &op).is_some());
        assert!(r.get("ecs", "CreateCluster").is_none());
        assert_eq!(r.implemented("ecs"), vec!["ListClusters"]);
        assert_eq!(random_hex(17).len(), 17);
    }
}
