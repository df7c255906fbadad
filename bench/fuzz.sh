#!/usr/bin/env bash
# Fuzzes the protocol codecs with cargo-fuzz (libFuzzer), one target per codec, each for RUNS inputs
# (1,000,000 by default), one after the other; prints and writes a table of executed inputs, time,
# speed, coverage and findings to bench/results/fuzz-<UTC date>.md.
#
# Needs cargo-fuzz (cargo install cargo-fuzz). Without a nightly toolchain the stable compiler
# takes cargo-fuzz's -Z flags with RUSTC_BOOTSTRAP=1. Debug assertions (overflow checks) are on;
# SANITIZER=address by default (SANITIZER=none if the sanitizer build fails).
# SOURCE=head (default) fuzzes the committed HEAD, exported to fuzz/target/head-src (the work tree
# may be mid-edit by others; COMMIT=<rev> picks another commit); SOURCE=worktree fuzzes the work tree as it is.
# No network: the targets call the codecs in-process. Bounded: RUNS inputs or MAX_TIME seconds per
# target, whichever comes first. OUT=<file> writes the table there instead.
# SEED=<n>: libFuzzer's -seed (default: a random one each run).
# CI's smoke (.ci/run): SOURCE=worktree SANITIZER=none MAX_TIME=60 RUNS=-1 (-1: no input limit) SEED=1.
#   bench/fuzz.sh [target …]
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1000000}
MAX_TIME=${MAX_TIME:-1800}
SANITIZER=${SANITIZER:-address}
SOURCE=${SOURCE:-head}
COMMIT=${COMMIT:-HEAD}
root=$(pwd)
export RUSTC_BOOTSTRAP=1
targets=("$@")
((${#targets[@]})) || targets=(fuzz_json fuzz_cbor fuzz_query fuzz_restjson fuzz_request fuzz_dns
  fuzz_manifest fuzz_cluster_query fuzz_alb_rules fuzz_sigv4 fuzz_metric_math)
command -v cargo-fuzz >/dev/null || { echo "missing cargo-fuzz (cargo install cargo-fuzz)" >&2; exit 1; }

# Seed corpora: a few valid inputs per target so that mutation starts from well-formed requests.
# The five targets of ecs_emulator::fuzz_checks have theirs committed (fuzz/corpus/<target>/seed-*,
# replayed by a unit test); the codec targets' seeds are written here. What libFuzzer adds to a
# corpus stays local (git-ignored).
python3 - <<'PY'
import json, os, struct
def put(target, name, data):
    d = f"fuzz/corpus/{target}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/seed-{name}", "wb") as f:
        f.write(data)
j = [
    {"clusters": ["bench"], "include": ["TAGS"]},
    {"clusterName": "a", "tags": [{"key": "k", "value": "v"}]},
    {"family": "f", "containerDefinitions": [{"name": "c", "image": "nginx", "memory": 128,
      "portMappings": [{"containerPort": 80}]}], "networkMode": "awsvpc", "cpu": "256"},
    {"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": 1767225600000, "message": "m"}]},
    {"Name": "/p", "Value": "v", "Type": "String", "Overwrite": True},
    {"startTime": 1767225600.5, "maxResults": 5, "nextToken": None},
]
for i, v in enumerate(j):
    put("fuzz_json", f"{i}", bytes([0, i, 0]) + json.dumps(v).encode())

def cbor(v):  # a minimal CBOR encoder (maps, arrays, text, ints, floats, bools, null, tag 1)
    def head(major, n):
        if n < 24: return bytes([major << 5 | n])
        for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
            if n < 1 << (8 * struct.calcsize(fmt)): return bytes([major << 5 | ai]) + struct.pack(fmt, n)
    if v is None: return b"\xf6"
    if v is True: return b"\xf5"
    if v is False: return b"\xf4"
    if isinstance(v, int): return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, float): return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, str): b = v.encode(); return head(3, len(b)) + b
    if isinstance(v, bytes): return head(2, len(v)) + v
    if isinstance(v, list): return head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict): return head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    if isinstance(v, tuple): return b"\xc1" + cbor(v[1])  # (1, epoch): timestamp tag
