#!/usr/bin/env bash
# RunTask → RUNNING against `docker run`, and RSS with 200 concurrent tasks (issue: ECS on Docker).
set -euo pipefail
cd "$(dirname "$0")/.."
bash fixtures/build-images.sh >/dev/null
cargo build --release -q -p ecs-emulator
python3 bench/runtask.py target/release/ecs-emulator
