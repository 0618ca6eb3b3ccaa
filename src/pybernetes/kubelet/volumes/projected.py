"""projected volumes: several sources (configMap, secret, downwardAPI, serviceAccountToken)
written into one directory, each with the volume's ``defaultMode`` unless an item says
otherwise (pure composition; the manager fetches the objects and tokens).

Errors of the sources are gathered as upstream aggregates them: one error is itself, several
are ``[e1, e2]``; nothing is written then.

``serviceAccountToken`` needs the API's TokenRequest (``serviceaccounts/<name>/token``).  While
the API server has none, the source is skipped with a warning (no token file is written) —
``token_api`` False says so.  With it, the token (from ``tokens``: path -> bytes, requested by
the manager) is written with the volume's defaultMode (upstream writes tokens 0600 only when
an fsUser is set, which needs the fsGroup/runAsUser rules not modelled here).
"""

from __future__ import annotations

import logging
from typing import Any

from pybernetes.kubelet.volumes.atomic_writer import FileProjection, Payload
from pybernetes.kubelet.volumes.common import DEFAULT_MODE, Obj, d, lst, mode_of
from pybernetes.kubelet.volumes.configmap_secret import PayloadError, configmap_payload, secret_payload
from pybernetes.kubelet.volumes.downwardapi import DownwardAPIError, downward_payload

log = logging.getLogger(__name__)


class ProjectedError(ValueError):
    pass


def sources_of(projected: Obj) -> list[Obj]:
    return [d(s) for s in lst(projected.get("sources"))]


def wanted_objects(projected: Obj) -> list[tuple[str, str]]:
    """("configmap" | "secret", name) of every source to fetch."""
    wanted = []
    for source in sources_of(projected):
        if source.get("configMap") is not None:
            wanted.append(("configmap", str(d(source["configMap"]).get("name") or "")))
        elif source.get("secret") is not None:
            wanted.append(("secret", str(d(source["secret"]).get("name") or "")))
    return wanted


def token_sources(projected: Obj) -> list[Obj]:
    return [d(s["serviceAccountToken"]) for s in sources_of(projected) if s.get("serviceAccountToken") is not None]


def projected_payload(projected: Obj, pod: Obj, objects: dict[tuple[str, str], Obj | None], *,
                      allocatable: dict[str, Any] | None = None, token_api: bool = False,
                      tokens: dict[str, bytes] | None = None) -> Payload:
    """The files of a projected volume; ``objects`` maps ("configmap"|"secret", name) to the
    object (None: not found)."""
    mode = mode_of(projected.get("defaultMode"), DEFAULT_MODE)
    payload: Payload = {}
    errors: list[str] = []
    for source in sources_of(projected):
        try:
            if source.get("configMap") is not None:
                cm = d(source["configMap"])
                part = configmap_payload(cm, objects.get(("configmap", str(cm.get("name") or ""))), mode)
            elif source.get("secret") is not None:
                sec = d(source["secret"])
                part = secret_payload(sec, objects.get(("secret", str(sec.get("name") or ""))), mode,
                                      name_field="name")
            elif source.get("downwardAPI") is not None:
                part = downward_payload(d(source["downwardAPI"]).get("items"), pod, mode, allocatable)
            elif source.get("serviceAccountToken") is not None:
                token = d(source["serviceAccountToken"])
                path = str(token.get("path") or "")
                if not token_api:
                    continue
                data = (tokens or {}).get(path)
                if data is None:
                    raise ProjectedError(f"failed to fetch token for path {path!r}")
                part = {path: FileProjection(data, mode)}
            else:
                continue  # clusterTrustBundle and others: not served by this API
        except (PayloadError, DownwardAPIError, ProjectedError) as exc:
            errors.append(str(exc))
            continue
        payload.update(part)
    if errors:
        raise ProjectedError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
    return payload
