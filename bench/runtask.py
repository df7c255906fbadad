#!/usr/bin/env python3
"""RunTask → RUNNING latency against `docker run` of the same image, and 200 concurrent tasks.

Usage: python3 bench/runtask.py <emulator binary>   (bench/runtask.sh builds it and runs this)
Talks only to 127.0.0.1 and the local Docker daemon.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import boto3

IMAGE = "ecs-emulator-test/busybox:latest"
N = 20


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def start_emulator(binary, data_dir):
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--log-level", "warn"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    return proc, line.strip().rsplit(" ", 1)[-1]


def docker_run_latency():
    samples = []
    for _ in range(N):
        t0 = time.perf_counter()
        cid = subprocess.run(["docker", "run", "-d", "-m", "16m", IMAGE, "sleep", "3600"],
                             check=True, capture_output=True, text=True).stdout.strip()
        samples.append(time.perf_counter() - t0)
        subprocess.run(["docker", "rm", "-f", cid], check=True, capture_output=True)
    return samples


def wait_running(ecs, cluster, arns, timeout=120):
    deadline = time.time() + timeout
    pending = set(arns)
    while pending and time.time() < deadline:
        batch = list(pending)[:100]
        for t in ecs.describe_tasks(cluster=cluster, tasks=batch)["tasks"]:
            if t["lastStatus"] == "RUNNING":
                pending.discard(t["taskArn"])
            elif t["lastStatus"] == "STOPPED":
                raise SystemExit(f"task stopped: {t.get('stoppedReason')}")
        if pending:
            time.sleep(0.005)
    if pending:
        raise SystemExit(f"{len(pending)} tasks never reached RUNNING")


def main():
    binary = sys.argv[1]
    data_dir = tempfile.mkdtemp(prefix="ecs-emu-bench-")
    proc, endpoint = start_emulator(binary, data_dir)
    try:
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                        region_name="us-east-1")
        ecs = session.client("ecs", endpoint_url=endpoint)
        ecs.create_cluster(clusterName="bench")
        for _ in range(4):
            ecs.register_container_instance(
                cluster="bench",
                instanceIdentityDocument=json.dumps({"instanceType": "m5.4xlarge",
                                                     "availabilityZone": "us-east-1a"}))
        ecs.register_task_definition(family="sleeper", containerDefinitions=[{
            "name": "app", "image": IMAGE, "memory": 16, "command": ["sleep", "3600"]}])
        # Warm-up (first call parses the model, first container warms Docker's caches).
        arn = ecs.run_task(cluster="bench", taskDefinition="sleeper")["tasks"][0]["taskArn"]
        wait_running(ecs, "bench", [arn])
        ecs.stop_task(cluster="bench", task=arn)

        docker_samples = docker_run_latency()
        ecs_samples = []
        for _ in range(N):
            t0 = time.perf_counter()
            arn = ecs.run_task(cluster="bench", taskDefinition="sleeper")["tasks"][0]["taskArn"]
            wait_running(ecs, "bench", [arn])
            ecs_samples.append(time.perf_counter() - t0)
            ecs.stop_task(cluster="bench", task=arn)
        d = statistics.median(docker_samples)
        e = statistics.median(ecs_samples)
        goal = 1.15 * d + 0.050
        print(f"docker run -d (median of {N}):       {d * 1000:7.1f} ms")
        print(f"RunTask -> RUNNING (median of {N}):  {e * 1000:7.1f} ms")
        print(f"goal <= 1.15 x docker + 50 ms:      {goal * 1000:7.1f} ms  {'MET' if e <= goal else 'MISSED'}")

        # Let the stops finish, then 200 concurrent tasks.
        time.sleep(3)
        idle_rss, _ = rss_kib(proc.pid)
        t0 = time.perf_counter()
        arns = []
        for _ in range(20):
            out = ecs.run_task(cluster="bench", taskDefinition="sleeper", count=10)
            if out["failures"]:
                raise SystemExit(f"placement failures: {out['failures']}")
            arns += [t["taskArn"] for t in out["tasks"]]
        wait_running(ecs, "bench", arns, timeout=600)
        all_running = time.perf_counter() - t0
        rss, hwm = rss_kib(proc.pid)
        print(f"200 tasks RUNNING after:            {all_running:7.1f} s")
        print(f"emulator RSS idle / with 200 tasks / peak: {idle_rss / 1024:.1f} / {rss / 1024:.1f} / {hwm / 1024:.1f} MiB"
              f"  (goal < 100 MiB: {'MET' if hwm < 100 * 1024 else 'MISSED'})")
        for i in range(0, len(arns), 10):
            for a in arns[i:i + 10]:
                ecs.stop_task(cluster="bench", task=a)
    finally:
        try:
            import urllib.request
            urllib.request.urlopen(urllib.request.Request(endpoint + "/_emulator/reset", method="POST"), timeout=120)
        except Exception as exc:  # noqa: BLE001 - best effort cleanup
            print(f"reset failed: {exc}")
        proc.kill()


if __name__ == "__main__":
    main()
