"""Tokens: `segmentd token create/list/revoke`, expiry, the validation cache, the bootstrap token.

A token is shown once (alone on standard output), stored only as its SHA-256 hash, and
refused with the same 401 whether it is unknown, expired or revoked.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from segmentd.db.models import audit_events
from segmentd.errors import InvalidInput
from segmentd.services.tokens import parse_duration, token_state
from tests.conftest import in_transaction
from tests.e2e.server import TOKEN_CONFIG, bootstrap_tokens, database, start_server
from tests.factories import error_of, issue_token
from tests.security.support import (
    auth,
    expire_token,
    revoke_token,
    segmentd,
    token_api,
    token_rows,
)

# The CLI takes about a second a call: the database-specific parts (timestamps, revocation)
# run on SQLite and PostgreSQL, the rest on SQLite.
CLI_DATABASES = pytest.mark.parametrize("db_kind", ["sqlite", "postgresql"], indirect=True)
SQLITE_ONLY = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
PROVIDER_NETWORK = {"network": {"name": "vlan", "provider:network_type": "vlan",
                                "provider:physical_network": "physnet1"}}


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(db_url: str, *args: str) -> str:
    """`segmentd token create ...`: the secret, checking that it is all stdout holds."""
    out = segmentd("token", "create", *args, db_url=db_url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1 and out.stdout == lines[0] + "\n", out.stdout
    assert lines[0].startswith("sgd_") and len(lines[0]) >= 40, lines
    return lines[0]


def listed(db_url: str) -> list[dict]:
    out = segmentd("token", "list", "--json", db_url=db_url)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def status_with(api, secret: str, path: str = "/v2.0/networks") -> int:
    return api.get(path, headers=auth(secret)).status_code


# -- the CLI ---------------------------------------------------------------------------------

@CLI_DATABASES
def test_token_create_prints_only_the_token_and_the_database_holds_only_its_hash(db_url):
    secret = create(db_url, "--project", "p1", "--roles", "member,reader", "--name", "ci")
    api = token_api(db_url)
    with api.client:
        (row,) = token_rows(api)
        assert row["token_hash"] == sha256(secret)
        for column, value in row.items():
            assert secret not in str(value), column
            assert secret[4:] not in str(value), column  # not even without its prefix
        assert (row["name"], row["project_id"], row["host"]) == ("ci", "p1", None)
        assert set(row["roles"].split(",")) == {"member", "reader"}
        assert row["expires_at"] is None and row["revoked_at"] is None
        assert status_with(api, secret) == 200
        made = api.post("/v2.0/networks", json={"network": {"name": "n"}}, headers=auth(secret))
        assert made.status_code == 201 and made.json()["network"]["project_id"] == "p1"


@SQLITE_ONLY
def test_token_list_shows_neither_secret_nor_hash_and_shows_the_bound_host(db_url):
    secret = create(db_url, "--project", "p1", "--roles", "service", "--host", "compute-1",
                    "--name", "agent-compute-1", "--expires", "30d")
    (entry,) = listed(db_url)
    assert set(entry) == {"id", "name", "project_id", "roles", "host", "created_at",
                          "expires_at", "state"}
    assert entry["host"] == "compute-1" and entry["name"] == "agent-compute-1"
    assert entry["roles"] == ["service"] and entry["state"] == "active"
    lifetime = (datetime.strptime(entry["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
                - datetime.strptime(entry["created_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert lifetime == timedelta(days=30, seconds=1)  # rounded up: never a fraction less
    table = segmentd("token", "list", db_url=db_url)
    assert table.returncode == 0, table.stderr
    assert "compute-1" in table.stdout and "agent-compute-1" in table.stdout
    for text in (json.dumps(entry), table.stdout, table.stderr):
        assert secret not in text and secret[4:] not in text and sha256(secret) not in text


@CLI_DATABASES
def test_token_revoke_makes_the_token_401_at_once(db_url):
    secret = create(db_url, "--project", "p1", "--roles", "admin", "--name", "to-revoke")
    api = token_api(db_url)  # token_cache_seconds = 0
    with api.client:
        assert status_with(api, secret) == 200
        out = segmentd("token", "revoke", "to-revoke", db_url=db_url)
        assert out.returncode == 0 and out.stdout.startswith("revoked to-revoke"), out
        refused = api.get("/v2.0/networks", headers=auth(secret))
        assert refused.status_code == 401
        assert error_of(refused)["type"] == "NotAuthenticated"
        again = segmentd("token", "revoke", "to-revoke", db_url=db_url)
        assert again.returncode == 1 and "no active token" in again.stderr
        assert [t["revoked_at"] is not None for t in token_rows(api)] == [True]


@CLI_DATABASES
def test_token_with_a_seconds_lifetime_is_401_once_expired(db_url):
    """`--expires 2s`: timestamps are whole seconds, so it lives between 1 and 2 seconds."""
    secret = create(db_url, "--project", "p1", "--roles", "member", "--expires", "2s")
    api = token_api(db_url)
    with api.client:
        assert status_with(api, secret) == 200
        deadline = time.monotonic() + 4
        while status_with(api, secret) == 200:
            assert time.monotonic() < deadline, "a 2 s token still works after 4 s"
            time.sleep(0.1)
        assert status_with(api, secret) == 401
        assert [token_state(t) for t in token_rows(api)] == ["expired"]


@SQLITE_ONLY
@pytest.mark.parametrize("bad", [["--roles", "member,superuser"], ["--roles", "member", "--expires", "1y"]],
                         ids=["unknown_role", "unknown_unit"])
def test_token_create_with_a_bad_role_or_lifetime_prints_and_stores_nothing(db_url, bad):
    out = segmentd("token", "create", "--project", "p1", *bad, db_url=db_url)
    assert out.returncode != 0 and out.stdout == "", out
    assert out.stderr.startswith("segmentd: ")
    api = token_api(db_url)
    with api.client:
        assert token_rows(api) == []


@SQLITE_ONLY
def test_token_create_with_a_taken_name_fails_with_a_message_not_a_traceback(db_url):
    create(db_url, "--project", "p1", "--roles", "member", "--name", "ci")
    out = segmentd("token", "create", "--project", "p1", "--roles", "member", "--name", "ci",
                   db_url=db_url)
    assert out.returncode != 0 and out.stdout == ""
    assert "Traceback" not in out.stderr and "INSERT" not in out.stderr, out.stderr
    assert out.stderr.startswith("segmentd: ")


@pytest.mark.parametrize("text, lifetime", [
    ("1s", timedelta(seconds=1)), ("90s", timedelta(seconds=90)), ("15m", timedelta(minutes=15)),
    ("12h", timedelta(hours=12)), ("30d", timedelta(days=30)), (" 2h ", timedelta(hours=2)),
])
def test_lifetimes_in_seconds_minutes_hours_days(text, lifetime):
    assert parse_duration(text) == lifetime


@pytest.mark.parametrize("text", ["", "0s", "-1s", "1", "s", "1w", "1.5h", "1h30m", "1 h"])
def test_lifetimes_refused(text):
    with pytest.raises(InvalidInput):
        parse_duration(text)


# -- validation in the server ---------------------------------------------------------------

@SQLITE_ONLY  # the cache lives in the process, whatever the database
def test_revoked_token_is_refused_once_the_cache_window_has_passed(db_url):
    api = token_api(db_url, token_cache_seconds=1)
    with api.client:
        secret, row = issue_token(api, "p1", ["member"])
        assert status_with(api, secret) == 200  # now cached as valid for 1 s
        revoke_token(api, row["id"])
        time.sleep(1.2)
        assert status_with(api, secret) == 401


def test_revoked_and_expired_tokens_are_refused_at_once_without_a_cache(db_url):
    api = token_api(db_url)  # token_cache_seconds = 0
    with api.client:
        secret, row = issue_token(api, "p1", ["member"])
        assert status_with(api, secret) == 200
        revoke_token(api, row["id"])
        assert status_with(api, secret) == 401


def test_unknown_expired_and_revoked_tokens_get_the_same_401(db_url):
    """Which of them it was goes to the log only: the answer is no oracle."""
    api = token_api(db_url)
    with api.client:
        expired, _ = issue_token(api, "p1", ["admin"], name="expired")
        expire_token(api, "expired")
        revoked, row = issue_token(api, "p1", ["admin"])
        revoke_token(api, row["id"])
        bodies = {
            name: api.get("/v2.0/networks", headers=auth(secret))
            for name, secret in (("unknown", "sgd_" + secrets.token_urlsafe(32)),
                                 ("expired", expired), ("revoked", revoked))
        }
    assert {r.status_code for r in bodies.values()} == {401}
    assert len({r.content for r in bodies.values()}) == 1, {k: r.text for k, r in bodies.items()}
    assert error_of(bodies["unknown"]) == {
        "type": "NotAuthenticated", "message": "Authentication required.", "detail": ""}


def test_audit_trail_names_the_token_id_never_the_secret(db_url):
    api = token_api(db_url)
    with api.client:
        admin, _ = issue_token(api, "admin", ["admin"])
        member, member_row = issue_token(api, "p1", ["member"], name="m1")
        net = api.post("/v2.0/networks", json={"network": {"name": "n"}}, headers=auth(member))
        assert net.status_code == 201
        refused = api.post("/v2.0/segments", headers=auth(member), json={
            "segment": {"network_id": net.json()["network"]["id"], "network_type": "geneve"}})
        assert refused.status_code == 403
        assert error_of(refused)["type"] == "PolicyNotAuthorized"
        bad = "sgd_" + secrets.token_urlsafe(32)
        unknown = api.delete(f"/v2.0/networks/{net.json()['network']['id']}", headers=auth(bad))
        assert unknown.status_code == 401
        assert error_of(unknown)["type"] == "NotAuthenticated"

        events = api.get("/v2.0/audit-events", headers=auth(admin)).json()["audit_events"]
        outcomes = sorted((e["action"], e["outcome"], e["status"], e["token_id"]) for e in events)
        assert outcomes == [
            ("create_network", "success", 201, member_row["id"]),
            ("create_segment", "denied", 403, member_row["id"]),
        ]  # the 401 is anonymous: logged, never stored
        rows = in_transaction(api, lambda conn: conn.execute(select(audit_events)))
        stored = repr([tuple(r) for r in rows])
        for secret in (admin, member, bad):
            assert secret not in stored and secret[4:] not in stored and sha256(secret) not in stored


# -- the bootstrap admin token of `segmentd serve` -----------------------------------------

def with_log(server, message: str) -> str:
    return f"{message}\n--- {server.log_path} ---\n{server.log()}"


@pytest.mark.slow
def test_serve_prints_a_bootstrap_admin_token_once_on_an_empty_database(tmp_path):
    with database("sqlite", tmp_path) as db:
        first = start_server(tmp_path, db, name="first", config=TOKEN_CONFIG)
        try:
            tokens = bootstrap_tokens(first)
            assert len(tokens) == 1, with_log(first, "one bootstrap token expected")
            assert first.log().count("bootstrap admin token") == 1
            (token,) = tokens
            assert token.startswith("sgd_")
            made = httpx.post(f"{first.base_url}/v2.0/networks", json=PROVIDER_NETWORK,
                              headers=auth(token))
            assert made.status_code == 201, made.text  # provider attributes: an admin token
            tokenless = httpx.get(f"{first.base_url}/v2.0/networks")
            assert tokenless.status_code == 401
            assert error_of(tokenless)["type"] == "NotAuthenticated"
        finally:
            first.stop()

        second = start_server(tmp_path, db, name="second", config=TOKEN_CONFIG)
        try:
            assert "bootstrap admin token" not in second.log(), with_log(second, "printed again")
            resp = httpx.get(f"{second.base_url}/v2.0/segments", headers=auth(token))
            assert resp.status_code == 200 and len(resp.json()["segments"]) == 1
        finally:
            second.stop()
        assert [(t["name"], t["project_id"]) for t in listed(db)] == [("bootstrap-admin", "admin")]


@pytest.mark.slow
def test_serve_with_segmentd_bootstrap_token_uses_it_and_prints_no_secret(tmp_path):
    secret = "sgd_" + secrets.token_urlsafe(32)
    with database("sqlite", tmp_path) as db:
        server = start_server(tmp_path, db, config=TOKEN_CONFIG,
                              env={"SEGMENTD_BOOTSTRAP_TOKEN": secret})
        try:
            made = httpx.post(f"{server.base_url}/v2.0/networks", json=PROVIDER_NETWORK,
                              headers=auth(secret))
            assert made.status_code == 201, made.text
            wrong = httpx.get(f"{server.base_url}/v2.0/networks", headers=auth(secret + "x"))
            assert wrong.status_code == 401
            assert error_of(wrong)["type"] == "NotAuthenticated"
        finally:
            server.stop()
        log = server.log()
        assert secret not in log and secret[4:] not in log and sha256(secret) not in log
        assert bootstrap_tokens(server) == []
        assert "created the bootstrap admin token from SEGMENTD_BOOTSTRAP_TOKEN" in log
        assert [t["name"] for t in listed(db)] == ["bootstrap-admin"]
