"""Control-plane services: every rule about users, groups and the data tree.

Each method takes the acting ``Principal`` and enforces the ACL itself, so the
HTTP gateway and the admin CLI cannot get a rule wrong by calling them.

``Services`` is what gateways are handed, so it does not name the store: core
reaches it through ``TreeAccess`` (the data layer every service is built on), admin
through the app it builds, and ``tests/test_layering.py`` fails on any
``.store`` in ``gateways/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..assetstores.registry import AssetstoreRegistry
from ..auth.apikeys import ApiKeyService
from ..auth.authenticator import Authenticator
from ..auth.grants import GrantChecker
from ..auth.scopes import ScopeCatalog
from ..auth.sshkeys import SshKeyService
from ..auth.tokens import TokenService
from ..events import EventBus
from ..mail import MailService, Notices
from ..plugins import Plugins
from ..store import Store
from ..stored_settings import SettingsService
from .access import AccessService
from .assetstore_transfer import AssetstoreTransferService
from .collections import CollectionService
from .files import FileService
from .folders import FolderService
from .groups import GroupService
from .imports import ImportService
from .items import ItemService
from .ldap_accounts import LdapAccounts
from .locks import LockService
from .mounts import MountService
from .move_copy import MoveCopyService
from .notifications import NotificationService
from .removal import RemovalService
from .search import SearchService
from .tree_access import TreeAccess
from .uploads import UploadService
from .users import UserService


@dataclass(frozen=True)
class Services:
    settings: SettingsService
    assetstores: AssetstoreRegistry
    tree: TreeAccess
    folders: FolderService
    items: ItemService
    files: FileService
    uploads: UploadService
    collections: CollectionService
    users: UserService
    groups: GroupService
    access: AccessService
    moves: MoveCopyService
    removal: RemovalService
    auth: Authenticator
    locks: LockService
    mounts: MountService
    imports: ImportService
    transfers: AssetstoreTransferService
    search: SearchService
    scopes: ScopeCatalog
    mail: MailService
    notices: Notices
    events: EventBus
    plugins: Plugins
    notifications: NotificationService

    def close(self) -> None:
        """Stop what runs in the background: the mail outbox sends what is
        due, the event thread runs what is queued."""
        self.notifications.close()  # open streams end
        self.files.handover.close()
        try:
            self.mail.stop()
        finally:
            self.events.stop()

    @classmethod
    def build(cls, store: Store, assetstores: AssetstoreRegistry, *,
              bcrypt_rounds: int = 12, env: Mapping[str, str] | None = None,
              mail_templates: Path | None = None,
              events: EventBus | None = None) -> Services:
        settings = SettingsService(store.settings, env=env,
                                   generation=lambda: store.auth_generation.value)
        events = events if events is not None else EventBus()
        tree = TreeAccess(store, events)
        folders = FolderService(tree)
        items = ItemService(tree)
        files = FileService(tree, assetstores, settings)
        uploads = UploadService(tree, items, files, assetstores, settings)
        checker = GrantChecker(store, settings)
        tokens = TokenService(store.tokens, store.users, checker)
        scopes = ScopeCatalog()  # plugins register their own scopes here
        auth = Authenticator(store, settings, tokens,
                             ApiKeyService(store.api_keys, store.users, tokens, scopes),
                             SshKeyService(store.ssh_keys), checker)
        mail = MailService(settings, store.mail_failures, template_dir=mail_templates)
        notices = Notices(mail, auth, settings, store.users)
        plugins = Plugins(events, settings, scopes, store)
        users = UserService(tree, folders, settings, bcrypt_rounds=bcrypt_rounds,
                            notices=notices, tokens=tokens)
        auth.directory_accounts = LdapAccounts(users).account_for
        services = cls(
            settings=settings, assetstores=assetstores, tree=tree,
            folders=folders, items=items, files=files, uploads=uploads,
            collections=CollectionService(tree, settings),
            users=users,
            groups=GroupService(tree, settings, notices=notices),
            access=AccessService(tree),
            moves=MoveCopyService(tree, folders, items, files),
            removal=RemovalService(tree, files, uploads), auth=auth,
            locks=LockService(store.locks), mounts=MountService(store, tree, settings),
            imports=ImportService(tree, folders, items, files, assetstores),
            transfers=AssetstoreTransferService(tree, files, assetstores),
            search=SearchService(tree), scopes=scopes, mail=mail, notices=notices,
            events=events, plugins=plugins,
            notifications=NotificationService(store.notifications, events,
                                              settings=settings))
        plugins.services = services
        return services


__all__ = ["Services"]
