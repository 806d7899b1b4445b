"""Background processes of the local environment: is one alive, what is its command line, and stop
its process group, but only while it is still ours; and what the servers we run as children share."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_group(pid: int, marker: str, grace_s: float = 10.0) -> None:
    """SIGTERM the process group led by `pid`, SIGKILL it after `grace_s`; only if `pid` is still ours
    (its command line names `marker`, a state directory): after a crash it may have been reused."""
    if not pid_alive(pid) or marker not in cmdline(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def stop_child(
    process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, grace_s: float = 15.0
) -> None:
    """Send `sig` to the process group a child of ours leads (started with `start_new_session`), and
    SIGKILL it if it has not exited after `grace_s`; nothing if it is not running."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(grace_s)
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def spawn_logged(
    command: list[str], log_path: Path, *, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `command` as a child leading its own process group, its output appended to `log_path`."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_ready(process: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float) -> str | None:
    """None as soon as `ready()` holds; else why not: the child exited (with its code), or the time ran
    out (the child is then killed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with {process.returncode} at start-up"
        if ready():
            return None
        time.sleep(0.1)
    stop_child(process, signal.SIGKILL)
    return f"was not ready within {timeout:.0f}s"


def answers_ok(url: str, timeout: float = 1.0) -> bool:
    """True when a GET of `url` (a health endpoint of a server of ours) answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (a loopback URL we built)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class ChildServer:
    """A server we run as a child leading its own process group, in `process`: `stop()` sends it
    `STOP_SIGNAL` and SIGKILLs it if it has not exited after `timeout` seconds; `kill()` SIGKILLs it."""

    STOP_SIGNAL: ClassVar[int] = signal.SIGTERM
    STOP_TIMEOUT: ClassVar[float] = 15.0
    process: subprocess.Popen[bytes] | None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float | None = None) -> None:
        stop_child(self.process, self.STOP_SIGNAL, self.STOP_TIMEOUT if timeout is None else timeout)

    def kill(self) -> None:
        stop_child(self.process, signal.SIGKILL)
