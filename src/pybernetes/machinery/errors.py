"""Errors as metav1 Status objects.

Every failure that reaches a client is a ``StatusError``: an HTTP code, an upstream
``reason`` and a message worded as upstream words it, plus optional details (name, group,
kind, causes).  ``FieldError`` is one entry of a validation failure (upstream's
``field.Error``); ``invalid()`` turns a list of them into a 422 with causes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


class StatusError(Exception):
    """An error that the API server answers with a metav1 Status."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status

    def __repr__(self) -> str:
        return f"StatusError({self.code}, {self.reason!r}, {self.message!r})"


def _details(name: str | None, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    details.update({k: v for k, v in extra.items() if v})
    return details


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    """``pods "x" not found`` (resource is the plural, lower-case resource name)."""
    return StatusError(
        404,
        "NotFound",
        f'{_qualified(resource, group)} "{name}" not found',
        _details(name, group, resource),
    )


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{_qualified(resource, group)} "{name}" already exists',
        _details(name, group, resource),
    )


def conflict(resource: str, name: str, detail: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {detail}',
        _details(name, group, resource),
    )


MODIFIED_CONFLICT = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def invalid(kind: str, name: str, errors: list[FieldError], group: str = "") -> StatusError:
    """422 Invalid: ``Pod "x" is invalid: spec.containers: Required value``; with a group the
    kind is qualified as upstream prints it (``Deployment.apps "x" is invalid: ...``)."""
    messages = [e.error_text() for e in errors]
    if len(messages) == 1:
        summary = messages[0]
    else:
        summary = "[" + ", ".join(messages) + "]"
    return StatusError(
        422,
        "Invalid",
        f'{_qualified(kind, group)} "{name}" is invalid: {summary}',
        _details(name, group, kind, causes=[e.cause() for e in errors]),
    )


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> StatusError:
    return StatusError(401, "Unauthorized", message)


def forbidden(message: str) -> StatusError:
    return StatusError(403, "Forbidden", message)


def method_not_allowed(message: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def not_acceptable(message: str) -> StatusError:
    return StatusError(406, "NotAcceptable", message)


def expired(message: str) -> StatusError:
    """410 Expired: a resourceVersion or continue token that is too old."""
    return StatusError(410, "Expired", message)


def gone(message: str) -> StatusError:
    return StatusError(410, "Gone", message)


def request_entity_too_large(message: str) -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", message)


def unsupported_media_type(message: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", message)


def too_many_requests(message: str, retry_after: int = 1) -> StatusError:
    return StatusError(429, "TooManyRequests", message, {"retryAfterSeconds": retry_after})


def internal_error(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def service_unavailable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)


def timeout(message: str) -> StatusError:
    return StatusError(504, "Timeout", message)


# ---------------------------------------------------------------------------------------
# Field errors (upstream k8s.io/apimachinery/pkg/util/validation/field)
# ---------------------------------------------------------------------------------------

_TYPE_TEXT = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}

# Types whose text shows the offending value (as upstream's field.Error.ErrorBody does).
_SHOWS_VALUE = {
    "FieldValueNotFound",
    "FieldValueDuplicate",
    "FieldValueInvalid",
    "FieldValueNotSupported",
    "FieldValueTypeInvalid",
}

_OMIT = object()


def _render_value(value: Any) -> str:
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


@dataclass(slots=True)
class FieldError:
    """One validation failure at a field path such as ``spec.containers[0].name``."""

    type: str
    field: str
    detail: str = ""
    value: Any = _OMIT

    def body(self) -> str:
        text = _TYPE_TEXT.get(self.type, self.type)
        if self.type in _SHOWS_VALUE and self.value is not _OMIT:
            text = f"{text}: {_render_value(self.value)}"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text

    def error_text(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> dict[str, str]:
        return {"reason": self.type, "message": self.body(), "field": self.field}


def required(field: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", field, detail)


def invalid_value(field: str, value: Any, detail: str = "") -> FieldError:
    return FieldError("FieldValueInvalid", field, detail, value)


def not_supported(field: str, value: Any, valid: list[str] | tuple[str, ...] = ()) -> FieldError:
    detail = ""
    if valid:
        detail = "supported values: " + ", ".join(f'"{v}"' for v in valid)
    return FieldError("FieldValueNotSupported", field, detail, value)


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", field, "", value)


def forbidden_field(field: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", field, detail)


def too_long(field: str, value: Any, max_length: int) -> FieldError:
    return FieldError(
        "FieldValueTooLong", field, f"may not be more than {max_length} bytes", _OMIT
    )


def too_many(field: str, actual: int, max_items: int) -> FieldError:
    return FieldError("FieldValueTooMany", field, f"must have at most {max_items} items")


def not_found_field(field: str, value: Any) -> FieldError:
    return FieldError("FieldValueNotFound", field, "", value)


def immutable(field: str, value: Any) -> FieldError:
    """The wording upstream uses when an immutable field changes."""
    return FieldError("FieldValueInvalid", field, "field is immutable", value)
