"""Deployment configuration: one typed schema for the TOML file, env and CLI.

Precedence, lowest first: schema defaults, the config file (``--config``,
``$JOIST_CONFIG``, ``~/.joist/joist.toml``, ``/etc/joist.toml``: the first that
exists), environment variables ``JOIST_<SECTION>__<KEY>`` (``JOIST_DATA_DIR``
for top-level keys), then CLI flags. ``config/default.toml`` is rendered from
this schema (a test keeps it in step).

Settings that every process of a deployment must agree on at run time (item
layout, token lifetime, registration policy...) are not here: they live in the
metadata store (``core/services/settings.py``, ``joist setting get|set``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ValidationError

ENV_PREFIX = "JOIST_"


def _opt(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class DatabaseSettings:
    engine: Literal["sqlite", "mongo"] = _opt(
        "sqlite", "Metadata engine: 'sqlite' (embedded, one file) or 'mongo'.")
    path: str = _opt("", "SQLite file; empty means <data_dir>/joist.db.")
    uri: str = _opt("mongodb://127.0.0.1:27017/joist",
                    "MongoDB connection URI (engine = 'mongo'); the path names the database.")
    synchronous: Literal["normal", "full"] = _opt(
        "normal", "SQLite durability: 'normal' survives killed processes, 'full' also "
                  "power loss, at a cost in write speed.")
    # Memory of the embedded store is bounded by these, not by the thread count.
    sqlite_connections: int = _opt(
        8, "SQLite connections one process keeps, shared by all its threads (a thread "
           "waits for a free one); each holds its share of sqlite_cache_mib.", minimum=1)
    sqlite_cache_mib: int = _opt(
        64, "SQLite page cache of one process, MiB, shared out among its connections.",
        minimum=0)
    sqlite_mmap_mib: int = _opt(
        0, "MiB of the SQLite file each connection maps into memory (0: none). Mapped "
           "pages count in the process's RSS once per connection.", minimum=0)


@dataclass(frozen=True)
class AssetstoreSettings:
    root: str = _opt("", "Filesystem assetstore root for the embedded default; empty means "
                         "<data_dir>/assetstore.")
    reserve_mb: int = _opt(1024, "Free space (MiB) the filesystem assetstore keeps in reserve; "
                                 "uploads that would eat into it are refused.")
    defer_hash_bytes: int = _opt(
        8 << 20, "Filesystem uploads of at least this many bytes are committed before they "
                 "are hashed: the SHA-512 that deduplicates them is computed in the "
                 "background, off the upload's path (0: hash every upload as it arrives).",
        minimum=0)


@dataclass(frozen=True)
class ServerSettings:
    host: str = _opt("127.0.0.1", "Address the HTTP server (REST and WebDAV) listens on.")
    port: int = _opt(8080, "HTTP port; 0 picks a free one.")
    threads: int = _opt(32, "Worker threads of the HTTP server.", minimum=1)
    workers: int = _opt(
        0, "Server processes sharing the HTTP and SFTP ports (`joist serve --workers`); "
           "0 means one per CPU core, 1 a single process.", minimum=0)
    # Slow clients (a head or body sent byte by byte) must not hold worker threads:
    # heads are read on no thread under a deadline, bodies under a minimum rate.
    header_timeout: float = _opt(
        10.0, "Seconds a client has to send a whole request head (from connecting, or "
              "from its first byte on a kept-alive connection); then 408.", minimum=0.1)
    body_timeout: float = _opt(
        30.0, "Longest wait, in seconds, for request body data; also the grace period "
              "before body_min_rate applies.", minimum=0.1)
    body_min_rate: int = _opt(
        512, "Bytes per second a request body must average once body_timeout has "
             "passed; a slower body ends in 408 and frees its thread. 0 disables.",
        minimum=0)
    max_connections_per_address: int = _opt(
        128, "Open HTTP connections one client address may have; more are refused "
             "with 503. 0 disables (behind a reverse proxy, whose address every "
             "request has, use 0 and limit clients at the proxy).", minimum=0)
    body_workers_per_address: int = _opt(
        0, "Worker threads that requests with large bodies (uploads) from one client "
           "address may hold at once; more wait their turn on no thread. 0 means half "
           "of threads (behind a reverse proxy, set it to threads).", minimum=0)
    public_url: str = _opt("", "Public base URL (behind a proxy); empty means derive from "
                               "requests.")


@dataclass(frozen=True)
class WebdavSettings:
    enabled: bool = _opt(True, "Serve WebDAV at /dav on the HTTP port.")
    port: int = _opt(-1, "Also serve WebDAV alone on this port; -1 disables, 0 picks one.")


@dataclass(frozen=True)
class SftpSettings:
    enabled: bool = _opt(True, "Start the read-only SFTP server with `joist serve`.")
    host: str = _opt("127.0.0.1", "Address the SFTP server listens on.")
    port: int = _opt(8022, "SFTP port; 0 picks a free one.")
    host_key: str = _opt("", "Host key file; empty means <data_dir>/sftp_host_ed25519_key, "
                             "generated on first start.")


@dataclass(frozen=True)
class FuseSettings:
    attr_timeout: float = _opt(1.0, "Seconds the kernel may cache attributes.")
    entry_timeout: float = _opt(1.0, "Seconds the kernel may cache name lookups.")
    read_ahead_kb: int = _opt(1024, "Kernel readahead window of the mount, KiB.")
    chunk_cache_mb: int = _opt(1024, "On-disk chunk cache for assetstores with no local path.")


@dataclass(frozen=True)
class MemorySettings:
    malloc_arenas: int = _opt(
        2, "glibc malloc arenas of a process (0: glibc's default, 8 per core). Threads "
           "allocating in arenas of their own strand freed memory there; fewer arenas "
           "keep RSS down at little cost in contention.", minimum=0)
    reclaim_interval: float = _opt(
        5.0, "Seconds between sweeps that drop expired cache entries and give freed "
             "memory back to the system (malloc_trim) once RSS has grown; 0 disables.",
        minimum=0)


@dataclass(frozen=True)
class SecuritySettings:
    bcrypt_rounds: int = _opt(12, "bcrypt cost of new password hashes (4-31).")


@dataclass(frozen=True)
class LoggingSettings:
    level: Literal["debug", "info", "warning", "error"] = _opt("info", "Log level.")
    file: str = _opt("", "Log file; empty means standard error.")


@dataclass(frozen=True)
class Settings:
    data_dir: str = _opt("~/.joist", "Where the embedded store, assetstore and keys live.")
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    assetstore: AssetstoreSettings = field(default_factory=AssetstoreSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    webdav: WebdavSettings = field(default_factory=WebdavSettings)
    sftp: SftpSettings = field(default_factory=SftpSettings)
    fuse: FuseSettings = field(default_factory=FuseSettings)
    memory: MemorySettings = field(default_factory=MemorySettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)

    # Derived paths: one place decides where the embedded default puts things.
    @property
    def data_path(self) -> Path:
        return Path(os.path.expanduser(self.data_dir)).resolve()

    @property
    def sqlite_path(self) -> Path:
        return Path(os.path.expanduser(self.database.path)) if self.database.path \
            else self.data_path / "joist.db"

    @property
    def assetstore_root(self) -> Path:
        return Path(os.path.expanduser(self.assetstore.root)) if self.assetstore.root \
            else self.data_path / "assetstore"

    @property
    def sftp_host_key(self) -> Path:
        return Path(os.path.expanduser(self.sftp.host_key)) if self.sftp.host_key \
            else self.data_path / "sftp_host_ed25519_key"


# ---------------------------------------------------------------- schema walk

@dataclass(frozen=True)
class Option:
    """One leaf of the schema: ``key`` is dotted (``server.port``)."""

    key: str
    type: Any
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    @property
    def env_name(self) -> str:
        return ENV_PREFIX + self.key.upper().replace(".", "__")

    @property
    def flag(self) -> str:
        return "--" + self.key.replace(".", "-").replace("_", "-")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def options(cls: type = Settings, prefix: str = "") -> list[Option]:
    """Every leaf option of the schema, in declaration order."""
    out: list[Option] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            out.extend(options(hint, prefix + f.name + "."))
            continue
        choices: tuple[str, ...] = ()
        base = hint
        if typing.get_origin(hint) is Literal:
            choices = tuple(typing.get_args(hint))
            base = str
        out.append(Option(prefix + f.name, base, f.default, f.metadata.get("help", ""),
                          choices, f.metadata.get("minimum")))
    return out


def _coerce(opt: Option, raw: Any, source: str) -> Any:
    try:
        if opt.type is bool:
            if isinstance(raw, bool):
                value: Any = raw
            elif str(raw).strip().lower() in ("1", "true", "yes", "on"):
                value = True
            elif str(raw).strip().lower() in ("0", "false", "no", "off", ""):
                value = False
            else:
                raise ValueError(raw)
        elif opt.type is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            value = int(raw)
        elif opt.type is float:
            value = float(raw)
        else:
            if not isinstance(raw, str | int | float) or isinstance(raw, bool):
                raise ValueError(raw)
            value = str(raw)
    except (TypeError, ValueError):
        raise ValidationError(f"{source}: {opt.key} must be {opt.type.__name__}, "
                              f"not {raw!r}", field=opt.key) from None
    if opt.choices and value not in opt.choices:
        raise ValidationError(f"{source}: {opt.key} must be one of "
                              f"{', '.join(opt.choices)}, not {value!r}", field=opt.key)
    if opt.minimum is not None and value < opt.minimum:
        raise ValidationError(f"{source}: {opt.key} must be at least {opt.minimum:g}, "
                              f"not {value!r}", field=opt.key)
    return value


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix + key + "."))
        else:
            flat[prefix + key] = value
    return flat


def _build(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    kwargs: dict[str, Any] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = _build(typing.cast(type, hint), values, prefix + f.name + ".")
        elif prefix + f.name in values:
            kwargs[f.name] = values[prefix + f.name]
    return cls(**kwargs)


def find_config_file(explicit: str | os.PathLike[str] | None,
                     env: Mapping[str, str], *, search: bool = True) -> Path | None:
    """The config file to read, by the documented precedence, or None."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ValidationError(f"Config file not found: {path}")
        return path
    if env.get("JOIST_CONFIG"):
        path = Path(env["JOIST_CONFIG"]).expanduser()
        if not path.is_file():
            raise ValidationError(f"JOIST_CONFIG names a missing file: {path}")
        return path
    if not search:
        return None
    for candidate in (Path("~/.joist/joist.toml").expanduser(), Path("/etc/joist.toml")):
        if candidate.is_file():
            return candidate
    return None


