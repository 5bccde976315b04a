"""The SFTP gateway: a read-only SFTP server on paramiko over the hierarchy.

``SftpServer(hierarchy, authenticator, host=..., port=..., host_key_path=...)``
with ``start()``/``stop()``/``address``; ``joist sftpd`` and ``joist serve``
run one. Every session gets ``hierarchy.view(principal, read_only=True)``.

Why an SFTP engine of its own, on paramiko's transport, rather than
paramiko's ``SFTPServer`` + ``SFTPServerInterface``:

* Listings. ``SFTPServerInterface.list_folder`` returns a folder's whole
  listing, which ``SFTPServer`` keeps in memory until the client has read it;
  here READDIR pages through the view (``names_per_reply`` at a time), so a
  folder of any size costs one page.
* Throughput. ``SFTPServer`` answers one request at a time, each its own
  channel packet, read and answered on the session thread. A pipelining
  client (OpenSSH ``sftp``, rclone) queues many: here a batch of queued
  requests is answered at once, contiguous READs on a handle share one
  read-ahead from the assetstore, replies leave in full packets
  (``session.py``), and light requests are answered on the transport thread
  as they arrive (``inbox.py``), saving a thread hand-over per round trip.
  ``benchmarks/sftp_bench.py --bare`` times paramiko's ``SFTPServer`` beside
  this engine and OpenSSH.
* One choke point for errors (``errors.py``) and one re-check of the login's
  grant before every request (a revoked key or account ends access at once),
  with statuses and messages in SFTP's own terms, never a traceback.
* Extensions clients use: ``limits@openssh.com``, ``check-file``, statvfs.

The engine speaks SFTP v3 itself (``wire.py``, ``operations.py``) and uses
paramiko for SSH only: transport, keys, authentication, channels. The few
paramiko internals it needs are in ``paramiko_internals.py``, checked when a
server is built.
"""

from .hostkey import load_host_key
from .server import SftpServer
from .settings import SftpTuning

__all__ = ["SftpServer", "SftpTuning", "load_host_key"]
