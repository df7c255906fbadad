//! ECS shapes that the service stores and reads back, typed in the model's own form (camelCase
//! member names, enums as the model's strings), so a request member deserializes straight into
//! them and they serialize back into the response unchanged. Members the emulator does not act on
//! are kept in `other` and returned as given.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Deserializes `null` as the type's default (stored rows of older versions wrote `null` where a
/// structure is now expected).
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `Tag`: both members are optional in the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Tag {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `KeyValuePair` (environment variables, attachment details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KeyValuePair {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `ContainerOverride`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<KeyValuePair>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    /// environmentFiles, resourceRequirements: kept as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `TaskOverride`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverride {
    /// Always present in DescribeTasks (an empty list when nothing is overridden).
    #[serde(default)]
    pub container_overrides: Vec<ContainerOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// inferenceAcceleratorOverrides, ephemeralStorage: kept as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl TaskOverride {
    pub fn container(&self, name: &str) -> Option<&ContainerOverride> {
        self.container_overrides
            .iter()
            .find(|o| o.name.as_deref() == Some(name))
    }
}

/// `PlacementConstraint`: `type` is `distinctInstance` or `memberOf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PlacementConstraint {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// `PlacementStrategy`: `type` is `random`, `spread` or `binpack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PlacementStrategy {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl PlacementStrategy {
    pub fn new(kind: &str, field: &str) -> PlacementStrategy {
        PlacementStrategy {
            kind: Some(kind.into()),
            field: Some(field.into()),
        }
    }
}

/// `AwsVpcConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AwsVpcConfiguration {
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    /// ENABLED or DISABLED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_public_ip: Option<String>,
}

/// `NetworkConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awsvpc_configuration: Option<AwsVpcConfiguration>,
}

/// `CapacityProviderStrategyItem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderStrategyItem {
    pub capacity_provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<i64>,
}

/// `LoadBalancer` of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i64>,
    /// advancedConfiguration: kept as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `DeploymentCircuitBreaker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentCircuitBreaker {
    #[serde(default)]
    pub enable: bool,
    #[serde(default)]
    pub rollback: bool,
    /// resetOnHealthyTask, thresholdConfiguration: kept as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `DeploymentAlarms`: CloudWatch alarms that fail (and optionally roll back) a deployment when
/// one goes to ALARM during it (controllers/deployment_alarms.rs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentAlarms {
    #[serde(default)]
    pub alarm_names: Vec<String>,
    #[serde(default)]
    pub enable: bool,
    #[serde(default)]
    pub rollback: bool,
}

/// A load balancer target the scheduler registered for a task (stored with the task).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LbTarget {
    pub target_group_arn: String,
    pub id: String,
    #[serde(default)]
    pub port: Option<u16>,
}

/// Declares a string enum of the model: serialized as the model's string, so rows written when
/// the field was a `String` read back unchanged.
macro_rules! model_enum {
    ($(#[$doc:meta])* $name:ident $(default $default:ident)? { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl From<$name> for Value {
            fn from(v: $name) -> Value {
                Value::from(v.as_str())
            }
        }

        $(impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        })?
    };
}

model_enum!(
    /// A task's `lastStatus` (aws-behaviour.md §1).
    TaskStatus default Pending {
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
    }
);

impl TaskStatus {
    /// Not yet RUNNING: PROVISIONING, PENDING, ACTIVATING.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating
        )
    }
}

model_enum!(
    /// A task's `desiredStatus`.
    DesiredStatus default Running {
        Running = "RUNNING",
        Stopped = "STOPPED",
    }
);

model_enum!(
    /// A container's `lastStatus`.
    ContainerStatus default Pending {
        Pending = "PENDING",
        Running = "RUNNING",
        Stopped = "STOPPED",
    }
);

model_enum!(
    /// `healthStatus` of a task or container.
    HealthStatus {
        Healthy = "HEALTHY",
        Unhealthy = "UNHEALTHY",
        Unknown = "UNKNOWN",
    }
);

model_enum!(
    /// A deployment's `status`.
    DeploymentStatus default Primary {
        Primary = "PRIMARY",
        Active = "ACTIVE",
        Inactive = "INACTIVE",
    }
);

model_enum!(
    /// A deployment's `rolloutState`.
    RolloutState default InProgress {
        InProgress = "IN_PROGRESS",
        Completed = "COMPLETED",
        Failed = "FAILED",
    }
);

model_enum!(
    /// A service's `status`.
    ServiceStatus default Active {
        Active = "ACTIVE",
        Draining = "DRAINING",
        Inactive = "INACTIVE",
    }
);

model_enum!(
    /// `schedulingStrategy`.
    SchedulingStrategy default Replica {
        Replica = "REPLICA",
        Daemon = "DAEMON",
    }
);

model_enum!(
    /// `propagateTags`.
    PropagateTags {
        TaskDefinition = "TASK_DEFINITION",
        Service = "SERVICE",
        None = "NONE",
    }
);

model_enum!(
    /// `deploymentController.type`: who deploys the service's tasks.
    DeploymentControllerType default Ecs {
        Ecs = "ECS",
        CodeDeploy = "CODE_DEPLOY",
        External = "EXTERNAL",
    }
);

model_enum!(
    /// A task set's `status`.
    TaskSetStatus default Active {
        Primary = "PRIMARY",
        Active = "ACTIVE",
        Draining = "DRAINING",
    }
);

model_enum!(
    /// A task set's `stabilityStatus`.
    StabilityStatus default Stabilizing {
        SteadyState = "STEADY_STATE",
        Stabilizing = "STABILIZING",
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_round_trip_in_the_models_form() {
        let o = json!({
            "containerOverrides": [{"name": "app", "command": ["sh"], "environment": [{"name": "A", "value": "1"}],
                "memory": 64, "resourceRequirements": [{"type": "GPU", "value": "1"}]}],
            "taskRoleArn": "arn:aws:iam::0:role/r", "ephemeralStorage": {"sizeInGiB": 30}
        });
        let typed: TaskOverride = serde_json::from_value(o.clone()).expect("override");
        assert_eq!(typed.container("app").and_then(|c| c.memory), Some(64));
        assert_eq!(serde_json::to_value(&typed).expect("json"), o);
        let status: TaskStatus = serde_json::from_value(json!("DEACTIVATING")).expect("status");
        assert_eq!(status, TaskStatus::Deactivating);
        assert_eq!(json!(RolloutState::InProgress), json!("IN_PROGRESS"));
        assert!(serde_json::from_value::<TaskStatus>(json!("NOPE")).is_err());
    }

    #[test]
    fn null_reads_as_the_default() {
        #[derive(Deserialize)]
        struct Row {
            #[serde(default, deserialize_with = "null_as_default")]
            overrides: TaskOverride,
        }
        let row: Row = serde_json::from_value(json!({"overrides": null})).expect("row");
        assert!(row.overrides.container_overrides.is_empty());
    }
}
