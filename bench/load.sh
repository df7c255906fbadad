#!/usr/bin/env bash
# Mixed API load (issue 15): CLIENTS (64) concurrent boto3 clients for DURATION (60) seconds
# against one emulator on --runtime simulated; calls per operation, errors by status and code (no
# 5xx is the goal), throughput per 10 s window, RSS every second. BIN=<emulator binary> skips the
# release build. Talks only to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p ecs-emulator
  BIN=target/release/ecs-emulator
fi
python3 bench/load.py "$BIN"