def load_settings(config: str | os.PathLike[str] | None = None,
                  env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None, *,
                  search: bool = True) -> Settings:
    """Defaults <- file <- environment <- ``overrides`` (dotted keys, from CLI).
    ``search`` False skips the default config locations (tests)."""
    env = os.environ if env is None else env
    known = {opt.key: opt for opt in options()}
    values: dict[str, Any] = {}

    path = find_config_file(config, env, search=search)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValidationError(f"Cannot read config file {path}: {exc}") from None
        for key, raw in _flatten(data).items():
            if key not in known:
                raise ValidationError(f"{path}: unknown setting {key!r}", field=key)
            values[key] = _coerce(known[key], raw, str(path))

    for opt in known.values():
        if opt.env_name in env:
            values[opt.key] = _coerce(opt, env[opt.env_name], opt.env_name)
    for name in env:
        if name.startswith(ENV_PREFIX) and name != "JOIST_CONFIG" and "__" in name and \
                name not in {o.env_name for o in known.values()}:
            raise ValidationError(f"Unknown setting in environment: {name}")

    for key, raw in (overrides or {}).items():
        if raw is None:
            continue
        if key not in known:
            raise ValidationError(f"Unknown setting {key!r}", field=key)
        values[key] = _coerce(known[key], raw, "command line")
    return typing.cast(Settings, _build(Settings, values))


