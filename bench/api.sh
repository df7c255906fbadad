#!/usr/bin/env bash
# API benchmark: ecs-emulator (release build) against moto_server, in one run.
#   - cold start to the first HTTP 200 of ECS ListClusters (hyperfine, bench/coldstart.sh)
#   - ECS DescribeClusters throughput and latency percentiles (wrk --latency, 16 connections)
#   - RSS of the emulator idle and under that load (/proc/<pid>/status)
# Prints a summary table and writes it to bench/results/<UTC date>.md.
# Everything listens on and talks to 127.0.0.1 only; every step is bounded in time.
#
# Tools: hyperfine and wrk (Debian: apt-get install -y hyperfine wrk), moto_server
# (pip install 'moto[server]'), the AWS CLI (creates the moto cluster), python3, curl.
# Knobs (environment): DURATION (s, 20), CONNECTIONS (16), WRK_THREADS (1), COLD_RUNS (30),
# MOTO_COLD_RUNS (10).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-16}
WRK_THREADS=${WRK_THREADS:-1}
COLD_RUNS=${COLD_RUNS:-30}
MOTO_COLD_RUNS=${MOTO_COLD_RUNS:-10}

for tool in hyperfine wrk python3 aws curl; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
# The real moto_server script, not a pyenv shim (the shim would add ~100 ms to every cold start).
moto=$(pyenv which moto_server 2>/dev/null || command -v moto_server) ||
  { echo "missing moto_server (pip install 'moto[server]')" >&2; exit 1; }

# SOURCE=head (default): benchmark the committed HEAD, exported to /tmp/ecs-emulator-bench-src (the
# work tree may be mid-edit by others); SOURCE=worktree: the work tree as it is. The build shares
# target/ so that only the emulator crate is compiled; the binary is copied out of target/ at once.
# COMMIT=<rev> benchmarks another commit the same way.
SOURCE=${SOURCE:-head}
COMMIT=${COMMIT:-HEAD}
if [[ $SOURCE == head ]]; then
  src=/tmp/ecs-emulator-bench-src
  head=$(git rev-parse "$COMMIT")
  if [[ $(cat "$src/.commit" 2>/dev/null) != "$head" ]]; then
    rm -rf "$src"
    mkdir -p "$src"
    git archive "$head" Cargo.toml Cargo.lock emulator sdk-tests | tar -x -C "$src"
    echo "$head" >"$src/.commit"
  fi
  described="commit $(git rev-parse --short "$head")"
else
  src=$root
  described="work tree at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- emulator || echo ' + uncommitted changes in emulator/')"
