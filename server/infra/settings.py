"""One typed settings object, read from ``PLM_*`` environment variables (pydantic-settings).

A bad value stops start-up with a message that names the variable and what it accepts,
rather than failing later somewhere far from the cause. A ``PLM_*`` variable the server
does not know is reported at start-up (:func:`unknown_settings`), not fatal: deployments
share environments.

``Settings(...)`` takes values only from its arguments (tests and the app build it so);
:func:`load_settings` reads them from the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self
from urllib.parse import urlparse

from pydantic import AfterValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

if TYPE_CHECKING:
    from limits import RateLimitItem

SmtpTls = Literal["auto", "none", "starttls", "tls"]
LogLevel = Literal["critical", "error", "warning", "info", "debug"]
LogFormat = Literal["text", "json"]
PREFIX = "PLM_"


class SettingsError(ValueError):
    """A ``PLM_*`` variable holds a value the server cannot use."""


def _url(*schemes: str) -> AfterValidator:
    def check(value: str) -> str:
        if urlparse(value).scheme not in schemes:
            raise ValueError(f"expected a URL starting with one of {', '.join(schemes)}")
        return value

    return AfterValidator(check)


def parse_limits(value: str) -> list[RateLimitItem]:
    """``"50/second;1000/minute"`` as the ``limits`` library's items; ``ValueError`` if it is not one."""
    # Imported here: only a server (or a non-default value) needs it, not every CLI command.
    import limits

    try:
        items = limits.parse_many(value)
    except ValueError:
        items = []
    if not items or any(item.amount < 1 for item in items):
        raise ValueError(
            "expected one or more rates separated by ';', each a count of at least 1 per "
            "second, minute, hour or day, e.g. '50/second;1000/minute'"
        )
    return items


def _check_limits(value: str) -> str:
    parse_limits(value)
    return value


RateLimits = Annotated[str, AfterValidator(_check_limits)]


def _seconds(default: float, hi: float) -> Any:
    return Field(default=default, ge=0.1, le=hi, allow_inf_nan=False)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="forbid", env_ignore_empty=True)

    database_url: Annotated[str, _url("sqlite+aiosqlite", "postgresql+asyncpg")] = (
        "sqlite+aiosqlite:///./plm.db"
    )
    broadcast_url: Annotated[str, _url("memory", "postgres", "postgresql")] = "memory://"
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)
    smtp_from: str = "plm@localhost"
    smtp_tls: SmtpTls = "auto"
    notify_digest_seconds: int = Field(default=60, ge=1, le=86_400)
    retention_days: int = Field(default=30, ge=1, le=3650)
    # How long an action can be undone (docs/behaviour.md, Undo); 0 turns undo off. At most a
    # week: removed users' data is kept that long, and so are the batch ids undo reads.
    undo_hours: int = Field(default=24, ge=0, le=168)
    public_url: Annotated[str, _url("http", "https"), AfterValidator(lambda u: u.rstrip("/"))] = (
        "http://127.0.0.1:8000"
    )
    # Operational knobs an operator may need, documented in the README.
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0, le=600_000)
    log_level: LogLevel = "info"
    # How long one HTTP request (or websocket operation) may take before it is answered 503,
    # and the database waits inside it (see server.infra.db): a paused database must not
    # hold requests, and their memory, for as long as the pause lasts.
    request_timeout_seconds: float = _seconds(10.0, 600)
    db_connect_timeout_seconds: float = _seconds(5.0, 600)
    db_pool_timeout_seconds: float = _seconds(5.0, 600)
    db_statement_timeout_seconds: float = _seconds(30.0, 86_400)
    # How long ingestion's group commit waits for more batches while they arrive together
    # (server.infra.group_commit); 0 takes every group at once.
    ingest_commit_delay_ms: float = Field(default=5.0, ge=0, le=100)
    # How long one turn of the event loop may spend starting uncached GraphQL executions
    # (server.infra.turns); 0 starts one per turn.
    graphql_turn_budget_ms: float = Field(default=7.0, ge=0, le=100)
    # Operating it (docs: README, Operations). Rate limits are per process, in memory.
    # (Defaults are not re-validated: a CLI command need not import ``limits`` to start.)
    rate_limit_graphql: RateLimits = Field(default="50/second;1000/minute", validate_default=False)
    # 10,000 agents reporting every minute are ~167 batches/s; see the README for the sizing.
    rate_limit_ingest: RateLimits = Field(default="500/second;30000/minute", validate_default=False)
    rate_limit_unauthenticated: RateLimits = Field(default="20/second;300/minute", validate_default=False)
    max_ws_per_token: int = Field(default=20, ge=1, le=100_000)
    metrics_token: str | None = Field(default=None, repr=False, min_length=16)
    log_format: LogFormat = "text"
    # Webhooks (server.domain.webhooks.urls): http:// URLs, and hosts on loopback, private or
    # link-local addresses, are refused unless these allow them (tests, local setups).
    webhook_allow_http: bool = False
    webhook_allow_private: bool = False

    @model_validator(mode="after")
    def _broadcast_needs_postgres(self) -> Self:
        if self.broadcast_url.startswith("postgres") and self.is_sqlite:
            raise ValueError(
                "PLM_BROADCAST_URL is PostgreSQL but PLM_DATABASE_URL is SQLite: LISTEN/NOTIFY "
                "needs the events' transactions on that PostgreSQL; use memory:// with SQLite"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what the caller passes: load_settings() passes the environment it was given.
        return (init_settings,)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **changes: object) -> Settings:
        return self.model_validate({**self.model_dump(), **changes})


class _Environment(EnvSettingsSource):
    """The ``PLM_*`` variables of a given mapping (``os.environ`` by default)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Names match case-insensitively (Settings' default), as they do in os.environ.
        return {k.lower(): v for k, v in self._environ.items() if v != ""}


def unknown_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """``PLM_*`` variables the server does not read: likely typos, worth a warning at start-up."""
    env = os.environ if environ is None else environ
    known = {PREFIX + name.upper() for name in Settings.model_fields} | _CLIENT_VARS
    return sorted(k for k in env if k.startswith(PREFIX) and k not in known)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default ``os.environ``), validating every value."""
    env = os.environ if environ is None else environ
    known = {k: v for k, v in env.items() if k.upper() not in _CLIENT_VARS and k not in unknown_settings(env)}
    values = _Environment(known)()
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise SettingsError(_explain(exc, env)) from None


def _explain(exc: ValidationError, env: Mapping[str, str]) -> str:
    """One line per bad variable: its name, the value given and what it accepts."""
    lines = []
    for error in exc.errors():
        if not error["loc"]:  # a rule across variables; its message names them
            lines.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        name = PREFIX + str(error["loc"][0]).upper()
        accepts = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{name}={env.get(name, '')!r}: {accepts}")
    return "; ".join(lines)


# Read by the admin client, not the server; accepted here so a shared environment is not an error.
_CLIENT_VARS = {"PLM_URL", "PLM_TOKEN"}
