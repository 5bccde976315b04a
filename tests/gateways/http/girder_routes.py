"""Girder 5's core REST routes as Girder declares them: the truth that
``test_rest_girder_params.py`` holds Joist's route declarations against.

Written from the ``@access.*`` decorators and ``autoDescribeRoute(Description(...))``
declarations in girder/girder's ``girder/api/v1/*.py`` (5.0.x, master of
2026-08): for each of the 126 routes its access level (``public``, ``user``,
``admin``, or ``token`` for ``@access.token``: any valid token, no user
needed) and each parameter's name, where it goes (Swagger's ``in``: path,
query, formData, body, header), whether it is required, its Swagger type, and
the enum and default Girder gives it (``()`` / None: none given).
Girder's own rules applied: ``modelParam`` defaults to the path,
``paramType='form'`` is ``formData``, ``int`` is ``integer``, ``float`` is
``number``, ``password`` is a ``string``; ``pagingParams`` adds limit, offset,
sort and sortdir (``paging(default sort)`` below); S3's DEFAULT_REGION is
us-east-1; ``jsonParam``'s default ``()`` is Girder's "not given".
"""

from __future__ import annotations

from typing import Any, NamedTuple


class P(NamedTuple):
    name: str
    where: str = "query"
    required: bool = False
    type: str = "string"
    enum: tuple[Any, ...] | None = None
    default: Any = None


ID = P("id", "path", True)


def paging(sort: str) -> tuple[P, ...]:
    """Girder's ``pagingParams(defaultSort=sort)``."""
    return (P("limit", "query", False, "integer", default=50),
            P("offset", "query", False, "integer", default=0),
            P("sort", default=sort),
            P("sortdir", "query", False, "integer", enum=(1, -1), default=1))


