"""The brokers of the event tests: the machine's shared RabbitMQ, and private nodes for faults.

The machine's RabbitMQ (127.0.0.1:5672) is shared by every test process and by other sessions'
runs; stopping it fails whatever else is publishing at that moment, so no test stops it. Broker
faults go to a PrivateRabbitMq instead: its own node name, ports, data and log directories,
started on first use in a test process and stopped at its end.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

AMQP_URL = os.environ.get("SEGMENTD_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")

# Ports for the node's AMQP listener and Erlang distribution come from below the kernel's
# ephemeral range (32768-60999 here): a port in that range can be taken at any moment by an
# outgoing connection's local end, and the node then fails to listen (seen: eaddrinuse at boot).
PORT_RANGE = (20000, 32000)
SHARED_DIST_PORT = 25672  # the shared node's distribution port (its AMQP port + 20000)
START_TIMEOUT = 90.0
CTL_TIMEOUT = 60.0


def _free_port(taken: set[int]) -> int:
    for _ in range(200):
        port = random.randint(*PORT_RANGE)
        if port in taken or port == SHARED_DIST_PORT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port for a private RabbitMQ node")


class PrivateRabbitMq:
    """One RabbitMQ node under a temporary directory, controlled through rabbitmqctl -n."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.node = f"segmentd-test-{os.getpid()}-{random.randint(0, 1 << 30):x}@localhost"
        self.port = _free_port(set())
        self.dist_port = _free_port({self.port})
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self._proc: subprocess.Popen | None = None

    def _env(self) -> dict[str, str]:
        b = self.base
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(b / "mnesia"),
            "RABBITMQ_LOG_BASE": str(b / "log"),
            "RABBITMQ_PID_FILE": str(b / "node.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(b / "enabled_plugins"),
            # A path with no file: none of /etc/rabbitmq's settings (its listener) apply here.
            "RABBITMQ_CONFIG_FILE": str(b / "no-config"),
        }

    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> None:
        done = subprocess.run(["rabbitmqctl", "-q", "-n", self.node, *args], env=self._env(),
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.node} failed: "
                               f"{done.stdout.strip()} {done.stderr.strip()}"[:2000])

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # Debian's wrapper runs the node as the rabbitmq user
            rabbit = pwd.getpwnam("rabbitmq")
            os.chown(self.base, rabbit.pw_uid, rabbit.pw_gid)
        self._proc = subprocess.Popen(
            ["rabbitmq-server"], env=self._env(), stdin=subprocess.DEVNULL,
            stdout=open(self.base / "server.out", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not (self.base / "node.pid").exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private RabbitMQ node did not start:\n{self.log_tail()}")
            time.sleep(0.1)
        self.ctl("wait", str(self.base / "node.pid"), "--timeout", str(int(START_TIMEOUT)),
                 timeout=START_TIMEOUT + 10)
        self.ctl("await_startup")

    def stop_app(self) -> None:
        """The broker goes down: connections close, the port refuses; the node stays."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup")

    def close(self) -> None:
        pid_file = self.base / "node.pid"
        try:
            self.ctl("stop", str(pid_file))  # returns once the node's process has ended
        except (RuntimeError, subprocess.TimeoutExpired):
            if pid_file.exists():  # the node would not stop: end it
                try:
                    os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._proc.wait(timeout=10)
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        out = self.base / "server.out"
        return "\n".join(out.read_text(errors="replace").splitlines()[-lines:]) if out.exists() else ""
