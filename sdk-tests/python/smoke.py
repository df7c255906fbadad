#!/usr/bin/env python3
"""Smoke test of ecs-emulator with boto3 and the AWS CLI v1.

Usage: smoke.py <endpoint>   (run by sdk-tests/tests/api/python.rs against a fresh emulator)
Exits non-zero, with a message, on the first failure.
"""
import json
import os
import shutil
import subprocess
import sys
import time

ENDPOINT = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ECS_EMULATOR_ENDPOINT", "")
if not ENDPOINT:
    sys.exit("usage: smoke.py <endpoint>")

REGION = "us-east-1"
ACCOUNT = "000000000000"


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


try:
    import boto3
    import botocore
    from botocore.exceptions import ClientError
except ImportError as e:  # the Rust test turns this exit code into "run .ci/run"
    print(f"MISSING: boto3 is not installed ({e}); run .ci/run", file=sys.stderr)
    sys.exit(3)

version = tuple(int(x) for x in boto3.__version__.split(".")[:3])
if version < (1, 42, 7):
    print(f"MISSING: boto3 {boto3.__version__} < 1.42.7 (which speaks JSON 1.0 to CloudWatch); run .ci/run", file=sys.stderr)
    sys.exit(3)
if shutil.which("aws") is None:
    print("MISSING: the AWS CLI (aws) is not on PATH; run .ci/run", file=sys.stderr)
    sys.exit(3)


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


# --- boto3: ECS (awsJson 1.1) -------------------------------------------------------------
ecs = client("ecs")
check(ecs.list_clusters()["clusterArns"] == [], "a fresh emulator lists no clusters")
c = ecs.create_cluster(clusterName="py")["cluster"]
arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/py"
check(c["clusterArn"] == arn, f"CreateCluster arn {c['clusterArn']}")
check(c["status"] == "ACTIVE", f"CreateCluster status {c['status']}")
check(ecs.list_clusters()["clusterArns"] == [arn], "ListClusters after CreateCluster")
try:
    ecs.delete_cluster(cluster="no-such-cluster")
    fail("DeleteCluster of an unknown cluster succeeded")
except ClientError as e:
    check(e.response["Error"]["Code"] == "ClusterNotFoundException", f"error code {e.response['Error']}")
print("boto3 ecs: ok")

# --- boto3: CloudWatch (JSON 1.0 with x-amzn-query-mode in boto3 >= 1.42.7) ---------------
cw = client("cloudwatch")
protocol = cw.meta.service_model.resolved_protocol
check(protocol == "json", f"boto3 {boto3.__version__} should pick JSON 1.0 for CloudWatch, picked {protocol}")
now = int(time.time()) // 60 * 60
cw.put_metric_data(
    Namespace="Py/Smoke",
    MetricData=[
        {"MetricName": "Requests", "Dimensions": [{"Name": "Svc", "Value": "api"}], "Timestamp": now, "Value": v}
        for v in (1.0, 2.0, 3.0)
    ],
)
metrics = cw.list_metrics(Namespace="Py/Smoke")["Metrics"]
check(
    metrics == [{"Namespace": "Py/Smoke", "MetricName": "Requests", "Dimensions": [{"Name": "Svc", "Value": "api"}]}],
    f"ListMetrics over {protocol}: {metrics}",
)
stats = cw.get_metric_statistics(
    Namespace="Py/Smoke",
    MetricName="Requests",
    Dimensions=[{"Name": "Svc", "Value": "api"}],
    StartTime=now - 600,
    EndTime=now + 60,
    Period=60,
    Statistics=["Sum", "SampleCount"],
)["Datapoints"]
check(len(stats) == 1 and stats[0]["Sum"] == 6.0 and stats[0]["SampleCount"] == 3.0, f"GetMetricStatistics: {stats}")
try:
    cw.get_metric_statistics(
        Namespace="Py/Smoke", MetricName="Requests", StartTime=now, EndTime=now - 3600, Period=60, Statistics=["Sum"]
    )
    fail("StartTime after EndTime succeeded")