c = [
    {"Namespace": "ns", "MetricData": [{"MetricName": "m", "Value": 1.5, "Timestamp": (1, 1767225600),
      "Dimensions": [{"Name": "d", "Value": "v"}], "Unit": "Count"}]},
    {"MetricDataQueries": [{"Id": "q", "MetricStat": {"Metric": {"Namespace": "ns", "MetricName": "m"},
      "Period": 60, "Stat": "Sum"}}], "StartTime": (1, 1767225600), "EndTime": (1, 1767229200.0)},
    {"Name": "svc", "NamespaceId": "ns-1", "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 60}]}},
    {"ServiceId": "srv-1", "InstanceId": "i-1", "Attributes": {"AWS_INSTANCE_IPV4": "10.0.0.1"},
      "Blob": b"\x00\x01"},
]
for i, v in enumerate(c):
    put("fuzz_cbor", f"{i}", bytes([i % 2, i, 0]) + cbor(v))

q = [
    (0, "Name=lb&Subnets.member.1=subnet-1&Subnets.member.2=subnet-2&Tags.member.1.Key=k&Tags.member.1.Value=v&Type=application"),
    (1, "Name=tg&Protocol=HTTP&Port=80&VpcId=vpc-1&HealthCheckIntervalSeconds=30&Matcher.HttpCode=200&TargetType=ip"),
    (2, "TargetGroupArn=arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/1&Targets.member.1.Id=10.0.0.1&Targets.member.1.Port=80"),
    (4, "ListenerArn=arn&Priority=1&Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=/a&Actions.member.1.Type=forward&Actions.member.1.TargetGroupArn=arn"),
    (5, "TargetGroupArn=arn&Attributes.member.1.Key=deregistration_delay.timeout_seconds&Attributes.member.1.Value=5"),
    (8, "ImageId=ami-1&MinCount=1&MaxCount=2&InstanceType=t3.micro&SecurityGroupId.1=sg-1&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=k&TagSpecification.1.Tag.1.Value=v&BlockDeviceMapping.1.DeviceName=/dev/xvda&BlockDeviceMapping.1.Ebs.VolumeSize=8&UserData=aGk%3D"),
    (9, "Filter.1.Name=instance-state-name&Filter.1.Value.1=running&Filter.1.Value.2=pending&MaxResults=5&InstanceId.1=i-1"),
    (11, "GroupId=sg-1&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=80&IpPermissions.1.ToPort=80&IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0/0"),
    (12, "LaunchTemplateName=lt&LaunchTemplateData.ImageId=ami-1&LaunchTemplateData.TagSpecification.1.ResourceType=instance"),
    (15, "CidrBlock=10.0.0.0/16&DryRun=false"),
    (20, "Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-1"),
]
for i, (sel, body) in enumerate(q):
    put("fuzz_query", f"{i}", bytes([sel]) + body.encode())
def dnsq(name, qtype, edns=None):  # a DNS query: header, one question, an optional OPT record
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".") if l) + b"\0"
    q += struct.pack(">HH", qtype, 1)
    opt = b"\0" + struct.pack(">HHIH", 41, edns, 0, 0) if edns else b""
    return struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 1 if edns else 0) + q + opt
for i, (n, t, e) in enumerate([("api.prod.local", 1, None), ("api.prod.local", 33, 1232),
        ("alias.prod.local", 1, None), ("nope.prod.local", 28, 4096), ("prod.local", 6, None),
        ("0" * 31 + "1.api.prod.local", 255, 512), ("example.com", 1, None)]):
    put("fuzz_dns", f"{i}", dnsq(n, t, e))
PY

if [[ $SOURCE == head ]]; then
  src=$root/fuzz/target/head-src
  commit=$(git rev-parse "$COMMIT")
  # Re-exported only when the commit changes (fresh files would make cargo rebuild the emulator).
  if [[ $(cat "$src/.commit" 2>/dev/null) != "$commit" ]]; then
    rm -rf "$src"
    mkdir -p "$src/fuzz"
    git archive "$commit" Cargo.toml Cargo.lock emulator sdk-tests | tar -x -C "$src"
    echo "$commit" >"$src/.commit"
  fi
  rm -rf "$src/fuzz/fuzz_targets" "$src/fuzz/dicts"
  cp -r fuzz/fuzz_targets fuzz/dicts "$src/fuzz/"
  cmp -s fuzz/Cargo.toml "$src/fuzz/Cargo.toml" || cp fuzz/Cargo.toml "$src/fuzz/"
  [[ -f fuzz/Cargo.lock ]] && cp fuzz/Cargo.lock "$src/fuzz/"
  grep -q '^exclude = \["fuzz"\]' "$src/Cargo.toml" ||
    sed -i 's/^members = .*/&\nexclude = ["fuzz"]/' "$src/Cargo.toml"
  fuzzdir=$src/fuzz
  described="commit $(git rev-parse --short "$COMMIT")"
