"""Generic store writes over MemoryStorage: create, update (PUT), status, patch."""

from __future__ import annotations

import orjson
import pytest
from store_suite import (
    GADGETS,
    WIDGETS,
    MemoryBackend,
    StoreFixtures,
    W,
    configmap,
    deployment,
    raises,
    res_of,
    unchanged,
    widget,
)

from pybernetes.apiserver import store as store_module
from pybernetes.machinery.errors import MODIFIED_CONFLICT

MERGE = "application/merge-patch+json"
JSONPATCH = "application/json-patch+json"
SMP = "application/strategic-merge-patch+json"


class CreateSuite(StoreFixtures):
    async def test_create_sets_server_owned_metadata(self, stores):
        w = stores.for_resource(WIDGETS)
        body = widget("a")
        body["metadata"].update(
            uid="client-uid", resourceVersion="999", creationTimestamp="2001-01-01T00:00:00Z",
            deletionTimestamp="2001-01-01T00:00:00Z", generation=7,
            managedFields=[{"manager": "x", "operation": "Update"}],
        )
        created = await w.create("default", body, W())
        meta = created["metadata"]
        assert meta["uid"] != "client-uid" and len(meta["uid"]) == 36
        assert meta["creationTimestamp"] != "2001-01-01T00:00:00Z"
        assert "deletionTimestamp" not in meta and "managedFields" not in meta
        assert meta["generation"] == 1
        assert meta["namespace"] == "default"
        assert int(meta["resourceVersion"]) == await stores.storage.current_revision()
        got = await w.get("default", "a")
        assert got == created
        cm = await stores.for_resource(res_of(stores, "", "configmaps")).create(
            "default", configmap("c", x="1"), W()
        )
        assert "generation" not in cm["metadata"]

    async def test_kind_and_api_version_must_match(self, stores):
        w = stores.for_resource(WIDGETS)
        bad_kind = widget("a")
        bad_kind["kind"] = "Gadget"
        err = await unchanged(stores, w.create("default", bad_kind, W()), 400, "BadRequest")
        assert "Gadget" in err.message and "Widget" in err.message
        bad_version = widget("a")
        bad_version["apiVersion"] = "example.com/v2"
        err = await unchanged(stores, w.create("default", bad_version, W()), 400)
        assert err.message == (
            "the API version in the data (example.com/v2) does not match the expected API version "
            "(example.com/v1)"
        )
        no_type = widget("b")
        del no_type["kind"], no_type["apiVersion"]
        created = await w.create("default", no_type, W())
        assert created["kind"] == "Widget" and created["apiVersion"] == "example.com/v1"

    async def test_namespace_rules(self, stores):
        w = stores.for_resource(WIDGETS)
        err = await unchanged(stores, w.create("default", widget("a", ns="other"), W()), 400)
        assert err.message == (
            "the namespace of the provided object does not match the namespace sent on the request"
        )
        err = await unchanged(stores, w.create("nope", widget("a", ns="nope"), W()), 404, "NotFound")
        assert err.message == 'namespaces "nope" not found'
        gadget = await stores.for_resource(GADGETS).create(
            None, {"metadata": {"name": "g", "namespace": "x"}}, W()
        )
        assert "namespace" not in gadget["metadata"]

    async def test_terminating_namespace_refuses_new_objects(self, stores):
        ns = stores.for_resource(res_of(stores, "", "namespaces"))
        await ns.create(None, {"metadata": {"name": "doomed"}}, W())
        result = await ns.delete(None, "doomed", {}, W())
        assert not result.deleted
        assert result.obj["status"]["phase"] == "Terminating"
        w = stores.for_resource(WIDGETS)
        err = await unchanged(stores, w.create("doomed", widget("a", ns="doomed"), W()), 403, "Forbidden")
        assert "because it is being terminated" in err.message

    async def test_generate_name(self, stores, monkeypatch):
        w = stores.for_resource(WIDGETS)
        body = widget("")
        body["metadata"]["generateName"] = "web-"
        created = await w.create("default", body, W())
        name = created["metadata"]["name"]
        assert name.startswith("web-") and len(name) == 9
        # A collision is retried with a new suffix.
        names = iter([name, "web-zzzzz"])
        monkeypatch.setattr(store_module, "generate_name", lambda base: next(names))
        again = widget("")
        again["metadata"]["generateName"] = "web-"
        created = await w.create("default", again, W())
        assert created["metadata"]["name"] == "web-zzzzz"

    async def test_invalid_names_and_validation(self, stores):
        w = stores.for_resource(WIDGETS)
        for name in ("Upper", "a/b", "..", "a_b"):
            err = await unchanged(stores, w.create("default", widget(name), W()), 422, "Invalid")
            assert any(c["field"] == "metadata.name" for c in err.details["causes"]), err
        body = widget("a")
        del body["spec"]["size"]
        err = await unchanged(stores, w.create("default", body, W()), 422, "Invalid")
        assert err.message == 'Widget.example.com "a" is invalid: spec.size: Required value'
        err = await unchanged(stores, w.create("default", {"metadata": {}, "spec": {"size": 1}}, W()), 422)
        assert "name or generateName is required" in err.message

    async def test_already_exists_and_dry_run(self, stores):
        w = stores.for_resource(WIDGETS)
        await w.create("default", widget("a"), W())
        err = await unchanged(stores, w.create("default", widget("a"), W()), 409, "AlreadyExists")
        assert err.message == 'widgets.example.com "a" already exists'
        before = await stores.storage.current_revision()
        dry = await w.create("default", widget("b"), W(dry_run=True))
        assert dry["metadata"]["name"] == "b" and "resourceVersion" not in dry["metadata"]
        assert await stores.storage.current_revision() == before
        await raises(w.get("default", "b"), 404)
        await unchanged(stores, w.create("default", widget("a"), W(dry_run=True)), 409)


