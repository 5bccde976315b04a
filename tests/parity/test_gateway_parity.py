"""The same principal sees the same tree on every gateway: names, kinds, sizes
and bytes on REST, WebDAV, SFTP and a FUSE mount are those of the core view, and
a path the principal may not read answers exactly as a missing one does (not
found; a denial never reveals existence).

How each gateway shows an item (ARCHITECTURE.md section 4): WebDAV, SFTP and
the mount show the view's natural layout themselves; REST has no tree, so its
client (``tests/gateways/http/restfs.py``) resolves paths with
``resource/lookup`` and lays items out the same way, checking every lookup back
with ``resource/{id}/path``. The one difference by design, pinned below: an
anonymous WebDAV reader is asked to log in (401) wherever it may not read,
exactly as where nothing exists.

One set of servers and mounts for the whole module (``everything``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from tests.contract.hierarchy_suite import FsClient
from tests.parity.gateways import (
    GATEWAYS,
    Entry,
    Everything,
    fuse_available,
    outcome,
    start_everything,
    walk,
)

PRINCIPALS = ("anna", "benno", None, "root")
NAMED = {"anna": "anna", "benno": "benno", None: "anonymous", "root": "admin"}
OPEN = "/collection/Open Data"
RAW = f"{OPEN}/raw data"
HIDDEN_FROM = {"anna": "/user/benno/Private/benno.txt",
               "benno": "/collection/Anna Only/plans/secret plan.txt",
               None: "/user/anna/Public/for benno/gift 🎁.txt"}


def gateway_params() -> list[object]:
    no_fuse = pytest.mark.skipif(not fuse_available(),
                                 reason="no /dev/fuse or fusermount3 on this machine")
    return [pytest.param(g, marks=no_fuse) if g == "fuse" else g for g in GATEWAYS]


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Everything]:
    site = start_everything(tmp_path_factory.mktemp("parity"))
    try:
        yield site
    finally:
        site.close()


@pytest.fixture(scope="module")
def reference(everything: Everything) -> dict[str | None, dict[str, Entry]]:
    """Each principal's tree as the core view shows it."""
    return {login: walk(everything.view(login)) for login in PRINCIPALS}


def test_the_reference_is_the_world_built(reference: dict[str | None, dict[str, Entry]]
                                          ) -> None:
    """The view's trees hold what parity_world.py built, so comparing with them
    means something: kinds, sizes, escaped names and who sees what."""
    anna, benno, anon, root = (reference[login] for login in PRINCIPALS)
    assert anna[f"{RAW}/notes.txt"][:2] == ("file", 1234)
    assert anna[f"{RAW}/empty.txt"][:2] == ("file", 0)
    assert anna[f"{RAW}/scan ü"][0] == "dir"
    assert anna[f"{RAW}/scan ü/page 1.png"][:2] == ("file", 70_000)
    assert anna[f"{RAW}/report/report v2.pdf"][:2] == ("file", 4096)
    assert anna[f"{RAW}/nothing"][0] == "dir"
    assert anna[f"{RAW}/a\\-b/back\\\\slash.txt"][:2] == ("file", 77)
    assert anna[f"{RAW}/2024/q1/jan/é.csv"][:2] == ("file", 321)
    assert anna[f"{RAW}/50% & more #1?.txt"][:2] == ("file", 50)
    assert "/collection/Anna Only/plans/pair/right.bin" in anna
    assert f"{OPEN}/anna's corner/mine.txt" in anna
    assert "/user/anna/Private/deep/er/est/bottom.txt" in anna
    assert "/user/benno/Private" not in anna
    assert "/user/anna/Public/for benno/gift 🎁.txt" in benno
    assert "/user/benno/Private/benno.txt" in benno
    for hidden in ("/collection/Anna Only", f"{OPEN}/anna's corner", "/user/anna/Private"):
        assert hidden not in benno and hidden not in anon and hidden in root
    assert "/user/anna/Public/hello world.txt" in anon
    assert "/user/anna/Public/for benno" not in anon
    assert f"{RAW}/scan ü/page 2.png" in anon
    assert set(anna) | set(benno) | set(anon) < set(root)


@pytest.mark.parametrize("login", PRINCIPALS, ids=NAMED.get)
@pytest.mark.parametrize("gateway", gateway_params())
def test_same_tree_on_every_gateway(everything: Everything, reference: dict[str | None,
                                    dict[str, Entry]], gateway: str, login: str | None
                                    ) -> None:
    fs = everything.fs(gateway, login)

    def children(client: FsClient, path: str) -> list[str]:
        if gateway == "rest" and login is None and path == "/user":
            # Girder's rule: GET user needs a login. Anonymous REST clients
            # reach users by path only, so walk on from the view's logins.
            with pytest.raises(PermissionError):
                client.listdir(path)
            return everything.view(None).listdir(path)
        return client.listdir(path)

    assert walk(fs, children) == reference[login]


@pytest.mark.parametrize("login", [p for p in PRINCIPALS if p != "root"], ids=NAMED.get)
@pytest.mark.parametrize("gateway", gateway_params())
def test_denied_answers_as_missing(everything: Everything, reference: dict[str | None,
                                   dict[str, Entry]], gateway: str, login: str | None
                                   ) -> None:
    """Every path the admin sees and this principal does not, probed every
    way, answers as a path that never existed."""
    fs = everything.fs(gateway, login)
    denied = sorted(set(reference["root"]) - set(reference[login]))
    assert HIDDEN_FROM[login] in denied, denied  # the world hides what it should
    expected = "PermissionError" if (gateway, login) == ("webdav", None) else \
        "FileNotFoundError"
    answers = {}
    for path in denied:
        for target in (path, path + "-never-was"):
            for probe in (fs.size, fs.read, fs.listdir, fs.isdir):
                answers[(target, probe.__name__)] = outcome(partial(probe, target))
    wrong = {key: got for key, got in answers.items() if got != expected}
    assert not wrong, wrong
