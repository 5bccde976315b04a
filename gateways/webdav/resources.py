"""DAV resources over ``HierarchyView`` nodes: containers are collections,
files (and one-file items in the natural layout) are non-collections.

Every core call runs inside ``translate()``; resources are built from the
``Node`` the view returned, and names are ``node.segment`` (the codec-escaped
name every gateway lists).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from wsgidav.dav_error import DAVError
from wsgidav.dav_provider import DAVCollection, DAVNonCollection

from joist.core.errors import ValidationError
from joist.core.hierarchy import Node, Reader, Replace, Writer

from .errors import translate
from .props import PropertiesMixin

if TYPE_CHECKING:
    from .provider import RequestContext

HREF_SAFE = "!*'(),$-_|."  # wsgidav's choice (Nautilus chokes on %28)
GENERIC_TYPES = ("", "application/octet-stream", "application/x-www-form-urlencoded")


def child_path(parent: str, segment: str) -> str:
    return parent.rstrip("/") + "/" + segment


def resource_for(node: Node, environ: dict[str, Any]) -> JoistCollection | JoistFile:
    return JoistCollection(node, environ) if node.is_dir else JoistFile(node, environ)


class ChunkStream:
    """A readable stream over wsgidav's body iterator, for ``Writer.write_from``.

    Read on the request's own thread: a second thread overlapping receiving
    with hashing only contends for the GIL and halves throughput.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._head = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            try:
                item = next(self._chunks, b"")
            except ValueError as exc:  # cheroot's word for a malformed chunked body
                raise ValidationError(f"Malformed request body: {exc}"[:200]) from None
            if size < 0 or size >= len(item):
                return item  # the common case: a whole chunk, no copy
            self._head = memoryview(item)
        if size < 0 or size >= len(self._head):
            data, self._head = self._head, memoryview(b"")
        else:
            data, self._head = self._head[:size], self._head[size:]
        return bytes(data)


class UploadSink:
    """What ``begin_write`` returns: wsgidav hands it the body iterator."""

    def __init__(self, writer: Writer, length: int | None, request_id: str) -> None:
        self.writer = writer
        self.length = length
        self.request_id = request_id

    def writelines(self, chunks: Iterable[bytes]) -> None:
        # write_from streams into the assetstore and, when the length is known,
        # refuses a short body: a client gone mid-PUT leaves nothing behind.
        stream = ChunkStream(chunks)
        with translate(self.request_id):
            self.writer.write_from(stream, self.length)  # type: ignore[arg-type]
        # Reach the end of wsgidav's body iterator (nothing is left once the
        # declared length is in): it then knows the body was read and keeps
        # the connection open.
        stream.read()

    def close(self) -> None:
        pass


class _Common(PropertiesMixin):
    node: Node
    environ: dict[str, Any]
    path: str
    href: str | None = None

    def get_href(self) -> str:
        if self.href is None:
            self.href = super().get_href()  # type: ignore[misc]
        return self.href

    @property
    def ctx(self) -> RequestContext:
        return self.environ["joist.ctx"]  # type: ignore[no-any-return]

    def get_display_name(self) -> str:
        return self.node.name or "/"

    def get_creation_date(self) -> float | None:
        return self.node.ctime or None

    def get_last_modified(self) -> float | None:
        return self.node.mtime or None

    def get_used_bytes(self) -> int | None:
        return None  # quota comes from PropertiesMixin, only when asked for

    def get_available_bytes(self) -> int | None:
        return None

    # ------------------------------------------------------------ delete
    def support_recursive_delete(self) -> bool:
        return True

    def handle_delete(self) -> bool:
        ctx = self.ctx
        lock_man = self.provider.lock_manager  # type: ignore[attr-defined]
        if lock_man is not None:  # wsgidav checked the parent only
            lock_man.check_write_permission(
                url=self.get_ref_url(), depth="infinity",  # type: ignore[attr-defined]
                token_list=self.environ.get("wsgidav.ifLockTokenList", []),
                principal=self.environ.get("wsgidav.user_name", ""))
        with translate(ctx.request_id):
            ctx.view.remove(self.node.path, recursive=True)
        self._drop_locks()
        return True

    def delete(self) -> None:
        with translate(self.ctx.request_id):
            self.ctx.view.remove(self.node.path, recursive=True)
        self._drop_locks()

    def _drop_locks(self) -> None:
        if self.provider.lock_manager is not None:  # type: ignore[attr-defined]
            with translate(self.ctx.request_id):
                self.ctx.locks.delete_under(self.get_ref_url())  # type: ignore[attr-defined]

    # ------------------------------------------------------------ copy/move
    def _replace(self) -> Replace:
        return Replace.ANY if self.environ.get("HTTP_OVERWRITE", "T") == "T" else Replace.NONE

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        ctx = self.ctx
        dest = dest_path.rstrip("/")
        with translate(ctx.request_id):
            existed = ctx.view.exists(dest)
            ctx.view.copy(self.node.path, dest, replace=self._replace(),
                          shallow=not depth_infinity)
        ctx.created = not existed
        return True

    def handle_move(self, dest_path: str) -> bool:
        ctx = self.ctx
        dest = dest_path.rstrip("/")
        with translate(ctx.request_id):
            existed = ctx.view.exists(dest)
            ctx.view.move(self.node.path, dest, replace=self._replace())
        self._drop_locks()  # locks stay with the URL, which is gone
        ctx.created = not existed
        return True


