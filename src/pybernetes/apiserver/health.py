"""Health endpoints: /healthz, /livez, /readyz, as the upstream API server answers them.

Owns the routes and their plain-text output: ``ok``; with ``?verbose`` one ``[+]name ok``
line per check and ``<endpoint> check passed``; a failing check gives 500 with
``[-]name failed: reason withheld`` lines and ``<endpoint> check failed``;
``?exclude=name`` skips a check; ``/readyz/<name>`` runs one check.  Checks are callables
returning a bool (or an awaitable of one); raising counts as failing.  ``ping`` is always
present and always passes.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence

import orjson
from aiohttp import web

log = logging.getLogger(__name__)

Check = Callable[[], bool | Awaitable[bool]]
ENDPOINTS = ("healthz", "livez", "readyz")
_HEADERS = {"X-Content-Type-Options": "nosniff"}
_NOT_FOUND = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "the server could not find the requested resource",
    "reason": "NotFound",
    "details": {},
    "code": 404,
}


def _ping() -> bool:
    return True


async def run_check(check: Check) -> tuple[bool, str]:
    """(passed, error text) for one check; exceptions are failures, never propagated."""
    try:
        result = check()
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # a broken check means "not healthy", not a crashed endpoint
        log.warning("health check raised: %r", exc)
        return False, str(exc) or type(exc).__name__
    if result:
        return True, ""
    return False, "check failed"


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=body, status=status, content_type="text/plain", charset="utf-8", headers=_HEADERS
    )


def _truthy_flag(request: web.Request, name: str) -> bool:
    if name not in request.query:
        return False
    return request.query.get(name, "").lower() not in ("false", "0")


class HealthEndpoint:
    """One of /healthz, /livez, /readyz with its named checks."""

    def __init__(self, name: str, checks: Sequence[tuple[str, Check]]) -> None:
        self.name = name
        self.checks: dict[str, Check] = {"ping": _ping}
        for check_name, check in checks:
            self.checks[check_name] = check

    async def all_checks(self, request: web.Request) -> web.Response:
        verbose = _truthy_flag(request, "verbose")
        excluded = set()
        for value in request.query.getall("exclude", []):
            excluded.update(v.strip() for v in value.split(",") if v.strip())
        lines: list[str] = []
        failed = False
        for check_name, check in self.checks.items():
            if check_name in excluded:
                lines.append(f"[+]{check_name} excluded: ok")
                excluded.discard(check_name)
                continue
            passed, _error = await run_check(check)
            if passed:
                lines.append(f"[+]{check_name} ok")
            else:
                failed = True
                lines.append(f"[-]{check_name} failed: reason withheld")
        if excluded:
            names = ", ".join(f'"{n}"' for n in sorted(excluded))
            lines.append(f"warn: some health checks cannot be excluded: no matches for {names}")
        if failed:
            log.info("%s check failed: %s", self.name, "; ".join(lines))
            return _text("\n".join(lines) + f"\n{self.name} check failed\n", 500)
        if not verbose:
            return _text("ok")
        return _text("\n".join(lines) + f"\n{self.name} check passed\n")

    async def one_check(self, request: web.Request) -> web.Response:
        check_name = request.match_info["check"]
        check = self.checks.get(check_name)
        if check is None:
            return web.Response(body=orjson.dumps(_NOT_FOUND), status=404, content_type="application/json")
        passed, error = await run_check(check)
        if passed:
            return _text("ok")
        return _text(f"internal server error: {error}\n", 500)


def add_routes(
    app: web.Application,
    checks: Sequence[tuple[str, Check]],
    *,
    readyz_only: Collection[str] = (),
) -> dict[str, HealthEndpoint]:
    """Serve /healthz, /livez and /readyz (and /<endpoint>/<check>) on ``app``.

    Every check runs for all three endpoints, except those named in ``readyz_only`` which
    only /readyz runs (upstream's informer-sync, shutdown).  Returns the endpoints by name.
    """
    endpoints: dict[str, HealthEndpoint] = {}
    for name in ENDPOINTS:
        selected = [c for c in checks if name == "readyz" or c[0] not in readyz_only]
        endpoint = HealthEndpoint(name, selected)
        endpoints[name] = endpoint
        app.router.add_get(f"/{name}", endpoint.all_checks)
        app.router.add_get(f"/{name}/{{check}}", endpoint.one_check)
    return endpoints
