"""Cluster DNS (the Kubernetes DNS specification 1.1.0, as CoreDNS's kubernetes plugin).

``service.DnsService(client, DnsOptions)`` is the component; ``records`` (the zone, pure),
``zonedata`` (objects and names, pure), ``handler`` (one message in, one reply out),
``server`` (UDP/TCP transports), ``forward`` (upstream resolvers and their cache),
``publish`` (its kube-dns EndpointSlice) and ``metrics`` are its parts.
"""
