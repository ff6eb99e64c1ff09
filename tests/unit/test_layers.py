"""The layers stay honest: no module of segmentd imports one of a layer above its own.

From the bottom: plain data every layer shares (constants, errors, inputs, query, context,
config, schemas); db (SQL); events and backends; services and auth (the rules); workers
(background loops); api (HTTP); the wiring (app, cli, commands). See docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import segmentd

RANK = {
    "constants": 0, "errors": 0, "inputs": 0, "query": 0, "context": 0, "config": 0,
    "schemas": 0, "db": 1, "events": 2, "backends": 2, "auth": 3, "services": 3,
    "workers": 4, "api": 5, "app": 6, "cli": 6, "commands": 6, "__main__": 6,
}
# Imports that cross upwards on purpose, each for a reason.
ALLOWED = {
    # The package re-exports the signature check for receivers of webhooks and messages.
    ("segmentd/__init__.py", "segmentd.events.signing"),
    # A context expands its roles with the policy's implied-role rules when it is built.
    ("segmentd/context.py", "segmentd.auth.policy"),
    # `backend = "…"` is checked against the names of the backends that can be created.
    ("segmentd/config.py", "segmentd.backends"),
}
ROOT = Path(segmentd.__file__).parent


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("segmentd"):
            if node.module == "segmentd":
                yield from (f"segmentd.{a.name}" for a in node.names)
            else:
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("segmentd"))


def test_every_package_has_a_layer():
    found = {p.name.removesuffix(".py") for p in ROOT.iterdir()
             if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())}
    assert found - {"__init__"} == set(RANK)


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        relative = f"segmentd/{path.relative_to(ROOT)}"
        mine = layer_of(".".join(Path(relative).with_suffix("").parts))
        for module in imports_of(path):
            theirs = layer_of(module)
            if RANK.get(theirs, 0) > RANK.get(mine, 0) and (relative, module) not in ALLOWED:
                upward.append(f"{relative} ({mine}) imports {module} ({theirs})")
    assert upward == []