def replace(settings: Settings, **changes: Any) -> Settings:
    """A copy with dotted-key changes, e.g. ``replace(s, **{"server.port": 0})``."""
    flat = {opt.key: _value_at(settings, opt.key) for opt in options()}
    known = {opt.key: opt for opt in options()}
    for key, raw in changes.items():
        if key not in known:
            raise ValidationError(f"Unknown setting {key!r}", field=key)
        flat[key] = _coerce(known[key], raw, "replace")
    return typing.cast(Settings, _build(Settings, flat))


def _value_at(settings: Any, key: str) -> Any:
    for part in key.split("."):
        settings = getattr(settings, part)
    return settings


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_toml(settings: Settings | None = None) -> str:
    """The schema as a commented TOML file (this is ``config/default.toml``)."""
    settings = settings or Settings()
    lines = ["# Joist configuration: every setting with its default.",
             "# Generated from core/settings.py; environment variables override it as",
             "# JOIST_<SECTION>__<KEY> (JOIST_DATA_DIR for top-level keys).", ""]
    section = None
    for opt in options():
        head, _, leaf = opt.key.rpartition(".")
        if head != section:
            if head:
                lines += ["", f"[{head}]"]
            section = head
        lines.append(f"# {opt.help}" + (f" One of: {', '.join(opt.choices)}."
                                        if opt.choices else ""))
        lines.append(f"{leaf} = {_toml_value(_value_at(settings, opt.key))}")
    return "\n".join(lines) + "\n"


__all__ = ["DatabaseSettings", "Option", "Settings", "find_config_file",
           "load_settings", "options", "render_toml", "replace"]
