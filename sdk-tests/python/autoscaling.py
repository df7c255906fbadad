#!/usr/bin/env python3
"""EC2 Auto Scaling with boto3 and the AWS CLI v1: paginators, describe-auto-scaling-groups,
describe-scaling-activities, `aws autoscaling wait group-in-service` and `group-exists`.

Usage: autoscaling.py <endpoint>   (run by sdk-tests/tests/api/autoscaling_cluster.rs)
Exits non-zero, with a message, on the first failure; prints AUTOSCALING OK at the end.
"""
import json
import os
import subprocess
import sys
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
MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
os.environ["AWS_DATA_PATH"] = MODELS
env.update({"AWS_DATA_PATH": MODELS, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION,
            "AWS_PAGER": "", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})


def aws(*args):
    p = subprocess.run(["aws", "--endpoint-url", ENDPOINT, "--output", "json", *args],
                       env=env, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


ec2 = client("ec2")
asg = client("autoscaling")
ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-ecs-hvm-*-x86_64"]}])["Images"][0]["ImageId"]
lt = ec2.create_launch_template(LaunchTemplateName="py-lt", LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro"})
lt_id = lt["LaunchTemplate"]["LaunchTemplateId"]
check(lt_id.startswith("lt-"), f"launch template id {lt_id}")

# Five groups of one instance each; boto3's paginator walks them two at a time.
for n in range(5):
    asg.create_auto_scaling_group(AutoScalingGroupName=f"py-{n}", MinSize=1, MaxSize=2,
                                  LaunchTemplate={"LaunchTemplateId": lt_id, "Version": "$Latest"},
                                  AvailabilityZones=["us-east-1a", "us-east-1b"])
pages = list(asg.get_paginator("describe_auto_scaling_groups").paginate(PaginationConfig={"PageSize": 2}))
check(len(pages) == 3, f"3 pages of groups, got {len(pages)}")
names = [g["AutoScalingGroupName"] for p in pages for g in p["AutoScalingGroups"]]
check(names == [f"py-{n}" for n in range(5)], f"paged names {names}")

# `aws autoscaling wait group-in-service`: this AWS CLI v1 and botocore ship no autoscaling
# waiter model (the AWS CLI v2 does); sdk-tests/python/models holds AWS's own definitions (the
# acceptors aws-sdk-rust's autoscaling waiters are generated from), given to the CLI and boto3
# through AWS_DATA_PATH. The real CLI waiter polls DescribeAutoScalingGroups until every
# group has MinSize instances InService (first call at once, then every 15 s, 40 attempts).
started = time.time()
rc, out, err = aws("autoscaling", "wait", "group-in-service", "--auto-scaling-group-names", "py-0", "py-1")
check(rc == 0, f"aws autoscaling wait group-in-service: rc {rc}: {out} {err}")
check(time.time() - started < 120, "group-in-service took too long")
rc, out, err = aws("autoscaling", "wait", "group-exists", "--auto-scaling-group-names", "py-4")
check(rc == 0, f"aws autoscaling wait group-exists: rc {rc}: {err}")
# boto3 gets the same waiters from AWS_DATA_PATH; an unknown group never exists.
try:
    asg.get_waiter("group_exists").wait(AutoScalingGroupNames=["py-none"], WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    fail("group_exists succeeded for a missing group")
except Exception as e:
    check("Max attempts exceeded" in str(e), f"group_exists on a missing group: {e}")

rc, out, err = aws("autoscaling", "describe-auto-scaling-groups", "--auto-scaling-group-names", "py-0")
check(rc == 0, f"aws autoscaling describe-auto-scaling-groups: rc {rc}: {err}")
g = json.loads(out)["AutoScalingGroups"][0]
check(g["LaunchTemplate"]["LaunchTemplateId"] == lt_id, f"launch template {g}")
check(g["Instances"][0]["LifecycleState"] == "InService", f"instances {g['Instances']}")
check(g["DesiredCapacity"] == 1 and g["MinSize"] == 1 and g["MaxSize"] == 2, f"sizes {g}")

rc, out, err = aws("autoscaling", "describe-scaling-activities", "--auto-scaling-group-name", "py-0")
check(rc == 0, f"aws autoscaling describe-scaling-activities: rc {rc}: {err}")
acts = json.loads(out)["Activities"]
check(len(acts) == 1, f"one activity: {acts}")
check(acts[0]["Description"].startswith("Launching a new EC2 instance: i-"), f"description {acts[0]}")
check("a user request created an AutoScalingGroup changing the desired capacity from 0 to 1." in acts[0]["Cause"], f"cause {acts[0]}")
check(acts[0]["StatusCode"] == "Successful", f"status {acts[0]}")

# Activities page too (boto3 paginator over DescribeScalingActivities, MaxRecords 1).
asg.set_desired_capacity(AutoScalingGroupName="py-1", DesiredCapacity=2)
deadline = time.time() + 60
while True:
    acts = [a for p in asg.get_paginator("describe_scaling_activities").paginate(AutoScalingGroupName="py-1", PaginationConfig={"PageSize": 1}) for a in p["Activities"]]
    if len(acts) == 2:
        break
    check(time.time() < deadline, f"two activities for py-1: {acts}")
    time.sleep(0.1)
check("a user request explicitly set group desired capacity changing the desired capacity from 1 to 2." in acts[0]["Cause"], f"newest first: {acts}")

# Errors decode as ValidationError with AWS's message.
try:
    asg.update_auto_scaling_group(AutoScalingGroupName="py-2", MinSize=3)
    fail("min > max was accepted")
except asg.exceptions.ClientError as e:
    check(e.response["Error"]["Code"] == "ValidationError", f"code {e.response}")
    check(e.response["Error"]["Message"] == "Max bound, 2, must be greater than or equal to min bound, 3", f"message {e.response}")
    check(e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, f"status {e.response}")

print("AUTOSCALING OK")
