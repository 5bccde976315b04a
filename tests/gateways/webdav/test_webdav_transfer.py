"""Bytes over WebDAV: ranges and validators, large streamed PUT/GET compared
byte for byte, a PUT cut off mid-body, and many clients at once."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from tests.gateways.webdav.conftest import DavSite
from tests.gateways.webdav.davclient import Dav
from tests.s3env import local_blobs_only
from tests.world import PASSWORD, Y_BIN

DATA = "/user/alice/Private/data"
MIB = 1 << 20


def test_ranges_and_etag(site: DavSite, dav: Callable[..., Dav]) -> None:
    alice = dav("alice")
    path = f"{DATA}/multi/y.bin"
    full = alice.request("GET", path)
    node = site.app.hierarchy.view(site.world.principal("alice")).stat(path)
    assert full.headers["ETag"] == f'"{node.sha512[:40]}"'
    assert full.headers["Accept-Ranges"] == "bytes"
    cases = {"bytes=0-9": Y_BIN[:10], "bytes=100-": Y_BIN[100:], "bytes=-16": Y_BIN[-16:],
             f"bytes=10-{len(Y_BIN) + 50}": Y_BIN[10:]}
    for header, expected in cases.items():
        resp = alice.request("GET", path, headers={"Range": header})
        assert resp.status_code == 206, header
        assert resp.content == expected, header
        first = len(Y_BIN) - 16 if header == "bytes=-16" else int(header[6:].split("-")[0])
        assert resp.headers["Content-Range"] == \
            f"bytes {first}-{first + len(expected) - 1}/{len(Y_BIN)}"
    assert alice.request("GET", path, headers={"Range": f"bytes={len(Y_BIN) + 1}-"}
                         ).status_code == 416
    stale = alice.request("GET", path, headers={"Range": "bytes=0-9", "If-Range": '"nope"'})
    assert stale.status_code == 200 and stale.content == Y_BIN
    assert alice.request("GET", path, headers={"If-None-Match": full.headers["ETag"]}
                         ).status_code == 304
    head = alice.request("HEAD", path)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == len(Y_BIN)


def _pattern(size: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    block = rng.randbytes(MIB)
    sent = 0
    while sent < size:
        step = min(MIB, size - sent)
        rotate = rng.randrange(MIB)
        yield (block[rotate:] + block[:rotate])[:step]
        sent += step


def _digest(chunks: Iterator[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def test_large_streamed_put_and_get(dav: Callable[..., Dav], tmp_path: Path) -> None:
    alice = dav("alice")
    size = 48 * MIB + 12345
    expected = _digest(_pattern(size, 1))
    source = tmp_path / "source.bin"
    with open(source, "wb") as out:
        out.writelines(_pattern(size, 1))
    with open(source, "rb") as sized:  # a file: requests streams it with Content-Length
        resp = alice.request("PUT", f"{DATA}/sized.bin", data=sized)
        assert resp.status_code == 201, resp.text
    resp = alice.request("PUT", f"{DATA}/chunked.bin", data=_pattern(size, 1))  # chunked
    assert resp.status_code == 201, resp.text
    for name in ("sized.bin", "chunked.bin"):
        with alice.session.get(alice.url(f"{DATA}/{name}"), stream=True, timeout=60) as got:
            assert got.status_code == 200
            assert int(got.headers["Content-Length"]) == size
            assert _digest(got.iter_content(MIB)) == expected
    tail = alice.request("GET", f"{DATA}/sized.bin", headers={"Range": f"bytes={size - 100}-"})
    assert tail.content == source.read_bytes()[-100:]


def test_malformed_chunked_body_is_a_client_error(site: DavSite, dav: Callable[..., Dav]
                                                  ) -> None:
    parts = urlsplit(site.base)
    import base64
    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall((f"PUT {parts.path}{DATA}/bad.bin HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Basic {auth}\r\nTransfer-Encoding: chunked\r\n"
                      "Connection: close\r\n\r\nzz\r\nhello\r\n0\r\n\r\n").encode())
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert dav("alice").request("HEAD", f"{DATA}/bad.bin").status_code == 404


def _raw_put(site: DavSite, path: str, declared: int, body: bytes) -> socket.socket:
    parts = urlsplit(site.base)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    import base64
    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    head = (f"PUT {parts.path}{path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Basic {auth}\r\nContent-Length: {declared}\r\n\r\n")
    sock.sendall(head.encode() + body)
    return sock


def _temp_sizes(site: DavSite) -> list[int]:
    temp = Path(site.app.settings.assetstore_root) / "temp"
    return [p.stat().st_size for p in temp.glob("*.part")] if temp.is_dir() else []


def _poll(check: Callable[[], bool], what: str, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@local_blobs_only
def test_put_cut_off_midway_leaves_nothing(site: DavSite, dav: Callable[..., Dav]) -> None:
    half = 6 * MIB
    sock = _raw_put(site, f"{DATA}/partial.bin", 2 * half, os.urandom(half))
    # The body streams into the assetstore as it arrives, not into memory.
    _poll(lambda: any(size >= half - MIB for size in _temp_sizes(site)), "streamed bytes")
    alice = dav("alice")
    assert alice.request("HEAD", f"{DATA}/partial.bin").status_code == 404
    sock.close()  # the client goes away
    _poll(lambda: not _temp_sizes(site) and
          site.app.store.uploads.count({}) == 0, "the aborted upload to be cleaned up")
    assert alice.request("HEAD", f"{DATA}/partial.bin").status_code == 404
    names = [h.rsplit("/", 1)[-1] for h in alice.responses(f"{DATA}/")]
    assert "partial.bin" not in names


def test_overwrite_cut_off_keeps_the_old_bytes(site: DavSite, dav: Callable[..., Dav]) -> None:
    alice = dav("alice")
    before = alice.request("GET", f"{DATA}/a.txt").content
    sock = _raw_put(site, f"{DATA}/a.txt", 4 * MIB, b"z" * MIB)
    sock.close()
    _poll(lambda: site.app.store.uploads.count({}) == 0, "the aborted upload to go")
    assert alice.request("GET", f"{DATA}/a.txt").content == before


def test_sixteen_clients_read_back_what_they_wrote(site: DavSite) -> None:
    errors: list[str] = []
    stop_at = time.monotonic() + 4.0

    def worker(index: int) -> None:
        client = Dav(site.base, ("alice", PASSWORD))
        rng = random.Random(index)
        mine: dict[str, bytes] = {}
        try:
            for _step in range(10_000):  # bounded; the clock ends it first
                if time.monotonic() > stop_at:
                    break
                choice = rng.random()
                if choice < 0.4 or not mine:
                    name = f"{DATA}/c{index}-{rng.randrange(3)}.bin"
                    body = rng.randbytes(rng.choice((0, 1, 4096, 300_000)))
                    resp = client.request("PUT", name, data=body)
                    if resp.status_code not in (201, 204):
                        errors.append(f"PUT {name}: {resp.status_code}")
                    mine[name] = body
                elif choice < 0.8:
                    name = rng.choice(sorted(mine))
                    got = client.request("GET", name)
                    if got.status_code != 200 or got.content != mine[name]:
                        errors.append(f"GET {name}: {got.status_code} {got.content[:80]!r}")
                else:
                    listing = client.propfind(f"{DATA}/", "1")
                    if listing.status_code != 207:
                        errors.append(f"PROPFIND: {listing.status_code}")
        except Exception as exc:
            errors.append(f"{index}: {exc!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
