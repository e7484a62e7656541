"""One typed settings object from PLM_* variables; a bad value is a clear start-up error."""

from __future__ import annotations

import pytest

from server.infra.settings import Settings, SettingsError, load_settings, unknown_settings


def test_defaults() -> None:
    s = load_settings({})
    assert s == Settings()
    assert (s.database_url, s.broadcast_url, s.smtp_tls, s.notify_digest_seconds, s.retention_days) == (
        "sqlite+aiosqlite:///./plm.db",
        "memory://",
        "auto",
        60,
        30,
    )


def test_values_are_parsed() -> None:
    s = load_settings(
        {
            "PLM_DATABASE_URL": "postgresql+asyncpg://u:p@db/plm",
            "PLM_BROADCAST_URL": "postgres://u:p@db/plm",
            "PLM_SMTP_HOST": "mail",
            "PLM_SMTP_PASSWORD": "hunter2secret",
            "PLM_SMTP_PORT": "587",
            "PLM_SMTP_TLS": "starttls",
            "PLM_NOTIFY_DIGEST_SECONDS": "120",
            "PLM_RETENTION_DAYS": "45",
            "PLM_PUBLIC_URL": "https://plm.example/",
            "PLM_TOKEN": "client-side, ignored",
        }
    )
    assert (s.smtp_port, s.smtp_tls, s.notify_digest_seconds, s.retention_days, s.public_url) == (
        587,
        "starttls",
        120,
        45,
        "https://plm.example",
    )
    assert not s.is_sqlite
    assert s.smtp_password == "hunter2secret" and "hunter2secret" not in repr(s)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PLM_SMTP_PORT": "0"}, "PLM_SMTP_PORT"),
        ({"PLM_SMTP_PORT": "smtp"}, "PLM_SMTP_PORT"),
        ({"PLM_SMTP_TLS": "maybe"}, "PLM_SMTP_TLS"),
        ({"PLM_NOTIFY_DIGEST_SECONDS": "-5"}, "PLM_NOTIFY_DIGEST_SECONDS"),
        ({"PLM_RETENTION_DAYS": "thirty"}, "PLM_RETENTION_DAYS"),
        ({"PLM_DATABASE_URL": "mysql://x/y"}, "PLM_DATABASE_URL"),
        ({"PLM_BROADCAST_URL": "redis://x"}, "PLM_BROADCAST_URL"),
        ({"PLM_PUBLIC_URL": "plm.example"}, "PLM_PUBLIC_URL"),
        ({"PLM_LOG_LEVEL": "loud"}, "PLM_LOG_LEVEL"),
        ({"PLM_BROADCAST_URL": "postgres://db/plm"}, "PLM_BROADCAST_URL"),  # with the SQLite default
    ],
)
def test_a_bad_value_names_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert named in str(info.value)


def test_unknown_variables_are_reported_not_fatal() -> None:
    env = {"PLM_RETENTON_DAYS": "30", "PLM_URL": "http://x/graphql", "HOME": "/root"}
    assert load_settings(env).retention_days == 30  # the typo is not applied...
    assert unknown_settings(env) == ["PLM_RETENTON_DAYS"]  # ...and is named at start-up


def test_undo_hours_default_to_a_day_and_stay_within_a_week() -> None:
    assert load_settings({}).undo_hours == 24
    assert load_settings({"PLM_UNDO_HOURS": "0"}).undo_hours == 0  # undo off
    for bad in ("-1", "169", "a day"):
        with pytest.raises(SettingsError) as info:
            load_settings({"PLM_UNDO_HOURS": bad})
        assert "PLM_UNDO_HOURS" in str(info.value)
