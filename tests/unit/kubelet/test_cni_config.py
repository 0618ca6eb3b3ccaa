"""CNI configuration of the runc runtime (cni.py): the node's conflist, what each plugin reads,
the pod IP out of a result, and the ADD/DEL chaining (with stand-in plugins: shell scripts that
record their input, no root needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pybernetes.kubelet.runtime import cni
from pybernetes.kubelet.runtime.protocol import PortMapping, RuntimeError_


def test_the_node_network_is_a_bridge_with_host_local_ipam() -> None:
    conf = cni.pod_network(name="pybernetes", bridge="pyb0", subnet="10.244.3.0/24", data_dir="/d/networks")
    assert conf["cniVersion"] == "1.0.0" and conf["name"] == "pybernetes"
    (bridge,) = conf["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == "pyb0"
    assert bridge["isGateway"] and bridge["ipMasq"] and bridge["hairpinMode"]
    assert bridge["ipam"] == {"type": "host-local", "ranges": [[{"subnet": "10.244.3.0/24"}]],
                              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "/d/networks"}
    with_ports = cni.pod_network(name="n", bridge="b", subnet="10.244.3.7/24", data_dir="/d", host_ports=True, mtu=1400)
    assert [p["type"] for p in with_ports["plugins"]] == ["bridge", "portmap"]
    assert with_ports["plugins"][1]["capabilities"] == {"portMappings": True}
    assert with_ports["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.244.3.0/24"}]]  # normalized
    assert with_ports["plugins"][0]["mtu"] == 1400
    v6 = cni.pod_network(name="n", bridge="b", subnet="fd00:10::/64", data_dir="/d")
    assert v6["plugins"][0]["ipam"]["routes"] == [{"dst": "::/0"}]


def test_plugin_input_carries_name_version_prev_result_and_its_capabilities_only() -> None:
    conf = cni.pod_network(name="n", bridge="b", subnet="10.1.0.0/16", data_dir="/d", host_ports=True)
    rt = cni.runtime_config([PortMapping(80, 8080), PortMapping(53, 5353, "UDP", "10.0.0.1"), PortMapping(9, 0)])
    assert rt == {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                                   {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "10.0.0.1"}]}
    bridge = cni.plugin_input(conf, conf["plugins"][0], None, rt)
    assert bridge["name"] == "n" and bridge["cniVersion"] == "1.0.0"
    assert "prevResult" not in bridge and "runtimeConfig" not in bridge
    prev = {"ips": [{"address": "10.1.0.2/16"}]}
    portmap = cni.plugin_input(conf, conf["plugins"][1], prev, rt)
    assert portmap["prevResult"] == prev and portmap["runtimeConfig"] == rt and "capabilities" not in portmap


def test_pod_ip_prefers_ipv4_and_drops_the_prefix() -> None:
    result = {"ips": [{"address": "fd00::5/64"}, {"address": "10.244.0.5/24", "gateway": "10.244.0.1"}]}
    assert cni.pod_ip(result) == ("10.244.0.5", ["fd00::5"])
    assert cni.pod_ip({}) == ("", [])


def test_cni_args_name_the_pod() -> None:
    assert cni.cni_args("ns", "web", "u1", "abc") == (
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u1")


# -- chaining, with stand-in plugins ---------------------------------------------------------------------

PLUGIN = """#!/bin/sh
input=$(cat)
echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_NETNS $CNI_IFNAME" >> "{log}"
printf '%s\\n' "$input" > "{log}.$CNI_COMMAND.{name}"
if [ "$CNI_COMMAND" = ADD ] && [ "{fail}" = yes ]; then
  echo '{{"code": 11, "msg": "no room", "details": "range full"}}'; exit 1
fi
if [ "$CNI_COMMAND" = ADD ]; then echo '{{"cniVersion": "1.0.0", "ips": [{{"address": "10.9.0.{n}/24"}}]}}'; fi
"""


def make_plugins(directory: Path, failing: frozenset[str] = frozenset()) -> Path:
    log = directory / "calls"
    for n, name in enumerate(("first", "second", "third"), start=1):
        path = directory / name
        path.write_text(PLUGIN.format(log=log, name=name, fail="yes" if name in failing else "no", n=n))
        os.chmod(path, 0o755)
    return log


def _json(path: str) -> dict:
    return json.loads(Path(path).read_text())


def conflist(*names: str) -> dict:
    return {"cniVersion": "1.0.0", "name": "t", "plugins": [{"type": n, "capabilities": {"portMappings": True}}
                                                             for n in names]}


async def test_add_chains_results_and_delete_runs_in_reverse(tmp_path: Path) -> None:
    log = make_plugins(tmp_path)
    runner = cni.CniRunner(str(tmp_path))
    rt = {"portMappings": [{"hostPort": 1, "containerPort": 2, "protocol": "tcp"}]}
    result = await runner.add(conflist("first", "second"), "cid", "/run/netns/x", args="A=1", rt_config=rt)
    assert result["ips"] == [{"address": "10.9.0.2/24"}]  # the last plugin's result
    second_in = _json(f"{log}.ADD.second")
    assert second_in["prevResult"]["ips"] == [{"address": "10.9.0.1/24"}] and second_in["runtimeConfig"] == rt
    await runner.delete(conflist("first", "second"), "cid", "", prev_result=result)
    assert log.read_text().splitlines() == ["ADD cid /run/netns/x eth0", "ADD cid /run/netns/x eth0",
                                            "DEL cid  eth0", "DEL cid  eth0"]
    assert _json(f"{log}.DEL.first")["prevResult"] == result


async def test_a_failed_add_deletes_what_was_added_and_reports_the_plugins_message(tmp_path: Path) -> None:
    log = make_plugins(tmp_path, failing={"second"})
    runner = cni.CniRunner(str(tmp_path))
    with pytest.raises(RuntimeError_) as err:
        await runner.add(conflist("first", "second", "third"), "cid", "/ns")
    assert "no room: range full" in err.value.message and "'second'" in err.value.message
    calls = [line.split()[0] for line in log.read_text().splitlines()]
    assert calls == ["ADD", "ADD", "DEL", "DEL"]  # third never ran; second and first cleaned up
    with pytest.raises(RuntimeError_) as err:
        await cni.CniRunner(str(tmp_path / "nowhere")).add(conflist("first"), "cid", "/ns")
    assert err.value.reason == "NetworkPluginNotReady"


def test_the_node_masquerades_once_instead_of_per_pod() -> None:
    from pybernetes.kubelet.runtime import masquerade

    conf = cni.pod_network(name="n", bridge="b0", subnet="10.42.0.0/24", data_dir="/x", ip_masq=False)
    assert conf["plugins"][0]["ipMasq"] is False
    script = masquerade.ruleset("b0", "10.42.0.0/24")
    assert script.startswith("add table ip pybernetes-masq-b0\ndelete table ip pybernetes-masq-b0\n")
    assert "type nat hook postrouting priority 100; policy accept;" in script
    assert "ip saddr 10.42.0.0/24 ip daddr != 10.42.0.0/24 ip daddr != 224.0.0.0/4 masquerade" in script
    assert "ip6 saddr fd00::/64" in masquerade.ruleset("b0", "fd00::/64")
