"""Objects every cluster has from the start, created by the API server when missing.

The namespaces ``default``, ``kube-system``, ``kube-public`` and ``kube-node-lease``, and the
``default/kubernetes`` Service (ClusterIP = the first address of the service CIDR, port 443
"https" to the API server's 6443), as upstream's bootstrap controller keeps them.  Also the
cluster DNS's Service ``kube-system/kube-dns`` (ClusterIP = the service CIDR's 10th address, as
kubeadm places it; ports 53/UDP, 53/TCP and 9153/TCP; no selector: each node's DNS server
publishes its own EndpointSlice, see docs/networking.md; internalTrafficPolicy Local, so that a
pod's queries stay with its own node's server and need no route to another node).  If that address is already taken by a
user's Service, kube-dns is left out with a warning.  They go through the ordinary store path, so
strategies default and validate them.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from pybernetes.machinery.errors import StatusError

if TYPE_CHECKING:
    from pybernetes.apiserver.store import Stores

Obj = dict[str, Any]
log = logging.getLogger(__name__)

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
API_SERVER_PORT = 6443


def namespace_object(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def kubernetes_service(cluster_ip: str, target_port: int = API_SERVER_PORT) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "ports": [
                {"name": "https", "port": 443, "protocol": "TCP", "targetPort": target_port}
            ],
            "sessionAffinity": "None",
        },
    }


def dns_service_ip(service_cidr: str) -> str:
    """The kube-dns ClusterIP: the service CIDR's 10th address."""
    network = ipaddress.ip_network(service_cidr, strict=False)
    return str(network.network_address + 10)


def kube_dns_service(cluster_ip: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS",
                       "kubernetes.io/cluster-service": "true"},
            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
            ],
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Local",
        },
    }


async def _create_if_missing(store: Any, namespace: str | None, obj: Obj) -> None:
    from pybernetes.apiserver.store import WriteOptions

    name = obj["metadata"]["name"]
    try:
        await store.get(namespace, name)
        return
    except StatusError as err:
        if err.code != 404:
            raise
    try:
        await store.create(namespace, obj, WriteOptions())
    except StatusError as err:
        if err.reason != "AlreadyExists":
            raise


async def ensure_defaults(stores: Stores) -> None:
    namespaces = stores.find("", "namespaces")
    if namespaces is not None:
        for name in DEFAULT_NAMESPACES:
            await _create_if_missing(namespaces, None, namespace_object(name))
    services = stores.find("", "services")
    if services is not None and namespaces is not None:
        await _create_if_missing(
            services,
            "default",
            kubernetes_service(stores.allocator.first_ip(), stores.api_server_port),
        )
        network = stores.allocator.network
        if network.num_addresses > 16:
            try:
                await _create_if_missing(services, "kube-system",
                                         kube_dns_service(dns_service_ip(str(network))))
            except StatusError as err:
                log.warning("kube-system/kube-dns not created: %s", err)
