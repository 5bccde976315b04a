"""Reading a ``multipart/byteranges`` body (RFC 9110 14.6) in tests, written
independently of the server's framing code so that it checks it."""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r'multipart/byteranges;\s*boundary="?([^";]+)"?', re.IGNORECASE)


def parts(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    """(Content-Range, Content-Type, data) of each part, in order; raises
    AssertionError when the framing is wrong."""
    match = _BOUNDARY.fullmatch(content_type.strip())
    assert match, content_type
    delimiter = b"--" + match.group(1).encode("ascii")
    assert body.startswith(delimiter + b"\r\n"), body[:80]
    assert body.endswith(b"\r\n" + delimiter + b"--\r\n"), body[-80:]
    inner = body[len(delimiter) + 2:-(len(delimiter) + 6)]
    found = []
    for chunk in inner.split(b"\r\n" + delimiter + b"\r\n"):
        head, sep, data = chunk.partition(b"\r\n\r\n")
        assert sep, chunk[:80]
        fields = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n"))
        assert set(fields) == {"Content-Type", "Content-Range"}, fields
        found.append((fields["Content-Range"], fields["Content-Type"], data))
    return found
