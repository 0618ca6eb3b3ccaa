"""A snapshot's nodes as columns (numpy arrays): row ``i`` is ``snapshot.node_infos[i]``.

Filter and Score run for every node of every cycle; done node by node in Python they cost
microseconds per node per plugin, milliseconds per pod with thousands of nodes.  A plugin may
therefore also implement ``filter_table``/``score_table`` (framework.py), which answer for
all rows at once from these columns:

- ``alloc(resource)`` / ``requested(resource)``: allocatable and the sum of the requests of the
  node's pods (bound and assumed), int64 in the units of ``resources.py`` (millicores, bytes,
  counts; ``pods`` counts pods).  Resources no node has read as zeros.
- ``nz_cpu`` / ``nz_memory``: the non-zero requests scoring uses.
- ``unschedulable``: ``spec.unschedulable``.
- ``tainted_rows`` / ``port_rows`` / ``image_rows``: the rows (sorted int arrays) of nodes with
  taints, with host ports in use, with images listed.  Most nodes have none of these, so the
  plugins that depend on them decide the few rows that do node by node.
- ``label_codes(key)``: each row's value of node label ``key`` as an int code (-1: no such
  label) and the code of each value; tracked from the first request on.
- ``versions``: a stamp per row, new whenever the row is set, so that state kept across
  cycles (PodTopologySpread's domain counts) recounts only the rows that changed.

The per-node ``filter``/``score`` methods stay the definition of a plugin's verdict; the table
forms are accelerated equivalents, and a shared test checks that both agree.

The cache's snapshot keeps its table in step (``set_row``/``append`` for the nodes changed
since the last cycle); a plain ``Snapshot`` builds one on first use (``NodeTable.of``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np

from pybernetes.scheduler.framework import CycleState, NodeInfo, Status
from pybernetes.scheduler.resources import CPU, EPHEMERAL, MEMORY, PODS

BASE_RESOURCES = (CPU, MEMORY, EPHEMERAL, PODS)
_INT = np.int64


class NodeTable:
    """Columns of node figures; see the module docstring."""

    def __init__(self, capacity: int = 64) -> None:
        self.n = 0
        self._cap = max(8, capacity)
        self.infos: list[NodeInfo] = []
        self.row_of: dict[str, int] = {}
        self._alloc: dict[str, np.ndarray] = {r: np.zeros(self._cap, _INT) for r in BASE_RESOURCES}
        self._requested: dict[str, np.ndarray] = {r: np.zeros(self._cap, _INT) for r in BASE_RESOURCES}
        self._nz_cpu = np.zeros(self._cap, _INT)
        self._nz_memory = np.zeros(self._cap, _INT)
        self._unschedulable = np.zeros(self._cap, bool)
        self._tainted: set[int] = set()
        self._ports: set[int] = set()
        self._images: set[int] = set()
        self._sorted: dict[str, np.ndarray] = {}  # memo of the sparse row sets as arrays
        self._zeros: np.ndarray | None = None
        self._versions = np.zeros(self._cap, _INT)
        self._stamp = 0
        self._labels: dict[str, tuple[np.ndarray, dict[str, int]]] = {}  # key -> (codes, value -> code)

    @classmethod
    def of(cls, infos: Sequence[NodeInfo]) -> NodeTable:
        table = cls(len(infos))
        for info in infos:
            table.append(info)
        return table

    # -- reading --------------------------------------------------------------------------------

    def alloc(self, resource: str) -> np.ndarray:
        column = self._alloc.get(resource)
        return column[: self.n] if column is not None else self.zeros()

    def requested(self, resource: str) -> np.ndarray:
        column = self._requested.get(resource)
        return column[: self.n] if column is not None else self.zeros()

    @property
    def nz_cpu(self) -> np.ndarray:
        return self._nz_cpu[: self.n]

    @property
    def nz_memory(self) -> np.ndarray:
        return self._nz_memory[: self.n]

    @property
    def unschedulable(self) -> np.ndarray:
        return self._unschedulable[: self.n]

    @property
    def versions(self) -> np.ndarray:
        return self._versions[: self.n]

    def label_codes(self, key: str) -> tuple[np.ndarray, dict[str, int]]:
        """(code of each row's value of label ``key``, -1 when missing; value -> code)."""
        tracked = self._labels.get(key)
        if tracked is None:
            codes = np.full(self._cap, -1, np.int32)
            index: dict[str, int] = {}
            for row, info in enumerate(self.infos):
                value = info.labels.get(key)
                if value is not None:
                    codes[row] = index.setdefault(value, len(index))
            tracked = self._labels[key] = (codes, index)
        return tracked[0][: self.n], tracked[1]

    def zeros(self) -> np.ndarray:
        """A shared read-only int64 zero column (never write to it)."""
        if self._zeros is None or len(self._zeros) != self.n:
            self._zeros = np.zeros(self.n, _INT)
            self._zeros.flags.writeable = False
        return self._zeros

    def _rows(self, key: str, rows: set[int]) -> np.ndarray:
        out = self._sorted.get(key)
        if out is None:
            out = self._sorted[key] = np.array(sorted(rows), dtype=np.intp)
        return out

    @property
    def tainted_rows(self) -> np.ndarray:
        return self._rows("taints", self._tainted)

    @property
    def port_rows(self) -> np.ndarray:
        return self._rows("ports", self._ports)

    @property
    def image_rows(self) -> np.ndarray:
        return self._rows("images", self._images)

    def rows_named(self, names: Iterable[str]) -> np.ndarray:
        """A boolean column: the rows of the nodes named."""
        mask = np.zeros(self.n, bool)
        rows = [r for r in (self.row_of.get(name) for name in names) if r is not None]
        if rows:
            mask[rows] = True
        return mask

    # -- writing --------------------------------------------------------------------------------

    def _grow(self) -> None:
        cap = self._cap * 2
        for columns in (self._alloc, self._requested):
            for name, column in columns.items():
                bigger = np.zeros(cap, _INT)
                bigger[: self._cap] = column
                columns[name] = bigger
        for key, (codes, index) in self._labels.items():
            bigger = np.full(cap, -1, np.int32)
            bigger[: self._cap] = codes
            self._labels[key] = (bigger, index)
        for attr in ("_nz_cpu", "_nz_memory", "_unschedulable", "_versions"):
            column = getattr(self, attr)
            bigger = np.zeros(cap, column.dtype)
            bigger[: self._cap] = column
            setattr(self, attr, bigger)
        self._cap = cap

    def _column(self, columns: dict[str, np.ndarray], resource: str) -> np.ndarray:
        column = columns.get(resource)
        if column is None:
            column = columns[resource] = np.zeros(self._cap, _INT)
        return column

    def append(self, info: NodeInfo) -> int:
        if self.n == self._cap:
            self._grow()
        row = self.n
        self.n += 1
        self.infos.append(info)
        self.set_row(row, info)
        return row

    def set_row(self, row: int, info: NodeInfo) -> None:
        """Row ``row`` now describes ``info`` (``infos[row]`` is replaced too)."""
        old = self.infos[row]
        if old.name != info.name:
            self.row_of.pop(old.name, None)
        self.infos[row] = info
        self.row_of[info.name] = row
        allocatable, requested = info.allocatable, info.requested
        for name in allocatable.keys() - self._alloc.keys():
            self._column(self._alloc, name)
        for name in requested.keys() - self._requested.keys():
            self._column(self._requested, name)
        for name, column in self._alloc.items():
            column[row] = allocatable.get(name, 0)
        for name, column in self._requested.items():
            column[row] = requested.get(name, 0)
        self._stamp += 1
        self._versions[row] = self._stamp
        if self._labels:
            labels = info.labels
            for key, (codes, index) in self._labels.items():
                value = labels.get(key)
                codes[row] = -1 if value is None else index.setdefault(value, len(index))
        self._nz_cpu[row] = info.non_zero_cpu
        self._nz_memory[row] = info.non_zero_memory
        spec = info.node.get("spec") or {}
        self._unschedulable[row] = bool(spec.get("unschedulable"))
        self._mark("taints", self._tainted, row, bool(spec.get("taints")))
        self._mark("ports", self._ports, row, bool(info.used_ports))
        self._mark("images", self._images, row, bool(info.images))

    def _mark(self, key: str, rows: set[int], row: int, present: bool) -> None:
        if present != (row in rows):
            if present:
                rows.add(row)
            else:
                rows.discard(row)
            self._sorted.pop(key, None)


def sparse_filter(filter_: Callable[[CycleState, Any, NodeInfo], Status], state: CycleState, pod: Any,
                  table: NodeTable, rows: np.ndarray) -> np.ndarray | bool:
    """A table verdict for a plugin that can reject only the nodes of ``rows`` (those with
    taints, host ports ...): its per-node ``filter_`` on those, every other node passes."""
    if not len(rows):
        return True
    passing = np.ones(table.n, bool)
    infos = table.infos
    for row in rows.tolist():
        if filter_(state, pod, infos[row]).code:
            passing[row] = False
    return passing


class RowInfos(Sequence[NodeInfo]):
    """The NodeInfos of ``rows`` of ``table``, in that order, as a read-only sequence that
    builds its list only when iterated or sliced (most PreScore plugins only take its length;
    the chosen node is one lookup)."""

    __slots__ = ("_infos", "rows", "_list")

    def __init__(self, table: NodeTable, rows: np.ndarray) -> None:
        self._infos = table.infos
        self.rows = rows
        self._list: list[NodeInfo] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> NodeInfo: ...

    @overload
    def __getitem__(self, index: slice) -> list[NodeInfo]: ...

    def __getitem__(self, index: int | slice) -> NodeInfo | list[NodeInfo]:
        if isinstance(index, slice):
            return self.as_list()[index]
        return self._infos[int(self.rows[index])]

    def __iter__(self) -> Iterator[NodeInfo]:
        return iter(self.as_list())

    def as_list(self) -> list[NodeInfo]:
        if self._list is None:
            infos = self._infos
            self._list = [infos[row] for row in self.rows.tolist()]
        return self._list
