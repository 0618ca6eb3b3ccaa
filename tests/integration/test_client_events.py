"""The event recorder against the real in-process API server: Events written, identical
events aggregated into one with a count, spam filtered."""

from __future__ import annotations

import pytest

from pybernetes.client.events import COMBINED, EVENTS, NORMAL, WARNING, EventRecorder
from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient


@pytest.fixture
async def client(api_server):
    async with RestClient(Config(servers=[api_server.url])) as c:
        yield c


async def _pod(client) -> dict:
    return await client.create("v1/configmaps", {"metadata": {"name": "subject", "namespace": "default"}})


async def test_identical_events_bump_count_on_one_event(client):
    obj = await _pod(client)
    rec = EventRecorder(client, "test-controller", host="node-1")
    try:
        for _ in range(3):
            rec.event(obj, WARNING, "FailedCreate", "quota exceeded")
        rec.event(obj, NORMAL, "Created", "made it")
        await rec.flush()
        events = (await client.list(EVENTS, "default"))["items"]
        by_reason = {e["reason"]: e for e in events}
        assert sorted(by_reason) == ["Created", "FailedCreate"]
        failed = by_reason["FailedCreate"]
        assert failed["count"] == 3 and failed["type"] == "Warning"
        assert failed["source"] == {"component": "test-controller", "host": "node-1"}
        assert failed["involvedObject"]["uid"] == obj["metadata"]["uid"]
        assert failed["involvedObject"]["kind"] == "ConfigMap"
        assert failed["metadata"]["name"].startswith("subject.")
        assert failed["firstTimestamp"] <= failed["lastTimestamp"]
        assert by_reason["Created"]["count"] == 1
        # The Event was deleted meanwhile: the next identical one creates it again.
        await client.delete(EVENTS, failed["metadata"]["name"], "default")
        rec.event(obj, WARNING, "FailedCreate", "quota exceeded")
        await rec.flush()
        again = await client.get(EVENTS, failed["metadata"]["name"], "default")
        assert again["count"] == 4
    finally:
        await rec.stop()


async def test_cluster_scoped_objects_get_events_in_default(client):
    node = await client.create("v1/nodes", {"metadata": {"name": "n1"}})
    rec = EventRecorder(client, "c", host="")
    try:
        rec.event(node, NORMAL, "Registered", "hello")
        await rec.flush()
        events = (await client.list(EVENTS, "default"))["items"]
        assert [e["involvedObject"]["name"] for e in events] == ["n1"]
        assert "host" not in events[0]["source"]
    finally:
        await rec.stop()


async def test_similar_events_are_combined_and_spam_dropped(client):
    obj = await _pod(client)
    rec = EventRecorder(client, "c", host="h", spam_burst=12)
    try:
        for i in range(14):
            rec.event(obj, WARNING, "Failed", f"attempt {i}")
        await rec.flush()
        assert rec.dropped == 2 and rec.written == 12
        events = (await client.list(EVENTS, "default"))["items"]
        combined = [e for e in events if e["message"].startswith(COMBINED)]
        assert len(combined) == 1 and combined[0]["count"] == 3
        assert len(events) == 10
    finally:
        await rec.stop()