except ClientError as e:
    # boto3 maps the JSON error back to its query code through x-amzn-query-error.
    check(e.response["Error"]["Code"] == "InvalidParameterValue", f"error code {e.response['Error']}")
print(f"boto3 cloudwatch ({protocol}): ok")

# --- botocore forced onto CloudWatch's other protocols (older boto3 sends query; Go v2 and the Rust
# SDK send rpcv2-cbor): the same metric, and the same error code, over each. ------------------
import botocore.model as _model

_default_order = _model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS
for forced in ("query", "smithy-rpc-v2-cbor"):
    _model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = (forced,) + tuple(p for p in _default_order if p != forced)
    try:
        cwf = client("cloudwatch")
        got = cwf.meta.service_model.resolved_protocol
        check(got == forced, f"forcing {forced} gave {got}")
        metrics = cwf.list_metrics(Namespace="Py/Smoke")["Metrics"]
        check(
            [(m["MetricName"], m["Dimensions"]) for m in metrics] == [("Requests", [{"Name": "Svc", "Value": "api"}])],
            f"ListMetrics over {forced}: {metrics}",
        )
        cwf.put_metric_data(Namespace="Py/Forced", MetricData=[{"MetricName": forced, "Value": 1.0}])
        try:
            cwf.get_metric_statistics(
                Namespace="Py/Smoke", MetricName="Requests", StartTime=now, EndTime=now - 3600, Period=60,
                Statistics=["Sum"],
            )
            fail(f"StartTime after EndTime succeeded over {forced}")
        except ClientError as e:
            check(e.response["Error"]["Code"] == "InvalidParameterValue", f"{forced} error code {e.response['Error']}")
            check(e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, f"{forced} status {e.response['ResponseMetadata']}")
    finally:
        _model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = _default_order
    print(f"botocore cloudwatch ({forced}): ok")
forced_names = sorted(m["MetricName"] for m in cw.list_metrics(Namespace="Py/Forced")["Metrics"])
check(forced_names == ["query", "smithy-rpc-v2-cbor"], f"metrics put over query and cbor, listed over json: {forced_names}")

# --- AWS CLI v1 -----------------------------------------------------------------------------
env = dict(os.environ)
env.update(
    {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_PAGER": "",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
)


def aws(*args):
    p = subprocess.run(
        ["aws", "--endpoint-url", ENDPOINT, "--output", "json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return p.returncode, p.stdout, p.stderr


p = subprocess.run(["aws", "--version"], capture_output=True, text=True, env=env)
cli_version = (p.stdout + p.stderr).strip()
check(cli_version.startswith("aws-cli/1."), f"expected the AWS CLI v1, got {cli_version}")

rc, out, err = aws("ecs", "list-clusters")
check(rc == 0, f"aws ecs list-clusters: rc {rc}: {err}")
check(json.loads(out)["clusterArns"] == [arn], f"aws ecs list-clusters: {out}")

rc, out, err = aws("elbv2", "describe-load-balancers")
if rc == 0:
    check(json.loads(out).get("LoadBalancers") == [], f"aws elbv2 describe-load-balancers: {out}")
    print("aws elbv2 describe-load-balancers: ok")
else:
    check(
        "NotImplemented" in err and "DescribeLoadBalancers" in err,
        f"aws elbv2 describe-load-balancers: rc {rc}, expected the NotImplemented error: {err}",
    )
    print("aws elbv2 describe-load-balancers: NotImplemented decoded")

# AWS CLI v1 uses the installed botocore: with botocore >= 1.42.7 that is JSON 1.0 (older v1 releases
# sent query, which the forced-protocol checks above cover).
rc, out, err = aws("cloudwatch", "list-metrics", "--namespace", "Py/Smoke")
check(rc == 0, f"aws cloudwatch list-metrics: rc {rc}: {err}")
listed = json.loads(out)["Metrics"]
check(
    [m["MetricName"] for m in listed] == ["Requests"] and listed[0]["Dimensions"] == [{"Name": "Svc", "Value": "api"}],
    f"aws cloudwatch list-metrics: {out}",
)
print(f"aws cli ({cli_version.split()[0]}): ok")
print("SMOKE OK")
