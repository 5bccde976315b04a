"""Run-time settings kept in the metadata store, shared by every process.

Keys use Girder's names where Girder has the setting (``core.*``) and
``joist.*`` for ours. Unknown keys are refused. ``JOIST_SETTING_<KEY>`` in the
environment (dots as underscores, upper case, JSON when it parses) overrides a
stored value, as Girder's ``GIRDER_SETTING_*`` does.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .auth.ldap_settings import ldap_options, ldap_servers, redact_servers, restore_passwords
from .db.engine import Collection
from .errors import ValidationError
from .validation import loads_json

Validator = Callable[[Any], Any]


def _choice(*values: str) -> Validator:
    def check(value: Any) -> Any:
        if value not in values:
            raise ValueError(f"must be one of {', '.join(values)}")
        return value
    check.choices = values  # type: ignore[attr-defined]  # offered by describe()
    return check


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
        return False
    raise ValueError("must be a boolean")


def _number(minimum: float | None = None, integer: bool = False,
            exclusive: bool = False) -> Validator:
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number")
        number = int(value) if integer else float(value)
        if integer and float(value) != number:
            raise ValueError("must be an integer")
        if minimum is not None and (number <= minimum if exclusive else number < minimum):
            raise ValueError(f"must be {'>' if exclusive else '>='} {minimum}")
        return number
    return check


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _nonblank(what: str) -> Validator:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{what} must not be blank")
        return value.strip()
    return check


def _url_prefix(value: Any) -> str:
    value = _string(value).strip()
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


def _collection_policy(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = loads_json(value)
    if not isinstance(value, Mapping):
        raise ValueError("must be an object with open, groups and users")
    return {"open": _bool(value.get("open", False)),
            "groups": [str(g) for g in value.get("groups") or []],
            "users": [str(u) for u in value.get("users") or []]}


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        value = loads_json(value)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("must be a JSON array of names")
    return list(dict.fromkeys(value))


def _mount_info(value: Any) -> Any:
    if value is not None and (not isinstance(value, Mapping) or "path" not in value):
        raise ValueError("must be an object with a path")
    return value


@dataclass(frozen=True)
class SettingDef:
    key: str
    default: Any
    validate: Validator
    help: str
    public: bool = False
    # Secrets. ``secret``: a string never shown (SECRET_MASK when set). For
    # structured values, ``redact`` gives what the API and the CLI may show and
    # ``restore(new, stored)`` puts back a secret a client left out when it sent
    # a redacted value back (so a read-modify-write keeps it).
    secret: bool = False
    redact: Callable[[Any], Any] | None = None
    restore: Callable[[Any, Any], Any] | None = None


SECRET_MASK = "********"
"""What a set secret setting reads as outside core; writing it back keeps the
stored value (so a settings form that echoes what it read changes nothing)."""


DEFINITIONS: dict[str, SettingDef] = {d.key: d for d in (
    SettingDef("core.cookie_lifetime", 180.0, _number(0, exclusive=True),
               "Days a login token lives (and the default cap for API-key tokens)."),
    SettingDef("core.cookie_domain", "", _string, "Domain attribute of the login cookie."),
    SettingDef("core.registration_policy", "open", _choice("open", "closed", "approve"),
               "Who may create accounts.", public=True),
    SettingDef("core.email_verification", "disabled",
               _choice("required", "optional", "disabled"), "Email verification policy."),
    SettingDef("core.enable_password_login", True, _bool, "Allow password logins.",
               public=True),
    SettingDef("core.api_keys", True, _bool, "Allow API keys."),
    SettingDef("core.enable_notification_stream", True, _bool,
               "Serve the notification stream (notification/stream)."),
    SettingDef("core.user_default_folders", "public_private",
               _choice("public_private", "none"), "Folders made for each new user."),
    SettingDef("core.collection_create_policy", {"open": False, "groups": [], "users": []},
               _collection_policy, "Who besides admins may create collections."),
    SettingDef("core.add_to_group_policy", "never",
               _choice("never", "noadmin", "nomod", "yesadmin", "yesmod"),
               "Whether group admins/moderators may add members without invitation."),
    SettingDef("core.upload_minimum_chunk_size", 5242880, _number(0, integer=True),
               "Smallest non-final upload chunk, bytes."),
    SettingDef("core.filehandle_max_size", 16777216, _number(1, integer=True),
               "Largest single read through SFTP and FUSE, bytes."),
    SettingDef("core.brand_name", "Joist", _string, "Name shown to users.", public=True),
    SettingDef("core.contact_email_address", "kitware@kitware.com", _string,
               "Contact address.", public=True),
    SettingDef("core.privacy_notice", "", _string, "Privacy notice URL.", public=True),
    SettingDef("core.banner_color", "#3F3B3B", _string, "Banner colour.", public=True),
    SettingDef("core.server_root", "", _string, "Public base URL of the server."),
    SettingDef("core.cors.allow_origin", "", _string, "CORS allowed origins."),
    SettingDef("core.cors.allow_methods", "GET, POST, PUT, HEAD, DELETE", _string,
               "CORS allowed methods."),
    SettingDef("core.cors.allow_headers",
               "Accept-Encoding, Authorization, Content-Disposition, Content-Type, Cookie, "
               "Girder-Authorization, Girder-OTP, Girder-Token", _string,
               "CORS allowed headers."),
    SettingDef("core.cors.expose_headers", "Girder-Total-Count, Content-Disposition",
               _string, "CORS exposed headers."),
    SettingDef("core.girder_mount_information", None, _mount_info,
               "Where a Joist FUSE mount of this store is (written by `joist mount`)."),
    # Mail (Girder's keys; ``core.smtp_host`` is spelled so in Girder).
    SettingDef("core.smtp_host", "localhost", _nonblank("SMTP host"), "SMTP server host."),
    SettingDef("core.smtp.port", 25, _number(1, integer=True), "SMTP server port."),
    SettingDef("core.smtp.encryption", "none", _choice("none", "starttls", "ssl"),
               "SMTP encryption: none, starttls or ssl (TLS from the first byte)."),
    SettingDef("core.smtp.username", "", _string,
               "SMTP login (empty: no authentication)."),
    SettingDef("core.smtp.password", "", _string, "SMTP password.", secret=True),
    SettingDef("core.email_from_address", "Joist <no-reply@joist.invalid>",
               _nonblank("Email from address"), "Sender of the mail the server sends."),
    SettingDef("core.email_host", "", _url_prefix,
               "Base URL of links in mail (empty: core.server_root, else the URL the "
               "request that caused the mail came to)."),
    SettingDef("joist.smtp.ca_file", "", _string,
               "PEM file of the CA(s) trusted for the SMTP server's certificate (empty: "
               "the system's). The certificate and host name are always checked."),
    SettingDef("joist.smtp.timeout", 20.0, _number(0, exclusive=True),
               "Seconds one SMTP connection attempt may take."),
    SettingDef("joist.mail.retries", 5, _number(0, integer=True),
               "How many times a message that failed is tried again."),
    SettingDef("joist.mail.retry_base_seconds", 5.0, _number(0, exclusive=True),
               "Delay before the first retry; it doubles each time (at most 1 hour)."),
    SettingDef("core.plugins_enabled", [], _names,
               "Plugins to load at the next start (their dependencies load too)."),
    SettingDef("joist.hierarchy.item_layout", "natural", _choice("natural", "girder"),
               "'natural': a one-file item named like its file shows as that file; "
               "'girder': every item is a directory of its files."),
    SettingDef("joist.hierarchy.cache_ttl", 1.0, _number(0),
               "Seconds a path lookup may be served from cache."),
    SettingDef("joist.anonymous_access", True, _bool,
               "Let anonymous clients read public data (REST, WebDAV, SFTP 'anonymous')."),
    SettingDef("joist.webdav.anonymous_read", False, _bool,
               "Serve public data to WebDAV clients that send no credentials (needs "
               "joist.anonymous_access too). Off: WebDAV answers 401 and clients ask for "
               "a login."),
    SettingDef("joist.throttle.max_failures", 5, _number(1, integer=True),
               "Failed logins allowed per login name per window."),
    SettingDef("joist.throttle.max_failures_per_address", 50, _number(1, integer=True),
               "Failed logins allowed per client address per window, all logins together "
               "(high: people behind one address must not lock each other out)."),
    SettingDef("joist.throttle.window_seconds", 300.0, _number(1),
               "Length of the failed-login window, seconds."),
    SettingDef("joist.uploads.abandoned_after", 86400.0, _number(0),
               "Seconds without activity after which `joist check --repair` removes an "
               "unfinished upload (streaming uploads whose process is gone go at once)."),
    SettingDef("joist.s3.redirect_downloads", True, _bool,
               "Redirect REST downloads of S3 files to presigned URLs."),
    SettingDef("ldap.servers", [], ldap_servers,
               "LDAP servers tried in order at password login (Girder's LDAP plugin): "
               "uri, bindName, password, baseDn, searchField, queryFilter, plus "
               "loginAttribute, startTls, tlsVerify, caCertFile. The bind password is "
               "never shown.", redact=redact_servers, restore=restore_passwords),
    SettingDef("ldap.settings", {"timeout": 4, "fallback": True, "recheck": 10}, ldap_options,
               "LDAP login options: timeout (seconds, per server), fallback (try the local "
               "password when the directory does not know the login or is unreachable), "
               "recheck (seconds between checks that a linked account's entry is still in "
               "the directory: its sessions, tokens and keys end when it is not)."),
)}


def env_name(key: str) -> str:
    return "JOIST_SETTING_" + key.upper().replace(".", "_")


# Keys are definitions' (checked first): few, and read on every request.
_env_name_of = functools.lru_cache(maxsize=4096)(env_name)


class SettingsService:
    """Typed access to stored settings, with a process-local cache.

    The cache keeps hot reads (item layout on every listing) off the store.
    Given ``generation`` (the store's counter that every settings write bumps,
    ``Store.auth_generation``), an entry holds while that counter stands
    still, so a change made in another process is seen by the next read;
    without it, within ``cache_seconds``.
    """

    def __init__(self, collection: Collection, *, env: Mapping[str, str] | None = None,
                 cache_seconds: float = 2.0,
                 generation: Callable[[], int] | None = None) -> None:
        self._coll = collection
        self._env = os.environ if env is None else env
        self._cache_seconds = cache_seconds
        self._generation = generation
        # key -> (read at, generation then, value)
        self._cache: dict[str, tuple[float, int, Any]] = {}
        self._lock = threading.Lock()  # guards _cache
        # Core's settings plus those plugins register (per app, not global).
        self._definitions = dict(DEFINITIONS)

    def register(self, definition: SettingDef) -> None:
        """Add a plugin's setting; its key may not shadow an existing one."""
        if not isinstance(definition, SettingDef):
            raise TypeError("register() takes a SettingDef")
        if definition.key in self._definitions:
            raise ValueError(f"The setting {definition.key} is already defined.")
        self._definitions[definition.key] = definition

    def unregister(self, key: str) -> None:
        if key not in DEFINITIONS:
            self._definitions.pop(key, None)
            self._forget(key)

    def definition(self, key: str) -> SettingDef:
        try:
            return self._definitions[key]
        except (KeyError, TypeError):  # TypeError: not even a string (a list from JSON)
            shown = key[:100] if isinstance(key, str) else type(key).__name__
            raise ValidationError(f"Invalid setting key \"{shown}\".", field="key") from None

    def validate(self, key: str, value: Any) -> Any:
        definition = self.definition(key)
        try:
            return definition.validate(value)
        except (TypeError, ValueError, json.JSONDecodeError) as exc:
            raise ValidationError(f"Invalid value for {key}: {exc}", field="value") from None

    def get(self, key: str) -> Any:
        definition = self.definition(key)
        variable = _env_name_of(key)
        if variable in self._env:
            raw = self._env[variable]
            if not definition.secret:  # a password of digits stays a string
                with contextlib.suppress(ValueError):
                    raw = loads_json(raw)
            return self.validate(key, raw)
        now = time.monotonic()
        generation = self._generation() if self._generation is not None else 0
        hit = self._cache.get(key)  # one dict read: no lock needed
        if hit is not None and hit[1] == generation and (
                self._generation is not None or now - hit[0] < self._cache_seconds):
            return hit[2]
        doc = self._coll.find_one({"key": key})
        value = definition.default if doc is None else doc.get("value")
        with self._lock:
            self._cache[key] = (now, generation, value)
        return value

    def shown(self, key: str) -> Any:
        """The value as the API and the CLI may show it (secrets left out)."""
        definition, value = self.definition(key), self.get(key)
        if definition.secret:
            return SECRET_MASK if value else ""
        return definition.redact(value) if definition.redact else value

    def set(self, key: str, value: Any) -> Any:
        """Store a validated value; None restores the default. Returns it as
        ``shown`` would."""
        definition = self.definition(key)
        if value is None:
            self.unset(key)
            return definition.default
        if definition.secret and value == SECRET_MASK:
            return SECRET_MASK  # echoed back from a listing: keep the stored secret
        value = self.validate(key, value)
        if definition.restore is not None:
            value = definition.restore(value, self.get(key))
        self._coll.update_one({"key": key}, {"$set": {"key": key, "value": value}},
                              upsert=True)
        self._forget(key)
        return definition.redact(value) if definition.redact else value

    def unset(self, key: str) -> None:
        self.definition(key)
        self._coll.delete_one({"key": key})
        self._forget(key)

    def all(self) -> dict[str, Any]:
        """Every setting as ``shown`` (secrets left out)."""
        return {key: self.shown(key) for key in self._definitions}

    def describe(self) -> list[dict[str, Any]]:
        """Every setting with its value, default, help, the choices of a choice
        setting, and whether the environment overrides it (what `joist setting
        list` shows; the web client's settings page is built from it). Values
        as ``shown``: secrets never leave core."""
        return [{"key": key, "value": self.shown(key),
                 "default": "" if d.secret else d.redact(d.default) if d.redact else d.default,
                 "help": d.help, "choices": list(getattr(d.validate, "choices", ())) or None,
                 "public": d.public, "secret": d.secret,
                 "fromEnvironment": env_name(key) in self._env}
                for key, d in self._definitions.items()]

    def public(self) -> dict[str, Any]:
        return {key: self.get(key) for key, d in self._definitions.items() if d.public}

    def _forget(self, key: str) -> None:
        with self._lock:
            self._cache.pop(key, None)
