"""Generic store deletion over MemoryStorage: options, preconditions, graceful deletion,
finalizers, propagation, the DELETE answer, deletecollection, namespaces."""

from __future__ import annotations

from store_suite import (
    WIDGETS,
    MemoryBackend,
    StoreFixtures,
    W,
    configmap,
    opts,
    pod,
    raises,
    res_of,
    unchanged,
    widget,
)

from pybernetes.storage.cacher import KEY


class DeleteSuite(StoreFixtures):
    async def test_delete_answers_status_or_object(self, stores):
        cms = stores.for_resource(res_of(stores, "", "configmaps"))
        created = await cms.create("default", configmap("c"), W())
        result = await cms.delete("default", "c", {}, W())
        assert result.deleted
        assert result.obj["metadata"]["uid"] == created["metadata"]["uid"]
        assert result.status == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": "c", "kind": "configmaps", "uid": created["metadata"]["uid"]},
        }
        await raises(cms.get("default", "c"), 404)
        await unchanged(stores, cms.delete("default", "c", {}, W()), 404, "NotFound")
        pods = stores.for_resource(res_of(stores, "", "pods"))
        await pods.create("default", pod("p"), W())
        result = await pods.delete("default", "p", {}, W())
        assert result.deleted and result.status is None and result.obj["kind"] == "Pod"

    async def test_preconditions(self, stores):
        w = stores.for_resource(WIDGETS)
        created = await w.create("default", widget("a"), W())
        err = await unchanged(stores, w.delete("default", "a", {"preconditions": {"uid": "nope"}}, W()), 409, "Conflict")
        assert "the UID in the precondition (nope) does not match the UID in record" in err.message
        err = await unchanged(
            stores, w.delete("default", "a", {"preconditions": {"resourceVersion": "1"}}, W()), 409, "Conflict"
        )
        assert "the ResourceVersion in the precondition (1) does not match" in err.message
        meta = created["metadata"]
        ok = {"preconditions": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}}
        assert (await w.delete("default", "a", ok, W())).deleted

    async def test_bad_delete_options(self, stores):
        w = stores.for_resource(WIDGETS)
        await w.create("default", widget("a"), W())
        err = await unchanged(stores, w.delete("default", "a", {"propagationPolicy": "Sideways"}, W()), 422)
        assert err.message.startswith('DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value')
        await unchanged(
            stores, w.delete("default", "a", {"propagationPolicy": "Orphan", "orphanDependents": True}, W()), 422
        )
        await unchanged(stores, w.delete("default", "a", {"gracePeriodSeconds": "x"}, W()), 400)
        await unchanged(stores, w.delete("default", "../x", {}, W()), 400)

    async def test_finalizers_hold_the_object(self, stores):
        w = stores.for_resource(WIDGETS)
        body = widget("a")
        body["metadata"]["finalizers"] = ["example.com/hold"]
        await w.create("default", body, W())
        first = await w.delete("default", "a", {}, W())
        assert not first.deleted
        stamp = first.obj["metadata"]["deletionTimestamp"]
        assert first.obj["metadata"]["deletionGracePeriodSeconds"] == 0
        assert first.obj["metadata"]["generation"] == 2
        before = await stores.storage.current_revision()
        second = await w.delete("default", "a", {}, W())
        assert not second.deleted and second.obj["metadata"]["deletionTimestamp"] == stamp
        assert await stores.storage.current_revision() == before
        assert (await w.get("default", "a"))["metadata"]["deletionTimestamp"] == stamp

    async def test_propagation_policies(self, stores):
        w = stores.for_resource(WIDGETS)
        for name in ("o", "f", "b", "legacy"):
            await w.create("default", widget(name), W())
        orphan = await w.delete("default", "o", {"propagationPolicy": "Orphan"}, W())
        assert not orphan.deleted and orphan.obj["metadata"]["finalizers"] == ["orphan"]
        fg = await w.delete("default", "f", {"propagationPolicy": "Foreground"}, W())
        assert not fg.deleted and fg.obj["metadata"]["finalizers"] == ["foregroundDeletion"]
        assert fg.obj["metadata"]["deletionTimestamp"]
        bg = await w.delete("default", "b", {"propagationPolicy": "Background"}, W())
        assert bg.deleted
        legacy = await w.delete("default", "legacy", {"orphanDependents": True}, W())
        assert legacy.obj["metadata"]["finalizers"] == ["orphan"]

    async def test_graceful_pod_deletion(self, stores):
        pods = stores.for_resource(res_of(stores, "", "pods"))
        await pods.create("default", pod("bound", node="n1", grace=30), W())
        await pods.create("default", pod("unbound", grace=30), W())
        marked = await pods.delete("default", "bound", {}, W())
        assert not marked.deleted
        assert marked.obj["metadata"]["deletionGracePeriodSeconds"] == 30
        assert marked.obj["metadata"]["deletionTimestamp"]
        again = await pods.delete("default", "bound", {}, W())
        assert not again.deleted
        assert again.obj["metadata"]["deletionTimestamp"] == marked.obj["metadata"]["deletionTimestamp"]
        gone = await pods.delete("default", "bound", {"gracePeriodSeconds": 0}, W())
        assert gone.deleted
        await raises(pods.get("default", "bound"), 404)
        assert (await pods.delete("default", "unbound", {}, W())).deleted

    async def test_dry_run_delete(self, stores):
        w = stores.for_resource(WIDGETS)
        await w.create("default", widget("a"), W())
        before = await stores.storage.current_revision()
        result = await w.delete("default", "a", {}, W(dry_run=True))
        assert result.deleted
        assert await stores.storage.current_revision() == before
        await w.get("default", "a")

    async def test_delete_collection(self, stores):
        cms = stores.for_resource(res_of(stores, "", "configmaps"))
        for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
            await cms.create("default", configmap(name, {"team": team}), W())
        deleted = await cms.delete_collection("default", opts(label_selector="team=x"), {}, W())
        assert sorted(o["metadata"]["name"] for o in deleted) == ["a", "b"]
        page = await cms.list("default", opts())
        assert [e[KEY].rsplit("/", 1)[1] for e in page.entries] == ["c"]
        await unchanged(
            stores, cms.delete_collection("default", opts(), {"propagationPolicy": "Nope"}, W()), 422
        )

    async def test_namespace_deletion_marks_terminating(self, stores):
        ns = stores.for_resource(res_of(stores, "", "namespaces"))
        await ns.create(None, {"metadata": {"name": "team"}}, W())
        result = await ns.delete(None, "team", {}, W())
        assert not result.deleted and result.obj["status"]["phase"] == "Terminating"
        current = await ns.get(None, "team")
        # The finalize subresource removing the last spec finalizer deletes the namespace.
        current["spec"]["finalizers"] = []
        await ns.update(None, "team", current, W(), subresource="finalize")
        await raises(ns.get(None, "team"), 404)


class TestDeleteMemory(MemoryBackend, DeleteSuite):
    pass
