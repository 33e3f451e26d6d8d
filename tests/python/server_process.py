"""A real ``actserve`` process for the Python tests.

The binary comes from the environment variable ACTSERVE_BINARY (ctest sets it to the
built target). The server listens on 127.0.0.1:0, so the kernel picks a free port, which
the server logs as "(port N, ...)"; the helper reads it from the log, then polls
grpc.health.v1 until SERVING. Both waits are bounded polls, never fixed sleeps. Stop()
sends SIGTERM, which the server answers by draining and exiting 0.
"""

import os
import re
import signal
import subprocess
import tempfile
import time
import weakref

import actserve

_PORT_IN_LOG = re.compile(rb"\(port (\d+)")
_POLL_INTERVAL_S = 0.05
_START_LIMIT_S = 60.0  # generous: the machine may be busy compiling
_STOP_LIMIT_S = 30.0


def _kill_if_running(process: subprocess.Popen) -> None:
    # The safety net for a test process that exits without stop(): no orphaned servers.
    if process.poll() is None:
        process.kill()
        process.wait()


def binary_path() -> str:
    path = os.environ.get("ACTSERVE_BINARY")
    if not path:
        raise RuntimeError("set ACTSERVE_BINARY to the actserve server binary (ctest does)")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"ACTSERVE_BINARY={path} is not an executable file")
    return path


class ServerProcess:
    """One actserve server. Use ``start()`` and ``stop()``, or ``with``."""

    def __init__(self, *extra_flags: str):
        self._flags = ["--address=127.0.0.1:0", "--threads=2", "--metrics_address=",
                       "--http_address=",
                       "--shutdown_grace=2s", *extra_flags]
        self._dir = tempfile.TemporaryDirectory(prefix="actserve-py-")
        self.log_path = os.path.join(self._dir.name, "actserve.log")
        self._process = None
        self.port = None

    @property
    def pid(self) -> int:
        """The server process's id (for /proc/<pid>/status)."""
        return self._process.pid

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        with open(self.log_path, "rb") as log:
            return log.read().decode("utf-8", "replace")

    def start(self, client_factory=None) -> "ServerProcess":
        """Starts the server and waits until it serves. ``client_factory(target)`` makes
        the client used for the health check (default: a plaintext ``actserve.Client``).
        Raises RuntimeError with the server's log when it exits or never serves."""
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen([binary_path(), *self._flags],
                                             stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT)
        self._finalizer = weakref.finalize(self, _kill_if_running, self._process)
        deadline = time.monotonic() + _START_LIMIT_S
        while self.port is None:
            with open(self.log_path, "rb") as log:
                match = _PORT_IN_LOG.search(log.read())
            if match:
                self.port = int(match.group(1))
                break
            self._check_alive_before(deadline, "log its port")
            time.sleep(_POLL_INTERVAL_S)
        factory = client_factory or (lambda target: actserve.Client(target, timeout=5))
        with factory(self.target) as client:
            while True:
                try:
                    if client.health() == "SERVING":
                        return self
                except actserve.Error:
                    pass
                self._check_alive_before(deadline, "report SERVING")
                time.sleep(_POLL_INTERVAL_S)

    def _check_alive_before(self, deadline: float, what: str) -> None:
        if self._process.poll() is not None:
            raise RuntimeError(f"actserve exited with {self._process.returncode} before it "
                               f"could {what}; its log:\n{self.log()}")
        if time.monotonic() > deadline:
            self._process.kill()
            self._process.wait()
            raise RuntimeError(f"actserve did not {what} in {_START_LIMIT_S:.0f} s; its "
                               f"log:\n{self.log()}")

    def stop(self) -> int:
        """SIGTERM, then waits for the exit. Returns the exit code (negative: a signal)."""
        if self._process is None:
            return 0
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=_STOP_LIMIT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        code = self._process.returncode
        self._finalizer.detach()
        self._process = None
        self._dir.cleanup()
        return code

    def stop_cleanly(self) -> None:
        """stop(), and raises unless the server drained and exited with code 0."""
        exit_code = self.stop()
        if exit_code != 0:
            raise RuntimeError(f"actserve exited with {exit_code} after SIGTERM")

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
