"""Fixtures shared by the filesystem assetstore tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from joist.core.assetstores.filesystem import BLOB_REFS_SPEC
from joist.core.db.engine import Collection
from joist.core.db.sqlite import SQLiteEngine


@pytest.fixture
def refs(tmp_path: Path) -> Iterator[Collection]:
    with SQLiteEngine(tmp_path / "meta.db") as engine:
        yield engine.collection(BLOB_REFS_SPEC)