class UpdateSuite(StoreFixtures):
    async def test_put_name_and_resource_version_checks(self, stores):
        w = stores.for_resource(WIDGETS)
        created = await w.create("default", widget("a"), W())
        body = dict(created, metadata=dict(created["metadata"], name="b"))
        err = await unchanged(stores, w.update("default", "a", body, W()), 400)
        assert err.message == "the name of the object (b) does not match the name on the URL (a)"
        stale = orjson.loads(orjson.dumps(created))
        stale["metadata"]["resourceVersion"] = "1"
        stale["spec"]["size"] = 2
        err = await unchanged(stores, w.update("default", "a", stale, W()), 409, "Conflict")
        assert err.message == f'Operation cannot be fulfilled on widgets.example.com "a": {MODIFIED_CONFLICT}'
        await unchanged(stores, w.update("default", "missing", widget("missing"), W()), 404, "NotFound")
        # No resourceVersion: allowed (last write wins) for this strategy.
        fresh = widget("a", color="red")
        updated, created_flag = await w.update("default", "a", fresh, W())
        assert not created_flag and updated["spec"]["color"] == "red"

    async def test_unconditional_update_refused_and_create_on_update(self, stores):
        g = stores.for_resource(GADGETS)
        made, created = await g.update(None, "g", {"metadata": {"name": "g"}, "spec": {"a": 1}}, W())
        assert created and made["metadata"]["uid"]
        err = await unchanged(
            stores, g.update(None, "g", {"metadata": {"name": "g"}, "spec": {"a": 2}}, W()), 422, "Invalid"
        )
        assert "metadata.resourceVersion" in err.message and "must be specified for an update" in err.message
        body = {"metadata": {"name": "g", "resourceVersion": made["metadata"]["resourceVersion"]}, "spec": {"a": 2}}
        updated, created = await g.update(None, "g", body, W())
        assert not created and updated["spec"] == {"a": 2}

    async def test_server_fields_kept_and_generation(self, stores):
        w = stores.for_resource(WIDGETS)
        created = await w.create("default", widget("a"), W())
        meta = created["metadata"]
        body = orjson.loads(orjson.dumps(created))
        body["metadata"]["creationTimestamp"] = "2001-01-01T00:00:00Z"
        body["metadata"]["labels"] = {"x": "y"}
        body["status"] = {"ready": True}  # ignored by a main-resource update
        updated, _ = await w.update("default", "a", body, W())
        assert updated["metadata"]["creationTimestamp"] == meta["creationTimestamp"]
        assert updated["metadata"]["uid"] == meta["uid"]
        assert updated["metadata"]["generation"] == 1  # metadata-only change
        assert "status" not in updated
        body = orjson.loads(orjson.dumps(updated))
        body["spec"]["size"] = 5
        updated, _ = await w.update("default", "a", body, W())
        assert updated["metadata"]["generation"] == 2
        body = orjson.loads(orjson.dumps(updated))
        body["metadata"]["uid"] = "other"
        err = await unchanged(stores, w.update("default", "a", body, W()), 422)
        assert "metadata.uid" in err.message and "field is immutable" in err.message

    async def test_status_subresource(self, stores):
        w = stores.for_resource(WIDGETS)
        created = await w.create("default", widget("a"), W())
        body = orjson.loads(orjson.dumps(created))
        body["status"] = {"ready": True}
        body["spec"]["size"] = 99  # ignored by a status update
        updated, _ = await w.update("default", "a", body, W(), subresource="status")
        assert updated["status"] == {"ready": True}
        assert updated["spec"]["size"] == 1
        assert updated["metadata"]["generation"] == 1

    async def test_noop_update_writes_nothing(self, stores):
        w = stores.for_resource(WIDGETS)
        created = await w.create("default", widget("a"), W())
        before = await stores.storage.current_revision()
        same, _ = await w.update("default", "a", orjson.loads(orjson.dumps(created)), W())
        assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        assert await stores.storage.current_revision() == before

    async def test_removing_last_finalizer_of_deleting_object_deletes_it(self, stores):
        w = stores.for_resource(WIDGETS)
        body = widget("a")
        body["metadata"]["finalizers"] = ["example.com/hold"]
        await w.create("default", body, W())
        held = await w.delete("default", "a", {}, W())
        assert not held.deleted and held.obj["metadata"]["deletionTimestamp"]
        current = await w.get("default", "a")
        current["metadata"]["finalizers"] = ["example.com/hold", "example.com/new"]
        err = await unchanged(stores, w.update("default", "a", current, W()), 422)
        assert "no new finalizers can be added if the object is being deleted" in err.message
        current["metadata"]["finalizers"] = []
        await w.update("default", "a", current, W())
        await raises(w.get("default", "a"), 404)


