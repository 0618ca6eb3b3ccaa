"""List continue tokens: opaque strings that resume a paginated list at a fixed revision.

The shape is upstream's: URL-safe base64 (no padding) of the JSON
``{"v": "meta.k8s.io/v1", "rv": <revision>, "start": "<key after the resource root>\\u0000"}``.
``start`` is the last returned key relative to the resource's key root followed by a NUL,
meaning "the first key after this one".  Pure functions, no I/O.
"""

from __future__ import annotations

import base64
import binascii

import orjson

from pybernetes.machinery.errors import StatusError, bad_request

TOKEN_VERSION = "meta.k8s.io/v1"


def encode_continue(revision: int, last_key: str, root: str) -> str:
    """The token that continues after ``last_key`` (a full key under ``root``)."""
    start = last_key[len(root):] if last_key.startswith(root) else last_key
    raw = orjson.dumps({"v": TOKEN_VERSION, "rv": revision, "start": start + "\x00"})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid(reason: str) -> StatusError:
    return bad_request(f"continue key is not valid: {reason}")


def decode_continue(token: str, root: str) -> tuple[int, str]:
    """(revision, full key to start after).  Malformed tokens are a 400 BadRequest."""
    try:
        padded = token + "=" * (-len(token) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise _invalid(f"illegal base64 data: {exc}") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _invalid(str(exc)) from None
    if not isinstance(data, dict):
        raise _invalid("expected an object")
    if data.get("v") != TOKEN_VERSION:
        raise _invalid(f"server does not recognize this encoded key version {data.get('v')!r}")
    rv = data.get("rv")
    if not isinstance(rv, int) or isinstance(rv, bool) or rv <= 0:
        raise _invalid(f"incorrect encoded start resourceVersion (version {TOKEN_VERSION})")
    start = data.get("start")
    if not isinstance(start, str) or not start:
        raise _invalid(f"encoded start key empty (version {TOKEN_VERSION})")
    start = start.removesuffix("\x00")
    if start.startswith("/") or ".." in start.split("/"):
        raise _invalid("key is not in the list's key space")
    return rv, root + start
