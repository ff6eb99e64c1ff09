"""The Keystone fixture itself: a real Keystone 30 issues, validates, revokes and expires tokens,
and a private one stops and comes back with its state.

(Here rather than in tests/keystone/: a folder of that name would hide tests/keystone.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.keystone import ROOT, SERVICE_PROJECT, expiry


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def member_token(ks, project_name: str | None = None) -> tuple[str, dict, str]:
    """(token, body, project id) of a new user with the member role on a new project."""
    project_name = project_name or unique("project")
    project_id = ks.create_project(project_name)
    user = unique("user")
    ks.create_user(user, "pw-" + user, project=project_id, roles=["member"])
    token, body = ks.issue_token(user, "pw-" + user, project=project_name)
    return token, body, project_id


def test_project_token_validates_until_revoked(keystone):
    token, body, project_id = member_token(keystone)
    assert body["project"]["id"] == project_id
    resp = keystone.validate(token)
    assert resp.status_code == 200, resp.text
    validated = resp.json()["token"]
    assert validated["project"]["id"] == project_id
    assert validated["user"]["id"] == body["user"]["id"]
    assert {r["name"] for r in validated["roles"]} == {"member", "reader"}  # reader implied
    keystone.revoke_token(token)
    assert keystone.validate(token).status_code == 404


def test_bootstrapped_state(keystone):
    """The template's roles, role chain, projects and identity endpoints at the server's URL."""
    roles = {r["name"] for r in keystone.get("/roles")["roles"]}
    assert {"admin", "member", "reader", "service"} <= roles
    implies = {ri["prior_role"]["name"]: {r["name"] for r in ri["implies"]}
               for ri in keystone.get("/role_inferences")["role_inferences"]}
    assert implies["member"] == {"reader"}
    assert keystone.get("/projects", params={"name": SERVICE_PROJECT})["projects"]
    (identity,) = keystone.get("/services", params={"type": "identity"})["services"]
    # Only the identity service's: other tests in this process register segmentd's.
    endpoints = keystone.get("/endpoints", params={"service_id": identity["id"]})["endpoints"]
    assert {e["interface"] for e in endpoints} == {"public", "internal", "admin"}
    assert {e["url"] for e in endpoints} == {keystone.url + "/"}
    assert keystone.url.startswith("http://127.0.0.1:") and keystone.url.endswith("/v3")
    with pytest.raises(RuntimeError, match="private_keystone"):
        keystone.stop()


def test_scopes_service_catalog_and_application_credentials(keystone):
    """System, domain and project scopes; the network service in the catalog; a token from an
    application credential; a deleted project's token is refused."""
    domain = unique("domain")
    domain_id = keystone.create_domain(domain)
    user = unique("operator")
    user_id = keystone.create_user(user, "pw", domain_id=domain_id)
    keystone.assign_system_role(user_id, "reader")
    keystone.request("PUT", f"/domains/{domain_id}/users/{user_id}/roles/"
                     f"{keystone.role_id('admin')}")
    _, system = keystone.issue_token(user, "pw", system=True, user_domain=domain)
    assert system["system"] == {"all": True}
    _, scoped = keystone.issue_token(user, "pw", domain=domain, user_domain=domain)
    assert scoped["domain"]["id"] == domain_id
    _, unscoped = keystone.issue_token(user, "pw", user_domain=domain)
    assert "project" not in unscoped and "roles" not in unscoped

    keystone.register_service("http://127.0.0.1:9/old")
    service_id = keystone.register_service("http://127.0.0.1:9/segmentd")  # replaces it
    token, body, project_id = member_token(keystone)
    (network,) = [s for s in body["catalog"] if s["type"] == "network"]
    assert network["id"] == service_id and network["name"] == "segmentd"
    assert {(e["interface"], e["url"], e["region_id"]) for e in network["endpoints"]} == {
        (i, "http://127.0.0.1:9/segmentd", "RegionOne") for i in ("public", "internal", "admin")}

    cred_id, secret = keystone.create_application_credential(body["user"]["id"], token,
                                                             unique("cred"))
    app_token, app_body = keystone.issue_application_credential_token(cred_id, secret)
    assert app_body["project"]["id"] == project_id
    assert app_body["application_credential"]["id"] == cred_id
    assert keystone.validate(app_token).status_code == 200
    keystone.delete_project(project_id)
    assert keystone.validate(token).status_code == 404


def test_private_keystone_stops_and_comes_back(private_keystone):
    ks = private_keystone()
    token, _, project_id = member_token(ks)
    port = ks.port
    ks.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(ks.url, timeout=2.0)
    ks.start()
    assert ks.port == port
    resp = ks.validate(token)  # same keys, same database
    assert resp.status_code == 200, resp.text
    assert resp.json()["token"]["project"]["id"] == project_id


def test_short_token_expiration(private_keystone):
    ks = private_keystone(token_expiration=3)
    token, body, _ = member_token(ks)
    assert ks.validate(token).status_code == 200
    time.sleep(max(0.0, expiry(body) - time.time()) + 0.5)
    assert ks.validate(token).status_code == 404  # and the admin token was issued anew


def test_missing_venv_fails_saying_what_to_run():
    """Without .venv-keystone the tests fail (never skip), naming scripts/test."""
    done = subprocess.run(
        [sys.executable, "-c", "from tests.keystone import venv_bin; venv_bin('gunicorn')"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "SEGMENTD_KEYSTONE_VENV": "/nonexistent/venv-keystone"})
    assert done.returncode != 0
    assert "Failed" in done.stderr and "scripts/test" in done.stderr, done.stderr
