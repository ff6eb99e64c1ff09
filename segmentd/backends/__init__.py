"""Backends by name: `backend = "…"` in the configuration picks one.

The built-in ones are "none" (segmentd/backends/none.py) and "ovn"
(segmentd/backends/ovn/backend.py). Another is added without touching the app, the
services or the CLI: a package declares it under the `segmentd.backends` entry-point group
(`name = "package.module:Factory"`), or code running before the app is built calls
`register(name, factory)` (tests do). A factory takes the Settings and returns a Backend
(segmentd/backends/base.py); nothing connects until the app calls its `start`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segmentd.backends.base import Backend
    from segmentd.config import Settings

ENTRY_POINT_GROUP = "segmentd.backends"
BUILT_IN = {
    "none": "segmentd.backends.none:NoBackend.from_settings",
    "ovn": "segmentd.backends.ovn.backend:OvnBackend.from_settings",
}
_registered: dict[str, Callable[[Settings], Backend]] = {}


class UnknownBackend(ValueError):
    pass


def register(name: str, factory: Callable[[Settings], Backend]) -> None:
    """Make `backend = name` build its backend with `factory(settings)`."""
    _registered[name] = factory


def unregister(name: str) -> None:
    _registered.pop(name, None)


def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def names() -> list[str]:
    """Every backend name a configuration may give."""
    return sorted({*BUILT_IN, *_plugins(), *_registered})


def known(name: str) -> bool:
    """Whether `backend = name` names a backend. Installed packages are scanned for entry
    points only for a name that is neither built in nor registered: the scan reads every
    package's metadata (about 15 ms here), and configurations are loaded often."""
    return name in BUILT_IN or name in _registered or name in _plugins()


def _load(path: str) -> Callable[[Settings], Backend]:
    module, _, attribute = path.partition(":")
    found = importlib.import_module(module)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


def factory_of(name: str) -> Callable[[Settings], Backend]:
    if name in _registered:
        return _registered[name]
    path = BUILT_IN.get(name) or _plugins().get(name)
    if path is None:
        raise UnknownBackend(f"unknown backend {name!r}: one of {', '.join(names())}")
    return _load(path)


def create_backend(settings: Settings) -> Backend:
    """The configured backend, not started."""
    return factory_of(settings.backend)(settings)
