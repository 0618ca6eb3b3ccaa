"""downwardAPI volumes (and projected downwardAPI sources): files holding the pod's own fields
(pure; the manager passes the node's allocatable resources for unset limits).

``fieldRef``: ``metadata.name``, ``metadata.namespace``, ``metadata.uid``, ``metadata.labels``,
``metadata.annotations`` (one ``key="value"`` line per entry, sorted by key, the value quoted
as Go's %q quotes it, no final newline — upstream's format), and
``metadata.labels['k']`` / ``metadata.annotations['k']`` (the value itself).

``resourceFieldRef`` (``containerName`` names the container; ``divisor`` default 1):
``limits.cpu``/``requests.cpu`` in units of the divisor (1 or 1m), rounded up;
``limits.memory``, ``limits.ephemeral-storage``, their requests and ``hugepages-*`` in units of
the divisor, rounded up.  An unset limit is the node's allocatable amount, as upstream.

Each item's file gets its ``mode`` or the volume's ``defaultMode`` (0644).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from pybernetes.kubelet.volumes.atomic_writer import FileProjection, Payload
from pybernetes.kubelet.volumes.common import DEFAULT_MODE, Obj, d, lst, meta, mode_of
from pybernetes.machinery.quantity import QuantityError, parse_quantity


class DownwardAPIError(ValueError):
    pass


def go_quote(text: str) -> str:
    """``text`` quoted as Go's strconv.Quote (%q) quotes it."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif 0xD800 <= code <= 0xDFFF:  # a lone surrogate: Go's replacement character
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_SIMPLE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                   "\v": "\\v"}


def format_map(values: dict[str, Any]) -> str:
    return "\n".join(f"{key}={go_quote(str(values[key]))}" for key in sorted(values))


def _subscript(path: str, prefix: str) -> str | None:
    """``k`` of ``prefix['k']`` (or ``prefix["k"]``), None when ``path`` is not that form."""
    if not path.startswith(prefix + "[") or not path.endswith("]"):
        return None
    inner = path[len(prefix) + 1:-1]
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        return inner[1:-1]
    return None


def field_value(pod: Obj, field_path: str) -> str:
    m = meta(pod)
    if field_path == "metadata.name":
        return str(m.get("name") or "")
    if field_path == "metadata.namespace":
        return str(m.get("namespace") or "")
    if field_path == "metadata.uid":
        return str(m.get("uid") or "")
    if field_path == "metadata.labels":
        return format_map(d(m.get("labels")))
    if field_path == "metadata.annotations":
        return format_map(d(m.get("annotations")))
    for prefix, key in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        sub = _subscript(field_path, prefix)
        if sub is not None:
            return str(d(m.get(key)).get(sub, ""))
    raise DownwardAPIError(f"unsupported fieldPath: {field_path}")


def _quantity(value: Any, what: str) -> Fraction:
    try:
        return parse_quantity(value)
    except (QuantityError, ValueError, TypeError):
        raise DownwardAPIError(f"invalid quantity for {what}: {value!r}") from None


def resource_value(pod: Obj, ref: Obj, allocatable: dict[str, Any]) -> str:
    container_name = ref.get("containerName") or ""
    resource = str(ref.get("resource") or "")
    containers = [*lst(d(pod.get("spec")).get("containers")), *lst(d(pod.get("spec")).get("initContainers"))]
    container = next((d(c) for c in containers if d(c).get("name") == container_name), None)
    if container is None:
        raise DownwardAPIError(f"cannot find container {container_name!r} in pod {meta(pod).get('name')!r} "
                               f"for resource {resource}")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise DownwardAPIError(f"unsupported container resource : {resource}")
    resources = d(container.get("resources"))
    raw = d(resources.get(kind)).get(name)
    if raw is None and kind == "limits":
        raw = allocatable.get(name)
    amount = _quantity(raw, resource) if raw is not None else Fraction(0)
    divisor_raw = ref.get("divisor")
    divisor = _quantity(divisor_raw, "divisor") if divisor_raw not in (None, "") else Fraction(0)
    if divisor == 0:
        divisor = Fraction(1)
    if name == "cpu":
        # upstream: milli-units divided by the divisor's milli-units, rounded up
        milli = math.ceil(amount * 1000)
        divisor_milli = math.ceil(divisor * 1000)
        return str(math.ceil(Fraction(milli, max(1, divisor_milli))))
    if name in ("memory", "ephemeral-storage") or name.startswith("hugepages-"):
        return str(math.ceil(Fraction(math.ceil(amount)) / divisor))
    raise DownwardAPIError(f"unsupported container resource : {resource}")


def downward_payload(items: Any, pod: Obj, default_mode: Any, allocatable: dict[str, Any] | None = None) -> Payload:
    mode = mode_of(default_mode, DEFAULT_MODE)
    payload: Payload = {}
    errors: list[str] = []
    for item in lst(items):
        item = d(item)
        path = str(item.get("path") or "")
        try:
            if item.get("fieldRef") is not None:
                value = field_value(pod, str(d(item.get("fieldRef")).get("fieldPath") or ""))
            elif item.get("resourceFieldRef") is not None:
                value = resource_value(pod, d(item.get("resourceFieldRef")), allocatable or {})
            else:
                continue
        except DownwardAPIError as exc:
            errors.append(str(exc))
            continue
        payload[path] = FileProjection(value.encode(), mode_of(item.get("mode"), mode))
    if errors:
        raise DownwardAPIError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
    return payload


def needs_allocatable(items: Any, pod: Obj) -> bool:
    """Whether some resourceFieldRef reads a limit its container leaves unset."""
    containers = {d(c).get("name"): d(c) for c in [*lst(d(pod.get("spec")).get("containers")),
                                                   *lst(d(pod.get("spec")).get("initContainers"))]}
    for item in lst(items):
        ref = d(d(item).get("resourceFieldRef"))
        kind, _, name = str(ref.get("resource") or "").partition(".")
        if kind == "limits":
            container = containers.get(ref.get("containerName"))
            if container is None or d(d(container.get("resources")).get("limits")).get(name) is None:
                return True
    return False
