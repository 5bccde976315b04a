"""SFTP requests other than READ, each a call into the session's view.

Every method parses its request, calls core and returns the reply packet;
errors propagate to the session, which answers them through ``errors.py``.
Writes go to the view's write methods, which a ``ReadOnlyView`` refuses with
``ReadOnlyError``; the few writes core has no operation for (attributes,
links) are refused here with core's read-only message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from paramiko.sftp import (
    CMD_CLOSE,
    CMD_EXTENDED,
    CMD_FSETSTAT,
    CMD_FSTAT,
    CMD_LSTAT,
    CMD_MKDIR,
    CMD_OPEN,
    CMD_OPENDIR,
    CMD_READDIR,
    CMD_READLINK,
    CMD_REALPATH,
    CMD_REMOVE,
    CMD_RENAME,
    CMD_RMDIR,
    CMD_SETSTAT,
    CMD_STAT,
    CMD_SYMLINK,
    CMD_WRITE,
    SFTP_FAILURE,
    SFTP_FLAG_APPEND,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_EXCL,
    SFTP_FLAG_TRUNC,
    SFTP_FLAG_WRITE,
)

from joist.core.errors import NotDirectoryError, ReadOnlyError, UnsupportedError
from joist.core.hierarchy import HierarchyView, normalize
from joist.core.hierarchy.readonly import MESSAGE as READ_ONLY_MESSAGE

from . import extensions, wire
from .errors import SftpStatusError, unsupported
from .handles import DirHandle, FileHandle, HandleTable
from .settings import SftpTuning
from .wire import Request

WRITE_FLAGS = SFTP_FLAG_WRITE | SFTP_FLAG_APPEND | SFTP_FLAG_CREATE | SFTP_FLAG_TRUNC \
    | SFTP_FLAG_EXCL


class Operations:
    def __init__(self, view: HierarchyView, handles: HandleTable, tuning: SftpTuning) -> None:
        self.view = view
        self.handles = handles
        self.tuning = tuning
        self.table: dict[int, Callable[[Request], bytes]] = {
            CMD_OPEN: self.open, CMD_CLOSE: self.close, CMD_WRITE: self.write,
            CMD_LSTAT: self.stat, CMD_STAT: self.stat, CMD_FSTAT: self.fstat,
            CMD_SETSTAT: self.setstat, CMD_FSETSTAT: self.fsetstat,
            CMD_OPENDIR: self.opendir, CMD_READDIR: self.readdir, CMD_REMOVE: self.remove,
            CMD_MKDIR: self.mkdir, CMD_RMDIR: self.rmdir, CMD_REALPATH: self.realpath,
            CMD_RENAME: self.rename, CMD_READLINK: self.readlink, CMD_SYMLINK: self.symlink,
            CMD_EXTENDED: self.extended,
        }

    def run(self, req: Request) -> bytes:
        handler = self.table.get(req.kind)
        if handler is None:
            raise unsupported(f"Unknown request type {req.kind}")
        return handler(req)

    # ------------------------------------------------------------ helpers
    @staticmethod
    def path(req: Request) -> str:
        """The request's path, made absolute (the start directory is ``/``).
        Core splits it: ``.``, ``..`` (never above ``/``) and ``//`` resolve
        lexically there, and a malformed path is its ``InvalidPathError``."""
        raw = req.text()
        return raw if raw.startswith("/") else "/" + raw

    def refuse_write(self) -> bytes:
        """A write core has no operation for (attributes, links)."""
        if self.view.read_only:
            raise ReadOnlyError(READ_ONLY_MESSAGE)
        raise UnsupportedError("This operation is not supported.")

    # ------------------------------------------------------------ files
    def open(self, req: Request) -> bytes:
        path = self.path(req)
        flags = req.u32()
        req.attrs()
        if flags & WRITE_FLAGS:
            self.view.require_writable(path)  # a read-only view refuses here
            return self.refuse_write()
        return wire.handle_packet(req.id, self.handles.add(
            FileHandle(path, self.view.open_read(path))))

    def close(self, req: Request) -> bytes:
        self.handles.pop(req.string()).close()
        return wire.ok_packet(req.id)

    def write(self, req: Request) -> bytes:
        self.handles.get(req.string())
        return self.refuse_write()

    def stat(self, req: Request) -> bytes:
        return wire.attrs_packet(req.id, wire.encode_attrs(self.view.stat(self.path(req))))

    def fstat(self, req: Request) -> bytes:
        return wire.attrs_packet(req.id, wire.encode_attrs(self.handles.get(req.string()).node))

    def setstat(self, req: Request) -> bytes:
        self.path(req)
        req.attrs()
        return self.refuse_write()

    def fsetstat(self, req: Request) -> bytes:
        self.handles.get(req.string())
        req.attrs()
        return self.refuse_write()

    # ------------------------------------------------------------ directories
    def opendir(self, req: Request) -> bytes:
        path = self.path(req)
        node = self.view.stat(path)  # errors now, not at the first READDIR
        if not node.is_dir:
            raise NotDirectoryError("Not a directory.")
        return wire.handle_packet(req.id, self.handles.add(
            DirHandle(path, node, self.view.listdir(path))))

    def readdir(self, req: Request) -> bytes:
        nodes = self.handles.directory(req.string()).page(self.tuning.names_per_reply)
        if not nodes:
            return wire.eof_packet(req.id)
        now = time.time()
        return wire.name_packet(req.id, [
            (node.segment, wire.longname(node, now), wire.encode_attrs(node))
            for node in nodes])

    def mkdir(self, req: Request) -> bytes:
        path = self.path(req)
        req.attrs()
        self.view.mkdir(path)
        return wire.ok_packet(req.id)

    def rmdir(self, req: Request) -> bytes:
        self.view.remove(self.path(req), recursive=False)
        return wire.ok_packet(req.id)

    def remove(self, req: Request) -> bytes:
        self.view.remove(self.path(req))
        return wire.ok_packet(req.id)

    def rename(self, req: Request) -> bytes:
        source, target = self.path(req), self.path(req)
        self.view.move(source, target)
        return wire.ok_packet(req.id)

    # ------------------------------------------------------------ names
    def realpath(self, req: Request) -> bytes:
        # Lexical, as a mount's: existence is for stat to say (and to hide).
        path = normalize(self.path(req))
        return wire.name_packet(req.id, [(path, path, wire.EMPTY_ATTRS)])

    def readlink(self, req: Request) -> bytes:
        node = self.view.stat(self.path(req))
        if not node.link_url:
            raise SftpStatusError(SFTP_FAILURE, "Not a symbolic link")
        return wire.name_packet(req.id, [(node.link_url, node.link_url, wire.EMPTY_ATTRS)])

    def symlink(self, req: Request) -> bytes:
        req.text()
        req.text()
        return self.refuse_write()

    def extended(self, req: Request) -> bytes:
        return extensions.dispatch(self, req)


__all__ = ["WRITE_FLAGS", "Operations"]
