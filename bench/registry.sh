#!/usr/bin/env bash
# docker push / docker pull of a ~200 MB image FROM scratch: ecs-emulator's ECR registry (/v2 on
# its main port) against Debian's docker-registry (the CNCF distribution registry), on the same
# machine in the same run (issue "ECR: … a real registry"). Goal: ≥ 1.0× its throughput, flat memory.
#
# Each repetition starts both registries fresh (new port, new storage dir), so Docker's
# per-registry layer metadata never turns a push into "Layer already exists" / "Mounted from",
# and checks that every layer was really pushed and really pulled. Between push and pull the
# image is removed by id (and our labelled images pruned) so no layer is cached locally.
# Also times the raw blob path with curl (one 200 MB blob: streamed PATCH + PUT ?digest, GET),
# which leaves out Docker's gzip and layer extraction, both of which cost the same against
# either registry. RSS of each registry process is sampled every 100 ms during every phase.
#
#   bench/registry.sh            # REPS=3 by default; writes bench/results/registry-<date>.md
# Env: REPS (3), LAYERS_MB ("80 60 40 20"), BLOB_MB (200).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
REPS=${REPS:-3}
LAYERS_MB=${LAYERS_MB:-"80 60 40 20"}
BLOB_MB=${BLOB_MB:-200}
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
export DOCKER_CLI_HINTS=false

