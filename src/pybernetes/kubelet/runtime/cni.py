"""Pod networking through CNI plugins (the Debian ``containernetworking-plugins`` binaries),
as libcni runs a network configuration list, without libcni.

Pure part: ``pod_network`` builds the conflist of a node: a ``bridge`` plugin (isGateway,
ipMasq, hairpinMode) with ``host-local`` IPAM on the node's pod CIDR, its allocation state in a
directory of the caller's (not /var/lib/cni, so two runtimes never share it), then ``portmap``
when a pod asks for hostPorts (``portMappings`` capability, fed through runtimeConfig).
``plugin_input`` is what one plugin reads on stdin; ``pod_ip`` picks the address from a result.

The loopback interface is not a plugin here: the runtime brings ``lo`` up itself while it
creates the namespace (kernel.py), one fork+exec fewer per pod than the ``loopback`` plugin.

Shell part: ``CniRunner.add`` runs the plugins in order, each given the previous one's result
(``prevResult``); if one fails, the ones already run are deleted again, so a failed ADD leaves
nothing behind.  ``delete`` runs them in reverse order with the cached ADD result and tolerates
what is already gone, so it is idempotent.  Plugin failures become ``RuntimeError_`` with the
plugin's own message (CNI error JSON on stdout: ``code``, ``msg``, ``details``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from typing import Any

from pybernetes.kubelet.runtime import spawn
from pybernetes.kubelet.runtime.protocol import PortMapping, RuntimeError_

CNI_VERSION = "1.0.0"
PLUGIN_TIMEOUT = 60.0


def pod_network(*, name: str, bridge: str, subnet: str, data_dir: str, host_ports: bool = False,
                mtu: int = 0, ip_masq: bool = True) -> dict[str, Any]:
    """The node's network configuration list (see the module docstring); ``ip_masq`` False
    when the node masquerades once for all pods (masquerade.py)."""
    network = ipaddress.ip_network(subnet, strict=False)
    default = "0.0.0.0/0" if network.version == 4 else "::/0"
    bridge_conf: dict[str, Any] = {
        "type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": ip_masq, "hairpinMode": True,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": str(network)}]], "routes": [{"dst": default}],
                 "dataDir": data_dir},
    }
    if mtu:
        bridge_conf["mtu"] = mtu
    plugins: list[dict[str, Any]] = [bridge_conf]
    if host_ports:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}, "snat": True})
    return {"cniVersion": CNI_VERSION, "name": name, "plugins": plugins}


def runtime_config(port_mappings: list[PortMapping]) -> dict[str, Any]:
    """runtimeConfig for the ``portMappings`` capability (CNI's conventions document)."""
    return {"portMappings": [{"hostPort": p.host_port, "containerPort": p.container_port,
                              "protocol": p.protocol.lower(), **({"hostIP": p.host_ip} if p.host_ip else {})}
                             for p in port_mappings if p.host_port]}


def plugin_input(conflist: dict[str, Any], plugin: dict[str, Any], prev_result: dict[str, Any] | None,
                 rt_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stdin of one plugin of ``conflist``: its own configuration plus the list's name and
    version, the previous result, and the runtimeConfig entries for the capabilities it has."""
    conf = {k: v for k, v in plugin.items() if k != "capabilities"}
    conf["cniVersion"] = conflist["cniVersion"]
    conf["name"] = conflist["name"]
    if prev_result is not None:
        conf["prevResult"] = prev_result
    wanted = {k for k, on in (plugin.get("capabilities") or {}).items() if on}
    granted = {k: v for k, v in (rt_config or {}).items() if k in wanted}
    if granted:
        conf["runtimeConfig"] = granted
    return conf


def pod_ip(result: dict[str, Any]) -> tuple[str, list[str]]:
    """(first address, the other addresses) of a CNI result, IPv4 first, without prefix lengths."""
    addresses = [str(ipaddress.ip_interface(ip["address"]).ip) for ip in result.get("ips") or []
                 if ip.get("address")]
    addresses.sort(key=lambda a: ipaddress.ip_address(a).version)
    return (addresses[0], addresses[1:]) if addresses else ("", [])


def cni_args(namespace: str, name: str, uid: str, sandbox_id: str) -> str:
    return (f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};"
            f"K8S_POD_INFRA_CONTAINER_ID={sandbox_id};K8S_POD_UID={uid}")


def _error_message(plugin: str, command: str, stdout: bytes, stderr: bytes, code: int) -> str:
    try:
        err = json.loads(stdout)
        text = str(err.get("msg") or "")
        if err.get("details"):
            text += f": {err['details']}"
    except ValueError:
        text = (stderr or stdout).decode(errors="replace").strip()
    return f"plugin type={plugin!r} {command} failed (exit {code}): {text or 'no message'}"


class CniRunner:
    """Runs a conflist's plugins from ``bin_dir`` (see the module docstring)."""

    def __init__(self, bin_dir: str = "/usr/lib/cni") -> None:
        self.bin_dir = bin_dir

    async def _exec(self, command: str, plugin: dict[str, Any], stdin: dict[str, Any], container_id: str,
                    netns: str, ifname: str, args: str) -> dict[str, Any]:
        binary = os.path.join(self.bin_dir, plugin["type"])
        if not os.access(binary, os.X_OK):
            raise RuntimeError_("NetworkPluginNotReady", f"CNI plugin {plugin['type']!r} not found in {self.bin_dir}")
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
               "CNI_IFNAME": ifname, "CNI_PATH": self.bin_dir, "CNI_ARGS": args,
               "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        try:
            done = await spawn.run([binary], stdin=json.dumps(stdin).encode(), env=env, within=PLUGIN_TIMEOUT)
        except spawn.CommandTimeout:
            raise RuntimeError_("NetworkError", f"plugin type={plugin['type']!r} {command} timed out") from None
        out, err = done.stdout, done.stderr
        if done.returncode != 0:
            raise RuntimeError_("NetworkError", _error_message(plugin["type"], command, out, err, done.returncode))
        if command != "ADD":
            return {}
        try:
            return json.loads(out)
        except ValueError as exc:
            raise RuntimeError_("NetworkError", f"plugin type={plugin['type']!r} ADD printed no result: {exc}") from None

    async def add(self, conflist: dict[str, Any], container_id: str, netns: str, *, ifname: str = "eth0",
                  args: str = "", rt_config: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run ADD through the list; the last plugin's result.  On failure, DEL what was added."""
        result: dict[str, Any] | None = None
        ran = 0
        try:
            for plugin in conflist["plugins"]:
                ran += 1
                result = await self._exec("ADD", plugin, plugin_input(conflist, plugin, result, rt_config),
                                          container_id, netns, ifname, args)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.delete({**conflist, "plugins": conflist["plugins"][:ran]}, container_id, netns,
                                  ifname=ifname, args=args, rt_config=rt_config, prev_result=result)
            raise
        return result or {}

    async def delete(self, conflist: dict[str, Any], container_id: str, netns: str, *, ifname: str = "eth0",
                     args: str = "", rt_config: dict[str, Any] | None = None,
                     prev_result: dict[str, Any] | None = None) -> None:
        """Run DEL through the list in reverse order (every plugin, even after a failure, which
        is then raised)."""
        errors: list[RuntimeError_] = []
        for plugin in reversed(conflist["plugins"]):
            try:
                await self._exec("DEL", plugin, plugin_input(conflist, plugin, prev_result, rt_config),
                                 container_id, netns, ifname, args)
            except RuntimeError_ as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
