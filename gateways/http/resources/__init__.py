"""Every REST resource's route declarations."""

from __future__ import annotations

from . import archives as _archives  # noqa: F401 - registers item/folder/collection zips
from .assetstore import api as assetstore
from .file import api as file
from .group import api as group
from .item import items
from .notification import api as notification
from .resource import api as resource
from .system import api as system
from .token import keys as api_key
from .token import tokens as token
from .tree import collections, folders
from .user import api as user

COLLECTORS = (system, user, token, api_key, group, collections, folders, items, file,
              resource, assetstore, notification)

__all__ = ["COLLECTORS"]
