#!/usr/bin/env python3
"""ecs-deploy (https://pypi.org/project/ecs-deploy/) against ecs-emulator: `ecs deploy`, `ecs scale`,
`ecs run` and `ecs update`, with real containers, including a deploy started while a scale-in is
still stopping tasks (issue 14: ECS's maximumPercent does not count a task that is stopping).

Usage: ecs_deploy.py <endpoint>   (run by sdk-tests/tests/api/python.rs against a fresh emulator)
Exits non-zero, with a message, on the first failure; 3 when a tool is missing.
"""
import os
import shutil
import subprocess
import sys
import time

ENDPOINT = sys.argv[1] if len(sys.argv) > 1 else ""
if not ENDPOINT:
    sys.exit("usage: ecs_deploy.py <endpoint>")

CLUSTER = "deploy"
SERVICE = "web"
IMAGE = "ecs-emulator-test/busybox:latest"

try:
    import boto3
except ImportError as e:
    print(f"MISSING: boto3 is not installed ({e}); run .ci/run", file=sys.stderr)
    sys.exit(3)
if shutil.which("ecs") is None:
    print("MISSING: ecs-deploy (the `ecs` command) is not on PATH; run .ci/run", file=sys.stderr)
    sys.exit(3)


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


# ecs-deploy builds its boto3 session from the environment: point it at the emulator.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
ENV.update(
    AWS_ENDPOINT_URL=ENDPOINT,
    AWS_ACCESS_KEY_ID="test",
    AWS_SECRET_ACCESS_KEY="test",
    AWS_DEFAULT_REGION="us-east-1",
)


def ecs_cli(*args):
    """Runs `ecs <args>` (bounded by its own --timeout and ours); returns its output."""
    out = subprocess.run(["ecs", *args], env=ENV, capture_output=True, text=True, timeout=180)
    text = out.stdout + out.stderr
    print(f"$ ecs {' '.join(args)}\n{text}")
    check(out.returncode == 0, f"`ecs {' '.join(args)}` failed ({out.returncode}):\n{text}")
    return text


ecs = boto3.client(
    "ecs", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
)


def service():
    return ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]


def tasks(desired_status):
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus=desired_status)["taskArns"]
    return ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []


def wait_for(what, done, secs=90):
    deadline = time.time() + secs
    while True:
        value = done()
        if value:
            return value
        check(time.time() < deadline, f"never reached: {what}: {service()}")
        time.sleep(0.5)


def steady(count, revision):
    s = service()
    running = [t for t in tasks("RUNNING") if t["lastStatus"] == "RUNNING"]
    return (
        len(s["deployments"]) == 1
        and s["deployments"][0]["rolloutState"] == "COMPLETED"
        and len(running) == count
        and all(t["taskDefinitionArn"].endswith(f"/web:{revision}") for t in running)
    )


def no_unable_events():
    unable = [e["message"] for e in service()["events"] if "unable" in e["message"]]
    check(not unable, f"ECS would not write these events: {unable}")


ecs.create_cluster(clusterName=CLUSTER)
ecs.register_container_instance(
    cluster=CLUSTER, instanceIdentityDocument='{"instanceType":"m5.large","availabilityZone":"us-east-1a"}'
)
# sleep as PID 1 ignores SIGTERM, so a stopped task stays RUNNING (desired STOPPED) for its
# stopTimeout: the window ecs-deploy's deploy falls into right after a scale-in. The health check
# makes a new task count toward minimumHealthyPercent as soon as Docker reports it healthy.
ecs.register_task_definition(
    family="web",
    containerDefinitions=[
        {
            "name": "web",
            "image": IMAGE,
            "memory": 32,
            "command": ["sleep", "3600"],
            "stopTimeout": 20,
            "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 2},
        }
    ],
)
ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition="web:1", desiredCount=3)
wait_for("3 tasks of web:1", lambda: steady(3, 1))
print("service: 3 tasks running")

# ecs scale: 3 -> 1. It returns once one task is running; two are still stopping.
out = ecs_cli("scale", CLUSTER, SERVICE, "1", "--timeout", "60")
check("Scaling successful" in out, f"ecs scale: {out}")
stopping = [t for t in tasks("STOPPED") if t["lastStatus"] != "STOPPED"]
check(len(stopping) >= 1, f"the scale-in's tasks should still be stopping: {tasks('STOPPED')}")

# ecs deploy while they stop: a new revision with one more environment variable.
out = ecs_cli("deploy", CLUSTER, SERVICE, "-e", "web", "KEY", "value", "--timeout", "120")
check("Deployment successful" in out, f"ecs deploy: {out}")
no_unable_events()
wait_for("1 task of web:2", lambda: steady(1, 2))
definition = ecs.describe_task_definition(taskDefinition="web:2")["taskDefinition"]
env = definition["containerDefinitions"][0].get("environment", [])
check({"name": "KEY", "value": "value"} in env, f"web:2 environment {env}")
check(
    ecs.describe_task_definition(taskDefinition="web:1")["taskDefinition"]["status"] == "INACTIVE",
    "ecs deploy deregisters the previous revision",
)
print("ecs deploy during a scale-in: ok")

# ecs scale out again.
out = ecs_cli("scale", CLUSTER, SERVICE, "2", "--timeout", "90")
check("Scaling successful" in out, f"ecs scale: {out}")
wait_for("2 tasks of web:2", lambda: steady(2, 2))
print("ecs scale: ok")

# ecs run: a one-off task of the family's latest revision, with an overridden command.
out = ecs_cli("run", CLUSTER, "web", "1", "-c", "web", "sleep 30")
check("Successfully started 1 instances of task: web:2" in out, f"ecs run: {out}")
one_off = [
    t
    for t in ecs.describe_tasks(
        cluster=CLUSTER, tasks=ecs.list_tasks(cluster=CLUSTER, startedBy="ECS Deploy")["taskArns"]
    )["tasks"]
]
check(len(one_off) == 1, f"one task started by ECS Deploy: {one_off}")
overrides = one_off[0]["overrides"]["containerOverrides"]
check(
    any(o.get("command") == ["sleep", "30"] for o in overrides), f"the command override reached the task: {overrides}"
)
print("ecs run: ok")

# ecs update: a new revision of the definition, the one it was made from deregistered.
out = ecs_cli("update", "web", "-e", "web", "OTHER", "x")
check("Successfully created revision: 3" in out, f"ecs update: {out}")
env = ecs.describe_task_definition(taskDefinition="web:3")["taskDefinition"]["containerDefinitions"][0]["environment"]
check({"name": "OTHER", "value": "x"} in env and {"name": "KEY", "value": "value"} in env, f"web:3 environment {env}")
check(ecs.describe_task_definition(taskDefinition="web:2")["taskDefinition"]["status"] == "INACTIVE", "web:2 deregistered")
print("ecs update: ok")

print("ECS-DEPLOY OK")
