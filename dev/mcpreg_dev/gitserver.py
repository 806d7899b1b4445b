"""Real git servers on loopback, for tests and for `make up`.

Three pieces, all driving the real `git` binary (no mocks):

- `BareRepo` / `create_bare_repo`: a bare repository on disk plus a helper that commits a set of files to
  a branch (optionally tagging it) and returns the commit sha, so a test can publish catalogue
  snapshots one after another.
- `GitDaemonServer`: `git daemon` serving a directory of bare repositories at
  `git://127.0.0.1:PORT/<name>.git`.
- `SmartHTTPGitServer`: `git http-backend` (CGI) behind a small threaded HTTP server, with HTTP basic
  auth, read-only, at `http://127.0.0.1:PORT/<name>.git`. It records every request (never credentials)
  and classifies protocol-v2 POSTs by command, so a test can prove that a change check only listed refs
  (`ls-refs`) and never fetched a pack (`fetch`).

Both servers can be stopped and started again on the same port, which is how tests simulate an
unreachable source and its recovery. `python -m mcpreg_dev.gitserver daemon|http --base-path DIR`
runs either one in the foreground, for callers (like `make up`) that need it to outlive them.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hmac
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Self, TypedDict, Unpack

from mcpreg_dev.background import Background

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

# Identity used for commits and tags made by the helpers: fixed, so nothing depends on the user's config.
COMMITTER_NAME = "mcpreg test"
COMMITTER_EMAIL = "mcpreg-test@localhost"

# Config applied to every repository created here (see `create_bare_repo`).
_SERVED_REPO_CONFIG = {
    # Let clients fetch a specific commit (spec.source.git.commit) even when no ref points at it
    # any more, as long as it is reachable; hosted forges allow this too.
    "uploadpack.allowReachableSHA1InWant": "true",
    # Partial clone (`--filter=blob:none`) is a cheap way to read one file; allow it.
    "uploadpack.allowFilter": "true",
    # Read-only: never accept pushes, whichever transport asks.
    "http.receivepack": "false",
    "daemon.receivepack": "false",
}

_REF_NAME = re.compile(r"^[A-Za-z0-9._/-]+$")


class GitServerError(RuntimeError):
    """A git command or server process failed; the message carries git's own words."""


# --------------------------------------------------------------------------------------------------
# Environment


def isolated_git_env(
    config: Mapping[str, str] | None = None, *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """An environment for running `git` that ignores the user's and the system's git configuration.

    The user's global config may hold credential helpers (which would answer auth prompts with real
    credentials), `commit.gpgSign`, URL rewrites or a proxy; none of that may leak into tests or into
    the servers. Every inherited `GIT_*` variable is dropped for the same reason (a test run from a git
    hook inherits `GIT_DIR`). Prompts are disabled so a refused credential fails instead of hanging.

    `config` entries are passed through `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n`,
    which, unlike `git -c`, keeps secrets such as an `http.extraHeader` out of the process list.
    """
    source = os.environ if base is None else base
    env = {key: value for key, value in source.items() if not key.startswith("GIT_")}
    env.pop("SSH_ASKPASS", None)
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": COMMITTER_NAME,
            "GIT_AUTHOR_EMAIL": COMMITTER_EMAIL,
            "GIT_COMMITTER_NAME": COMMITTER_NAME,
            "GIT_COMMITTER_EMAIL": COMMITTER_EMAIL,
            # Stable, English messages: callers and tests match on them.
            "LC_ALL": "C",
            "LANGUAGE": "C",
        }
    )
    if config:
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for index, (key, value) in enumerate(config.items()):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def basic_auth_header(username: str, password: str) -> str:
    """The `Authorization: Basic …` header line for `http.extraHeader` (a secret: do not log it)."""
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Authorization: Basic {encoded}"


