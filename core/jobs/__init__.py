"""Jobs (Girder's jobs plugin): the model, the job-type registry, and the
local and Celery runners. ``core.builtin_plugins.jobs`` loads them as the
``jobs`` plugin; other plugins reach the runtime with ``runtime_of(events)``.
"""

from .model import SPEC, Jobs, JobStatus
from .runner import JobCanceledError, JobContext, JobTypes
from .runtime import (
    JobsRuntime,
    Progress,
    jobs_runtime,
    reported,
    runtime_of,
    tracked,
    tracked_stream,
)

__all__ = ["SPEC", "JobCanceledError", "JobContext", "JobStatus", "JobTypes", "Jobs", "JobsRuntime",
           "Progress", "jobs_runtime", "reported", "runtime_of", "tracked",
           "tracked_stream"]
