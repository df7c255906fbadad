#!/usr/bin/env bash
# Instructions per request through an ALB listener, independent of how busy the machine is:
# runs each given release binary under valgrind's callgrind with an HTTP listener forwarding to
# one target (Debian's nginx serving a static file on 127.0.0.1), sends REQUESTS requests after a
# warm-up over CONNECTIONS keep-alive connections (python3, http.client), and prints the
# process's instructions per request (all its threads, user space; the kernel's share is not
# counted); then the same for Debian's nginx as a keep-alive reverse proxy to the same target
# (one worker, no master process), the reference of bench/alb.sh. bench/alb.sh measures the
# same path in requests/s, which on a shared machine moves by ±15% from run to run; this figure
# moves by well under 1%.
# KEEP=<dir> keeps the callgrind files (`callgrind_annotate --inclusive=no <file>`).
#   bench/alb-profile.sh [binary …]   (default: target/release/ecs-emulator)
# Needs valgrind, nginx, the AWS CLI, curl, python3. 127.0.0.1 only; bounded by REQUESTS.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-4000}
CONNECTIONS=${CONNECTIONS:-4}
bins=("$@")
((${#bins[@]})) || bins=(target/release/ecs-emulator)
for tool in valgrind callgrind_control nginx aws curl python3; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
tmp=$(mktemp -d)
vg=
cleanup() {
  [[ -n $vg ]] && kill "$vg" 2>/dev/null || true
  [[ -f $tmp/nginx.pid ]] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

target=$(free_port)
mkdir -p "$tmp/www" && echo hello >"$tmp/www/index.html"
chmod 755 "$tmp" "$tmp/www" && chmod 644 "$tmp/www/index.html" # nginx workers run as www-data
cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000; server { listen 127.0.0.1:$target; root $tmp/www; } }
EOF
nginx -c "$tmp/nginx.conf" -p "$tmp"

# requests <url> <n>: n GETs over CONNECTIONS keep-alive connections; fails on any non-200.
requests() {
  python3 - "$1" "$2" "$CONNECTIONS" <<'EOF'
import http.client, sys, threading, urllib.parse
url, n, conns = urllib.parse.urlsplit(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
failed = []
def client(count):
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    for _ in range(count):
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        if r.status != 200:
            failed.append(r.status)
threads = [threading.Thread(target=client, args=(n // conns,)) for _ in range(conns)]
for t in threads: t.start()
for t in threads: t.join()
sys.exit(f"failed: {failed[:5]}" if failed else 0)
EOF
}

results=()
# measure <name> <url>: the instructions of the process under callgrind ($vg) for REQUESTS
# requests after a warm-up; stops the process.
measure() {
  requests "$2" 200 # warm-up: connections to the target, buffers, caches
  callgrind_control --zero "$vg" >/dev/null
  requests "$2" "$REQUESTS"
  callgrind_control --dump=load "$vg" >/dev/null
  kill "$vg" && wait "$vg" 2>/dev/null || true
  vg=
  # The dump of the load (the emulator's health checker and control loop run meanwhile too: a
  # few thousand instructions a second).
  local total=0 f ir
  for f in "$tmp"/cg.*; do
    grep -q '^desc: Trigger.*load' "$f" || continue
    ir=$(awk '/^summary:/ {print $2}' "$f")
    total=$((total + ir))
  done
  local per=$((total / REQUESTS))
  echo "== $1: $per instructions per request ($total for $REQUESTS requests)"
  results+=("$per $1")
  mkdir -p "${KEEP:-$tmp/keep}" && mv "$tmp"/cg.* "${KEEP:-$tmp/keep}/" 2>/dev/null || true
}

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
for bin in "${bins[@]}"; do
  main=$(free_port)
  export AWS_ENDPOINT_URL=http://127.0.0.1:$main
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.%p" --dump-instr=no \
    "$bin" --listen "127.0.0.1:$main" --ephemeral --runtime simulated >"$tmp/emu.out" 2>"$tmp/emu.log" &
  vg=$!
  for _ in $(seq 600); do curl -fs "http://127.0.0.1:$main/_emulator/health" >/dev/null && break; sleep 0.1; done
  subnets=$(aws ec2 describe-subnets --query 'Subnets[0:2].SubnetId' --output text)
  vpc=$(aws ec2 describe-vpcs --query 'Vpcs[0].VpcId' --output text)
  lb=$(aws elbv2 create-load-balancer --name prof --subnets $subnets \
    --query 'LoadBalancers[0].LoadBalancerArn' --output text)
  tg=$(aws elbv2 create-target-group --name prof --protocol HTTP --port 80 --vpc-id "$vpc" \
    --target-type ip --health-check-interval-seconds 5 --health-check-timeout-seconds 2 \
    --healthy-threshold-count 2 --query 'TargetGroups[0].TargetGroupArn' --output text)
  aws elbv2 create-listener --load-balancer-arn "$lb" --protocol HTTP --port "$(free_port)" \
    --default-actions "Type=forward,TargetGroupArn=$tg" >/dev/null
  aws elbv2 register-targets --target-group-arn "$tg" --targets "Id=127.0.0.1,Port=$target"
  aws elbv2 wait target-in-service --target-group-arn "$tg"
  addr=$(curl -s "http://127.0.0.1:$main/_emulator/state" |
    python3 -c 'import json,sys; print(list(json.load(sys.stdin)["loadBalancerListeners"].values())[0])')
  measure "$bin" "http://$addr/"
done

proxy=$(free_port)
cat >"$tmp/proxy.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/proxy.pid;
error_log $tmp/proxy-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  upstream targets { server 127.0.0.1:$target; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$proxy;
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
valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.%p" --dump-instr=no \
  nginx -c "$tmp/proxy.conf" -p "$tmp" >"$tmp/proxy.out" 2>&1 &
vg=$!
for _ in $(seq 600); do curl -fs "http://127.0.0.1:$proxy/" >/dev/null && break; sleep 0.1; done
measure "nginx (reverse proxy)" "http://127.0.0.1:$proxy/"

echo
echo "user-space instructions per request:"
printf '  %s\n' "${results[@]}"
