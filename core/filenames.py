"""What a file's name becomes: its extensions and its download header."""

from __future__ import annotations

from urllib.parse import quote

from .errors import ValidationError


def file_exts(name: str) -> list[str]:
    """``a.tar.GZ`` -> ``["tar", "gz"]`` (Girder's ``exts``)."""
    return [part.lower() for part in name.split(".")[1:]]


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """Girder's Content-Disposition for a download of ``name``: a latin-1 name,
    plus an RFC 5987 UTF-8 one when latin-1 cannot hold it. The REST gateway
    sends it; S3 sends it on a presigned redirect."""
    if disposition not in ("attachment", "inline"):
        raise ValidationError(f'Unallowed contentDisposition type "{disposition}".')
    safe = name.encode("latin-1", "replace").decode("latin-1").replace('"', "")
    safe = "".join(ch if 32 <= ord(ch) < 127 or ord(ch) > 159 else "_" for ch in safe)
    value = f'{disposition}; filename="{safe}"'
    try:
        name.encode("latin-1")
    except UnicodeEncodeError:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value
