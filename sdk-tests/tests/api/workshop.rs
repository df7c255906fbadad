//! The workshop runs: fixtures/workshop/workshop.sh (the AWS CLI and the docker CLI only) end to
//! end against an emulator of its own at `--time-scale 30`, in bounded time; after its teardown
//! the emulator holds no task, and no container or EFS mount of it is left. docs/workshop.md cannot rot: its
//! ```bash blocks, in order, are the script byte for byte, and every line of the expected output
//! it shows (```text blocks; `…` stands for what differs between runs) is in the script's output,
//! in the same order.

use sdk_tests::Emulator;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The whole run may take this long (real time) before it is killed.
const LIMIT: Duration = Duration::from_secs(300);

fn script() -> PathBuf {
    sdk_tests::workspace_dir().join("fixtures/workshop/workshop.sh")
}

fn doc() -> String {
    let p = sdk_tests::workspace_dir().join("docs/workshop.md");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The fenced blocks of `markdown` whose info string is `kind`: (line of the fence, code).
fn blocks(markdown: &str, kind: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut code = String::new();
        for (_, l) in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            code.push_str(l);
            code.push('\n');
        }
        if info.trim() == kind {
            out.push((n + 1, code));
        }
    }
    out
}

/// Whitespace runs as one space, trimmed (the AWS CLI's text output separates with tabs).
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where in `lines` (from `from` on) `want` matches a whole line: its parts between `…` appear
/// in that line in order, the first at its start and the last at its end.
fn find_line(lines: &[String], from: usize, want: &str) -> Option<usize> {
    let parts: Vec<String> = want.split('…').map(squash).collect();
    (from..lines.len()).find(|&i| {
        let line = &lines[i];
        let (first, last) = (&parts[0], &parts[parts.len() - 1]);
        if !line.starts_with(first.as_str()) {
            return false;
        }
        let mut at = first.len();
        for (k, p) in parts.iter().enumerate().skip(1) {
            if k == parts.len() - 1 {
                return line.len() >= at + p.len() && line.ends_with(p.as_str());
            }
            match line[at..].find(p.as_str()) {
                Some(i) => at += i + p.len(),
                None => return false,
            }
        }
        parts.len() > 1 || line.len() == first.len() && last == first
    })
}

#[test]
fn expected_lines_match_whole_lines_with_ellipses() {
    let out: Vec<String> = ["== 1. a", "x 14ff74c5f70e y", "abc"]
        .iter()
        .map(|s| squash(s))
        .collect();
    assert_eq!(find_line(&out, 0, "== 1. a"), Some(0));
    assert_eq!(find_line(&out, 0, "x … y"), Some(1));
    assert_eq!(find_line(&out, 0, "x …"), Some(1));
    assert_eq!(find_line(&out, 2, "x …"), None);
    assert_eq!(find_line(&out, 0, "ab"), None, "a whole line, not a prefix");
    assert_eq!(find_line(&out, 0, "a…c"), Some(2));
}

#[test]
fn the_workshop_doc_shows_the_script_verbatim() {
    let script = std::fs::read_to_string(script()).expect("the workshop script");
    let joined: String = blocks(&doc(), "bash").into_iter().map(|(_, c)| c).collect();
    if joined != script {
        let (d, s): (Vec<&str>, Vec<&str>) = (joined.lines().collect(), script.lines().collect());
        let at = d
            .iter()
            .zip(&s)
            .position(|(a, b)| a != b)
            .unwrap_or(d.len().min(s.len()));
        panic!(
            "docs/workshop.md's bash blocks are not fixtures/workshop/workshop.sh: line {} of the \
             script is {:?}, the doc has {:?}",
            at + 1,
            s.get(at),
            d.get(at)
        );
    }
}

#[test]
fn the_workshop_runs_end_to_end_and_leaves_nothing() {
    crate::ecs_docker::ensure_image();
    let emu = Emulator::start_with(&["--time-scale", "30"]);
    let started = Instant::now();
    // GNU timeout kills the script's whole process group when the limit passes.
    let out = Command::new("timeout")
        .args(["-k", "10", &LIMIT.as_secs().to_string(), "bash"])
        .arg(script())
        .arg(emu.endpoint())
        .current_dir(sdk_tests::workspace_dir())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("DOCKER_CONFIG")
        .output()
        .expect("run timeout bash");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("the workshop took {took:?}; its output:\n{stdout}\n--- stderr:\n{stderr}");
    assert!(
        out.status.success(),
        "the workshop failed ({:?} after {took:?}; stderr names the step):\n{stdout}\n--- stderr:\n{stderr}\n--- emulator:\n{}",
        out.status,
        emu.log()
    );

    // The output docs/workshop.md shows, in order.
    let lines: Vec<String> = stdout.lines().map(squash).collect();
    let mut at = 0;
    for (line, text) in blocks(&doc(), "text") {
        for want in text.lines().filter(|l| !l.trim().is_empty()) {
            match find_line(&lines, at, want) {
                Some(i) => at = i + 1,
                None => panic!(
                    "docs/workshop.md:{line}: {want:?} is not in the output (after line {at}):\n{stdout}"
                ),
            }
        }
    }

    // The teardown left nothing: no task in the emulator, no container of it in Docker.
    let state = emu.raw("GET", "/_emulator/state", &[], b"").json();
    let tasks = state["tasks"].as_array().map(Vec::len).unwrap_or_default();
    assert_eq!(tasks, 0, "tasks left: {}", state["tasks"]);
    let owner = state["owner"].as_str().expect("owner").to_string();
    let ps = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=ecs-emulator.owner={owner}"),
        ])
        .output()
        .expect("docker ps");
    assert!(
        String::from_utf8_lossy(&ps.stdout).trim().is_empty(),
        "containers left: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
    // Nor an EFS mount: the instances' mounts went with them.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let data = emu.data_dir().to_string_lossy().into_owned();
    let left: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.contains(" - fuse") && l.contains(&data))
        .collect();
    assert!(left.is_empty(), "EFS mounts left: {left:#?}");
}
