"""The events.k8s.io/v1 API group: events.

Upstream stores these with core/v1 events (one resource, two shapes); here events.k8s.io
events are a resource of their own with their own storage, so core events and these do not
see each other.  Creation follows upstream's strict events.k8s.io validation (eventTime,
reportingController, reportingInstance, action, reason required; deprecated* fields unset);
most fields are fixed once created; field selectors as upstream converts them (regarding.*,
reason, reportingController, type); the table is core events' (LAST SEEN TYPE REASON OBJECT
MESSAGE, wide SUBOBJECT SOURCE FIRST SEEN COUNT NAME).
"""

from __future__ import annotations

from typing import Any

from pybernetes.api.groupcommon import check_immutable, dig, int_of
from pybernetes.api.printing import since
from pybernetes.api.resource import ResourceDef
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import FieldError, invalid_value, required
from pybernetes.machinery.validation import is_dns1123_subdomain, is_qualified_name

Obj = dict[str, Any]

REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024
REGARDING_FIELDS = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
IMMUTABLE_FIELDS = (
    ("regarding", "involvedObject"),
    ("reason", "reason"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("type", "type"),
    ("eventTime", "eventTime"),
    ("action", "action"),
    ("related", "related"),
    ("reportingController", "reportingController"),
    ("reportingInstance", "reportingInstance"),
)


def _text(obj: Obj, field: str) -> str:
    value = obj.get(field)
    return value if isinstance(value, str) else ""


def validate_event_create(obj: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    namespace = str((obj.get("metadata") or {}).get("namespace", ""))
    regarding_ns = str(dig(obj, "regarding", "namespace") or "")
    # Field paths are upstream's internal (core) names, as its messages use them.
    if not regarding_ns and namespace not in ("default", "kube-system"):
        errs.append(invalid_value("involvedObject.namespace", regarding_ns, "does not match event.namespace"))
    controller = _text(obj, "reportingController")
    if not controller:
        errs.append(required("reportingController"))
    errs.extend(invalid_value("reportingController", controller, m) for m in is_qualified_name(controller))
    instance = _text(obj, "reportingInstance")
    if not instance:
        errs.append(required("reportingInstance"))
    if len(instance) > REPORTING_INSTANCE_LIMIT:
        errs.append(invalid_value("reportingInstance", "", f"can have at most {REPORTING_INSTANCE_LIMIT} characters"))
    action = _text(obj, "action")
    if not action:
        errs.append(required("action"))
    if len(action) > ACTION_LIMIT:
        errs.append(invalid_value("action", "", f"can have at most {ACTION_LIMIT} characters"))
    reason = _text(obj, "reason")
    if not reason:
        errs.append(required("reason"))
    if len(reason) > REASON_LIMIT:
        errs.append(invalid_value("reason", "", f"can have at most {REASON_LIMIT} characters"))
    if len(_text(obj, "note")) > NOTE_LIMIT:
        errs.append(invalid_value("message", "", f"can have at most {NOTE_LIMIT} characters"))
    errs.extend(invalid_value("namespace", namespace, m) for m in is_dns1123_subdomain(namespace))
    series = obj.get("series")
    if series is not None:
        series = series if isinstance(series, dict) else {}
        if int_of(series.get("count")) < 2:
            errs.append(invalid_value("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errs.append(required("series.lastObservedTime"))
    if not obj.get("eventTime"):
        errs.append(required("eventTime"))
    event_type = obj.get("type")
    if event_type not in ("Normal", "Warning"):
        errs.append(invalid_value("type", "", f"has invalid value: {event_type if event_type is not None else ''}"))
    for field, internal in (("deprecatedFirstTimestamp", "firstTimestamp"),
                            ("deprecatedLastTimestamp", "lastTimestamp"), ("deprecatedCount", "count")):
        if obj.get(field):
            errs.append(invalid_value(internal, "", "needs to be unset"))
    source = obj.get("deprecatedSource")
    if isinstance(source, dict) and (source.get("component") or source.get("host")):
        errs.append(invalid_value("source", "", "needs to be unset"))
    return errs


def _event_source(obj: Obj) -> str:
    source = obj.get("deprecatedSource") if isinstance(obj.get("deprecatedSource"), dict) else {}
    component = source.get("component") or _text(obj, "reportingController")
    host = source.get("host") or _text(obj, "reportingInstance")
    return f"{component}, {host}" if host else str(component or "")


class EventStrategy(Strategy):
    status_fields = ()
    has_generation = False
    allow_create_on_update = True
    field_names = tuple(f"regarding.{f}" for f in REGARDING_FIELDS) + ("reason", "reportingController", "type")

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_event_create(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        for field, internal in IMMUTABLE_FIELDS:
            check_immutable(new.get(field), old.get(field), internal, errs)
        return errs

    name_column = False  # the name is the last, wide column (see columns())

    def columns(self) -> list[Column]:
        return [
            Column("Last Seen", description="The time at which the most recent occurrence of this event was "
                   "recorded."),
            Column("Type", description="Type of this event (Normal, Warning), new types could be added in the "
                   "future"),
            Column("Reason", description="This should be a short, machine understandable string that gives "
                   "the reason for the transition into the object's current status."),
            Column("Object", description="The object that this event is about."),
            Column("Subobject", priority=1, description="If referring to a piece of an object instead of an "
                   "entire object, this string should contain a valid JSON/Go field access statement, such as "
                   "desiredState.manifest.containers[2]."),
            Column("Source", priority=1, description="The component reporting this event. Should be a short "
                   "machine understandable string."),
            Column("Message", description="A human-readable description of the status of this operation."),
            Column("First Seen", priority=1, description="The time at which the event was first recorded. "
                   "(Time of server receipt is in TypeMeta.)"),
            Column("Count", priority=1, description="The number of times this event has occurred."),
            Column("Name", priority=1, format="name", description="Name must be unique within a namespace."),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        first = obj.get("deprecatedFirstTimestamp")
        first_seen = since(first, now) if first else since(obj.get("eventTime"), now)
        last = obj.get("deprecatedLastTimestamp")
        last_seen = since(last, now) if last else first_seen
        count = int_of(obj.get("deprecatedCount"))
        series = obj.get("series")
        if isinstance(series, dict):
            last_seen = since(series.get("lastObservedTime"), now)
            count = int_of(series.get("count"))
        elif count == 0:
            count = 1
        regarding = obj.get("regarding") if isinstance(obj.get("regarding"), dict) else {}
        kind = str(regarding.get("kind", "")).lower()
        target = f"{kind}/{regarding['name']}" if regarding.get("name") else kind
        return [
            last_seen,
            _text(obj, "type"),
            _text(obj, "reason"),
            target,
            str(regarding.get("fieldPath", "")),
            _event_source(obj),
            _text(obj, "note").strip(),
            first_seen,
            count,
            str((obj.get("metadata") or {}).get("name", "")),
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        fields = super().fields(obj)
        regarding = obj.get("regarding") if isinstance(obj.get("regarding"), dict) else {}
        for field in REGARDING_FIELDS:
            fields[f"regarding.{field}"] = str(regarding.get(field, ""))
        fields["reason"] = _text(obj, "reason")
        fields["reportingController"] = _text(obj, "reportingController")
        fields["type"] = _text(obj, "type")
        return fields


EVENTS = ResourceDef(
    group="events.k8s.io",
    version="v1",
    resource="events",
    kind="Event",
    singular="event",
    namespaced=True,
    strategy=EventStrategy(),
    short_names=("ev",),
)

RESOURCES: list[ResourceDef] = [EVENTS]
