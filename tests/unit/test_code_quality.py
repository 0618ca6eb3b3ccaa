"""ruff and the import-linter layering contract of DESIGN.md, as part of the test suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_ruff_finds_nothing() -> None:
    result = subprocess.run(
        [str(BIN / "ruff"), "check", "src", "tests", "bench", "tools"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_imports_follow_the_layering() -> None:
    result = subprocess.run(
        [str(BIN / "lint-imports"), "--config", "pyproject.toml"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
