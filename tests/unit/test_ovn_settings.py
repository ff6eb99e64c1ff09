"""The [ovn] settings stop start-up with a clear message when they cannot work."""

import pytest
from pydantic import ValidationError

from segmentd.config import load_settings


def test_default_backend_needs_no_ovn():
    settings = load_settings(None)
    assert settings.backend == "none"
    assert settings.ovn.owner == "segmentd"


@pytest.mark.parametrize("remote", [
    "tcp:127.0.0.1:6641", "ssl:ovn.example:6641", "unix:/run/ovn/ovnnb_db.sock",
    "tcp:10.0.0.1:6641,tcp:10.0.0.2:6641", "tcp:[::1]:6641",
])
def test_ovsdb_remotes_are_accepted(remote, tmp_path):
    files = {}
    if "ssl:" in remote:
        for name in ("ssl_private_key", "ssl_certificate", "ssl_ca_cert"):
            (tmp_path / name).write_text("x")
            files[name] = str(tmp_path / name)
    settings = load_settings(None, backend="ovn", ovn={"nb_connection": remote, **files})
    assert settings.ovn.nb_connection == remote


@pytest.mark.parametrize("remote", ["http://ovn:6641", "tcp:ovn", "unix:relative.sock", "6641", ""])
def test_anything_else_is_refused_naming_the_key(remote):
    with pytest.raises(ValidationError) as err:
        load_settings(None, ovn={"sb_connection": remote})
    assert "ovn.sb_connection" in str(err.value)


def test_an_ssl_remote_needs_its_key_certificate_and_ca(tmp_path):
    with pytest.raises(ValidationError, match="ssl_private_key, ssl_certificate and ssl_ca_cert"):
        load_settings(None, ovn={"nb_connection": "ssl:127.0.0.1:6641"})
    with pytest.raises(ValidationError, match="does not exist"):
        load_settings(None, ovn={"nb_connection": "ssl:127.0.0.1:6641",
                                 "ssl_private_key": str(tmp_path / "missing"),
                                 "ssl_certificate": str(tmp_path / "missing"),
                                 "ssl_ca_cert": str(tmp_path / "missing")})


@pytest.mark.parametrize("owner", ["", "has space", "x" * 65])
def test_owner_marker_is_a_short_token(owner):
    with pytest.raises(ValidationError):
        load_settings(None, ovn={"owner": owner})
