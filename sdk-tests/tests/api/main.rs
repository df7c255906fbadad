//! One integration-test binary (linking the AWS SDKs is slow): a module per area.

mod control;
