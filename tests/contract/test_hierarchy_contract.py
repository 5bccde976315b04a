"""The hierarchy contract run directly against ``HierarchyView`` (no protocol)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from joist.admin.bootstrap import App
from joist.core.hierarchy import HierarchyView, Replace
from tests.contract.hierarchy_suite import ReadOnlyContract, WritableContract
from tests.world import World, build_world


class ViewClient:
    """``FsClient`` over a view: the reference every gateway is compared with."""

    def __init__(self, view: HierarchyView) -> None:
        self.view = view

    def listdir(self, path: str) -> list[str]:
        return [node.segment for node in self.view.listdir(path)]

    def isdir(self, path: str) -> bool:
        return self.view.stat(path).is_dir

    def size(self, path: str) -> int:
        return self.view.stat(path).size

    def read(self, path: str, offset: int = 0, size: int | None = None) -> bytes:
        with self.view.open_read(path) as reader:
            return reader.read_at(offset, reader.size if size is None else size)

    def write(self, path: str, data: bytes) -> None:
        with self.view.open_write(path) as writer:
            writer.write_from(io.BytesIO(data), len(data))

    def mkdir(self, path: str) -> None:
        self.view.mkdir(path)

    def remove(self, path: str) -> None:
        if self.view.stat(path).is_dir:
            raise IsADirectoryError(path)
        self.view.remove(path)

    def rmdir(self, path: str) -> None:
        self.view.remove(path, recursive=False)

    def rename(self, src: str, dst: str) -> None:
        self.view.move(src, dst, replace=Replace.ANY)


@pytest.fixture
def world(app: App) -> World:
    return build_world(app)


def _factory(world: World, read_only: bool) -> Callable[[str | None], ViewClient]:
    def make(login: str | None) -> ViewClient:
        principal = world.principal(login)
        return ViewClient(world.app.hierarchy.view(principal, read_only=read_only))
    return make


class TestViewWritable(WritableContract):
    @pytest.fixture
    def fs(self, world: World) -> Callable[[str | None], ViewClient]:
        return _factory(world, read_only=False)


class TestViewReadOnly(ReadOnlyContract):
    @pytest.fixture
    def fs(self, world: World) -> Callable[[str | None], ViewClient]:
        return _factory(world, read_only=True)
