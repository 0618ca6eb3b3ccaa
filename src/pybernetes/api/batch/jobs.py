"""batch/v1 jobs: defaults (parallelism/completions, backoffLimit, completionMode, suspend,
podReplacementPolicy, manualSelector), the generated selector and labels of upstream's job
strategy (controller-uid, job-name), spec validation with upstream's paths and messages, the
update rules (selector, completions, template ... immutable), status counters, the
``status.successful`` field selector and the STATUS COMPLETIONS DURATION table."""

from __future__ import annotations

from typing import Any

from pybernetes.api.groupcommon import (
    AGE,
    CONTAINERS,
    IMAGES,
    as_selector,
    check_immutable,
    dig,
    ensure,
    int_of,
    is_int,
    non_negative_fields,
    strategy_status,
)
from pybernetes.api.podspec import containers_and_images, default_pod_template, validate_pod_template
from pybernetes.api.printing import age, human_duration, parse_time
from pybernetes.api.resource import ResourceDef, status_of
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import (
    FieldError,
    forbidden_field,
    invalid_value,
    not_supported,
    required,
)
from pybernetes.machinery.selectors import format_label_selector
from pybernetes.machinery.validation import validate_label_selector

Obj = dict[str, Any]

CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
LEGACY_CONTROLLER_UID = "controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME = "job-name"
MAX_INT32 = 2**31 - 1
MAX_PARALLELISM_INDEXED = 100000
STATUS_COUNTERS = ("active", "succeeded", "failed", "ready", "terminating")
# The SELECTOR column of jobs and of cronjobs (their job template's selector).
SELECTOR = Column("Selector", priority=1, description="A label query over pods that should match the pod "
                  "count. Normally, the system sets this field for you.")


