#!/usr/bin/env bash
# Where the emulator's CPU goes, independent of how busy the machine is: runs the release binary
# under valgrind's callgrind (instruction counts), (1) from start to the first ListClusters answer,
# (2) for DescribeClusters requests over one connection for DURATION s after a warm-up, and prints the functions
# with the largest inclusive and exclusive costs, per request. 127.0.0.1 only; bounded.
#   bench/profile.sh [binary] (default: target/release/ecs-emulator; build it with bench/api.sh)
# Needs valgrind (Debian: valgrind) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/ecs-emulator}
DURATION=${DURATION:-20}
out=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
auth='AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000'
call() {
  curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/" \
    -H "X-Amz-Target: AmazonEC2ContainerServiceV20141113.$1" -H 'Content-Type: application/x-amz-json-1.1' \
    -H 'X-Amz-Date: 20260101T000000Z' -H "Authorization: $auth" --data "$2"
}
valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" --dump-instr=no \
  "$bin" --ephemeral --listen "127.0.0.1:$port" >"$out/stdout" 2>"$out/stderr" &
vg=$!
trap 'kill $vg 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  [[ $(call ListClusters '{}' 2>/dev/null || true) == 200 ]] && break
  sleep 0.1
done
callgrind_control --dump=startup "$vg" >/dev/null
callgrind_control --zero "$vg" >/dev/null
call CreateCluster '{"clusterName":"bench"}' >/dev/null
call DescribeClusters '{"clusters":["bench"]}' >/dev/null
callgrind_control --zero "$vg" >/dev/null
# One keep-alive connection, as an SDK client would use, for DURATION seconds.
wrk -t1 -c1 -d"${DURATION}s" -s bench/describe_clusters.lua "http://127.0.0.1:$port/" >"$out/wrk.txt"
requests=$(awk '/requests in/ {print $1}' "$out/wrk.txt")
callgrind_control --dump=load "$vg" >/dev/null
kill "$vg"
wait "$vg" 2>/dev/null || true
for f in "$out"/cg.*; do
  case $(grep -m1 '^desc: Trigger' "$f") in
  *startup*) echo "== start-up to the first ListClusters answer: $f" ;;
  *load*) echo "== DescribeClusters load, $requests requests (divide by it for a per-request cost): $f" ;;
  *) continue ;;
  esac
  callgrind_annotate --inclusive=yes "$f" | sed -n '20,70p' | cut -c1-180
  echo "-- exclusive:"
  callgrind_annotate "$f" | sed -n '20,50p' | cut -c1-180
done
echo "callgrind files in $out (callgrind_annotate <file>)"
trap - EXIT
