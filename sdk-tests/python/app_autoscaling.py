#!/usr/bin/env python3
"""CloudWatch alarms and Application Auto Scaling with boto3 and the AWS CLI v1: boto3's
paginators (DescribeAlarms, DescribeAlarmHistory, DescribeScalableTargets, DescribeScalingPolicies,
DescribeScalingActivities, DescribeScheduledActions), `aws cloudwatch wait alarm-exists` and
`aws application-autoscaling describe-scaling-activities`.

Usage: app_autoscaling.py <endpoint>   (run by sdk-tests/tests/api/autoscaling_app.rs)
Exits non-zero, with a message, on the first failure; prints APP AUTOSCALING OK at the end.
"""
import json
import os
import subprocess
import sys
import threading
import time

ENDPOINT = sys.argv[1]
REGION = "us-east-1"


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


try:
    import boto3
except ImportError as e:
    print(f"MISSING: boto3 is not installed ({e}); run .ci/run", file=sys.stderr)
    sys.exit(3)


def client(service):
    return boto3.client(service, endpoint_url=ENDPOINT, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")


env = dict(os.environ)
env.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION,
            "AWS_PAGER": "", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})


def aws(*args):
    p = subprocess.run(["aws", "--endpoint-url", ENDPOINT, "--output", "json", *args],
                       env=env, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


cw = client("cloudwatch")
aas = client("application-autoscaling")
ecs = client("ecs")

# --- CloudWatch: `aws cloudwatch wait alarm-exists` waits for an alarm made later ----------
# The CLI's waiter polls DescribeAlarms every 5 s; the alarm is created while it waits.
def put_later():
    time.sleep(1)
    cw.put_metric_alarm(AlarmName="py-late", Namespace="Py/App", MetricName="Depth", Statistic="Average",
                        Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")


started = time.time()
threading.Thread(target=put_later).start()
rc, out, err = aws("cloudwatch", "wait", "alarm-exists", "--alarm-names", "py-late")
check(rc == 0, f"aws cloudwatch wait alarm-exists: rc {rc}: {out} {err}")
check(time.time() - started >= 1, "alarm-exists returned before the alarm existed")
rc, out, err = aws("cloudwatch", "wait", "alarm-exists", "--alarm-names", "py-late")
check(rc == 0, f"aws cloudwatch wait alarm-exists (existing): rc {rc}: {err}")

# Five more alarms: boto3's DescribeAlarms paginator walks the six two at a time.
for n in range(5):
    cw.put_metric_alarm(AlarmName=f"py-alarm-{n}", Namespace="Py/App", MetricName="Depth", Statistic="Average",
                        Period=60, EvaluationPeriods=1, Threshold=n, ComparisonOperator="GreaterThanThreshold")
pages = list(cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix="py-", PaginationConfig={"PageSize": 2}))
check(len(pages) == 3, f"3 pages of alarms, got {len(pages)}: {pages}")
names = [a["AlarmName"] for p in pages for a in p["MetricAlarms"]]
check(names == [f"py-alarm-{n}" for n in range(5)] + ["py-late"], f"paged alarm names {names}")
for n in range(3):
    cw.set_alarm_state(AlarmName="py-alarm-0", StateValue="ALARM" if n % 2 == 0 else "OK", StateReason=f"test {n}")
history = [h for p in cw.get_paginator("describe_alarm_history").paginate(
    AlarmName="py-alarm-0", HistoryItemType="StateUpdate", PaginationConfig={"PageSize": 1}) for h in p["AlarmHistoryItems"]]
# (The evaluator may add its own transition back to INSUFFICIENT_DATA; only ours are counted.)
history = [h for h in history if json.loads(h["HistoryData"])["newState"]["stateReason"].startswith("test ")]
check(len(history) == 3, f"3 state updates: {history}")
check(history[0]["HistorySummary"] == "Alarm updated from OK to ALARM", f"newest first: {history[0]}")

# --- Application Auto Scaling on ECS services ------------------------------------------------
ecs.create_cluster(clusterName="py")
ecs.register_task_definition(family="py-sleep", containerDefinitions=[{
    "name": "app", "image": "ecs-emulator-test/busybox:latest", "memory": 32, "command": ["sleep", "3600"]}])
for n in range(5):
    ecs.create_service(cluster="py", serviceName=f"svc-{n}", taskDefinition="py-sleep", desiredCount=0)
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=f"service/py/svc-{n}",
                                 ScalableDimension="ecs:service:DesiredCount", MinCapacity=0, MaxCapacity=4)
