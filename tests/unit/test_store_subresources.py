"""Scale and binding subresources, Service IP/port allocation and start-up objects, driven
through the generic store over MemoryStorage."""

from __future__ import annotations

import orjson
from store_suite import (
    MemoryBackend,
    StoreFixtures,
    W,
    deployment,
    opts,
    pod,
    raises,
    res_of,
    service,
    test_registry,
    unchanged,
)

from pybernetes.apiserver.store import Stores
from pybernetes.storage.cacher import VALUE

MERGE = "application/merge-patch+json"


class ScaleBindingSuite(StoreFixtures):
    async def test_scale(self, stores):
        d = stores.for_resource(res_of(stores, "apps", "deployments"))
        created = await d.create("default", deployment("web", replicas=2), W())
        scale = await d.get_scale("default", "web")
        assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
        assert scale["spec"] == {"replicas": 2}
        assert scale["status"] == {"replicas": 0, "selector": "app=web"}
        meta = created["metadata"]
        assert scale["metadata"] == {
            "name": "web", "namespace": "default", "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        }
        scale["spec"]["replicas"] = 5
        updated = await d.update_scale("default", "web", scale, W())
        assert updated["spec"]["replicas"] == 5
        obj = await d.get("default", "web")
        assert obj["spec"]["replicas"] == 5 and obj["metadata"]["generation"] == 2
        # The old resourceVersion is now stale.
        err = await unchanged(stores, d.update_scale("default", "web", scale, W()), 409, "Conflict")
        assert "the object has been modified" in err.message
        scale = await d.get_scale("default", "web")
        scale["spec"]["replicas"] = -1
        err = await unchanged(stores, d.update_scale("default", "web", scale, W()), 422, "Invalid")
        assert "spec.replicas" in err.message and "greater than or equal to 0" in err.message
        patched = await d.patch_scale("default", "web", MERGE, b'{"spec":{"replicas":1}}', W())
        assert patched["spec"]["replicas"] == 1
        await raises(d.get_scale("default", "nope"), 404)
        other = dict(scale, metadata=dict(scale["metadata"], name="other"))
        await unchanged(stores, d.update_scale("default", "web", other, W()), 400)

    async def test_binding(self, stores):
        pods = stores.for_resource(res_of(stores, "", "pods"))
        await pods.create("default", pod("p"), W())
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
        status = await pods.bind("default", "p", binding, W())
        assert status["status"] == "Success" and status["code"] == 201
        bound = await pods.get("default", "p")
        assert bound["spec"]["nodeName"] == "n1"
        scheduled = [c for c in bound["status"]["conditions"] if c["type"] == "PodScheduled"]
        assert scheduled and scheduled[0]["status"] == "True"
        again = dict(binding, target={"kind": "Node", "name": "n2"})
        err = await unchanged(stores, pods.bind("default", "p", again, W()), 409, "Conflict")
        assert err.message == 'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "n1"'
        ghost = dict(binding, metadata={"name": "ghost"})
        err = await unchanged(stores, pods.bind("default", "ghost", ghost, W()), 404)
        assert err.message == 'pods "ghost" not found'
        await pods.create("default", pod("q"), W())
        err = await unchanged(stores, pods.bind("default", "q", {"target": {"kind": "Pod"}}, W()), 422)
        assert "target.name: Required value" in err.message


class ServiceAllocationSuite(StoreFixtures):
    async def test_start_creates_defaults(self, stores):
        ns = stores.for_resource(res_of(stores, "", "namespaces"))
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            await ns.get(None, name)
        svcs = stores.for_resource(res_of(stores, "", "services"))
        kubernetes = await svcs.get("default", "kubernetes")
        assert kubernetes["spec"]["clusterIP"] == "10.43.0.1"
        assert kubernetes["spec"]["ports"][0]["port"] == 443
        assert kubernetes["spec"]["ports"][0]["targetPort"] == 6443

    async def test_cluster_ips_and_node_ports(self, stores):
        svcs = stores.for_resource(res_of(stores, "", "services"))
        a = await svcs.create("default", service("a"), W())
        b = await svcs.create("default", service("b", type="NodePort"), W())
        ips = {a["spec"]["clusterIP"], b["spec"]["clusterIP"], "10.43.0.1"}
        assert len(ips) == 3 and all(ip.startswith("10.43.") for ip in ips)
        assert a["spec"]["clusterIPs"] == [a["spec"]["clusterIP"]]
        node_port = b["spec"]["ports"][0]["nodePort"]
        assert 30000 <= node_port <= 32767
        headless = await svcs.create("default", service("h", clusterIP="None"), W())
        assert headless["spec"]["clusterIP"] == "None"
        taken = service("c", clusterIP=a["spec"]["clusterIP"])
        err = await unchanged(stores, svcs.create("default", taken, W()), 422, "Invalid")
        assert "provided IP is already allocated" in err.message
        outside = service("c", clusterIP="192.168.0.9")
        err = await unchanged(stores, svcs.create("default", outside, W()), 422, "Invalid")
        assert "is not in the valid range" in err.message
        clash = service("c", type="NodePort")
        clash["spec"]["ports"][0]["nodePort"] = node_port
        err = await unchanged(stores, svcs.create("default", clash, W()), 422, "Invalid")
        assert "provided port is already allocated" in err.message
        # An update that does not repeat the allocated values keeps them.
        put = service("b", type="NodePort")
        updated, _ = await svcs.update("default", "b", put, W())
        assert updated["spec"]["clusterIP"] == b["spec"]["clusterIP"]
        assert updated["spec"]["ports"][0]["nodePort"] == node_port
        # Deleting releases both: the same values can be asked for again.
        await svcs.delete("default", "b", {}, W())
        again = service("b2", type="NodePort", clusterIP=b["spec"]["clusterIP"])
        again["spec"]["ports"][0]["nodePort"] = node_port
        made = await svcs.create("default", again, W())
        assert made["spec"]["clusterIP"] == b["spec"]["clusterIP"]

    async def test_failed_and_dry_run_creates_keep_nothing(self, stores):
        svcs = stores.for_resource(res_of(stores, "", "services"))
        dry = await svcs.create("default", service("d", clusterIP="10.43.9.9"), W(dry_run=True))
        assert dry["spec"]["clusterIP"] == "10.43.9.9"
        bad = service("Bad_Name", clusterIP="10.43.9.10")
        await unchanged(stores, svcs.create("default", bad, W()), 422)
        await svcs.create("default", service("d", clusterIP="10.43.9.9"), W())
        await svcs.create("default", service("e", clusterIP="10.43.9.10"), W())

    async def test_allocations_survive_a_restart(self, stores):
        svcs = stores.for_resource(res_of(stores, "", "services"))
        made = await svcs.create("default", service("a", type="NodePort"), W())
        await stores.stop()
        restarted = Stores(test_registry(), stores.storage)
        await restarted.start()
        try:
            again = restarted.for_resource(res_of(restarted, "", "services"))
            taken = service("b", clusterIP=made["spec"]["clusterIP"])
            err = await raises(again.create("default", taken, W()), 422)
            assert "already allocated" in err.message
            port = service("c", type="NodePort")
            port["spec"]["ports"][0]["nodePort"] = made["spec"]["ports"][0]["nodePort"]
            await raises(again.create("default", port, W()), 422)
            kubernetes = await again.get("default", "kubernetes")
            assert kubernetes["spec"]["clusterIP"] == "10.43.0.1"
            listing = await again.list("default", opts())
            names = sorted(orjson.loads(e[VALUE])["metadata"]["name"] for e in listing.entries)
            assert names == ["a", "kubernetes"]
        finally:
            await restarted.stop()


class TestScaleBindingMemory(MemoryBackend, ScaleBindingSuite):
    pass


class TestServiceAllocationMemory(MemoryBackend, ServiceAllocationSuite):
    pass
