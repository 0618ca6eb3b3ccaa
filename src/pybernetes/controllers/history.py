"""ControllerRevisions: the template history of DaemonSets and StatefulSets, and the stable
hash those and Deployments name things by (upstream's controller/history package and
controller.ComputeHash).

- ``compute_hash(obj, collision_count)``: FNV-1a (32 bit) over the canonical JSON of ``obj``
  (sorted keys) and the collision count, written in upstream's "safe" alphabet (no vowels,
  no 0/1/3, so a hash never spells a word) — e.g. the pod-template-hash label.
- ``new_revision``: a ControllerRevision ``<parent>-<hash>`` owned by its parent, labelled
  with the parent's selector labels and ``controller-revision-hash``.
- Sorting, equality and lookup of revisions; ``create_revision`` resolves a name clash with
  a different revision by bumping the parent's collision count, as upstream does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from pybernetes.client.errors import AlreadyExists
from pybernetes.client.rest import RestClient
from pybernetes.controllers.podutil import new_controller_ref

Obj = dict[str, Any]

CONTROLLER_REVISIONS = ("apps", "v1", "controllerrevisions")
REVISION_HASH_LABEL = "controller-revision-hash"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
MAX_NAME_PREFIX = 223  # a revision name is <prefix>-<hash>, within 253 characters


def fnv1a_32(data: bytes) -> int:
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """Each character mapped into the safe alphabet (upstream rand.SafeEncodeString)."""
    return "".join(SAFE_ALPHABET[ord(ch) % len(SAFE_ALPHABET)] for ch in text)


def compute_hash(obj: Any, collision_count: int | None = None) -> str:
    data = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += b"\x00" + str(int(collision_count)).encode()
    return safe_encode(str(fnv1a_32(data)))


def revision_name(parent_name: str, hash_: str) -> str:
    return f"{parent_name[:MAX_NAME_PREFIX]}-{hash_}"


def new_revision(parent: Obj, parent_kind_ref: Obj, data: Obj, revision: int,
                 collision_count: int | None, labels: dict[str, str] | None) -> Obj:
    """A ControllerRevision of ``parent`` holding ``data`` as revision ``revision``."""
    pmeta = parent.get("metadata") or {}
    hash_ = compute_hash(data, collision_count)
    rev_labels = dict(labels or {})
    rev_labels[REVISION_HASH_LABEL] = hash_
    return {
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {
            "name": revision_name(pmeta.get("name", ""), hash_),
            "namespace": pmeta.get("namespace"),
            "labels": rev_labels,
            "annotations": dict(pmeta.get("annotations") or {}),
            "ownerReferences": [new_controller_ref(parent, parent_kind_ref["apiVersion"],
                                                   parent_kind_ref["kind"])],
        },
        "data": data,
        "revision": int(revision),
    }


def revision_number(rev: Obj) -> int:
    try:
        return int(rev.get("revision") or 0)
    except (TypeError, ValueError):
        return 0


def max_revision(revs: Iterable[Obj]) -> int:
    return max((revision_number(r) for r in revs), default=0)


def sort_revisions(revs: Iterable[Obj]) -> list[Obj]:
    """Oldest first: by revision number, then creationTimestamp, then name."""
    return sorted(revs, key=lambda r: (revision_number(r),
                                       (r.get("metadata") or {}).get("creationTimestamp") or "",
                                       (r.get("metadata") or {}).get("name") or ""))


def equal_revisions(a: Obj | None, b: Obj | None) -> bool:
    """Same data (the hash label, when both carry one, decides quickly)."""
    if a is None or b is None:
        return a is b
    ha = ((a.get("metadata") or {}).get("labels") or {}).get(REVISION_HASH_LABEL)
    hb = ((b.get("metadata") or {}).get("labels") or {}).get(REVISION_HASH_LABEL)
    if ha and hb and ha != hb:
        return False
    return orjson.dumps(a.get("data"), option=orjson.OPT_SORT_KEYS) == \
        orjson.dumps(b.get("data"), option=orjson.OPT_SORT_KEYS)


def find_equal_revisions(revs: Iterable[Obj], rev: Obj) -> list[Obj]:
    return [r for r in revs if equal_revisions(r, rev)]


async def create_revision(client: RestClient, rev: Obj, collision_count: list[int]) -> Obj:
    """Create ``rev``; when its name is taken by a revision with other data, bump
    ``collision_count[0]`` (the parent's status.collisionCount, passed as a one-item list so
    the caller sees the change) and try the next name.  An identical revision that already
    exists is returned as it is."""
    parent_ref = ((rev.get("metadata") or {}).get("ownerReferences") or [{}])[0]
    labels = {k: v for k, v in ((rev.get("metadata") or {}).get("labels") or {}).items()
              if k != REVISION_HASH_LABEL}
    parent = {"metadata": {"name": parent_ref.get("name", ""), "uid": parent_ref.get("uid", ""),
                           "namespace": (rev.get("metadata") or {}).get("namespace"),
                           "annotations": (rev.get("metadata") or {}).get("annotations") or {}}}
    kind_ref = {"apiVersion": parent_ref.get("apiVersion", ""), "kind": parent_ref.get("kind", "")}
    attempt = rev
    ns = (rev.get("metadata") or {}).get("namespace")
    for _ in range(100):
        try:
            return await client.create(CONTROLLER_REVISIONS, attempt, ns)
        except AlreadyExists:
            existing = await client.get(CONTROLLER_REVISIONS, attempt["metadata"]["name"], ns)
            if equal_revisions(existing, attempt):
                return existing
            collision_count[0] += 1
            attempt = new_revision(parent, kind_ref, rev.get("data") or {}, revision_number(rev),
                                   collision_count[0], labels)
    raise RuntimeError(f"could not name a revision of {parent_ref.get('name')}: too many hash collisions")
