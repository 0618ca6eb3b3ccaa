"""configMap and secret volumes: the files a ConfigMap's or Secret's keys project (pure payload
builders; the manager fetches the objects and writes through the atomic writer).

Without ``items`` every key becomes a file named after it, with ``defaultMode`` (0644 when
unset).  With ``items`` only the listed keys, each at its ``path`` with its own ``mode`` or
``defaultMode``; a listed key the object lacks is an error (upstream's ``configmap references
non-existent config key: K`` / ``references non-existent secret key: K``) unless the volume is
``optional``, when it is left out.  A missing object is an error unless ``optional`` (then the
volume is empty) — the messages are upstream's: ``configmap "x" not found``,
``secret "x" not found``.  ConfigMap ``binaryData`` and Secret ``data`` are base64 on the wire
and are decoded; ConfigMap ``data`` is written as UTF-8.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pybernetes.kubelet.volumes.atomic_writer import FileProjection, Payload
from pybernetes.kubelet.volumes.common import DEFAULT_MODE, Obj, d, lst, mode_of


class PayloadError(ValueError):
    pass


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError(f"{what} is not valid base64") from None


def configmap_entries(configmap: Obj) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    for key, value in d(configmap.get("data")).items():
        entries[str(key)] = str(value).encode()
    for key, value in d(configmap.get("binaryData")).items():
        entries[str(key)] = _b64(value, f"binaryData[{key}]")
    return entries


def secret_entries(secret: Obj) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    for key, value in d(secret.get("data")).items():
        entries[str(key)] = _b64(value, f"data[{key}]")
    for key, value in d(secret.get("stringData")).items():  # never stored, but harmless
        entries.setdefault(str(key), str(value).encode())
    return entries


def make_payload(entries: dict[str, bytes], items: Any, default_mode: Any, optional: bool,
                 missing_key_message: str) -> Payload:
    """The payload of ``entries`` (key -> bytes) as ``items`` select them."""
    mode = mode_of(default_mode, DEFAULT_MODE)
    mappings = lst(items)
    if not mappings:
        return {key: FileProjection(data, mode) for key, data in entries.items()}
    payload: Payload = {}
    for item in mappings:
        item = d(item)
        key = str(item.get("key") or "")
        if key not in entries:
            if optional:
                continue
            raise PayloadError(f"{missing_key_message}: {key}")
        path = str(item.get("path") or key)
        payload[path] = FileProjection(entries[key], mode_of(item.get("mode"), mode))
    return payload


def configmap_payload(source: Obj, configmap: Obj | None, default_mode: Any = None) -> Payload:
    """The files of a configMap volume (or projected source); ``configmap`` None: not found."""
    optional = source.get("optional") is True
    name = source.get("name") or ""
    if configmap is None:
        if not optional:
            raise PayloadError(f'configmap "{name}" not found')
        return {}
    mode = source.get("defaultMode") if default_mode is None else default_mode
    return make_payload(configmap_entries(configmap), source.get("items"), mode, optional,
                        "configmap references non-existent config key")


def secret_payload(source: Obj, secret: Obj | None, default_mode: Any = None, *,
                   name_field: str = "secretName") -> Payload:
    """The files of a secret volume (``secretName``) or a projected secret source (``name``)."""
    optional = source.get("optional") is True
    name = source.get(name_field) or ""
    if secret is None:
        if not optional:
            raise PayloadError(f'secret "{name}" not found')
        return {}
    mode = source.get("defaultMode") if default_mode is None else default_mode
    return make_payload(secret_entries(secret), source.get("items"), mode, optional,
                        "references non-existent secret key")