def default_job_spec(spec: Obj) -> None:
    """SetDefaults_Job's spec part (shared with CronJob templates' validation)."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    failure_policy = spec.get("podFailurePolicy")
    if isinstance(failure_policy, dict):
        for rule in failure_policy.get("rules") or []:
            for pattern in (rule.get("onPodConditions") or []) if isinstance(rule, dict) else []:
                if isinstance(pattern, dict) and not pattern.get("status"):
                    pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if failure_policy is not None else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    template = spec.get("template")
    if isinstance(template, dict):
        default_pod_template(template)


def _copy_template_labels(obj: Obj) -> None:
    labels = dig(obj, "spec", "template", "metadata", "labels")
    meta = ensure(obj, "metadata")
    if isinstance(labels, dict) and not meta.get("labels"):
        meta["labels"] = dict(labels)


def generate_selector(obj: Obj) -> None:
    """The job strategy's generateSelector: template labels job-name / controller-uid (both
    spellings) unless set, and a selector on batch.kubernetes.io/controller-uid."""
    meta = obj.get("metadata") or {}
    uid, name = str(meta.get("uid", "")), str(meta.get("name", ""))
    spec = ensure(obj, "spec")
    labels = ensure(spec, "template", "metadata", "labels")
    for key in (LEGACY_JOB_NAME, JOB_NAME):
        labels.setdefault(key, name)
    for key in (LEGACY_CONTROLLER_UID, CONTROLLER_UID):
        labels.setdefault(key, uid)
    selector = ensure(spec, "selector")
    match = ensure(selector, "matchLabels")
    match.setdefault(CONTROLLER_UID, uid)


def _has_label(meta: Any, path: str, key: str, expected: str, errs: list[FieldError]) -> None:
    labels = dig(meta, "labels") if isinstance(meta, dict) else None
    labels = labels if isinstance(labels, dict) else {}
    if key not in labels:
        errs.append(required(f"{path}.labels[{key}]", expected))
    elif labels[key] != expected:
        errs.append(invalid_value(f"{path}.labels[{key}]", labels, f"must be '{expected}'"))


def validate_generated_selector(obj: Obj) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    if spec.get("manualSelector") is True or not isinstance(spec.get("selector"), dict):
        return errs
    meta = obj.get("metadata") or {}
    uid, name = str(meta.get("uid", "")), str(meta.get("name", ""))
    if not uid:
        errs.append(required("metadata.uid"))
    tmeta = dig(spec, "template", "metadata")
    tpath = "spec.template.metadata"
    _has_label(tmeta, tpath, LEGACY_CONTROLLER_UID, uid, errs)
    _has_label(tmeta, tpath, LEGACY_JOB_NAME, name, errs)
    _has_label(tmeta, tpath, CONTROLLER_UID, uid, errs)
    _has_label(tmeta, tpath, JOB_NAME, name, errs)
    generated = as_selector(spec["selector"])
    if generated is None or not generated.matches({CONTROLLER_UID: uid}):
        errs.append(invalid_value("spec.selector", spec["selector"], "`selector` not auto-generated"))
    return errs


def validate_job_spec_fields(spec: Obj, path: str, errs: list[FieldError]) -> None:
    """validateJobSpec: everything but the selector (also used for CronJob templates)."""
    non_negative_fields(spec, ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                               "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes"), path, errs)
    mode = spec.get("completionMode")
    if mode is not None:
        if mode not in ("NonIndexed", "Indexed"):
            errs.append(not_supported(f"{path}.completionMode", mode, ("NonIndexed", "Indexed")))
        elif mode == "Indexed":
            if spec.get("completions") is None:
                errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
            parallelism = spec.get("parallelism")
            if is_int(parallelism) and parallelism > MAX_PARALLELISM_INDEXED:
                errs.append(invalid_value(f"{path}.parallelism", parallelism,
                                          f"must be less than or equal to {MAX_PARALLELISM_INDEXED} "
                                          "when completion mode is Indexed"))
    if spec.get("backoffLimitPerIndex") is not None and mode != "Indexed":
        errs.append(forbidden_field(f"{path}.backoffLimitPerIndex", "requires indexed completion mode"))
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        errs.append(required(f"{path}.backoffLimitPerIndex",
                             "when maxFailedIndexes is specified"))
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        if spec.get("podFailurePolicy") is not None and replacement != "Failed":
            errs.append(not_supported(f"{path}.podReplacementPolicy", replacement, ("Failed",)))
        elif replacement not in ("TerminatingOrFailed", "Failed"):
            errs.append(not_supported(f"{path}.podReplacementPolicy", replacement,
                                      ("Failed", "TerminatingOrFailed")))
    template = spec.get("template")
    errs.extend(validate_pod_template(template, f"{path}.template"))
    policy = dig(template, "spec", "restartPolicy")
    rpath = f"{path}.template.spec.restartPolicy"
    if isinstance(dig(template, "spec"), dict):
        if policy in (None, "", "Always"):
            errs.append(required(rpath, 'valid values: "OnFailure", "Never"'))
        elif policy not in ("OnFailure", "Never"):
            errs.append(not_supported(rpath, policy, ("OnFailure", "Never")))
        elif spec.get("podFailurePolicy") is not None and policy != "Never":
            errs.append(invalid_value(rpath, policy, 'only "Never" is supported when podFailurePolicy is specified'))


def validate_job_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [required(path)]
    validate_job_spec_fields(spec, path, errs)
    selector = spec.get("selector")
    if selector is None:
        errs.append(required(f"{path}.selector"))
    else:
        errs.extend(validate_label_selector(selector, f"{path}.selector"))
        # As upstream, a selector that does not convert is not compared (its errors are above).
        labels = dig(spec, "template", "metadata", "labels")
        labels = labels if isinstance(labels, dict) else {}
        parsed = as_selector(selector)
        if parsed is not None and not parsed.matches(labels):
            errs.append(invalid_value(f"{path}.template.metadata.labels", labels,
                                      "`selector` does not match template `labels`"))
    return errs


def _suspended_not_started(new: Obj, old: Obj) -> bool:
    return dig(old, "spec", "suspend") is True and dig(old, "status", "startTime") is None


_SCHEDULING_DIRECTIVES = ("nodeSelector", "tolerations", "affinity", "schedulingGates")


def validate_job_update(new: Obj, old: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    check_immutable(new_spec.get("selector"), old_spec.get("selector"), "spec.selector", errs)
    completions_change_ok = (
        new_spec.get("completionMode") == "Indexed"
        and new_spec.get("completions") == new_spec.get("parallelism")
        and old_spec.get("completions") == old_spec.get("parallelism")
    )
    if not completions_change_ok:
        check_immutable(new_spec.get("completions"), old_spec.get("completions"), "spec.completions", errs)
    new_template, old_template = new_spec.get("template"), old_spec.get("template")
    if _suspended_not_started(new, old) and isinstance(new_template, dict) and isinstance(old_template, dict):
        # Scheduling directives and pod labels/annotations of a suspended job that never
        # started may change; compare the rest.
        old_template = {**old_template, "metadata": {**(old_template.get("metadata") or {})},
                        "spec": {**(old_template.get("spec") or {})}}
        for key in ("labels", "annotations"):
            old_template["metadata"].pop(key, None)
        for key in _SCHEDULING_DIRECTIVES:
            old_template["spec"].pop(key, None)
        new_template = {**new_template, "metadata": {**(new_template.get("metadata") or {})},
                        "spec": {**(new_template.get("spec") or {})}}
        for key in ("labels", "annotations"):
            new_template["metadata"].pop(key, None)
        for key in _SCHEDULING_DIRECTIVES:
            new_template["spec"].pop(key, None)
    check_immutable(new_template, old_template, "spec.template", errs)
    for field in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        check_immutable(new_spec.get(field), old_spec.get(field), f"spec.{field}", errs)
    return errs


def job_status_text(obj: Obj) -> str:
    conditions = {c.get("type"): c.get("status") for c in dig(obj, "status", "conditions") or []
                  if isinstance(c, dict)}

    def has(kind: str) -> bool:
        return conditions.get(kind) == "True"

    if has("Complete"):
        return "Complete"
    if has("Failed"):
        return "Failed"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    if has("Suspended"):
        return "Suspended"
    if has("FailureTarget"):
        return "FailureTarget"
    if has("SuccessCriteriaMet"):
        return "SuccessCriteriaMet"
    return "Running"


def completions_text(obj: Obj) -> str:
    spec, succeeded = obj.get("spec") or {}, int_of(dig(obj, "status", "succeeded"))
    if spec.get("completions") is not None:
        return f"{succeeded}/{int_of(spec['completions'])}"
    parallelism = int_of(spec.get("parallelism"))
    if parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def duration_text(obj: Obj, now: float) -> str:
    start = parse_time(dig(obj, "status", "startTime"))
    if start is None:
        return ""
    end = parse_time(dig(obj, "status", "completionTime"))
    return human_duration((end if end is not None else now) - start)


class JobStrategy(Strategy):
    field_names = ("status.successful",)

    def default(self, obj: Obj) -> None:
        default_job_spec(ensure(obj, "spec"))
        _copy_template_labels(obj)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {}
        if (obj.get("metadata") or {}).get("uid"):
            self._generate(obj)

    def _generate(self, obj: Obj) -> None:
        if dig(obj, "spec", "manualSelector") is not True:
            generate_selector(obj)
            _copy_template_labels(obj)

    def validate(self, obj: Obj) -> list[FieldError]:
        # As upstream, the selector is generated at validation, once the uid is known.
        if (obj.get("metadata") or {}).get("uid") and isinstance(obj.get("spec"), dict):
            self._generate(obj)
        errs = validate_job_spec(obj.get("spec"))
        if isinstance(obj.get("spec"), dict):
            errs.extend(validate_generated_selector(obj))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return validate_job_update(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        non_negative_fields(strategy_status(new), STATUS_COUNTERS, "status", errs)
        return errs

    def columns(self) -> list[Column]:
        return [
            Column("Status", description="Status of the job."),
            Column("Completions", description="The number of pods which reached phase Succeeded. The value "
                   "increases monotonically for a given spec. However, it may decrease in reaction to "
                   "scale down of elastic indexed jobs."),
            Column("Duration", description="Time required to complete the job."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        names, images = containers_and_images(dig(obj, "spec", "template", "spec"))
        return [
            job_status_text(obj),
            completions_text(obj),
            duration_text(obj, now),
            age(obj, now),
            names,
            images,
            format_label_selector(dig(obj, "spec", "selector")),
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        fields = super().fields(obj)
        fields["status.successful"] = str(int_of(dig(obj, "status", "succeeded")))
        return fields


JOBS = ResourceDef(
    group="batch",
    version="v1",
    resource="jobs",
    kind="Job",
    singular="job",
    namespaced=True,
    strategy=JobStrategy(),
    categories=("all",),
    subresources=(status_of("Job", "batch"),),
)
