"""networking.k8s.io/v1 ingresses, ingressclasses, networkpolicies; policy/v1 PDBs."""

from __future__ import annotations

import copy

from pybernetes.api import networking, policy
from pybernetes.api.networking.ingresses import INGRESSCLASSES, INGRESSES
from pybernetes.api.networking.networkpolicies import NETWORKPOLICIES
from pybernetes.api.printing import parse_time

NOW = parse_time("2024-01-01T00:10:00Z")
META = {"name": "x", "namespace": "default", "creationTimestamp": "2024-01-01T00:00:00Z"}
PDBS = policy.RESOURCES[0]


def run(res, obj):
    res.strategy.default(obj)
    res.strategy.prepare_for_create(obj)
    return res.strategy.validate(obj)


def paths(errs):
    return [(e.field, e.type) for e in errs]


def ingress(**spec):
    return {"metadata": dict(META), "spec": spec}


def backend(name="web", number=80):
    return {"service": {"name": name, "port": {"number": number}}}


def test_group_contents():
    assert {r.resource for r in networking.RESOURCES} == {"ingresses", "ingressclasses", "networkpolicies"}
    assert INGRESSES.short_names == ("ing",) and NETWORKPOLICIES.short_names == ("netpol",)
    assert INGRESSCLASSES.namespaced is False and PDBS.short_names == ("pdb",)


def test_ingress_valid_and_status_reset():
    obj = ingress(ingressClassName="nginx", rules=[{"host": "a.example.com", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": backend()}]}}], tls=[{"hosts": ["a.example.com"]}])
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    assert run(INGRESSES, obj) == []
    assert obj["status"] == {"loadBalancer": {}}


def test_ingress_path_type_required_and_bad_paths():
    obj = ingress(rules=[{"http": {"paths": [{"path": "/", "backend": backend()},
                                             {"path": "a//b", "pathType": "Exact", "backend": backend()},
                                             {"path": "/a/..", "pathType": "Prefix", "backend": backend()}]}}])
    errs = run(INGRESSES, obj)
    assert paths(errs) == [("spec.rules[0].http.paths[0].pathType", "FieldValueRequired"),
                           ("spec.rules[0].http.paths[1].path", "FieldValueInvalid"),
                           ("spec.rules[0].http.paths[2].path", "FieldValueInvalid")]
    assert errs[0].detail == "pathType must be specified"
    assert errs[2].detail == "must not end with '/..'"


def test_ingress_needs_rules_or_backend_and_valid_backend():
    errs = run(INGRESSES, ingress())
    assert errs[0].field == "spec" and "either `defaultBackend` or `rules` must be specified" in errs[0].detail
    errs = run(INGRESSES, ingress(defaultBackend={"service": {"name": "web", "port": {}}}))
    assert paths(errs) == [("spec.defaultBackend", "FieldValueRequired")]
    errs = run(INGRESSES, ingress(rules=[{"host": "10.0.0.1"}]))
    assert errs[0].detail == "must be a DNS name, not an IP address"


def test_ingress_table():
    obj = ingress(rules=[{"host": h} for h in ("a", "b", "c", "d", "e")], tls=[{}])
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.2"}, {"hostname": "lb.example.com"},
                                                  {"ip": "10.0.0.1"}]}}
    assert [c.name for c in INGRESSES.strategy.columns()] == ["Class", "Hosts", "Address", "Ports", "Age"]
    assert INGRESSES.strategy.cells(obj, NOW) == ["<none>", "a,b,c + 2 more...",
                                                  "10.0.0.1,10.0.0.2,lb.example.com", "80, 443", "10m"]
    assert INGRESSES.strategy.cells(ingress(ingressClassName="nginx"), NOW)[:4] == ["nginx", "*", "", "80"]


