#!/usr/bin/env python3
"""Scale on `--runtime simulated` (issue 8): 1,000 tasks across 100 virtual instances, and what
state costs the read paths and the service scheduler.

Usage: python3 bench/scale.py <emulator binary>   (bench/scale.sh builds it and runs this)

One emulator, on its own port and temporary data dir, nothing real runs (simulated runtime).
  1. Baseline ("almost empty"): 1 container instance, 100 revisions of one family, 10 services
     (desiredCount 1), 90 RunTask tasks: just enough rows for one full page of every call measured.
     Measure ListTaskDefinitions (one page), ListTasks (one page), DescribeServices (10 services),
     DescribeTasks (100 tasks), and the scheduler's passes (GET /_emulator/state `schedulerPasses`).
  2. Scale up: 99 more instances (100), 9,900 more revisions (100 families x 100 = 10,000), 90 more
     services (100), then 1,000 more tasks in RunTask bursts of 10, timed until all are RUNNING.
  3. Measure the same calls again. Print both, side by side, with ratios.
Talks only to 127.0.0.1.
"""
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request

import boto3
from botocore.config import Config

from simulated import start_emulator, status_kib, stop_emulator

CLUSTER = "scale"
ROUNDS = int(os.environ.get("ROUNDS", "300"))  # samples per call and phase
MIN_PASSES = int(os.environ.get("MIN_PASSES", "30"))  # scheduler passes sampled per phase


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def state(endpoint):
    with urllib.request.urlopen(endpoint + "/_emulator/state", timeout=30) as r:
        return json.load(r)


def wait_running(ecs, arns, timeout):
    deadline = time.time() + timeout
    pending = set(arns)
    while pending and time.time() < deadline:
        batch = list(pending)[:100]
        for t in ecs.describe_tasks(cluster=CLUSTER, tasks=batch)["tasks"]:
            if t["lastStatus"] == "RUNNING":
                pending.discard(t["taskArn"])
            elif t["lastStatus"] == "STOPPED":
                raise SystemExit(f"task stopped: {t.get('stoppedReason')}")
        if pending:
            time.sleep(0.05)
    if pending:
        raise SystemExit(f"{len(pending)} tasks never reached RUNNING within {timeout} s")


def add_instances(ecs, n):
    for _ in range(n):
        ecs.register_container_instance(
            cluster=CLUSTER,
            instanceIdentityDocument=json.dumps({"instanceType": "m5.large",
                                                 "availabilityZone": "us-east-1a"}))


def add_revisions(ecs, family, n):
    for _ in range(n):
        ecs.register_task_definition(family=family, containerDefinitions=[{
            "name": "app", "image": "busybox", "memory": 16, "command": ["sleep", "3600"]}])


def add_services(ecs, first, last):
    for i in range(first, last):
        ecs.create_service(cluster=CLUSTER, serviceName=f"svc{i:03}", taskDefinition="fam000",
                           desiredCount=1)


