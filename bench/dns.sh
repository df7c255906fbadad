#!/usr/bin/env bash
# Cloud Map DNS benchmark, in one run: dnsperf against
#   1. the emulator's DNS server answering a private DNS namespace record (api.bench.local, A,
#      MULTIVALUE, three instances), release build, loopback port;
#   2. Debian's dnsmasq serving the same three A records from a hosts file (no upstream).
# Each server gets a throughput run (dnsperf -l DURATION, CLIENTS clients, OUTSTANDING queries in
# flight, UDP) and a latency run (-v, every answer's latency; p50/p99 computed from them).
# Prints queries/s, lost queries and p50/p99 for both (goal: emulator ≥ 50,000 q/s).
# Everything listens on 127.0.0.1 only; no Docker needed.
#
# Tools: dnsperf and dnsmasq (Debian: apt-get install -y dnsperf dnsmasq-base; installed when
# missing and apt-get is usable), the AWS CLI, python3.
# BIN=<path> uses an already built emulator instead of `cargo build --release -p ecs-emulator`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
DURATION=${DURATION:-15}
LATENCY_DURATION=${LATENCY_DURATION:-5}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-64}
THREADS=${THREADS:-2}
if ! command -v dnsperf >/dev/null || ! command -v dnsmasq >/dev/null; then
  command -v apt-get >/dev/null || { echo "missing dnsperf/dnsmasq" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y dnsperf dnsmasq-base >/dev/null
fi
for tool in dnsperf dnsmasq aws python3; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done

if [[ -z ${BIN:-} ]]; then
  echo "== cargo build --release -p ecs-emulator"
  cargo build --release -p ecs-emulator
  BIN=$root/target/release/ecs-emulator
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

echo "== emulator"
main=$(free_port)
dns_port=$(free_port)
"$BIN" --ephemeral --listen "127.0.0.1:$main" --dns-listen "127.0.0.1:$dns_port" \
  --log-level warn >"$tmp/emu.out" 2>"$tmp/emu.err" &
pids+=($!)
for _ in $(seq 100); do grep -q "ready" "$tmp/emu.out" 2>/dev/null && break; sleep 0.1; done
for _ in $(seq 100); do grep -q "DNS server on" "$tmp/emu.err" 2>/dev/null && break; sleep 0.1; done
grep "DNS server on" "$tmp/emu.err" | grep -q "127.0.0.1:$dns_port" || {
  echo "the emulator's DNS server is not on port $dns_port:" >&2; cat "$tmp/emu.err" >&2; exit 1; }
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
aws_() { aws --endpoint-url "http://127.0.0.1:$main" --output text "$@"; }
vpc=$(aws_ ec2 describe-vpcs --query 'Vpcs[0].VpcId')
op=$(aws_ servicediscovery create-private-dns-namespace --name bench.local --vpc "$vpc" --query OperationId)
ns=$(aws_ servicediscovery get-operation --operation-id "$op" --query Operation.Targets.NAMESPACE)
svc=$(aws_ servicediscovery create-service --name api --namespace-id "$ns" \
  --dns-config 'RoutingPolicy=MULTIVALUE,DnsRecords=[{Type=A,TTL=60}]' --query Service.Id)
: >"$tmp/hosts"
for i in 1 2 3; do
  aws_ servicediscovery register-instance --service-id "$svc" --instance-id "i-$i" \
    --attributes "AWS_INSTANCE_IPV4=10.0.0.$i" >/dev/null
  echo "10.0.0.$i api.bench.local" >>"$tmp/hosts"
done

echo "== dnsmasq"
masq_port=$(free_port)
dnsmasq --keep-in-foreground --no-resolv --no-hosts --addn-hosts="$tmp/hosts" \
  --listen-address=127.0.0.1 --bind-interfaces --port="$masq_port" --local-ttl=60 \
  --cache-size=10000 --user=root --pid-file= 2>"$tmp/dnsmasq.err" &
pids+=($!)
sleep 0.5

echo "api.bench.local A" >"$tmp/queries"
for port in "$dns_port" "$masq_port"; do
  # Both answer with the three A records.
  n=$(dnsperf -s 127.0.0.1 -p "$port" -d "$tmp/queries" -n 1 -v 2>/dev/null | grep -c NOERROR || true)
  [[ $n -ge 1 ]] || { echo "no NOERROR answer from port $port" >&2; exit 1; }
done

run() { # name port → "qps lost p50_ms p99_ms"
  local name=$1 port=$2
  dnsperf -s 127.0.0.1 -p "$port" -d "$tmp/queries" -l "$DURATION" -c "$CLIENTS" -T "$THREADS" \
    -q "$OUTSTANDING" >"$tmp/$name.perf" 2>&1
  dnsperf -s 127.0.0.1 -p "$port" -d "$tmp/queries" -l "$LATENCY_DURATION" -c "$CLIENTS" \
    -T "$THREADS" -q "$OUTSTANDING" -v >"$tmp/$name.lat" 2>&1
  python3 - "$tmp/$name.perf" "$tmp/$name.lat" <<'PY'
import re, sys
perf = open(sys.argv[1]).read()
qps = float(re.search(r"Queries per second:\s+([\d.]+)", perf).group(1))
lost = re.search(r"Queries lost:\s+(\d+)", perf).group(1)
lat = sorted(float(l.split()[-1]) for l in open(sys.argv[2]) if l.startswith("> NOERROR"))
pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")
print(f"{qps:.0f} {lost} {pct(0.50):.3f} {pct(0.99):.3f}")
PY
}
echo "== dnsperf: $DURATION s, $CLIENTS clients, $OUTSTANDING outstanding, $THREADS threads (latency: $LATENCY_DURATION s with -v)"
read -r e_qps e_lost e_p50 e_p99 < <(run emulator "$dns_port")
read -r m_qps m_lost m_p50 m_p99 < <(run dnsmasq "$masq_port")
printf '%-10s %12s %8s %10s %10s\n' server "queries/s" lost "p50 ms" "p99 ms"
printf '%-10s %12s %8s %10s %10s\n' emulator "$e_qps" "$e_lost" "$e_p50" "$e_p99"
printf '%-10s %12s %8s %10s %10s\n' dnsmasq "$m_qps" "$m_lost" "$m_p50" "$m_p99"
python3 -c "import sys; e,m=float(sys.argv[1]),float(sys.argv[2]); print(f'emulator/dnsmasq: {e/m:.2f}x; goal 50,000 q/s: {\"met\" if e >= 50000 else \"NOT met\"}')" "$e_qps" "$m_qps"
