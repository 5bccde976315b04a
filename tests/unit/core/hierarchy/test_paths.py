"""The path syntax and name codec every gateway shares (``core/hierarchy/paths.py``),
as a table: Girder's codec (``/`` in a name is ``\\-``, ``\\`` is ``\\\\``), lossless
round trips, and lexical ``.``/``..`` resolution that never climbs above ``/``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joist.core.errors import InvalidPathError
from joist.core.hierarchy.paths import (
    MAX_PATH_BYTES,
    decode_name,
    encode_name,
    join_path,
    normalize,
    parent_and_name,
    split_path,
)

# name as stored -> segment as it appears in a path
CODEC = [
    ("plain", "plain"),
    ("a/b", "a\\-b"),
    ("a\\b", "a\\\\b"),
    ("a\\-b", "a\\\\-b"),          # a literal backslash-dash survives a round trip
    ("/", "\\-"),
    ("\\", "\\\\"),
    ("x/\\/y", "x\\-\\\\\\-y"),
    ("", ""),
    ("ünïcode ☃", "ünïcode ☃"),
    ("sp ace", "sp ace"),
]


@pytest.mark.parametrize(("name", "segment"), CODEC)
def test_codec_table(name: str, segment: str) -> None:
    assert encode_name(name) == segment
    assert decode_name(segment) == name


# Segments Girder writes that decode without a round trip partner.
@pytest.mark.parametrize(("segment", "name"), [
    ("a\\/b", "a/b"),       # an escaped slash typed by hand
    ("trailing\\", "trailing\\"),
    ("a\\xb", "a\\xb"),     # an unknown escape stays as it is
])
def test_decoding_what_people_type(segment: str, name: str) -> None:
    assert decode_name(segment) == name


# path -> decoded names
SPLIT = [
    ("/", []),
    ("", []),
    ("/user/alice", ["user", "alice"]),
    ("/user//alice/", ["user", "alice"]),
    ("/user/./alice", ["user", "alice"]),
    ("/user/alice/..", ["user"]),
    ("/../../user", ["user"]),                    # never above the root
    ("/collection/a\\-b/c", ["collection", "a/b", "c"]),
    ("/collection/a\\/b", ["collection", "a/b"]),  # an odd run of \ escapes the /
    ("/collection/a\\\\/b", ["collection", "a\\", "b"]),  # an even run does not
]


@pytest.mark.parametrize(("path", "names"), SPLIT)
def test_split_table(path: str, names: list[str]) -> None:
    assert split_path(path) == names


@pytest.mark.parametrize(("path", "canonical"), [
    ("/user//alice/./x/../y", "/user/alice/y"),
    ("/collection/a\\/b", "/collection/a\\-b"),
    ("/", "/"),
])
def test_normalize_table(path: str, canonical: str) -> None:
    assert normalize(path) == canonical


@pytest.mark.parametrize("bad", ["/a\x00b", "/" + "x" * MAX_PATH_BYTES, None, b"/user"])
def test_invalid_paths(bad: object) -> None:
    with pytest.raises(InvalidPathError):
        split_path(bad)  # type: ignore[arg-type]


def test_parent_and_name() -> None:
    assert parent_and_name("/user/alice/a\\-b") == (["user", "alice"], "a/b")
    with pytest.raises(InvalidPathError):
        parent_and_name("/")


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.text(min_size=1).filter(lambda n: n not in (".", "..") and
                                           "\x00" not in n), max_size=6))
def test_join_then_split_round_trips(names: list[str]) -> None:
    assert split_path(join_path(names)) == names