def test_ingressclass():
    obj = {"metadata": {"name": "nginx", "creationTimestamp": "2024-01-01T00:00:00Z"},
           "spec": {"controller": "k8s.io/ingress-nginx",
                    "parameters": {"apiGroup": "k8s.example.com", "kind": "Params", "name": "p"}}}
    assert run(INGRESSCLASSES, obj) == []
    assert obj["spec"]["parameters"]["scope"] == "Cluster"
    assert INGRESSCLASSES.strategy.cells(obj, NOW) == ["k8s.io/ingress-nginx", "Params.k8s.example.com/p", "10m"]
    new = copy.deepcopy(obj)
    new["spec"]["controller"] = "example.com/other"
    assert paths(INGRESSCLASSES.strategy.validate_update(new, obj)) == [("spec.controller", "FieldValueInvalid")]


def netpol(**spec):
    return {"metadata": dict(META), "spec": {"podSelector": {}, **spec}}


def test_networkpolicy_defaults():
    obj = netpol(egress=[{"ports": [{"port": 53}]}])
    assert run(NETWORKPOLICIES, obj) == []
    assert obj["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert obj["spec"]["egress"][0]["ports"][0]["protocol"] == "TCP"
    obj = netpol()
    run(NETWORKPOLICIES, obj)
    assert obj["spec"]["policyTypes"] == ["Ingress"]


def test_networkpolicy_rejects_invalid_cidrs():
    obj = netpol(ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}},
                                    {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24", "bad"]}},
                                    {}]}])
    errs = run(NETWORKPOLICIES, obj)
    assert paths(errs) == [
        ("spec.ingress[0].from[0].ipBlock.cidr", "FieldValueInvalid"),
        ("spec.ingress[0].from[1].ipBlock.except[0]", "FieldValueInvalid"),
        ("spec.ingress[0].from[1].ipBlock.except[1]", "FieldValueInvalid"),
        ("spec.ingress[0].from[2]", "FieldValueRequired"),
    ]
    assert errs[1].detail == "must be a strict subset of `cidr`"
    assert "CIDR" in errs[0].detail


def test_networkpolicy_ports_and_types():
    obj = netpol(ingress=[{"ports": [{"port": 80, "endPort": 70}, {"port": "http", "endPort": 90},
                                     {"protocol": "ICMP"}]}], policyTypes=["Ingress", "Sideways"])
    errs = run(NETWORKPOLICIES, obj)
    assert paths(errs) == [
        ("spec.ingress[0].ports[0].endPort", "FieldValueInvalid"),
        ("spec.ingress[0].ports[1].endPort", "FieldValueInvalid"),
        ("spec.ingress[0].ports[2].protocol", "FieldValueNotSupported"),
        ("spec.policyTypes[1]", "FieldValueNotSupported"),
    ]


def test_networkpolicy_table():
    obj = netpol(podSelector={"matchLabels": {"app": "db"}})
    assert NETWORKPOLICIES.strategy.cells(obj, NOW) == ["app=db", "10m"]
    assert NETWORKPOLICIES.strategy.cells(netpol(), NOW) == ["<none>", "10m"]


def test_pdb():
    obj = {"metadata": dict(META), "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"a": "b"}}}}
    assert run(PDBS, obj) == []
    assert obj["status"] == {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
    obj["status"]["disruptionsAllowed"] = 2
    assert PDBS.strategy.cells(obj, NOW) == ["50%", "N/A", 2, "10m"]
    bad = {"metadata": dict(META), "spec": {"minAvailable": 1, "maxUnavailable": "150%",
                                            "unhealthyPodEvictionPolicy": "Never"}}
    errs = run(PDBS, bad)
    assert paths(errs) == [("spec", "FieldValueInvalid"), ("spec.maxUnavailable", "FieldValueInvalid"),
                           ("spec.unhealthyPodEvictionPolicy", "FieldValueNotSupported")]
    assert errs[0].detail == "minAvailable and maxUnavailable cannot be both set"
    new = copy.deepcopy(obj)
    new["status"] = {"currentHealthy": -1}
    assert paths(PDBS.strategy.validate_status_update(new, obj)) == [("status.currentHealthy", "FieldValueInvalid")]
