"""The `segmentd` command: serve, db, token, policy, ovn sync, audit."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from pydantic import ValidationError
from pydantic_settings import SettingsError

from segmentd import commands
from segmentd.config import Settings, load_settings

LOG = logging.getLogger("segmentd")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    parser.add_argument("--database-url", metavar="URL", help="overrides database_url")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segmentd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database and serve the API")
    _common(serve)
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 9696)")
    serve.add_argument("--workers", type=int, help="server processes (default 1)")
    serve.add_argument("--no-migrate", action="store_true", help="do not upgrade the schema first")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    _common(db_sub.add_parser("upgrade", help="apply every pending migration"))
    _common(db_sub.add_parser("check", help="report pending migrations and model drift"))

    token = sub.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="issue a token; prints it alone on stdout")
    _common(create)
    create.add_argument("--project", required=True)
    create.add_argument("--roles", required=True, help="member, reader, admin, service (comma-separated)")
    create.add_argument("--host", help="bind to a host: the token acts only as that host's "
                        "agent (reports for that host, reads; writes nothing else)")
    create.add_argument("--expires", help="lifetime such as 30d, 12h, 15m (default: none)")
    create.add_argument("--name", help="a unique name (default: generated)")
    listing = token_sub.add_parser("list", help="tokens, never their secrets")
    _common(listing)
    listing.add_argument("--json", action="store_true")
    revoke = token_sub.add_parser("revoke", help="revoke a token by id or name")
    _common(revoke)
    revoke.add_argument("token", metavar="ID_OR_NAME")

    pol = sub.add_parser("policy", help="authorization rules")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True)
    _common(pol_sub.add_parser("dump", help="print the rules in effect (YAML)"))

    ovn_cmd = sub.add_parser("ovn", help="the OVN backend")
    ovn_sub = ovn_cmd.add_subparsers(dest="ovn_command", required=True)
    osync = ovn_sub.add_parser(
        "sync", help="compare the database with the Northbound DB; exit 2 if drift remains")
    _common(osync)
    osync.add_argument("--mode", choices=["log", "repair"], default="log",
                       help="log: report only (default); repair: fix what is segmentd's")
    osync.add_argument("--json", action="store_true", help="print the report as JSON")

    aud = sub.add_parser("audit", help="the audit trail")
    aud_sub = aud.add_subparsers(dest="audit_command", required=True)
    alist = aud_sub.add_parser("list", help="newest audit events first")
    _common(alist)
    alist.add_argument("--limit", type=int, default=50)
    alist.add_argument("--project")
    alist.add_argument("--action")
    alist.add_argument("--outcome", choices=["success", "denied", "rejected", "error"])
    alist.add_argument("--json", action="store_true")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {"database_url": args.database_url}
    for name in ("host", "port", "workers"):
        overrides[name] = getattr(args, name, None)
    try:
        return load_settings(args.config, **overrides)
    except (ValidationError, SettingsError, ValueError, OSError) as exc:
        raise SystemExit(f"segmentd: invalid configuration: {_explain(exc)}") from None


def _explain(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
    return str(exc)


def cmd_serve(settings: Settings, migrate: bool) -> int:
    import functools

    import uvicorn

    from segmentd.api.protocol import HeadBoundedProtocol
    from segmentd.app import SETTINGS_ENV, app_from_environment, check_auth_mode
    from segmentd.db import migrate as migrations

    try:
        check_auth_mode(settings, warn=False)
    except ValueError as exc:
        raise SystemExit(f"segmentd: {exc}") from None
    if migrate:
        migrations.upgrade(settings.database_url)
    if settings.auth_mode == "token" or (
            settings.auth_mode == "keystone" and settings.keystone.accept_local_tokens):
        commands.bootstrap(settings)
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    LOG.info("serving on http://%s:%d with %d worker(s)", settings.host, settings.port, settings.workers)
    common = dict(
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        server_header=False,  # no version banner
        proxy_headers=False,
        ws="none",  # no WebSocket routes: an upgrade request is served as plain HTTP
        timeout_keep_alive=settings.keepalive_timeout_seconds,
        limit_concurrency=settings.limit_concurrency,
        http=functools.partial(  # httptools with a bound on each request's head
            HeadBoundedProtocol,
            max_bytes=settings.max_request_header_bytes,
            max_fields=settings.max_request_header_fields,
            max_body_bytes=settings.max_request_body_bytes,
        ),
    )
    if settings.workers > 1:
        uvicorn.run("segmentd.app:app_from_environment", factory=True, workers=settings.workers, **common)
    else:
        uvicorn.run(app_from_environment(), **common)
    return 0


def cmd_db_check(settings: Settings) -> int:
    from segmentd.db import migrate as migrations

    current, head, diffs = migrations.check(settings.database_url)
    print(f"schema revision: {current or 'none'} (head {head})")
    if current != head:
        print("pending migrations: run `segmentd db upgrade`")
        return 1
    if diffs:
        print("the database differs from the models:")
        for diff in diffs:
            print(f"  {diff}")
        return 1
    print("the database matches the models")
    from segmentd.db.engine import server_warnings

    for warning in commands.run(settings, server_warnings):
        print(f"warning: {warning}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(args)
    logging.getLogger().setLevel(settings.log_level.upper())
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if args.command == "serve":
        return cmd_serve(settings, migrate=not args.no_migrate)
    if args.command == "token":
        if args.token_command == "create":
            return commands.token_create(
                settings, args.project, args.roles, args.host, args.expires, args.name
            )
        if args.token_command == "list":
            return commands.token_list(settings, args.json)
        return commands.token_revoke(settings, args.token)
    if args.command == "policy":
        return commands.policy_dump(settings)
    if args.command == "ovn":
        return commands.ovn_sync(settings, args.mode, args.json)
    if args.command == "audit":
        filters = {k: [v] for k, v in (("project_id", args.project), ("action", args.action),
                                       ("outcome", args.outcome)) if v}
        return commands.audit_list(settings, max(1, min(args.limit, 1000)), filters, args.json)
    if args.db_command == "upgrade":
        from segmentd.db import migrate as migrations

        migrations.upgrade(settings.database_url)
        print("database is at the newest schema revision")
        return 0
    return cmd_db_check(settings)


if __name__ == "__main__":
    sys.exit(main())
