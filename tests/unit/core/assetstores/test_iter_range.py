"""``BlobReader.iter_range``: the one block loop every byte stream reads through
(downloads, archives, digests, copies), on the base class and on the local
reader's reused-buffer path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from joist.core.assetstores.base import BLOCK_SIZE, BlobReader
from joist.core.assetstores.localio import LocalBlobReader
from joist.core.errors import ValidationError
from joist.core.hierarchy.io import Reader
from joist.core.hierarchy.nodes import Node

DATA = bytes(range(256)) * 40 + b"tail"   # 10244 bytes: not a multiple of any block


class MemoryReader(BlobReader):
    """A blob in memory that records its reads; ``shrink_to`` makes it shorter
    after the first read, as a file cut under a reader."""

    def __init__(self, data: bytes, shrink_to: int | None = None) -> None:
        super().__init__()
        self.data = data
        self.shrink_to = shrink_to
        self.calls: list[tuple[int, int]] = []

    @property
    def size(self) -> int:
        return len(self.data)

    def _read_range(self, offset: int, size: int) -> bytes:
        self.calls.append((offset, size))
        chunk = self.data[offset:offset + size]
        if self.shrink_to is not None:
            self.data, self.shrink_to = self.data[:self.shrink_to], None
        return chunk


@pytest.fixture(params=["memory", "local", "local-reuse"])
def reader(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[BlobReader, bool]]:
    """(reader over DATA, whether to ask for a reused buffer)."""
    if request.param == "memory":
        blob: BlobReader = MemoryReader(DATA)
    else:
        path = tmp_path / "blob"
        path.write_bytes(DATA)
        blob = LocalBlobReader(str(path))
    with blob:
        yield blob, request.param.endswith("reuse")


SPANS = [
    (0, 0, 1024),                    # zero length
    (len(DATA), 0, 1024),            # zero length at the end
    (len(DATA), 10, 1024),           # starts at EOF
    (len(DATA) + 5000, 10, 1024),    # starts past EOF
    (0, len(DATA), 1024),            # whole, short last block
    (0, 10 * 1024, 1024),            # exactly ten blocks
    (0, 10 * 1024 + 1, 1024),        # one byte over a boundary
    (0, 10 * 1024 - 1, 1024),        # one byte under
    (1023, 2, 1024),                 # straddles a boundary
    (100, len(DATA) + 999, 4096),    # runs past EOF: clipped
    (len(DATA) - 1, 100, 1),         # one-byte blocks at the end
    (7, 50, 1),
    (0, len(DATA), BLOCK_SIZE),      # the default block bigger than the blob
]


@pytest.mark.parametrize(("offset", "length", "block"), SPANS)
def test_blocks_cover_the_span(reader: tuple[BlobReader, bool], offset: int, length: int,
                               block: int) -> None:
    blob, reuse = reader
    want = DATA[offset:offset + length]
    got: list[bytes] = []
    sizes: list[int] = []
    for data in blob.iter_range(offset, length, block, reuse=reuse):
        got.append(bytes(data))  # a reused buffer: copy before asking for the next
        sizes.append(len(data))
    assert b"".join(got) == want
    assert all(0 < n <= block for n in sizes)
    # Every block but the last is full: no extra round trips on remote readers.
    assert all(n == block for n in sizes[:-1])
    assert len(sizes) == -(-len(want) // block)


def test_default_blocks_are_bytes_a_consumer_may_keep(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(DATA)
    with LocalBlobReader(str(path)) as blob:
        kept = list(blob.iter_range(0, len(DATA), 1000))
    assert all(type(b) is bytes for b in kept)
    assert b"".join(kept) == DATA


def test_reuse_on_a_local_reader_hands_out_one_buffer(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(DATA)
    with LocalBlobReader(str(path)) as blob:
        views = []
        for view in blob.iter_range(0, 3000, 1000, reuse=True):
            assert isinstance(view, memoryview)
            views.append(view)
        assert views[0].obj is views[1].obj is views[2].obj
        assert bytes(views[0]) == DATA[2000:3000]   # overwritten by the last block


def test_base_reader_reads_each_block_once() -> None:
    blob = MemoryReader(DATA)
    assert b"".join(blob.iter_range(1000, 2500, 1024)) == DATA[1000:3500]
    assert blob.calls == [(1000, 1024), (2024, 1024), (3048, 452)]


@pytest.mark.parametrize(("offset", "length", "block"),
                         [(-1, 10, 1024), (0, -1, 1024), (0, 10, 0), (0, 10, -5)])
def test_bad_arguments_fail_at_the_call(offset: int, length: int, block: int) -> None:
    blob = MemoryReader(DATA)
    with pytest.raises(ValidationError):
        blob.iter_range(offset, length, block)  # not only once iterated
    assert blob.calls == []


def test_closed_reader(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(DATA)
    blob = LocalBlobReader(str(path))
    blocks = blob.iter_range(0, len(DATA), 1024, reuse=True)
    assert len(next(blocks)) == 1024
    blob.close()
    with pytest.raises(ValueError):
        next(blocks)
    with pytest.raises(ValueError):
        blob.iter_range(0, 10)


def test_a_reader_that_shrinks_ends_early() -> None:
    blob = MemoryReader(DATA, shrink_to=2500)
    got = b"".join(blob.iter_range(0, len(DATA), 1024))
    assert got == DATA[:2500]   # no error: callers count the bytes they need


@pytest.mark.parametrize("reuse", [False, True])
def test_a_local_file_cut_under_the_reader_ends_early(tmp_path: Path, reuse: bool) -> None:
    path = tmp_path / "blob"
    path.write_bytes(DATA)
    with LocalBlobReader(str(path)) as blob:
        blocks = blob.iter_range(0, len(DATA), 1024, reuse=reuse)
        first = bytes(next(blocks))
        os.truncate(path, 1500)
        rest = b"".join(bytes(b) for b in blocks)
    assert first + rest == DATA[:1500]


def test_hierarchy_reader_passes_through(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(DATA)
    node = Node("/f", "f", "item", False, size=len(DATA))
    with Reader(node, LocalBlobReader(str(path))) as reader:
        assert b"".join(reader.iter_range(10, 5000, 999)) == DATA[10:5010]
        views = list(reader.iter_range(0, 2000, 1000, reuse=True))
        assert isinstance(views[0], memoryview) and views[0].obj is views[1].obj


# -- the loops that read through it: what each does when the bytes end early ----
class ShortReader(MemoryReader):
    """Says it holds ``size`` bytes but has only ``data`` (a blob shorter than
    its record)."""

    def __init__(self, data: bytes, size: int) -> None:
        super().__init__(data)
        self._claimed = size

    @property
    def size(self) -> int:
        return self._claimed


def _short(data: bytes, size: int) -> ShortReader:
    return ShortReader(data, size)


def test_rest_and_webdav_bodies_stop_short() -> None:
    from joist.core import ranges
    from joist.gateways.http.downloads import _layout_chunks
    from joist.gateways.webdav.download import _blocks

    layout: list[bytes | ranges.ByteRange] = [b"--a\r\n", ranges.ByteRange(0, 3000),
                                              b"--b\r\n", ranges.ByteRange(4000, 5000)]
    rest = _short(DATA[:2000], len(DATA))
    assert b"".join(_layout_chunks(rest, layout)) == b"--a\r\n" + DATA[:2000]
    assert rest.closed
    node = Node("/f", "f", "item", False, size=len(DATA))
    dav = Reader(node, _short(DATA[:2000], len(DATA)))
    assert b"".join(_blocks(dav, layout)) == b"--a\r\n" + DATA[:2000]
    assert b"".join(_blocks(Reader(node, MemoryReader(DATA)), layout)) == \
        b"--a\r\n" + DATA[:3000] + b"--b\r\n" + DATA[4000:5000]


def test_zip_member_ending_early_fails_the_archive() -> None:
    from joist.gateways.http.zipstream import ZipMember, stream_zip

    whole = b"".join(stream_zip([ZipMember("a", len(DATA), open=lambda: MemoryReader(DATA))]))
    assert DATA in whole
    with pytest.raises(OSError, match="end early"):
        b"".join(stream_zip([ZipMember("a", len(DATA),
                                   open=lambda: _short(DATA[:2000], len(DATA)))]))


def test_sftp_digest_of_a_file_ending_early_fails() -> None:
    import hashlib

    from joist.gateways.sftp.errors import SftpStatusError
    from joist.gateways.sftp.extensions import _digests

    node = Node("/f", "f", "item", False, size=len(DATA))
    whole = _digests(Reader(node, MemoryReader(DATA)), "sha256", 10, len(DATA), 4096)
    assert whole == b"".join(hashlib.sha256(DATA[p:min(p + 4096, len(DATA))]).digest()
                             for p in range(10, len(DATA), 4096))
    with pytest.raises(SftpStatusError, match="ended early"):
        _digests(Reader(node, _short(DATA[:2000], len(DATA))), "sha256", 0, len(DATA), 4096)
