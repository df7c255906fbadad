#!/usr/bin/env bash
# The ALB under load through a rolling update (issue 15): an ECS service of 2 nginx tasks (real
# containers, dynamic host ports) behind an ALB listener; wrk -t2 -c64 for DURATION (60) seconds,
# and UPDATE_AT (20) seconds in, `aws ecs update-service --force-new-deployment`. Prints requests/s,
# p99, non-2xx responses and socket errors (the goal: ≥ 5,000 requests/s and no failed request),
# and whether the new deployment finished (COMPLETED, the old tasks stopped) during the load.
#
# The target image is built here FROM scratch with Debian's nginx binary and the shared libraries
# it links (ecs-emulator-bench/nginx:latest), so that the target is not the bottleneck (busybox
# httpd answers one request per connection). Everything listens on 127.0.0.1 or the Docker bridge.
#
# Tools: docker, wrk, nginx (apt-get install -y wrk nginx), the AWS CLI, curl, python3.
# BIN=<path> uses an already built emulator instead of `cargo build --release -p ecs-emulator`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
DURATION=${DURATION:-60}
UPDATE_AT=${UPDATE_AT:-20}
CONNECTIONS=${CONNECTIONS:-64}
IMAGE=ecs-emulator-bench/nginx:latest
for tool in docker wrk nginx aws curl python3 ldd; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done

if [[ -z ${BIN:-} ]]; then
  echo "== cargo build --release -p ecs-emulator"
  cargo build --release -p ecs-emulator
  BIN=$root/target/release/ecs-emulator
fi

