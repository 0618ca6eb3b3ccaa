"""JSON patch (RFC 6902) for ``application/json-patch+json`` PATCH requests.

``apply_json_patch(doc, ops)`` applies the operations add, remove, replace, move, copy and
test, addressed by JSON pointers (RFC 6901: ``~1`` is ``/``, ``~0`` is ``~``; ``-`` appends to
an array; like upstream, a negative index counts from the end).  The patch is atomic: the
input document is never mutated, and a failing operation leaves nothing half-done.

Errors are those the upstream API server returns: a document that is not a list of operation
objects is a 400 BadRequest (worded as Go's JSON decoder words it); more than 10,000
operations is a 413; an operation that cannot be applied (missing path, failed ``test``,
unknown op) is a 422 Invalid whose message is upstream's generic
``the server rejected our request due to an error in our request``; the precise reason
(naming the operation and path) is carried as the Status's single cause.
"""

from __future__ import annotations

from typing import Any

from pybernetes.machinery.errors import StatusError, bad_request, request_entity_too_large
from pybernetes.machinery.patch._json import deep_copy, json_equal, json_kind

MAX_OPERATIONS = 10000

REJECTED = "the server rejected our request due to an error in our request"


class _OpError(Exception):
    """An operation that cannot be applied; its text becomes the Status cause."""


def patch_failed(detail: str) -> StatusError:
    """The 422 upstream answers when a JSON patch does not apply."""
    return StatusError(422, "Invalid", REJECTED, {"causes": [{"message": detail}]})


def validate_operations(ops: Any) -> list[dict[str, Any]]:
    """Check the shape of a decoded patch document: a list of objects (else 400)."""
    if not isinstance(ops, list):
        raise bad_request(
            f"json: cannot unmarshal {json_kind(ops)} into Go value of type jsonpatch.Patch"
        )
    for op in ops:
        if not isinstance(op, dict):
            raise bad_request(
                f"json: cannot unmarshal {json_kind(op)} into Go value of type jsonpatch.Operation"
            )
    if len(ops) > MAX_OPERATIONS:
        raise request_entity_too_large(
            f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(ops)}"
        )
    return ops


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """Apply the RFC 6902 operations ``ops`` to ``doc`` and return the new document."""
    validate_operations(ops)
    result = deep_copy(doc)
    for op in ops:
        try:
            result = _apply_one(result, op)
        except _OpError as exc:
            raise patch_failed(str(exc)) from None
    return result