def http_auth_env(
    username: str,
    password: str,
    *,
    config: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """`isolated_git_env` that authenticates every HTTP request with basic auth, without a URL or argv
    carrying the password; `config` adds further settings."""
    settings = {"http.extraHeader": basic_auth_header(username, password), **(config or {})}
    return isolated_git_env(settings, base=base)


def run_git_bytes(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> bytes:
    """Run `git ARGS` (isolated environment unless `env` is given); return raw stdout, raise on failure."""
    completed = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=input,
        env=dict(env) if env is not None else isolated_git_env(),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        stderr = completed.stderr.decode("utf-8", "replace").strip()
        raise GitServerError(f"git {args[0] if args else ''} failed ({completed.returncode}): {stderr}")
    return completed.stdout


class _GitOptions(TypedDict, total=False):
    """The keyword arguments of `run_git_bytes`, which `run_git` passes on."""

    cwd: Path | None
    input: bytes | None
    env: Mapping[str, str] | None
    timeout: float


def run_git(args: Sequence[str], **options: Unpack[_GitOptions]) -> str:
    """`run_git_bytes`, with stdout decoded as UTF-8."""
    return run_git_bytes(args, **options).decode("utf-8", "replace")


def git_http_backend_path() -> Path:
    """Where `git http-backend` lives: it is not on PATH, but in git's exec path."""
    exec_path = Path(run_git(["--exec-path"]).strip())
    backend = exec_path / "git-http-backend"
    if not os.access(backend, os.X_OK):
        raise GitServerError(f"git-http-backend not found or not executable at {backend}")
    return backend


# --------------------------------------------------------------------------------------------------
# Bare repositories


def _validate_relative_path(path: str, what: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"{what} must be a relative path without '.', '..' or empty segments: {path!r}")
    if parts[0] == ".git" or "\0" in path:
        raise ValueError(f"{what} is not allowed: {path!r}")
    return path


def _validate_ref_part(name: str, what: str) -> str:
    # Stricter than git's own rules on purpose: these names end up in fast-import streams and URLs.
    if not _REF_NAME.match(name) or ".." in name or name.startswith(("/", "-")) or name.endswith((".", "/")):
        raise ValueError(f"invalid {what} name: {name!r}")
    return name


def _fast_import_path(path: str) -> bytes:
    # fast-import requires C-style quoting for paths starting with '"' or containing LF; quoting always
    # when anything unusual appears is simplest and always accepted.
    if path.startswith('"') or any(ch in path for ch in '\n\\"'):
        escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'.encode()
    return path.encode()


def _data_block(payload: bytes) -> bytes:
    return b"data %d\n" % len(payload) + payload + b"\n"


@dataclass(frozen=True)
class BareRepo:
    """A bare repository under a served base directory.

    `name` is its path relative to that base (always ending in `.git`), which is what goes into URLs.
    """

    path: Path
    name: str

    def _git(self, *args: str, input: bytes | None = None) -> str:
        return run_git(["--git-dir", str(self.path), *args], input=input)

    def resolve(self, rev: str) -> str | None:
        """The commit sha `rev` points to (tags are peeled), or None if it does not exist."""
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip() or None
        except GitServerError:
            return None

    def commit(
        self,
        files: Mapping[str, str | bytes | None],
        *,
        branch: str = "main",
        message: str = "Update catalogue",
        replace: bool = False,
        start_point: str | None = None,
        tag: str | None = None,
        tag_message: str | None = None,
        when: datetime | None = None,
    ) -> str:
        """Commit `files` on top of `branch` and return the new commit's sha.

        `files` maps paths (relative, `/`-separated) to content; None deletes the path. Other files of
        the parent commit are kept, unless `replace` is set, in which case the tree is exactly `files`.
        A commit is always created, even if the tree does not change (tests need "new revision, same
        data"). A branch that does not exist yet starts at `start_point` (any rev), or as a root commit.
        `tag` also points a tag (moved if it exists) at the commit: lightweight, or annotated when
        `tag_message` is given.

        The objects are written with `git fast-import` directly into the bare repository, which is
        what a push ends up doing; ref updates are atomic, so servers never see a half-written commit.
        """
        _validate_ref_part(branch, "branch")
        if tag is not None:
            _validate_ref_part(tag, "tag")
        parent = self.resolve(f"refs/heads/{branch}")
        if parent is None and start_point is not None:
            parent = self.resolve(start_point)
            if parent is None:
                raise GitServerError(f"start point {start_point!r} does not exist in {self.name}")
        moment = when or datetime.now(UTC)
        ident = f"{COMMITTER_NAME} <{COMMITTER_EMAIL}> {int(moment.timestamp())} +0000".encode()

        stream = bytearray()
        stream += b"commit refs/heads/%s\nmark :1\n" % branch.encode()
        stream += b"author " + ident + b"\ncommitter " + ident + b"\n"
        stream += _data_block(message.encode())
        if parent is not None:
            stream += b"from %s\n" % parent.encode()
        if replace:
            stream += b"deleteall\n"
        for path, content in files.items():
            quoted = _fast_import_path(_validate_relative_path(path, "file path"))
            if content is None:
                stream += b"D " + quoted + b"\n"
            else:
                data = content.encode() if isinstance(content, str) else content
                stream += b"M 100644 inline " + quoted + b"\n" + _data_block(data)
        stream += b"\n"
        if tag is not None:
            if tag_message is None:
                stream += b"reset refs/tags/%s\nfrom :1\n\n" % tag.encode()
            else:
                stream += b"tag %s\nfrom :1\ntagger " % tag.encode() + ident + b"\n"
                stream += _data_block(tag_message.encode())
        # `--done` makes a truncated stream an error rather than a partial import; `--force` lets a
        # moved tag overwrite the old one.
        stream += b"done\n"
        self._git("fast-import", "--quiet", "--force", "--done", input=bytes(stream))
        sha = self.resolve(f"refs/heads/{branch}")
        if sha is None:  # pragma: no cover - fast-import succeeded, so the ref exists
            raise GitServerError(f"commit on {branch!r} in {self.name} left no branch behind")
        return sha

    def create_branch(self, name: str, rev: str) -> str:
        """Point branch `name` at `rev` (created or moved); return the commit sha."""
        sha = self._require(rev)
        self._git("update-ref", f"refs/heads/{_validate_ref_part(name, 'branch')}", sha)
        return sha

    def create_tag(self, name: str, rev: str = "HEAD", *, message: str | None = None) -> str:
        """Point tag `name` at `rev` (created or moved; annotated when `message` is given); return the
        commit sha it points to (for an annotated tag, `ls-remote` shows that sha on `refs/tags/NAME^{}`)."""
        sha = self._require(rev)
        _validate_ref_part(name, "tag")
        if message is None:
            self._git("tag", "--force", name, sha)
        else:
            self._git("tag", "--force", "--annotate", "--message", message, name, sha)
        return sha

    def delete_ref(self, ref: str) -> None:
        """Delete a full ref name such as `refs/heads/dev` or `refs/tags/v1`."""
        self._git("update-ref", "-d", ref)

    def set_default_branch(self, branch: str) -> None:
        """Make `branch` the remote HEAD (what a clone without `--branch` checks out)."""
        self._git("symbolic-ref", "HEAD", f"refs/heads/{_validate_ref_part(branch, 'branch')}")

    def refs(self) -> dict[str, str]:
        """Every ref and the object it points to (tag objects not peeled), like a server advertises."""
        out = self._git("for-each-ref", "--format=%(objectname) %(refname)")
        return {ref: sha for sha, ref in (line.split(" ", 1) for line in out.splitlines() if line)}

    def read_file(self, path: str, rev: str = "HEAD") -> bytes:
        """The content of `path` at `rev`."""
        return run_git_bytes(["--git-dir", str(self.path), "show", f"{rev}:{path}"])

    def _require(self, rev: str) -> str:
        sha = self.resolve(rev)
        if sha is None:
            raise GitServerError(f"revision {rev!r} does not exist in {self.name}")
        return sha


def create_bare_repo(base_path: Path, name: str, *, default_branch: str = "main") -> BareRepo:
    """Create an empty bare repository `base_path/name` (`.git` appended if missing) whose HEAD is
    `default_branch`, configured to be served read-only."""
    if not name.endswith(".git"):
        name += ".git"
    _validate_relative_path(name, "repository name")
    _validate_ref_part(default_branch, "branch")
    path = Path(base_path) / name
    if path.exists():
        raise FileExistsError(f"repository already exists: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    run_git(["init", "--bare", "--quiet", f"--initial-branch={default_branch}", str(path)])
    for key, value in _SERVED_REPO_CONFIG.items():
        run_git(["--git-dir", str(path), "config", key, value])
    return BareRepo(path=path, name=name)


def _repo_url_path(base_path: Path, repo: str | BareRepo) -> str:
    if isinstance(repo, BareRepo):
        try:
            relative = repo.path.resolve().relative_to(base_path.resolve())
        except ValueError:
            raise ValueError(f"{repo.path} is not under the served directory {base_path}") from None
        name = relative.as_posix()
    else:
        name = repo
    _validate_relative_path(name, "repository name")
    return urllib.parse.quote(name)


# --------------------------------------------------------------------------------------------------
# Process helpers


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _live_group_members(pgid: int) -> list[int]:
    """Processes of process group `pgid` that are still running (zombies do not count: in a container
    whose PID 1 does not reap, orphans may stay zombies forever, but they hold no port or file)."""
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover - Linux is the supported platform
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _kill_process_group(process: subprocess.Popen[bytes], *, grace: float = 5.0) -> None:
    """Stop `process` (a group leader, started with `start_new_session=True`) and everything it spawned.

    `git daemon` forks a child per connection, which forks `git upload-pack`; killing only the daemon
    would leave those running. SIGTERM first, SIGKILL for what is left after `grace` seconds.
    """
    pgid = process.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if process.poll() is not None and not _live_group_members(pgid):
                return
            time.sleep(0.02)
    process.wait(timeout=grace)
    leftover = _live_group_members(pgid)
    if leftover:  # pragma: no cover - SIGKILL cannot be ignored
        log.warning("processes of group %d survived SIGKILL: %s", pgid, leftover)


def _kill_group_now(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process started with `start_new_session=True` and everything it spawned."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class _GitServer(Background):
    """What both git servers share: every bare repository under `base_path`, served once started on
    `SCHEME://HOST:PORT/<name>.git`."""

    scheme: str
    what: str  # names the server in the error when its port is asked for before it was started
    base_path: Path
    host: str
    _port: int | None

    @property
    def port(self) -> int:
        if not self._port:
            raise GitServerError(f"{self.what} has not been started yet")
        return self._port

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, repo: str | BareRepo) -> str:
        """`SCHEME://HOST:PORT/<name>.git` (no credentials in it) for a repository name (relative to
        `base_path`) or a BareRepo."""
        return f"{self.base_url}/{_repo_url_path(self.base_path, repo)}"


# --------------------------------------------------------------------------------------------------
# git daemon


@dataclass(frozen=True)
class DaemonRequest:
    """A service request `git daemon` logged: `service` is e.g. `upload-pack`, `path` the repo path."""

    service: str
    path: str


_DAEMON_REQUEST = re.compile(r"Request (\S+) for '([^']*)'")


class GitDaemonServer(_GitServer):
    """`git daemon` serving every bare repository under `base_path` on `git://HOST:PORT/<name>.git`.

    Use as a context manager, or call `start()`/`stop()`. After `stop()`, `start()` reuses the same
    port, so URLs handed out earlier become valid again (how tests model an outage and its recovery).
    """

    scheme = "git"
    what = "the git daemon"

    def __init__(
        self,
        base_path: Path,
        *,
        host: str = LOOPBACK,
        port: int | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        self.base_path = Path(base_path)
        self.host = host
        self._port = port
        self._port_fixed = port is not None
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        # Bounded: a long-lived dev server must not grow without limit.
        self._log: deque[str] = deque(maxlen=20_000)
        self._log_lock = threading.Lock()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"GitDaemonServer({self.base_path}, {self.host}:{self._port}, {state})"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Self:
        if self.running:
            return self
        if not self.base_path.is_dir():
            raise GitServerError(f"base path does not exist: {self.base_path}")
        # A port chosen here could be taken by someone else before the daemon binds it: retry with a
        # new one, unless the caller (or an earlier start) fixed the port.
        attempts = 1 if self._port_fixed or self._port is not None else 5
        last_error: GitServerError | None = None
        for _ in range(attempts):
            port = self._port if self._port is not None else _free_port(self.host)
            try:
                self._spawn(port)
            except GitServerError as exc:
                last_error = exc
                continue
            self._port = port
            log.info("git daemon serving %s on %s", self.base_path, self.base_url)
            return self
        assert last_error is not None
        raise last_error

    def _spawn(self, port: int) -> None:
        argv = [
            "git",
            "daemon",
            "--export-all",
            "--reuseaddr",
            "--verbose",
            "--informative-errors",
            f"--base-path={self.base_path}",
            f"--listen={self.host}",
            f"--port={port}",
            # A client that connects and says nothing must not hold a child process for long.
            "--init-timeout=10",
            "--timeout=120",
            str(self.base_path),
        ]
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=isolated_git_env(),
            # Its own process group, so stop() can take down per-connection children too.
            start_new_session=True,
        )
        reader = threading.Thread(
            target=self._read_log, args=(process,), name=f"git-daemon-log-{port}", daemon=True
        )
        reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                reader.join(timeout=2)
                raise GitServerError(
                    f"git daemon exited with {process.returncode} on port {port}: {self._tail()}"
                )
            if _accepts_connections(self.host, port):
                self._process, self._reader = process, reader
                return
            time.sleep(0.05)
        _kill_process_group(process)
        reader.join(timeout=2)
        raise GitServerError(f"git daemon did not accept connections on port {port}: {self._tail()}")

    def _read_log(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            with self._log_lock:
                self._log.append(line)
            log.debug("git daemon: %s", line)

    def _tail(self, lines: int = 10) -> str:
        with self._log_lock:
            return " | ".join(list(self._log)[-lines:]) or "(no output)"

    def stop(self) -> None:
        """Stop the daemon and every process it spawned; connections in flight are cut."""
        process, self._process = self._process, None
        if process is None:
            return
        _kill_process_group(process)
        if process.stderr is not None:
            # The reader ends at EOF, i.e. once every holder of the pipe (the whole group) is gone.
            if self._reader is not None:
                self._reader.join(timeout=5)
            process.stderr.close()
        self._reader = None
        log.info("git daemon on port %s stopped", self._port)

    def log_lines(self) -> list[str]:
        """What `git daemon --verbose` printed so far."""
        with self._log_lock:
            return list(self._log)

    def requests(self) -> list[DaemonRequest]:
        """Service requests logged so far (one per client connection that asked for a repository)."""
        found = []
        for line in self.log_lines():
            match = _DAEMON_REQUEST.search(line)
            if match:
                found.append(DaemonRequest(service=match.group(1), path=match.group(2)))
        return found

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()


# --------------------------------------------------------------------------------------------------
# Smart HTTP


@dataclass(frozen=True)
class HTTPRequestRecord:
    """One request the smart HTTP server answered. Holds no credentials: only the user name.

    `service` is `git-upload-pack` / `git-receive-pack` for smart-protocol requests (from `?service=`
    or the POST path), None otherwise. `command` is, for an upload-pack POST, the protocol-v2 command
    (`ls-refs`, `fetch`, …), or `fetch` for a protocol-v0 negotiation; a pack is only ever sent in
    answer to a `fetch`.
    """

    method: str
    path: str
    repo: str | None
    service: str | None
    status: int
    username: str | None
    command: str | None = None
    content_encoding: str | None = None
    transfer_encoding: str | None = None
    at: float = field(default_factory=time.time)


_SMART_SUFFIXES = ("/info/refs", "/git-upload-pack", "/git-receive-pack")


def _split_repo_path(path: str) -> tuple[str | None, str | None]:
    """(repository name, smart service suffix) for a request path, e.g. `/a.git/info/refs`."""
    for suffix in _SMART_SUFFIXES:
        if path.endswith(suffix):
            return path[1 : -len(suffix)] or None, suffix[1:]
    match = re.match(r"^/(.+?\.git)(/|$)", path)
    return (match.group(1) if match else None), None


class _CommandSniffer:
    """Reads the first pkt-line of an upload-pack request body (gunzipping if needed) to tell an
    `ls-refs` from a `fetch`, without buffering the body."""

    _LIMIT = 64 * 1024

    def __init__(self, gzipped: bool) -> None:
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
        self._buffer = bytearray()
        self._seen = 0
        self.command: str | None = None
        self.done = False

    def feed(self, chunk: bytes) -> None:
        if self.done:
            return
        self._seen += len(chunk)
        try:
            if self._inflater is not None:
                # Bounded output; what is left over is fed again with the next chunk.
                data = self._inflater.decompress(self._inflater.unconsumed_tail + chunk, 4096)
            else:
                data = chunk
        except zlib.error:
            self.done = True
            return
        self._buffer += data
        if len(self._buffer) < 4:
            self.done = self._seen > self._LIMIT
            return
        try:
            length = int(self._buffer[:4], 16)
        except ValueError:
            self.done = True
            return
        if length < 4:  # flush/delim packet first: nothing to classify
            self.done = True
            return
        if len(self._buffer) < length:
            self.done = self._seen > self._LIMIT
            return
        line = bytes(self._buffer[4:length]).decode("utf-8", "replace").rstrip("\n")
        if line.startswith("command="):
            self.command = line.removeprefix("command=")
        elif line.startswith("want "):
            self.command = "fetch"  # protocol v0/v1: an upload-pack POST is always a negotiation
        self.done = True


class _ServerCore(ThreadingHTTPServer):
    """The HTTP server proper; tracks connections and CGI children so stop() can cut them."""

    # Handler threads are joined on close (no half-finished CGI left behind); stop() makes sure they
    # end promptly by shutting their sockets down.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: SmartHTTPGitServer) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.children: set[subprocess.Popen[bytes]] = set()
        self.lock = threading.Lock()
        super().__init__(address, _GitHTTPHandler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.lock:
                self.connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-transfer (or stop() cutting them) are normal here; no tracebacks.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("git http: connection from %s ended: %s", client_address, exc)
        else:
            log.exception("git http: error handling request from %s", client_address)


class _GitHTTPHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 for keep-alive and chunked streaming of CGI output (and `Expect: 100-continue`).
    protocol_version = "HTTP/1.1"
    server_version = "mcpreg-git-http/1"
    sys_version = ""
    # Idle keep-alive connections do not hold a thread forever.
    timeout = 60
    server: _ServerCore

    def log_message(self, format: str, *args: Any) -> None:
        # The request line holds method, path and query only; credentials travel in the Authorization
        # header, which is never logged.
        log.debug("git http %s: " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    # ---- helpers

    def _has_body(self) -> bool:
        length = self.headers.get("Content-Length", "0").strip()
        return bool(self.headers.get("Transfer-Encoding")) or not length.isdigit() or int(length) > 0

    def _reply(self, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if self._has_body():
            # The request body was not read: the connection cannot be reused.
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _authenticate(self) -> tuple[bool, str | None]:
        """(allowed, user name). Accepts the configured user+password, or the token as password (any
        user name, like hosted forges) or as a Bearer token."""
        credentials = self.server.owner._credentials
        if not credentials.required:
            return True, None
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return (True, "token") if credentials.bearer(value) else (False, None)
        if scheme.lower() != "basic":
            return False, None
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False, None
        user, sep, password = decoded.partition(":")
        if not sep:
            return False, None
        let_in_as = credentials.basic(user, password)
        return let_in_as is not None, let_in_as

    def _handle(self) -> None:
        owner = self.server.owner
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        repo, suffix = _split_repo_path(path)
        query = urllib.parse.parse_qs(split.query)
        if suffix == "info/refs":
            service = query.get("service", [None])[0]
        elif suffix in ("git-upload-pack", "git-receive-pack"):
            service = suffix
        else:
            service = None

        # Every request is recorded before the last byte of its response goes out, so a client that has
        # its answer can rely on the record being there.
        def done(status: int, username: str | None = None, command: str | None = None) -> None:
            owner._record(
                HTTPRequestRecord(
                    method=self.command,
                    path=path,
                    repo=repo,
                    service=service,
                    status=status,
                    username=username,
                    command=command,
                    content_encoding=self.headers.get("Content-Encoding"),
                    transfer_encoding=self.headers.get("Transfer-Encoding"),
                )
            )

        failure = owner._failure_status
        if failure is not None:
            done(failure)
            return self._reply(failure, "failing on purpose")
        allowed, username = self._authenticate()
        if not allowed:
            done(HTTPStatus.UNAUTHORIZED)
            return self._reply(
                HTTPStatus.UNAUTHORIZED,
                "authentication required",
                {"WWW-Authenticate": f'Basic realm="{owner.realm}", charset="UTF-8"'},
            )
        if service == "git-receive-pack":
            done(HTTPStatus.FORBIDDEN, username)
            return self._reply(HTTPStatus.FORBIDDEN, "this server is read-only: push is not allowed")
        if path.startswith("//") or "/../" in path + "/" or repo is None:
            done(HTTPStatus.NOT_FOUND, username)
            return self._reply(HTTPStatus.NOT_FOUND, "not found")
        if self.command == "POST" and service != "git-upload-pack":
            done(HTTPStatus.METHOD_NOT_ALLOWED, username)
            return self._reply(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed")
        self._run_backend(path, split.query, username, done)

    def _cgi_env(self, path: str, query: str, username: str | None) -> dict[str, str]:
        owner = self.server.owner
        # Inherited variables that look like CGI meta-variables (HTTP_*, CONTENT_*, REMOTE_USER, …) must
        # not reach the CGI: only this request may define them.
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("HTTP_", "CONTENT_", "REMOTE_", "SERVER_", "REQUEST_", "PATH_INFO"))
            and key not in ("QUERY_STRING", "GATEWAY_INTERFACE", "AUTH_TYPE")
        }
        env = isolated_git_env(
            # Read-only even though REMOTE_USER is set (http-backend enables push for known users).
            {"http.receivepack": "false", "http.uploadpack": "true"},
            base=inherited,
        )
        env.update(
            {
                "GIT_PROJECT_ROOT": str(owner.base_path),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_SOFTWARE": self.server_version,
                "SERVER_PROTOCOL": self.request_version,
                "SERVER_NAME": owner.host,
                "SERVER_PORT": str(owner.port),
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REMOTE_ADDR": self.client_address[0],
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            }
        )
        if username is not None:
            env["REMOTE_USER"] = username
        # Without CONTENT_LENGTH (chunked request), http-backend reads the body until EOF.
        if self.headers.get("Content-Length") and not self.headers.get("Transfer-Encoding"):
            env["CONTENT_LENGTH"] = self.headers["Content-Length"]
        # http-backend inflates gzip request bodies itself: pass the raw bytes and say how they are encoded.
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["HTTP_GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        return env

    def _pump_body(
        self, sink: IO[bytes], sniffer: _CommandSniffer | None, failed: list[BaseException]
    ) -> None:
        """Copy the request body to the CGI's stdin as it arrives (de-chunking if needed)."""

        def forward(remaining: int, part: str) -> None:
            """Copy the next `remaining` bytes of the body (`part` names it if the client hangs up)."""
            while remaining:
                chunk = self.rfile.read(min(remaining, 65536))
                if not chunk:
                    raise ConnectionError(f"client closed the connection mid-{part}")
                if sniffer is not None:
                    sniffer.feed(chunk)
                sink.write(chunk)
                remaining -= len(chunk)

        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                while True:
                    size_line = self.rfile.readline(1024)
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline(1024).strip():  # trailers
                            pass
                        break
                    forward(size, "chunk")
                    self.rfile.readline(8)  # CRLF after the chunk
            else:
                forward(int(self.headers.get("Content-Length") or 0), "body")
        except (OSError, ValueError) as exc:
            failed.append(exc)
        finally:
            with contextlib.suppress(OSError):
                sink.close()

    def _run_backend(
        self,
        path: str,
        query: str,
        username: str | None,
        done: Callable[[int, str | None, str | None], None],
    ) -> None:
        owner = self.server.owner
        process = subprocess.Popen(
            [str(owner.backend)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._cgi_env(path, query, username),
            # http-backend runs upload-pack, which runs pack-objects: a group of their own lets an
            # aborted request take all three down at once.
            start_new_session=True,
        )
        with self.server.lock:
            self.server.children.add(process)
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        sniffer = (
            _CommandSniffer("gzip" in self.headers.get("Content-Encoding", "").lower())
            if self.command == "POST"
            else None
        )
        failed: list[BaseException] = []
        # Separate threads for the body and for stderr: the CGI may write before it has read all input,
        # and a full stderr pipe would block it.
        pump = threading.Thread(target=self._pump_body, args=(process.stdin, sniffer, failed), daemon=True)
        stderr_lines: list[bytes] = []
        drain = threading.Thread(target=lambda: stderr_lines.extend(process.stderr or ()), daemon=True)
        pump.start()
        drain.start()
        recorded = False

        def finish(status: int) -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                # The sniffer has seen the request's first pkt-line by now: the CGI answers only after
                # reading it, and the pump feeds the sniffer before the CGI.
                done(status, username, sniffer.command if sniffer is not None else None)

        try:
            self._relay_response(process.stdout, finish)
        except BaseException:
            finish(HTTPStatus.INTERNAL_SERVER_ERROR)
            # The client is gone (or stop() cut it): nobody reads the CGI's output any more, so it
            # could block forever writing it.
            _kill_group_now(process)
            raise
        finally:
            pump.join(timeout=30)
            if process.poll() is None:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    _kill_group_now(process)
                    process.wait()
            drain.join(timeout=5)
            process.stdout.close()
            process.stderr.close()
            with self.server.lock:
                self.server.children.discard(process)
            if failed:
                self.close_connection = True
            for line in stderr_lines:
                log.debug("git http-backend: %s", line.decode("utf-8", "replace").rstrip())

    def _relay_response(self, stdout: IO[bytes], finish: Callable[[int], None]) -> None:
        """Turn the CGI's output (headers, blank line, body) into an HTTP response, streaming the body.
        `finish(status)` is called just before the client can see the response is complete."""
        status = HTTPStatus.OK.value
        headers: list[tuple[str, str]] = []
        while True:
            line = stdout.readline(65536)
            if not line:
                # The CGI died before finishing its headers.
                finish(HTTPStatus.BAD_GATEWAY)
                self.close_connection = True
                self._reply(HTTPStatus.BAD_GATEWAY, "git http-backend produced no response")
                return
            text = line.decode("latin-1").rstrip("\r\n")
            if not text:
                break
            key, _, value = text.partition(":")
            value = value.strip()
            if key.lower() == "status":
                status = int(value.split(" ", 1)[0])
            else:
                headers.append((key, value))
        self.send_response(status)
        lengths = [int(value) for key, value in headers if key.lower() == "content-length"]
        fixed_length = bool(lengths)
        remaining = lengths[0] if lengths else -1
        # Responses of unknown length are streamed chunked to HTTP/1.1 clients; HTTP/1.0 clients get
        # the body until the connection closes.
        chunked = not fixed_length and self.request_version == "HTTP/1.1"
        for key, value in headers:
            self.send_header(key, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif not fixed_length:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        read = getattr(stdout, "read1", stdout.read)
        while True:
            data = read(65536)
            if not data:
                break
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                if 0 <= remaining <= len(data):
                    finish(status)  # this write completes the declared length
                remaining -= len(data)
                self.wfile.write(data)
            self.wfile.flush()
        # Chunked: the terminating chunk ends the response; close-delimited: closing the connection,
        # which happens after this returns.
        finish(status)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


@dataclass(frozen=True)
class _Credentials:
    """Who the smart HTTP server lets in: `username` with `password` by basic auth, and/or anyone with
    `token` as the basic-auth password (any user name, like hosted forges) or as a Bearer token; when
    none is set, anyone."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.username is not None and ":" in self.username:
            raise ValueError("a basic-auth user name cannot contain ':'")

    @property
    def required(self) -> bool:
        return self.username is not None or self.token is not None

    def bearer(self, value: str) -> bool:
        return self.token is not None and hmac.compare_digest(value.encode(), self.token.encode())

    def basic(self, user: str, password: str) -> str | None:
        """The user name a basic-auth pair is let in as, or None."""
        if self.username is not None and self.password is not None:
            user_ok = hmac.compare_digest(user.encode(), self.username.encode())
            password_ok = hmac.compare_digest(password.encode(), self.password.encode())
            if user_ok and password_ok:
                return user
        if self.bearer(password):
            return user or "token"
        return None

    def describe(self) -> str:
        """For logs and reprs: never the password or token."""
        described = f"user={self.username!r}" if self.username else "no user"
        return described + (", token set" if self.token else "")


class SmartHTTPGitServer(_GitServer):
    """Smart HTTP git (`git http-backend`) for every bare repository under `base_path`, read-only, on
    `http://HOST:PORT/<name>.git`, served by a threaded HTTP server in a background thread (so an
    asyncio test or operator in the same process is never blocked by it).

    Authentication: with `username`+`password` and/or `token` set, every request needs HTTP basic auth
    with that user and password, or with the token as password (any user name), or `Authorization:
    Bearer TOKEN`; otherwise 401 with `WWW-Authenticate: Basic`. With none set, access is anonymous.
    Pushes are refused with 403.

    Every answered request is recorded (`requests()`, `count()`), so tests can tell a cheap ref listing
    from a pack fetch. `stop()` makes the URLs refuse connections; `start()` again reuses the port.
    `failing(status)` makes it answer every request with an error status instead.
    """

    scheme = "http"
    what = "the smart HTTP git server"

    def __init__(
        self,
        base_path: Path,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        host: str = LOOPBACK,
        port: int = 0,
        realm: str = "mcpreg git",
    ) -> None:
        self._credentials = _Credentials(username, password, token)
        self.base_path = Path(base_path)
        self.host = host
        self.realm = realm
        self._port = port
        self.backend = git_http_backend_path()
        self._core: _ServerCore | None = None
        self._thread: threading.Thread | None = None
        self._records: deque[HTTPRequestRecord] = deque(maxlen=100_000)
        self._records_lock = threading.Lock()
        self._failure_status: int | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        auth = self._credentials.describe()
        return f"SmartHTTPGitServer({self.base_path}, {self.host}:{self._port}, {auth}, {state})"

    @property
    def running(self) -> bool:
        return self._core is not None

    def start(self) -> Self:
        if self._core is not None:
            return self
        if not self.base_path.is_dir():
            raise GitServerError(f"base path does not exist: {self.base_path}")
        core = _ServerCore((self.host, self._port or 0), self)
        self._port = int(core.server_address[1])
        thread = threading.Thread(
            target=core.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"git-http-{self._port}",
            daemon=True,
        )
        thread.start()
        self._core, self._thread = core, thread
        log.info("smart HTTP git serving %s on %s", self.base_path, self.base_url)
        return self

    def stop(self) -> None:
        """Stop listening and cut every connection in flight (their CGI children are killed)."""
        core, self._core = self._core, None
        if core is None:
            return
        core.shutdown()  # the accept loop ends; nothing new is picked up
        with core.lock:
            children = list(core.children)
            connections = list(core.connections)
        for child in children:
            _kill_group_now(child)
        for conn in connections:
            # Wakes handler threads blocked reading a keep-alive connection.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        core.server_close()  # closes the listening socket and joins the handler threads
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        log.info("smart HTTP git on port %s stopped", self._port)

    def in_flight(self) -> int:
        """How many requests are being answered by `git http-backend` right now."""
        core = self._core
        if core is None:
            return 0
        with core.lock:
            return sum(1 for child in core.children if child.poll() is None)

    def set_failure(self, status: int | None) -> None:
        """Answer every request with `status` (e.g. 503) from now on; None returns to normal."""
        self._failure_status = status

    @contextlib.contextmanager
    def failing(self, status: int = HTTPStatus.SERVICE_UNAVAILABLE) -> Iterator[None]:
        """Within the block, every request gets `status`."""
        self.set_failure(status)
        try:
            yield
        finally:
            self.set_failure(None)

    def _record(self, record: HTTPRequestRecord) -> None:
        with self._records_lock:
            self._records.append(record)

    def requests(self, repo: str | BareRepo | None = None) -> list[HTTPRequestRecord]:
        """Requests answered so far (optionally only those for one repository), oldest first."""
        with self._records_lock:
            records = list(self._records)
        if repo is None:
            return records
        name = urllib.parse.unquote(_repo_url_path(self.base_path, repo))
        return [record for record in records if record.repo == name]

    def clear_requests(self) -> None:
        with self._records_lock:
            self._records.clear()

    def count(
        self,
        repo: str | BareRepo | None = None,
        *,
        method: str | None = None,
        service: str | None = None,
        command: str | None = None,
        status: int | None = None,
    ) -> int:
        """How many recorded requests match every given criterion."""
        return sum(
            1
            for record in self.requests(repo)
            if (method is None or record.method == method)
            and (service is None or record.service == service)
            and (command is None or record.command == command)
            and (status is None or record.status == status)
        )

    def ref_advertisements(self, repo: str | BareRepo | None = None) -> int:
        """Successful `GET …/info/refs?service=git-upload-pack` (the start of every ls-remote/fetch)."""
        return self.count(repo, method="GET", service="git-upload-pack", status=200)

    def pack_fetches(self, repo: str | BareRepo | None = None) -> int:
        """Successful upload-pack POSTs that negotiate or send a pack (protocol v2 `fetch`, or v0)."""
        return self.count(repo, method="POST", service="git-upload-pack", command="fetch", status=200)


# --------------------------------------------------------------------------------------------------
# Foreground runner: `python -m mcpreg_dev.gitserver daemon|http --base-path DIR [--port N]`


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a directory in the foreground until SIGTERM/SIGINT; print `READY <base url>` once
    listening. HTTP credentials come from MCPREG_GIT_USERNAME / MCPREG_GIT_PASSWORD / MCPREG_GIT_TOKEN
    (environment, not arguments, so they never show in the process list)."""
    parser = argparse.ArgumentParser(prog="python -m mcpreg_dev.gitserver")
    parser.add_argument("kind", choices=["daemon", "http"])
    parser.add_argument("--base-path", type=Path, required=True)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server: GitDaemonServer | SmartHTTPGitServer
    if args.kind == "daemon":
        server = GitDaemonServer(args.base_path, host=args.host, port=args.port or None)
    else:
        server = SmartHTTPGitServer(
            args.base_path,
            username=os.environ.get("MCPREG_GIT_USERNAME"),
            password=os.environ.get("MCPREG_GIT_PASSWORD"),
            token=os.environ.get("MCPREG_GIT_TOKEN"),
            host=args.host,
            port=args.port,
        )
    with server:
        print(f"READY {server.base_url}", flush=True)
        while not stop.wait(1.0):
            if isinstance(server, GitDaemonServer) and not server.running:
                log.error("git daemon exited unexpectedly")
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "COMMITTER_EMAIL",
    "COMMITTER_NAME",
    "LOOPBACK",
    "BareRepo",
    "DaemonRequest",
    "GitDaemonServer",
    "GitServerError",
    "HTTPRequestRecord",
    "SmartHTTPGitServer",
    "basic_auth_header",
    "create_bare_repo",
    "git_http_backend_path",
    "http_auth_env",
    "isolated_git_env",
    "run_git",
    "run_git_bytes",
]
