"""Completion indexes of Indexed Jobs: the interval strings of ``status.completedIndexes``,
``status.failedIndexes`` and ``successPolicy.rules[].succeededIndexes`` ("1,3-5,7"), and the
per-pod index bookkeeping (upstream's indexed_job_utils).

Owns:

- ``Intervals`` — an ordered, non-overlapping, non-adjacent list of closed ``(first, last)``
  intervals: parsing (``Intervals.parse``, lenient as upstream: bad or out-of-range pieces are
  skipped), formatting (``str``), membership, totals and merging.
- The pod side: the completion index of a pod (annotation, else label), the annotations and
  labels a pod of an index gets, the ``JOB_COMPLETION_INDEX`` environment variable, the
  generated name prefix ``<job>-<index>-`` and the hostname ``<job>-<index>``, and the
  per-index failure counts carried from a failed pod to its replacement.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
MAX_GENERATED_NAME_LENGTH = 58  # 63 minus the 5 random characters of generateName


class Intervals:
    """Sorted disjoint closed intervals of non-negative integers."""

    __slots__ = ("items",)

    def __init__(self, items: Iterable[tuple[int, int]] = ()) -> None:
        self.items: list[tuple[int, int]] = list(items)

    @classmethod
    def parse(cls, text: str | None, completions: int) -> Intervals:
        """Intervals from "1,3-5"; pieces that do not parse, are reversed, repeat or overlap an
        earlier piece are skipped; indexes at or beyond ``completions`` are dropped."""
        out = cls()
        if not text:
            return out
        for piece in text.split(","):
            first_s, sep, last_s = piece.partition("-")
            try:
                first = int(first_s)
                last = int(last_s) if sep else first
            except ValueError:
                continue
            if first < 0 or last < first or first >= completions:
                continue
            last = min(last, completions - 1)
            if out.items and first <= out.items[-1][1]:
                continue  # not in increasing order
            if out.items and first == out.items[-1][1] + 1:
                out.items[-1] = (out.items[-1][0], last)
            else:
                out.items.append((first, last))
        return out

    @classmethod
    def of(cls, indexes: Iterable[int]) -> Intervals:
        return cls().with_indexes(indexes)

    def __str__(self) -> str:
        return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in self.items)

    def __repr__(self) -> str:
        return f"Intervals({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Intervals) and self.items == other.items

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def total(self) -> int:
        return sum(b - a + 1 for a, b in self.items)

    def has(self, index: int) -> bool:
        lo, hi = 0, len(self.items)
        while lo < hi:
            mid = (lo + hi) // 2
            a, b = self.items[mid]
            if index < a:
                hi = mid
            elif index > b:
                lo = mid + 1
            else:
                return True
        return False

    __contains__ = has

    def indexes(self) -> list[int]:
        return [i for a, b in self.items for i in range(a, b + 1)]

    def merge(self, other: Intervals) -> Intervals:
        """The union of both (a new object)."""
        merged: list[tuple[int, int]] = []
        for a, b in sorted(self.items + other.items):
            if merged and a <= merged[-1][1] + 1:
                if b > merged[-1][1]:
                    merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        return Intervals(merged)

    def with_indexes(self, indexes: Iterable[int]) -> Intervals:
        """The union with single indexes (a new object)."""
        return self.merge(Intervals((i, i) for i in sorted(set(indexes)) if i >= 0))

    def overlap(self, other: Intervals) -> int:
        """How many indexes both contain."""
        count = i = j = 0
        while i < len(self.items) and j < len(other.items):
            a1, b1 = self.items[i]
            a2, b2 = other.items[j]
            count += max(0, min(b1, b2) - max(a1, a2) + 1)
            if b1 < b2:
                i += 1
            elif b2 < b1:
                j += 1
            else:
                i += 1
                j += 1
        return count


# -- pods of an index ----------------------------------------------------------------------------


def _int_or_none(value: Any) -> int | None:
    if not isinstance(value, str) or not value.isdigit():
        return None
    return int(value)


def completion_index(pod: Obj) -> int | None:
    """The pod's completion index (annotation first, then label); None when absent or bad."""
    meta = pod.get("metadata") or {}
    index = _int_or_none((meta.get("annotations") or {}).get(COMPLETION_INDEX))
    if index is None:
        index = _int_or_none((meta.get("labels") or {}).get(COMPLETION_INDEX))
    return index


def valid_index(pod: Obj, completions: int) -> int | None:
    """The completion index when it is within ``[0, completions)``, else None."""
    index = completion_index(pod)
    return index if index is not None and index < completions else None


def pod_indexes(pods: Iterable[Obj]) -> set[int]:
    return {i for i in (completion_index(p) for p in pods) if i is not None}


def generate_name_for_index(job_name: str, index: int) -> str:
    """``<job>-<index>-``, the job name cut so the prefix fits a generated name."""
    suffix = f"-{index}-"
    prefix = job_name + suffix
    if len(prefix) > MAX_GENERATED_NAME_LENGTH:
        prefix = job_name[:MAX_GENERATED_NAME_LENGTH - len(suffix)] + suffix
    return prefix


def hostname_for_index(job_name: str, index: int) -> str:
    return f"{job_name}-{index}"


def add_completion_index_env(template: Obj) -> None:
    """``JOB_COMPLETION_INDEX`` from the downward API (the index annotation) in every init and
    app container that does not define it already (mutates ``template``)."""
    spec = template.setdefault("spec", {})
    for field in ("initContainers", "containers"):
        for container in spec.get(field) or []:
            env = container.setdefault("env", [])
            if any(isinstance(e, dict) and e.get("name") == COMPLETION_INDEX_ENV for e in env):
                continue
            env.append({"name": COMPLETION_INDEX_ENV, "valueFrom": {"fieldRef": {
                "apiVersion": "v1", "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}})


def stamp_index(template: Obj, job_name: str, index: int) -> None:
    """The index annotation and label and the hostname of the index's pod (mutates)."""
    meta = template.setdefault("metadata", {})
    meta.setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
    meta.setdefault("labels", {})[COMPLETION_INDEX] = str(index)
    template.setdefault("spec", {})["hostname"] = hostname_for_index(job_name, index)


def failure_counts(pod: Obj) -> tuple[int, int]:
    """(index failure count, index ignored failure count) from the pod's annotations."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return (_int_or_none(annotations.get(INDEX_FAILURE_COUNT)) or 0,
            _int_or_none(annotations.get(INDEX_IGNORED_FAILURE_COUNT)) or 0)


def absolute_failure_count(pod: Obj) -> int:
    failed, ignored = failure_counts(pod)
    return failed + ignored


def stamp_failure_counts(template: Obj, failed: int, ignored: int) -> None:
    annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[INDEX_FAILURE_COUNT] = str(failed)
    if ignored > 0:
        annotations[INDEX_IGNORED_FAILURE_COUNT] = str(ignored)
