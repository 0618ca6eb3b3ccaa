"""Builders of the wire objects the proxy reads (Services, EndpointSlices, Nodes), shared by the
proxy's unit tests, integration tests and benchmarks."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def service(name: str, cluster_ip: str | None, ports: list[Obj] | None = None, *, namespace: str = "default",
            created: str = "2024-01-01T00:00:00Z", status: Obj | None = None, **spec: Any) -> Obj:
    """A Service; ``ports`` default to one TCP port 80 named ``http``."""
    body: Obj = {"ports": ports if ports is not None else [port("http", 80)], **spec}
    if cluster_ip is not None:
        body["clusterIP"] = cluster_ip
        body["clusterIPs"] = [cluster_ip]
    obj: Obj = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"namespace": namespace, "name": name, "creationTimestamp": created},
                "spec": body}
    if status is not None:
        obj["status"] = status
    return obj


def port(name: str, number: int, protocol: str = "TCP", node_port: int | None = None,
         target: int | None = None) -> Obj:
    out: Obj = {"name": name, "port": number, "protocol": protocol}
    if node_port is not None:
        out["nodePort"] = node_port
    if target is not None:
        out["targetPort"] = target
    return out


def endpoint(ip: str, node: str | None = "node-a", ready: bool | None = True, serving: bool | None = None,
             terminating: bool | None = None) -> Obj:
    conditions = {key: value for key, value in (("ready", ready), ("serving", serving),
                                                ("terminating", terminating)) if value is not None}
    out: Obj = {"addresses": [ip], "conditions": conditions}
    if node is not None:
        out["nodeName"] = node
    return out


def endpoint_slice(service_name: str, endpoints: list[Obj], ports: list[Obj] | None = None, *,
                   namespace: str = "default", name: str | None = None) -> Obj:
    """An EndpointSlice of ``service_name``; ``ports`` default to ``http`` 8080/TCP."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": namespace, "name": name or f"{service_name}-abcde",
                         "labels": {SERVICE_NAME_LABEL: service_name}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def lb_status(*ips: str, mode: str | None = None) -> Obj:
    ingress = [{"ip": ip, **({"ipMode": mode} if mode else {})} for ip in ips]
    return {"loadBalancer": {"ingress": ingress}}