def run_tasks(ecs, n, latencies=None):
    arns = []
    for _ in range(n // 10):
        t0 = time.perf_counter()
        out = ecs.run_task(cluster=CLUSTER, taskDefinition="fam000", count=10)
        if latencies is not None:
            latencies.append(time.perf_counter() - t0)
        if out["failures"]:
            raise SystemExit(f"placement failures: {out['failures']}")
        arns += [t["taskArn"] for t in out["tasks"]]
    return arns


def wait_services_steady(ecs, n, timeout=120):
    deadline = time.time() + timeout
    names = [f"svc{i:03}" for i in range(n)]
    while time.time() < deadline:
        running = 0
        for i in range(0, n, 10):
            for s in ecs.describe_services(cluster=CLUSTER, services=names[i:i + 10])["services"]:
                running += s["runningCount"] == s["desiredCount"]
        if running == n:
            return
        time.sleep(0.2)
    raise SystemExit(f"services not steady within {timeout} s")


def measure(ecs, endpoint, task_arns, services):
    """p50/p99 (ms) of each call, interleaved round by round so load hits all alike."""
    calls = {
        "ListTaskDefinitions (one page)": lambda: ecs.list_task_definitions(),
        "ListTasks (one page)": lambda: ecs.list_tasks(cluster=CLUSTER),
        "DescribeServices (10)": lambda: ecs.describe_services(cluster=CLUSTER, services=services),
        "DescribeTasks (100)": lambda: ecs.describe_tasks(cluster=CLUSTER, tasks=task_arns),
    }
    # Shape checks: every call answers a full page.
    assert len(ecs.list_task_definitions()["taskDefinitionArns"]) == 100
    assert len(ecs.list_tasks(cluster=CLUSTER)["taskArns"]) == 100
    assert len(ecs.describe_services(cluster=CLUSTER, services=services)["services"]) == 10
    assert len(ecs.describe_tasks(cluster=CLUSTER, tasks=task_arns)["tasks"]) == 100
    samples = {k: [] for k in calls}
    for _ in range(10):  # warm-up
        for f in calls.values():
            f()
    for _ in range(ROUNDS):
        for name, f in calls.items():
            t0 = time.perf_counter()
            f()
            samples[name].append(time.perf_counter() - t0)
    out = {k: (pct(v, 50) * 1000, pct(v, 99) * 1000) for k, v in samples.items()}
    out.update(measure_passes(ecs, endpoint, services))
    return out


def passes_so_far(endpoint):
    # Binaries before the pass statistics have no `schedulerPasses`: the pass is then not measured.
    return state(endpoint).get("schedulerPasses") or {"passes": 0, "recent": []}


def new_passes(endpoint, since):
    """The passes recorded after pass number `since` (at most the last 1,000 are kept)."""
    p = passes_so_far(endpoint)
    new = p["passes"] - since
    return p["passes"], (p["recent"][-min(new, len(p["recent"])):] if new > 0 else [])


def wait_quiet(endpoint, timeout=180):
    """Until three passes in a row reconcile no service (every service at rest)."""
    deadline = time.time() + timeout
    count = passes_so_far(endpoint)["passes"]
    quiet = 0
    while time.time() < deadline:
        count, recent = new_passes(endpoint, count)
        for p in recent:
            quiet = quiet + 1 if p["services"] == 0 else 0
        if quiet >= 3:
            return True
        time.sleep(0.5)
    return False


def measure_passes(ecs, endpoint, services):
    """The same scheduler work in both phases: once every service is at rest, one running task
    of each of the 10 measured services is stopped (StopTask), and the passes that follow (the
    scheduler replaces them, and waits for the replacements to settle) are sampled, up to
    MIN_PASSES of them that reconciled something."""
    quiet = wait_quiet(endpoint)
    first = passes_so_far(endpoint)["passes"]
    for name in services:
        arns = ecs.list_tasks(cluster=CLUSTER, serviceName=name, desiredStatus="RUNNING")["taskArns"]
        if arns:
            ecs.stop_task(cluster=CLUSTER, task=arns[0], reason="bench/scale.py")
    deadline = time.time() + 180
    worked = []
    count = first
    while len(worked) < MIN_PASSES and time.time() < deadline:
        count, recent = new_passes(endpoint, count)
        worked += [p for p in recent if p["services"] > 0]
        time.sleep(0.5)
    us = [p["micros"] / 1000 for p in worked] or [float("nan")]
    per = [p["micros"] / 1000 / p["services"] for p in worked] or [float("nan")]
    reconciled = [p["services"] for p in worked] or [0]
    print(f"  scheduler: {len(worked)} passes after 10 StopTask calls, services reconciled per pass "
          f"p50 {pct(reconciled, 50)} max {max(reconciled)}"
          f"{'' if quiet else ' (never quiet before: some services were still settling)'}")
    return {
        "scheduler pass, same work (10 services' tasks replaced)": (pct(us, 50), pct(us, 99)),
        "scheduler pass, per service reconciled": (pct(per, 50), pct(per, 99)),
    }


def main():
    binary = sys.argv[1]
    data_dir = tempfile.mkdtemp(prefix="ecs-emu-scale-")
    proc, endpoint = start_emulator(binary, data_dir)
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                    region_name="us-east-1")
    ecs = session.client("ecs", endpoint_url=endpoint,
                         config=Config(retries={"max_attempts": 1}, max_pool_connections=4))
    try:
        ecs.create_cluster(clusterName=CLUSTER)
        print(f"emulator {binary} pid {proc.pid} at {endpoint}, data dir {data_dir}")
        t0 = time.perf_counter()
        add_instances(ecs, 1)
        add_revisions(ecs, "fam000", 100)
        add_services(ecs, 0, 10)
        base_arns = run_tasks(ecs, 90)
        wait_running(ecs, base_arns, 120)
        wait_services_steady(ecs, 10)
        print(f"baseline state built in {time.perf_counter() - t0:.1f} s")
        describe_arns = [a for a in ecs.list_tasks(cluster=CLUSTER)["taskArns"]][:100]
        services = [f"svc{i:03}" for i in range(10)]
        idle_rss, _ = status_kib(proc.pid)
        base = measure(ecs, endpoint, describe_arns, services)
        base_rss, _ = status_kib(proc.pid)

        t0 = time.perf_counter()
        add_instances(ecs, 99)
        for f in range(1, 100):
            add_revisions(ecs, f"fam{f:03}", 100)
        add_services(ecs, 10, 100)
        wait_services_steady(ecs, 100)
        print(f"state scaled up in {time.perf_counter() - t0:.1f} s")

        latencies = []
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        arns = run_tasks(ecs, 1000, latencies)
        placed = time.perf_counter() - t0
        wait_running(ecs, arns, 600)
        all_running = time.perf_counter() - t0
        cpu = cpu_seconds(proc.pid) - cpu0
        rss, hwm = status_kib(proc.pid)
        instances = ecs.describe_clusters(clusters=[CLUSTER])["clusters"][0]
        sizes = state(endpoint)["tables"]
        print()
        print(f"1,000 tasks (100 RunTask calls, count=10) on {instances['registeredContainerInstancesCount']} instances, simulated runtime:")
        print(f"  all placed after      {placed:7.2f} s")
        print(f"  all RUNNING after     {all_running:7.2f} s   (emulator CPU {cpu:.2f} s)")
        print(f"  RunTask p50 / p99     {pct(latencies, 50) * 1000:7.1f} / {pct(latencies, 99) * 1000:.1f} ms")
        print(f"  emulator RSS          {rss / 1024:7.1f} MiB (idle baseline {idle_rss / 1024:.1f}, peak VmHWM {hwm / 1024:.1f})")
        print(f"  rows: task definitions {sizes.get('ecs.task_definitions')}, tasks {sizes.get('ecs.tasks')}, "
              f"services {sizes.get('ecs.services')}, instances {sizes.get('ecs.container_instances')}")

        describe_arns = arns[:100]
        services = [f"svc{i:03}" for i in range(90, 100)]
        full = measure(ecs, endpoint, describe_arns, services)
        print()
        print(f"p50 / p99 in ms, {ROUNDS} calls each, interleaved")
        print(f"| call | almost empty p50 | p99 | at scale p50 | p99 | p99 ratio | within 2x |")
        print(f"|---|---:|---:|---:|---:|---:|---|")
        for name in base:
            (b50, b99), (f50, f99) = base[name], full[name]
            ratio = f99 / b99 if b99 else float("inf")
            print(f"| {name} | {b50:.2f} | {b99:.2f} | {f50:.2f} | {f99:.2f} | {ratio:.2f}x | "
                  f"{'yes' if ratio <= 2 else 'NO'} |")
        rss, hwm = status_kib(proc.pid)
        print(f"emulator RSS at the end {rss / 1024:.1f} MiB, peak {hwm / 1024:.1f} MiB")
    finally:
        stop_emulator(proc, data_dir)


if __name__ == "__main__":
    main()
