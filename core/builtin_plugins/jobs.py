"""``jobs`` (Girder's jobs plugin): the ``job`` collection, its REST routes as
Girder declares them (plus ``GET job/:id/log``), the settings choosing the
runner, and the runtime other plugins register job types with::

    from joist.core.jobs import runtime_of
    runtime_of(info.events).register_type("thumbnail", make_thumbnail, rerun_safe=True)

Access is Girder's: the owner has ADMIN on a job, site administrators on
every job, anyone may read a public one; an unknown id is a 400 and a denied
job a 403 (401 anonymous). Jobs made through REST name no code: their
``otherFields`` cannot set the fields that choose what runs.
"""

from __future__ import annotations

from typing import Any

from .. import acl
from ..errors import ValidationError
from ..jobs.model import SPEC, Jobs
from ..jobs.runtime import (
    ARCHIVE,
    BROKER,
    JOBS_LOADED,
    LEASE,
    RUNNER,
    RUNTIME_EVENT,
    WORKERS,
    JobsRuntime,
)
from ..plugins import Plugin, PluginInfo, RouteParam

SERVE_START, SERVE_STOP = "joist.serve.start", "joist.serve.stop"
CREATE_SCOPE, LIST_SCOPE = "jobs.rest.create_job", "jobs.rest.list_job"
FULL_LOGIN = "core.user_auth"
# fields REST callers may not set through otherFields: they choose code or ownership
RESERVED = frozenset({"_id", "module", "function", "handler", "userId", "access", "status",
                      "lease", "rerunSafe", "runnable", "log", "timestamps", "created", "updated",
                      "kwargs", "args", "type", "title", "public", "parentId"})
_ID = RouteParam("id", required=True, location="path", description="The ID of the job.")
_FILTERS = (
    RouteParam("types", "jsonArray", description="Filter for type"),
    RouteParam("statuses", "jsonArray", description="Filter for status"),
    RouteParam("handlers", "jsonArray", description="Filter for handler"),
    RouteParam("limit", "integer", default=50, description="Result set size limit."),
    RouteParam("offset", "integer", default=0, description="Offset into result set."),
    RouteParam("sort", default="created", strip=True,
               description="Field to sort the result set by."),
    RouteParam("sortdir", "integer", default=-1, enum=(1, -1),
               description="Sort order: 1 for ascending, -1 for descending."),
)
SORTABLE = ("created", "updated", "title", "type", "status", "_id", "when")


def _choice(*values: str) -> Any:
    def check(value: Any) -> str:
        if value not in values:
            raise ValueError(f"must be one of {', '.join(values)}")
        return str(value)
    check.choices = values  # type: ignore[attr-defined]
    return check


def _number(low: float, high: float, kind: type = float) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number")
        number = kind(value)
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number
    return check


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _window(limit: int, offset: int, sort: str, sortdir: int) -> list[tuple[str, int]]:
    if limit < 0 or offset < 0:
        raise ValidationError("limit and offset must not be negative.")
    if sort not in SORTABLE:
        raise ValidationError(f"Invalid sort field: {sort}.", field="sort")
    return [(sort, sortdir), ("_id", sortdir)]


class JobsPlugin(Plugin):
    name = "jobs"
    description = "A general purpose plugin for managing offline jobs."
    url = "https://girder.readthedocs.io/en/latest/plugins.html#jobs"

    def load(self, info: PluginInfo) -> None:
        services = info.services
        info.register_setting(RUNNER, "local", _choice("local", "celery"),
                              "Where jobs run: local (threads in each server process) or "
                              "celery (joist worker processes, through the broker).")
        info.register_setting(BROKER, "redis://127.0.0.1:6379/0", _text,
                              "The Celery broker URL, when jobs.runner is celery.")
        info.register_setting(WORKERS, 2, _number(1, 32, int),
                              "Jobs each server process runs at once (local runner).")
        info.register_setting(LEASE, 30.0, _number(0.5, 3600),
                              "Seconds without a sign of life after which a running job "
                              "is taken to be left by a dead process.")
        info.register_setting(ARCHIVE, 1 << 30, _number(0, 1 << 62, int),
                              "Zip downloads of at least this many bytes show as jobs with "
                              "their progress (0: never).")
        info.register_scope(CREATE_SCOPE, "Create jobs", "Allows jobs to be created.")
        info.register_scope(LIST_SCOPE, "List jobs", "Allows jobs to be listed.")
        jobs = Jobs(info.collection(SPEC), info.events)
        runtime = JobsRuntime(jobs, services, services.settings)
        info.bind(RUNTIME_EVENT, lambda event: event.add_response(runtime))
        info.bind("jobs.schedule", runtime.on_schedule)
        info.bind(SERVE_START, runtime.start_serving)
        info.bind(SERVE_STOP, runtime.stop)
        _routes(info, jobs, services)
        info.events.trigger(JOBS_LOADED, runtime)  # plugins loaded before register types


