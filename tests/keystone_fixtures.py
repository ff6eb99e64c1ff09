"""Keystone fixtures (registered by tests/conftest.py): a shared server per test process, and
private servers for the tests that stop Keystone or need settings of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.keystone import KeystoneServer


@pytest.fixture(scope="session")
def keystone(tmp_path_factory) -> Iterator[KeystoneServer]:
    """This test process's Keystone, on its own copy of the bootstrapped state. Tests add
    projects, users and tokens with unique names; none stops it or changes its settings
    (stop() and start() refuse): that is what `private_keystone` is for."""
    server = KeystoneServer(tmp_path_factory.mktemp("keystone"))
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    server.shared = True
    yield server
    server.close()


@pytest.fixture
def private_keystone(tmp_path_factory) -> Iterator[Callable[..., KeystoneServer]]:
    """`private_keystone(token_expiration=..., conf={section: {key: value}})`: a started
    Keystone of the test's own, which it may stop and start again; stopped afterwards."""
    started: list[KeystoneServer] = []

    def start(**settings) -> KeystoneServer:
        server = KeystoneServer(tmp_path_factory.mktemp("keystone-private"), **settings)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.close()
