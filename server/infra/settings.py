"""One typed settings object, read from ``PLM_*`` environment variables.

A bad value stops start-up with a message that names the variable and what it accepts,
rather than failing later somewhere far from the cause.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Literal
from urllib.parse import urlparse

SmtpTls = Literal["auto", "none", "starttls", "tls"]
_SMTP_TLS: tuple[SmtpTls, ...] = ("auto", "none", "starttls", "tls")


class SettingsError(ValueError):
    """A ``PLM_*`` variable holds a value the server cannot use."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./plm.db"
    broadcast_url: str = "memory://"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str = "plm@localhost"
    smtp_tls: SmtpTls = "auto"
    notify_digest_seconds: int = 60
    retention_days: int = 30
    public_url: str = "http://127.0.0.1:8000"
    # Operational knobs an operator may need; not in the spec, documented in the README.
    sqlite_busy_timeout_ms: int = 10_000
    log_level: str = "info"
    # How long one HTTP request (or websocket operation) may take before it is answered 503,
    # and the database waits inside it (see server.db): a paused database must not hold
    # requests, and their memory, for as long as the pause lasts.
    request_timeout_seconds: float = 10.0
    db_connect_timeout_seconds: float = 5.0
    db_pool_timeout_seconds: float = 5.0
    db_statement_timeout_seconds: float = 30.0

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _int(name: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number from {lo} to {hi}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}={raw!r}: expected a whole number from {lo} to {hi}")
    return value


def _seconds(name: str, raw: str, lo: float, hi: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number of seconds from {lo:g} to {hi:g}") from None
    if not lo <= value <= hi:  # also refuses nan
        raise SettingsError(f"{name}={raw!r}: expected a number of seconds from {lo:g} to {hi:g}")
    return value


def _url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    scheme = urlparse(raw).scheme
    if scheme not in schemes:
        raise SettingsError(f"{name}={raw!r}: expected a URL starting with one of {', '.join(schemes)}")
    return raw


def unknown_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """``PLM_*`` variables the server does not read: likely typos, worth a warning at start-up.

    Not an error: deployments share environments, and a variable the server does not know
    must not stop it.
    """
    env = os.environ if environ is None else environ
    known = {f"PLM_{f.name.upper()}" for f in fields(Settings)} | _CLIENT_VARS
    return sorted(k for k in env if k.startswith("PLM_") and k not in known)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default ``os.environ``), validating every value."""
    env = os.environ if environ is None else environ

    values: dict[str, object] = {}

    def get(name: str) -> str | None:
        raw = env.get(f"PLM_{name.upper()}")
        return None if raw is None or raw == "" else raw

    if (v := get("database_url")) is not None:
        values["database_url"] = _url(
            "PLM_DATABASE_URL", v, ("sqlite+aiosqlite", "postgresql+asyncpg")
        )
    if (v := get("broadcast_url")) is not None:
        values["broadcast_url"] = _url("PLM_BROADCAST_URL", v, ("memory", "postgres", "postgresql"))
    for name in ("smtp_host", "smtp_user", "smtp_password", "smtp_from", "log_level"):
        if (v := get(name)) is not None:
            values[name] = v
    if (v := get("smtp_port")) is not None:
        values["smtp_port"] = _int("PLM_SMTP_PORT", v, 1, 65535)
    if (v := get("smtp_tls")) is not None:
        if v not in _SMTP_TLS:
            raise SettingsError(f"PLM_SMTP_TLS={v!r}: expected one of {', '.join(_SMTP_TLS)}")
        values["smtp_tls"] = v
    if (v := get("notify_digest_seconds")) is not None:
        values["notify_digest_seconds"] = _int("PLM_NOTIFY_DIGEST_SECONDS", v, 1, 86_400)
    if (v := get("retention_days")) is not None:
        values["retention_days"] = _int("PLM_RETENTION_DAYS", v, 1, 3650)
    if (v := get("sqlite_busy_timeout_ms")) is not None:
        values["sqlite_busy_timeout_ms"] = _int("PLM_SQLITE_BUSY_TIMEOUT_MS", v, 0, 600_000)
    for name, hi in (
        ("request_timeout_seconds", 600.0),
        ("db_connect_timeout_seconds", 600.0),
        ("db_pool_timeout_seconds", 600.0),
        ("db_statement_timeout_seconds", 86_400.0),
    ):
        if (v := get(name)) is not None:
            values[name] = _seconds(f"PLM_{name.upper()}", v, 0.1, hi)
    if (v := get("public_url")) is not None:
        values["public_url"] = _url("PLM_PUBLIC_URL", v, ("http", "https")).rstrip("/")
    if values.get("log_level", "info") not in ("critical", "error", "warning", "info", "debug"):
        raise SettingsError(
            f"PLM_LOG_LEVEL={values['log_level']!r}: expected critical, error, warning, info or debug"
        )
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.broadcast_url.startswith("postgres") and settings.is_sqlite:
        raise SettingsError(
            "PLM_BROADCAST_URL is PostgreSQL but PLM_DATABASE_URL is SQLite: LISTEN/NOTIFY "
            "needs the events' transactions on that PostgreSQL; use memory:// with SQLite"
        )
    return settings


# Read by the admin client, not the server; accepted here so a shared environment is not an error.
_CLIENT_VARS = {"PLM_URL", "PLM_TOKEN"}