else
  fuzzdir=$root/fuzz
  described="work tree at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- emulator || echo ' + uncommitted changes in emulator/')"
fi
cargo_fuzz() { # build|run [args…]
  local sub=$1
  shift
  (cd "$fuzzdir" && cargo fuzz "$sub" -a -s "$SANITIZER" --target-dir "$root/fuzz/target" "$@")
}

echo "== cargo fuzz build -a -s $SANITIZER (all targets, $described)"
cargo_fuzz build || exit 1
[[ -f fuzz/Cargo.lock ]] || cp "$fuzzdir/Cargo.lock" fuzz/Cargo.lock

date=$(date -u +%Y-%m-%d)
out=${OUT:-bench/results/fuzz-$date.md}
mkdir -p "$(dirname "$out")" fuzz/target/logs
{
  echo "# Fuzzing, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- source: $described; $(rustc --version) with RUSTC_BOOTSTRAP=1; cargo-fuzz $(cargo fuzz --version 2>/dev/null | awk '{print $2}')"
  echo "- sanitizer: $SANITIZER; debug assertions on; -runs=$RUNS, -max_total_time=$MAX_TIME, -timeout=10 s, -seed=${SEED:-random}, seeds from bench/fuzz.sh, default -max_len"
  echo "- machine: $(nproc) cores shared with other jobs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
  echo
  echo "| target | inputs executed | time (s): libFuzzer / wall | inputs/s | coverage (edges) | corpus | result |"
  echo "|---|---:|---:|---:|---:|---:|---|"
} >"$out.tmp"
status=0
if [[ -z ${REPORT_ONLY:-} ]]; then
  for t in "${targets[@]}"; do
    dict=()
    seed=()
    [[ -n ${SEED:-} ]] && seed=(-seed="$SEED")
    case $t in
      fuzz_json | fuzz_restjson) dict=(-dict="$fuzzdir/dicts/json.dict") ;;
      fuzz_query) dict=(-dict="$fuzzdir/dicts/query.dict") ;;
      fuzz_manifest | fuzz_cluster_query | fuzz_alb_rules | fuzz_sigv4 | fuzz_metric_math)
        dict=(-dict="$fuzzdir/dicts/${t#fuzz_}.dict") ;;
    esac
    log=fuzz/target/logs/$t.log
    echo "== $t: $RUNS inputs (log: $log)"
    start=$(date +%s.%N)
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    cargo_fuzz run "$t" "$root/fuzz/corpus/$t" -- -runs="$RUNS" -max_total_time="$MAX_TIME" \
      -timeout=10 -print_final_stats=1 -artifact_prefix="$root/fuzz/artifacts/$t/" "${dict[@]}" "${seed[@]}" \
      >"$log" 2>&1
    echo $? >"fuzz/target/logs/$t.rc"
    python3 -c "print(f'{$(date +%s.%N) - $start:.0f}')" >"fuzz/target/logs/$t.wall"
    tail -n 12 "$log"
  done
fi
# The table, from the logs (REPORT_ONLY=1 rebuilds it without fuzzing again).
for t in "${targets[@]}"; do
  log=fuzz/target/logs/$t.log
  rc=$(cat "fuzz/target/logs/$t.rc")
  secs=$(cat "fuzz/target/logs/$t.wall")
  execs=$(awk '/stat::number_of_executed_units/ {print $NF}' "$log" | tail -1)
  fuzz_secs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 | awk '{print $5}')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  corp=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  if ((rc == 0)); then
    result="no crash"
  else
    status=1
    artifact=$(grep -oE 'artifacts/[^ ]+' "$log" | tail -1)
    result="**crash** (exit $rc) ${artifact:-see $log}"
  fi
  rate=$(python3 -c "print(f'{${execs:-0} / max(${fuzz_secs:-$secs}, 1):,.0f}')")
  printf '| %s | %s | %s / %s | %s | %s | %s | %s |\n' "$t" "$(printf "%'d" "${execs:-0}")" \
    "${fuzz_secs:-?}" "$secs" "$rate" "${cov:-?}" "${corp:-?}" "$result" >>"$out.tmp"
done
mv "$out.tmp" "$out"
echo
cat "$out"
echo "written to $out (logs in fuzz/target/logs/)"
exit $status
