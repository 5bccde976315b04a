"""What core accepts from a client: names, MIME types, metadata and JSON.

Every gateway and service checks through these, so a value one gateway
accepts is one every other gateway can show."""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from .errors import ValidationError

MAX_NAME_BYTES = 255
MAX_MIME_LENGTH = 255
MAX_META_DEPTH = 64  # MongoDB refuses documents nested past 100 levels
_INT64 = 1 << 63


def validate_name(name: Any, what: str = "Name", *, field: str = "name") -> str:
    """Girder strips names; we also refuse what no gateway could show.

    Refused: empty, ``.``, ``..``, NUL or other control characters, more than
    255 bytes of UTF-8. ``/`` and ``\\`` are allowed: the path codec escapes them.
    """
    if not isinstance(name, str):
        raise ValidationError(f"{what} must be a string.", field=field)
    name = name.strip()
    if not name:
        raise ValidationError(f"{what} must not be empty.", field=field)
    if name in (".", ".."):
        raise ValidationError(f"{what} must not be '.' or '..'.", field=field)
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ValidationError(f"{what} must not contain control characters.", field=field)
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise ValidationError(f"{what} must be at most {MAX_NAME_BYTES} bytes in UTF-8.",
                              field=field)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} must be valid Unicode.", field=field) from None
    return name


def validate_mime_type(value: Any) -> str | None:
    """A MIME type as an HTTP header can carry it: printable ASCII on one line,
    at most ``MAX_MIME_LENGTH`` characters (a line break would let a stored
    type inject headers into every download of the file). None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError("The MIME type must be a string.", field="mimeType")
    value = value.strip()
    if len(value) > MAX_MIME_LENGTH or any(not " " <= ch <= "~" for ch in value):
        raise ValidationError(f"The MIME type must be printable ASCII of at most "
                              f"{MAX_MIME_LENGTH} characters.", field="mimeType")
    return value


def validate_meta_keys(meta: dict[str, Any]) -> None:
    """Girder's metadata key rules (top-level keys only)."""
    for key in meta:
        if not isinstance(key, str) or not key:
            raise ValidationError("Key must not be empty.", field="metadata")
        if "." in key:
            raise ValidationError(f"Invalid key {key}: keys must not contain the '.' character."
                                  , field="metadata")
        if key.startswith("$"):
            raise ValidationError(f"Invalid key {key}: keys must not start with the '$' "
                                  "character.", field="metadata")


def loads_json(text: str | bytes) -> Any:
    """``json.loads``, with JSON nested too deep for the parser reported as the
    ``ValueError`` of any other invalid JSON (not as a ``RecursionError``)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def validate_meta(meta: dict[str, Any]) -> None:
    """Girder's key rules, plus what every engine and gateway can hold: at
    most ``MAX_META_DEPTH`` levels of nesting (deeper JSON overflowed the
    stack of every recursive copy and encoder on the way), finite numbers
    (JSON has no NaN), integers of 64 bits (BSON's widest). Walked with an
    explicit stack, so the check itself never recurses."""
    validate_meta_keys(meta)
    stack: list[tuple[Any, int]] = [(meta, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            for key in value:
                _require_unicode(key)
            children = list(value.values())
        elif isinstance(value, list | tuple):
            children = list(value)
        else:
            if isinstance(value, str):
                _require_unicode(value)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValidationError("Metadata numbers must be finite.", field="metadata")
            if isinstance(value, int) and not isinstance(value, bool) and \
                    not -_INT64 <= value < _INT64:
                raise ValidationError("Metadata integers must fit in 64 bits.",
                                      field="metadata")
            continue
        if depth > MAX_META_DEPTH:
            raise ValidationError(f"Metadata must not nest more than {MAX_META_DEPTH} "
                                  "levels deep.", field="metadata")
        stack.extend((child, depth + 1) for child in children)


def _require_unicode(text: Any) -> None:
    try:
        str(text).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no engine or client can hold it
        raise ValidationError("Metadata must be valid Unicode.", field="metadata") from None
