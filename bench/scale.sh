#!/usr/bin/env bash
# Scale on --runtime simulated (issue 8): 1,000 tasks on 100 virtual instances (time, RSS, RunTask
# p50/p99), and p99 of the read paths and the scheduler pass with 10,000 task definition revisions,
# 1,000+ tasks, 100 services and 100 instances, against an almost empty emulator. No Docker needed.
# BIN=<emulator binary> skips the build. ROUNDS (default 300) samples per call and phase.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p ecs-emulator
  BIN=target/release/ecs-emulator
fi
python3 bench/scale.py "$BIN"
