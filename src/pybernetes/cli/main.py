"""The ``pybernetes`` command (placeholder until the CLI lands)."""

from __future__ import annotations


def main() -> None:
    raise SystemExit("pybernetes: not yet")
