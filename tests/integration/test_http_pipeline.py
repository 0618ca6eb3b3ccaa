"""The request path's security stages are real hooks: authn, authz and admission plugins
plugged into the pipeline take effect (the security issue will supply real ones)."""

from __future__ import annotations

import aiohttp
import orjson

from pybernetes.apiserver.admission.chain import AdmissionChain
from pybernetes.apiserver.authn.passthrough import PassThroughAuthenticator
from pybernetes.apiserver.authz.passthrough import AlwaysAllowAuthorizer
from pybernetes.apiserver.pipeline import AdmissionAttributes, Attributes, Decision, Pipeline, UserInfo
from pybernetes.machinery.errors import forbidden

JSON = {"Content-Type": "application/json"}
CM_URL = "/api/v1/namespaces/default/configmaps"


class HeaderAuthenticator:
    async def authenticate(self, request):
        name = request.headers.get("X-Test-User")
        return UserInfo(name, groups=("system:authenticated",)) if name else None


class NoSecretsAuthorizer:
    def __init__(self) -> None:
        self.seen: list[Attributes] = []

    async def authorize(self, attrs: Attributes) -> Decision:
        self.seen.append(attrs)
        if attrs.resource == "secrets":
            return Decision(False, "secrets are off limits")
        return Decision(True)


class LabelAndRejectPlugin:
    name = "LabelAndReject"

    def __init__(self) -> None:
        self.operations: list[str] = []

    def handles(self, operation: str) -> bool:
        return operation in ("CREATE", "UPDATE", "DELETE")

    async def admit(self, attrs: AdmissionAttributes) -> None:
        self.operations.append(attrs.operation)
        if attrs.operation == "CREATE" and isinstance(attrs.obj, dict):
            attrs.obj.setdefault("metadata", {}).setdefault("labels", {})["admitted-by"] = attrs.user.name

    async def validate(self, attrs: AdmissionAttributes) -> None:
        if attrs.operation == "CREATE" and attrs.name == "" and (attrs.obj or {}).get("data", {}).get("veto"):
            raise forbidden(f'{attrs.resource} "{attrs.obj["metadata"]["name"]}" is forbidden: vetoed')


async def test_custom_pipeline_stages_take_effect(tmp_path, server_starter):
    authorizer = NoSecretsAuthorizer()
    plugin = LabelAndRejectPlugin()
    pipeline = Pipeline(HeaderAuthenticator(), authorizer, AdmissionChain([plugin]))
    server, runner = await server_starter(tmp_path / "data", pipeline=pipeline)
    try:
        async with aiohttp.ClientSession(base_url=server.url) as http:
            for path in (CM_URL, "/version", "/apis", "/openapi/v3", "/nowhere"):
                async with http.get(path) as resp:
                    assert resp.status == 401 and (await resp.json())["reason"] == "Unauthorized", path
            async with http.get("/version", headers={"X-Test-User": "bob"}) as resp:
                assert resp.status == 200 and (await resp.json())["major"] == "1"
            assert any(not a.resource_request and a.path == "/version" and a.verb == "get"
                       for a in authorizer.seen)
            user = {"X-Test-User": "alice"}
            async with http.get("/api/v1/namespaces/default/secrets/s", headers=user) as resp:
                assert resp.status == 403
                body = await resp.json()
            assert body["message"] == ('secrets "s" is forbidden: User "alice" cannot get resource "secrets" '
                                       'in API group "" in the namespace "default": secrets are off limits')
            body = orjson.dumps({"metadata": {"name": "c"}, "data": {"k": "v"}})
            async with http.post(CM_URL, data=body, headers={**JSON, **user}) as resp:
                assert resp.status == 201
                assert (await resp.json())["metadata"]["labels"] == {"admitted-by": "alice"}
            body = orjson.dumps({"metadata": {"name": "v"}, "data": {"veto": "yes"}})
            async with http.post(CM_URL, data=body, headers={**JSON, **user}) as resp:
                assert resp.status == 403
            async with http.get(f"{CM_URL}/v", headers=user) as resp:
                assert resp.status == 404
            async with http.delete(f"{CM_URL}/c", headers=user) as resp:
                assert resp.status == 200
        assert plugin.operations == ["CREATE", "CREATE", "DELETE"]
        verbs = [(a.verb, a.resource, a.namespace, a.name) for a in authorizer.seen]
        assert ("create", "configmaps", "default", "") in verbs and ("delete", "configmaps", "default", "c") in verbs
    finally:
        await runner.cleanup()


async def test_pass_through_defaults_allow_everything():
    user = await PassThroughAuthenticator().authenticate(None)
    assert user is not None and "system:masters" in user.groups
    decision = await AlwaysAllowAuthorizer().authorize(Attributes(user, "delete", resource="secrets"))
    assert decision.allowed
    assert AdmissionChain([]).empty and not AdmissionChain([LabelAndRejectPlugin()]).empty