class JoistCollection(_Common, DAVCollection):
    def __init__(self, node: Node, environ: dict[str, Any]) -> None:
        DAVCollection.__init__(self, node.path, environ)
        self.node = node

    def get_member_names(self) -> list[str]:
        return [m.node.segment for m in self.get_member_list()]

    def get_member_list(self) -> list[JoistCollection | JoistFile]:
        return list(self.iter_members())

    def iter_members(self) -> Iterator[JoistCollection | JoistFile]:
        """The members one at a time, as the listing pages in: a PROPFIND of a
        big folder never holds them all."""
        for node, href in self.iter_member_nodes():
            yield self.member(node, href)

    def iter_member_nodes(self) -> Iterator[tuple[Node, str]]:
        """(node, href) of each member: what a PROPFIND renders most members
        from, without a resource object each."""
        ctx = self.ctx
        if self.environ.get("REQUEST_METHOD") == "PROPFIND" and \
                self.provider.lock_manager is not None:
            ctx.prefetch_locks(self.get_ref_url())
        base = self.get_href()  # quoting the whole path again per member is costly
        with translate(ctx.request_id):
            for node in ctx.view.listdir(self.node.path):
                yield node, base + quote(node.segment, safe=HREF_SAFE) + \
                    ("/" if node.is_dir else "")

    def member(self, node: Node, href: str) -> JoistCollection | JoistFile:
        member = resource_for(node, self.environ)
        member.href = href
        return member

    def get_member(self, name: str) -> JoistCollection | JoistFile | None:
        return self.provider.get_resource_inst(  # type: ignore[no-any-return]
            child_path(self.path, name), self.environ)

    def create_empty_resource(self, name: str) -> JoistFile:
        path = child_path(self.node.path, name)
        if self.environ.get("REQUEST_METHOD") == "PUT":
            return PendingFile(path, self.environ)  # created when its bytes are complete
        ctx = self.ctx
        with translate(ctx.request_id):
            writer = ctx.view.open_write(path)
            try:
                node = writer.commit()
            finally:
                writer.abort()
        return JoistFile(node, self.environ)

    def create_collection(self, name: str) -> None:
        with translate(self.ctx.request_id):
            self.ctx.view.mkdir(child_path(self.node.path, name))


class JoistFile(_Common, DAVNonCollection):
    def __init__(self, node: Node, environ: dict[str, Any]) -> None:
        DAVNonCollection.__init__(self, node.path, environ)
        self.node = node
        self._writer: Writer | None = None

    def get_content_length(self) -> int:
        return self.node.size

    def get_content_type(self) -> str:
        return self.node.mime_type or "application/octet-stream"

    def get_etag(self) -> str | None:
        return self.node.etag

    def support_etag(self) -> bool:
        return True

    def support_ranges(self) -> bool:
        return True

    def get_content(self) -> Reader:
        with translate(self.ctx.request_id):
            return self.ctx.view.open_read(self.node.path)

    def begin_write(self, *, content_type: str | None = None) -> UploadSink:
        ctx = self.ctx
        mime = None if (content_type or "").split(";")[0].strip() in GENERIC_TYPES \
            else content_type
        with translate(ctx.request_id):
            self._writer = ctx.view.open_write(self.path, mime_type=mime)
        return UploadSink(self._writer, body_length(self.environ), ctx.request_id)

    def end_write(self, *, with_errors: bool) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if with_errors:
            writer.abort()
            return
        with translate(self.ctx.request_id):
            try:
                self.node = writer.commit()
            finally:
                writer.abort()  # a no-op after a commit


class PendingFile(JoistFile):
    """The target of a PUT to a new name: nothing exists until ``end_write``."""

    def __init__(self, path: str, environ: dict[str, Any]) -> None:
        name = path.rsplit("/", 1)[-1]
        super().__init__(Node(path, name, "item", False), environ)


def body_length(environ: dict[str, Any]) -> int | None:
    """The declared body length, or None for a chunked body."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    raw = environ.get("CONTENT_LENGTH", "")
    try:
        return max(int(raw), 0) if raw else 0
    except ValueError:
        raise DAVError(400, "Invalid Content-Length.") from None
