"""Services and endpoints: defaults, validation, clusterIP immutability, tables."""

from __future__ import annotations

import copy

from pybernetes.api.core.endpoints import ENDPOINTS, endpoints_cell
from pybernetes.api.core.services import SERVICES
from pybernetes.api.printing import parse_time

S = SERVICES.strategy
NOW = parse_time("2024-01-01T12:00:00Z")


def svc(**spec):
    base = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-01-01T10:00:00Z"},
            "spec": base}


def ready(obj):
    S.default(obj)
    S.prepare_for_create(obj)
    return obj


def texts(errs):
    return [e.error_text() for e in errs]


def test_defaults_cluster_ip():
    obj = ready(svc())
    spec = obj["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["ipFamilies"] == ["IPv4"]
    assert obj["status"] == {"loadBalancer": {}}
    assert S.validate(obj) == []


def test_defaults_node_port_and_load_balancer():
    obj = ready(svc(type="NodePort"))
    assert obj["spec"]["externalTrafficPolicy"] == "Cluster"
    obj = ready(svc(type="LoadBalancer"))
    assert obj["spec"]["allocateLoadBalancerNodePorts"] is True
    obj = ready(svc(externalIPs=["192.0.2.10"]))  # a ClusterIP Service with externalIPs is external too
    assert obj["spec"]["externalTrafficPolicy"] == "Cluster"
    assert S.validate(obj) == []
    obj = ready(svc(sessionAffinity="ClientIP"))
    assert obj["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    obj = ready(svc(clusterIP="None", selector=None, ports=[]))
    assert obj["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    assert obj["spec"]["clusterIPs"] == ["None"]
    assert S.validate(obj) == []


def test_validation():
    obj = ready(svc(ports=[{"port": 80}, {"port": 0, "name": "b", "protocol": "FOO"}], type="Weird",
                    clusterIP="banana"))
    out = texts(S.validate(obj))
    assert "spec.ports[0].name: Required value" in out
    assert "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive" in out
    assert any(t.startswith('spec.ports[1].protocol: Unsupported value: "FOO"') for t in out)
    assert ('spec.type: Unsupported value: "Weird": supported values: "ClusterIP", "ExternalName", '
            '"LoadBalancer", "NodePort"') in out
    assert ('spec.clusterIPs[0]: Invalid value: "banana": must be empty, \'None\', or a valid IP address' in out)


def test_ports_required_and_node_ports():
    obj = ready(svc(ports=[]))
    assert texts(S.validate(obj)) == ["spec.ports: Required value"]
    obj = ready(svc(type="NodePort", ports=[{"port": 80, "nodePort": 80}]))
    assert texts(S.validate(obj)) == [
        "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. "
        "The range of valid ports is 30000-32767"]
    obj = ready(svc(ports=[{"port": 80, "nodePort": 30080}]))
    assert texts(S.validate(obj)) == ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
    obj = ready(svc(type="ExternalName", externalName="example.com", selector=None, ports=[]))
    assert S.validate(obj) == []
    assert "ipFamilies" not in obj["spec"] and "internalTrafficPolicy" not in obj["spec"]


def test_cluster_ip_immutable_and_kept():
    old = ready(svc(clusterIP="10.96.0.10"))
    assert old["spec"]["clusterIPs"] == ["10.96.0.10"]
    new = copy.deepcopy(old)
    del new["spec"]["clusterIP"], new["spec"]["clusterIPs"]
    S.default(new)
    S.prepare_for_update(new, old)
    assert new["spec"]["clusterIP"] == "10.96.0.10"
    assert S.validate_update(new, old) == []
    new["spec"]["clusterIP"] = "10.96.0.11"
    new["spec"]["clusterIPs"] = ["10.96.0.11"]
    errs = S.validate_update(new, old)
    assert [e.field for e in errs] == ["spec.clusterIPs[0]"]
    assert "may not change once set" in errs[0].body()


def test_node_port_kept_on_update():
    old = ready(svc(type="NodePort", ports=[{"port": 80, "nodePort": 30001}], clusterIP="10.0.0.1"))
    new = copy.deepcopy(old)
    new["spec"]["ports"] = [{"port": 80}]
    S.default(new)
    S.prepare_for_update(new, old)
    assert new["spec"]["ports"][0]["nodePort"] == 30001


def test_table():
    assert [c.name for c in S.columns()] == ["Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
    obj = ready(svc(clusterIP="10.0.0.1", ports=[{"port": 80, "name": "a"}, {"port": 53, "protocol": "UDP", "name": "b"}]))
    assert S.cells(obj, NOW) == ["ClusterIP", "10.0.0.1", "<none>", "80/TCP,53/UDP", "120m", "app=web"]
    lb = ready(svc(type="LoadBalancer", clusterIP="10.0.0.2", ports=[{"port": 80, "nodePort": 30080}]))
    assert S.cells(lb, NOW)[2:4] == ["<pending>", "80:30080/TCP"]
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    assert S.cells(lb, NOW)[2] == "1.2.3.4"
    ext = ready(svc(type="ExternalName", externalName="db.example.com", selector=None, ports=[]))
    assert S.cells(ext, NOW)[:5] == ["ExternalName", "<none>", "db.example.com", "<none>", "120m"]
    assert S.cells(ext, NOW)[5] == "<none>"


def test_service_name_is_dns1035():
    assert S.name_rule("web") == []
    assert S.name_rule("1web")


def test_endpoints():
    e = ENDPOINTS.strategy
    obj = {"metadata": {"name": "web", "namespace": "default"},
           "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443, "name": "x"}]}]}
    e.default(obj)
    assert obj["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert texts(e.validate(obj)) == ["subsets[0].ports[0].name: Required value"]
    assert endpoints_cell(obj) == "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."
    assert endpoints_cell({"subsets": []}) == "<none>"
    bad = {"subsets": [{"addresses": [{"ip": "x"}]}, {}]}
    assert texts(e.validate(bad)) == ['subsets[0].addresses[0].ip: Invalid value: "x": must be a valid IP address',
                                      "subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`"]
    assert e.allow_create_on_update and not e.has_generation
