"""Start and stop the real services the tests talk to: free ports, readiness waits, logs kept."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceError(RuntimeError):
    """A service did not start; the message carries the tail of its log."""


STARTED: list[ManagedProcess] = []


class ManagedProcess:
    """One server process in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict | None = None, cwd: Path | None = None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - stays open as long as the process runs
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        STARTED.append(self)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        """Wait until url answers any HTTP status; fail with the log if the process dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                urllib.request.urlopen(url, timeout=2).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise ServiceError(f"{self.name} did not answer {url} within {timeout}s:\n{self.log_tail()}")

    def wait_tcp(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
        """Wait until the port accepts connections (for a TLS listener a plain HTTP client can't judge)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                socket.create_connection((host, port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise ServiceError(f"{self.name} did not listen on {host}:{port} within {timeout}s:\n{self.log_tail()}")

    def group_alive(self) -> bool:
        """Whether any process of this service's process group (children included) still runs."""
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, grace: float = 10.0) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.group_alive():  # e.g. Ollama's runner or nginx's worker outliving their parent
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


class Service:
    """What every test service shares: `start(...)` as a context manager that builds the service, starts it
    and stops all it started on the way out, also when starting fails half-way. A service's `_start` runs
    its processes with `_spawn` and puts whatever else it must undo (an nginx, a temporary directory) on
    `self._stack`, so `stop` undoes them in reverse order. A service sets `workdir`, where its logs go."""

    workdir: Path

    def __init__(self) -> None:
        self.processes: list[ManagedProcess] = []
        self._stack = contextlib.ExitStack()

    @classmethod
    @contextlib.contextmanager
    def start(cls, *args, **kwargs):
        service = cls(*args, **kwargs)
        try:
            service._start()
            yield service
        finally:
            service.stop()

    def _start(self) -> None:
        raise NotImplementedError

    def _spawn(self, name: str, argv: list, log_path: Path | None = None, env: dict | None = None) -> ManagedProcess:
        """Run one process of this service, logging to log_path (else <workdir>/<name>.log); it stops with
        the service."""
        proc = ManagedProcess(name, [str(a) for a in argv], log_path or self.workdir / f"{name}.log", env=env)
        self._keep(proc)
        self._stack.callback(proc.stop)
        return proc

    def _keep(self, proc: ManagedProcess) -> ManagedProcess:
        """Count a process started otherwise (an nginx context) among this service's, for its logs."""
        self.processes.append(proc)
        return proc

    def stop(self) -> None:
        self._stack.close()

    def logs(self, lines: int = 40) -> str:
        return "\n".join(f"--- {proc.name} ---\n{proc.log_tail(lines)}" for proc in self.processes)
