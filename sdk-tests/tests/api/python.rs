//! boto3 and the AWS CLI v1 against the emulator (sdk-tests/python/smoke.py).
//!
//! python3, boto3 ≥ 1.42.7 and the AWS CLI must be installed (.ci/run does it): when they are
//! missing this test fails, it never skips.

use sdk_tests::{crate_dir, Emulator};
use std::process::Command;

#[test]
fn boto3_and_aws_cli_smoke() {
    let emu = Emulator::start();
    let script = crate_dir().join("python").join("smoke.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(emu.endpoint())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is not available ({e}): run .ci/run to install python3, boto3 and the AWS CLI")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        panic!("the Python tooling is missing: run .ci/run to install it\n{stderr}");
    }
    assert!(
        out.status.success() && stdout.contains("SMOKE OK"),
        "smoke.py failed ({}):\n{stdout}\n{stderr}\nemulator log:\n{}",
        out.status,
        emu.log()
    );
}
