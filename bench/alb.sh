#!/usr/bin/env bash
# ALB data-plane benchmark, in one run against the same two targets:
#   1. directly (wrk against one target's port),
#   2. through the emulator's ALB listener (release build, ip targets 127.0.0.1:<port>),
#   3. through nginx configured as a keep-alive round-robin reverse proxy to the same targets.
# TARGETS=nginx (default): the targets are one more Debian nginx serving a static file on two
# ports (keep-alive, so the target is not the bottleneck); TARGETS=busybox: two busybox httpd
# containers (one request per connection: the target is the bottleneck). NGINX_WORKERS (1): the
# proxy nginx's worker_processes.
# wrk --latency, CONNECTIONS (64) connections, DURATION (20) seconds each; prints requests/s and
# p99 latency for each, the proxy's CPU time per request (user + system, from /proc; the
# figure least disturbed by other jobs on a shared machine), and the ALB/nginx ratios (goal: ALB
# ≥ nginx's requests/s, p99 ≤ 1.2×).
# Everything listens on 127.0.0.1 only. The emulator runs with --runtime simulated: ip targets need
# no task, and the run leaves nothing in Docker.
# STAT=1: counts the proxies' context switches, CPU migrations and system calls per request (perf stat).
# PROFILE=<file>: records the emulator with `perf record --call-graph dwarf` during the ALB run,
# and nginx's workers to <file>.nginx during its run (PERF_RECORD_ARGS replaces --call-graph dwarf; Debian: linux-perf;
# a build with CARGO_PROFILE_RELEASE_DEBUG=line-tables-only names the functions).
#
# Tools: docker, wrk, nginx (Debian: apt-get install -y wrk nginx), the AWS CLI, curl, python3.
# The test image: bash fixtures/build-images.sh (ecs-emulator-test/busybox:latest).
# BIN=<path> uses an already built emulator instead of `cargo build --release -p ecs-emulator`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-2}
IMAGE=ecs-emulator-test/busybox:latest
for tool in docker wrk nginx aws curl python3; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
docker image inspect "$IMAGE" >/dev/null 2>&1 || bash fixtures/build-images.sh

if [[ -z ${BIN:-} ]]; then
  echo "== cargo build --release -p ecs-emulator"
  cargo build --release -p ecs-emulator
  BIN=$root/target/release/ecs-emulator
fi
bin=$(mktemp -d)/ecs-emulator
cp "$BIN" "$bin"

tmp=$(mktemp -d)
pids=()
containers=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  [[ -f $tmp/nginx.pid ]] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  [[ -f $tmp/targets/nginx.pid ]] && kill "$(cat "$tmp/targets/nginx.pid")" 2>/dev/null || true
  rm -rf "$tmp" "$(dirname "$bin")"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

TARGETS=${TARGETS:-nginx}
NGINX_WORKERS=${NGINX_WORKERS:-1}
echo "== targets ($TARGETS)"
ports=()
if [[ $TARGETS == nginx ]]; then
  mkdir -p "$tmp/www" "$tmp/targets"
  echo hello >"$tmp/www/index.html"
  chmod 755 "$tmp" "$tmp/www" && chmod 644 "$tmp/www/index.html" # nginx workers run as www-data
  ports=("$(free_port)" "$(free_port)")
  cat >"$tmp/targets/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/targets/nginx.pid;
error_log $tmp/targets/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:${ports[0]}; root $tmp/www; }
  server { listen 127.0.0.1:${ports[1]}; root $tmp/www; }
}
EOF
  nginx -c "$tmp/targets/nginx.conf" -p "$tmp/targets"
fi
for name in a b; do
  [[ $TARGETS == nginx ]] && break
  c=$(docker run -d --rm -p 127.0.0.1::8080 "$IMAGE" sh -c \
    "mkdir -p /www && echo hello-$name > /www/index.html && exec httpd -f -p 8080 -h /www")
  containers+=("$c")
  ports+=("$(docker port "$c" 8080/tcp | head -1 | sed 's/.*://')")
done
for p in "${ports[@]}"; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$p/" >/dev/null && break; sleep 0.05; done
done

echo "== emulator and ALB"
main=$(free_port)
listener_port=$(free_port)
"$bin" --listen "127.0.0.1:$main" --ephemeral --time-scale 10 --runtime simulated >"$tmp/emu.out" 2>"$tmp/emu.log" &
emulator_pid=$!
pids+=($emulator_pid)
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$main/_emulator/health" >/dev/null && break; sleep 0.05; done
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
export AWS_ENDPOINT_URL=http://127.0.0.1:$main
subnets=$(aws ec2 describe-subnets --query 'Subnets[0:2].SubnetId' --output text)
vpc=$(aws ec2 describe-vpcs --query 'Vpcs[0].VpcId' --output text)
lb=$(aws elbv2 create-load-balancer --name bench --subnets $subnets \
  --query 'LoadBalancers[0].LoadBalancerArn' --output text)
tg=$(aws elbv2 create-target-group --name bench --protocol HTTP --port 8080 --vpc-id "$vpc" \
  --target-type ip --health-check-interval-seconds 5 --health-check-timeout-seconds 2 \
  --healthy-threshold-count 2 --query 'TargetGroups[0].TargetGroupArn' --output text)
aws elbv2 create-listener --load-balancer-arn "$lb" --protocol HTTP --port "$listener_port" \
  --default-actions "Type=forward,TargetGroupArn=$tg" >/dev/null
