"""Claim-to-volume matching (machinery/volumematch.py): classes, sizes, access modes,
volume modes, selectors, pre-bound volumes, exclusions and the extra check."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pybernetes.machinery.volumematch import (
    access_modes_satisfied,
    claim_storage_class,
    find_matching_volume,
    is_volume_bound_to_claim,
    requested_storage,
    volume_capacity,
    volume_modes_match,
    volume_storage_class,
)

GI = 1024**3


def pvc(size: str | None = "1Gi", *, name: str = "data", namespace: str = "ns", uid: str = "u1",
        modes: tuple[str, ...] = ("ReadWriteOnce",), storage_class: str | None = None, selector: Any = None,
        volume_mode: str | None = None, annotations: dict | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": list(modes)}
    if size is not None:
        spec["resources"] = {"requests": {"storage": size}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if selector is not None:
        spec["selector"] = selector
    if volume_mode is not None:
        spec["volumeMode"] = volume_mode
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if uid:
        meta["uid"] = uid
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": spec}


def pv(name: str, size: str = "1Gi", *, modes: tuple[str, ...] = ("ReadWriteOnce",), storage_class: str | None = None,
       labels: dict | None = None, claim_ref: dict | None = None, phase: str = "Available",
       volume_mode: str | None = None, deleting: bool = False, annotations: dict | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    if annotations:
        meta["annotations"] = annotations
    spec: dict[str, Any] = {"capacity": {"storage": size}, "accessModes": list(modes)}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if claim_ref is not None:
        spec["claimRef"] = claim_ref
    if volume_mode is not None:
        spec["volumeMode"] = volume_mode
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


def ref(name: str = "data", namespace: str = "ns", uid: str | None = None) -> dict[str, Any]:
    out = {"kind": "PersistentVolumeClaim", "namespace": namespace, "name": name}
    if uid is not None:
        out["uid"] = uid
    return out


def match_name(claim: dict[str, Any], volumes: list[dict[str, Any]], **kwargs: Any) -> str | None:
    found = find_matching_volume(claim, volumes, **kwargs)
    return None if found is None else found["metadata"]["name"]


# -- readers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec_class", "annotation", "want"), [
    (None, None, ""),
    ("fast", None, "fast"),
    ("", None, ""),
    (None, "slow", "slow"),
    ("fast", "slow", "slow"),  # upstream reads the beta annotation first
])
def test_storage_class_of_claims_and_volumes(spec_class: str | None, annotation: str | None, want: str) -> None:
    notes = {"volume.beta.kubernetes.io/storage-class": annotation} if annotation is not None else None
    assert claim_storage_class(pvc(storage_class=spec_class, annotations=notes)) == want
    assert volume_storage_class(pv("v", storage_class=spec_class, annotations=notes)) == want


@pytest.mark.parametrize(("size", "want"), [
    ("1Gi", GI), ("500M", 500 * 10**6), ("1.5Ki", 1536), ("100m", 1), (None, 0), ("bogus", 0),
])
def test_requested_storage_and_capacity_in_bytes(size: str | None, want: int) -> None:
    assert requested_storage(pvc(size)) == want
    volume = pv("v", size) if size is not None else {"spec": {}}
    assert volume_capacity(volume) == want


def test_requested_storage_of_a_claim_without_spec() -> None:
    assert requested_storage({}) == 0
    assert volume_capacity({"spec": {"capacity": None}}) == 0


@pytest.mark.parametrize(("claim_modes", "volume_modes", "want"), [
    (("ReadWriteOnce",), ("ReadWriteOnce",), True),
    (("ReadWriteOnce",), ("ReadWriteOnce", "ReadOnlyMany"), True),
    (("ReadWriteOnce", "ReadOnlyMany"), ("ReadWriteOnce",), False),
    (("ReadWriteMany",), ("ReadWriteOnce",), False),
    ((), ("ReadWriteOnce",), True),
])
def test_access_modes(claim_modes: tuple[str, ...], volume_modes: tuple[str, ...], want: bool) -> None:
    assert access_modes_satisfied(pvc(modes=claim_modes), pv("v", modes=volume_modes)) is want


@pytest.mark.parametrize(("claim_mode", "volume_mode", "want"), [
    (None, None, True), ("Filesystem", None, True), (None, "Filesystem", True),
    ("Block", None, False), ("Block", "Block", True), (None, "Block", False),
])
def test_volume_modes(claim_mode: str | None, volume_mode: str | None, want: bool) -> None:
    assert volume_modes_match(pvc(volume_mode=claim_mode), pv("v", volume_mode=volume_mode)) is want


@pytest.mark.parametrize(("claim_ref", "claim_uid", "want"), [
    (None, "u1", False),
    (ref(), "u1", True),
    (ref(uid="u1"), "u1", True),
    (ref(uid="u2"), "u1", False),
    (ref(uid="u1"), "", True),  # uids compared only when both are known
    (ref(name="other"), "u1", False),
    (ref(namespace="other"), "u1", False),
])
def test_is_volume_bound_to_claim(claim_ref: dict | None, claim_uid: str, want: bool) -> None:
    assert is_volume_bound_to_claim(pv("v", claim_ref=claim_ref), pvc(uid=claim_uid)) is want


# -- find_matching_volume --------------------------------------------------------------------------


def test_smallest_volume_that_fits() -> None:
    volumes = [pv("big", "10Gi"), pv("small", "500Mi"), pv("medium", "2Gi"), pv("exact", "1Gi")]
    assert match_name(pvc("1Gi"), volumes) == "exact"
    assert match_name(pvc("1.5Gi"), volumes) == "medium"
    assert match_name(pvc("20Gi"), volumes) is None


def test_equal_sizes_keep_the_first_listed() -> None:
    assert match_name(pvc("1Gi"), [pv("b", "2Gi"), pv("a", "2Gi")]) == "b"


def test_unavailable_volumes_are_skipped() -> None:
    volumes = [
        pv("claimed", claim_ref=ref(name="someone")),
        pv("released", phase="Released"),
        pv("failed", phase="Failed"),
        pv("deleting", deleting=True),
    ]
    assert match_name(pvc(), volumes) is None
    assert match_name(pvc(), [*volumes, pv("pending", "5Gi", phase="Pending")]) == "pending"
    assert match_name(pvc(), [*volumes, pv("new", "5Gi", phase="")]) == "new"


def test_storage_class_must_be_equal() -> None:
    volumes = [pv("plain", "1Gi"), pv("gold", "2Gi", storage_class="gold")]
    assert match_name(pvc(), volumes) == "plain"
    assert match_name(pvc(storage_class=""), volumes) == "plain"
    assert match_name(pvc(storage_class="gold"), volumes) == "gold"
    assert match_name(pvc(storage_class="silver"), volumes) is None


def test_access_and_volume_modes_must_fit() -> None:
    volumes = [pv("rwo", "1Gi"), pv("rwx", "5Gi", modes=("ReadWriteMany",)),
               pv("block", "2Gi", volume_mode="Block")]
    assert match_name(pvc(modes=("ReadWriteMany",)), volumes) == "rwx"
    assert match_name(pvc(volume_mode="Block"), volumes) == "block"
    assert match_name(pvc(modes=("ReadOnlyMany",)), volumes) is None


def test_selector_match_labels_and_expressions() -> None:
    volumes = [pv("ssd-eu", "1Gi", labels={"disk": "ssd", "zone": "eu"}),
               pv("hdd-us", "2Gi", labels={"disk": "hdd", "zone": "us"}),
               pv("bare", "500Mi")]
    assert match_name(pvc("100Mi", selector={"matchLabels": {"disk": "hdd"}}), volumes) == "hdd-us"
    assert match_name(pvc("100Mi", selector={"matchExpressions": [
        {"key": "zone", "operator": "NotIn", "values": ["us"]}]}), volumes) == "bare"
    assert match_name(pvc("100Mi", selector={"matchExpressions": [
        {"key": "disk", "operator": "Exists"}]}), volumes) == "ssd-eu"
    assert match_name(pvc("100Mi", selector={"matchLabels": {"disk": "nvme"}}), volumes) is None
    assert match_name(pvc("100Mi", selector={}), volumes) == "bare"  # empty selector: everything


def test_invalid_selector_matches_nothing() -> None:
    bad = {"matchExpressions": [{"key": "disk", "operator": "Near", "values": ["x"]}]}
    assert match_name(pvc(selector=bad), [pv("v")]) is None


def test_pre_bound_volume_wins_over_a_smaller_free_one() -> None:
    volumes = [pv("free", "1Gi"), pv("mine", "50Gi", claim_ref=ref(), storage_class="other",
                                      labels={"x": "y"}, phase="Bound")]
    # class, selector and phase are not checked for a volume pre-bound to the claim
    assert match_name(pvc(selector={"matchLabels": {"nope": "1"}}), volumes) == "mine"


def test_pre_bound_volume_with_another_uid_is_not_ours() -> None:
    volumes = [pv("old", "5Gi", claim_ref=ref(uid="previous")), pv("free", "1Gi")]
    assert match_name(pvc(uid="u1"), volumes) == "free"
    assert match_name(pvc(uid="previous"), volumes) == "old"


def test_pre_bound_volume_that_does_not_fit_is_passed_over() -> None:
    volumes = [pv("mine-small", "100Mi", claim_ref=ref()), pv("free", "1Gi")]
    assert match_name(pvc("1Gi"), volumes) == "free"


def test_excluded_volumes_are_skipped() -> None:
    volumes = [pv("a", "1Gi"), pv("b", "2Gi"), pv("mine", "3Gi", claim_ref=ref())]
    assert match_name(pvc(), volumes, excluded={"mine"}) == "a"
    assert match_name(pvc(), volumes, excluded=["mine", "a"]) == "b"
    assert match_name(pvc(), volumes, excluded=("mine", "a", "b")) is None


def test_volume_ok_is_an_extra_check() -> None:
    volumes = [pv("zone-a", "1Gi", labels={"zone": "a"}), pv("zone-b", "2Gi", labels={"zone": "b"})]
    in_b = lambda v: v["metadata"]["labels"]["zone"] == "b"  # noqa: E731
    assert match_name(pvc(), volumes, volume_ok=in_b) == "zone-b"
    assert match_name(pvc(), volumes, volume_ok=lambda v: False) is None


def test_pre_bound_volume_failing_volume_ok_means_no_match() -> None:
    volumes = [pv("mine", "1Gi", claim_ref=ref()), pv("free", "1Gi")]
    assert match_name(pvc(), volumes, volume_ok=lambda v: v["metadata"]["name"] != "mine") is None


def test_arguments_are_not_mutated_and_the_match_is_the_given_object() -> None:
    claim = pvc(selector={"matchLabels": {"a": "b"}})
    volumes = [pv("v", labels={"a": "b"})]
    before = copy.deepcopy((claim, volumes))
    assert find_matching_volume(claim, volumes) is volumes[0]
    assert (claim, volumes) == before


def test_accepts_any_iterable_of_volumes() -> None:
    assert match_name(pvc(), (v for v in [pv("gen", "1Gi")])) == "gen"
