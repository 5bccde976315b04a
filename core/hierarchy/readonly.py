"""``ReadOnlyView``: a view whose every write raises ``ReadOnlyError``.

SFTP always gets one (and FUSE without ``--rw``), so read-only is enforced by
core, not by a gateway leaving write handlers out (PyFilesystem2's WrapReadOnly).
"""

from __future__ import annotations

from typing import Any, NoReturn

from ..errors import ReadOnlyError
from .view import HierarchyView

MESSAGE = "This server is read-only."


class ReadOnlyView(HierarchyView):
    read_only = True

    @staticmethod
    def _refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
        raise ReadOnlyError(MESSAGE)

    require_writable = _refuse
    mkdir = _refuse
    open_write = _refuse
    remove = _refuse
    move = _refuse
    copy = _refuse
    set_metadata = _refuse