tmp=$(mktemp -d)
emu=
main=
cleanup() {
  # A stopped emulator leaves its containers running for adoption: reset first, which removes
  # them (and the instances' networks), then stop it.
  [[ -n $main ]] && curl -fs -X POST "http://127.0.0.1:$main/_emulator/reset" >/dev/null || true
  [[ -n $emu ]] && kill "$emu" 2>/dev/null && wait "$emu" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== image $IMAGE (FROM scratch: Debian's nginx and its libraries)"
ctx=$tmp/image
mkdir -p "$ctx/rootfs/etc/nginx" "$ctx/rootfs/tmp" "$ctx/rootfs/www" "$ctx/rootfs/var/log/nginx"
nginx_bin=$(command -v nginx)
for f in "$nginx_bin" $(ldd "$nginx_bin" | awk '/=>/ {print $3} /^\t\/.*ld-linux/ {print $1}'); do
  cp --parents -L "$f" "$ctx/rootfs/"
done
echo 'root:x:0:0:root:/:/nonexistent' >"$ctx/rootfs/etc/passwd"
echo 'root:x:0:' >"$ctx/rootfs/etc/group"
echo hello >"$ctx/rootfs/www/index.html"
cat >"$ctx/rootfs/etc/nginx/nginx.conf" <<'EOF'
user root;
daemon off;
worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path /tmp/body;
  proxy_temp_path /tmp/proxy;
  fastcgi_temp_path /tmp/fastcgi;
  uwsgi_temp_path /tmp/uwsgi;
  scgi_temp_path /tmp/scgi;
  server { listen 8080; root /www; }
}
EOF
cat >"$ctx/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
ENTRYPOINT ["$nginx_bin", "-c", "/etc/nginx/nginx.conf"]
EOF
docker build -q -t "$IMAGE" "$ctx" >/dev/null

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
main=$(free_port)
listener_port=$(free_port)
echo "== emulator (release, Docker runtime) on 127.0.0.1:$main"
"$BIN" --listen "127.0.0.1:$main" --data-dir "$tmp/data" >"$tmp/emu.out" 2>"$tmp/emu.log" &
emu=$!
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$main/_emulator/health" >/dev/null && break; sleep 0.05; done
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
export AWS_ENDPOINT_URL=http://127.0.0.1:$main

aws ecs create-cluster --cluster-name bench >/dev/null
for _ in 1 2; do
  aws ecs register-container-instance --cluster bench \
    --instance-identity-document '{"instanceType":"m5.large","availabilityZone":"us-east-1a"}' >/dev/null
done
aws ecs register-task-definition --family web --container-definitions "[{
  \"name\": \"web\", \"image\": \"$IMAGE\", \"memory\": 64, \"cpu\": 256, \"stopTimeout\": 5,
  \"portMappings\": [{\"containerPort\": 8080}]}]" >/dev/null
subnets=$(aws ec2 describe-subnets --query 'Subnets[0:2].SubnetId' --output text)
vpc=$(aws ec2 describe-vpcs --query 'Vpcs[0].VpcId' --output text)
lb=$(aws elbv2 create-load-balancer --name bench --subnets $subnets \
  --query 'LoadBalancers[0].LoadBalancerArn' --output text)
tg=$(aws elbv2 create-target-group --name web --protocol HTTP --port 8080 --vpc-id "$vpc" \
  --target-type instance --health-check-interval-seconds 5 --health-check-timeout-seconds 2 \
  --healthy-threshold-count 2 --query 'TargetGroups[0].TargetGroupArn' --output text)
aws elbv2 modify-target-group-attributes --target-group-arn "$tg" \
  --attributes Key=deregistration_delay.timeout_seconds,Value=5 >/dev/null
aws elbv2 create-listener --load-balancer-arn "$lb" --protocol HTTP --port "$listener_port" \
  --default-actions "Type=forward,TargetGroupArn=$tg" >/dev/null
aws ecs create-service --cluster bench --service-name web --task-definition web --desired-count 2 \
  --load-balancers "targetGroupArn=$tg,containerName=web,containerPort=8080" \
  --deployment-configuration "maximumPercent=200,minimumHealthyPercent=100" >/dev/null

healthy() {
  aws elbv2 describe-target-health --target-group-arn "$tg" \
    --query 'length(TargetHealthDescriptions[?TargetHealth.State==`healthy`])' --output text
}
for _ in $(seq 120); do [[ $(healthy) == 2 ]] && break; sleep 0.5; done
[[ $(healthy) == 2 ]] || { echo "the service's 2 targets never became healthy" >&2; tail -20 "$tmp/emu.log" >&2; exit 1; }
alb_addr=$(curl -s "http://127.0.0.1:$main/_emulator/state" |
  python3 -c 'import json,sys; print(list(json.load(sys.stdin)["loadBalancerListeners"].values())[0])')
curl -fs "http://$alb_addr/" >/dev/null
before=$(aws ecs list-tasks --cluster bench --service-name web --query 'taskArns' --output text)

echo "== wrk -t2 -c$CONNECTIONS -d${DURATION}s http://$alb_addr/, force-new-deployment at ${UPDATE_AT}s"
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://$alb_addr/" >"$tmp/wrk.out" &
wrk_pid=$!
sleep "$UPDATE_AT"
aws ecs update-service --cluster bench --service web --force-new-deployment >/dev/null
updated=$(date +%s.%N)
completed=
while kill -0 "$wrk_pid" 2>/dev/null; do
  if [[ -z $completed ]]; then
    state=$(aws ecs describe-services --cluster bench --services web \
      --query 'services[0].[length(deployments), deployments[0].rolloutState, runningCount]' --output text)
    if [[ $state == $'1\tCOMPLETED\t2' ]]; then
      completed=$(python3 -c "print(f'{$(date +%s.%N) - $updated:.1f}')")
    fi
  fi
  sleep 0.5
done
wait "$wrk_pid"
cat "$tmp/wrk.out"
after=$(aws ecs list-tasks --cluster bench --service-name web --query 'taskArns' --output text)
rps=$(awk '/^Requests\/sec/ {print $2}' "$tmp/wrk.out")
p99=$(awk '$1 == "99%" {print $2}' "$tmp/wrk.out")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$tmp/wrk.out")
socket=$(awk '/Socket errors/ {print}' "$tmp/wrk.out")
replaced=no
[[ -n $after && $(comm -12 <(tr '\t' '\n' <<<"$before" | sort) <(tr '\t' '\n' <<<"$after" | sort)) == "" ]] && replaced=yes
echo
echo "requests/s $rps, p99 $p99, non-2xx ${non2xx:-0}, socket errors: ${socket:-none}"
if [[ -n $completed ]]; then
  echo "rollout COMPLETED $completed s after the update; every task replaced: $replaced"
else
  echo "rollout not COMPLETED within the run; every task replaced: $replaced"
fi
