"""Typed client errors built from the metav1 Status the API server answers with.

``ApiError`` carries code, reason, message, details and the Status itself; a subclass per
common reason (NotFound, AlreadyExists, Conflict, Invalid, Expired, TooManyRequests ...) so
callers can ``except NotFound``.  ``from_response`` makes one from an HTTP status and body
(a Status when the body is one, else a Status synthesised from the code as client-go does).
"""

from __future__ import annotations

from typing import Any

import orjson


class ApiError(Exception):
    """An API call answered with a failure Status."""

    def __init__(self, code: int, reason: str, message: str,
                 details: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}
        self.status = status or {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                 "status": "Failure", "code": code, "reason": reason,
                                 "message": message}

    @property
    def retry_after(self) -> float | None:
        value = self.details.get("retryAfterSeconds")
        return float(value) if isinstance(value, int | float) and value > 0 else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.reason!r}, {self.message!r})"


class BadRequest(ApiError): ...
class Unauthorized(ApiError): ...
class Forbidden(ApiError): ...
class NotFound(ApiError): ...
class MethodNotAllowed(ApiError): ...
class AlreadyExists(ApiError): ...
class Conflict(ApiError): ...
class Expired(ApiError):
    """410: a resourceVersion (or continue token) older than the server keeps."""
class Invalid(ApiError): ...
class TooManyRequests(ApiError): ...
class InternalError(ApiError): ...
class ServiceUnavailable(ApiError): ...
class ServerTimeout(ApiError): ...


_BY_REASON: dict[str, type[ApiError]] = {
    "BadRequest": BadRequest, "Unauthorized": Unauthorized, "Forbidden": Forbidden,
    "NotFound": NotFound, "MethodNotAllowed": MethodNotAllowed,
    "AlreadyExists": AlreadyExists, "Conflict": Conflict, "Expired": Expired, "Gone": Expired,
    "Invalid": Invalid, "TooManyRequests": TooManyRequests, "InternalError": InternalError,
    "ServiceUnavailable": ServiceUnavailable, "Timeout": ServerTimeout,
    "ServerTimeout": ServerTimeout,
}
_BY_CODE: dict[int, tuple[str, type[ApiError]]] = {
    400: ("BadRequest", BadRequest), 401: ("Unauthorized", Unauthorized),
    403: ("Forbidden", Forbidden), 404: ("NotFound", NotFound),
    405: ("MethodNotAllowed", MethodNotAllowed), 409: ("Conflict", Conflict),
    410: ("Expired", Expired), 422: ("Invalid", Invalid),
    429: ("TooManyRequests", TooManyRequests), 500: ("InternalError", InternalError),
    503: ("ServiceUnavailable", ServiceUnavailable), 504: ("Timeout", ServerTimeout),
}


def from_status(status: dict[str, Any], code: int | None = None) -> ApiError:
    """The error a failure Status stands for (``code`` when the Status has none)."""
    code = int(status.get("code") or code or 500)
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or "")
    details = status.get("details") if isinstance(status.get("details"), dict) else None
    cls = _BY_REASON.get(reason)
    if cls is None:
        default_reason, cls = _BY_CODE.get(code, ("", ApiError))
        reason = reason or default_reason
    if cls is Conflict and code == 409 and reason == "AlreadyExists":
        cls = AlreadyExists
    return cls(code, reason, message or f"the server responded with status {code}", details, status)


def from_response(code: int, body: bytes, retry_after: float | None = None) -> ApiError:
    """The error of a non-2xx response: its Status, or one made up from the code."""
    status: dict[str, Any] | None = None
    try:
        decoded = orjson.loads(body) if body else None
        if isinstance(decoded, dict) and decoded.get("kind") == "Status":
            status = decoded
    except orjson.JSONDecodeError:
        pass
    if status is None:
        reason = _BY_CODE.get(code, ("", ApiError))[0]
        text = body.decode("utf-8", "replace").strip()[:512]
        message = text or f"the server responded with status {code}"
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "code": code, "reason": reason, "message": message}
    if retry_after is not None:
        details = dict(status.get("details") or {})
        details.setdefault("retryAfterSeconds", int(retry_after))
        status = {**status, "details": details}
    return from_status(status, code)


class ConnectionFailed(ConnectionError):
    """No API server could be reached (after the retries the client makes)."""