class PatchSuite(StoreFixtures):
    async def test_merge_and_json_patch(self, stores):
        w = stores.for_resource(WIDGETS)
        await w.create("default", widget("a"), W())
        patched = await w.patch("default", "a", MERGE, b'{"spec":{"color":"blue"}}', W())
        assert patched["spec"] == {"size": 1, "color": "blue"}
        assert patched["metadata"]["generation"] == 2
        patched = await w.patch(
            "default", "a", JSONPATCH, b'[{"op":"replace","path":"/spec/size","value":3}]', W()
        )
        assert patched["spec"]["size"] == 3
        before = await stores.storage.current_revision()
        same = await w.patch("default", "a", MERGE, b'{"spec":{"size":3}}', W())
        assert same["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]
        assert await stores.storage.current_revision() == before

    async def test_patch_errors_change_nothing(self, stores):
        w = stores.for_resource(WIDGETS)
        created = await w.create("default", widget("a"), W())
        await unchanged(stores, w.patch("default", "a", "application/xml", b"{}", W()), 415)
        await unchanged(stores, w.patch("default", "a", MERGE, b"{not json", W()), 400)
        err = await unchanged(stores, w.patch("default", "a", MERGE, b'{"metadata":{"name":"b"}}', W()), 400)
        assert err.message == "the name of the object (b) does not match the name on the URL (a)"
        err = await unchanged(stores, w.patch("default", "a", MERGE, b'{"metadata":{"uid":"x"}}', W()), 422)
        assert "metadata.uid" in err.message
        stale = b'{"metadata":{"resourceVersion":"1"},"spec":{"size":9}}'
        await unchanged(stores, w.patch("default", "a", MERGE, stale, W()), 409, "Conflict")
        await unchanged(stores, w.patch("default", "a", MERGE, b'{"spec":{"size":null}}', W()), 422)
        await unchanged(stores, w.patch("default", "zz", MERGE, b"{}", W()), 404)
        assert (await w.get("default", "a")) == created

    async def test_strategic_merge_patch_merges_containers_by_name(self, stores):
        d = stores.for_resource(res_of(stores, "apps", "deployments"))
        await d.create("default", deployment("web"), W())
        body = b'{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox"}]}}}}'
        patched = await d.patch("default", "web", SMP, body, W())
        names = [c["name"] for c in patched["spec"]["template"]["spec"]["containers"]]
        assert names == ["side", "web"] or sorted(names) == ["side", "web"]
        merged = await d.patch("default", "web", MERGE, b'{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"x"}]}}}}', W())
        assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["only"]

    async def test_unknown_fields_per_field_validation(self, stores):
        cms = stores.for_resource(res_of(stores, "", "configmaps"))
        await cms.create("default", configmap("c", a="1"), W())
        err = await unchanged(
            stores, cms.patch("default", "c", MERGE, b'{"bogus":1}', W(field_validation="Strict")), 400
        )
        assert err.message == 'strict decoding error: unknown field "bogus"'
        warn = W(field_validation="Warn")
        patched = await cms.patch("default", "c", MERGE, b'{"bogus":1,"data":{"b":"2"}}', warn)
        assert warn.warnings == ['unknown field "bogus"']
        assert "bogus" not in patched and patched["data"] == {"a": "1", "b": "2"}
        patched = await cms.patch("default", "c", MERGE, b'{"bogus":1}', W(field_validation="Ignore"))
        assert "bogus" not in patched


class TestCreateMemory(MemoryBackend, CreateSuite):
    pass


class TestUpdateMemory(MemoryBackend, UpdateSuite):
    pass


class TestPatchMemory(MemoryBackend, PatchSuite):
    pass


_ = pytest


class MetaTypesSuite(StoreFixtures):
    async def test_unreadable_server_fields_are_rejected_not_overwritten(self, stores):
        w = stores.for_resource(WIDGETS)
        for meta in ({"uid": 7}, {"creationTimestamp": "yesterday"}, {"generation": "1"},
                     {"resourceVersion": 5}, {"deletionTimestamp": 3}):
            body = widget("a")
            body["metadata"].update(meta)
            err = await unchanged(stores, w.create("default", body, W()), 400, "BadRequest")
            assert err.message.startswith('Widget in version "v1" cannot be handled as a Widget: '), err


class TestMetaTypesMemory(MemoryBackend, MetaTypesSuite):
    pass
