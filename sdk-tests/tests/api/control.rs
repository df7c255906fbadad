//! The control API under /_emulator.

use sdk_tests::Emulator;

#[test]
fn health_answers_running() {
    let emu = Emulator::start();
    let r = emu.raw("GET", "/_emulator/health", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "running", "{v}");
    assert_eq!(v["durable"], true, "{v}");
}
