"""Image pull throughput: ``registry.pull`` against ``skopeo copy`` of the same image.

A 5-layer busybox image (the busybox base layer and 4 layers of random, incompressible data,
``--layer-mb`` each) is pushed to Debian's docker-registry on 127.0.0.1.  Each repetition
pulls it into an empty image store (every blob's digest and every layer's diff id checked)
and copies it with ``skopeo copy docker://... oci:DIR`` into an empty directory (digests
checked, layers left compressed), alternating which goes first.  Prints the medians of both
and the ratio (target <= 1.5).

Usage: .venv/bin/python bench/kubelet/bench_image_pull.py [--layer-mb 4] [--repetitions 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))

import busybox_image  # noqa: E402
import registry as support  # noqa: E402

from pybernetes.kubelet.runtime.images import ImageStore  # noqa: E402
from pybernetes.kubelet.runtime.registry import pull  # noqa: E402


def time_pull(ref: str, workdir: Path) -> float:
    store_dir = Path(tempfile.mkdtemp(dir=workdir, prefix="store-"))
    try:
        store = ImageStore(store_dir)
        started = time.perf_counter()
        asyncio.run(pull(store, ref))
        return time.perf_counter() - started
    finally:
        shutil.rmtree(store_dir)


def time_skopeo(ref: str, workdir: Path, home: Path) -> float:
    target = Path(tempfile.mkdtemp(dir=workdir, prefix="skopeo-"))
    try:
        started = time.perf_counter()
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}",
                        f"oci:{target}:1"], check=True, capture_output=True, env={**os.environ, "HOME": str(home)})
        return time.perf_counter() - started
    finally:
        shutil.rmtree(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer-mb", type=float, default=4.0, help="size of each random layer (MB)")
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    if (reason := support.missing()) is not None:
        sys.exit(f"bench_image_pull: {reason}")
    workdir = Path(tempfile.mkdtemp(prefix="pyb-bench-pull-"))
    try:
        size = int(args.layer_mb * 1_000_000)
        layout = workdir / "layout"
        info = busybox_image.build_layout(layout, "bench:1", extra_layers=[
            {f"data/{i}.bin": os.urandom(size)} for i in range(4)])
        blob_bytes = sum((layout / "blobs" / "sha256" / d[7:]).stat().st_size for d in info["layers"])
        with support.running_registry(workdir / "registry") as reg:
            reg.push(layout, "1", "bench:1")
            ref = f"{reg.host}/bench:1"
            home = workdir / "home"
            home.mkdir()
            time_pull(ref, workdir)  # warm up: imports, the registry's caches, the HTTPS probe
            time_skopeo(ref, workdir, home)
            pulls, copies = [], []
            for rep in range(args.repetitions):
                if rep % 2:
                    copies.append(time_skopeo(ref, workdir, home))
                    pulls.append(time_pull(ref, workdir))
                else:
                    pulls.append(time_pull(ref, workdir))
                    copies.append(time_skopeo(ref, workdir, home))
        ours, theirs = statistics.median(pulls), statistics.median(copies)
        mb = blob_bytes / 1e6
        print(f"image: {len(info['layers'])} layers, {mb:.1f} MB of layer blobs; {args.repetitions} repetitions")
        print(f"pull (registry.pull into an empty store): median {ours * 1000:.0f} ms "
              f"({mb / ours:.0f} MB/s)  runs: {' '.join(f'{t * 1000:.0f}' for t in pulls)}")
        print(f"skopeo copy docker:// -> oci:          median {theirs * 1000:.0f} ms "
              f"({mb / theirs:.0f} MB/s)  runs: {' '.join(f'{t * 1000:.0f}' for t in copies)}")
        print(f"ratio pull / skopeo: {ours / theirs:.2f} (target <= 1.5)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
