"""batch/v1 jobs and cronjobs, and the cron schedule parser."""

from __future__ import annotations

import copy

import pytest

from pybernetes.api.batch.cron import parse_error
from pybernetes.api.batch.cronjobs import CRONJOBS
from pybernetes.api.batch.jobs import JOBS
from pybernetes.api.printing import parse_time

NOW = parse_time("2024-01-01T01:00:00Z")
UID = "0b7d1a52-1111-2222-3333-444455556666"


def job(**spec):
    body = {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": UID,
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "pi", "image": "perl"}]}}}}
    body["spec"].update(spec)
    return body


def create(res, obj):
    res.strategy.default(obj)
    res.strategy.prepare_for_create(obj)
    return obj, res.strategy.validate(obj)


def test_job_defaults_and_generated_selector():
    obj, errs = create(JOBS, job())
    assert errs == []
    spec = obj["spec"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed" and spec["manualSelector"] is False
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}
    labels = spec["template"]["metadata"]["labels"]
    assert labels == {"controller-uid": UID, "batch.kubernetes.io/controller-uid": UID,
                      "job-name": "pi", "batch.kubernetes.io/job-name": "pi"}
    assert obj["metadata"]["labels"] == labels
    assert obj["status"] == {}


def test_job_parallelism_only_leaves_completions_unset():
    obj, _ = create(JOBS, job(parallelism=3))
    assert obj["spec"]["parallelism"] == 3 and "completions" not in obj["spec"]


def test_job_restart_policy_required_and_enum():
    body = job()
    del body["spec"]["template"]["spec"]["restartPolicy"]
    _, errs = create(JOBS, body)
    assert [(e.field, e.type) for e in errs] == [("spec.template.spec.restartPolicy", "FieldValueRequired")]
    assert errs[0].error_text() == ('spec.template.spec.restartPolicy: Required value: valid values: '
                                    '"OnFailure", "Never"')


def test_job_wrong_manual_labels_and_selector():
    body = job()
    body["spec"]["template"]["metadata"] = {"labels": {"job-name": "other"}}
    _, errs = create(JOBS, body)
    assert ("spec.template.metadata.labels[job-name]", "FieldValueInvalid") in [(e.field, e.type) for e in errs]
    body = job(manualSelector=True, selector={"matchLabels": {"a": "b"}})
    body["spec"]["template"]["metadata"] = {"labels": {"a": "c"}}
    _, errs = create(JOBS, body)
    assert [(e.field, e.detail) for e in errs] == [
        ("spec.template.metadata.labels", "`selector` does not match template `labels`")]


def test_job_invalid_manual_selector_is_not_compared_with_labels():
    body = job(manualSelector=True, selector={"matchExpressions": [{"key": "a", "operator": "Bad"}]})
    body["spec"]["template"]["metadata"] = {"labels": {"a": "c"}}
    _, errs = create(JOBS, body)
    assert [e.field for e in errs] == ["spec.selector.matchExpressions[0].operator"]


def test_job_spec_checks():
    _, errs = create(JOBS, job(parallelism=-1, backoffLimit=-2, completionMode="Sometimes"))
    assert [e.field for e in errs] == ["spec.parallelism", "spec.backoffLimit", "spec.completionMode"]
    _, errs = create(JOBS, job(completionMode="Indexed", parallelism=2))
    assert [(e.field, e.type) for e in errs] == [("spec.completions", "FieldValueRequired")]


def test_job_update_rules():
    old, _ = create(JOBS, job())
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:2"
    new["spec"]["completions"] = 3
    new["spec"]["parallelism"] = 5
    errs = JOBS.strategy.validate_update(new, old)
    assert [e.field for e in errs] == ["spec.completions", "spec.template"]
    # a suspended job that never started may change its pods' node selector
    old["spec"]["suspend"] = True
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    assert JOBS.strategy.validate_update(new, old) == []


def test_job_table_and_fields():
    obj, _ = create(JOBS, job())
    obj["status"] = {"succeeded": 1, "startTime": "2024-01-01T00:00:00Z",
                     "completionTime": "2024-01-01T00:00:42Z",
                     "conditions": [{"type": "Complete", "status": "True"}]}
    cols = [c.name for c in JOBS.strategy.columns()]
    assert cols == ["Status", "Completions", "Duration", "Age", "Containers", "Images", "Selector"]
    assert JOBS.strategy.cells(obj, NOW) == ["Complete", "1/1", "42s", "60m", "pi", "perl",
                                             f"batch.kubernetes.io/controller-uid={UID}"]
    assert JOBS.strategy.fields(obj)["status.successful"] == "1"
    running, _ = create(JOBS, job(parallelism=2))
    running["status"] = {"startTime": "2024-01-01T00:30:00Z"}
    assert JOBS.strategy.cells(running, NOW)[:3] == ["Running", "0/1 of 2", "30m"]


def cronjob(**spec):
    body = {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "default", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"schedule": "*/5 * * * *",
                     "jobTemplate": {"spec": {"template": {"spec": {
                         "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}}
    body["spec"].update(spec)
    return body


def test_cronjob_defaults_and_table():
    obj, errs = create(CRONJOBS, cronjob())
    assert errs == []
    spec = obj["spec"]
    assert spec["concurrencyPolicy"] == "Allow" and spec["suspend"] is False
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    assert CRONJOBS.short_names == ("cj",) and CRONJOBS.categories == ("all",)
    obj["status"] = {"active": [{"name": "x"}], "lastScheduleTime": "2024-01-01T00:55:00Z"}
    assert CRONJOBS.strategy.cells(obj, NOW) == ["*/5 * * * *", "<none>", "False", 1, "5m", "60m", "c",
                                                 "busybox", "<none>"]


def test_cronjob_validation():
    _, errs = create(CRONJOBS, cronjob(schedule="61 * * * *", timeZone="Mars/Olympus",
                                       concurrencyPolicy="Sometimes"))
    by = {e.field: e for e in errs}
    assert by["spec.schedule"].detail == "end of range (61) above maximum (59): 61"
    assert by["spec.timeZone"].detail == "unknown time zone Mars/Olympus"
    assert by["spec.concurrencyPolicy"].type == "FieldValueNotSupported"
    _, errs = create(CRONJOBS, cronjob(schedule="TZ=UTC 0 * * * *"))
    assert [e.detail for e in errs] == ["cannot use TZ or CRON_TZ in schedule, use timeZone field instead"]
    _, errs = create(CRONJOBS, cronjob(timeZone="Europe/Paris", schedule="@hourly"))
    assert errs == []
    body = cronjob()
    body["metadata"]["name"] = "x" * 53
    _, errs = create(CRONJOBS, body)
    assert [(e.field, e.detail) for e in errs] == [("metadata.name", "must be no more than 52 characters")]
    body = cronjob()
    body["spec"]["jobTemplate"]["spec"]["selector"] = {"matchLabels": {"a": "b"}}
    _, errs = create(CRONJOBS, body)
    assert [e.field for e in errs] == ["spec.jobTemplate.spec.selector"]


@pytest.mark.parametrize("schedule", ["* * * * *", "0 0 1 1 *", "*/15 9-17 * * mon-fri", "0 0 ? * SUN",
                                      "5,10,15 * * jan,jul 0", "@daily", "@every 1h30m", "CRON_TZ=UTC 0 3 * * *"])
def test_cron_valid(schedule):
    assert parse_error(schedule) is None


@pytest.mark.parametrize("schedule,message", [
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("* 25 * * *", "end of range (25) above maximum (23): 25"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("", "empty spec string"),
])
def test_cron_invalid(schedule, message):
    assert parse_error(schedule) == message
