"""The real kubectl 1.32 for the discovery and OpenAPI tests: run against a test server's URL
with an isolated HOME and no kubeconfig, from a worker thread so that the test's event loop
(which serves the requests) keeps running."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"


def needs_kubectl(test: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a test that runs the real kubectl: e2e, skipped where kubectl 1.32 is missing."""
    test = pytest.mark.skipif(not shutil.which(KUBECTL), reason="kubectl 1.32 is not installed")(test)
    return pytest.mark.e2e(test)


def run_kubectl(server: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(home / "none")}
    return subprocess.run(
        [KUBECTL, "--server", server, *args], env=env, capture_output=True, text=True, timeout=60
    )


async def kubectl_in_thread(server: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``run_kubectl`` in the default executor."""
    return await asyncio.get_running_loop().run_in_executor(None, run_kubectl, server, home, *args)