if ! command -v docker-registry >/dev/null || ! [ -x /bin/busybox ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry busybox-static >/dev/null
fi
for c in docker aws curl python3 sha256sum; do
  command -v "$c" >/dev/null || { echo "bench/registry.sh needs $c" >&2; exit 1; }
done

echo "building the emulator (release)…" >&2
cargo build --release -q -p ecs-emulator
emu_bin="$root/target/release/ecs-emulator"

work=$(mktemp -d /tmp/registry-bench.XXXXXX)
img_src=ecs-emulator-bench/registry:src
label=ecs-emulator-bench=registry
pids=()
logins=()
sampler=""

cleanup() {
  set +e
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for h in "${logins[@]}"; do docker logout "$h" >/dev/null 2>&1; done
  for id in $(docker images -q --filter "label=$label" | sort -u); do docker rmi -f "$id" >/dev/null 2>&1; done
  docker image prune -f --filter "label=$label" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }

# --- the test image: busybox plus random-data layers, FROM scratch --------------------------
echo "building the test image…" >&2
ctx="$work/ctx"
mkdir -p "$ctx/bb"
cp /bin/busybox "$ctx/bb/busybox"
head -c 4096 /dev/urandom >"$ctx/bb/marker"   # a layer of our own, shared with no other image
{
  echo "FROM scratch"
  echo "LABEL $label"
  echo "COPY bb/ /bin/"
  i=0
  for mb in $LAYERS_MB; do
    i=$((i + 1))
    head -c "${mb}M" /dev/urandom >"$ctx/data$i"
    echo "COPY data$i /data/$i"
  done
  echo 'CMD ["/bin/busybox", "sh"]'
} >"$ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$img_src" "$ctx" >/dev/null 2>"$work/build.err" \
  || { cat "$work/build.err" >&2; exit 1; }
img_id=$(docker image inspect -f '{{.Id}}' "$img_src")
img_bytes=$(docker image inspect -f '{{.Size}}' "$img_src")
nlayers=$(docker image inspect -f '{{len .RootFS.Layers}}' "$img_src")
docker save -o "$work/image.tar" "$img_src"
rm -f "$ctx"/data*
head -c "${BLOB_MB}M" /dev/urandom >"$work/blob.bin"
blob_bytes=$(stat -c %s "$work/blob.bin")
blob_digest="sha256:$(sha256sum "$work/blob.bin" | cut -d' ' -f1)"

remove_image() {   # every tag of the image, by id, then prune ours: no layer stays cached
  docker rmi -f "$img_id" >/dev/null 2>&1 || true
  docker image prune -f --filter "label=$label" >/dev/null 2>&1 || true
  if docker image inspect "$img_id" >/dev/null 2>&1; then
    echo "image $img_id still present after rmi" >&2; exit 1
  fi
}
ensure_image() {
  docker image inspect "$img_id" >/dev/null 2>&1 || docker load -q -i "$work/image.tar" >/dev/null
}

# --- RSS sampling ------------------------------------------------------------------------------
start_sampler() {  # pid file
  ( while [ -r "/proc/$1/status" ]; do
      awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || true
      sleep 0.1
    done ) >"$2" &
  sampler=$!
}
stop_sampler() {
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  sampler=""
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
max_of() { sort -n "$1" | tail -1; }

# --- the two registries ------------------------------------------------------------------------
start_emulator() {  # sets pid port host auth
  local dir="$work/emu-$1"
  mkdir -p "$dir"
  "$emu_bin" --listen 127.0.0.1:0 --data-dir "$dir/data" >"$dir/out" 2>"$dir/err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do
    grep -q "ready on" "$dir/out" 2>/dev/null && break
    sleep 0.1
  done
  port=$(sed -n 's/.*ready on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/out" | head -1)
  [ -n "$port" ] || { echo "emulator did not start" >&2; cat "$dir/err" >&2; exit 1; }
  host="localhost:$port"
  aws --endpoint-url "http://127.0.0.1:$port" ecr create-repository --repository-name bench >/dev/null
  local pw
  pw=$(aws --endpoint-url "http://127.0.0.1:$port" ecr get-login-password)
  echo "$pw" | docker login --username AWS --password-stdin "$host" >/dev/null 2>&1
  logins+=("$host")
  auth=(-u "AWS:$pw")
}

start_distribution() {  # sets pid port host auth
  local dir="$work/reg-$1"
  mkdir -p "$dir/storage"
  port=$(free_port)
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  docker-registry serve "$dir/config.yml" >"$dir/out" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" && break
    sleep 0.1
  done
  curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" || { echo "docker-registry did not start" >&2; cat "$dir/out" >&2; exit 1; }
  host="localhost:$port"
  auth=()
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# --- one repetition against one registry -------------------------------------------------------
declare -A push_s pull_s bpush_s bpull_s idle_kb push_kb pull_kb bpush_kb bpull_kb hwm
run_one() {  # kind(emu|reg) rep
  local kind=$1 rep=$2 out="$work/$1-$2"
  if [ "$kind" = emu ]; then start_emulator "$rep"; else start_distribution "$rep"; fi
  local ref="$host/bench:r$rep" t0 t1 n
  ensure_image
  docker tag "$img_id" "$ref"
  idle_kb[$kind,$rep]=$(rss_kb "$pid")

  start_sampler "$pid" "$out.push.rss"
  t0=$(now)
  docker push "$ref" >"$out.push.log" 2>&1 || { cat "$out.push.log" >&2; exit 1; }
  t1=$(now)
  stop_sampler
  push_s[$kind,$rep]=$(elapsed "$t0" "$t1")
  push_kb[$kind,$rep]=$(max_of "$out.push.rss")
  n=$(grep -c ': Pushed' "$out.push.log" || true)
  [ "$n" = "$nlayers" ] || { echo "$kind: $n of $nlayers layers pushed:" >&2; cat "$out.push.log" >&2; exit 1; }

  remove_image
  start_sampler "$pid" "$out.pull.rss"
  t0=$(now)
  docker pull "$ref" >"$out.pull.log" 2>&1 || { cat "$out.pull.log" >&2; exit 1; }
  t1=$(now)
  stop_sampler
  pull_s[$kind,$rep]=$(elapsed "$t0" "$t1")
  pull_kb[$kind,$rep]=$(max_of "$out.pull.rss")
  n=$(grep -c ': Pull complete' "$out.pull.log" || true)
  [ "$n" = "$nlayers" ] || { echo "$kind: $n of $nlayers layers pulled:" >&2; cat "$out.pull.log" >&2; exit 1; }
  [ "$(docker image inspect -f '{{.Id}}' "$ref")" = "$img_id" ] || { echo "$kind: pulled a different image" >&2; exit 1; }
  remove_image

  # The raw blob path: POST, one streamed PATCH of the whole blob, PUT ?digest; then GET.
  local base="http://127.0.0.1:$port" loc
  start_sampler "$pid" "$out.bpush.rss"
  t0=$(now)
  loc=$(curl -sSf "${auth[@]}" -X POST -o /dev/null -D - "$base/v2/bench/blobs/uploads/" \
    | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  [[ $loc == /* ]] && loc="$base$loc"
  loc=$(curl -sSf "${auth[@]}" -X PATCH -H 'Expect:' -H 'Content-Type: application/octet-stream' \
    -T "$work/blob.bin" -o /dev/null -D - "$loc" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  [[ $loc == /* ]] && loc="$base$loc"
  if [[ $loc == *\?* ]]; then loc="$loc&digest=$blob_digest"; else loc="$loc?digest=$blob_digest"; fi
  curl -sSf "${auth[@]}" -X PUT -H 'Content-Length: 0' -o /dev/null "$loc"
  t1=$(now)
  stop_sampler
  bpush_s[$kind,$rep]=$(elapsed "$t0" "$t1")
  bpush_kb[$kind,$rep]=$(max_of "$out.bpush.rss")

  start_sampler "$pid" "$out.bpull.rss"
  t0=$(now)
  got=$(curl -sSf "${auth[@]}" -o /dev/null -w '%{size_download}' "$base/v2/bench/blobs/$blob_digest")
  t1=$(now)
  stop_sampler
  [ "$got" = "$blob_bytes" ] || { echo "$kind: GET blob returned $got bytes" >&2; exit 1; }
  bpull_s[$kind,$rep]=$(elapsed "$t0" "$t1")
  bpull_kb[$kind,$rep]=$(max_of "$out.bpull.rss")

  hwm[$kind,$rep]=$(hwm_kb "$pid")
  stop_pid "$pid"
  echo "  $kind rep $rep: push ${push_s[$kind,$rep]} s, pull ${pull_s[$kind,$rep]} s, blob PATCH+PUT ${bpush_s[$kind,$rep]} s, blob GET ${bpull_s[$kind,$rep]} s, VmHWM ${hwm[$kind,$rep]} kB" >&2
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "image: $nlayers layers, $img_bytes bytes; raw blob $blob_bytes bytes; load average $load_before" >&2
for rep in $(seq "$REPS"); do
  # Alternate which registry goes first, so neither always gets the warmer page cache.
  if [ $((rep % 2)) = 1 ]; then order="emu reg"; else order="reg emu"; fi
  for kind in $order; do run_one "$kind" "$rep"; done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------------------------
report=$(python3 - "$REPS" "$img_bytes" "$blob_bytes" "$nlayers" "$load_before" "$load_after" <<PY
import statistics, sys
reps, img, blob, nl = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = {}
for line in """$(for k in emu reg; do for r in $(seq "$REPS"); do
  echo "$k $r ${push_s[$k,$r]} ${pull_s[$k,$r]} ${bpush_s[$k,$r]} ${bpull_s[$k,$r]} ${idle_kb[$k,$r]} ${push_kb[$k,$r]} ${pull_kb[$k,$r]} ${bpush_kb[$k,$r]} ${bpull_kb[$k,$r]} ${hwm[$k,$r]}"
done; done)""".strip().splitlines():
    k, r, *v = line.split()
    data.setdefault(k, []).append([float(x) for x in v])
names = {"emu": "ecs-emulator (ECR /v2)", "reg": "docker-registry 2.8 (Debian)"}
MB = 1e6
def med(k, i): return statistics.median(row[i] for row in data[k])
def mx(k, i): return max(row[i] for row in data[k]) / 1024
rows = []
for k in ("emu", "reg"):
    rows.append((names[k],
        img / MB / med(k, 0), img / MB / med(k, 1),
        blob / MB / med(k, 2), blob / MB / med(k, 3),
        statistics.median(row[4] for row in data[k]) / 1024,
        mx(k, 5), mx(k, 6), mx(k, 7), mx(k, 8), mx(k, 9)))
out = []
out.append(f"Image: {nl} layers FROM scratch (busybox + random data), {img/MB:.1f} MB uncompressed; raw blob: {blob/MB:.1f} MB of random data.")
out.append(f"Median of {reps} runs each, MB = 10^6 bytes. Load average before/after: {sys.argv[5]} / {sys.argv[6]} (2 cores, shared with other agents).")
out.append("")
out.append("| registry | docker push MB/s | docker pull MB/s | blob PATCH+PUT MB/s | blob GET MB/s | idle RSS MiB | max RSS push | max RSS pull | max RSS blob PATCH | max RSS blob GET | peak VmHWM MiB |")
out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    out.append(f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.1f} | {r[7]:.1f} | {r[8]:.1f} | {r[9]:.1f} | {r[10]:.1f} |")
e, g = rows
out.append("")
out.append(f"Emulator / docker-registry: docker push {e[1]/g[1]:.2f}×, docker pull {e[2]/g[2]:.2f}×, blob upload {e[3]/g[3]:.2f}×, blob download {e[4]/g[4]:.2f}×.")
out.append("")
out.append("Per run (seconds: push, pull, blob PATCH+PUT, blob GET; VmHWM MiB):")
out.append("")
for k in ("emu", "reg"):
    for i, row in enumerate(data[k], 1):
        out.append(f"- {names[k]} run {i}: {row[0]:.2f}, {row[1]:.2f}, {row[2]:.2f}, {row[3]:.2f}; {row[9]/1024:.1f}")
print("\n".join(out))
PY
)
echo
echo "$report"
mkdir -p bench/results
res="bench/results/registry-$(date +%Y-%m-%d).md"
{
  echo "# Registry (ECR): docker push/pull against docker-registry — $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Command: \`bench/registry.sh\` (commit $(git rev-parse --short HEAD), $(docker-registry --version 2>/dev/null | awk '{print $2, $3}'), Docker server $(docker version -f '{{.Server.Version}}' 2>/dev/null), storage driver $(docker info -f '{{.Driver}}' 2>/dev/null))."
  echo
  echo "$report"
} >"$res"
echo "wrote $res" >&2
