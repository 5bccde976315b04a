"""The FUSE gateway: ``joist mount PATH`` shows the tree as a local filesystem.

One mount runs as one principal through a ``HierarchyView`` (read-only unless
``--rw``), so programs that need plain paths see exactly what every other
gateway shows that principal. Start one with
``Mount(hierarchy.view(principal, read_only=True), MountOptions(...),
services.mounts).serve()`` (``admin/commands/mount.py`` does).
"""

from .mount import Mount, check_mountpoint, unmount
from .operations import JoistOperations
from .settings import STATS_NAME, MountOptions

__all__ = ["STATS_NAME", "JoistOperations", "Mount", "MountOptions", "check_mountpoint",
           "unmount"]
