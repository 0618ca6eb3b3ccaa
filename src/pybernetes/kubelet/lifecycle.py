"""Container lifecycle hooks (postStart, preStop) as upstream kubelet runs them: ``exec`` in
the container through the runtime, ``httpGet`` against the pod (host defaults to the pod's
IP, named ports resolve against the container's ports), ``sleep`` for the given seconds.  A hook
returns an error message ("" when it succeeded); the caller decides what a failure means (a
failed postStart kills the container, a failed preStop is only reported).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from pybernetes.kubelet.runtime.protocol import Runtime, RuntimeError_

Obj = dict[str, Any]
HOOK_OUTPUT_LIMIT = 10 * 1024


def resolve_port(port: Any, container: Obj) -> int | None:
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    return None


async def run_hook(handler: Obj, *, runtime: Runtime, container_id: str, container: Obj, pod_ip: str,
                   limit_seconds: float) -> str:
    """Run one lifecycle handler; "" on success, else why it failed."""
    try:
        if handler.get("exec"):
            command = list((handler["exec"] or {}).get("command") or [])
            result = await runtime.exec_sync(container_id, command, limit_seconds)
            if result.exit_code != 0:
                output = (result.stdout + result.stderr)[:HOOK_OUTPUT_LIMIT].decode("utf-8", "replace")
                return f"command '{' '.join(command)}' exited with {result.exit_code}: {output}"
            return ""
        if handler.get("httpGet"):
            return await _http_get(handler["httpGet"], container, pod_ip, limit_seconds)
        if handler.get("sleep"):
            await asyncio.sleep(max(0, int((handler["sleep"] or {}).get("seconds") or 0)))
            return ""
        if handler.get("tcpSocket"):
            return "tcpSocket is not a supported lifecycle handler"
        return "no handler given"
    except RuntimeError_ as exc:
        return exc.message
    except TimeoutError:
        return f"hook did not finish within {limit_seconds:g}s"


async def _http_get(action: Obj, container: Obj, pod_ip: str, limit_seconds: float) -> str:
    port = resolve_port(action.get("port"), container)
    if port is None:
        return f"unknown port {action.get('port')!r}"
    host = action.get("host") or pod_ip or "127.0.0.1"
    scheme = str(action.get("scheme") or "HTTP").lower()
    path = action.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    headers = {h.get("name", ""): h.get("value", "") for h in action.get("httpHeaders") or []}
    url = f"{scheme}://{host}:{port}{path}"
    timeout = aiohttp.ClientTimeout(total=limit_seconds)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(url, headers=headers, ssl=False) as response:
            await response.read()
            if response.status >= 400:
                return f"HTTP lifecycle hook ({path}) for Container \"{container.get('name')}\" failed - " \
                       f"error: <nil>, message: \"\" (status {response.status})"
            return ""
    except (aiohttp.ClientError, OSError) as exc:
        return f"Get \"{url}\": {exc}"
