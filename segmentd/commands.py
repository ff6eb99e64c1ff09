"""What the `segmentd` subcommands do, apart from parsing arguments (cli.py)."""

from __future__ import annotations

import asyncio
import json
import sys

import yaml

from segmentd.auth.policy import Policy
from segmentd.config import Settings
from segmentd.context import RequestContext
from segmentd.db.engine import make_engine
from segmentd.errors import SegmentdError
from segmentd.query import ListQuery
from segmentd.services import audit, tokens
from segmentd.services.shapes import timestamp


async def _with_connection(settings: Settings, work, write: bool):
    engine = make_engine(settings.database_url)
    try:
        if write:
            async with engine.begin() as conn:
                return await work(conn)
        async with engine.connect() as conn:
            return await work(conn)
    finally:
        await engine.dispose()


def run(settings: Settings, work, write: bool = False):
    try:
        return asyncio.run(_with_connection(settings, work, write))
    except SegmentdError as exc:
        raise SystemExit(f"segmentd: {exc}") from None


def token_create(settings: Settings, project: str, roles: str, host, expires, name) -> int:
    """Print the new token alone on standard output: scripts capture it, nobody sees it again."""
    try:
        role_list = tokens.parse_roles(roles)
        expires_in = tokens.parse_duration(expires) if expires else None
    except SegmentdError as exc:
        raise SystemExit(f"segmentd: {exc}") from None

    async def work(conn):
        return await tokens.create_token(
            conn, project_id=project, roles=role_list, name=name, host=host,
            expires_in=expires_in,
        )

    secret, row = run(settings, work, write=True)
    print(secret)
    print(f"created token {row['name']} ({row['id']}) for project {project}", file=sys.stderr)
    return 0


def token_list(settings: Settings, as_json: bool) -> int:
    rows = run(settings, tokens.list_tokens)
    out = [
        {
            "id": r["id"], "name": r["name"], "project_id": r["project_id"],
            "roles": r["roles"].split(","), "host": r["host"],
            "created_at": timestamp(r["created_at"]),
            "expires_at": timestamp(r["expires_at"]) if r["expires_at"] else None,
            "state": tokens.token_state(r),
        }
        for r in rows
    ]
    if as_json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{'id':36}  {'name':24} {'project':16} {'roles':24} {'host':12} {'expires':20} state")
    for r in out:
        print(f"{r['id']:36}  {r['name'][:24]:24} {r['project_id'][:16]:16} "
              f"{','.join(r['roles'])[:24]:24} {(r['host'] or '-')[:12]:12} "
              f"{(r['expires_at'] or 'never'):20} {r['state']}")
    return 0


def token_revoke(settings: Settings, id_or_name: str) -> int:
    async def work(conn):
        return await tokens.revoke_token(conn, id_or_name)

    if not run(settings, work, write=True):
        print(f"segmentd: no active token with id or name {id_or_name!r}", file=sys.stderr)
        return 1
    print(f"revoked {id_or_name}; servers refuse it within {settings.token_cache_seconds:g} s")
    return 0


def bootstrap(settings: Settings) -> None:
    """Create the first admin token on an empty database and print it once."""

    async def work(conn):
        return await tokens.ensure_bootstrap_token(conn, settings.bootstrap_token)

    secret = run(settings, work, write=True)
    if secret is None:
        return
    if settings.bootstrap_token:
        print("segmentd: created the bootstrap admin token from SEGMENTD_BOOTSTRAP_TOKEN",
              file=sys.stderr)
        return
    print(f"segmentd: bootstrap admin token (shown once, store it now): {secret}", flush=True)


def policy_dump(settings: Settings) -> int:
    """The rules in effect as a YAML policy file, each under a comment saying what it is for."""
    policy = Policy(settings.policy_file)
    described = policy.descriptions()
    for name, rule in policy.rules().items():
        if name in described:
            print(f"# {described[name]}")
        print(yaml.safe_dump({name: rule}), end="")
    return 0


def audit_list(settings: Settings, limit: int, filters: dict[str, list[str]], as_json: bool) -> int:
    q = ListQuery(filters=filters, sorts=(("id", "desc"),), limit=limit)

    async def work(conn):
        return await audit.list_audit_events(RequestContext.admin(), conn, q)

    page = run(settings, work)
    if as_json:
        print(json.dumps(page.items, indent=2))
        return 0
    for e in page.items:
        print(f"{e['time']}  {e['outcome']:8} {e['status']:3}  {e['action']:24} "
              f"{e['resource_type']}:{e['resource_id'] or '-'}  project={e['project_id'] or '-'} "
              f"user={e['user_name'] or e['user_id'] or '-'}  token={e['token_id'] or '-'}  "
              f"{e['request_id']}")
    return 0


def ovn_sync(settings: Settings, mode: str, as_json: bool) -> int:
    """Compare the database with what the backend holds once; exit 2 if drift remains."""
    from segmentd.workers import drift
    from segmentd.backends import create_backend
    from segmentd.backends.base import REPAIRABLE

    backend = create_backend(settings)
    if not backend.realizes:
        raise SystemExit(f'segmentd: backend "{backend.name}" holds nothing to compare: '
                         'set backend = "ovn" and [ovn] first')

    async def check():
        backend.start()
        try:
            if not await backend.wait_connected():
                raise SystemExit(f"segmentd: cannot reach the {backend.name} backend: "
                                 f"{backend.last_error}")
            engine = make_engine(settings.database_url)
            try:
                return await drift.check(engine, backend, mode)
            finally:
                await engine.dispose()
        finally:
            await backend.stop()

    report = asyncio.run(check())
    if as_json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print(f"{report['networks_checked']} networks, {report['segments_checked']} segments "
              f"checked; {report['pending']} on their way to OVN left out")
        for item in report["items"]:
            print(f"  {item['problem']:9} {item['kind']:13} {item['name']}  {item['details'] or ''}")
        print("in sync" if report["in_sync"] else f"repaired {report['repaired']}")
    remaining = [i for i in report["items"] if mode == "log" or i["problem"] not in REPAIRABLE]
    return 2 if remaining else 0
