"""The ``plm`` command: run the server, provision accounts and admins, maintenance."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.engine import make_url

from server.domain import accounts, actions, changes
from server.domain.errors import DomainError
from server.domain.models import Role, utcnow
from server.infra import logs
from server.infra.db import Database, is_unavailable
from server.infra.pg_broadcast import make_broadcaster
from server.infra.settings import Settings, SettingsError, load_settings, unknown_settings


def _print(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write(f"plm: {message}\n")
    return code


async def _with_db(settings: Settings, fn: Callable[[Database], Awaitable[Any]]) -> Any:
    # The CLI's changes reach live subscribers only through a PostgreSQL broadcaster, whose
    # NOTIFY rides the command's own transaction (no listener needed here).
    db = Database.from_settings(settings, make_broadcaster(settings.broadcast_url))
    try:
        await db.migrate()
        return await fn(db)
    finally:
        await db.dispose()


# Between attempts to reach a database that is not there yet (``plm serve`` at start-up).
START_RETRY_FIRST_SECONDS = 0.5
START_RETRY_MAX_SECONDS = 10.0


async def _wait_for_database(settings: Settings, fn: Callable[[Database], Awaitable[Any]]) -> None:
    """Run ``fn`` once the database answers, retrying with backoff while it is unavailable.

    A server started before its database (both services booting together) waits for it
    instead of exiting; every wait is logged with what it waits for.
    """
    log = logging.getLogger("plm")
    delay = START_RETRY_FIRST_SECONDS
    while True:
        try:
            await _with_db(settings, fn)
            return
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            where = make_url(settings.database_url).render_as_string(hide_password=True)
            log.warning("waiting for the database at %s (%s); retrying in %.1f s", where, exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, START_RETRY_MAX_SECONDS)


async def _until_sigterm(work: Awaitable[None]) -> bool:
    """Run ``work``; ``False`` if SIGTERM (or SIGINT) stopped it first."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stopped = True
        task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await task
    except asyncio.CancelledError:
        if not stopped:
            raise
        logging.getLogger("plm").info("stopped before the database was ready")
        return False
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return True


