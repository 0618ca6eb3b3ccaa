"""The ``pybernetes`` command: ``server`` runs the API server, ``up`` the whole cluster.

``pybernetes server --data-dir DIR --port PORT`` keeps its store under DIR (default
/var/lib/pybernetes as root, else ~/.local/share/pybernetes), listens on 127.0.0.1 only
(until the security issue adds TLS and credentials), writes the admin kubeconfig to
DIR/kubeconfig.yaml and prints how to point kubectl at it.  ``pybernetes up`` takes the same
flags; for now it runs the API server on the embedded store, later it supervises the
control-plane and node processes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import yaml

LISTEN_HOST = "127.0.0.1"
DEFAULT_PORT = 6443
KUBECONFIG_FILE = "kubeconfig.yaml"


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/pybernetes")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pybernetes"


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pybernetes", description="Kubernetes, written in Python")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server = commands.add_parser("server", help="run the API server on the embedded store")
    _add_server_flags(server)
    up = commands.add_parser("up", help="run the cluster on this machine (for now: the API server)")
    _add_server_flags(up)
    return parser


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
    try:
        uvloop.run(run_server(config))
    except OSError as exc:
        print(f"pybernetes: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command in ("server", "up"):
        raise SystemExit(run_api_server(args))
    raise SystemExit(2)


if __name__ == "__main__":
    main()
