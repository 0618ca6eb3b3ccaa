"""The batch/v1 API group: jobs and cronjobs (cron schedule syntax in ``cron``)."""

from pybernetes.api.batch.cronjobs import CRONJOBS
from pybernetes.api.batch.jobs import JOBS
from pybernetes.api.resource import ResourceDef

RESOURCES: list[ResourceDef] = [CRONJOBS, JOBS]
