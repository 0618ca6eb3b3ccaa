"""Accept-header negotiation: JSON, YAML, Table, PartialObjectMetadata(List), 406."""

from __future__ import annotations

import orjson
import pytest
import yaml

from pybernetes.apiserver.negotiation import (
    JSON_TARGET,
    accepts_json,
    encode,
    negotiate,
    parse_accept,
    parse_media_range,
)
from pybernetes.machinery.errors import StatusError

KUBECTL_GET = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
PROTOBUF = "application/vnd.kubernetes.protobuf"


@pytest.mark.parametrize("accept", [None, "", "   ", "*/*", "application/*", "application/json"])
def test_plain_json(accept: str | None) -> None:
    assert negotiate(accept, list_=False) == JSON_TARGET
    assert negotiate(accept, list_=True).content_type == "application/json"


def test_kubectl_get_asks_for_a_v1_table() -> None:
    for list_ in (False, True):
        target = negotiate(KUBECTL_GET, list_=list_)
        assert target.kind == "table"
        assert target.version == "v1"
        assert target.content_type == "application/json;as=Table;g=meta.k8s.io;v=v1"


def test_table_v1beta1_only() -> None:
    target = negotiate("application/json;as=Table;v=v1beta1;g=meta.k8s.io", list_=True)
    assert (target.kind, target.version) == ("table", "v1beta1")


def test_table_of_an_unknown_version_or_group_falls_through_to_json() -> None:
    accept = "application/json;as=Table;v=v2;g=meta.k8s.io,application/json;as=Table;v=v1;g=other.io,*/*"
    assert negotiate(accept, list_=True) == JSON_TARGET


def test_protobuf_only_is_not_acceptable() -> None:
    with pytest.raises(StatusError) as info:
        negotiate(PROTOBUF, list_=False)
    assert info.value.code == 406
    assert info.value.reason == "NotAcceptable"
    assert info.value.message == (
        "only the following media types are accepted: application/json, application/yaml"
    )


def test_protobuf_with_json_alternative_gives_json() -> None:
    assert negotiate(f"{PROTOBUF}, application/json", list_=False) == JSON_TARGET
    accept = f"{PROTOBUF};as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io"
    assert negotiate(accept, list_=True).kind == "table"


@pytest.mark.parametrize("accept", ["text/html", "image/png, text/plain", "application/json;q=0"])
def test_nothing_acceptable(accept: str) -> None:
    with pytest.raises(StatusError) as info:
        negotiate(accept, list_=True)
    assert info.value.code == 406


def test_partial_object_metadata_for_single_objects_and_watches() -> None:
    accept = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    target = negotiate(accept, list_=False)
    assert (target.kind, target.version) == ("partial", "v1")
    assert target.content_type == "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    assert negotiate(accept, list_=True, watch=True).kind == "partial"
    with pytest.raises(StatusError):
        negotiate(accept, list_=True)


def test_partial_object_metadata_list_only_for_lists() -> None:
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1"
    target = negotiate(accept, list_=True)
    assert (target.kind, target.version) == ("partial", "v1beta1")
    assert "as=PartialObjectMetadataList" in target.content_type
    with pytest.raises(StatusError):
        negotiate(accept, list_=False)
    # The client-go metadata client sends both forms with JSON as the last resort.
    both = f"{accept},application/json"
    assert negotiate(both, list_=False) == JSON_TARGET


def test_quality_values_order_the_choice() -> None:
    assert negotiate("application/yaml;q=0.5, application/json", list_=False) == JSON_TARGET
    yaml_target = negotiate("application/json;q=0.1, application/yaml", list_=False)
    assert yaml_target.encoding == "yaml"
    assert yaml_target.content_type == "application/yaml"
    assert yaml_target.kind == "json"
    assert negotiate("application/json;q=0, application/yaml", list_=False).encoding == "yaml"


def test_yaml_table() -> None:
    target = negotiate("application/yaml;as=Table;v=v1;g=meta.k8s.io", list_=True)
    assert (target.kind, target.encoding) == ("table", "yaml")
    assert target.content_type.startswith("application/yaml;as=Table")


def test_parse_media_range_parameters() -> None:
    media = parse_media_range(' Application/JSON ; as="Table" ; V=v1;g=meta.k8s.io;q=0.3 ')
    assert media is not None
    assert media.media_type == "application/json"
    assert media.params == {"as": "Table", "v": "v1", "g": "meta.k8s.io"}
    assert media.q == pytest.approx(0.3)
    assert parse_media_range("garbage") is None
    assert parse_media_range("*").media_type == "*/*"
    assert parse_media_range("application/json;q=oops").q == 0.0


def test_parse_accept_drops_refused_and_bad_entries() -> None:
    ranges = parse_accept("text/html;q=0, nonsense, application/json;q=0.2, application/yaml")
    assert [m.media_type for m in ranges] == ["application/yaml", "application/json"]


def test_accepts_json() -> None:
    assert accepts_json(None)
    assert accepts_json("application/json, */*")
    assert not accepts_json(PROTOBUF)
    assert not accepts_json("application/json;as=Table;v=v1;g=meta.k8s.io")


def test_encode() -> None:
    obj = {"kind": "ConfigMap", "data": {"a": "1"}, "n": [1, 2]}
    assert orjson.loads(encode(JSON_TARGET, obj)) == obj
    yaml_target = negotiate("application/yaml", list_=False)
    text = encode(yaml_target, obj).decode()
    assert text.startswith("kind: ConfigMap\n")  # keys keep their order
    assert yaml.safe_load(text) == obj


def test_watch_stream_and_charset_parameters_still_mean_json() -> None:
    assert negotiate("application/json;stream=watch", list_=True, watch=True) == JSON_TARGET
    assert negotiate("application/json; charset=utf-8", list_=False) == JSON_TARGET
