#!/usr/bin/env python3
"""Mixed API load (issue 15): CLIENTS (64) concurrent clients, each with its own boto3 clients and
connection, calling a mix of ECS, ELBv2, CloudWatch, Logs and SSM operations for DURATION (60)
seconds against one emulator on `--runtime simulated` (its own port and temporary data dir; no
Docker: what is loaded is the API, the store and the controllers). Reports calls per operation,
every error by HTTP status and code (the goal: no 5xx at all), throughput per 10 s window, and the
emulator's RSS sampled every second (the goal: bounded, not growing with time).

Usage: python3 bench/load.py <emulator binary>   (bench/load.sh builds it and runs this)
Talks only to 127.0.0.1. Bounded: DURATION seconds, then every client stops.
"""
import collections
import json
import os
import random
import sys
import tempfile
import threading
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from simulated import start_emulator, status_kib, stop_emulator

CLIENTS = int(os.environ.get("CLIENTS", "64"))
DURATION = float(os.environ.get("DURATION", "60"))
CLUSTER = "load"


def clients(endpoint):
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                    region_name="us-east-1")
    cfg = Config(retries={"max_attempts": 1}, max_pool_connections=1,
                 connect_timeout=10, read_timeout=30)
    return {name: session.client(name, endpoint_url=endpoint, config=cfg)
            for name in ("ecs", "elbv2", "cloudwatch", "logs", "ssm")}