# ---------------------------------------------------------------------------- commands


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from server.demo.fleet import fleet_task, setup_demo
    from server.graphql.http import MAX_FRAME_BYTES
    from server.web.app import BackgroundTask, create_app, tune_gc

    background: list[BackgroundTask] = []

    async def prepare(db: Database) -> None:
        if args.demo:
            account_id, admin = await setup_demo(db, settings.retention_days, utcnow())
            background.append(fleet_task(account_id))
            url = f"http://{args.host}:{args.port}/graphql"
            sys.stderr.write(
                "\nDemo account ready: a simulated fleet is reporting; the queue fills as people arrive.\n"
                f"  admin token: {admin.secret}\n"
                f"  open the admin client in another terminal:\n"
                f"    plm-tui --url {url} --token {admin.secret}\n"
                f"  or query the API:\n"
                f"    curl -s {url} -H 'Authorization: Bearer {admin.secret}' "
                "-H 'Content-Type: application/json' -d '{\"query\":\"{ account { licensesUsed licenseLimit pendingCount } }\"}'\n\n"
            )
            _print({"accountId": str(account_id), "adminToken": admin.secret, "graphqlUrl": url})

    if not asyncio.run(_until_sigterm(_wait_for_database(settings, prepare))):
        return 0
    app = create_app(settings, background=background)
    tune_gc()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        # JSON lines: uvicorn's own loggers go through ours (one format for every line).
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        # The app writes one access line per request (server.web.observe), richer than uvicorn's.
        access_log=False,
        ws="websockets-sansio",
        ws_max_size=MAX_FRAME_BYTES,
    )
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Become the admin client's demo launcher (``tui_client.demo``), which starts this
    server in the background. A process, not an import: the server never depends on the
    client, and the terminal passes to the client as it is."""
    argv = [sys.executable, "-m", "tui_client.demo", *(["--port", str(args.port)] if args.port else [])]
    os.execv(sys.executable, argv)


def cmd_account_create(settings: Settings, args: argparse.Namespace) -> int:
    async def run(db: Database) -> accounts.Created:
        async with db.write() as session:
            return await accounts.create_account(
                session,
                name=args.name,
                license_limit=args.licenses,
                manual_review=args.manual_review,
                retention_days=settings.retention_days
                if args.retention_days is None
                else args.retention_days,
                now=utcnow(),
            )

    created = asyncio.run(_with_db(settings, run))
    _print({"id": str(created.id), "ingestKey": created.secret})
    return 0


def cmd_account_set_limit(settings: Settings, args: argparse.Namespace) -> int:
    async def run(db: Database) -> changes.ActionResult:
        async with db.write() as session:
            return await actions.update_settings(
                session, changes.Actor.system(args.account), utcnow(), license_limit=args.licenses
            )

    result = asyncio.run(_with_db(settings, run))
    _print(
        {
            "id": str(result.account.id),
            "licenseLimit": result.usage.license_limit,
            "licensesUsed": result.usage.licenses_used,
            "pendingCount": result.usage.pending_count,
            "movedToPending": [str(e.user_id) for e in result.events],
        }
    )
    return 0


def cmd_admin_create(settings: Settings, args: argparse.Namespace) -> int:
    async def run(db: Database) -> accounts.Created:
        async with db.write() as session:
            return await accounts.create_admin(
                session,
                account_id=args.account,
                email=args.email,
                name=args.name,
                role=Role(args.role.upper()),
                now=utcnow(),
            )

    created = asyncio.run(_with_db(settings, run))
    _print({"id": str(created.id), "token": created.secret})
    return 0


def cmd_admin_list(settings: Settings, args: argparse.Namespace) -> int:
    async def run(db: Database) -> list[dict[str, Any]]:
        async with db.read() as session:
            admins = await accounts.list_admins(session, args.account)
        return [
            {
                "id": str(a.id),
                "email": a.email,
                "name": a.name,
                "role": a.role.value,
                "revoked": a.revoked_at is not None,
            }
            for a in admins
        ]

    _print(asyncio.run(_with_db(settings, run)))
    return 0


def cmd_admin_revoke(settings: Settings, args: argparse.Namespace) -> int:
    async def run(db: Database) -> dict[str, Any]:
        async with db.write() as session:
            admin = await accounts.revoke_admin(session, args.account, args.email, utcnow())
            return {"id": str(admin.id), "email": admin.email, "revoked": True}

    _print(asyncio.run(_with_db(settings, run)))
    return 0


def cmd_admin_rotate_token(settings: Settings, args: argparse.Namespace) -> int:
    async def run(db: Database) -> accounts.Created | None:
        async with db.write() as session:
            return await accounts.rotate_admin_token(session, args.account, args.email)

    created = asyncio.run(_with_db(settings, run))
    if created is None:
        return _fail(f"NOT_FOUND: account {args.account} has no admin {args.email!r}", 1)
    _print({"id": str(created.id), "token": created.secret})
    return 0


def cmd_account_rotate_ingest_key(settings: Settings, args: argparse.Namespace) -> int:
    async def run(db: Database) -> accounts.Created:
        async with db.write() as session:
            return await accounts.rotate_ingest_key(session, args.account, args.grace_hours, utcnow())

    created = asyncio.run(_with_db(settings, run))
    _print({"id": str(created.id), "ingestKey": created.secret})
    return 0


def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from server.domain import retention

    async def run(db: Database) -> retention.PurgeReport:
        return await retention.purge(db, utcnow(), timedelta(hours=settings.undo_hours))

    report = asyncio.run(_with_db(settings, run))
    _print(report.to_json())
    return 0


def cmd_export_schema(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.graphql.schema import export

    path = export(Path(args.output) if args.output else Path("schema.graphql"))
    _print({"schema": str(path)})
    return 0


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plm", description="Pending License Management server")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database and run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="create a demo account and simulate a fleet")
    serve.set_defaults(func=cmd_serve)
    demo = sub.add_parser("demo", help="the demo server in the background and the admin client in front")
    demo.add_argument("--port", type=int, default=None, help="the server's port (default: a free one)")
    demo.set_defaults(func=cmd_demo)

    account = sub.add_parser("account", help="accounts").add_subparsers(dest="action", required=True)
    create = account.add_parser("create", help="create an account; prints its id and ingest key")
    create.add_argument("--name", required=True)
    create.add_argument("--licenses", type=int, required=True)
    create.add_argument("--manual-review", action="store_true")
    create.add_argument("--retention-days", type=int, default=None)
    create.set_defaults(func=cmd_account_create)
    set_limit = account.add_parser("set-limit", help="change an account's license limit")
    set_limit.add_argument("--account", type=int, required=True)
    set_limit.add_argument("--licenses", type=int, required=True)
    set_limit.set_defaults(func=cmd_account_set_limit)
    rotate_key = account.add_parser(
        "rotate-ingest-key", help="a new ingest key; the old one keeps working for the grace period"
    )
    rotate_key.add_argument("--account", type=int, required=True)
    rotate_key.add_argument(
        "--grace-hours", type=float, default=24.0, help="how long the old key keeps working (default 24)"
    )
    rotate_key.set_defaults(func=cmd_account_rotate_ingest_key)

    admin = sub.add_parser("admin", help="admins").add_subparsers(dest="action", required=True)
    admin_create = admin.add_parser("create", help="create an admin; prints its id and API token")
    admin_create.add_argument("--account", type=int, required=True)
    admin_create.add_argument("--email", required=True)
    admin_create.add_argument("--name", required=True)
    admin_create.add_argument("--role", choices=["admin", "viewer"], default="admin")
    admin_create.set_defaults(func=cmd_admin_create)
    admin_list = admin.add_parser("list", help="the account's admins (never their tokens)")
    admin_list.add_argument("--account", type=int, required=True)
    admin_list.set_defaults(func=cmd_admin_list)
    for name, func, text in (
        ("revoke", cmd_admin_revoke, "the admin's token stops working at once, open websockets too"),
        ("rotate-token", cmd_admin_rotate_token, "a new token for the admin; the old one stops working"),
    ):
        command = admin.add_parser(name, help=text)
        command.add_argument("--account", type=int, required=True)
        command.add_argument("--email", required=True)
        command.set_defaults(func=func)

    purge = sub.add_parser("purge", help="run the retention job once: delete pending users' expired activity")
    purge.set_defaults(func=cmd_purge)

    export_schema = sub.add_parser("export-schema", help="write the GraphQL schema (SDL) to schema.graphql")
    export_schema.add_argument("--output", default=None, help="where to write (default: ./schema.graphql)")
    export_schema.set_defaults(func=cmd_export_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        return _fail(f"bad configuration: {exc}")
    logs.configure(settings)
    if unknown := unknown_settings():
        logging.getLogger("plm").warning("ignoring unknown setting(s) %s (a typo?)", ", ".join(unknown))
    try:
        result: int = args.func(settings, args)
    except DomainError as exc:
        return _fail(f"{exc.code.value}: {exc.message}", 1)
    return result


if __name__ == "__main__":
    sys.exit(main())
