"""Stale UDP conntrack entries, cleared after a sync as upstream kube-proxy v1.32 clears them
(its pkg/proxy/conntrack): the pure choice of what to delete, and the ``conntrack`` tool that
deletes it.

UDP has no connection that ends: as long as a client keeps sending from the same port, its
flow's conntrack entry keeps the verdict of its first packet (the endpoint it was DNATed to, or
no NAT at all when no rule matched yet), whatever the rules say now.  So once a sync that changed
UDP service ports is committed, the proxy deletes (UDP only):

- for an endpoint that left a UDP service port (it served, and now is gone or no longer
  serving): the flows whose original destination is one of the port's addresses (ClusterIP,
  externalIPs, LoadBalancer IPs) and whose reply source is that endpoint, and with a node port,
  the flows to that node port whose reply source is that endpoint;
- for a UDP service port that had no serving endpoint and now has one ("newly active"): every
  flow to its addresses, and to its node port (they were sent nowhere until now and would stay
  so until they expire);
- for a UDP service port that went away: every flow to its ClusterIP.

As upstream, traffic policies, topology and terminating states play no part: an endpoint counts
while it is serving.  ``stale_flows(before, after)`` computes the filters from the views of the
changed ports before and after the sync; ``Conntrack`` runs them as one ``conntrack -R -`` (a
``-D`` line per filter), inside a network namespace when given one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pybernetes.proxy.model import PortName, PortView

UDP = "udp"


@dataclass(frozen=True, slots=True, order=True)
class Flow:
    """A filter of UDP conntrack entries: the original destination address and/or port, and
    the reply source (the endpoint the flow was DNATed to); an empty field matches anything."""

    orig_dst: str = ""
    orig_port_dst: int = 0
    reply_src: str = ""

    def line(self) -> str:
        """The ``conntrack -R`` line that deletes the entries this filter matches."""
        parts = ["-D", "-f", "ipv4", "-p", UDP]
        if self.orig_dst:
            parts += ["--orig-dst", self.orig_dst]
        if self.orig_port_dst:
            parts += ["--orig-port-dst", str(self.orig_port_dst)]
        if self.reply_src:
            parts += ["--reply-src", self.reply_src]
        return " ".join(parts)


def _serving(view: PortView | None) -> set[str]:
    """The addresses (ip:port) of the port's serving endpoints."""
    return {e.address for e in view.endpoints if e.serving} if view is not None else set()


def _addresses(view: PortView) -> tuple[str, ...]:
    service = view.service
    return tuple(ip for ip in (service.cluster_ip, *service.external_ips, *service.lb_ips) if ip)


def stale_flows(before: Mapping[PortName, PortView | None],
                after: Mapping[PortName, PortView | None]) -> list[Flow]:
    """The filters of the flows a sync made stale (see the module doc), deduplicated and sorted;
    ``before`` and ``after`` hold the views of the changed ports (None: no such port)."""
    flows: set[Flow] = set()
    for name in before.keys() | after.keys():
        if name.protocol != UDP:
            continue
        old, new = before.get(name), after.get(name)
        if new is None:
            if old is not None and old.service.cluster_ip:
                flows.add(Flow(orig_dst=old.service.cluster_ip))
            continue
        was, now = _serving(old), _serving(new)
        node_port = new.service.node_port
        if not was and now:
            flows.update(Flow(orig_dst=ip) for ip in _addresses(new))
            if node_port:
                flows.add(Flow(orig_port_dst=node_port))
        for gone in sorted(was - now):
            endpoint_ip = gone.rsplit(":", 1)[0]
            flows.update(Flow(orig_dst=ip, reply_src=endpoint_ip) for ip in _addresses(new))
            if node_port:
                flows.add(Flow(orig_port_dst=node_port, reply_src=endpoint_ip))
    return sorted(flows)


class ConntrackError(Exception):
    """``conntrack`` failed (or could not be run); ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Conntrack:
    """The ``conntrack`` tool (conntrack-tools), in network namespace ``netns`` if given."""

    def __init__(self, binary: str = "conntrack", netns: str | None = None, timeout: float = 10.0) -> None:
        self.binary = binary
        self.netns = netns
        self.timeout = timeout

    def available(self) -> bool:
        if os.path.isabs(self.binary):
            return os.access(self.binary, os.X_OK)
        return shutil.which(self.binary) is not None or os.access(f"/usr/sbin/{self.binary}", os.X_OK)

    def _argv(self, *args: str) -> list[str]:
        binary = self.binary
        if not os.path.isabs(binary) and shutil.which(binary) is None and os.access(f"/usr/sbin/{binary}", os.X_OK):
            binary = f"/usr/sbin/{binary}"  # a PATH without the sbin directories
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [*prefix, binary, *args]

    async def delete(self, flows: Iterable[Flow]) -> int:
        """Delete the entries every filter matches (one run of the tool); how many went."""
        script = "".join(flow.line() + "\n" for flow in flows)
        if not script:
            return 0
        # a file, not stdin: conntrack opens "/dev/stdin" by path, which fails when stdin is a
        # socket (uvloop's subprocess pipes are socket pairs)
        with tempfile.NamedTemporaryFile("w", prefix="pybernetes-conntrack-", suffix=".txt") as batch:
            batch.write(script)
            batch.flush()
            return await self._run_batch(batch.name)

    async def _run_batch(self, path: str) -> int:
        try:
            process = await asyncio.create_subprocess_exec(
                *self._argv("-R", path), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise ConntrackError(f"cannot run {self.binary}: {exc}") from exc
        try:
            async with asyncio.timeout(self.timeout):
                out, err = await process.communicate()
        except BaseException as exc:  # timed out or cancelled: do not leave it running
            if process.returncode is None:
                process.kill()
                await asyncio.shield(process.wait())
            if isinstance(exc, TimeoutError):
                raise ConntrackError(f"{self.binary} did not finish within {self.timeout:g}s") from exc
            raise
        if process.returncode:
            text = (err or out).decode(errors="replace").strip().splitlines()
            raise ConntrackError(f"{self.binary} exited with {process.returncode}: "
                                 f"{text[0] if text else 'no message'}")
        # every deleted entry is printed on a line of its own
        return sum(1 for line in out.splitlines() if line.strip())
