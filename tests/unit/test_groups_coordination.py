"""coordination.k8s.io/v1 leases."""

from pybernetes.api import coordination
from pybernetes.api.printing import parse_time

LEASES = coordination.RESOURCES[0]
NOW = parse_time("2024-01-01T00:00:30Z")


def lease(**spec):
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "node-1", "namespace": "kube-node-lease",
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": spec}


def test_lease_resource_flags():
    assert LEASES.group == "coordination.k8s.io" and LEASES.namespaced
    s = LEASES.strategy
    assert s.allow_create_on_update is True
    assert s.allow_unconditional_update is False
    assert s.has_generation is False
    assert s.status_fields == ()


def test_lease_validation():
    s = LEASES.strategy
    assert s.validate(lease(holderIdentity="node-1", leaseDurationSeconds=40)) == []
    errs = s.validate(lease(leaseDurationSeconds=0, leaseTransitions=-1))
    assert [(e.field, e.detail) for e in errs] == [
        ("spec.leaseDurationSeconds", "must be greater than 0"),
        ("spec.leaseTransitions", "must be greater than or equal to 0"),
    ]


def test_lease_gated_fields_dropped_and_update_keeps_spec():
    s = LEASES.strategy
    obj = lease(holderIdentity="a", strategy="OldestEmulationVersion", preferredHolder="b")
    s.prepare_for_create(obj)
    assert obj["spec"] == {"holderIdentity": "a"}
    old = lease(holderIdentity="a")
    new = lease(holderIdentity="b", renewTime="2024-01-01T00:00:10.000000Z")
    s.prepare_for_update(new, old)
    assert new["spec"]["holderIdentity"] == "b"


def test_lease_table():
    s = LEASES.strategy
    assert [c.name for c in s.columns()] == ["Holder", "Age"]
    assert s.cells(lease(holderIdentity="node-1"), NOW) == ["node-1", "30s"]
    assert s.cells(lease(), NOW) == ["", "30s"]
