"""Path rules that live in the view (issue 13, item 2): the replace modes of a
move or copy, the shallow (Depth: 0) copy, the write question, ``NodeKind``."""

from __future__ import annotations

import pytest

from joist.admin.bootstrap import App
from joist.core.errors import (
    AccessDeniedError,
    AuthenticationError,
    ExistsError,
    IsDirectoryError,
    NotDirectoryError,
    NotEmptyError,
    ReadOnlyError,
)
from joist.core.hierarchy import HierarchyView, NodeKind, Replace
from tests.world import A_TXT, LEAF, World, build_world

DATA = "/user/alice/Private/data"


@pytest.fixture
def world(app: App) -> World:
    return build_world(app)


@pytest.fixture
def view(world: World) -> HierarchyView:
    return world.app.hierarchy.view(world.principal("alice"))


def _write(view: HierarchyView, path: str, data: bytes) -> None:
    with view.open_write(path) as writer:
        writer.write(data)


def test_replace_none_refuses_an_existing_destination(view: HierarchyView) -> None:
    _write(view, f"{DATA}/b.txt", b"b")
    with pytest.raises(ExistsError):
        view.move(f"{DATA}/a.txt", f"{DATA}/b.txt")
    with pytest.raises(ExistsError):
        view.copy(f"{DATA}/a.txt", f"{DATA}/b.txt")
    assert view.open_read(f"{DATA}/b.txt").read() == b"b"


def test_replace_empty_directory_follows_posix_rename(view: HierarchyView) -> None:
    posix = Replace.EMPTY_DIRECTORY
    _write(view, f"{DATA}/b.txt", b"b")
    view.move(f"{DATA}/a.txt", f"{DATA}/b.txt", replace=posix)  # a file for a file
    assert view.open_read(f"{DATA}/b.txt").read() == A_TXT
    with pytest.raises(IsDirectoryError):
        view.move(f"{DATA}/b.txt", f"{DATA}/deep", replace=posix)
    with pytest.raises(NotDirectoryError):
        view.move(f"{DATA}/deep", f"{DATA}/b.txt", replace=posix)
    with pytest.raises(NotEmptyError):  # deep holds d1/...
        view.mkdir(f"{DATA}/other")
        view.mkdir(f"{DATA}/other/inner")
        view.move(f"{DATA}/other", f"{DATA}/deep", replace=posix)
    view.mkdir(f"{DATA}/empty")
    view.move(f"{DATA}/deep", f"{DATA}/empty", replace=posix)  # an empty directory goes
    assert view.open_read(f"{DATA}/empty/d1/d2/d3/leaf.txt").read() == LEAF
    assert not view.exists(f"{DATA}/deep")


def test_replace_any_removes_a_full_directory(view: HierarchyView) -> None:
    view.copy(f"{DATA}/a.txt", f"{DATA}/deep", replace=Replace.ANY)
    assert view.open_read(f"{DATA}/deep").read() == A_TXT


def test_shallow_copy_makes_the_folder_with_its_metadata_only(view: HierarchyView) -> None:
    view.set_metadata(f"{DATA}/deep", {"colour": "blue"})
    node = view.copy(f"{DATA}/deep", f"{DATA}/shallow", shallow=True)
    assert node.kind is NodeKind.FOLDER and node.meta == {"colour": "blue"}
    assert list(view.listdir(f"{DATA}/shallow", 0, 10)) == []
    # Over an existing folder: replaced as a whole, still without contents.
    view.copy(f"{DATA}/multi", f"{DATA}/shallow", replace=Replace.ANY)
    again = view.copy(f"{DATA}/deep", f"{DATA}/shallow", replace=Replace.ANY, shallow=True)
    assert again.is_dir and list(view.listdir(f"{DATA}/shallow", 0, 10)) == []


def test_the_write_question(world: World, view: HierarchyView) -> None:
    node = view.require_writable(f"{DATA}/a.txt")
    assert node is not None and node.kind == "item" and node.kind is NodeKind.ITEM
    assert view.require_writable(f"{DATA}/missing.txt") is None  # its parent decides
    for virtual in ("/", "/user", "/collection"):
        with pytest.raises(AccessDeniedError):
            view.require_writable(virtual)
    carol = world.app.hierarchy.view(world.principal("carol"))  # reads shared, no more
    with pytest.raises(AccessDeniedError):
        carol.require_writable("/collection/shared/docs/report.txt")
    anonymous = world.app.hierarchy.view(world.principal(None))
    with pytest.raises(AuthenticationError):
        anonymous.require_writable("/user/alice/Public/readme.txt")
    read_only = world.app.hierarchy.view(world.principal("alice"), read_only=True)
    with pytest.raises(ReadOnlyError):
        read_only.require_writable(f"{DATA}/a.txt")
