//! CloudWatch Logs (awsJson 1.1): log groups, streams, events, retention, tags.
//!
//! Timestamps are epoch milliseconds (model type long). Events are stored one row per
//! PutLogEvents batch, keyed by stream and batch sequence, bounded per stream and by retention.
//! The awslogs log driver uses the typed handle [`Logs`] (`registry.handle::<Logs>()`).

mod events;
mod filter;
mod groups;
mod state;
mod streams;

use super::{Deps, Registry};
pub use state::{Logs, StoredEvent};

const SVC: &str = "logs";

pub fn register(r: &mut Registry, deps: &Deps) {
    let logs = std::sync::Arc::new(Logs::open(&deps.store));
    r.sync(SVC, "CreateLogGroup", &logs, groups::create_log_group);
    r.sync(SVC, "DeleteLogGroup", &logs, groups::delete_log_group);
    r.sync(SVC, "DescribeLogGroups", &logs, groups::describe_log_groups);
    r.sync(
        SVC,
        "PutRetentionPolicy",
        &logs,
        groups::put_retention_policy,
    );
    r.sync(
        SVC,
        "DeleteRetentionPolicy",
        &logs,
        groups::delete_retention_policy,
    );
    r.sync(SVC, "TagResource", &logs, groups::tag_resource);
    r.sync(SVC, "UntagResource", &logs, groups::untag_resource);
    r.sync(
        SVC,
        "ListTagsForResource",
        &logs,
        groups::list_tags_for_resource,
    );
    r.sync(SVC, "TagLogGroup", &logs, groups::tag_log_group);
    r.sync(SVC, "UntagLogGroup", &logs, groups::untag_log_group);
    r.sync(SVC, "ListTagsLogGroup", &logs, groups::list_tags_log_group);
    r.sync(SVC, "CreateLogStream", &logs, streams::create_log_stream);
    r.sync(SVC, "DeleteLogStream", &logs, streams::delete_log_stream);
    r.sync(
        SVC,
        "DescribeLogStreams",
        &logs,
        streams::describe_log_streams,
    );
    r.sync(SVC, "PutLogEvents", &logs, events::put_log_events);
    r.sync(SVC, "GetLogEvents", &logs, events::get_log_events);
    r.sync(SVC, "FilterLogEvents", &logs, events::filter_log_events);
    r.provide(logs);
}

#[cfg(test)]
mod tests;
