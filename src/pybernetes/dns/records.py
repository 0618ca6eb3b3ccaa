"""The cluster zone as data: an index of Services, EndpointSlices and Namespaces, and the
answers of the Kubernetes DNS specification 1.1.0 (as CoreDNS 1.11's ``kubernetes`` plugin
gives them, ``pods insecure``) computed from it.  Pure: no I/O, no clock but the SOA serial.

``RecordIndex.answer(qname, qtype)`` returns an ``Answer`` (rcode, answer, authority,
additional as dnslib RRs) for names in the cluster zone and in the reverse zones it owns
(the configured CIDRs, plus any address it knows), or None for a name it does not own
(the caller forwards it).  Names:

- ``<svc>.<ns>.svc.<zone>``: A/AAAA of the ClusterIPs, or of the ready endpoints of a
  headless service (every endpoint with publishNotReadyAddresses), deduplicated over its
  slices; an ExternalName service is a CNAME (chased inside the zone); SRV per named port;
- ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` SRV; ``<hostname-or-dashed-ip>.<svc>...`` A/AAAA;
- ``<a-b-c-d>.<ns>.pod.<zone>`` A (any well-formed address), ``dns-version.<zone>`` TXT,
  ``ns.dns.<zone>`` A (kube-system/kube-dns), SOA and NS at the apex, PTR for ClusterIPs and
  headless endpoint addresses.

Names that do not exist are NXDOMAIN, names that exist without the asked type NODATA; both
carry the zone's SOA (minimum = negative TTL = ``ttl``).  Every change bumps ``generation``
(a reply cache keys on it); updates touch only the changed service's records.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any, NamedTuple

from dnslib import AAAA, CNAME, NS, PTR, RR, SOA, SRV, TXT, A

from pybernetes.dns.zonedata import (
    Endpoint,
    Service,
    Slice,
    dashed,
    ip_of_reverse,
    is_v6,
    norm_ip,
    parse_service,
    parse_slice,
    pod_ip,
    port_match,
    reverse_name,
    reverse_zone,
)

__all__ = ["Answer", "RecordIndex", "ip_of_reverse", "reverse_name", "reverse_zone"]

Obj = dict[str, Any]

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
T_A, T_NS, T_CNAME, T_SOA, T_PTR, T_TXT, T_AAAA, T_SRV, T_ANY = 1, 2, 5, 6, 12, 16, 28, 33, 255
SPEC_VERSION = "1.1.0"
MAX_CNAME_CHAIN = 8


class Answer(NamedTuple):
    rcode: int
    answer: list[RR]
    authority: list[RR]
    additional: list[RR]


class RecordIndex:
    """Services, EndpointSlices and Namespaces of every namespace, and the zone's answers."""

    def __init__(self, zone: str = "cluster.local", ttl: int = 5,
                 reverse_cidrs: tuple[str, ...] | list[str] = ()) -> None:
        self.zone = zone.strip(".").lower()
        self.ttl = int(ttl)
        self.reverse_zones = [reverse_zone(c) for c in reverse_cidrs]
        self.generation = 0
        self.serial = int(time.time())
        self._services: dict[tuple[str, str], Service] = {}
        self._slices: dict[tuple[str, str], Slice] = {}
        self._slices_of: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._endpoints: dict[tuple[str, str], dict[str, Endpoint]] = {}  # service -> ip -> endpoint
        self._namespaces: set[str] = set()
        self._services_in_ns: dict[str, int] = {}
        self._ptr: dict[str, set[str]] = {}  # ip -> names (no trailing dot)
        self._ptr_of: dict[tuple[str, str], list[tuple[str, str]]] = {}  # service -> its (ip, name)

    # -- updates -------------------------------------------------------------------------

    def _changed(self) -> None:
        self.generation += 1
        self.serial = max(self.serial + 1, int(time.time()))

    def set_namespace(self, obj: Obj) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if name and name not in self._namespaces:
            self._namespaces.add(name)
            self._changed()

    def delete_namespace(self, obj: Obj) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if name in self._namespaces:
            self._namespaces.discard(name)
            self._changed()

    def set_service(self, obj: Obj) -> None:
        svc = parse_service(obj)
        key = (svc.namespace, svc.name)
        old = self._services.get(key)
        if old == svc:
            return
        if old is None:
            self._services_in_ns[svc.namespace] = self._services_in_ns.get(svc.namespace, 0) + 1
        self._services[key] = svc
        self._rebuild(key)
        self._changed()

    def delete_service(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if self._services.pop(key, None) is None:
            return
        left = self._services_in_ns.get(key[0], 1) - 1
        if left:
            self._services_in_ns[key[0]] = left
        else:
            self._services_in_ns.pop(key[0], None)
        self._rebuild(key)
        self._changed()

    def set_slice(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        new = parse_slice(obj)
        old = self._slices.get(key)
        if old == new:
            return
        self._slices[key] = new
        if old is not None and old.service != new.service and old.service is not None:
            self._slices_of.get(old.service, set()).discard(key)
            self._rebuild(old.service)
        if new.service is not None:
            self._slices_of.setdefault(new.service, set()).add(key)
            self._rebuild(new.service)
        self._changed()

    def delete_slice(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        old = self._slices.pop(key, None)
        if old is None:
            return
        if old.service is not None:
            members = self._slices_of.get(old.service)
            if members is not None:
                members.discard(key)
                if not members:
                    del self._slices_of[old.service]
            self._rebuild(old.service)
        self._changed()

    def _rebuild(self, key: tuple[str, str]) -> None:
        """Recompute one service's endpoints and reverse records."""
        for ip, name in self._ptr_of.pop(key, ()):
            names = self._ptr.get(ip)
            if names is not None:
                names.discard(name)
                if not names:
                    del self._ptr[ip]
        self._endpoints.pop(key, None)
        svc = self._services.get(key)
        if svc is None:
            return
        endpoints: dict[str, Endpoint] = {}
        for slice_key in sorted(self._slices_of.get(key, ())):
            sl = self._slices[slice_key]
            for addrs, ready, hostname in sl.endpoints:
                if not ready and not svc.publish_not_ready:
                    continue
                for ip in addrs:
                    ep = endpoints.get(ip)
                    if ep is None:
                        endpoints[ip] = Endpoint(ip, hostname or dashed(ip), list(sl.ports))
                    else:
                        ep.ports.extend(p for p in sl.ports if p not in ep.ports)
        self._endpoints[key] = endpoints
        base = f"{svc.name}.{svc.namespace}.svc.{self.zone}"
        entries = [(ip, base) for ip in svc.cluster_ips]
        if svc.headless:
            entries += [(ep.ip, f"{ep.label}.{base}") for ep in endpoints.values()]
        for ip, name in entries:
            self._ptr.setdefault(ip, set()).add(name)
        self._ptr_of[key] = entries

    # -- queries -------------------------------------------------------------------------

    def in_zone(self, name: str) -> bool:
        name = name.rstrip(".").lower()
        return name == self.zone or name.endswith("." + self.zone)

    def owns(self, name: str) -> bool:
        """Whether a name is in the cluster zone or a configured reverse zone."""
        name = name.rstrip(".").lower()
        if self.in_zone(name):
            return True
        return any(name == z or name.endswith("." + z) for z, _ in self.reverse_zones)

    def answer(self, qname: str, qtype: int) -> Answer | None:
        """The answer for a name this index owns; None for names to forward."""
        owner = qname if qname.endswith(".") else qname + "."
        name = owner[:-1].lower()
        zone = self.zone
        if name == zone:
            return self._apex(owner, qtype)
        if name.endswith("." + zone):
            return self._cluster(owner, name[: -len(zone) - 1].split("."), qtype, 0)
        if name.endswith(".arpa"):
            return self._reverse(owner, name, qtype)
        return None

    def soa(self, zone: str | None = None) -> RR:
        z = self.zone
        return RR(f"{zone or z}.", T_SOA, ttl=self.ttl, rdata=SOA(
            f"ns.dns.{z}.", f"hostmaster.{z}.", (self.serial & 0xFFFFFFFF, 7200, 1800, 86400, self.ttl)))

    def _nx(self, zone: str | None = None) -> Answer:
        return Answer(NXDOMAIN, [], [self.soa(zone)], [])

    def _nodata(self, zone: str | None = None) -> Answer:
        return Answer(NOERROR, [], [self.soa(zone)], [])

    def _addresses(self, owner: str, ips: Any, qtype: int) -> list[RR]:
        out = []
        for ip in ips:
            v6 = is_v6(ip)
            if qtype in (T_A, T_ANY) and not v6:
                out.append(RR(owner, T_A, ttl=self.ttl, rdata=A(ip)))
            elif qtype in (T_AAAA, T_ANY) and v6:
                out.append(RR(owner, T_AAAA, ttl=self.ttl, rdata=AAAA(ip)))
        return out

    def _addr_answer(self, owner: str, ips: Any, qtype: int) -> Answer:
        rrs = self._addresses(owner, ips, qtype)
        return Answer(NOERROR, rrs, [], []) if rrs else self._nodata()

    def _dns_ips(self) -> tuple[str, ...]:
        svc = self._services.get(("kube-system", "kube-dns"))
        return svc.cluster_ips if svc is not None else ()

    def _apex(self, owner: str, qtype: int) -> Answer:
        if qtype == T_SOA:
            return Answer(NOERROR, [self.soa()], [], [])
        if qtype == T_NS:
            target = f"ns.dns.{self.zone}."
            return Answer(NOERROR, [RR(owner, T_NS, ttl=self.ttl, rdata=NS(target))], [],
                          self._addresses(target, self._dns_ips(), T_ANY))
        return self._nodata()

    def _cluster(self, owner: str, labels: list[str], qtype: int, depth: int) -> Answer:
        kind = labels[-1]
        n = len(labels)
        if kind == "svc":
            if n == 1:
                return self._nodata()
            ns = labels[-2]
            if n == 2:
                return self._nodata() if self._ns_exists(ns) else self._nx()
            svc = self._services.get((ns, labels[-3]))
            if svc is None or n > 5:
                return self._nx()
            if n == 3:
                return self._service(owner, svc, qtype, depth)
            if n == 4:
                return self._endpoint(owner, svc, labels[0], qtype)
            return self._srv_port(owner, svc, labels[0], labels[1], qtype)
        if kind == "pod":
            if n == 1:
                return self._nodata()
            if n == 2:
                return self._nodata() if self._ns_exists(labels[0]) else self._nx()
            if n > 3:
                return self._nx()
            ip = pod_ip(labels[0])
            if ip is None:
                return self._nx()
            return self._addr_answer(owner, (ip,), qtype)
        if kind == "dns-version" and n == 1:
            if qtype in (T_TXT, T_ANY):
                return Answer(NOERROR, [RR(owner, T_TXT, ttl=self.ttl, rdata=TXT(SPEC_VERSION))], [], [])
            return self._nodata()
        if kind == "dns":
            if n == 1:
                return self._nodata()
            if n == 2 and labels[0] == "ns":
                return self._addr_answer(owner, self._dns_ips(), qtype)
        return self._nx()

    def _ns_exists(self, ns: str) -> bool:
        return ns in self._namespaces or ns in self._services_in_ns

    def _service(self, owner: str, svc: Service, qtype: int, depth: int) -> Answer:
        if svc.type == "ExternalName":
            return self._external(owner, svc, qtype, depth)
        if svc.headless:
            ips: Any = self._endpoints.get((svc.namespace, svc.name)) or {}
            if not ips:
                return self._nx()  # as CoreDNS: a headless service without endpoints has no name
        else:
            ips = svc.cluster_ips
            if not ips:
                return self._nx()
        if qtype == T_SRV:
            return self._srv(owner, svc, None, None)
        return self._addr_answer(owner, ips, qtype)

    def _external(self, owner: str, svc: Service, qtype: int, depth: int) -> Answer:
        target = svc.external_name
        if not target or norm_ip(target) is not None:
            return self._nx()  # CoreDNS answers only host names, never addresses
        cname = RR(owner, T_CNAME, ttl=self.ttl, rdata=CNAME(target + "."))
        if qtype == T_CNAME or depth >= MAX_CNAME_CHAIN:
            return Answer(NOERROR, [cname], [], [])
        if target == self.zone or target.endswith("." + self.zone):
            inner = (self._apex(target + ".", qtype) if target == self.zone else
                     self._cluster(target + ".", target[: -len(self.zone) - 1].split("."), qtype, depth + 1))
            return Answer(inner.rcode, [cname, *inner.answer], inner.authority, inner.additional)
        return Answer(NOERROR, [cname], [], [])  # the caller resolves the target upstream

    def _srv(self, owner: str, svc: Service, port: str | None, proto: str | None) -> Answer:
        """SRV records of the service's named ports (only those matching port/proto)."""
        base = f"{svc.name}.{svc.namespace}.svc.{self.zone}."
        found: list[tuple[int, str]] = []  # (port, target)
        additional: list[RR] = []
        if svc.headless:
            seen_targets: set[str] = set()
            for ep in (self._endpoints.get((svc.namespace, svc.name)) or {}).values():
                target = f"{ep.label}.{base}"
                for p in ep.ports:
                    if p.name and port_match(p, port, proto):
                        found.append((p.port, target))
                        if target not in seen_targets:
                            seen_targets.add(target)
                            additional += self._addresses(target, (ep.ip,), T_ANY)
        else:
            for p in svc.ports:
                if p.name and port_match(p, port, proto):
                    found.append((p.port, base))
            if found:
                additional = self._addresses(base, svc.cluster_ips, T_ANY)
        if not found:
            return self._nodata() if port is None else self._nx()
        weight = 100 // len(found)
        rrs = [RR(owner, T_SRV, ttl=self.ttl, rdata=SRV(0, weight, number, target)) for number, target in found]
        return Answer(NOERROR, rrs, [], additional)

    def _srv_port(self, owner: str, svc: Service, port: str, proto: str, qtype: int) -> Answer:
        if svc.type == "ExternalName":
            return self._nx()
        result = self._srv(owner, svc, port[1:] if port.startswith("_") else port,
                           proto[1:] if proto.startswith("_") else proto)
        if result.rcode != NOERROR or qtype in (T_SRV, T_ANY):
            return result
        return self._nodata()

    def _endpoint(self, owner: str, svc: Service, label: str, qtype: int) -> Answer:
        if svc.type == "ExternalName":
            return self._nx()
        eps = self._endpoints.get((svc.namespace, svc.name)) or {}
        ips = [ep.ip for ep in eps.values() if ep.label == label]
        if not ips:
            return self._nx()
        return self._addr_answer(owner, ips, qtype)

    def _reverse(self, owner: str, name: str, qtype: int) -> Answer | None:
        ip = ip_of_reverse(name)
        zone = None
        for zname, net in self.reverse_zones:
            if name == zname or name.endswith("." + zname):
                if ip is None or ipaddress.ip_address(ip) in net:
                    zone = zname
                break
        names = self._ptr.get(ip) if ip is not None else None
        if names:
            if qtype not in (T_PTR, T_ANY):
                return self._nodata(zone or ("in-addr.arpa" if name.endswith(".in-addr.arpa") else "ip6.arpa"))
            rrs = [RR(owner, T_PTR, ttl=self.ttl, rdata=PTR(n + ".")) for n in sorted(names)]
            return Answer(NOERROR, rrs, [], [])
        if zone is None:
            return None
        if ip is None:
            if qtype == T_SOA and name == zone:
                return Answer(NOERROR, [self.soa(zone)], [], [])
            return self._nodata(zone)  # an intermediate name of the reverse zone
        return self._nx(zone)

    # -- introspection (tests, metrics) ----------------------------------------------------

    @property
    def service_count(self) -> int:
        return len(self._services)

    def endpoints_of(self, namespace: str, name: str) -> list[str]:
        return list(self._endpoints.get((namespace, name)) or ())