def _routes(info: PluginInfo, jobs: Jobs, services: Any) -> None:
    def user_param(ctx: Any, user_id: str | None) -> Any:
        if not user_id:
            if ctx.principal.is_anonymous:
                return None  # Girder: the anonymous caller's jobs are the user-less ones
            return {"_id": ctx.principal.user_id}
        if user_id.lower() == "none":
            return "none"
        return services.tree.load(ctx.principal, "user", user_id, acl.READ)

    def parent(ctx: Any, parent_id: str | None, level: int) -> Any:
        return jobs.get(ctx.principal, parent_id, level) if parent_id else None

    def shown(ctx: Any, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [jobs.filter(d, ctx.principal) for d in docs]

    def list_jobs(ctx: Any, user_id: str | None, parent_id: str | None, types: Any,
                  statuses: Any, handlers: Any, limit: int, offset: int, sort: str,
                  sortdir: int) -> list[dict[str, Any]]:
        return shown(ctx, jobs.list_jobs(
            ctx.principal, user=user_param(ctx, user_id), types=types, statuses=statuses,
            handlers=handlers, parent_job=parent(ctx, parent_id, acl.ADMIN), limit=limit,
            offset=offset, sort=_window(limit, offset, sort, sortdir)))

    def list_all(ctx: Any, types: Any, statuses: Any, handlers: Any, limit: int, offset: int,
                 sort: str, sortdir: int) -> list[dict[str, Any]]:
        return shown(ctx, jobs.list_jobs(
            ctx.principal, user="all", types=types, statuses=statuses, handlers=handlers,
            limit=limit, offset=offset, sort=_window(limit, offset, sort, sortdir)))

    def create(ctx: Any, title: str, type: str, parent_id: str | None, public: bool,
               handler: str | None, args: Any, kwargs: Any, other_fields: Any) -> Any:
        other = dict(other_fields or {})
        bad = sorted(k for k in other if k in RESERVED or k.startswith("$") or "." in k)
        if bad:
            raise ValidationError(f"otherFields may not set {', '.join(bad)}.",
                                  field="otherFields")
        user = None if ctx.principal.is_anonymous else {"_id": ctx.principal.user_id}
        job = jobs.create_job(title, type, args=args or (), kwargs=kwargs, user=user,
                              public=public, handler=handler,
                              parent_job=parent(ctx, parent_id, acl.READ),
                              other_fields=other)
        return jobs.filter(job, ctx.principal)

    def get(ctx: Any, id: str) -> Any:
        return jobs.filter(jobs.get(ctx.principal, id, acl.READ), ctx.principal)

    def update(ctx: Any, id: str, log: str | None, overwrite: bool, status: Any,
               progress_total: float | None, progress_current: float | None,
               progress_message: str | None, notify: bool) -> Any:
        job = jobs.get(ctx.principal, id, acl.WRITE)
        return jobs.filter(jobs.update_job(
            job, log=log, overwrite=overwrite, status=status, notify=notify,
            progress_total=progress_total, progress_current=progress_current,
            progress_message=progress_message), ctx.principal)

    def cancel(ctx: Any, id: str) -> Any:
        job = jobs.get(ctx.principal, id, acl.WRITE, include_log=False)
        return jobs.filter(jobs.cancel_job(job), ctx.principal)

    def delete(ctx: Any, id: str) -> None:
        jobs.remove(jobs.get(ctx.principal, id, acl.ADMIN, include_log=False))

    def job_log(ctx: Any, id: str, offset: int, limit: int) -> list[str]:
        if limit < 0 or offset < 0:
            raise ValidationError("limit and offset must not be negative.")
        return jobs.log_page(jobs.get(ctx.principal, id, acl.READ), ctx.principal,
                             offset, limit)

    def types_statuses(ctx: Any) -> dict[str, list[Any]]:
        return jobs.types_and_statuses({"_id": ctx.principal.user_id})

    def all_types_statuses(ctx: Any) -> dict[str, list[Any]]:
        # Girder lists every job's types to any user; Joist only to administrators
        return jobs.types_and_statuses("all" if ctx.principal.is_site_admin
                                       else {"_id": ctx.principal.user_id})

    describe = "Jobs: long-running work with status, progress and a log."
    info.add_route("GET", "job", list_jobs, scope=LIST_SCOPE, description=describe,
                   summary="List jobs for a given user.", params=[
                       RouteParam("userId", description="The ID of the user whose jobs will "
                                  "be listed. If not passed or empty, will use the currently "
                                  'logged in user. If set to "None", will list all jobs '
                                  "that do not have an owning user."),
                       RouteParam("parentId", description="Id of the parent job."),
                       *_FILTERS])
    info.add_route("POST", "job", create, scope=CREATE_SCOPE, access="token",
                   summary="Create a job model", params=[
                       RouteParam("title", required=True, description="Title of the job."),
                       RouteParam("type", required=True, description="Type of the job."),
                       RouteParam("parentId", description="ID of the parent job."),
                       RouteParam("public", "boolean", default=False,
                                  description="Whether the job is publicly visible."),
                       RouteParam("handler", description="Job handler string."),
                       RouteParam("args", "jsonArray", description="Job arguments"),
                       RouteParam("kwargs", "jsonObject", description="Job keyword arguments"),
                       RouteParam("otherFields", "jsonObject",
                                  description="Other fields specific to the job handler")])
    info.add_route("GET", "job/all", list_all, scope=LIST_SCOPE, access="user",
                   summary="List all jobs.", params=list(_FILTERS))
    info.add_route("GET", "job/typeandstatus/all", all_types_statuses, scope=LIST_SCOPE,
                   access="user", summary="Get types and statuses of all jobs")
    info.add_route("GET", "job/typeandstatus", types_statuses, scope=LIST_SCOPE,
                   access="user", summary="Get types and statuses of jobs of current user")
    info.add_route("GET", "job/:id", get, scope=FULL_LOGIN, summary="Get a job by ID.",
                   params=[_ID])
    info.add_route("PUT", "job/:id", update, scope=FULL_LOGIN, access="token",
                   summary="Update an existing job.", params=[
                       _ID,
                       RouteParam("log", description="A message to add to the job's log."),
                       RouteParam("overwrite", "boolean", default=False,
                                  description="Overwrite the log rather than append to it."),
                       RouteParam("status", description="Update the status of the job."),
                       RouteParam("progressTotal", "number",
                                  description="Maximum progress value."),
                       RouteParam("progressCurrent", "number",
                                  description="Current progress value."),
                       RouteParam("progressMessage", description="Current progress message."),
                       RouteParam("notify", "boolean", default=True,
                                  description="Whether this update should notify.")])
    info.add_route("PUT", "job/:id/cancel", cancel, scope=FULL_LOGIN, access="user",
                   summary="Cancel a job by ID.", params=[_ID])
    info.add_route("DELETE", "job/:id", delete, scope=FULL_LOGIN, access="user",
                   summary="Delete an existing job.", params=[_ID])
    info.add_route("GET", "job/:id/log", job_log, scope=FULL_LOGIN,
                   summary="A page of a job's log (Joist).", params=[
                       _ID, RouteParam("offset", "integer", default=0,
                                       description="The first line."),
                       RouteParam("limit", "integer", default=100,
                                  description="How many lines (0: all).")])
