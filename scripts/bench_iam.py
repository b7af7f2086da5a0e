#!/usr/bin/env python3
"""IAM sync benchmark: seeds the emulator with N users, G groups and R roles (every user in
one group, every role trusting three users), then runs `host run` and reports AWS calls per
operation, wall time and the host's peak memory. Pages are capped at IAM's maximum (1000),
as AWS does. Not a test: it measures.

Usage: scripts/bench_iam.py [--users 1000 --groups 100 --roles 300]
(build first: scripts/demo.sh, or cargo build --release -p host and the component)
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--groups", type=int, default=100)
    ap.add_argument("--roles", type=int, default=300)
    args = ap.parse_args()

    emu = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests/emulator/emulator.py"), "--scenario", "scale",
         "--users", str(args.users), "--groups", str(args.groups), "--roles", str(args.roles)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    info = json.loads(emu.stdout.readline())
    wasm = os.path.join(ROOT, "guest/target/wasm32-wasip2/release/aws_connector.wasm")
    host = os.path.join(ROOT, "target/release/host")
    with tempfile.TemporaryDirectory() as d:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", d),
            "BATON_GLOBAL_ACCESS_KEY_ID": info["reader"]["access_key_id"],
            "BATON_GLOBAL_SECRET_ACCESS_KEY": info["reader"]["secret_access_key"],
        }
        cmd = [host, "run", wasm, "-f", os.path.join(d, "sync.c1z"), "--endpoint-url", info["endpoint"], "-o", "json"]
        started = time.monotonic()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        size = os.path.getsize(os.path.join(d, "sync.c1z")) if out.returncode == 0 else 0
    emu.stdin.close()
    emu.wait()
    if out.returncode != 0:
        sys.exit(f"host run failed:\n{out.stderr}")
    s = json.loads(out.stdout)
    print(f"estate: {args.users} users, {args.groups} groups, {args.roles} roles")
    print(f"resources: {s['resources']}, entitlements: {s['entitlements']}, grants: {s['grants']} (+{s['expanded_grants_created']} expanded)")
    print(f"AWS calls: {s['aws_calls']} {json.dumps(s['aws_calls_by_operation'], sort_keys=True)}")
    print(f"phases: {s['phases_ms']}")
    print(f"wall time: {wall:.2f} s (sync {s['seconds']:.2f} s), host peak RSS: {peak_kib / 1024:.1f} MiB, c1z: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
