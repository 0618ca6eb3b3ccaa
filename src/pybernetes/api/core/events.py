"""core/v1 events: records of what happened to an object (no spec, no status), their
field selectors (involvedObject.*, reason, source, type ...) and the LAST SEEN table."""

from __future__ import annotations

from typing import Any

from pybernetes.api.fieldcheck import as_dict, as_int, as_str
from pybernetes.api.printing import since
from pybernetes.api.resource import ResourceDef
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import FieldError, invalid_value, not_supported, too_long

Obj = dict[str, Any]

_INVOLVED_FIELDS = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


class EventStrategy(Strategy):
    status_fields = ()
    has_generation = False
    field_names = (
        *(f"involvedObject.{f}" for f in _INVOLVED_FIELDS),
        "reason", "reportingComponent", "source", "type",
    )

    def validate(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        involved = as_dict(obj.get("involvedObject"), "involvedObject", errs)
        for field in _INVOLVED_FIELDS:
            as_str(involved.get(field), f"involvedObject.{field}", errs)
        namespace = str(_d(obj.get("metadata")).get("namespace") or "")
        involved_ns = involved.get("namespace")
        if isinstance(involved_ns, str) and involved_ns and involved_ns != namespace:
            errs.append(invalid_value("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        event_type = obj.get("type")
        if event_type not in (None, "", "Normal", "Warning"):
            errs.append(not_supported("type", event_type, ("Normal", "Warning")))
        reason = as_str(obj.get("reason"), "reason", errs)
        if len(reason) > 128:
            errs.append(too_long("reason", reason, 128))
        as_str(obj.get("message"), "message", errs)
        as_int(obj.get("count"), "count", errs)
        return errs

    name_column = False  # upstream prints an event's name as the last, wide column

    def columns(self) -> list[Column]:
        return [
            Column("Last Seen", description="Time when this Event was last observed."),
            Column("Type", description="Type of this event (Normal, Warning), new types could be added "
                   "in the future."),
            Column("Reason", description="This should be a short, machine understandable string that gives "
                   "the reason for the transition into the object's current status."),
            Column("Object", description="The object that this event is about."),
            Column("Subobject", priority=1, description="The field of the object that this event is about."),
            Column("Source", priority=1, description="The component reporting this event. Should be a "
                   "short machine understandable string."),
            Column("Message", description="A human-readable description of the status of this operation."),
            Column("First Seen", priority=1, description="The time at which the event was first recorded."),
            Column("Count", "integer", priority=1, description="The number of times this event has occurred."),
            Column("Name", format="name", priority=1, description="The name of the event."),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        first = since(obj.get("firstTimestamp"), now) if obj.get("firstTimestamp") \
            else since(obj.get("eventTime"), now)
        last = since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
        count = obj.get("count") if isinstance(obj.get("count"), int) else 0
        series = obj.get("series")
        if isinstance(series, dict):
            last = since(series.get("lastObservedTime"), now)
            count = series.get("count") if isinstance(series.get("count"), int) else 0
        elif count == 0:
            count = 1
        involved = _d(obj.get("involvedObject"))
        kind = str(involved.get("kind") or "").lower()
        target = f"{kind}/{involved['name']}" if involved.get("name") else kind
        return [
            last,
            str(obj.get("type") or ""),
            str(obj.get("reason") or ""),
            target,
            str(involved.get("fieldPath") or ""),
            event_source(obj),
            str(obj.get("message") or "").strip(),
            first,
            count,
            str(_d(obj.get("metadata")).get("name") or ""),
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        result = super().fields(obj)
        involved = _d(obj.get("involvedObject"))
        for field in _INVOLVED_FIELDS:
            result[f"involvedObject.{field}"] = str(involved.get(field) or "")
        result["reason"] = str(obj.get("reason") or "")
        result["reportingComponent"] = str(obj.get("reportingComponent") or "")
        result["source"] = str(_d(obj.get("source")).get("component") or "")
        result["type"] = str(obj.get("type") or "")
        return result


def event_source(obj: Obj) -> str:
    source = _d(obj.get("source"))
    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else str(component)


EVENTS = ResourceDef(
    group="", version="v1", resource="events", kind="Event", singular="event",
    namespaced=True, strategy=EventStrategy(), short_names=("ev",),
)