aws elbv2 register-targets --target-group-arn "$tg" \
  --targets "Id=127.0.0.1,Port=${ports[0]}" "Id=127.0.0.1,Port=${ports[1]}"
aws elbv2 wait target-in-service --target-group-arn "$tg"
alb_addr=$(curl -s "http://127.0.0.1:$main/_emulator/state" |
  python3 -c 'import json,sys; print(list(json.load(sys.stdin)["loadBalancerListeners"].values())[0])')

echo "== nginx"
nginx_port=$(free_port)
cat >"$tmp/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream targets { server 127.0.0.1:${ports[0]}; server 127.0.0.1:${ports[1]}; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://targets;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
nginx -c "$tmp/nginx.conf" -p "$tmp"
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$nginx_port/" >/dev/null && break; sleep 0.05; done

switches() { # pid… → their threads' voluntary and involuntary context switches
  local v=0 n=0 pid a b
  for pid in "$@"; do
    read -r a b < <(cat /proc/"$pid"/task/*/status 2>/dev/null |
      awk '/^voluntary_ctxt/ {v += $2} /^nonvoluntary_ctxt/ {n += $2} END {print v + 0, n + 0}')
    v=$((v + a)) n=$((n + b))
  done
  echo "$v $n"
}
cpu_ticks() { # pid… → their user+system CPU time, in clock ticks
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
proxy_pids() { # name → the processes doing the proxying
  case $1 in
    alb) echo "$emulator_pid" ;;
    nginx) pgrep -P "$(cat "$tmp/nginx.pid")" | tr '\n' ' ' ;;
  esac
}
run() { # name url → "name req/s p99 cpu-µs-per-request"
  local perf= before after pids
  pids=$(proxy_pids "$1")
  before=$(cpu_ticks $pids)
  local switched_before
  switched_before=$(switches $pids)
  if [[ $1 != direct && -n ${PROFILE:-} ]]; then
    local out=$PROFILE
    [[ $1 == nginx ]] && out=$PROFILE.nginx
    perf record -F 999 ${PERF_RECORD_ARGS:---call-graph dwarf} -o "$out" -p "$(echo $pids | tr ' ' ',')" -- sleep "$DURATION" 2>/dev/null &
    perf=$!
  elif [[ -n ${STAT:-} && -n $pids ]]; then
    perf stat -x, -e context-switches,cpu-migrations,raw_syscalls:sys_enter -p "$(echo $pids | tr ' ' ',')" \
      -o "$tmp/$1.stat" -- sleep "$DURATION" 2>/dev/null &
    perf=$!
  fi
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$2" >"$tmp/$1.wrk"
  local rps p99 errors
  rps=$(awk '/^Requests\/sec/ {print $2}' "$tmp/$1.wrk")
  p99=$(awk '$1 == "99%" {print $2}' "$tmp/$1.wrk")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$tmp/$1.wrk" | tr '\n' ' ')
  [[ -n $perf ]] && wait "$perf"
  after=$(cpu_ticks $pids)
  local requests cpu_us=-
  requests=$(awk '/requests in/ {print $1}' "$tmp/$1.wrk")
  [[ -n $pids ]] && cpu_us=$(python3 -c "print(f'{($after - $before) / $(getconf CLK_TCK) * 1e6 / max($requests, 1):.1f}')")
  if [[ -f $tmp/$1.stat ]]; then # context switches and migrations per request
    errors="$(awk -F, -v n="$requests" '$3 ~ /context-switches|cpu-migrations|sys_enter/ {name = $3; sub(/raw_syscalls:sys_enter/, "syscalls", name); printf "%s/request %.3f ", name, $1 / n}' "$tmp/$1.stat")${errors:-}"
    read -r v0 n0 <<<"$switched_before"
    read -r v1 n1 < <(switches $pids)
    errors="voluntary/request $(python3 -c "print(f'{($v1 - $v0) / max($requests, 1):.3f} involuntary/request {($n1 - $n0) / max($requests, 1):.3f}')") ${errors:-}"
  fi
  echo "$1 $rps $p99 $cpu_us ${errors:-}"
}
echo "== wrk -c$CONNECTIONS -d${DURATION}s"
results=()
results+=("$(run direct "http://127.0.0.1:${ports[0]}/")")
results+=("$(run alb "http://$alb_addr/")")
results+=("$(run nginx "http://127.0.0.1:$nginx_port/")")
echo
printf '%-8s %12s %10s %14s  %s\n' path requests/s p99 'CPU µs/request' errors
for r in "${results[@]}"; do
  read -r name rps p99 cpu rest <<<"$r"
  printf '%-8s %12s %10s %14s  %s\n' "$name" "$rps" "$p99" "$cpu" "$rest"
done
python3 - "${results[@]}" <<'EOF'
import sys
def ms(v):
    for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
    return float(v)
rows = {r.split()[0]: r.split() for r in sys.argv[1:]}
alb, ngx = rows["alb"], rows["nginx"]
print(f"\nALB/nginx: requests/s {float(alb[1]) / float(ngx[1]):.2f}x (goal >= 1.0), "
      f"p99 {ms(alb[2]) / ms(ngx[2]):.2f}x (goal <= 1.2), "
      f"CPU per request {float(alb[3]) / float(ngx[3]):.2f}x")
EOF
