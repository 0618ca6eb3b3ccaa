"""The two API rules the StatefulSet controller relies on: a pod template may mount its
volumeClaimTemplates by name, rollingUpdate.maxUnavailable is accepted (validated as upstream
does with MaxUnavailableStatefulSet on), and an unbound claim's metadata (ownerReferences) may
be updated."""

from __future__ import annotations

import copy

from pybernetes.api.apps.statefulsets import STATEFULSETS
from pybernetes.api.core.volumes import PERSISTENTVOLUMECLAIMS


def stateful_set(**spec) -> dict:
    body = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "db",
                                                       "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                           "spec": {"accessModes": ["ReadWriteOnce"],
                                                    "resources": {"requests": {"storage": "1Gi"}}}}]},
    }
    body["spec"].update(spec)
    return body


def errors(obj: dict) -> list[str]:
    s = STATEFULSETS.strategy
    s.default(obj)
    s.prepare_for_create(obj)
    return [f"{e.field}: {e.detail}" for e in s.validate(obj)]


def test_template_may_mount_claim_templates():
    assert errors(stateful_set()) == []
    body = stateful_set(volumeClaimTemplates=[])
    assert any("volumeMounts[0].name" in e for e in errors(body))


def test_max_unavailable_validated():
    ok = stateful_set(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%"}})
    assert errors(ok) == []
    zero = stateful_set(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}})
    assert errors(zero) == ["spec.updateStrategy.rollingUpdate.maxUnavailable: cannot be 0"]
    big = stateful_set(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "120%"}})
    assert errors(big) == ["spec.updateStrategy.rollingUpdate.maxUnavailable: must not be greater than 100%"]


def test_unbound_claim_owner_references_may_change():
    s = PERSISTENTVOLUMECLAIMS.strategy
    claim = {"metadata": {"name": "c", "namespace": "d"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    s.default(claim)
    s.prepare_for_create(claim)
    owned = copy.deepcopy(claim)
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u"}]
    assert s.validate_update(owned, claim) == []
    changed = copy.deepcopy(claim)
    changed["spec"]["accessModes"] = ["ReadWriteMany"]
    assert [e.field for e in s.validate_update(changed, claim)] == ["spec"]
