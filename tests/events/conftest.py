"""Brokers for the event tests: the machine's shared RabbitMQ, and a private node for faults."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.events.brokers import AMQP_URL, PrivateRabbitMq


@pytest.fixture(scope="session")
def shared_broker() -> str:
    """The machine's RabbitMQ, which tests publish to but never stop; missing fails loudly."""
    parts = urlsplit(AMQP_URL)
    try:
        socket.create_connection((parts.hostname, parts.port or 5672), timeout=2).close()
    except OSError:
        pytest.fail(f"RabbitMQ is not reachable at {parts.hostname}:{parts.port}; scripts/test "
                    "starts it (`rabbitmq-server -detached && rabbitmqctl await_startup`)")
    return AMQP_URL


@pytest.fixture(scope="session")
def private_broker() -> Iterator[PrivateRabbitMq]:
    """A RabbitMQ node of this test process's own, for tests that take the broker down."""
    # Not under pytest's tmp_path: its folders are private to root, and the node runs as the
    # rabbitmq user.
    node = PrivateRabbitMq(Path(tempfile.mkdtemp(prefix="segmentd-test-rabbitmq-")))
    try:
        node.start()
    except Exception:
        node.close()
        raise
    yield node
    node.close()
