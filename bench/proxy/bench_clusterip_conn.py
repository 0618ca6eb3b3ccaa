"""New-connection rate through a ClusterIP against the pod IP directly, in the same run (root,
nft, wrk and a C compiler needed).

A NetnsLab node (tests/support/netns_lab.py) gets a server pod and a client pod; the proxy's
nftables backend programs the node with one Service (ClusterIP port 80 -> the server pod's
port 8080) among ``--services`` others.  The server is a small epoll HTTP server in C
(compiled here: one process answering and closing each connection; busybox httpd forks per
connection and would measure itself), so the kernel path is what is measured.  ``wrk -H
"Connection: close"`` in the client pod opens a new TCP connection per request, first to the
pod IP, then to the ClusterIP (alternating, ``--rounds`` each); the figures are the medians and
the ratio ClusterIP / direct (target >= 0.8).

Usage: sudo .venv/bin/python bench/proxy/bench_clusterip_conn.py [--seconds 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "tests" / "unit" / "proxy"))
import netns_lab  # noqa: E402
from proxy_objects import endpoint, endpoint_slice, port, service  # noqa: E402

from pybernetes.proxy.nft import Nft  # noqa: E402
from pybernetes.proxy.nftables import NftablesBackend  # noqa: E402
from pybernetes.proxy.rules import RenderConfig  # noqa: E402
from pybernetes.proxy.tracker import ChangeTracker, ProxyState, refresh  # noqa: E402

SERVER_C = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8080, one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 4096)) return 1;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    char buf[4096];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
            } else {
                ssize_t r = read(fd, buf, sizeof buf);
                if (r > 0 && memmem(buf, r, "\r\n\r\n", 4)) {
                    ssize_t w = write(fd, reply, sizeof reply - 1);
                    (void)w;
                    close(fd);
                } else if (r == 0 || r < 0) {
                    close(fd);
                }
            }
        }
    }
}
"""


def build_server(directory: Path) -> str:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise SystemExit("needs a C compiler (gcc) for the benchmark's server")
    source = directory / "server.c"
    source.write_text(SERVER_C)
    binary = directory / "server"
    subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], check=True)
    return str(binary)


def wrk(lab: netns_lab.NetnsLab, netns: str, url: str, seconds: int) -> float:
    result = lab.exec(netns, "wrk", "-t1", "-c32", f"-d{seconds}s", "-H", "Connection: close", url,
                      timeout=seconds + 30)
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if not match:
        raise SystemExit(f"wrk said: {result.stdout}{result.stderr}")
    errors = re.search(r"Socket errors: (.*)", result.stdout)
    if errors:
        print(f"    ({url}: socket errors {errors.group(1)})")
    return float(match.group(1))


def wait_listening(lab: netns_lab.NetnsLab, netns: str, port_number: int) -> None:
    deadline = time.monotonic() + 10
    while not lab.exec(netns, "ss", "-Hltn", f"sport = :{port_number}", check=False).stdout.strip():
        if time.monotonic() > deadline:
            raise SystemExit("the server did not listen")
        time.sleep(0.05)


async def program(lab: netns_lab.NetnsLab, server_ip: str, services: int) -> tuple[NftablesBackend, str]:
    tracker = ChangeTracker("lab-node")
    state = ProxyState()
    cluster_ip = "10.43.0.10"
    tracker.service_updated(service("bench", cluster_ip, [port("http", 80)]))
    tracker.slice_updated(endpoint_slice("bench", [endpoint(server_ip, node="lab-node")]))
    for i in range(services):
        tracker.service_updated(service(f"other{i}", f"10.43.{1 + i // 250}.{i % 250 + 1}"))
        tracker.slice_updated(endpoint_slice(f"other{i}", [endpoint(f"10.200.{i // 250}.{i % 250 + j}")
                                                           for j in range(1, 4)]))
    refresh(tracker, state)
    backend = NftablesBackend(Nft(netns=lab.node), table="pyb-bench-conn")
    config = RenderConfig(table="pyb-bench-conn", node_name="lab-node", cluster_cidr=str(lab.network),
                          nodeport_ips=(lab.node_ip,))
    await backend.sync(state, config, None)
    return backend, cluster_ip


def main(seconds: int, rounds: int, services: int) -> None:
    if netns_lab.available() or not shutil.which("wrk") or not Nft.available():
        raise SystemExit(f"cannot run: {netns_lab.available() or 'needs wrk and nft'}")
    with tempfile.TemporaryDirectory() as tmp, netns_lab.NetnsLab(f"pb{uuid.uuid4().hex[:5]}") as lab:
        server = build_server(Path(tmp))
        srv, cli = lab.add_pod("srv"), lab.add_pod("cli")
        # a short TIME_WAIT for the node's conntrack: a run opens ~100,000 connections
        lab.exec(lab.node, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1", check=False)
        lab.spawn(srv.netns, server, "8080")
        wait_listening(lab, srv.netns, 8080)
        backend, cluster_ip = asyncio.run(program(lab, srv.ip, services))
        direct_url, service_url = f"http://{srv.ip}:8080/", f"http://{cluster_ip}:80/"
        for url in (direct_url, service_url):  # warm up (and check both answer)
            if lab.http_get(cli.netns, url.split("/")[2].split(":")[0], int(url.split(":")[2].strip("/"))) != "ok":
                raise SystemExit(f"{url} does not answer")
        direct, through = [], []
        for _ in range(rounds):
            direct.append(wrk(lab, cli.netns, direct_url, seconds))
            through.append(wrk(lab, cli.netns, service_url, seconds))
        asyncio.run(backend.cleanup())
    d, s = statistics.median(direct), statistics.median(through)
    print(f"new TCP connections per second (wrk -t1 -c32, Connection: close, {seconds} s x {rounds}), "
          f"{services + 1} Services programmed")
    print(f"  pod IP directly:      {d:10.0f} /s   (runs: {', '.join(f'{v:.0f}' for v in direct)})")
    print(f"  through the ClusterIP:{s:10.0f} /s   (runs: {', '.join(f'{v:.0f}' for v in through)})")
    print(f"  ratio ClusterIP / direct: {s / d:.2f}   (target >= 0.8: {'met' if s / d >= 0.8 else 'NOT met'})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--services", type=int, default=200)
    args = parser.parse_args()
    main(args.seconds, args.rounds, args.services)
