"""Planning transactions (pure): a full sync that rebuilds the proxy's table, or an incremental
one that touches only what changed.

``Planner`` remembers the ``Unit`` (rules.py) last programmed for every service port.

- ``full(state, existing)`` rebuilds the table in one transaction.  When the table is there
  it is flushed rather than deleted (``flush table``, the maps and address sets emptied, objects
  that should not be there deleted): re-creating 11,000 chains in the transaction that deletes
  their namesakes costs the kernel several times more, and affinity sets keep their entries.
  ``recreate=True`` deletes and re-creates it instead (the fallback when even that fails).
- ``incremental(state, names, table)`` re-renders the named ports and diffs them against what
  they had: changed chains are flushed and refilled, new ones created with their rules, map
  elements added (``add map`` with elements) or deleted.  The affinity sets a written chain
  uses are declared again (``add set``, a no-op for the kernel): nft 1.0.6 does not look sets up
  for ``add chain NAME { rules }`` (table.py).  Chains and affinity sets that are no
  longer used are flushed at once and deleted ``stale_grace`` seconds later by ``garbage()``
  (0: in the same transaction), as upstream does, because a delete makes nft list every chain
  of the table first.
- A plan is only staged: ``commit()`` adopts it once the transaction went through; a failed
  one leaves the planner as it was (the caller then plans a full sync).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable

from pybernetes.proxy.model import PortName, PortView
from pybernetes.proxy.rules import (
    ADDRESS_SETS,
    BASE_CHAINS,
    MAPS,
    RenderConfig,
    Unit,
    dispatch_chains,
    leaf_chains,
    render_port,
    skeleton_after,
    skeleton_before,
)
from pybernetes.proxy.table import (
    ADD_CHAIN,
    ADD_SET,
    ADD_TABLE,
    DELETE_CHAIN,
    DELETE_ELEMENTS,
    DELETE_SET,
    DELETE_TABLE,
    FLUSH_CHAIN,
    FLUSH_SET,
    FLUSH_TABLE,
    Op,
    SetSpec,
    TableState,
    Transaction,
)
from pybernetes.proxy.tracker import ProxyState


class Planner:
    def __init__(self, config: RenderConfig, stale_grace: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.stale_grace = stale_grace
        self.clock = clock
        self.units: dict[PortName, Unit] = {}
        self.members: Counter[tuple[str, str]] = Counter()
        self.stale: dict[tuple[str, str, str], float] = {}  # (kind, name, element) -> since
        self._views: dict[PortName, PortView] = {}  # the view each unit was rendered from
        self._staged: tuple | None = None

    # -- rendering with a cache ------------------------------------------------------------

    def _render(self, state: ProxyState, name: PortName) -> tuple[PortView, Unit]:
        view = state.effective(name)
        if self._views.get(name) == view and name in self.units:
            return view, self.units[name]
        return view, render_port(self.config, view)

    # -- full --------------------------------------------------------------------------------

    def full(self, state: ProxyState, existing: TableState | None, recreate: bool = False) -> Transaction:
        units: dict[PortName, Unit] = {}
        views: dict[PortName, PortView] = {}
        for name in state.ports:
            views[name], units[name] = self._render(state, name)
        members: Counter[tuple[str, str]] = Counter()
        sets: dict[str, SetSpec] = {}
        elements: dict[str, list[tuple[str, str | None]]] = {name: [] for name in MAPS}
        levels: list[list[Op]] = [[], [], [], []]
        for unit in units.values():
            members.update(unit.members)
            sets.update(unit.sets)
            for map_name, items in unit.elements.items():
                elements[map_name].extend(items.items())
            for chain, (level, rules) in unit.chains.items():
                levels[level].append((ADD_CHAIN, chain, None, rules))
        by_set: dict[str, list[str]] = {}
        for set_name, member in members:
            by_set.setdefault(set_name, []).append(member)

        ops: list[Op] = []
        if existing is not None and existing.exists and not recreate:
            ops.append((FLUSH_TABLE,))
            wanted_sets = {**MAPS, **ADDRESS_SETS, **sets}
            wanted_chains = set(leaf_chains(self.config)) | set(dispatch_chains()) | set(BASE_CHAINS)
            for level in levels:
                wanted_chains.update(op[1] for op in level)
            deletes: list[Op] = []
            for name, current in existing.sets.items():
                spec = wanted_sets.get(name)
                if spec != current.spec:
                    deletes.append((DELETE_SET, name, current.spec.kind))
                elif not spec.dynamic:
                    ops.append((FLUSH_SET, name, spec.kind))
            for name, chain in existing.chains.items():
                base = BASE_CHAINS.get(name)
                if name not in wanted_chains or (chain.base is None) != (base is None) or (
                        base is not None and chain.base is not None
                        and (base.type, base.hook, base.priority)
                        != (chain.base.type, chain.base.hook, chain.base.priority)):
                    deletes.append((DELETE_CHAIN, name))
            ops.extend(deletes)
        else:
            if existing is not None and existing.exists:
                ops.append((DELETE_TABLE,))
            ops.append((ADD_TABLE,))
        ops.extend(skeleton_before(self.config, by_set))
        ops.extend((ADD_SET, name, spec, ()) for name, spec in sorted(sets.items()))
        for level in levels[1:]:
            ops.extend(level)
        ops.extend((ADD_SET, name, MAPS[name], tuple(items)) for name, items in elements.items() if items)
        ops.extend(skeleton_after())
        self._staged = ("full", units, views, members, {})
        return Transaction(ops, full=True)

    # -- incremental -------------------------------------------------------------------------

    def incremental(self, state: ProxyState, names: Iterable[PortName], table: TableState) -> Transaction:
        now = self.clock()
        immediate = self.stale_grace <= 0
        units = dict(self.units)
        views = dict(self._views)
        members = Counter(self.members)
        stale = dict(self.stale)
        flushes: list[Op] = []
        set_deletes: list[Op] = []
        set_adds: dict[str, SetSpec] = {}
        levels: list[list[Op]] = [[], [], [], []]
        element_deletes: dict[str, list[str]] = {}
        element_adds: dict[str, list[tuple[str, str | None]]] = {}
        tail: list[Op] = []
        gone_chains: list[str] = []
        gone_sets: list[str] = []
        touched_members: set[tuple[str, str]] = set()
        for name in sorted(set(names)):
            old = units.get(name)
            if name in state.ports:
                view, new = self._render(state, name)
                units[name], views[name] = new, view
            else:
                new = None
                units.pop(name, None)
                views.pop(name, None)
            if old is new:
                continue
            old = old or Unit()
            new = new or Unit()
            respec = {s for s in old.sets.keys() & new.sets.keys() if old.sets[s] != new.sets[s]}
            for set_name, spec in new.sets.items():
                stale.pop(("set", set_name, ""), None)
                existing = table.sets.get(set_name)
                if set_name in respec or (existing is not None and existing.spec != spec):
                    set_deletes.append((DELETE_SET, set_name, "set"))
                    set_adds[set_name] = spec
                elif existing is None or set_name not in old.sets:
                    set_adds[set_name] = spec
            written = False
            for chain, (level, rules) in new.chains.items():
                stale.pop(("chain", chain, ""), None)
                before = old.chains.get(chain)
                if before is not None and before[1] == rules and not respec:
                    continue
                if chain in table.chains and (before is not None or table.chains[chain].rules):
                    flushes.append((FLUSH_CHAIN, chain))
                levels[level].append((ADD_CHAIN, chain, None, rules))
                written = True
            if written:
                # nft 1.0.6 looks no set up for ``add chain NAME { rules }`` unless the
                # transaction declares it (table.py): declare again the affinity sets that the
                # chains written here use, also those programmed by earlier transactions
                for set_name, spec in new.sets.items():
                    set_adds.setdefault(set_name, spec)
            for chain in old.chains.keys() - new.chains.keys():
                flushes.append((FLUSH_CHAIN, chain))
                gone_chains.append(chain)
            gone_sets.extend(old.sets.keys() - new.sets.keys())
            for map_name in old.elements.keys() | new.elements.keys():
                before_items = old.elements.get(map_name, {})
                after_items = new.elements.get(map_name, {})
                for key, value in before_items.items():
                    if after_items.get(key) != value:
                        element_deletes.setdefault(map_name, []).append(key)
                for key, value in after_items.items():
                    if before_items.get(key) != value:
                        element_adds.setdefault(map_name, []).append((key, value))
            members.subtract(old.members)
            members.update(new.members)
            touched_members.update(old.members)
            touched_members.update(new.members)
        for member in touched_members:
            key = ("member", member[0], member[1])
            if members[member] > 0:
                if key in stale:
                    del stale[key]  # still in the table: keep it
                elif self.members[member] <= 0:
                    element_adds.setdefault(member[0], []).append((member[1], None))
            else:
                members.pop(member, None)
                if self.members[member] > 0:
                    if immediate:
                        element_deletes.setdefault(member[0], []).append(member[1])
                    else:
                        stale[key] = now
        for chain in gone_chains:
            if immediate:
                tail.append((DELETE_CHAIN, chain))
            else:
                stale[("chain", chain, "")] = now
        for set_name in gone_sets:
            if immediate:
                tail.append((DELETE_SET, set_name, "set"))
            else:
                stale[("set", set_name, "")] = now
        ops: list[Op] = flushes + set_deletes
        ops.extend((ADD_SET, name, spec, ()) for name, spec in set_adds.items())
        for level in levels[1:]:
            ops.extend(level)
        ops.extend((DELETE_ELEMENTS, map_name, tuple(keys)) for map_name, keys in element_deletes.items())
        for map_name, items in element_adds.items():
            spec = MAPS.get(map_name) or ADDRESS_SETS[map_name]
            ops.append((ADD_SET, map_name, spec, tuple(items)))
        ops.extend(tail)
        self._staged = ("incremental", units, views, members, stale)
        return Transaction(ops)

    # -- garbage -----------------------------------------------------------------------------

    def garbage_due_in(self) -> float | None:
        """Seconds until stale objects may be deleted (None: there are none)."""
        if not self.stale:
            return None
        return max(0.0, min(self.stale.values()) + self.stale_grace - self.clock())

    def garbage(self, table: TableState) -> Transaction:
        """Delete the chains, sets and members that have been unused for ``stale_grace``."""
        now = self.clock()
        due = [key for key, since in self.stale.items() if since + self.stale_grace <= now]
        ops: list[Op] = []
        members: dict[str, list[str]] = {}
        for kind, name, element in due:
            if kind == "member":
                state = table.sets.get(name)
                if state is not None and element in state.elements:
                    members.setdefault(name, []).append(element)
        ops.extend((DELETE_ELEMENTS, name, tuple(keys)) for name, keys in members.items())
        ops.extend((DELETE_CHAIN, name) for kind, name, _ in due if kind == "chain" and name in table.chains)
        ops.extend((DELETE_SET, name, "set") for kind, name, _ in due if kind == "set" and name in table.sets)
        self._staged = ("garbage", due)
        return Transaction(ops)

    # -- staging -----------------------------------------------------------------------------

    def commit(self) -> None:
        staged, self._staged = self._staged, None
        if staged is None:
            return
        if staged[0] == "garbage":
            for key in staged[1]:
                self.stale.pop(key, None)
            return
        _, self.units, self._views, self.members, self.stale = staged

    def abort(self) -> None:
        self._staged = None

    def reset(self, config: RenderConfig | None = None) -> None:
        """Forget everything programmed (the table is gone); optionally a new config."""
        if config is not None:
            self.config = config
        self.units, self._views, self.members, self.stale = {}, {}, Counter(), {}
        self._staged = None

