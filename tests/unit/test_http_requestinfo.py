"""URL routing of REST requests (apiserver/requestinfo.py) and query parameters (params.py)."""

from __future__ import annotations

import pytest

from pybernetes.api.registry import Registry
from pybernetes.api.resource import SCALE, ResourceDef, Subresource, status_of
from pybernetes.apiserver import params
from pybernetes.apiserver.requestinfo import resolve
from pybernetes.machinery.errors import StatusError

REGISTRY = Registry([
    ResourceDef("", "v1", "pods", "Pod", "pod", True,
                subresources=(status_of("Pod"), Subresource("binding", "Binding", verbs=("create",)))),
    ResourceDef("", "v1", "namespaces", "Namespace", "namespace", False,
                subresources=(status_of("Namespace"), Subresource("finalize", "Namespace", verbs=("update",)))),
    ResourceDef("apps", "v1", "deployments", "Deployment", "deployment", True, subresources=(SCALE,)),
    ResourceDef("", "v1", "bindings", "Binding", "binding", True, verbs=("create",)),
])


def test_namespaced_collection_and_object():
    info = resolve(REGISTRY, "", "v1", "GET", "namespaces/default/pods")
    assert (info.res.resource, info.verb, info.namespace, info.name) == ("pods", "list", "default", None)
    info = resolve(REGISTRY, "", "v1", "GET", "namespaces/default/pods/web")
    assert (info.verb, info.namespace, info.name, info.subresource) == ("get", "default", "web", None)
    info = resolve(REGISTRY, "", "v1", "PUT", "namespaces/default/pods/web/status")
    assert (info.verb, info.subresource) == ("update", "status")
    info = resolve(REGISTRY, "", "v1", "POST", "namespaces/default/pods/web/binding")
    assert (info.verb, info.subresource) == ("create", "binding")
    info = resolve(REGISTRY, "apps", "v1", "PATCH", "namespaces/ns1/deployments/d/scale")
    assert (info.res.kind, info.verb, info.subresource) == ("Deployment", "patch", "scale")


def test_namespace_object_and_its_subresources():
    info = resolve(REGISTRY, "", "v1", "GET", "namespaces/kube-system")
    assert (info.res.resource, info.namespace, info.name) == ("namespaces", None, "kube-system")
    info = resolve(REGISTRY, "", "v1", "PUT", "namespaces/x/finalize")
    assert (info.res.resource, info.name, info.subresource, info.verb) == ("namespaces", "x", "finalize", "update")
    info = resolve(REGISTRY, "", "v1", "DELETE", "namespaces")
    assert info.verb == "deletecollection"


def test_watch_forms():
    assert resolve(REGISTRY, "", "v1", "GET", "pods", watch_param=True).verb == "watch"
    info = resolve(REGISTRY, "", "v1", "GET", "watch/namespaces/default/pods/web")
    assert (info.verb, info.name) == ("watch", "web")
    # ?watch=true on a named GET stays a GET, as upstream
    assert resolve(REGISTRY, "", "v1", "GET", "namespaces/d/pods/web", watch_param=True).verb == "get"
    assert resolve(REGISTRY, "", "v1", "GET", "pods").verb == "list"


@pytest.mark.parametrize(("method", "tail", "code"), [
    ("GET", "nosuchthings", 404),
    ("GET", "namespaces/default/nosuch", 404),
    ("GET", "namespaces/default/pods/web/nosub", 404),
    ("GET", "namespaces/default/pods/a/b/c", 404),
    ("GET", "namespaces/default/namespaces", 404),  # cluster-scoped inside a namespace
    ("GET", "pods/web", 404),  # a named namespaced object outside its namespace
    ("GET", "namespaces//pods", 404),
    ("POST", "pods", 405),  # only list/watch across namespaces
    ("PUT", "namespaces/default/pods", 405),
    ("POST", "namespaces/default/pods/web", 405),
    ("GET", "namespaces/default/bindings", 405),
    ("GET", "namespaces/x/finalize", 405),
    ("POST", "watch/pods", 405),
])
def test_errors(method, tail, code):
    with pytest.raises(StatusError) as caught:
        resolve(REGISTRY, "", "v1", method, tail)
    assert caught.value.code == code
    if code == 404:
        assert caught.value.message == "the server could not find the requested resource"


def test_list_options_parse_and_validate():
    opts = params.list_options({"labelSelector": "a=b", "limit": "500", "continue": "tok"}, watch=False)
    assert (opts.label_selector, opts.limit, opts.continue_token) == ("a=b", 500, "tok")
    opts = params.list_options({"timeoutSeconds": "7", "allowWatchBookmarks": "true",
                                "resourceVersion": "12"}, watch=True)
    assert (opts.timeout_seconds, opts.allow_bookmarks, opts.resource_version) == (7, True, "12")
    for bad in ({"limit": "x"}, {"timeoutSeconds": "soon"}, {"allowWatchBookmarks": "maybe"}):
        with pytest.raises(StatusError) as caught:
            params.list_options(bad, watch=True)
        assert caught.value.code == 400
    for bad in ({"resourceVersionMatch": "Exact"},
                {"resourceVersionMatch": "Exact", "resourceVersion": "0"},
                {"resourceVersionMatch": "Sometimes", "resourceVersion": "5"},
                {"continue": "tok", "resourceVersion": "5"},
                {"resourceVersion": "abc"}):
        with pytest.raises(StatusError) as caught:
            params.list_options(bad, watch=False)
        assert caught.value.code == 422, bad


def test_write_and_delete_options():
    opts = params.write_options({"dryRun": "All", "fieldManager": "kubectl", "fieldValidation": "Strict"})
    assert (opts.dry_run, opts.field_manager, opts.field_validation) == (True, "kubectl", "Strict")
    assert params.write_options({}).field_validation == "Warn"
    for bad in ({"dryRun": "Some"}, {"fieldValidation": "Loose"}, {"fieldManager": "x" * 129}):
        with pytest.raises(StatusError) as caught:
            params.write_options(bad)
        assert caught.value.code == 400
    options = params.delete_options({"gracePeriodSeconds": "0", "propagationPolicy": "Orphan"},
                                    {"kind": "DeleteOptions", "apiVersion": "v1",
                                     "preconditions": {"uid": "u"}})
    assert options == {"gracePeriodSeconds": 0, "propagationPolicy": "Orphan", "preconditions": {"uid": "u"}}
    with pytest.raises(StatusError) as caught:
        params.delete_options({"propagationPolicy": "Sideways"}, None)
    assert caught.value.code == 422
    with pytest.raises(StatusError):
        params.delete_options({}, ["not", "an", "object"])