def setup(endpoint):
    c = clients(endpoint)
    ecs = c["ecs"]
    ecs.create_cluster(clusterName=CLUSTER)
    for _ in range(4):
        ecs.register_container_instance(
            cluster=CLUSTER,
            instanceIdentityDocument=json.dumps({"instanceType": "m5.4xlarge",
                                                 "availabilityZone": "us-east-1a"}))
    ecs.register_task_definition(family="load", containerDefinitions=[{
        "name": "app", "image": "busybox", "memory": 16, "command": ["sleep", "3600"]}])
    for i in range(4):
        ecs.create_service(cluster=CLUSTER, serviceName=f"svc{i}", taskDefinition="load",
                           desiredCount=1)
    vpc = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                region_name="us-east-1").client(
        "ec2", endpoint_url=endpoint).describe_vpcs()["Vpcs"][0]["VpcId"]
    tg = c["elbv2"].create_target_group(Name="load", Protocol="HTTP", Port=80, VpcId=vpc,
                                        TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    c["logs"].create_log_group(logGroupName="load")
    return tg


def operations(c, tg, me):
    """The mix: (name, weight, call). Every client works on names of its own where it writes."""
    ecs, elbv2, cw, logs, ssm = c["ecs"], c["elbv2"], c["cloudwatch"], c["logs"], c["ssm"]
    state = {"tasks": [], "stream": False, "n": 0}

    def run_task():
        out = ecs.run_task(cluster=CLUSTER, taskDefinition="load", count=1)
        state["tasks"] += [t["taskArn"] for t in out["tasks"]]

    def stop_task():
        if state["tasks"]:
            ecs.stop_task(cluster=CLUSTER, task=state["tasks"].pop(0), reason="bench/load.py")
        else:
            run_task()

    def describe_tasks():
        if state["tasks"]:
            ecs.describe_tasks(cluster=CLUSTER, tasks=state["tasks"][:10])
        else:
            ecs.list_tasks(cluster=CLUSTER)

    def put_log_events():
        if not state["stream"]:
            logs.create_log_stream(logGroupName="load", logStreamName=f"c{me}")
            state["stream"] = True
        logs.put_log_events(logGroupName="load", logStreamName=f"c{me}", logEvents=[
            {"timestamp": int(time.time() * 1000), "message": f"line {state['n']}"}])

    def register_targets():
        state["n"] += 1
        target = {"Id": f"10.{me // 250}.{me % 250}.{state['n'] % 250 + 1}", "Port": 80}
        elbv2.register_targets(TargetGroupArn=tg, Targets=[target])
        elbv2.deregister_targets(TargetGroupArn=tg, Targets=[target])

    def update_service():
        ecs.update_service(cluster=CLUSTER, service=f"svc{me % 4}",
                           desiredCount=random.choice([1, 2]))

    return [
        ("ecs.ListClusters", 10, lambda: ecs.list_clusters()),
        ("ecs.DescribeClusters", 10, lambda: ecs.describe_clusters(clusters=[CLUSTER])),
        ("ecs.DescribeServices", 10, lambda: ecs.describe_services(
            cluster=CLUSTER, services=[f"svc{i}" for i in range(4)])),
        ("ecs.ListTaskDefinitions", 5, lambda: ecs.list_task_definitions(familyPrefix="load")),
        ("ecs.RegisterTaskDefinition", 2, lambda: ecs.register_task_definition(
            family=f"load-{me}", containerDefinitions=[{
                "name": "app", "image": "busybox", "memory": 16}])),
        ("ecs.RunTask", 4, run_task),
        ("ecs.StopTask", 4, stop_task),
        ("ecs.DescribeTasks", 8, describe_tasks),
        ("ecs.UpdateService", 1, update_service),
        ("elbv2.Register+DeregisterTargets", 3, register_targets),
        ("elbv2.DescribeTargetHealth", 5, lambda: elbv2.describe_target_health(
            TargetGroupArn=tg)),
        ("cloudwatch.PutMetricData", 8, lambda: cw.put_metric_data(
            Namespace="Load", MetricData=[{"MetricName": "m", "Value": random.random(),
                                           "Dimensions": [{"Name": "c", "Value": str(me)}]}])),
        ("logs.PutLogEvents", 8, put_log_events),
        ("ssm.PutParameter", 2, lambda: ssm.put_parameter(
            Name=f"/load/{me}", Value=str(state["n"]), Type="String", Overwrite=True)),
        ("ssm.GetParameter", 5, lambda: ssm.get_parameter(Name="/load/0")),
    ]


def client_loop(endpoint, tg, me, ready, clock, results, lock):
    c = clients(endpoint)
    ops = operations(c, tg, me)
    # Every client is built (boto3 takes a while for 64 × 5 of them) before the clock starts.
    ready.wait()
    deadline = clock["deadline"]
    names = [o[0] for o in ops]
    weights = [o[1] for o in ops]
    calls = {o[0]: o[2] for o in ops}
    rng = random.Random(me)
    local = collections.Counter()
    errors = collections.Counter()
    times = []
    while time.time() < deadline:
        name = rng.choices(names, weights)[0]
        try:
            calls[name]()
            local[name] += 1
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            errors[(name, status, e.response.get("Error", {}).get("Code", "?"))] += 1
        except Exception as e:  # connection errors: what a 5xx would be to a user
            errors[(name, 0, type(e).__name__)] += 1
        times.append(time.time())
    with lock:
        results["calls"].update(local)
        results["errors"].update(errors)
        results["times"] += times


def main():
    binary = sys.argv[1]
    data_dir = tempfile.mkdtemp(prefix="ecs-emu-load-")
    proc, endpoint = start_emulator(binary, data_dir)
    try:
        # The SSM parameter every client reads.
        clients(endpoint)["ssm"].put_parameter(Name="/load/0", Value="0", Type="String")
        tg = setup(endpoint)
        print(f"emulator {binary} pid {proc.pid} at {endpoint}; {CLIENTS} clients for {DURATION:.0f} s")
        results = {"calls": collections.Counter(), "errors": collections.Counter(), "times": []}
        lock = threading.Lock()
        clock = {}

        def start_clock():
            clock["start"] = time.time()
            clock["deadline"] = clock["start"] + DURATION

        ready = threading.Barrier(CLIENTS + 1, action=start_clock)
        threads = [threading.Thread(target=client_loop,
                                    args=(endpoint, tg, i, ready, clock, results, lock))
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        ready.wait()
        start, deadline = clock["start"], clock["deadline"]
        rss = []
        while any(t.is_alive() for t in threads) and time.time() < deadline + 60:
            rss.append((time.time() - start, status_kib(proc.pid)[0]))
            time.sleep(1)
        for t in threads:
            t.join(timeout=60)
        elapsed = time.time() - start
        total = sum(results["calls"].values())
        errors = sum(results["errors"].values())
        server_errors = sum(n for (_, status, _), n in results["errors"].items()
                            if status == 0 or status >= 500)
        print(f"\n{total:,} calls answered without error, {errors:,} with an error "
              f"({server_errors:,} 5xx or connection errors) in {elapsed:.1f} s: "
              f"{(total + errors) / DURATION:,.0f} calls/s")
        windows = collections.Counter(int((t - start) // 10) for t in results["times"])
        print("calls per 10 s window: " + ", ".join(
            f"{w * 10}-{w * 10 + 10} s: {windows[w]:,}" for w in sorted(windows)
            if w * 10 < DURATION))
        print("\n| operation | calls |\n|---|---:|")
        for name, n in sorted(results["calls"].items()):
            print(f"| {name} | {n:,} |")
        if results["errors"]:
            print("\n| operation | HTTP status | code | count |\n|---|---:|---|---:|")
            for (name, status, code), n in sorted(results["errors"].items()):
                print(f"| {name} | {status} | {code} | {n:,} |")
        mib = [k / 1024 for _, k in rss]
        first = [k for t, k in rss if t < 10] or [0]
        last = [k for t, k in rss if t >= DURATION - 10] or [0]
        print(f"\nemulator RSS: min {min(mib):.1f} MiB, max {max(mib):.1f} MiB; "
              f"mean over the first 10 s {sum(first) / len(first) / 1024:.1f} MiB, "
              f"over the last 10 s {sum(last) / len(last) / 1024:.1f} MiB")
        return 1 if server_errors else 0
    finally:
        stop_emulator(proc, data_dir)


if __name__ == "__main__":
    sys.exit(main())
