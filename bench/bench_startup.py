"""Start-up: from spawning ``pybernetes server`` on a fresh data directory to /readyz OK.

Reference, measured in the same run: spawning a Python interpreter that only imports
aiohttp, uvloop and orjson — the floor of any Python API server's start-up here.

Target (issue 2): <= 1 s.
Usage: .venv/bin/python bench/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import header, median, running_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    header("reference: python -c 'import aiohttp, uvloop, orjson'")
    ref = []
    for _ in range(args.runs):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import aiohttp, uvloop, orjson"], check=True)
        ref.append(time.monotonic() - started)
    print(f"interpreter + imports: {[round(r * 1000) for r in ref]} ms, median {median(ref) * 1000:.0f} ms")

    header("pybernetes server: spawn to /readyz 200 (fresh data directory)")
    times = []
    for _ in range(args.runs):
        with running_server() as server:
            times.append(server.startup_seconds)
    print(f"start-up: {[round(t * 1000) for t in times]} ms, median {median(times) * 1000:.0f} ms "
          f"(target <= 1,000 ms); ratio to the reference {median(times) / median(ref):.2f}")


if __name__ == "__main__":
    main()
