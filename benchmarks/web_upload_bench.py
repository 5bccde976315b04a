"""Web client upload benchmark (issue 15): a 1 GiB file uploaded from headless
Chromium through the page's Upload panel (the REST chunk protocol, as a person
does it), and the same file by girder-client in the same run, on loopback
against a live Joist. Target for the browser: at least 100 MB/s.

The browser is timed from choosing the file to the row saying "done" (the last
chunk answered with the file document); girder-client around its upload call.
Both results are checked: the stored bytes are read back and hashed.

Needs Debian's chromium and chromium-driver (``make system-deps``). Run by hand:

    .venv/bin/python benchmarks/web_upload_bench.py [--size-mib 1024] [--repeat 1]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from selenium.webdriver.common.by import By

sys.path.insert(0, str(Path(__file__).parent))
from http_bench import PASSWORD, make_big_file, start_joist, upload_in_subprocess
from web_bench import browser, wait

from joist.core.acl import SYSTEM, Principal

TARGET_MBS = 100.0
MiB = 1024 * 1024


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 * MiB):
            digest.update(block)
    return digest.hexdigest()


def sha256_over_rest(api: str, token: str, file_id: str) -> str:
    digest = hashlib.sha256()
    with requests.get(f"{api}file/{file_id}/download", headers={"Girder-Token": token},
                      stream=True, timeout=60) as reply:
        reply.raise_for_status()
        for block in reply.iter_content(8 * MiB):
            digest.update(block)
    return digest.hexdigest()


def only_file(api: str, token: str, folder_id: str, name: str) -> dict[str, Any]:
    headers = {"Girder-Token": token}
    items = requests.get(f"{api}item", params={"folderId": folder_id, "name": name},
                         headers=headers, timeout=10).json()
    assert len(items) == 1, items
    files = requests.get(f"{api}item/{items[0]['_id']}/files", headers=headers,
                         timeout=10).json()
    assert len(files) == 1, files
    return dict(files[0])


def browser_upload_seconds(driver: Any, url: str, source: Path) -> float:
    driver.get(url)
    wait(driver, "return !!document.querySelector('#upload-files') && "
                 "!document.querySelector('main[aria-busy]')")
    start = time.perf_counter()
    driver.find_element(By.ID, "upload-files").send_keys(str(source))
    wait(driver, "const r = document.querySelector('.upload-row');"
                 "if (r && r.dataset.state === 'failed') throw new Error(r.textContent);"
                 "return !!r && r.dataset.state === 'done'", deadline=600.0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    size = args.size_mib * MiB
    work = Path(tempfile.mkdtemp(prefix="joist-web-upload-bench-"))
    app, server = start_joist(work / "joist")
    driver = browser()
    try:
        svc = app.services
        admin = svc.users.create(SYSTEM, login="admin", email="admin@example.org",
                                 first_name="A", last_name="D", password=PASSWORD)
        owner = Principal.from_user(admin)
        private = svc.folders.list(owner, "user", admin["_id"], name="Private")[0][0]
        source = work / "big.bin"
        make_big_file(source, size)
        expected = sha256_of_file(source)
        api = server.url + "/api/v1/"
        token = requests.get(api + "user/authentication", auth=("admin", PASSWORD),
                             timeout=10).json()["authToken"]["token"]

        driver.get(server.url + "/login")
        wait(driver, "return !!document.querySelector('#login')")
        driver.find_element(By.ID, "login").send_keys("admin")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "#main button[type=submit]").click()
        wait(driver, "return !!document.querySelector('#account .me')")

        for run in range(args.repeat):
            web = svc.folders.create(owner, "folder", private["_id"], f"web-{run}")
            seconds = browser_upload_seconds(
                driver, f"{server.url}/user/admin/Private/web-{run}", source)
            doc = only_file(api, token, str(web["_id"]), source.name)
            assert doc["size"] == size and sha256_over_rest(api, token, doc["_id"]) == expected
            web_mbs = size / seconds / 1e6
            verdict = "ok" if web_mbs >= TARGET_MBS else "MISSED"
            print(f"{args.size_mib} MiB upload from headless Chromium: {seconds:.2f} s, "
                  f"{web_mbs:.0f} MB/s (target >= {TARGET_MBS:.0f} MB/s) {verdict}")

            gc = svc.folders.create(owner, "folder", private["_id"], f"girder-client-{run}")
            _, gc_seconds = upload_in_subprocess(api, token, str(gc["_id"]), source)
            doc = only_file(api, token, str(gc["_id"]), source.name)
            assert doc["size"] == size and sha256_over_rest(api, token, doc["_id"]) == expected
            print(f"{args.size_mib} MiB upload by girder-client:           {gc_seconds:.2f} s, "
                  f"{size / gc_seconds / 1e6:.0f} MB/s (for comparison)")
    finally:
        driver.quit()
        server.stop()
        app.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
