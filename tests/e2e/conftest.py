"""Fixtures of the kubectl end-to-end tests (the harness itself is e2e_cluster.py)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_cluster import Cluster


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A running ``pybernetes server`` for the module, driven by the module's ``KUBECTL``."""
    root = Path(tempfile.mkdtemp(prefix="pyb-e2e-"))
    c = Cluster(root, request.module.KUBECTL)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)
