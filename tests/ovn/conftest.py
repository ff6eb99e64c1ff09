"""A real ovsdb-server holding the OVN Northbound and Southbound schemas, per test module.

Debian's ovn-central (installed by scripts/test) ships the schemas and the tools. The
server listens on a unix socket in a temporary directory and is stopped afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

NB_SCHEMA = Path("/usr/share/ovn/ovn-nb.ovsschema")
SB_SCHEMA = Path("/usr/share/ovn/ovn-sb.ovsschema")


@dataclass
class OvnDatabases:
    """The running server: its socket and the ovn-nbctl / ovn-sbctl that talk to it."""

    directory: Path
    process: subprocess.Popen | None = None

    @property
    def remote(self) -> str:
        return f"unix:{self.directory / 'db.sock'}"

    def nbctl(self, *args: str) -> str:
        return _run("ovn-nbctl", f"--db={self.remote}", "--timeout=10", *args)

    def sbctl(self, *args: str) -> str:
        return _run("ovn-sbctl", f"--db={self.remote}", "--timeout=10", *args)

    def find(self, table: str, *conditions: str) -> list[dict]:
        """Rows of an NB table as dicts (ovn-nbctl's JSON format, maps made dicts)."""
        out = self.nbctl("--format=json", "find", table, *conditions)
        doc = json.loads(out)
        return [dict(zip(doc["headings"], (_plain(v) for v in row))) for row in doc["data"]]

    def start(self, fresh: bool = False) -> None:
        for name, schema in (("nb.db", NB_SCHEMA), ("sb.db", SB_SCHEMA)):
            path = self.directory / name
            if fresh and path.exists():
                path.unlink()
            if not path.exists():
                _run("ovsdb-tool", "create", str(path), str(schema))
        self.process = subprocess.Popen(
            ["ovsdb-server", str(self.directory / "nb.db"), str(self.directory / "sb.db"),
             f"--remote=p{self.remote}", f"--unixctl={self.directory / 'db.ctl'}",
             "--no-chdir", "-vconsole:off", f"--log-file={self.directory / 'db.log'}"],
        )
        deadline = time.monotonic() + 10
        while subprocess.run(["ovsdb-client", "list-dbs", self.remote],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"ovsdb-server did not start: see {self.directory / 'db.log'}")
            time.sleep(0.02)
        self.nbctl("init")
        self.sbctl("init")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return done.stdout


def _plain(value):
    """ovsdb JSON ("map", [[k, v]...]) / ("set", [...]) / ("uuid", x) as Python values."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        kind, inner = value
        if kind == "map":
            return {k: _plain(v) for k, v in inner}
        if kind == "set":
            return [_plain(v) for v in inner]
        if kind in ("uuid", "named-uuid"):
            return inner
    return value


@pytest.fixture(scope="module")
def ovn_dbs(tmp_path_factory):
    missing = [tool for tool in ("ovsdb-server", "ovsdb-tool", "ovn-nbctl") if not shutil.which(tool)]
    if missing or not NB_SCHEMA.exists():
        pytest.fail(f"OVN tools missing ({missing or NB_SCHEMA}); scripts/test installs ovn-central")
    dbs = OvnDatabases(tmp_path_factory.mktemp("ovn"))
    dbs.start()
    yield dbs
    dbs.stop()
