"""The ``pybernetes`` command: ``server`` runs the control plane, ``up`` the whole cluster,
``controller-manager`` and ``scheduler`` one component each.

``pybernetes server --data-dir DIR --port PORT`` keeps its store under DIR (default
/var/lib/pybernetes as root, else ~/.local/share/pybernetes), listens on 127.0.0.1 only
(until the security issue adds TLS and credentials), writes the admin kubeconfig to
DIR/kubeconfig.yaml and prints how to point kubectl at it; once the API server listens it
starts ``pybernetes controller-manager`` and ``pybernetes scheduler`` as supervised child
processes (restarted if they exit, stopped before the server).  ``pybernetes up`` takes the
same flags and also supervises a node agent (``--disable-agent``: none).

``pybernetes agent --server URL | --kubeconfig FILE`` is the node agent (cli/agent.py), which
also runs the node's ``pybernetes proxy`` and ``pybernetes dns`` (cli/network.py).

``pybernetes controller-manager --kubeconfig FILE`` runs the controllers under leader
election (the flags follow kube-controller-manager's: ``--controllers``, ``--leader-elect*``,
``--kube-api-qps``, ``--cluster-cidr`` ...) and exits 1 when it loses the lease;
``pybernetes scheduler --kubeconfig FILE [--config FILE]`` does the same for the scheduler.

``pybernetes image import FILE | pull REF | ls | rm REF [--data-dir DIR]`` manages the node's image store
in DIR/images (kubelet/runtime/images.py); exit 1 with a message on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

import yaml

from pybernetes.cli.agent import add_agent_flags, run_agent
from pybernetes.cli.common import boolean, default_data_dir, duration
from pybernetes.cli.network import add_dns_flags, add_proxy_flags, run_dns, run_proxy
from pybernetes.cli.supervise import Supervised, python_command

LISTEN_HOST = "127.0.0.1"
DEFAULT_PORT = 6443
KUBECONFIG_FILE = "kubeconfig.yaml"


def admin_kubeconfig(server_url: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": "pybernetes", "cluster": {"server": server_url}}],
        "users": [{"name": "pybernetes-admin", "user": {}}],
        "contexts": [{"name": "pybernetes", "context": {"cluster": "pybernetes", "user": "pybernetes-admin",
                                                          "namespace": "default"}}],
        "current-context": "pybernetes",
    }


def write_kubeconfig(data_dir: Path, host: str, port: int) -> Path:
    path = data_dir / KUBECONFIG_FILE
    text = yaml.safe_dump(admin_kubeconfig(f"http://{host}:{port}"), sort_keys=False)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)
    return path


def _add_server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the store and the admin kubeconfig live "
                             "(default: /var/lib/pybernetes as root, else ~/.local/share/pybernetes)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="API server port (default 6443)")
    parser.add_argument("--storage", choices=("sqlite", "memory"), default="sqlite",
                        help="sqlite: DATA_DIR/state.db (default); memory: nothing kept")
    parser.add_argument("--service-cidr", default="10.43.0.0/16", help="ClusterIP range of Services")
    parser.add_argument("--log-level", default="info",
                        choices=("debug", "info", "warning", "error", "critical"))
    parser.add_argument("--disable-controller-manager", action="store_true",
                        help="do not start the controller manager")
    parser.add_argument("--disable-scheduler", action="store_true", help="do not start the scheduler")
    parser.add_argument("--scheduler-config", type=Path, default=None,
                        help="a KubeSchedulerConfiguration file for the scheduler")
    parser.add_argument("--controllers", default="*",
                        help="controllers the controller manager runs (default *: all)")
    parser.add_argument("--service-lb-pool", default="",
                        help="addresses for LoadBalancer Services (CIDRs, a.b.c.d-a.b.c.e ranges; "
                             "default: the nodes' addresses)")


def _workers(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        name, sep, count = item.partition("=")
        if not sep or not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(f"invalid worker count {item!r} (want name=N, N >= 1)")
        out[name] = int(count)
    return out


def _add_controller_manager_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, default=None,
                        help="kubeconfig of the API server (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--controllers", default="*",
                        help="comma-separated: * for all, NAME to add, -NAME to leave out")
    parser.add_argument("--workers", type=_workers, default={},
                        help="worker counts per controller, e.g. deployment=10,replicaset=10")
    parser.add_argument("--leader-elect", type=boolean, default=True, metavar="BOOL")
    parser.add_argument("--leader-elect-lease-duration", type=duration, default=15.0, metavar="DURATION")
    parser.add_argument("--leader-elect-renew-deadline", type=duration, default=10.0, metavar="DURATION")
    parser.add_argument("--leader-elect-retry-period", type=duration, default=2.0, metavar="DURATION")
    parser.add_argument("--leader-elect-identity", default="", help="default: hostname_uuid")
    parser.add_argument("--kube-api-qps", type=float, default=1000.0)
    parser.add_argument("--kube-api-burst", type=int, default=2000)
    parser.add_argument("--cluster-cidr", default="10.42.0.0/16", help="pod addresses (node IPAM)")
    parser.add_argument("--node-cidr-mask-size", type=int, default=24)
    parser.add_argument("--terminated-pod-gc-threshold", type=int, default=12500)
    parser.add_argument("--local-path-dir", default="/var/lib/pybernetes/storage",
                        help="where the local-path provisioner puts volumes on the nodes")
    parser.add_argument("--service-lb-pool", default="",
                        help="addresses for LoadBalancer Services: CIDRs and a.b.c.d-a.b.c.e ranges, "
                             "comma-separated (default: the nodes' addresses, as k3s's ServiceLB)")
    parser.add_argument("--log-level", default="info",
                        choices=("debug", "info", "warning", "error", "critical"))


def _add_scheduler_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, default=None,
                        help="kubeconfig of the API server (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--config", type=Path, default=None,
                        help="a KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1) file")
    parser.add_argument("--leader-elect", type=boolean, default=None, metavar="BOOL",
                        help="default: the configuration's leaderElection.leaderElect (true)")
    parser.add_argument("--leader-elect-identity", default="", help="default: hostname_uuid")
    parser.add_argument("--metrics-port", type=int, default=10259,
                        help="/metrics, /healthz and /readyz on 127.0.0.1 (0: none)")
    parser.add_argument("--kube-api-qps", type=float, default=2000.0)
    parser.add_argument("--kube-api-burst", type=int, default=4000)
    parser.add_argument("--log-level", default="info",
                        choices=("debug", "info", "warning", "error", "critical"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pybernetes", description="Kubernetes, written in Python")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server = commands.add_parser("server", help="run the API server on the embedded store")
    _add_server_flags(server)
    up = commands.add_parser("up", help="run the cluster on this machine: the control plane and a node agent")
    _add_server_flags(up)
    up.add_argument("--disable-agent", action="store_true", help="do not start the node agent")
    add_agent_flags(up, standalone=False)
    cm = commands.add_parser("controller-manager", help="run the controllers under leader election")
    _add_controller_manager_flags(cm)
    sched = commands.add_parser("scheduler", help="run the scheduler under leader election")
    _add_scheduler_flags(sched)
    _add_image_commands(commands)
    agent = commands.add_parser("agent", help="run the node agent (kubelet): register this node and run its pods")
    add_agent_flags(agent, standalone=True)
    dns = commands.add_parser("dns", help="run a cluster DNS server (the agent runs one on each node)")
    add_dns_flags(dns)
    proxy = commands.add_parser("proxy", help="run the node's service proxy and NetworkPolicy enforcer "
                                              "(nftables; the agent runs one on each node)")
    add_proxy_flags(proxy)
    return parser


def _add_image_commands(commands: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=None,
                        help="the node's data directory; images live in DATA_DIR/images "
                             "(default: /var/lib/pybernetes as root, else ~/.local/share/pybernetes)")
    image = commands.add_parser("image", help="manage the node's image store (import, pull, ls, rm)")
    actions = image.add_subparsers(dest="image_command", required=True, metavar="ACTION")
    imp = actions.add_parser("import", parents=[common],
                             help="import a docker-archive (docker save) or OCI-layout tarball")
    imp.add_argument("file", type=Path)
    pull = actions.add_parser("pull", parents=[common],
                              help="pull an image from its registry (mirrors and credentials from "
                                   "DATA_DIR/registries.yaml)")
    pull.add_argument("ref", help="an image reference: busybox, registry:5000/app:1, name@sha256:...")
    pull.add_argument("--insecure", action="store_true",
                      help="the image's registry may use plain HTTP or an unverified certificate")
    pull.add_argument("--creds", metavar="USER[:PASSWORD]", default=None,
                      help="credentials for the image's registry (PASSWORD from $REGISTRY_PASSWORD if left out)")
    actions.add_parser("ls", parents=[common], help="list images")
    rm = actions.add_parser("rm", parents=[common], help="remove an image reference (or an image by id)")
    rm.add_argument("ref")


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.3g}{unit}"
        value /= 1000
    return f"{size}B"


def run_image(args: argparse.Namespace) -> int:
    from pybernetes.kubelet.runtime.images import ImageStore
    from pybernetes.kubelet.runtime.protocol import RuntimeError_
    from pybernetes.kubelet.runtime.registry import load_config, pull, registry_host
    from pybernetes.kubelet.runtime.registry_config import RegistryConfigError

    data_dir: Path = (args.data_dir or default_data_dir()).expanduser().resolve()
    try:
        store = ImageStore(data_dir / "images")
        if args.image_command == "import":
            for image in store.import_archive(args.file):
                for tag in image.repo_tags or [image.id]:
                    print(tag)
        elif args.image_command == "pull":
            config = load_config(data_dir)
            if args.insecure:
                config = config.with_insecure(registry_host(args.ref))
            auth = None
            if args.creds is not None:
                user, sep, password = args.creds.partition(":")
                auth = {"username": user, "password": password if sep else os.environ.get("REGISTRY_PASSWORD", "")}
            image = asyncio.run(pull(store, args.ref, auth=auth, config=config))
            for name in image.repo_tags + image.repo_digests:
                print(name)
            print(f"image id {image.id}, {_human_size(image.size)}")
        elif args.image_command == "ls":
            rows = [("REPOSITORY:TAG", "IMAGE ID", "SIZE")]
            for image in store.list():
                for tag in image.repo_tags or ["<none>:<none>"]:
                    rows.append((tag, image.id.removeprefix("sha256:")[:12], _human_size(image.size)))
            width = max(len(row[0]) for row in rows)
            for row in rows:
                print(f"{row[0]:<{width}}   {row[1]:<12}   {row[2]}")
        else:
            store.remove(args.ref)
            print(f"Untagged: {args.ref}")
    except (RuntimeError_, RegistryConfigError, OSError) as exc:
        print(f"pybernetes image {args.image_command}: {exc}", file=sys.stderr)
        return 1
    return 0


def run_scheduler(args: argparse.Namespace) -> int:
    import uvloop

    from pybernetes.client.component import LeaderElection, run_leader_elected
    from pybernetes.client.kubeconfig import ConfigError, load_config, load_kubeconfig
    from pybernetes.client.rest import RestClient
    from pybernetes.scheduler.config import ConfigError as SchedulerConfigError
    from pybernetes.scheduler.config import default_config
    from pybernetes.scheduler.config import load_config as load_scheduler_config
    from pybernetes.scheduler.service import SchedulerService

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        sched_config = load_scheduler_config(args.config) if args.config else default_config()
        config = load_kubeconfig(args.kubeconfig) if args.kubeconfig else load_config()
    except (SchedulerConfigError, ConfigError, OSError, ImportError, ValueError) as exc:
        print(f"pybernetes scheduler: {exc}", file=sys.stderr)
        return 2
    config.qps, config.burst = args.kube_api_qps, args.kube_api_burst
    config.user_agent = "pybernetes-scheduler"
    le = sched_config.leader_election
    election = LeaderElection(enabled=le.leader_elect if args.leader_elect is None else args.leader_elect,
                              name=le.resource_name, namespace=le.resource_namespace,
                              lease_duration=le.lease_duration, renew_deadline=le.renew_deadline,
                              retry_period=le.retry_period, identity=args.leader_elect_identity)

    async def main() -> int:
        client = RestClient(config)
        try:
            service = SchedulerService(client, sched_config, metrics_port=args.metrics_port)
            await service.serve()  # a standby answers /metrics and /healthz too
            try:
                return await run_leader_elected(client, service, election)
            finally:
                await service.close()
        finally:
            await client.close()

    return uvloop.run(main())


def run_controller_manager(args: argparse.Namespace) -> int:
    import uvloop

    from pybernetes.client.component import LeaderElection, run_leader_elected
    from pybernetes.client.kubeconfig import ConfigError, load_config, load_kubeconfig
    from pybernetes.client.rest import RestClient
    from pybernetes.controllers import registry
    from pybernetes.controllers.manager import LEASE_NAME, LEASE_NAMESPACE, ControllerManager

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        names = registry.select(args.controllers)
        for name in names:  # a broken install fails here, not after winning the lease
            registry.load(name)
        if args.service_lb_pool:  # so does a bad pool
            from pybernetes.controllers.servicelb_core import parse_pool

            parse_pool(args.service_lb_pool)
        config = load_kubeconfig(args.kubeconfig) if args.kubeconfig else load_config()
    except (ValueError, ConfigError, OSError, ImportError) as exc:
        print(f"pybernetes controller-manager: {exc}", file=sys.stderr)
        return 2
    unknown = sorted(set(args.workers) - set(registry.CONTROLLERS))
    if unknown:
        print(f"pybernetes controller-manager: --workers names unknown controllers: {', '.join(unknown)}",
              file=sys.stderr)
        return 2
    config.qps, config.burst = args.kube_api_qps, args.kube_api_burst
    config.user_agent = "pybernetes-controller-manager"
    election = LeaderElection(enabled=args.leader_elect, name=LEASE_NAME, namespace=LEASE_NAMESPACE,
                              lease_duration=args.leader_elect_lease_duration,
                              renew_deadline=args.leader_elect_renew_deadline,
                              retry_period=args.leader_elect_retry_period,
                              identity=args.leader_elect_identity)
    if election.enabled and not (election.lease_duration > election.renew_deadline
                                 > 1.2 * election.retry_period):
        print("pybernetes controller-manager: need lease duration > renew deadline > 1.2 x retry period",
              file=sys.stderr)
        return 2
    options = {"cluster_cidr": args.cluster_cidr, "node_cidr_mask_size": args.node_cidr_mask_size,
               "terminated_pod_gc_threshold": args.terminated_pod_gc_threshold,
               "local_path_dir": args.local_path_dir, "service_lb_pool": args.service_lb_pool}

    async def main() -> int:
        client = RestClient(config)
        try:
            manager = ControllerManager(client, names, workers=args.workers, options=options)
            return await run_leader_elected(client, manager, election)
        finally:
            await client.close()

    return uvloop.run(main())


def run_api_server(args: argparse.Namespace) -> int:
    import uvloop

    from pybernetes.apiserver.app import ServerConfig, run_server

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_dir: Path = (args.data_dir or default_data_dir()).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not 0 < args.port < 65536:
        print(f"pybernetes: invalid port {args.port}", file=sys.stderr)
        return 2
    kubeconfig = write_kubeconfig(data_dir, LISTEN_HOST, args.port)
    config = ServerConfig(data_dir=data_dir, host=LISTEN_HOST, port=args.port, storage=args.storage,
                          service_cidr=args.service_cidr)
    print(f"pybernetes API server: http://{LISTEN_HOST}:{args.port} (data in {data_dir})", flush=True)
    print(f"  export KUBECONFIG={kubeconfig}", flush=True)
    print("  kubectl get namespaces", flush=True)
    children: list[Supervised] = []
    if not args.disable_controller_manager:
        children.append(Supervised("controller-manager", python_command(
            "controller-manager", "--kubeconfig", str(kubeconfig), "--controllers", args.controllers,
            "--log-level", args.log_level, "--local-path-dir", str(data_dir / "storage"),
            *(["--service-lb-pool", args.service_lb_pool] if args.service_lb_pool else []))))
    if not args.disable_scheduler:
        extra = ["--config", str(args.scheduler_config)] if args.scheduler_config else []
        children.append(Supervised("scheduler", python_command(
            "scheduler", "--kubeconfig", str(kubeconfig), "--log-level", args.log_level, *extra)))

    if args.command == "up" and not args.disable_agent:
        agent_args = ["--kubeconfig", str(kubeconfig), "--data-dir", str(data_dir), "--runtime", args.runtime,
                      "--kubelet-port", str(args.kubelet_port), "--log-level", args.log_level]
        # all in one on this machine: the node's address is the API server's (loopback), so the
        # kubelet's server and the API server's pods/log proxy stay on it
        for flag, value in (("--node-name", args.node_name), ("--node-ip", args.node_ip or LISTEN_HOST),
                            ("--pod-cidr", args.pod_cidr), ("--cni-bridge", args.cni_bridge),
                            ("--cluster-dns", args.cluster_dns), ("--cluster-domain", args.cluster_domain),
                            ("--proxy-cluster-cidr", args.proxy_cluster_cidr),
                            ("--proxy-metrics-port", str(args.proxy_metrics_port)),
                            ("--proxy-healthz-port", str(args.proxy_healthz_port)),
                            ("--dns-metrics-port", str(args.dns_metrics_port))):
            if value:
                agent_args += [flag, value]
        agent_args += [flag for flag, on in (("--disable-proxy", args.disable_proxy),
                                             ("--disable-dns", args.disable_dns)) if on]
        children.append(Supervised("agent", python_command("agent", *agent_args)))

    async def stop_children() -> None:
        for child in reversed(children):
            await child.stop()

    async def serve() -> None:
        ready = asyncio.Event()
        server = asyncio.create_task(run_server(config, ready=ready, before_shutdown=stop_children),
                                     name="api-server")
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({server, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        try:
            if ready.is_set():
                for child in children:
                    child.start()
            await server
        finally:
            await stop_children()  # already stopped unless the server failed

    try:
        uvloop.run(serve())
    except OSError as exc:
        print(f"pybernetes: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command in ("server", "up"):
        raise SystemExit(run_api_server(args))
    if args.command == "controller-manager":
        raise SystemExit(run_controller_manager(args))
    if args.command == "scheduler":
        raise SystemExit(run_scheduler(args))
    if args.command == "image":
        raise SystemExit(run_image(args))
    if args.command == "agent":
        raise SystemExit(run_agent(args))
    if args.command == "dns":
        raise SystemExit(run_dns(args))
    if args.command == "proxy":
        raise SystemExit(run_proxy(args))
    raise SystemExit(2)


if __name__ == "__main__":
    main()
