#!/usr/bin/env python3
"""Refresh the vendored botocore service models.

Downloads the botocore wheel from PyPI (or uses the one given as argv[1]), keeps the
service-2 model of every service the emulator speaks, strips the documentation and
writes emulator/models/<service>.json.gz, which the binary embeds at build time.

Usage: python3 emulator/models/refresh.py [botocore.whl]
"""
import glob
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

SERVICES = [
    "ecs", "ecr", "elbv2", "elb", "autoscaling", "application-autoscaling",
    "cloudwatch", "logs", "efs", "servicediscovery", "ec2", "sts", "iam", "ssm",
]
DROP = {"documentation", "documentationUrl", "deprecatedMessage", "examples", "box"}
HERE = os.path.dirname(os.path.abspath(__file__))


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROP}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def main():
    if len(sys.argv) > 1:
        wheel = sys.argv[1]
    else:
        tmp = tempfile.mkdtemp()
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, "botocore"],
                       check=True)
        wheel = glob.glob(os.path.join(tmp, "botocore-*.whl"))[0]
    version = os.path.basename(wheel).split("-")[1]
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        for svc in SERVICES:
            candidates = sorted(n for n in names
                                if n.startswith(f"botocore/data/{svc}/") and n.endswith("/service-2.json.gz"))
            model = json.load(gzip.open(io.BytesIO(z.read(candidates[-1]))))
            data = json.dumps(strip(model), separators=(",", ":")).encode()
            out = os.path.join(HERE, f"{svc}.json.gz")
            # mtime=0 keeps the output byte-identical across refreshes of the same model.
            with open(out, "wb") as f:
                f.write(gzip.compress(data, compresslevel=9, mtime=0))
            print(f"{svc}: {len(model['operations'])} operations, {len(data)} bytes")
        notice = next(n for n in names if n.endswith(".dist-info/NOTICE"))
        with open(os.path.join(HERE, "NOTICE"), "wb") as f:
            f.write(z.read(notice))
    with open(os.path.join(HERE, "VERSION"), "w") as f:
        f.write(f"botocore {version}\n")


if __name__ == "__main__":
    main()
