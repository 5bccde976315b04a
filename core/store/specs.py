"""Collections of the metadata store and their declared indexes.

Every hot query (children of a folder, child by name, token by value, user by
login, file by sha512...) must be served by one of these indexes; the engines
create them on start.
"""

from __future__ import annotations

from ..db.engine import CollectionSpec, Index

ACL_ARRAYS = frozenset({"access.users", "access.groups", "publicFlags"})


def _ix(*keys: str, unique: bool = False, sparse: bool = False) -> Index:
    return Index(tuple((k[1:], -1) if k.startswith("-") else (k, 1) for k in keys),
                 unique=unique, sparse=sparse)


USER = CollectionSpec(
    "user",
    indexes=(_ix("login", unique=True), _ix("email", unique=True), _ix("groups"),
             _ix("lastName", "firstName", "_id"), _ix("created", "_id")),
    array_fields=ACL_ARRAYS | {"groups", "groupInvites", "oauth"},  # oauth: provider links
)
GROUP = CollectionSpec(
    "group",
    indexes=(_ix("lowerName", unique=True), _ix("name")),
    array_fields=ACL_ARRAYS | {"requests"},
)
COLLECTION = CollectionSpec(
    "collection",
    indexes=(_ix("name", unique=True), _ix("lowerName", "_id")),
    array_fields=ACL_ARRAYS,
)
FOLDER = CollectionSpec(
    "folder",
    # (parentId, name) unique: two concurrent creates of one name cannot both win.
    indexes=(_ix("parentId", "name", unique=True), _ix("parentId", "lowerName", "_id"),
             _ix("baseParentId")),
    array_fields=ACL_ARRAYS,
)
ITEM = CollectionSpec(
    "item",
    indexes=(_ix("folderId", "name", unique=True), _ix("folderId", "lowerName", "_id"),
             # a folder's items by modified date: the web client's date column
             _ix("folderId", "updated", "_id"), _ix("baseParentId")),
)
FILE = CollectionSpec(
    "file",
    # pending: the records of a blob awaiting its hand-over (few, sparse)
    indexes=(_ix("itemId", "name", "_id"), _ix("sha512", sparse=True),
             _ix("pending", sparse=True),
             _ix("assetstoreId", "_id"), _ix("assetstoreId", "name", "_id")),
    array_fields=frozenset({"exts"}),
)
UPLOAD = CollectionSpec(
    "upload",
    indexes=(_ix("userId"), _ix("updated"), _ix("parentId")),
)
TOKEN = CollectionSpec(
    "token",
    indexes=(_ix("userId"), _ix("apiKeyId", sparse=True), _ix("expires")),
    array_fields=frozenset({"scope"}) | ACL_ARRAYS,
    ttl_field="expires",
)
API_KEY = CollectionSpec(
    "api_key",
    indexes=(_ix("key", unique=True), _ix("userId", "name")),
    array_fields=frozenset({"scope"}) | ACL_ARRAYS,
)
SSH_KEY = CollectionSpec(
    "ssh_key",
    indexes=(_ix("fingerprint", unique=True), _ix("userId")),
)
SETTING = CollectionSpec("setting", indexes=(_ix("key", unique=True),))
ASSETSTORE = CollectionSpec("assetstore", indexes=(_ix("name", unique=True),))
THROTTLE = CollectionSpec("throttle", indexes=(_ix("expires"),), ttl_field="expires")
LOCK = CollectionSpec("lock", indexes=(_ix("root"), _ix("expires")), ttl_field="expires")
MOUNT = CollectionSpec("mount", indexes=(_ix("host", "pid"),))
# {_id: folderId, items: n}: each folder's item count, for Girder-Total-Count
# without a count query. Kept apart from the folder document on purpose: a
# folder update rewrites the entries of every expression index on folders, and
# an item create bumps the count (30% of its cost when it lived in the folder).
FOLDER_COUNT = CollectionSpec("folder_count")
# Mail that could not be delivered after every retry (bounded: core.mail keeps
# the newest few hundred), listed to administrators by ``GET system/mail``.
MAIL_FAILURE = CollectionSpec("mail_failure", indexes=(_ix("-time"), _ix("expires")),
                              ttl_field="expires")

# Girder's notification stream: each user's progress and job events, read by
# (userId, updated); transient, so each carries an expiry.
NOTIFICATION = CollectionSpec("notification", indexes=(_ix("userId", "updated", "_id"),),
                              ttl_field="expires")
# One document, {_id: "generations", auth: n, tree: n, assetstore: n}: change
# counters bumped in the same transaction as the writes they count, read by
# every process's caches (``watch.Generations``).
GENERATION = CollectionSpec("generation")

ALL_SPECS = (USER, GROUP, COLLECTION, FOLDER, ITEM, FILE, UPLOAD, TOKEN, API_KEY, SSH_KEY,
             SETTING, ASSETSTORE, THROTTLE, LOCK, MOUNT, FOLDER_COUNT, MAIL_FAILURE,
             NOTIFICATION, GENERATION)
