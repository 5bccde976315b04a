"""webdav."""
