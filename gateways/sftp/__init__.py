"""The SFTP gateway: a read-only SFTP server on paramiko over the hierarchy.

``SftpServer(hierarchy, authenticator, host=..., port=..., host_key_path=...)``
with ``start()``/``stop()``/``address``; ``joist sftpd`` and ``joist serve``
run one. Every session gets ``hierarchy.view(principal, read_only=True)``.
"""

from .hostkey import load_host_key
from .server import SftpServer
from .settings import SftpTuning

__all__ = ["SftpServer", "SftpTuning", "load_host_key"]
