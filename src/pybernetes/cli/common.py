"""What the ``pybernetes`` commands share: flag types, reaching the API server, and running a
component until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/pybernetes")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pybernetes"


def duration(text: str) -> float:
    """``15s``, ``1m``, ``500ms`` or plain seconds."""
    text = text.strip()
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * scale
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 15s, 1m)") from None


def boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--server", metavar="URL", help="the API server (instead of a kubeconfig)")
    target.add_argument("--kubeconfig", metavar="FILE", help="default: $KUBECONFIG or ~/.kube/config")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error", "critical"))


def client_config(args: argparse.Namespace, component: str) -> Any:
    from pybernetes.client.kubeconfig import Config, load_config, load_kubeconfig

    if getattr(args, "server", None):
        config = Config(servers=[args.server])
    else:
        config = load_kubeconfig(args.kubeconfig) if args.kubeconfig else load_config()
    config.user_agent = f"pybernetes-{component}"
    return config


def serve_until_signalled(component: Any, client_config: Any, build: Any) -> int:
    """Run ``build(client)``'s component (start, then stop on SIGTERM/SIGINT) under uvloop."""
    import signal

    import uvloop

    from pybernetes.client.component import wait_for_api
    from pybernetes.client.rest import RestClient

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with RestClient(client_config) as client:
            await wait_for_api(client)
            running = build(client)
            await running.start()
            try:
                await stop.wait()
            finally:
                await running.stop()
        return 0

    return uvloop.run(main())


