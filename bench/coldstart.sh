#!/usr/bin/env bash
# One cold start, timed by hyperfine (bench/api.sh): start a server on 127.0.0.1:<port>, poll with
# ECS ListClusters until it answers HTTP 200, then stop it. Polling uses bash's /dev/tcp and a
# builtin 1 ms wait, so no process is spawned per attempt.
#   coldstart.sh <port> <command…>
set -u
port=$1
shift
"$@" >/dev/null 2>&1 &
pid=$!
exec {wait_fd}<> <(:)
request=$'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AmazonEC2ContainerServiceV20141113.ListClusters\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Date: 20260101T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}'
status=""
for _ in $(seq 30000); do   # at most ~30 s
  if { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
    printf '%s' "$request" >&$fd
    read -r -t 5 _ status _ <&$fd || true
    exec {fd}>&-
    [[ $status == 200 ]] && break
  fi
  kill -0 "$pid" 2>/dev/null || { echo "server exited" >&2; exit 1; }
  read -r -t 0.001 -u "$wait_fd" _ || true
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[[ $status == 200 ]] || { echo "no 200 answer (last status: '$status')" >&2; exit 1; }