pages = list(aas.get_paginator("describe_scalable_targets").paginate(ServiceNamespace="ecs", PaginationConfig={"PageSize": 2}))
check(len(pages) == 3, f"3 pages of scalable targets, got {len(pages)}")
ids = sorted(t["ResourceId"] for p in pages for t in p["ScalableTargets"])
check(ids == [f"service/py/svc-{n}" for n in range(5)], f"paged targets {ids}")

# Raising the minimum sets the desired count: one activity each time (svc-0: 0 → 1 → 2 → 3).
for m in (1, 2, 3):
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId="service/py/svc-0",
                                 ScalableDimension="ecs:service:DesiredCount", MinCapacity=m)
deadline = time.time() + 60
while True:
    acts = [a for p in aas.get_paginator("describe_scaling_activities").paginate(
        ServiceNamespace="ecs", ResourceId="service/py/svc-0", PaginationConfig={"PageSize": 1}) for a in p["ScalingActivities"]]
    if len(acts) == 3 and all(a["StatusCode"] == "Successful" for a in acts):
        break
    check(time.time() < deadline, f"three successful activities for svc-0: {acts}")
    time.sleep(0.2)
check([a["Description"] for a in acts] == [f"Setting desired count to {m}." for m in (3, 2, 1)], f"activities newest first: {acts}")
check(ecs.describe_services(cluster="py", services=["svc-0"])["services"][0]["desiredCount"] == 3, "desired count 3")

# The AWS CLI's describe-scaling-activities (and its own pagination over --page-size).
rc, out, err = aws("application-autoscaling", "describe-scaling-activities", "--service-namespace", "ecs",
                   "--resource-id", "service/py/svc-0", "--page-size", "1")
check(rc == 0, f"aws application-autoscaling describe-scaling-activities: rc {rc}: {err}")
cli_acts = json.loads(out)["ScalingActivities"]
check([a["ActivityId"] for a in cli_acts] == [a["ActivityId"] for a in acts], f"CLI activities {cli_acts}")
check(all(a["Cause"] == f"minimum capacity was set to {m}" for a, m in zip(cli_acts, (3, 2, 1))), f"causes {cli_acts}")
check(all(a["ResourceId"] == "service/py/svc-0" and a["ScalableDimension"] == "ecs:service:DesiredCount" for a in cli_acts), f"ids {cli_acts}")
rc, out, err = aws("application-autoscaling", "describe-scaling-activities", "--service-namespace", "ecs",
                   "--resource-id", "service/py/svc-1")
check(rc == 0 and json.loads(out)["ScalingActivities"] == [], f"no activities for svc-1: {rc} {out} {err}")

# Policies and scheduled actions page too.
for n in range(3):
    aas.put_scaling_policy(PolicyName=f"cpu-{n}", ServiceNamespace="ecs", ResourceId=f"service/py/svc-{n}",
                           ScalableDimension="ecs:service:DesiredCount", PolicyType="TargetTrackingScaling",
                           TargetTrackingScalingPolicyConfiguration={
                               "TargetValue": 50.0 + n,
                               "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageMemoryUtilization"}})
    aas.put_scheduled_action(ServiceNamespace="ecs", ScheduledActionName=f"night-{n}", ResourceId=f"service/py/svc-{n}",
                             ScalableDimension="ecs:service:DesiredCount", Schedule="cron(0 22 * * ? *)",
                             ScalableTargetAction={"MinCapacity": 0, "MaxCapacity": 1})
policies = [p for page in aas.get_paginator("describe_scaling_policies").paginate(
    ServiceNamespace="ecs", PaginationConfig={"PageSize": 1}) for p in page["ScalingPolicies"]]
check(sorted(p["PolicyName"] for p in policies) == ["cpu-0", "cpu-1", "cpu-2"], f"paged policies {policies}")
check(all(len(p["Alarms"]) == 2 for p in policies), f"two alarms per policy {policies}")
actions = [a for page in aas.get_paginator("describe_scheduled_actions").paginate(
    ServiceNamespace="ecs", PaginationConfig={"PageSize": 2}) for a in page["ScheduledActions"]]
check(sorted(a["ScheduledActionName"] for a in actions) == ["night-0", "night-1", "night-2"], f"paged actions {actions}")

# The target tracking alarms are alarms like any other: the paginator sees them by prefix.
tt = [a for p in cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix="TargetTracking-service/py/",
                                                             PaginationConfig={"PageSize": 4}) for a in p["MetricAlarms"]]
check(len(tt) == 6, f"six target tracking alarms: {[a['AlarmName'] for a in tt]}")
check(all(a["MetricName"] == "MemoryUtilization" and a["Namespace"] == "AWS/ECS" for a in tt), f"memory alarms {tt}")

print("APP AUTOSCALING OK")
