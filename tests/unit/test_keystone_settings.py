"""auth_mode = "keystone": the [keystone] settings, and what a Keystone token maps to."""

import pytest
from pydantic import ValidationError

from segmentd.auth.keystone import principal_of
from segmentd.config import load_settings

PASSWORD = {"auth_url": "http://keystone.example:5000/v3/", "username": "segmentd",
            "password": "secret", "project_name": "service"}


def test_keystone_mode_takes_keystonemiddlewares_names_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEGMENTD_AUTH_MODE", "keystone")
    for key, value in PASSWORD.items():
        monkeypatch.setenv(f"SEGMENTD_KEYSTONE__{key.upper()}", value)
    settings = load_settings(None)
    assert settings.auth_mode == "keystone"
    assert settings.keystone.auth_url == "http://keystone.example:5000/v3"  # no trailing /
    assert settings.keystone.user_domain_name == settings.keystone.project_domain_name == "Default"
    assert settings.keystone.token_cache_time == 300
    assert "secret" not in repr(settings.keystone)


@pytest.mark.parametrize(("given", "message"), [
    ({}, "needs keystone.auth_url"),
    ({"auth_url": "http://k:5000/v3"}, "needs keystone.username, keystone.password"),
    ({**PASSWORD, "password": None}, "needs keystone.username, keystone.password"),
    ({"auth_url": "http://k:5000/v3", "application_credential_id": "abc"},
     "needs application_credential_secret"),
    ({**PASSWORD, "auth_url": "keystone:5000"}, "is not an http:// or https:// URL"),
    ({**PASSWORD, "cafile": "/nonexistent/ca.pem"}, "does not exist"),
])
def test_an_incomplete_keystone_section_stops_start_up(given, message):
    with pytest.raises(ValidationError, match=message):
        load_settings(None, auth_mode="keystone", keystone=given)


def test_an_application_credential_is_enough():
    settings = load_settings(None, auth_mode="keystone", keystone={
        "auth_url": "https://k/v3", "application_credential_id": "a",
        "application_credential_secret": "s"})
    assert settings.keystone.application_credential_id == "a"


def test_an_unknown_keystone_key_is_refused():
    with pytest.raises(ValidationError, match="keystone.auth_uri"):
        load_settings(None, keystone={"auth_uri": "http://k:5000"})


TOKEN = {
    "user": {"id": "u1", "name": "alice", "domain": {"id": "default", "name": "Default"}},
    "audit_ids": ["AbCdEfGhIjKlMnOpQrStUv"],
    "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "Reader"}],
    "expires_at": "2030-01-01T00:00:00.000000Z",
}


def test_a_project_token_speaks_for_its_project_with_its_roles():
    p = principal_of({**TOKEN, "project": {"id": "p1", "name": "demo"}}, None)
    assert (p.project_id, p.roles, p.user_id, p.user_name) == (
        "p1", frozenset({"member", "reader"}), "u1", "alice")
    assert p.token_id == "AbCdEfGhIjKlMnOpQrStUv" and p.host is None


def test_unscoped_domain_scoped_and_non_admin_system_tokens_name_no_project():
    assert principal_of(TOKEN, None) is None
    assert principal_of({**TOKEN, "domain": {"id": "d", "name": "D"}}, None) is None
    assert principal_of({**TOKEN, "system": {"all": True}}, None) is None


def test_a_system_admin_is_admin_of_no_project():
    admin = {**TOKEN, "system": {"all": True}, "roles": [{"name": "admin"}]}
    p = principal_of(admin, None)
    assert p.project_id == "" and "admin" in p.roles


def test_a_user_of_the_host_domain_is_bound_to_its_host():
    host_user = {**TOKEN, "project": {"id": "svc"}, "roles": [{"name": "service"}],
                 "user": {"id": "u9", "name": "compute-1", "domain": {"name": "hosts"}}}
    assert principal_of(host_user, "hosts").host == "compute-1"
    assert principal_of(host_user, "other").host is None
    assert principal_of(host_user, None).host is None
