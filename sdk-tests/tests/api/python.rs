//! Python tools against the emulator: boto3 and the AWS CLI v1 (sdk-tests/python/smoke.py), and
//! ecs-deploy from PyPI (sdk-tests/python/ecs_deploy.py).
//!
//! python3, boto3 ≥ 1.42.7, the AWS CLI and ecs-deploy must be installed (.ci/run does it): when
//! they are missing these tests fail, they never skip.

use sdk_tests::Emulator;

#[test]
fn boto3_and_aws_cli_smoke() {
    let emu = Emulator::start();
    sdk_tests::run_python(&emu, "smoke.py", "SMOKE OK");
}

/// Issue 14's acceptance test: `ecs deploy`, `ecs scale`, `ecs run` and `ecs update` work, and a
/// deploy started while a scale-in is still stopping tasks succeeds.
#[test]
fn ecs_deploy_deploys_scales_runs_and_updates() {
    crate::ecs_docker::ensure_image();
    let emu = Emulator::start();
    sdk_tests::run_python(&emu, "ecs_deploy.py", "ECS-DEPLOY OK");
}
