"""Cluster DNS throughput and latency: dnsperf against the DnsService on loopback.

``pybernetes server`` (API server alone, fresh data dir) gets 1,000 Services in namespace
``bench`` (900 ClusterIP, 100 headless with a 5-endpoint EndpointSlice each); the DnsService
runs in its own process (uvloop, as the CLI runs it) on 127.0.0.1:<free port>.  ``dnsperf``
(one thread, 20 clients, 500 outstanding) replays a query file mixing A hits on ClusterIP
and headless services, SRV hits and NXDOMAINs for ``--seconds`` (default 20).  Figures:

- queries/s and dnsperf's average latency, lost queries;
- p50/p99 latency at a fixed rate (``--rate``, default 2,000 q/s for 5 s), from dnsperf's
  per-query report (-v), as dnsperf 2.10 prints no percentiles itself;
- reference in the same run: a bare asyncio DatagramProtocol (uvloop) answering every query
  with one pre-packed reply, driven by the same dnsperf; the ours/reference ratio.

Target (issue 6): >= 5,000 queries/s on one core.

Usage: .venv/bin/python bench/dns/bench_dns.py [--seconds 20] [--services 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import free_port, header, percentile, running_server  # noqa: E402

JSON = {"Content-Type": "application/json"}
NS = "bench"
ZONE = "cluster.local"


# -- the processes under test ----------------------------------------------------------------

def serve_dns(api_url: str, port: int) -> None:
    """Child process: the DnsService on 127.0.0.1:port until killed."""
    import logging

    import uvloop

    from pybernetes.client.kubeconfig import Config
    from pybernetes.client.rest import RestClient
    from pybernetes.dns.service import DnsOptions, DnsService

    logging.basicConfig(level=logging.ERROR)  # no upstreams on purpose: keep its warning quiet

    async def main() -> None:
        client = RestClient(Config(servers=[api_url]))
        service = DnsService(client, DnsOptions(listen=[("127.0.0.1", port)], metrics_port=None,
                                                upstreams=[], sync_timeout=60))
        await service.start()
        print("READY", service.records.service_count, flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


def serve_reference(port: int) -> None:
    """Child process: a bare DatagramProtocol answering one pre-packed reply (ID patched)."""
    import uvloop
    from dnslib import RR, A, DNSRecord

    reply = DNSRecord.question(f"svc-1.{NS}.svc.{ZONE}").reply()
    reply.add_answer(RR(f"svc-1.{NS}.svc.{ZONE}", rdata=A("10.43.0.1"), ttl=5))
    tail = bytes(reply.pack())[2:]

    class Proto:
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            self.transport.sendto(data[:2] + tail, addr)

        def error_received(self, exc):
            pass

        def connection_lost(self, exc):
            pass

    async def main() -> None:
        await asyncio.get_running_loop().create_datagram_endpoint(Proto, local_addr=("127.0.0.1", port))
        print("READY", flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


def spawn(args: list[str]) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()  # type: ignore[union-attr]
        if line.startswith("READY"):
            return process
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"{args[0]} did not start")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- load ---------------------------------------------------------------------------------------

async def create_objects(url: str, services: int) -> None:
    headless_every = 10
    async with aiohttp.ClientSession(url) as http:
        async with http.post("/api/v1/namespaces", data=orjson.dumps(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}), headers=JSON) as resp:
            assert resp.status in (201, 409), await resp.text()
        sem = asyncio.Semaphore(32)

        async def post(path: str, body: dict) -> None:
            async with sem, http.post(path, data=orjson.dumps(body), headers=JSON) as resp:
                assert resp.status == 201, await resp.text()

        async def one(i: int) -> None:
            name = f"svc-{i}"
            headless = i % headless_every == 0
            spec = {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
            if headless:
                spec["clusterIP"] = "None"
            await post(f"/api/v1/namespaces/{NS}/services",
                       {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
            if headless:
                await post(f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices", {
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}},
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": [f"10.42.{i % 250}.{j + 1}"], "hostname": f"{name}-{j}",
                                   "conditions": {"ready": True}} for j in range(5)],
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})

        await asyncio.gather(*(one(i) for i in range(services)))


def query_file(services: int, path: str, lines: int = 20000) -> None:
    rnd = random.Random(7)
    with open(path, "w") as f:
        for _ in range(lines):
            i = rnd.randrange(services)
            roll = rnd.random()
            if roll < 0.55:
                f.write(f"svc-{i}.{NS}.svc.{ZONE} A\n")
            elif roll < 0.65:
                f.write(f"svc-{rnd.randrange(0, services, 10)}.{NS}.svc.{ZONE} A\n")
            elif roll < 0.85:
                f.write(f"_http._tcp.svc-{i}.{NS}.svc.{ZONE} SRV\n")
            else:
                f.write(f"missing-{i}.{NS}.svc.{ZONE} A\n")


def dnsperf(port: int, datafile: str, seconds: int, *, rate: int | None = None) -> dict:
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", datafile, "-l", str(seconds),
           "-c", "20", "-T", "1", "-q", "500", "-t", "2"]
    if rate:
        cmd += ["-Q", str(rate), "-v"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result: dict = {"latencies": []}
    for key, pattern in (("sent", r"Queries sent:\s+(\d+)"), ("completed", r"Queries completed:\s+(\d+)"),
                         ("lost", r"Queries lost:\s+(\d+)"), ("qps", r"Queries per second:\s+([\d.]+)"),
                         ("avg", r"Average Latency \(s\):\s+([\d.]+)")):
        m = re.search(pattern, out)
        result[key] = float(m.group(1)) if m else float("nan")
    codes = re.search(r"Response codes:\s+(.*)", out)
    result["codes"] = codes.group(1).strip() if codes else "?"
    if rate:
        # "> NOERROR svc-1.bench.svc.cluster.local A 0.000123"
        result["latencies"] = [float(line.rsplit(None, 1)[1]) for line in out.splitlines()
                               if line.startswith(">") and re.match(r"^> \w+ .* [\d.]+$", line)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--serve-dns", nargs=2, metavar=("API_URL", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-reference", metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_dns:
        return serve_dns(args.serve_dns[0], int(args.serve_dns[1]))
    if args.serve_reference:
        return serve_reference(int(args.serve_reference))
    if shutil.which("dnsperf") is None:
        sys.exit("dnsperf is not installed")

    header(f"cluster DNS: {args.services} services, dnsperf {args.seconds}s (1 thread, 20 clients)")
    with running_server() as api, tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        asyncio.run(create_objects(api.url, args.services))
        print(f"created {args.services} services (+{args.services // 10} slices) in "
              f"{time.monotonic() - started:.1f}s", flush=True)
        datafile = os.path.join(tmp, "queries.txt")
        query_file(args.services, datafile)

        port = free_port()
        started = time.monotonic()
        dns = spawn(["--serve-dns", api.url, str(port)])
        print(f"DnsService synced and serving in {time.monotonic() - started:.2f}s", flush=True)
        try:
            ours = dnsperf(port, datafile, args.seconds)
            fixed = dnsperf(port, datafile, 5, rate=args.rate)
        finally:
            stop(dns)

        ref_port = free_port()
        reference = spawn(["--serve-reference", str(ref_port)])
        try:
            ref = dnsperf(ref_port, datafile, args.seconds)
        finally:
            stop(reference)

    lat = fixed["latencies"]
    print(f"ours      : {ours['qps']:9.0f} queries/s  avg {ours['avg'] * 1e3:.2f} ms  "
          f"lost {ours['lost']:.0f}/{ours['sent']:.0f}  ({ours['codes']})")
    print(f"at {args.rate}/s : p50 {percentile(lat, 50) * 1e3:.3f} ms  p99 {percentile(lat, 99) * 1e3:.3f} ms  "
          f"({len(lat)} answers, lost {fixed['lost']:.0f})")
    print(f"reference : {ref['qps']:9.0f} queries/s  avg {ref['avg'] * 1e3:.2f} ms  (bare DatagramProtocol, "
          "one pre-packed reply)")
    print(f"ratio ours/reference: {ours['qps'] / ref['qps']:.2f}   target >= 5,000 queries/s: "
          f"{'met' if ours['qps'] >= 5000 else 'NOT met'}")


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    main()
