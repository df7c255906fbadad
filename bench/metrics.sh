#!/usr/bin/env bash
# Cost of the metrics publisher (controllers/metrics/) with TASKS (200) running tasks, side by side
# with the reference way of measuring containers: Docker's stats API (`docker stats --no-stream`,
# one stats call per container).
#
# The emulator runs with --time-scale 60, so a publisher pass (one emulated minute) happens every
# real second: 60 times more often than at --time-scale 1. Over WINDOW (30) seconds it reads
#   - the publisher's own account of its passes (GET /_emulator/state → metricsPublisher: wall
#     time of the synchronous work — cgroup reads, computing, the store write — an upper bound of
#     its CPU time);
#   - the whole emulator process's CPU time (/proc/<pid>/stat), for context;
# and prints the cost per pass, the share of one core at this rate and at the real rate of one
# pass a minute (goal: < 3 % of one core on average). Then it times `docker stats --no-stream`
# over the same containers and the CPU dockerd spends answering it.
#
# Tools: docker, the AWS CLI, curl, python3. The test image: bash fixtures/build-images.sh.
# BIN=<path> uses an already built emulator instead of `cargo build --release -p ecs-emulator`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
TASKS=${TASKS:-200}
WINDOW=${WINDOW:-30}
IMAGE=ecs-emulator-test/busybox:latest
for tool in docker aws curl python3; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
docker image inspect "$IMAGE" >/dev/null 2>&1 || bash fixtures/build-images.sh
if [[ -z ${BIN:-} ]]; then
  echo "== cargo build --release -p ecs-emulator"
  cargo build --release -p ecs-emulator
  BIN=$root/target/release/ecs-emulator
fi

tmp=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]]; then
    curl -fs -X POST "http://127.0.0.1:$port/_emulator/reset" >/dev/null 2>&1 || true
    kill "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" --listen "127.0.0.1:$port" --data-dir "$tmp/data" --time-scale 60 \
  --dns-listen 127.0.0.1:0 >"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/_emulator/health" >/dev/null && break; sleep 0.1; done

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=
aws() { command aws --endpoint-url "http://127.0.0.1:$port" --output json "$@"; }
state() { curl -fs "http://127.0.0.1:$port/_emulator/state"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "== $TASKS tasks"
aws ecs create-cluster --cluster-name bench >/dev/null
for _ in 1 2 3 4; do
  aws ecs register-container-instance --cluster bench \
    --instance-identity-document '{"instanceType":"m5.4xlarge","availabilityZone":"us-east-1a"}' >/dev/null
done
aws ecs register-task-definition --family idle --cpu 128 --container-definitions \
  "[{\"name\":\"app\",\"image\":\"$IMAGE\",\"memory\":16,\"command\":[\"sh\",\"-c\",\"exec sleep 3600\"],\"stopTimeout\":2}]" >/dev/null
left=$TASKS
while ((left > 0)); do
  n=$((left > 10 ? 10 : left))
  aws ecs run-task --cluster bench --task-definition idle --count "$n" >/dev/null
  left=$((left - n))
done
start=$(date +%s)
while :; do
  n=$(aws ecs describe-clusters --clusters bench --query 'clusters[0].runningTasksCount' --output text)
  echo "   $n/$TASKS running ($(( $(date +%s) - start )) s)"
  ((n >= TASKS)) && break
  (( $(date +%s) - start > 600 )) && { echo "tasks did not all start in 10 min" >&2; exit 1; }
  sleep 5
done
# Two passes so every container has a CPU baseline.
sleep 3

echo "== the publisher over $WINDOW s (a pass per real second)"
hz=$(getconf CLK_TCK)
s0=$(state); c0=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
sleep "$WINDOW"
s1=$(state); c1=$(cpu_ticks "$pid"); t1=$(date +%s.%N)
python3 - "$s0" "$s1" "$c0" "$c1" "$t0" "$t1" "$hz" "$TASKS" <<'EOF'
import json, sys
s0, s1 = json.loads(sys.argv[1])["metricsPublisher"], json.loads(sys.argv[2])["metricsPublisher"]
c0, c1, t0, t1, hz, tasks = (float(x) for x in sys.argv[3:9])
passes = s1["passes"] - s0["passes"]
busy = s1["busySeconds"] - s0["busySeconds"]
reads = s1["cgroupReads"] - s0["cgroupReads"]
stats_calls = s1["dockerStatsCalls"] - s0["dockerStatsCalls"]
wall = t1 - t0
per_pass = busy / passes
print(f"passes {passes}, containers read {reads} ({reads / passes:.0f} a pass), Docker stats calls {stats_calls}")
print(f"publisher: {per_pass * 1000:.2f} ms a pass; {busy / wall * 100:.2f} % of a core at one pass a second;"
      f" {per_pass / 60 * 100:.4f} % of a core at one pass a minute (--time-scale 1)")
print(f"whole emulator process: {(c1 - c0) / hz / wall * 100:.1f} % of a core (agent, scheduler, alarms, publisher)")
EOF

echo "== reference: docker stats --no-stream over the same $TASKS containers"
dockerd=$(pgrep -xo dockerd || true)
d0=${dockerd:+$(cpu_ticks "$dockerd")}
ts=$(date +%s.%N)
n=$(docker ps -q --filter "label=ecs-emulator.owner=$(state | python3 -c 'import json,sys; print(json.load(sys.stdin)["owner"])')" | xargs docker stats --no-stream --format '{{.ID}}' | wc -l)
te=$(date +%s.%N)
d1=${dockerd:+$(cpu_ticks "$dockerd")}
python3 - "$ts" "$te" "$n" "${d0:-0}" "${d1:-0}" "$hz" <<'EOF'
import sys
ts, te, n, d0, d1, hz = (float(x) for x in sys.argv[1:7])
print(f"docker stats: {n:.0f} containers in {te - ts:.2f} s wall; dockerd CPU {(d1 - d0) / hz:.2f} s"
      " (0 when dockerd is not visible from here)")
EOF
