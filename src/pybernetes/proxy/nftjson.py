"""Reading ``nft -j list table`` back into a ``TableState`` (pure).

``rule_text`` prints a rule's JSON expressions in the canonical text the proxy renders its rules
in (rules.py), so the table read from the kernel compares equal to the one it meant to program,
and any rule someone else added or changed shows up as a difference.  It knows the statements
and expressions the proxy's rules use (matches on payload, meta, ct and fib; concatenations,
prefixes, ranges, anonymous sets, set references; mangle of the mark; vmaps, numgen; jump and
goto; reject, masquerade, dnat; set update); anything else prints as its JSON, which never
equals a rule of ours.
"""

from __future__ import annotations

from typing import Any

import orjson

from pybernetes.proxy.table import BaseChain, Chain, SetSpec, SetState, TableState

_MARK_KEYS = ("mark",)
_QUOTED_META = ("iifname", "oifname")
_VERDICTS = ("accept", "drop", "return", "continue")


def _has_mark(expr: Any) -> bool:
    if isinstance(expr, dict):
        meta = expr.get("meta")
        if isinstance(meta, dict) and meta.get("key") in _MARK_KEYS:
            return True
        return any(_has_mark(v) for v in expr.values())
    if isinstance(expr, list):
        return any(_has_mark(v) for v in expr)
    return False


def expr_text(expr: Any, hexa: bool = False, quote: bool = False) -> str:
    if isinstance(expr, bool):
        return str(expr).lower()
    if isinstance(expr, int):
        return hex(expr) if hexa else str(expr)
    if isinstance(expr, str):
        return f'"{expr}"' if quote else expr
    if isinstance(expr, list):
        return ", ".join(expr_text(e, hexa, quote) for e in expr)
    if not isinstance(expr, dict) or len(expr) != 1:
        return orjson.dumps(expr).decode()
    (kind, value), = expr.items()
    if kind == "payload":
        return f"{value.get('protocol')} {value.get('field')}"
    if kind == "meta":
        return f"meta {value.get('key')}"
    if kind == "ct":
        return f"ct {value.get('key')}"
    if kind == "fib":
        flags = value.get("flags") or []
        flags = flags if isinstance(flags, list) else [flags]
        return f"fib {' . '.join(flags)} {value.get('result')}"
    if kind == "concat":
        return " . ".join(expr_text(e, hexa) for e in value)
    if kind == "prefix":
        return f"{value.get('addr')}/{value.get('len')}"
    if kind == "range" and isinstance(value, list) and len(value) == 2:
        return f"{expr_text(value[0])}-{expr_text(value[1])}"
    if kind in ("&", "|", "^"):
        left, right = value
        mark = _has_mark(left)
        return f"{expr_text(left)} {kind} {expr_text(right, hexa or mark)}"
    if kind == "numgen":
        text = f"numgen {value.get('mode')} mod {value.get('mod')}"
        return text + (f" offset {value['offset']}" if value.get("offset") else "")
    if kind == "set":
        items = value if isinstance(value, list) else [value]
        return "{ " + ", ".join(_element(i, hexa) for i in items) + " }"
    if kind in ("jump", "goto"):
        return f"{kind} {value.get('target')}"
    if kind in _VERDICTS:
        return kind
    return orjson.dumps(expr).decode()


def _element(item: Any, hexa: bool) -> str:
    if isinstance(item, list) and len(item) == 2:
        return f"{expr_text(item[0], hexa)} : {expr_text(item[1], hexa)}"
    return expr_text(item, hexa)


def statement_text(stmt: Any) -> str:
    if not isinstance(stmt, dict) or len(stmt) != 1:
        return orjson.dumps(stmt).decode()
    (kind, value), = stmt.items()
    if kind == "match":
        left, right, op = value.get("left"), value.get("right"), value.get("op", "==")
        mark = _has_mark(left)
        quote = isinstance(left, dict) and (left.get("meta") or {}).get("key") in _QUOTED_META
        left_text = expr_text(left)
        right_text = expr_text(right, mark, quote)
        if op in ("==", "in") and not (isinstance(left, dict) and set(left) & {"&", "|", "^"}):
            return f"{left_text} {right_text}"
        return f"{left_text} {op} {right_text}"
    if kind == "mangle":
        key = value.get("key")
        return f"{expr_text(key)} set {expr_text(value.get('value'), _has_mark(key))}"
    if kind == "vmap":
        return f"{expr_text(value.get('key'))} vmap {expr_text(value.get('data'))}"
    if kind in ("jump", "goto"):
        return f"{kind} {value.get('target')}"
    if kind in _VERDICTS:
        return kind
    if kind == "reject":
        if not value or (value.get("type") == "icmp" and value.get("expr") == "port-unreachable"):
            return "reject"
        return f"reject with {value.get('type')} {value.get('expr')}"
    if kind == "masquerade":
        flags = (value or {}).get("flags") if isinstance(value, dict) else None
        if flags:
            return "masquerade " + (flags if isinstance(flags, str) else ",".join(flags))
        return "masquerade"
    if kind == "dnat":
        return f"dnat to {value.get('addr')}:{value.get('port')}" if value.get("port") is not None \
            else f"dnat to {value.get('addr')}"
    if kind == "set":
        return f"{value.get('op')} {value.get('set')} {{ {expr_text(value.get('elem'))} }}"
    return orjson.dumps(stmt).decode()


def rule_text(exprs: list[Any]) -> str:
    return " ".join(statement_text(stmt) for stmt in exprs)


def _type_text(value: Any) -> str:
    return " . ".join(value) if isinstance(value, list) else str(value)


def _element_key(item: Any) -> str:
    if isinstance(item, dict) and "elem" in item:
        item = item["elem"].get("val")
    return expr_text(item)


def table_from_json(items: list[dict[str, Any]] | None) -> TableState:
    """The ``nftables`` array of ``nft -j list table`` as a TableState (None: no table)."""
    state = TableState(exists=items is not None)
    for item in items or ():
        if "chain" in item:
            chain = item["chain"]
            base = None
            if "hook" in chain:
                base = BaseChain(chain.get("type", "filter"), chain["hook"], int(chain.get("prio", 0)),
                                 chain.get("policy", "accept"))
            state.chains[chain["name"]] = Chain(base)
        elif "set" in item or "map" in item:
            data = item.get("set") or item.get("map")
            verdict_map = "map" in item and data.get("map") == "verdict"
            flags = data.get("flags") or []
            flags = flags if isinstance(flags, list) else [flags]
            timeout = int(data.get("timeout") or 0) if "timeout" in flags or data.get("timeout") else 0
            spec = SetSpec(_type_text(data.get("type")), verdict_map, timeout)
            elements: dict[str, str | None] = {}
            for element in data.get("elem") or []:
                if verdict_map and isinstance(element, list) and len(element) == 2:
                    elements[_element_key(element[0])] = expr_text(element[1])
                else:
                    elements[_element_key(element)] = None
            state.sets[data["name"]] = SetState(spec, elements)
    for item in items or ():
        if "rule" in item:
            rule = item["rule"]
            chain = state.chains.setdefault(rule["chain"], Chain())
            chain.rules.append(rule_text(rule.get("expr") or []))
    return state
