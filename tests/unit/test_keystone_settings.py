"""auth_mode = "keystone": the [keystone] settings, and what a Keystone token maps to."""

import pytest
from pydantic import ValidationError

import orjson

from segmentd.auth.keystone import principal_of
from segmentd.auth.keystone_client import TokenBody, Unreachable
from segmentd.auth.keystone_client import _parse as parse
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


def body(**changes) -> TokenBody:
    return parse(orjson.dumps({"token": {**TOKEN, **changes}}))


def test_a_project_token_speaks_for_its_project_with_its_roles():
    p = principal_of(body(project={"id": "p1", "name": "demo"}), None)
    assert (p.project_id, p.roles, p.user_id, p.user_name) == (
        "p1", frozenset({"member", "reader"}), "u1", "alice")
    assert p.token_id == "AbCdEfGhIjKlMnOpQrStUv" and p.host is None


def test_unscoped_domain_scoped_and_non_admin_system_tokens_name_no_project():
    assert principal_of(body(), None) is None
    assert principal_of(body(domain={"id": "d", "name": "D"}), None) is None
    assert principal_of(body(system={"all": True}), None) is None


def test_a_system_admin_is_admin_of_no_project():
    p = principal_of(body(system={"all": True}, roles=[{"name": "admin"}]), None)
    assert p.project_id == "" and "admin" in p.roles


def test_a_user_of_the_host_domain_is_bound_to_its_host():
    host_user = body(project={"id": "svc"}, roles=[{"name": "service"}],
                     user={"id": "u9", "name": "compute-1", "domain": {"name": "hosts"}})
    assert principal_of(host_user, "hosts").host == "compute-1"
    assert principal_of(host_user, "other").host is None
    assert principal_of(host_user, None).host is None


def test_a_trust_never_hands_on_the_service_role_and_is_named_in_the_audit_name():
    trust = {"id": "t1", "impersonation": False, "trustor_user": {"id": "u9"},
             "trustee_user": {"id": "u1"}}
    service = body(project={"id": "svc"}, roles=[{"name": "service"}], **{"OS-TRUST:trust": trust})
    assert principal_of(service, "hosts") is None
    member = principal_of(body(project={"id": "p1"}, **{"OS-TRUST:trust": trust}), None)
    assert member.roles == {"member", "reader"}
    assert member.user_name == "alice (trust t1 of user u9)"


@pytest.mark.parametrize("document", [
    b"", b"not json", b"[]", b'{"token": "abc"}', b'{"token": []}', b'{"token": 5}',
    b'{"token": {}}',
    *[orjson.dumps({"token": {**TOKEN, **bad}}) for bad in (
        {"roles": "admin"}, {"roles": ["admin"]}, {"roles": {"name": "admin"}}, {"roles": [None]},
        {"user": "alice"}, {"user": {"id": "u1", "name": "alice", "domain": "hosts"}},
        {"user": {"id": "u1", "name": None, "domain": {"name": "hosts"}}},
        {"user": {"id": ["u1"], "name": "alice", "domain": {}}},
        {"user": {"id": "u1", "name": "", "domain": {"name": "hosts"}}},
        {"project": "p1"}, {"project": {"id": ["p1"]}}, {"project": {"id": {"a": 1}}},
        {"project": {"id": ""}}, {"expires_at": None}, {"expires_at": "tomorrow"},
        {"expires_at": "2030-01-01T00:00:00"},  # no zone
        {"audit_ids": 5}, {"audit_ids": {"a": 1}},
    )],
])
def test_anything_but_a_token_document_is_keystone_failing(document):
    """A broken or hostile answer is a 503 for the request (Unreachable), never a 500 and
    never a principal (a host-domain user without a name would be bound to no host)."""
    with pytest.raises(Unreachable):
        parse(document)


def test_an_expiry_at_the_calendars_edge_is_read_without_error():
    """Its cache time is then token_cache_time's (the lesser of the two)."""
    assert body(expires_at="9999-12-31T23:59:59-23:59").seconds_left() > 0


def test_only_the_one_spelling_keystone_issues_is_a_token():
    import base64

    from segmentd.auth.keystone import canonical

    for size in (90, 91, 92):  # every length mod 4 that base64 without padding has
        text = base64.urlsafe_b64encode(bytes(range(size))).decode().rstrip("=")
        assert canonical(text)
        assert not canonical(text + "==") and not canonical(text.replace("-", "+"))
        last = text[-1]
        spare = {2: 0xF, 3: 0x3}.get(len(text) % 4)
        if spare:  # the same bytes with a spare bit set in the last character
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            assert not canonical(text[:-1] + alphabet[alphabet.index(last) | 1])
    header = base64.urlsafe_b64encode(b'{"alg":"ES256"}').decode().rstrip("=")
    assert canonical(f"{header}.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
    assert not canonical(f"{header}..c2lnbmF0dXJl") and not canonical("a.b.c")
    assert not canonical("A")  # one character is never base64 of anything