# (method, path with ":x" wildcards) -> (access, parameters)
GIRDER_ROUTES: dict[tuple[str, str], tuple[str, tuple[P, ...]]] = {
    # api_key: girder/api/v1/api_key.py
    ("GET", "api_key"): ("user", (P("userId"), *paging("name"))),
    ("POST", "api_key"): ("user", (
        P("name", default=""), P("scope"), P("tokenDuration"),
        P("active", "query", False, "boolean", default=True), P("targetUserId"),
    )),
    ("DELETE", "api_key/:id"): ("user", (ID,)),
    ("PUT", "api_key/:id"): ("user", (
        ID, P("name"), P("scope", default=()), P("tokenDuration"),
        P("active", "query", False, "boolean"),
    )),
    ("POST", "api_key/token"): ("public", (
        P("key", "query", True), P("duration", "query", False, "number"),
    )),
    # assetstore: girder/api/v1/assetstore.py
    ("GET", "assetstore"): ("admin", (*paging("name"),)),
    ("POST", "assetstore"): ("admin", (
        P("name", "query", True), P("type", "query", True, "integer"), P("root"), P("perms"),
        P("bucket"), P("prefix", default=""), P("accessKeyId"), P("secret"),
        P("service", default=""), P("readOnly", "query", False, "boolean", default=False),
        P("region", default="us-east-1"), P("inferCredentials", "query", False, "boolean"),
        P("serverSideEncryption", "query", False, "boolean", default=False),
        P("allowS3AcceleratedTransfer", "query", False, "boolean", default=False),
    )),
    ("DELETE", "assetstore/:id"): ("admin", (ID,)),
    ("GET", "assetstore/:id"): ("admin", (ID,)),
    ("PUT", "assetstore/:id"): ("admin", (
        ID, P("name", "query", True), P("root"), P("perms"), P("bucket"), P("prefix", default=""),
        P("accessKeyId"), P("secret"), P("service", default=""),
        P("readOnly", "query", False, "boolean"), P("region", default="us-east-1"),
        P("current", "query", True, "boolean"), P("inferCredentials", "query", False, "boolean"),
        P("serverSideEncryption", "query", False, "boolean", default=False),
        P("allowS3AcceleratedTransfer", "query", False, "boolean", default=False),
    )),
    ("GET", "assetstore/:id/files"): ("admin", (ID, *paging("_id"))),
    ("POST", "assetstore/:id/import"): ("admin", (
        ID, P("importPath"), P("destinationId", "query", True),
        P("destinationType", "query", True, enum=("folder", "collection", "user")),
        P("progress", "query", False, "boolean", default=False),
        P("leafFoldersAsItems", "query", False, "boolean", default=False), P("fileIncludeRegex"),
        P("fileExcludeRegex"),
    )),
    # collection: girder/api/v1/collection.py
    ("GET", "collection"): ("public", (P("text"), *paging("name"))),
    ("POST", "collection"): ("user", (
        P("name", "query", True), P("description"),
        P("public", "query", False, "boolean", default=False),
    )),
    ("DELETE", "collection/:id"): ("user", (
        ID, P("progress", "query", False, "boolean", default=False),
    )),
    ("GET", "collection/:id"): ("public", (ID,)),
    ("PUT", "collection/:id"): ("user", (ID, P("name"), P("description"))),
    ("GET", "collection/:id/access"): ("user", (ID,)),
    ("PUT", "collection/:id/access"): ("user", (
        ID, P("access", "query", True), P("publicFlags"), P("public", "query", False, "boolean"),
        P("recurse", "query", False, "boolean", default=False),
        P("progress", "query", False, "boolean", default=False),
    )),
    ("GET", "collection/:id/details"): ("public", (ID,)),
    ("GET", "collection/:id/download"): ("public", (ID, P("mimeFilter"))),
    ("DELETE", "collection/:id/metadata"): ("user", (ID, P("fields", "body", True))),
    ("PUT", "collection/:id/metadata"): ("user", (
        ID, P("metadata", "body", True), P("allowNull", "query", False, "boolean", default=False),
    )),
    ("GET", "collection/details"): ("public", ()),
    # file: girder/api/v1/file.py
    ("POST", "file"): ("user", (
        P("parentType", "query", True, enum=("folder", "item")), P("parentId", "query", True),
        P("name", "query", True), P("size", "query", False, "integer"), P("mimeType"),
        P("linkUrl"), P("reference"), P("assetstoreId"), P("uploadExtraParameters"),
    )),
    ("DELETE", "file/:id"): ("user", (ID,)),
    ("GET", "file/:id"): ("public", (ID,)),
    ("PUT", "file/:id"): ("user", (ID, P("name"), P("mimeType"))),
    ("PUT", "file/:id/contents"): ("user", (
        ID, P("size", "query", True, "integer"), P("reference"), P("assetstoreId"),
    )),
    ("POST", "file/:id/copy"): ("user", (ID, P("itemId", "formData", True))),
    ("GET", "file/:id/download"): ("public", (
        ID, P("offset", "query", False, "integer", default=0),
        P("endByte", "query", False, "integer"),
        P("contentDisposition", enum=("inline", "attachment"), default="attachment"),
        P("extraParameters"),
    )),
    ("GET", "file/:id/download/:name"): ("public", (
        ID, P("name", "path", True), P("offset", "query", False, "integer"),
    )),
    ("PUT", "file/:id/move"): ("admin", (
        ID, P("assetstoreId", "formData", True),
        P("progress", "query", False, "boolean", default=False),
    )),
    ("POST", "file/chunk"): ("user", (
        P("uploadId", "formData", True), P("offset", "query", False, "integer", default=0),
        P("uploadExtraParameters"),
    )),
    ("POST", "file/completion"): ("user", (P("uploadId", "formData", True),)),
    ("GET", "file/offset"): ("user", (P("uploadId", "formData", True),)),
    ("DELETE", "file/upload/:id"): ("user", (ID,)),
    # folder: girder/api/v1/folder.py
    ("GET", "folder"): ("public", (
        P("parentType", enum=("folder", "user", "collection")), P("parentId"), P("text"),
        P("name"), *paging("lowerName"),
    )),
    ("POST", "folder"): ("user", (
        P("parentType", enum=("folder", "user", "collection"), default="folder"),
        P("parentId", "query", True), P("name", "query", True), P("description", default=""),
        P("reuseExisting", "query", False, "boolean", default=False),
        P("public", "query", False, "boolean"), P("metadata", "formData"),
    )),
    ("DELETE", "folder/:id"): ("user", (
        ID, P("progress", "query", False, "boolean", default=False),
    )),
    ("GET", "folder/:id"): ("public", (ID,)),
    ("PUT", "folder/:id"): ("user", (
        ID, P("name"), P("description"), P("parentType", enum=("folder", "user", "collection")),
        P("parentId"), P("metadata", "formData"),
    )),
    ("GET", "folder/:id/access"): ("user", (ID,)),
    ("PUT", "folder/:id/access"): ("user", (
        ID, P("access", "query", True), P("publicFlags"), P("public", "query", False, "boolean"),
        P("recurse", "query", False, "boolean", default=False),
        P("progress", "query", False, "boolean", default=False),
    )),
    ("DELETE", "folder/:id/contents"): ("user", (
        ID, P("progress", "query", False, "boolean", default=False),
    )),
    ("POST", "folder/:id/copy"): ("user", (
        ID, P("parentType", enum=("folder", "user", "collection")), P("parentId"), P("name"),
        P("description"), P("public", enum=("true", "false", "original")),
        P("progress", "query", False, "boolean", default=False),
    )),
    ("GET", "folder/:id/details"): ("public", (ID,)),
    ("GET", "folder/:id/download"): ("public", (ID, P("mimeFilter"))),
    ("DELETE", "folder/:id/metadata"): ("user", (ID, P("fields", "body", True))),
    ("PUT", "folder/:id/metadata"): ("user", (
        ID, P("metadata", "body", True), P("allowNull", "query", False, "boolean", default=False),
    )),
    ("GET", "folder/:id/position"): ("public", (
        ID, P("parentType", enum=("folder", "user", "collection")), P("parentId"), P("text"),
        P("name"), P("sort", default="lowerName"),
        P("sortdir", "query", False, "integer", enum=(1, -1), default=1),
    )),
    ("GET", "folder/:id/rootpath"): ("public", (ID,)),
    # group: girder/api/v1/group.py
    ("GET", "group"): ("public", (
        P("text"), P("exact", "query", False, "boolean", default=False), *paging("name"),
    )),
    ("POST", "group"): ("user", (
        P("name", "query", True), P("description", default=""),
        P("public", "query", False, "boolean", default=False),
    )),
    ("DELETE", "group/:id"): ("user", (ID,)),
    ("GET", "group/:id"): ("public", (ID,)),
    ("PUT", "group/:id"): ("user", (
        ID, P("name"), P("description"), P("public", "query", False, "boolean"),
        P("addAllowed", enum=("default", "no", "yesmod", "yesadmin")),
    )),
    ("GET", "group/:id/access"): ("public", (ID,)),
    ("DELETE", "group/:id/admin"): ("user", (ID, P("userId", "formData", True))),
    ("POST", "group/:id/admin"): ("user", (ID, P("userId", "formData", True))),
    ("GET", "group/:id/invitation"): ("public", (ID, *paging("lastName"))),
    ("POST", "group/:id/invitation"): ("user", (
        ID, P("userId", "formData", True), P("level", "query", False, "integer", default=0),
        P("quiet", "query", False, "boolean", default=False),
        P("force", "query", False, "boolean", default=False),
    )),
    ("DELETE", "group/:id/member"): ("user", (ID, P("userId", "formData"))),
    ("GET", "group/:id/member"): ("public", (ID, *paging("lastName"))),
    ("POST", "group/:id/member"): ("user", (ID,)),
    ("DELETE", "group/:id/moderator"): ("user", (ID, P("userId", "formData", True))),
    ("POST", "group/:id/moderator"): ("user", (ID, P("userId", "formData", True))),
    # item: girder/api/v1/item.py
    ("GET", "item"): ("public", (P("folderId"), P("text"), P("name"), *paging("lowerName"))),
    ("POST", "item"): ("user", (
        P("folderId", "query", True), P("name", "query", True), P("description", default=""),
        P("reuseExisting", "query", False, "boolean", default=False), P("metadata", "formData"),
    )),
    ("DELETE", "item/:id"): ("user", (ID,)),
    ("GET", "item/:id"): ("public", (ID,)),
    ("PUT", "item/:id"): ("user", (
        ID, P("name"), P("description"), P("folderId"), P("metadata", "formData"),
    )),
    ("POST", "item/:id/copy"): ("user", (ID, P("folderId"), P("name"), P("description"))),
    ("GET", "item/:id/download"): ("public", (
        ID, P("offset", "query", False, "integer", default=0), P("format"),
        P("contentDisposition", enum=("inline", "attachment"), default="attachment"),
        P("extraParameters"),
    )),
    ("GET", "item/:id/files"): ("public", (ID, *paging("name"))),
    ("DELETE", "item/:id/metadata"): ("user", (ID, P("fields", "body", True))),
    ("PUT", "item/:id/metadata"): ("user", (
        ID, P("metadata", "body", True), P("allowNull", "query", False, "boolean", default=False),
    )),
    ("GET", "item/:id/position"): ("public", (
        ID, P("folderId"), P("text"), P("name"), P("sort", default="lowerName"),
        P("sortdir", "query", False, "integer", enum=(1, -1), default=1),
    )),
    ("GET", "item/:id/rootpath"): ("public", (ID,)),
    # resource: girder/api/v1/resource.py
    ("DELETE", "resource"): ("user", (
        P("resources", "query", True), P("progress", "query", False, "boolean", default=False),
    )),
    ("GET", "resource/:id"): ("admin", (ID, P("type", "query", True))),
    ("GET", "resource/:id/path"): ("public", (ID, P("type", "query", True))),
    ("PUT", "resource/:id/timestamp"): ("admin", (
        ID, P("type", "query", True), P("created"), P("updated"),
    )),
    ("POST", "resource/copy"): ("user", (
        P("resources", "query", True), P("parentType", "query", True),
        P("parentId", "query", True), P("progress", "query", False, "boolean", default=False),
    )),
    ("GET", "resource/download"): ("public", (
        P("resources", "query", True),
        P("includeMetadata", "query", False, "boolean", default=False),
    )),
    ("POST", "resource/download"): ("public", (
        P("resources", "query", True),
        P("includeMetadata", "query", False, "boolean", default=False),
    )),
    ("GET", "resource/lookup"): ("public", (P("path", "query", True),)),
    ("PUT", "resource/move"): ("user", (
        P("resources", "query", True),
        P("parentType", "query", True, enum=("user", "collection", "folder")),
        P("parentId", "query", True), P("progress", "query", False, "boolean", default=False),
    )),
    ("GET", "resource/search"): ("public", (
        P("q", "query", True), P("mode", default="text"), P("types", "query", True),
        P("level", "query", False, "integer", default=0),
        P("limit", "query", False, "integer", default=10),
        P("offset", "query", False, "integer", default=0),
    )),
    # system: girder/api/v1/system.py
    ("GET", "system/access_flag"): ("public", ()),
    ("GET", "system/check"): ("public", (
        P("mode", enum=("basic", "quick", "slow"), default="basic"),
    )),
    ("PUT", "system/check"): ("admin", (P("progress", "query", False, "boolean", default=False),)),
    ("GET", "system/configuration"): ("admin", (
        P("section", "query", True), P("key", "query", True),
    )),
    ("GET", "system/plugin_static_files"): ("public", ()),
    ("GET", "system/plugins"): ("admin", ()),
    ("GET", "system/public_settings"): ("public", ()),
    ("DELETE", "system/setting"): ("admin", (P("key", "query", True),)),
    ("GET", "system/setting"): ("admin", (P("key"), P("list"))),
    ("PUT", "system/setting"): ("admin", (
        P("key", "formData"), P("value", "formData"), P("list", "formData"),
    )),
    ("GET", "system/setting/collection_creation_policy/access"): ("admin", ()),
    ("DELETE", "system/uploads"): ("admin", (
        P("uploadId"), P("userId"), P("parentId"), P("assetstoreId"),
        P("minimumAge", "query", False, "number"),
        P("includeUntracked", "query", False, "boolean", default=True),
    )),
    ("GET", "system/uploads"): ("admin", (
        P("uploadId"), P("userId"), P("parentId"), P("assetstoreId"),
        P("minimumAge", "query", False, "number"),
        P("includeUntracked", "query", False, "boolean", default=True), *paging("updated"),
    )),
    ("GET", "system/version"): ("public", ()),
    # token: girder/api/v1/token.py
    ("GET", "token/current"): ("public", ()),
    ("GET", "token/scopes"): ("public", ()),
    ("DELETE", "token/session"): ("token", ()),
    ("GET", "token/session"): ("public", ()),
    # user: girder/api/v1/user.py
    ("GET", "user"): ("user", (P("text"), *paging("lastName"))),
    ("POST", "user"): ("public", (
        P("login", "formData", True), P("email", "formData", True),
        P("firstName", "formData", True), P("lastName", "formData", True),
        P("password", "formData", True), P("admin", "formData", False, "boolean", default=False),
    )),
    ("DELETE", "user/:id"): ("user", (ID,)),
    ("GET", "user/:id"): ("public", (ID,)),
    ("PUT", "user/:id"): ("user", (
        ID, P("firstName", "query", True), P("lastName", "query", True), P("email", "query", True),
        P("admin", "query", False, "boolean"),
        P("status", enum=("pending", "enabled", "disabled")),
    )),
    ("GET", "user/:id/details"): ("public", (ID,)),
    ("DELETE", "user/:id/otp"): ("user", (ID,)),
    ("POST", "user/:id/otp"): ("user", (ID,)),
    ("PUT", "user/:id/otp"): ("user", (ID, P("Girder-OTP", "header", True))),
    ("PUT", "user/:id/password"): ("admin", (ID, P("password", "formData", True))),
    ("PUT", "user/:id/verification"): ("public", (ID, P("token", "formData", True))),
    ("DELETE", "user/authentication"): ("public", ()),
    ("GET", "user/authentication"): ("public", (P("Girder-OTP", "header"),)),
    ("GET", "user/details"): ("user", ()),
    ("GET", "user/me"): ("public", ()),
    ("PUT", "user/password"): ("user", (P("old", "formData", True), P("new", "formData", True))),
    ("PUT", "user/password/temporary"): ("public", (P("email", "query", True),)),
    ("GET", "user/password/temporary/:id"): ("public", (ID, P("token", "formData", True))),
    ("POST", "user/verification"): ("public", (P("login", "query", True),)),

}