fi
echo "== cargo build --release -p ecs-emulator ($described)"
(cd "$src" && CARGO_TARGET_DIR=$root/target cargo build --release -p ecs-emulator)
bin=$(mktemp -d)/ecs-emulator
cp "$root/target/release/ecs-emulator" "$bin"

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp" "$(dirname "$bin")"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
auth='AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000'
ecs_call() { # port operation body → prints "status body"
  curl -s -m 5 -o "$tmp/body" -w '%{http_code}' -X POST "http://127.0.0.1:$1/" \
    -H "X-Amz-Target: AmazonEC2ContainerServiceV20141113.$2" \
    -H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Date: 20260101T000000Z' \
    -H "Authorization: $auth" --data "$3" || true
}
wait_ready() { # port pid
  for _ in $(seq 600); do
    [[ $(ecs_call "$1" ListClusters '{}') == 200 ]] && return 0
    kill -0 "$2" 2>/dev/null || { echo "server exited" >&2; return 1; }
    sleep 0.05
  done
  echo "server on port $1 not ready after 30 s" >&2
  return 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# Samples VmRSS every 50 ms until the stop file appears; writes the maximum to $2.
sample_rss() { # pid out stopfile
  local max=0 v
  while [[ ! -e $3 ]] && kill -0 "$1" 2>/dev/null; do
    v=$(rss_kb "$1" 2>/dev/null || echo 0)
    ((v > max)) && max=$v
    sleep 0.05
  done
  echo "$max" >"$2"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== cold start: ecs-emulator ($COLD_RUNS runs)"
port=$(free_port)
hyperfine -N --warmup 3 --runs "$COLD_RUNS" --export-json "$tmp/cold-emulator.json" \
  "bench/coldstart.sh $port $bin --ephemeral --listen 127.0.0.1:$port"
echo "== cold start: moto_server ($MOTO_COLD_RUNS runs)"
port=$(free_port)
hyperfine -N --warmup 1 --runs "$MOTO_COLD_RUNS" --export-json "$tmp/cold-moto.json" \
  "bench/coldstart.sh $port $moto -H 127.0.0.1 -p $port"

run_load() { # name port pid
  local name=$1 port=$2 pid=$3
  local status
  status=$(ecs_call "$port" DescribeClusters '{"clusters":["bench"]}')
  if [[ $status != 200 ]] || ! grep -q '"clusterName": *"bench"' "$tmp/body"; then
    echo "$name: DescribeClusters answered $status: $(cat "$tmp/body")" >&2
    exit 1
  fi
  echo "== $name: wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency DescribeClusters"
  rm -f "$tmp/stop-$name"
  sample_rss "$pid" "$tmp/rss-peak-$name" "$tmp/stop-$name" &
  local sampler=$!
  local cpu0
  cpu0=$(cpu_ticks "$pid")
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s --latency \
    -s bench/describe_clusters.lua "http://127.0.0.1:$port/" | tee "$tmp/wrk-$name.txt"
  echo "$(($(cpu_ticks "$pid") - cpu0)) $(getconf CLK_TCK)" >"$tmp/cpu-$name"
  touch "$tmp/stop-$name"
  wait "$sampler"
  hwm_kb "$pid" >"$tmp/rss-hwm-$name"
}

echo "== load: ecs-emulator"
port=$(free_port)
"$bin" --ephemeral --listen "127.0.0.1:$port" >"$tmp/emulator.out" 2>"$tmp/emulator.err" &
emu=$!
pids+=("$emu")
wait_ready "$port" "$emu"
sleep 1
rss_kb "$emu" >"$tmp/rss-idle-emulator"
status=$(ecs_call "$port" CreateCluster '{"clusterName":"bench"}')
[[ $status == 200 ]] || { echo "CreateCluster answered $status: $(cat "$tmp/body")" >&2; exit 1; }
run_load emulator "$port" "$emu"
kill "$emu"; wait "$emu" 2>/dev/null || true

echo "== load: moto_server"
port=$(free_port)
"$moto" -H 127.0.0.1 -p "$port" >"$tmp/moto.out" 2>"$tmp/moto.err" &
mpid=$!
pids+=("$mpid")
wait_ready "$port" "$mpid"
sleep 1
rss_kb "$mpid" >"$tmp/rss-idle-moto"
aws --endpoint-url "http://127.0.0.1:$port" ecs create-cluster --cluster-name bench >/dev/null
run_load moto "$port" "$mpid"
kill "$mpid"; wait "$mpid" 2>/dev/null || true

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
date=$(date -u +%Y-%m-%d)
out=bench/results/$date.md
export tmp load_before load_after DURATION CONNECTIONS WRK_THREADS COLD_RUNS MOTO_COLD_RUNS
export described
export cpu="$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores"
export moto_version="$(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?')"
export rustc_version="$(rustc --version)"
export when="$(date -u '+%Y-%m-%d %H:%M UTC')"
python3 - >"$out" <<'PY'
import json, os, re
t = os.environ["tmp"]

def cold(name):
    r = json.load(open(f"{t}/cold-{name}.json"))["results"][0]
    return r["mean"] * 1000, r["min"] * 1000, r["stddev"] * 1000

def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

def wrk(name):
    text = open(f"{t}/wrk-{name}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    pct = {p: ms(v, u) for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
    total = int(re.search(r"(\d+) requests in", text).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return rps, pct, total, int(non2xx.group(1)) if non2xx else 0, errors.group(1) if errors else "none"

def kb(path):
    return int(open(f"{t}/{path}").read().strip() or 0) / 1024

ce, cm = cold("emulator"), cold("moto")
we, wm = wrk("emulator"), wrk("moto")
idle_e, idle_m = kb("rss-idle-emulator"), kb("rss-idle-moto")
peak_e = max(kb("rss-peak-emulator"), 0)
peak_m = max(kb("rss-peak-moto"), 0)
hwm_e, hwm_m = kb("rss-hwm-emulator"), kb("rss-hwm-moto")
ratio = we[0] / wm[0]
def cpu_us(name, total):  # server CPU time (user + system) per request during the wrk run
    ticks, hz = open(f"{t}/cpu-{name}").read().split()
    return int(ticks) / int(hz) / total * 1e6
cpu_e, cpu_m = cpu_us("emulator", we[2]), cpu_us("moto", wm[2])
ok = lambda b: "yes" if b else "**no**"
e = os.environ
print(f"# API benchmark, {e['when']}\n")
print(f"- source: {e['described']}; {e['rustc_version']}, release profile")
print(f"- moto {e['moto_version']} (moto_server)")
print(f"- machine: {e['cpu']}; load average before {e['load_before']}, after {e['load_after']} (shared with other jobs)")
print(f"- cold start: hyperfine -N, {e['COLD_RUNS']} runs (emulator) / {e['MOTO_COLD_RUNS']} runs (moto), start with --ephemeral to the first HTTP 200 of ListClusters (bench/coldstart.sh, includes bash start-up)")
print(f"- load: wrk -t{e['WRK_THREADS']} -c{e['CONNECTIONS']} -d{e['DURATION']}s --latency, ECS DescribeClusters of one cluster (bench/describe_clusters.lua); wrk runs on the same machine\n")
print("| | ecs-emulator | moto_server | goal | met |")
print("|---|---:|---:|---|---|")
print(f"| cold start, mean (ms) | {ce[0]:.1f} ± {ce[2]:.1f} | {cm[0]:.0f} ± {cm[2]:.0f} | < 50 ms | {ok(ce[0] < 50)} |")
print(f"| cold start, min (ms) | {ce[1]:.1f} | {cm[1]:.0f} | | |")
print(f"| DescribeClusters (req/s) | {we[0]:,.0f} | {wm[0]:,.0f} | | |")
print(f"| throughput ratio emulator/moto | {ratio:.0f}× | | ≥ 170× | {ok(ratio >= 170)} |")
print(f"| server CPU per request (µs, user + system) | {cpu_e:.1f} | {cpu_m:.0f} | | |")
print(f"| CPU cost ratio moto/emulator | {cpu_m / cpu_e:.0f}× | | | |")
print(f"| latency p50 (ms) | {we[1].get('50', float('nan')):.3f} | {wm[1].get('50', float('nan')):.2f} | | |")
print(f"| latency p90 (ms) | {we[1].get('90', float('nan')):.3f} | {wm[1].get('90', float('nan')):.2f} | | |")
print(f"| latency p99 (ms) | {we[1].get('99', float('nan')):.3f} | {wm[1].get('99', float('nan')):.2f} | < 1 ms | {ok(we[1].get('99', 1e9) < 1)} |")
print(f"| requests (non-2xx; socket errors) | {we[2]:,} ({we[3]}; {we[4]}) | {wm[2]:,} ({wm[3]}; {wm[4]}) | | |")
print(f"| RSS idle after start (MB) | {idle_e:.1f} | {idle_m:.1f} | < 20 MB | {ok(idle_e < 20)} |")
print(f"| RSS peak under load (MB, sampled / VmHWM) | {peak_e:.1f} / {hwm_e:.1f} | {peak_m:.1f} / {hwm_m:.1f} | | |")
PY
echo
cat "$out"
echo
echo "written to $out"
