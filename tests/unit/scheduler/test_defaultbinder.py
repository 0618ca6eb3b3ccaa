"""DefaultBinder: POSTs a Binding to pods/<name>/binding through the handle's client, and turns
any failure into an Error status carrying the API's message."""

from __future__ import annotations

import copy

import pytest

from pybernetes.client.errors import Conflict, ConnectionFailed, NotFound
from pybernetes.scheduler.framework import Code, CycleState
from pybernetes.scheduler.handle import Handle
from pybernetes.scheduler.plugins.defaultbinder import DefaultBinder, binding_for

POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web-1", "namespace": "shop", "uid": "1234-abcd", "labels": {"app": "web"}},
       "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


class FakeClient:
    """Records create() calls; raises ``error`` when set."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.calls: list[tuple] = []
        self.error = error

    async def create(self, res, obj, namespace=None, *, subresource=None, name=None, **params):
        self.calls.append((res, copy.deepcopy(obj), namespace, subresource, name, params))
        if self.error is not None:
            raise self.error
        return {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}


async def test_bind_posts_a_binding_to_the_pods_binding_subresource():
    client = FakeClient()
    before = copy.deepcopy(POD)
    status = await DefaultBinder({}, Handle(client=client)).bind(CycleState(), POD, "node-7")
    assert status.is_success()
    assert client.calls == [(("", "v1", "pods"), {
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": "web-1", "namespace": "shop", "uid": "1234-abcd"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-7"},
    }, "shop", "binding", "web-1", {})]
    assert POD == before


def test_binding_for_a_pod_without_namespace_or_uid():
    pod = {"metadata": {"name": "x"}}
    assert binding_for(pod, "n") == {"apiVersion": "v1", "kind": "Binding",
                                     "metadata": {"name": "x", "namespace": "default"},
                                     "target": {"apiVersion": "v1", "kind": "Node", "name": "n"}}


@pytest.mark.parametrize(("error", "message"), [
    (Conflict(409, "Conflict", 'Operation cannot be fulfilled on pods/binding "web-1": pod web-1 is already '
                               'assigned to node "node-2"'),
     'Operation cannot be fulfilled on pods/binding "web-1": pod web-1 is already assigned to node "node-2"'),
    (NotFound(404, "NotFound", 'pods "web-1" not found'), 'pods "web-1" not found'),
    (ConnectionFailed("no API server reachable"), "ConnectionFailed: no API server reachable"),
])
async def test_bind_failure_is_an_error_status_with_the_apis_message(error, message):
    client = FakeClient(error)
    status = await DefaultBinder({}, Handle(client=client)).bind(CycleState(), POD, "node-7")
    assert status.code == Code.ERROR
    assert status.reasons == (message,)
    assert status.plugin == "DefaultBinder"
    assert len(client.calls) == 1


async def test_bind_without_a_client_is_an_error():
    status = await DefaultBinder({}, Handle()).bind(CycleState(), POD, "n")
    assert status.code == Code.ERROR and "no API client" in status.message()


def test_defaultbinder_serves_only_bind():
    plugin = DefaultBinder()
    assert plugin.name == "DefaultBinder"
    for method in ("filter", "score", "pre_filter", "reserve", "permit", "pre_bind", "post_bind"):
        assert not hasattr(plugin, method)
