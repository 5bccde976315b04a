"""``joist worker``: a Celery worker running jobs (setting ``jobs.runner`` =
``celery``), with the same services the servers build from the same
configuration. The broker is the setting ``jobs.celery_broker`` (or
``JOIST_SETTING_JOBS_CELERY_BROKER``). SIGTERM stops it after the running jobs.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("worker", help="run jobs sent through the Celery broker")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="jobs run at once (threads), default 2")
    parser.add_argument("--loglevel", default="INFO",
                        help="Celery's log level (INFO shows each job received and done)")
    parser.set_defaults(handler=_worker)


def _worker(args: argparse.Namespace) -> int:
    from joist.core.jobs import jobs_runtime

    from ..bootstrap import build_app
    from ..cli import configure_logging, settings_from

    settings = settings_from(args)
    configure_logging(settings, args.verbose)
    app = build_app(settings)
    try:
        runtime = jobs_runtime(app.services.events)
        if runtime is None:
            print("The jobs plugin is not enabled: joist plugin enable jobs")
            return 2
        print("Joist worker: running jobs from the Celery broker", flush=True)
        runtime.run_celery_worker(max(1, args.concurrency), args.loglevel)
    finally:
        app.close()
    return 0
