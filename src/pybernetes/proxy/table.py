"""One nftables table as data (pure): the operations a transaction is made of, their nft script,
and ``TableState``, a table in memory that applies operations with the kernel's rules.

Operations are tuples (``op[0]`` is the code) so that a full sync of 10,000 endpoints builds
quickly.  Rules are text in one canonical form (the form ``nftjson.rule_text`` prints what ``nft
-j`` lists back in), so a table read from the kernel compares equal to the one the proxy meant
to program.  ``TableState.apply`` checks what the kernel checks (a chain or set must exist
before it is used, a chain still jumped to or a set still used cannot go, an element cannot
change its value by being added again, a base chain cannot change hook or priority) and what
nft 1.0.6 checks before the kernel sees anything: a rule of ``add chain NAME { rules }`` may use
``@set`` only if the transaction declared that set before it (``add set``/``add map``), unless
it holds a command that makes nft list the table's sets (``flush set``, ``delete set``, ``delete
element``, ``delete chain``; ``add chain``, ``flush chain``, ``add``/``flush table`` do not).  It
is atomic: on error it raises ``TableError`` and changes nothing.  ``frontends`` reads a table
back in Service terms: what each service address and node port leads to.

Commands are chosen for nft 1.0.6's cache: ``add chain NAME { rules }`` and ``add map NAME {
elements = ... }`` need no listing of the table's chains, while ``add rule``, ``add element``
and any ``delete`` make nft fetch every chain of the table first (about 60 ms with 11,000
chains), so the incremental path avoids them where it can.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

ADD_TABLE, DELETE_TABLE, FLUSH_TABLE = "add-table", "delete-table", "flush-table"
ADD_CHAIN, FLUSH_CHAIN, DELETE_CHAIN = "add-chain", "flush-chain", "delete-chain"
ADD_SET, FLUSH_SET, DELETE_SET, DELETE_ELEMENTS = "add-set", "flush-set", "delete-set", "delete-elements"

Op = tuple
# commands that make nft 1.0.6 fetch the table's sets into its cache (see the module doc)
_FETCH_SETS = frozenset((FLUSH_SET, DELETE_SET, DELETE_ELEMENTS, DELETE_CHAIN))
_TARGET = re.compile(r"\b(?:jump|goto) ([A-Za-z_.][^\s,;{}]*)")
_SETREF = re.compile(r"@([A-Za-z_.][^\s,;{}]*)")


class TableError(Exception):
    """The kernel would refuse this transaction (nothing was changed)."""


@dataclass(frozen=True, slots=True)
class BaseChain:
    type: str  # filter | nat
    hook: str  # prerouting | input | forward | output | postrouting
    priority: int
    policy: str = "accept"


@dataclass(frozen=True, slots=True)
class SetSpec:
    type: str  # e.g. "ipv4_addr" or "ipv4_addr . inet_proto . inet_service"
    verdict_map: bool = False  # a map to verdicts (else a plain set)
    timeout: int = 0  # seconds; a set filled by the packet path (affinity), its elements not ours

    @property
    def kind(self) -> str:
        return "map" if self.verdict_map else "set"

    @property
    def dynamic(self) -> bool:
        return self.timeout > 0

    def declaration(self) -> str:
        if self.verdict_map:
            return f"type {self.type} : verdict;"
        if self.timeout:
            return f"type {self.type}; flags dynamic,timeout; timeout {self.timeout}s;"
        return f"type {self.type};"


@dataclass(slots=True)
class Chain:
    base: BaseChain | None = None
    rules: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SetState:
    spec: SetSpec
    elements: dict[str, str | None] = field(default_factory=dict)  # key -> verdict (maps) or None


@dataclass(slots=True)
class Transaction:
    ops: list[Op] = field(default_factory=list)
    full: bool = False

    def __bool__(self) -> bool:
        return bool(self.ops)

    def script(self, table: str, family: str = "ip") -> str:
        return to_script(self.ops, table, family)


def to_script(ops: list[Op], table: str, family: str = "ip") -> str:
    """The nft script of ``ops`` (one transaction when given to ``nft -f``)."""
    where = f"{family} {table}"
    lines: list[str] = []
    add = lines.append
    for op in ops:
        code = op[0]
        if code == ADD_CHAIN:
            _, name, base, rules = op
            body = [f"type {base.type} hook {base.hook} priority {base.priority}; policy {base.policy};"] \
                if base is not None else []
            body.extend(rule + ";" for rule in rules)
            add(f"add chain {where} {name} {{ {' '.join(body)} }}" if body else f"add chain {where} {name}")
        elif code == ADD_SET:
            _, name, spec, elements = op
            text = f"add {spec.kind} {where} {name} {{ {spec.declaration()}"
            if elements:
                if spec.verdict_map:
                    items = ", ".join(f"{key} : {value}" for key, value in elements)
                else:
                    items = ", ".join(key for key, _ in elements)
                text += f" elements = {{ {items} }};"
            add(text + " }")
        elif code == DELETE_ELEMENTS:
            add(f"delete element {where} {op[1]} {{ {', '.join(op[2])} }}")
        elif code == FLUSH_CHAIN:
            add(f"flush chain {where} {op[1]}")
        elif code == DELETE_CHAIN:
            add(f"delete chain {where} {op[1]}")
        elif code == FLUSH_SET:
            add(f"flush {op[2]} {where} {op[1]}")
        elif code == DELETE_SET:
            add(f"delete {op[2]} {where} {op[1]}")
        elif code == ADD_TABLE:
            add(f"add table {where}")
        elif code == DELETE_TABLE:
            add(f"delete table {where}")
        elif code == FLUSH_TABLE:
            add(f"flush table {where}")
        else:
            raise ValueError(f"unknown operation {code!r}")
    return "\n".join(lines) + "\n"


class TableState:
    """A table in memory (see the module doc)."""

    def __init__(self, exists: bool = False) -> None:
        self.exists = exists
        self.chains: dict[str, Chain] = {}
        self.sets: dict[str, SetState] = {}

    # -- comparison ------------------------------------------------------------------------

    def _comparable(self) -> tuple:
        chains = {name: (c.base, tuple(c.rules)) for name, c in self.chains.items()}
        sets = {name: (s.spec, None if s.spec.dynamic else dict(s.elements)) for name, s in self.sets.items()}
        return self.exists, chains, sets

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TableState):
            return NotImplemented
        return self._comparable() == other._comparable()

    __hash__ = None  # type: ignore[assignment]

    def differences(self, other: TableState, limit: int = 10) -> list[str]:
        """What ``other`` has that this table has not, or has otherwise (first ``limit``)."""
        out: list[str] = []
        if self.exists != other.exists:
            return [f"table exists: {self.exists} != {other.exists}"]
        for name in sorted(set(self.chains) | set(other.chains)):
            mine, theirs = self.chains.get(name), other.chains.get(name)
            if mine is None or theirs is None:
                out.append(f"chain {name}: {'extra' if mine is None else 'gone'}")
            elif (mine.base, mine.rules) != (theirs.base, theirs.rules):
                out.append(f"chain {name}: {mine.base} {mine.rules} != {theirs.base} {theirs.rules}")
        for name in sorted(set(self.sets) | set(other.sets)):
            mine_set, theirs_set = self.sets.get(name), other.sets.get(name)
            if mine_set is None or theirs_set is None:
                out.append(f"set {name}: {'extra' if mine_set is None else 'gone'}")
            elif mine_set.spec != theirs_set.spec:
                out.append(f"set {name}: {mine_set.spec} != {theirs_set.spec}")
            elif not mine_set.spec.dynamic and mine_set.elements != theirs_set.elements:
                missing = sorted(set(mine_set.elements.items()) - set(theirs_set.elements.items()))[:3]
                extra = sorted(set(theirs_set.elements.items()) - set(mine_set.elements.items()))[:3]
                out.append(f"set {name}: elements missing {missing} extra {extra}")
        return out[:limit]

    def counts(self) -> dict[str, int]:
        return {"chains": len(self.chains), "rules": sum(len(c.rules) for c in self.chains.values()),
                "sets": len(self.sets),
                "elements": sum(len(s.elements) for s in self.sets.values() if not s.spec.dynamic)}

    def copy(self) -> TableState:
        return copy.deepcopy(self)

    # -- applying ----------------------------------------------------------------------------

    def apply(self, ops: list[Op], validate: bool = True) -> None:
        """Apply a transaction; with ``validate`` as the kernel would (atomic, TableError)."""
        if not validate:
            self._apply(ops, False)
            return
        scratch = self.copy()
        scratch._apply(ops, True)
        self.exists, self.chains, self.sets = scratch.exists, scratch.chains, scratch.sets

    def _need_table(self, check: bool) -> None:
        if check and not self.exists:
            raise TableError("no such table")

    def _references(self) -> tuple[set[str], set[str]]:
        chains: set[str] = set()
        sets: set[str] = set()
        for chain in self.chains.values():
            for rule in chain.rules:
                chains.update(_TARGET.findall(rule))
                sets.update(_SETREF.findall(rule))
        for state in self.sets.values():
            if state.spec.verdict_map:
                for value in state.elements.values():
                    chains.update(_TARGET.findall(value or ""))
        return chains, sets

    def _check_rule(self, chain: str, rule: str, declared: set[str] | None) -> None:
        for target in _TARGET.findall(rule):
            if target not in self.chains or target == chain:
                raise TableError(f"chain {chain}: rule {rule!r} jumps to a missing chain {target}")
        for name in _SETREF.findall(rule):
            if name not in self.sets:
                raise TableError(f"chain {chain}: rule {rule!r} uses a missing set {name}")
            if declared is not None and name not in declared:
                raise TableError(f"chain {chain}: rule {rule!r} uses set {name}, which the transaction "
                                 "does not declare before it (nft does not look it up)")

    def _apply(self, ops: list[Op], check: bool) -> None:
        # the sets nft knows while it evaluates the transaction: all (None) when a command makes
        # it list them, else those declared so far (see the module doc)
        declared: set[str] | None = None
        if check and not any(op[0] in _FETCH_SETS for op in ops):
            declared = set()
        for op in ops:
            code = op[0]
            if code == ADD_CHAIN:
                self._need_table(check)
                _, name, base, rules = op
                chain = self.chains.get(name)
                if chain is None:
                    chain = self.chains[name] = Chain(base)
                elif base != chain.base:
                    if check and (chain.base is None or base is None or
                                  (base.type, base.hook, base.priority)
                                  != (chain.base.type, chain.base.hook, chain.base.priority)):
                        raise TableError(f"chain {name} exists with another definition")
                    chain.base = base  # a base chain's policy may change
                if check:
                    for rule in rules:
                        self._check_rule(name, rule, declared)
                chain.rules.extend(rules)
            elif code == ADD_SET:
                self._need_table(check)
                _, name, spec, elements = op
                state = self.sets.get(name)
                if state is None:
                    state = self.sets[name] = SetState(spec)
                elif check and state.spec != spec:
                    raise TableError(f"set {name} exists with another definition")
                if declared is not None:
                    declared.add(name)
                for key, value in elements:
                    if check:
                        if key in state.elements and state.elements[key] != value:
                            raise TableError(f"set {name}: element {key} exists with another value")
                        for target in _TARGET.findall(value or ""):
                            if target not in self.chains:
                                raise TableError(f"set {name}: element {key} jumps to a missing chain {target}")
                    state.elements[key] = value
            elif code == DELETE_ELEMENTS:
                state = self.sets.get(op[1])
                if state is None:
                    if check:
                        raise TableError(f"no such set {op[1]}")
                    continue
                for key in op[2]:
                    if state.elements.pop(key, 0) == 0 and check:
                        raise TableError(f"set {op[1]}: no element {key}")
            elif code == FLUSH_CHAIN:
                chain = self.chains.get(op[1])
                if chain is None:
                    if check:
                        raise TableError(f"no such chain {op[1]}")
                    continue
                chain.rules = []
            elif code == DELETE_CHAIN:
                if op[1] not in self.chains:
                    if check:
                        raise TableError(f"no such chain {op[1]}")
                    continue
                if check:
                    if self.chains[op[1]].rules:
                        raise TableError(f"chain {op[1]} is not empty")
                    if op[1] in self._references()[0]:
                        raise TableError(f"chain {op[1]} is in use")
                del self.chains[op[1]]
            elif code == FLUSH_SET:
                state = self.sets.get(op[1])
                if state is None:
                    if check:
                        raise TableError(f"no such set {op[1]}")
                    continue
                state.elements = {}
            elif code == DELETE_SET:
                if op[1] not in self.sets:
                    if check:
                        raise TableError(f"no such set {op[1]}")
                    continue
                if check and op[1] in self._references()[1]:
                    raise TableError(f"set {op[1]} is in use")
                del self.sets[op[1]]
            elif code == ADD_TABLE:
                self.exists = True
            elif code == DELETE_TABLE:
                if check and not self.exists:
                    raise TableError("no such table")
                self.exists = False
                self.chains, self.sets = {}, {}
            elif code == FLUSH_TABLE:
                self._need_table(check)
                for chain in self.chains.values():
                    chain.rules = []
            else:
                raise ValueError(f"unknown operation {code!r}")


# -- reading a table back in Service terms ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class Target:
    """Where new connections to one frontend go: ``verdict`` is dnat (to ``endpoints``), reject,
    drop or none (not handled: the packet goes on untouched)."""

    verdict: str
    endpoints: tuple[str, ...] = ()
    affinity: int = 0  # ClientIP affinity timeout (seconds), 0: none


_VMAP_ITEM = re.compile(r"\d+ : goto ([^\s,}]+)")
_DNAT = re.compile(r"dnat to (\S+)$")


def _verdict(value: str | None) -> str:
    if value is None:
        return "none"
    if value.startswith("goto reject") or value == "reject":
        return "reject"
    return "drop" if value == "drop" else value


def _endpoints(state: TableState, chain_name: str, seen: frozenset[str] = frozenset()) -> Target:
    chain = state.chains.get(chain_name)
    if chain is None or chain_name in seen:
        return Target("none")
    seen = seen | {chain_name}
    affinity = 0
    for rule in chain.rules:
        if rule.startswith("ip saddr @") and " goto " in rule:
            set_state = state.sets.get(rule.split("@", 1)[1].split()[0])
            affinity = set_state.spec.timeout if set_state is not None else affinity
        elif rule.startswith("numgen "):
            targets = [_dnat_of(state, name) for name in _VMAP_ITEM.findall(rule)]
            return Target("dnat", tuple(sorted(t for t in targets if t)), affinity)
        elif rule.startswith("goto "):
            return _endpoints(state, rule.split()[1], seen)
        else:
            match = _DNAT.search(rule)
            if match:
                return Target("dnat", (match.group(1),), affinity)
    return Target("none")


def _dnat_of(state: TableState, chain_name: str) -> str:
    chain = state.chains.get(chain_name)
    for rule in chain.rules if chain is not None else ():
        match = _DNAT.search(rule)
        if match:
            return match.group(1)
    return ""


def frontends(state: TableState) -> dict[tuple[str, str, int], Target]:
    """Every frontend of the proxy's table: ``(ip, protocol, port)`` for service addresses and
    ``("nodeport", protocol, port)`` for node ports, with where new connections go.  The
    no-endpoint maps (checked before DNAT in the filter chains) take precedence."""
    out: dict[tuple[str, str, int], Target] = {}
    for map_name, check_name, prefix in (("service-ips", "no-endpoint-services", ""),
                                         ("service-nodeports", "no-endpoint-nodeports", "nodeport . ")):
        dispatch = state.sets.get(map_name)
        check = state.sets.get(check_name)
        for source, is_check in ((dispatch, False), (check, True)):
            for key, value in (source.elements.items() if source is not None else ()):
                parts = (prefix + key).split(" . ")
                frontend = (parts[0], parts[1], int(parts[2]))
                if is_check:
                    out[frontend] = Target(_verdict(value))
                elif value and value.startswith("goto "):
                    out[frontend] = _endpoints(state, value.split()[1])
    return out
