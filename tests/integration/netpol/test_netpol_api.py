"""NetworkPolicies through the HTTP API: an invalid ipBlock (a bad CIDR, an except outside its
cidr) is refused with a 422 Invalid Status naming the field and nothing is stored; policyTypes
are defaulted as the enforcer expects."""

from __future__ import annotations

import pytest

PATH = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"


def policy(name: str, ip_block: dict, direction: str = "ingress") -> dict:
    peers = "from" if direction == "ingress" else "to"
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name}, "spec": {"podSelector": {}, direction: [{peers: [{"ipBlock": ip_block}]}]}}


@pytest.mark.parametrize(("block", "direction", "field"), [
    ({"cidr": "10.0.0.0/33"}, "ingress", "spec.ingress[0].from[0].ipBlock.cidr"),
    ({"cidr": "not-a-cidr"}, "egress", "spec.egress[0].to[0].ipBlock.cidr"),
    ({"cidr": "10.0.0.1"}, "ingress", "spec.ingress[0].from[0].ipBlock.cidr"),
    ({"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}, "ingress", "spec.ingress[0].from[0].ipBlock.except[0]"),
    ({"cidr": "10.0.0.0/16", "except": ["10.0.0.0/16"]}, "egress", "spec.egress[0].to[0].ipBlock.except[0]"),
    ({"cidr": "10.0.0.0/16", "except": ["10.0.300.0/24"]}, "ingress", "spec.ingress[0].from[0].ipBlock.except[0]"),
])
async def test_invalid_ip_block_is_rejected_with_422(http, block, direction, field):
    resp = await http.post(PATH, json=policy("bad", block, direction))
    status = await resp.json()
    assert resp.status == 422, status
    assert status["kind"] == "Status" and status["status"] == "Failure"
    assert status["reason"] == "Invalid" and status["code"] == 422
    assert status["details"]["kind"] == "NetworkPolicy" and status["details"]["name"] == "bad"
    assert field in [cause.get("field") for cause in status["details"]["causes"]], status
    assert (await http.get(f"{PATH}/bad")).status == 404


async def test_valid_policy_is_stored_with_policy_types_defaulted(http):
    ok = policy("ok", {"cidr": "10.0.0.0/16", "except": ["10.0.1.0/24"]}, "egress")
    resp = await http.post(PATH, json=ok)
    assert resp.status == 201, await resp.text()
    stored = await resp.json()
    assert stored["spec"]["policyTypes"] == ["Ingress", "Egress"]
    # an update that breaks the block is refused too, and the stored policy stays as it was
    stored["spec"]["egress"][0]["to"][0]["ipBlock"]["except"] = ["192.168.0.0/24"]
    resp = await http.put(f"{PATH}/ok", json=stored)
    assert resp.status == 422
    again = await (await http.get(f"{PATH}/ok")).json()
    assert again["spec"]["egress"][0]["to"][0]["ipBlock"]["except"] == ["10.0.1.0/24"]
