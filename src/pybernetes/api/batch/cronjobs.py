"""batch/v1 cronjobs: defaults (concurrencyPolicy Allow, suspend false, history limits 3/1),
schedule syntax and timeZone checks, the job template's rules, the 52-character name limit,
and the SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE table."""

from __future__ import annotations

import re
from typing import Any

from pybernetes.api.batch.cron import CronError, load_zone, parse_error
from pybernetes.api.batch.jobs import SELECTOR, validate_job_spec_fields
from pybernetes.api.groupcommon import (
    AGE,
    CONTAINERS,
    IMAGES,
    dig,
    ensure,
    non_negative,
    non_negative_fields,
    strategy_status,
)
from pybernetes.api.podspec import containers_and_images, default_pod_template
from pybernetes.api.printing import age, since
from pybernetes.api.resource import ResourceDef, status_of
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import FieldError, invalid_value, not_supported, required
from pybernetes.machinery.selectors import format_label_selector
from pybernetes.machinery.validation import validate_annotations, validate_labels

Obj = dict[str, Any]

MAX_NAME = 52  # 63 minus the 11-character suffix of the jobs it creates
_ZONE_PART = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")


def default_cronjob(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    template = dig(spec, "jobTemplate", "spec", "template")
    if isinstance(template, dict):
        default_pod_template(template)


def validate_time_zone(zone: Any, path: str, errs: list[FieldError]) -> None:
    if zone is None:
        return
    if not isinstance(zone, str) or zone == "":
        errs.append(invalid_value(path, zone, "timeZone must be nil or non-empty string"))
        return
    for part in zone.split("/"):
        if part in (".", "..") or part.startswith("-") or not _ZONE_PART.fullmatch(part):
            errs.append(invalid_value(path, zone, f"unknown time zone {zone}"))
            return
    if zone.lower() == "local":
        errs.append(invalid_value(path, zone, "timeZone must be an explicit time zone as defined in "
                                  "https://www.iana.org/time-zones"))
        return
    try:
        load_zone(zone)
    except CronError as err:
        errs.append(invalid_value(path, zone, str(err)))


def validate_cronjob_spec(spec: Any, old_spec: Any = None, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [required(path)]
    schedule = spec.get("schedule")
    spath = f"{path}.schedule"
    if not schedule:
        errs.append(required(spath))
    elif not isinstance(schedule, str):
        errs.append(invalid_value(spath, schedule, "must be a string"))
    else:
        message = parse_error(schedule)
        if message:
            errs.append(invalid_value(spath, schedule, message))
        allow_tz = isinstance(old_spec, dict) and "TZ" in str(old_spec.get("schedule", ""))
        if allow_tz and "TZ" in schedule and spec.get("timeZone") is not None:
            errs.append(invalid_value(spath, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
        elif not allow_tz and "TZ" in schedule:
            errs.append(invalid_value(spath, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone "
                                      "field instead"))
    non_negative(spec, "startingDeadlineSeconds", f"{path}.startingDeadlineSeconds", errs)
    if not isinstance(old_spec, dict) or old_spec.get("timeZone") != spec.get("timeZone"):
        validate_time_zone(spec.get("timeZone"), f"{path}.timeZone", errs)
    policy = spec.get("concurrencyPolicy")
    if not policy:
        errs.append(required(f"{path}.concurrencyPolicy"))
    elif policy not in ("Allow", "Forbid", "Replace"):
        errs.append(not_supported(f"{path}.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace")))
    validate_job_template(spec.get("jobTemplate"), f"{path}.jobTemplate", errs)
    non_negative_fields(spec, ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"), path, errs)
    return errs


def validate_job_template(template: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(template, dict):
        errs.append(required(path))
        return
    meta = template.get("metadata")
    if isinstance(meta, dict):
        errs.extend(validate_labels(meta.get("labels"), f"{path}.metadata.labels"))
        errs.extend(validate_annotations(meta.get("annotations"), f"{path}.metadata.annotations"))
    spec = template.get("spec")
    if not isinstance(spec, dict):
        errs.append(required(f"{path}.spec"))
        return
    validate_job_spec_fields(spec, f"{path}.spec", errs)
    if spec.get("selector") is not None:
        errs.append(invalid_value(f"{path}.spec.selector", spec["selector"], "`selector` will be auto-generated"))
    if spec.get("manualSelector") is True:
        errs.append(not_supported(f"{path}.spec.manualSelector", True, ("nil", "false")))


class CronJobStrategy(Strategy):
    def default(self, obj: Obj) -> None:
        default_cronjob(obj)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {}

    def validate(self, obj: Obj) -> list[FieldError]:
        errs = validate_cronjob_spec(obj.get("spec"))
        name = str((obj.get("metadata") or {}).get("name", ""))
        if len(name) > MAX_NAME:
            errs.append(invalid_value("metadata.name", name, f"must be no more than {MAX_NAME} characters"))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        # validate() already ran on the new object without knowledge of the old one; only
        # the rules that depend on it are added here (TZ kept in an old schedule is allowed).
        errs = validate_cronjob_spec(new.get("spec"), old.get("spec"))
        first = validate_cronjob_spec(new.get("spec"))
        return [e for e in errs if e not in first]

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return []

    def columns(self) -> list[Column]:
        return [
            Column("Schedule", description="The schedule in Cron format, see "
                   "https://en.wikipedia.org/wiki/Cron."),
            Column("Timezone", description="The time zone name for the given schedule, see "
                   "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
            Column("Suspend", "boolean", description="This flag tells the controller to suspend subsequent "
                   "executions, it does not apply to already started executions.  Defaults to false."),
            Column("Active", "integer", description="A list of pointers to currently running jobs."),
            Column("Last Schedule", description="Information when was the last time the job was "
                   "successfully scheduled."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        spec = obj.get("spec") or {}
        status = strategy_status(obj)
        zone = spec.get("timeZone")
        suspend = spec.get("suspend")
        last = status.get("lastScheduleTime")
        names, images = containers_and_images(dig(spec, "jobTemplate", "spec", "template", "spec"))
        return [
            str(spec.get("schedule", "")),
            zone if isinstance(zone, str) else "<none>",
            "<unset>" if suspend is None else ("True" if suspend else "False"),
            len(status.get("active") or []),
            since(last, now) if last else "<none>",
            age(obj, now),
            names,
            images,
            format_label_selector(dig(spec, "jobTemplate", "spec", "selector")),
        ]


CRONJOBS = ResourceDef(
    group="batch",
    version="v1",
    resource="cronjobs",
    kind="CronJob",
    singular="cronjob",
    namespaced=True,
    strategy=CronJobStrategy(),
    short_names=("cj",),
    categories=("all",),
    subresources=(status_of("CronJob", "batch"),),
)