# Routes of Girder's plugins that Joist builds in (issue 17), checked the same way.
GIRDER_PLUGIN_ROUTES: dict[tuple[str, str], tuple[str, tuple[P, ...]]] = {
    # plugins/ldap/girder_ldap/__init__.py
    ("GET", "system/ldap_server/status"): ("admin", (
        P("uri", "query", True), P("bindName", "query", True), P("password", "query", True),
    )),
}


def _job_filters() -> tuple[P, ...]:
    """The jobs plugin's filters and ``pagingParams(defaultSort='created',
    defaultSortDir=DESCENDING)``."""
    return (P("types"), P("statuses"), P("handlers"),
            P("limit", "query", False, "integer", default=50),
            P("offset", "query", False, "integer", default=0), P("sort", default="created"),
            P("sortdir", "query", False, "integer", enum=(1, -1), default=-1))


# plugins/jobs/girder_jobs/job_rest.py (checked by tests/gateways/plugins/test_jobs_rest.py
# against the jobs plugin's routes)
GIRDER_JOBS_ROUTES: dict[tuple[str, str], tuple[str, tuple[P, ...]]] = {
    ("GET", "job"): ("public", (P("userId"), P("parentId"), *_job_filters())),
    ("POST", "job"): ("token", (
        P("title", "query", True), P("type", "query", True), P("parentId"),
        P("public", "query", False, "boolean", default=False), P("handler"), P("args"),
        P("kwargs"), P("otherFields"),
    )),
    ("GET", "job/all"): ("user", _job_filters()),
    ("GET", "job/:id"): ("public", (ID,)),
    ("PUT", "job/:id"): ("token", (
        ID, P("log"), P("overwrite", "query", False, "boolean", default=False), P("status"),
        P("progressTotal", "query", False, "number"),
        P("progressCurrent", "query", False, "number"), P("progressMessage"),
        P("notify", "query", False, "boolean", default=True),
    )),
    ("PUT", "job/:id/cancel"): ("user", (ID,)),
    ("DELETE", "job/:id"): ("user", (ID,)),
    ("GET", "job/typeandstatus/all"): ("user", ()),
    ("GET", "job/typeandstatus"): ("user", ()),
}
