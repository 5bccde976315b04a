"""Per-user SSH public keys, used by the SFTP gateway for key authentication."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct

from bson import ObjectId

from ..clock import utcnow
from ..db.engine import Collection, Document, DuplicateKeyError
from ..errors import ExistsError, NotFoundError, ValidationError

# OpenSSH names; "ssh-rsa" is the key type (signatures may still be SHA-2).
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521", "ssh-rsa")


def fingerprint(blob: bytes) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a key blob."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def parse_public_key(line: str) -> tuple[str, bytes, str]:
    """``"type base64 [comment]"`` -> (type, blob, comment); validates the blob."""
    if not isinstance(line, str):
        raise ValidationError("Public key must be a string.", field="key")
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise ValidationError("Public key must look like 'ssh-ed25519 AAAA... comment'.",
                              field="key")
    key_type, data = parts[0], parts[1]
    if key_type not in KEY_TYPES:
        raise ValidationError(f"Unsupported key type {key_type!r}; use one of "
                              f"{', '.join(KEY_TYPES)}.", field="key")
    try:
        blob = base64.b64decode(data, validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        embedded = blob[4:4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        raise ValidationError("Public key data is not valid base64 key data.",
                              field="key") from None
    if embedded != key_type:
        raise ValidationError("Public key type does not match its data.", field="key")
    return key_type, blob, parts[2] if len(parts) > 2 else ""


class SshKeyService:
    def __init__(self, keys: Collection) -> None:
        self._keys = keys

    def add(self, user: Document, line: str, name: str = "") -> Document:
        key_type, blob, comment = parse_public_key(line)
        doc = {"userId": user["_id"], "type": key_type,
               "key": base64.b64encode(blob).decode("ascii"),
               "fingerprint": fingerprint(blob), "name": (name or comment).strip(),
               "created": utcnow()}
        try:
            self._keys.insert_one(doc)
        except DuplicateKeyError:
            raise ExistsError("This key is already registered.", field="key") from None
        return doc

    def list(self, user_id: ObjectId) -> list[Document]:
        return self._keys.find({"userId": user_id}, sort=[("created", 1), ("_id", 1)])

    def remove(self, user_id: ObjectId, key_id_or_fingerprint: str) -> None:
        query: dict[str, object] = {"userId": user_id}
        if ObjectId.is_valid(key_id_or_fingerprint):
            query["_id"] = ObjectId(key_id_or_fingerprint)
        else:
            query["fingerprint"] = key_id_or_fingerprint
        if not self._keys.delete_one(query):
            raise NotFoundError("No such key.")

    def owner_of(self, blob: bytes) -> ObjectId | None:
        doc = self._keys.find_one({"fingerprint": fingerprint(blob)})
        return None if doc is None else doc["userId"]
