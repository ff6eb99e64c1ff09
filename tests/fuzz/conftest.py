"""The fuzzer's items under pytest-xdist."""

from __future__ import annotations

from _pytest.nodeid import NodeId
from schemathesis.pytest.plugin import SchemathesisFunction


def pytest_collection_modifyitems(items):
    """Give each operation's item a node id of its own. schemathesis names them
    `test[METHOD /path]` but gives all of them the test function's node id, and pytest-xdist
    schedules and reports by node id: with one id for 49 items a run of the whole suite on
    two workers ran some operations and silently left the others out."""
    for item in items:
        if isinstance(item, SchemathesisFunction) and not item.nodeid.endswith("]"):
            item._id = NodeId.parse(f"{item.nodeid.rsplit('::', 1)[0]}::{item.name}")
