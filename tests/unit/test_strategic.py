"""Strategic merge patch: the cases kubectl (apply, patch, edit) relies on, directives,
upstream's ordering rules and its errors.  Patch metadata comes from the upstream schemas
(``api.schemas``) or from hand-written ``DictPatchMeta``."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybernetes.api.schemas import schemas
from pybernetes.machinery.errors import StatusError
from pybernetes.machinery.patch import DictPatchMeta, FieldMeta, apply_strategic_merge_patch


@pytest.fixture(scope="module")
def deploy_meta():
    return schemas().patch_meta("apps", "v1", "Deployment")


@pytest.fixture(scope="module")
def pod_meta():
    return schemas().patch_meta("", "v1", "Pod")


def deployment(containers, **spec_extra):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"other": "kept"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers, **spec_extra},
            },
        },
    }


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def template_patch(spec):
    return {"spec": {"template": {"spec": spec}}}


def names(items, key="name"):
    return [i[key] for i in items]


def smp(doc, patch, meta):
    return apply_strategic_merge_patch(doc, patch, meta)


def fails(doc, patch, meta) -> StatusError:
    with pytest.raises(StatusError) as info:
        apply_strategic_merge_patch(doc, patch, meta)
    return info.value


# --- kubectl apply cases ------------------------------------------------------------


def test_containers_merge_by_name_keeping_others(deploy_meta):
    doc = deployment([{"name": "web", "image": "nginx:1", "tty": True}, {"name": "side", "image": "busybox"}])
    out = smp(doc, template_patch({"containers": [{"name": "web", "image": "nginx:2"}]}), deploy_meta)
    containers = pod_spec(out)["containers"]
    assert names(containers) == ["web", "side"]
    assert containers[0] == {"name": "web", "image": "nginx:2", "tty": True}
    assert containers[1] == {"name": "side", "image": "busybox"}


def test_env_merges_by_name_and_ports_by_container_port(deploy_meta):
    doc = deployment(
        [
            {
                "name": "web",
                "image": "nginx",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
            }
        ]
    )
    patch = template_patch(
        {
            "containers": [
                {
                    "name": "web",
                    "env": [{"name": "B", "value": "20"}],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                }
            ]
        }
    )
    web = pod_spec(smp(doc, patch, deploy_meta))["containers"][0]
    assert web["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "20"}]
    assert web["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}]


def test_volumes_merge_by_name(deploy_meta):
    doc = deployment([{"name": "c", "image": "i"}], volumes=[{"name": "a", "emptyDir": {}}])
    patch = template_patch({"volumes": [{"name": "b", "configMap": {"name": "cm"}}]})
    volumes = pod_spec(smp(doc, patch, deploy_meta))["volumes"]
    assert sorted(names(volumes)) == ["a", "b"]


def test_fields_set_by_other_writers_are_kept(deploy_meta):
    doc = deployment([{"name": "web", "image": "nginx:1"}])
    doc["spec"]["replicas"] = 7  # set by an autoscaler
    doc["metadata"]["labels"] = {"team": "x"}
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}},
    }
    out = smp(doc, patch, deploy_meta)
    assert out["spec"]["replicas"] == 7
    assert out["metadata"]["labels"] == {"team": "x"}
    assert out["metadata"]["annotations"]["other"] == "kept"
    assert pod_spec(out)["containers"][0]["image"] == "nginx:2"


def test_delete_list_element_with_patch_delete(deploy_meta):
    doc = deployment([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    out = smp(doc, template_patch({"containers": [{"name": "b", "$patch": "delete"}]}), deploy_meta)
    assert names(pod_spec(out)["containers"]) == ["a"]


def test_set_element_order_orders_the_merged_list(deploy_meta):
    doc = deployment([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    patch = template_patch(
        {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}, {"name": "c"}],
            "containers": [{"name": "c", "image": "z"}],
        }
    )
    out = smp(doc, patch, deploy_meta)
    assert names(pod_spec(out)["containers"]) == ["b", "a", "c"]
    assert not any(k.startswith("$") for k in pod_spec(out))


def test_kubectl_three_way_patch_adding_env_var(deploy_meta):
    doc = deployment([{"name": "web", "image": "nginx", "env": [{"name": "A", "value": "1"}]}])
    patch = template_patch(
        {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [
                {
                    "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                    "env": [{"name": "B", "value": "2"}],
                    "name": "web",
                }
            ],
        }
    )
    web = pod_spec(smp(doc, patch, deploy_meta))["containers"][0]
    assert web == {"name": "web", "image": "nginx", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}


def test_new_element_without_order_goes_before_server_items(deploy_meta):
    # upstream puts patch items the live list does not know in front (see kubectl patch docs)
    doc = deployment([{"name": "a", "image": "x"}])
    out = smp(doc, template_patch({"containers": [{"name": "n", "image": "redis"}]}), deploy_meta)
    assert names(pod_spec(out)["containers"]) == ["n", "a"]


def test_primitive_merge_list_union_and_delete(pod_meta):
    doc = {"metadata": {"name": "p", "finalizers": ["a", "b"]}}
    out = smp(doc, {"metadata": {"finalizers": ["b", "c"]}}, pod_meta)
    assert sorted(out["metadata"]["finalizers"]) == ["a", "b", "c"]
    out = smp(doc, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, pod_meta)
    assert out["metadata"]["finalizers"] == ["b"]
    ordered = smp(
        doc,
        {"metadata": {"$setElementOrder/finalizers": ["c", "b"], "finalizers": ["c"],
                      "$deleteFromPrimitiveList/finalizers": ["a"]}},
        pod_meta,
    )
    assert ordered["metadata"]["finalizers"] == ["c", "b"]


def test_owner_references_merge_by_uid(pod_meta):
    doc = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}
    out = smp(doc, {"metadata": {"ownerReferences": [{"uid": "2", "controller": True}]}}, pod_meta)
    assert out["metadata"]["ownerReferences"][1] == {"uid": "2", "name": "b", "controller": True}


def test_lists_without_merge_strategy_are_replaced(deploy_meta):
    doc = deployment([{"name": "w", "image": "i", "args": ["a", "b"]}])
    out = smp(doc, template_patch({"containers": [{"name": "w", "args": ["c"]}]}), deploy_meta)
    assert pod_spec(out)["containers"][0]["args"] == ["c"]


def test_null_deletes_and_unmatched_null_is_ignored(deploy_meta):
    doc = deployment([{"name": "w", "image": "i"}])
    out = smp(doc, {"metadata": {"annotations": {"other": None, "absent": None}}, "spec": {"replicas": None}},
              deploy_meta)
    assert out["metadata"]["annotations"] == {}
    assert "replicas" not in out["spec"]
    added = smp({}, {"metadata": {"labels": {"a": "1", "b": None}}}, deploy_meta)
    assert added == {"metadata": {"labels": {"a": "1"}}}


def test_retain_keys_clears_fields_not_listed(deploy_meta):
    doc = deployment([{"name": "w", "image": "i"}])
    doc["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(doc, patch, deploy_meta)["spec"]["strategy"] == {"type": "Recreate"}


def test_patch_replace_and_delete_on_maps(deploy_meta):
    doc = deployment([{"name": "w", "image": "i"}])
    out = smp(doc, {"spec": {"selector": {"$patch": "replace", "matchLabels": {"x": "y"}}}}, deploy_meta)
    assert out["spec"]["selector"] == {"matchLabels": {"x": "y"}}
    out = smp(doc, {"metadata": {"annotations": {"$patch": "delete"}}}, deploy_meta)
    assert out["metadata"]["annotations"] == {}


def test_patch_replace_as_list_element(deploy_meta):
    doc = deployment([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    patch = template_patch({"containers": [{"name": "z", "image": "q"}, {"$patch": "replace"}]})
    assert pod_spec(smp(doc, patch, deploy_meta))["containers"] == [{"name": "z", "image": "q"}]


def test_new_values_are_cleaned_of_directives(deploy_meta):
    out = smp({}, {"spec": {"template": {"spec": {"volumes": [{"name": "a", "$patch": "delete"},
                                                               {"name": "b"}]}}}}, deploy_meta)
    assert pod_spec(out)["volumes"] == [{"name": "b"}]


def test_inputs_are_not_mutated(deploy_meta):
    doc = deployment([{"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}])
    patch = template_patch(
        {"$setElementOrder/containers": [{"name": "web"}],
         "containers": [{"name": "web", "env": [{"name": "A", "$patch": "delete"}]}]}
    )
    before_doc, before_patch = copy.deepcopy(doc), copy.deepcopy(patch)
    smp(doc, patch, deploy_meta)
    assert doc == before_doc and patch == before_patch


def test_unknown_type_behaves_like_merge_patch():
    doc = {"spec": {"items": [{"name": "a", "v": 1}], "keep": 1}}
    out = smp(doc, {"spec": {"items": [{"name": "b"}], "gone": None}}, None)
    assert out == {"spec": {"items": [{"name": "b"}], "keep": 1}}


def test_fields_unknown_to_the_schema_merge_maps_and_replace_lists(deploy_meta):
    doc = deployment([{"name": "w", "image": "i"}])
    doc["spec"]["extra"] = {"a": 1, "l": [1]}
    out = smp(doc, {"spec": {"extra": {"b": 2, "l": [2]}}}, deploy_meta)
    assert out["spec"]["extra"] == {"a": 1, "b": 2, "l": [2]}


# --- errors -----------------------------------------------------------------------------


def test_unknown_patch_type_in_map_is_upstreams_500(deploy_meta):
    err = fails(deployment([]), {"spec": {"selector": {"$patch": "merge"}}}, deploy_meta)
    assert err.code == 500
    assert err.message == "unknown patch type: merge in map: map[$patch:merge]"


def test_merge_directive_in_list_is_rejected(deploy_meta):
    doc = deployment([{"name": "a", "image": "x"}])
    err = fails(doc, template_patch({"containers": [{"$patch": "merge"}]}), deploy_meta)
    assert "merging lists cannot yet be specified in the patch" in err.message


def test_list_element_without_merge_key(deploy_meta):
    doc = deployment([{"name": "a", "image": "x"}])
    err = fails(doc, template_patch({"containers": [{"image": "y"}]}), deploy_meta)
    assert err.message == "map: map[image:y] does not contain declared merge key: name"


def test_malformed_directive_lists_are_400(pod_meta):
    doc = {"metadata": {"finalizers": ["a"]}}
    assert fails(doc, {"metadata": {"$deleteFromPrimitiveListx": ["a"]}}, pod_meta).message == (
        "invalid patch format of primitive list"
    )
    assert fails(doc, {"metadata": {"$setElementOrderx": []}}, pod_meta).code == 400
    err = fails(doc, {"metadata": {"$retainKeys": "name"}}, pod_meta)
    assert (err.code, err.message) == (400, "invalid patch format of retainKeys")


def test_retain_keys_contradicted_by_patch_is_422(deploy_meta):
    doc = deployment([])
    doc["spec"]["strategy"] = {"type": "RollingUpdate"}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}}
    err = fails(doc, patch, deploy_meta)
    assert err.code == 422
    assert err.details["causes"][0]["message"] == "patch content doesn't match retainKeys list"


def test_set_element_order_must_match_patch_list(deploy_meta):
    doc = deployment([{"name": "a", "image": "x"}])
    patch = template_patch({"$setElementOrder/containers": [{"name": "a"}],
                            "containers": [{"name": "q", "image": "z"}]})
    assert "doesn't match $setElementOrder list" in fails(doc, patch, deploy_meta).message


def test_lists_of_lists_are_422():
    meta = DictPatchMeta({"l": FieldMeta(("merge",), "", True)})
    assert fails({"l": [[1]]}, {"l": [[2]]}, meta).code == 422


def test_patch_must_be_an_object(deploy_meta):
    assert fails({}, [1], deploy_meta).code == 400


# --- properties ---------------------------------------------------------------------------

ITEM_META = DictPatchMeta({"items": FieldMeta(("merge",), "name", True, DictPatchMeta())})
item_names = st.sampled_from(["a", "b", "c", "d", "e"])
items = st.lists(st.fixed_dictionaries({"name": item_names, "v": st.integers(0, 9)}), unique_by=lambda i: i["name"])


@given(items, items)
def test_merge_by_key_is_a_keyed_union_where_the_patch_wins(live, patch_items):
    out = smp({"items": live}, {"items": patch_items}, ITEM_META)["items"]
    expected = {i["name"]: i["v"] for i in live} | {i["name"]: i["v"] for i in patch_items}
    assert {i["name"]: i["v"] for i in out} == expected
    assert len(out) == len(expected)
    live_order = [i["name"] for i in out if i["name"] in {x["name"] for x in live}]
    patched = {i["name"] for i in patch_items}
    assert [n for n in live_order if n not in patched] == [i["name"] for i in live if i["name"] not in patched]


@given(items, st.lists(item_names, unique=True))
def test_set_element_order_is_followed(live, order):
    patch = {"$setElementOrder/items": [{"name": n} for n in order]}
    out = smp({"items": live}, patch, ITEM_META)["items"]
    in_order = [i["name"] for i in out if i["name"] in order]
    assert in_order == [n for n in order if n in {i["name"] for i in live}]
