//! The documentation runs: every fenced `sh` block of README.md is executed, in order and in one
//! shell, against an emulator of its own, so the commands cannot rot. `run_doc` takes any
//! Markdown file written the same way.
//!
//! - The documented address `127.0.0.1:4566` is replaced by this emulator's.
//! - `cargo run --release -p ecs-emulator -- ARGS` runs the binary under test with ARGS (a
//!   `cargo` on PATH that accepts only that form: the README's commands are the binary's).
//! - A block right after `<!-- readme-test: skip (why) -->` is not run (starting the emulator
//!   itself, the test suite).
//! - `# → text` after a command is its expected output: the block's output must contain the
//!   text (whitespace ignored, as the AWS CLI indents JSON).

use sdk_tests::Emulator;
use std::path::Path;
use std::process::Command;

const SKIP: &str = "<!-- readme-test: skip";

#[derive(Debug)]
struct Block {
    line: usize,
    code: String,
    skipped: bool,
}

fn sh_blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = markdown.lines().enumerate().peekable();
    let mut skip_next = false;
    while let Some((n, line)) = lines.next() {
        let t = line.trim_start();
        if t.starts_with(SKIP) {
            skip_next = true;
            continue;
        }
        let Some(info) = t.strip_prefix("```") else {
            if !t.is_empty() {
                skip_next = false;
            }
            continue;
        };
        let mut code = String::new();
        for (_, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            code.push_str(l);
            code.push('\n');
        }
        if matches!(info.trim(), "sh" | "bash" | "shell" | "console") {
            out.push(Block {
                line: n + 1,
                code,
                skipped: skip_next,
            });
        }
        skip_next = false;
    }
    out
}

/// The `# → …` expectations of a block.
fn expectations(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|l| l.split_once("# → ").map(|(_, e)| e.trim().to_string()))
        .filter(|e| !e.is_empty())
        .collect()
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn blocks_are_found_and_skips_understood() {
    let md = "x\n\n<!-- readme-test: skip (starts it) -->\n```sh\ncargo run\n```\n\n```sh\necho a   # → a\n```\n```text\nno\n```\n";
    let b = sh_blocks(md);
    assert_eq!(b.len(), 2, "{b:?}");
    assert!(b[0].skipped && !b[1].skipped);
    assert_eq!(b[1].line, 8);
    assert_eq!(expectations(&b[1].code), vec!["a"]);
    assert_eq!(squash("[\n  \"A\",\n  1\n]"), "[\"A\",1]");
}

fn run_doc(emu: &Emulator, doc: &Path, shim: &Path) {
    let text = std::fs::read_to_string(doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
    let blocks = sh_blocks(&text);
    assert!(!blocks.is_empty(), "no sh blocks in {}", doc.display());
    let address = format!("127.0.0.1:{}", emu.port());
    let mut script = String::from("set -eu\n");
    let mut expected = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        if b.skipped {
            continue;
        }
        let code = b.code.replace("127.0.0.1:4566", &address);
        script.push_str(&format!(
            "echo '@@block {i} ({}:{})'\n{code}\n",
            doc.file_name().and_then(|f| f.to_str()).unwrap_or("doc"),
            b.line
        ));
        expected.push((i, b.line, expectations(&b.code)));
    }
    let path = format!(
        "{}:{}",
        shim.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(sdk_tests::workspace_dir())
        .env("PATH", path)
        .env("ECS_EMULATOR_BIN_UNDER_TEST", sdk_tests::binary())
        .env("ECS_EMULATOR_ENDPOINT", emu.endpoint())
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{}: a command failed (the last @@block line says which block):\n{stdout}\n--- stderr:\n{stderr}\n--- emulator:\n{}",
        doc.display(),
        emu.log()
    );
    // Each block's output is what follows its marker.
    for (i, line, wants) in expected {
        let marker = format!("@@block {i} (");
        let section = stdout
            .split_once(&marker)
            .map(|(_, rest)| rest.split("@@block ").next().unwrap_or(rest))
            .unwrap_or("");
        for want in wants {
            assert!(
                squash(section).contains(&squash(&want)),
                "{}:{line}: expected {want:?} in the output:\n{section}",
                doc.display()
            );
        }
    }
}

#[test]
fn every_readme_command_runs_as_written() {
    crate::ecs_docker::ensure_image();
    let emu = Emulator::start();
    let shim = tempfile::tempdir().expect("shim dir");
    let cargo = shim.path().join("cargo");
    std::fs::write(
        &cargo,
        "#!/bin/sh\n\
         # The README's `cargo run --release -p ecs-emulator -- ARGS`, as the binary under test.\n\
         if [ \"$1 $2 $3 $4\" != \"run --release -p ecs-emulator\" ]; then\n\
           echo \"readme test: unexpected cargo $*\" >&2; exit 2\n\
         fi\n\
         shift 4\n\
         [ \"${1:-}\" = \"--\" ] && shift\n\
         exec \"$ECS_EMULATOR_BIN_UNDER_TEST\" \"$@\"\n",
    )
    .expect("write the cargo shim");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let root = sdk_tests::workspace_dir();
    run_doc(&emu, &root.join("README.md"), shim.path());
}
