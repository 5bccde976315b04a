"""WebDAV gateway: wsgidav over the hierarchy view (see ``app.make_dav_app``)."""

from .app import make_dav_app

__all__ = ["make_dav_app"]
