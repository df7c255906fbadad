//! Helpers for the integration tests: spawn the real `ecs-emulator` binary.