def parse_pointer(pointer: str) -> list[str]:
    """Split a JSON pointer into unescaped reference tokens ("" is the whole document)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise _OpError(f'invalid JSON pointer "{pointer}": must be empty or start with "/"')
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _string_member(op: dict[str, Any], member: str, kind: str) -> str:
    value = op.get(member)
    if member not in op or value is None:
        raise _OpError(f"{kind} operation is missing the {member} field")
    if not isinstance(value, str):
        raise _OpError(f"{kind} operation has a {member} that is not a string: {json_kind(value)}")
    return value


def _value_member(op: dict[str, Any], kind: str) -> Any:
    if "value" not in op:
        raise _OpError(f"{kind} operation is missing the value field")
    return deep_copy(op["value"])


def _array_index(container: list[Any], token: str, path: str, *, for_insert: bool) -> int:
    """The index ``token`` denotes in ``container`` (for insertion it may equal the length)."""
    text = token[1:] if token.startswith("-") else token
    if not text.isdigit() or not text.isascii() or (len(text) > 1 and text[0] == "0"):
        raise _OpError(f"value was not a proper array index: '{token}' (path {path})")
    index = int(token)
    size = len(container) + (1 if for_insert else 0)
    if index < 0:
        index += size
    if index < 0 or index >= size:
        raise _OpError(f"Unable to access invalid index: {token} (path {path})")
    return index


def _resolve_parent(doc: Any, tokens: list[str], path: str, kind: str) -> tuple[Any, str]:
    """Walk to the container holding the last token; the container must exist."""
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise _OpError(f'{kind} operation does not apply: doc is missing path: "{path}"')
            node = node[token]
        elif isinstance(node, list):
            if token == "-":
                raise _OpError(f'{kind} operation does not apply: doc is missing path: "{path}"')
            node = node[_array_index(node, token, path, for_insert=False)]
        else:
            raise _OpError(f'{kind} operation does not apply: doc is missing path: "{path}"')
    if not isinstance(node, dict | list):
        raise _OpError(f'{kind} operation does not apply: doc is missing path: "{path}"')
    return node, tokens[-1]


def _get(doc: Any, path: str, kind: str) -> Any:
    tokens = parse_pointer(path)
    if not tokens:
        return doc
    parent, last = _resolve_parent(doc, tokens, path, kind)
    if isinstance(parent, dict):
        if last not in parent:
            raise _OpError(f'{kind} operation does not apply: doc is missing path: "{path}"')
        return parent[last]
    if last == "-":
        raise _OpError(f'{kind} operation does not apply: doc is missing path: "{path}"')
    return parent[_array_index(parent, last, path, for_insert=False)]


def _add(doc: Any, path: str, value: Any, kind: str = "add") -> Any:
    tokens = parse_pointer(path)
    if not tokens:
        return value
    parent, last = _resolve_parent(doc, tokens, path, kind)
    if isinstance(parent, dict):
        parent[last] = value
    elif last == "-":
        parent.append(value)
    else:
        parent.insert(_array_index(parent, last, path, for_insert=True), value)
    return doc


def _remove(doc: Any, path: str, kind: str = "remove") -> tuple[Any, Any]:
    """Remove the value at ``path``; returns (new doc, removed value)."""
    tokens = parse_pointer(path)
    if not tokens:
        raise _OpError(f"{kind} operation does not apply: cannot remove the whole document")
    parent, last = _resolve_parent(doc, tokens, path, kind)
    if isinstance(parent, dict):
        if last not in parent:
            raise _OpError(f"Unable to remove nonexistent key: {last}: missing value (path {path})")
        return doc, parent.pop(last)
    if last == "-":
        raise _OpError(f'{kind} operation does not apply: doc is missing path: "{path}"')
    return doc, parent.pop(_array_index(parent, last, path, for_insert=False))


def _replace(doc: Any, path: str, value: Any) -> Any:
    tokens = parse_pointer(path)
    if not tokens:
        return value
    parent, last = _resolve_parent(doc, tokens, path, "replace")
    if isinstance(parent, dict):
        if last not in parent:
            raise _OpError(f"replace operation does not apply: doc is missing key: {path}")
        parent[last] = value
    else:
        if last == "-":
            raise _OpError(f"replace operation does not apply: doc is missing key: {path}")
        parent[_array_index(parent, last, path, for_insert=False)] = value
    return doc


def _is_prefix(prefix: list[str], tokens: list[str]) -> bool:
    return len(prefix) < len(tokens) and tokens[: len(prefix)] == prefix


def _apply_one(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    if kind == "add":
        return _add(doc, _string_member(op, "path", kind), _value_member(op, kind))
    if kind == "remove":
        return _remove(doc, _string_member(op, "path", kind))[0]
    if kind == "replace":
        return _replace(doc, _string_member(op, "path", kind), _value_member(op, kind))
    if kind == "move":
        source = _string_member(op, "from", kind)
        path = _string_member(op, "path", kind)
        _get(doc, source, kind)
        if source == path:
            return doc
        if _is_prefix(parse_pointer(source), parse_pointer(path)):
            raise _OpError(f"move operation does not apply: from {source} is a prefix of path {path}")
        doc, value = _remove(doc, source, kind)
        return _add(doc, path, value, kind)
    if kind == "copy":
        source = _string_member(op, "from", kind)
        path = _string_member(op, "path", kind)
        value = deep_copy(_get(doc, source, kind))
        return _add(doc, path, value, kind)
    if kind == "test":
        path = _string_member(op, "path", kind)
        if "value" not in op:
            raise _OpError(f"test operation is missing the value field (path {path})")
        try:
            current = _get(doc, path, kind)
        except _OpError:
            raise _OpError(f"test operation does not apply: is missing path: {path}") from None
        if not json_equal(current, op["value"]):
            raise _OpError(f"testing value {path} failed: test failed")
        return doc
    shown = kind if isinstance(kind, str) else "unknown"
    raise _OpError(f"Unexpected kind: {shown}")
