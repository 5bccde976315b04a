"""Issue 16 item 3 (web client): a signed-in user's jobs page lists their jobs
with status and progress, cancels a running one, and a job's page shows its
log; another user sees none of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bson import ObjectId

from joist.core.jobs import JobStatus, runtime_of
from tests.gateways.http.restsite import RestSite
from tests.gateways.plugins.pluginsite import plugin_site
from tests.web.pages import (
    console,
    csp_violations,
    find,
    heading,
    screen,
    script_errors,
    sign_in,
    sign_out,
    wait_for,
    wait_text,
)


@pytest.fixture(scope="module")
def jobs_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    with plugin_site(tmp_path_factory.mktemp("web-jobs") / "data", ["jobs"]) as site:
        yield site


def test_jobs_page_lists_cancels_and_shows_the_log(jobs_site: RestSite, browser: Any) -> None:
    site = jobs_site
    jobs = runtime_of(site.app.services.events).jobs
    alice = {"_id": ObjectId(site.id("alice"))}
    done = jobs.create_job("Thumbnails", "demo.thumbs", user=alice)
    for status in (JobStatus.QUEUED, JobStatus.RUNNING):
        jobs.update_job(done, status=status)
    jobs.update_job(done, log="made 3 thumbnails", progress_total=3, progress_current=3,
                    progress_message="3 of 3")
    jobs.update_job(done, status=JobStatus.SUCCESS)
    running = jobs.create_job("Long import", "demo.import", user=alice)
    jobs.update_job(running, status=JobStatus.QUEUED)
    base = site.server.url

    sign_in(browser, base, "alice", next_path="/jobs")
    find(browser, "#my-jobs")
    heading(browser, "Jobs")
    row = f'#job-list tr[data-job="{done["_id"]}"]'
    wait_text(browser, "Success", f"{row} .job-status")
    assert find(browser, f"{row} progress").get_attribute("value") == "3"
    assert browser.find_elements("css selector", f"{row} .job-cancel") == []
    other = f'#job-list tr[data-job="{running["_id"]}"]'
    find(browser, f"{other} .job-cancel").click()
    wait_text(browser, "Canceled “Long import”.", "#flash")
    wait_text(browser, "Canceled", f"{other} .job-status")
    assert jobs.load(running["_id"])["status"] == JobStatus.CANCELED  # type: ignore[index]
    screen(browser, "jobs")

    find(browser, f"{row} a").click()
    heading(browser, "Thumbnails")
    wait_text(browser, "made 3 thumbnails", "#job-log")
    assert find(browser, "#job-status").text == "Success"
    screen(browser, "job")
    entries = console(browser)
    assert csp_violations(entries) == [] and script_errors(entries) == []

    sign_out(browser)
    sign_in(browser, base, "bobby", next_path="/jobs")
    heading(browser, "Jobs")
    wait_for(lambda: browser.find_elements("css selector", "#no-jobs"), "no jobs for bobby")
    sign_out(browser)


def test_jobs_page_without_the_plugin(web_site: RestSite, browser: Any) -> None:
    sign_in(browser, web_site.server.url, "alice", next_path="/jobs")
    heading(browser, "Jobs")
    wait_text(browser, "Jobs are not enabled on this server.", "#jobs-off")
    sign_out(browser)
