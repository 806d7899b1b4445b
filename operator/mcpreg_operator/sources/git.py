"""Git source: resolve the wanted ref cheaply (`ls-remote`), and fetch one file at one commit with a
shallow fetch into a throw-away directory.

Credentials reach git only through environment variables (`GIT_CONFIG_*` carrying an
`http.extraHeader`), never through arguments, URLs, files or logs. Every git process runs with the
user's and system's git configuration ignored, prompts off, only network protocols allowed, and a
timeout; fetched data is bounded in size while it arrives.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mcpreg_operator.sources.errors import SourceError, SourceErrorKind

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_FETCH_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class GitCredentials:
    """HTTP basic credentials from the registry's Secret. `repr` never shows them."""

    username: str = field(repr=False)
    password: str = field(repr=False)

    def header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Authorization: Basic {token}"


@dataclass(frozen=True)
class GitRef:
    """What to fetch: exactly one of branch, tag, commit; none means the remote's HEAD."""

    branch: str | None = None
    tag: str | None = None
    commit: str | None = None

    def describe(self) -> str:
        if self.branch:
            return f"branch {self.branch!r}"
        if self.tag:
            return f"tag {self.tag!r}"
        if self.commit:
            return f"commit {self.commit}"
        return "the default branch (HEAD)"


@dataclass(frozen=True)
class GitFetchLimits:
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_fetch_bytes: int = DEFAULT_MAX_FETCH_BYTES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES


# What git may see of the operator's environment: where things are, which CA bundle to trust, and
# the proxy settings corporate clusters need (git honours the standard proxy variables).
_PASSED_THROUGH = frozenset(
    {"PATH", "HOME", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR"}
    | {f"{name}{suffix}" for name in ("http", "https", "no", "all") for suffix in ("_proxy",)}
    | {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"}
)


def git_env(credentials: GitCredentials | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal, isolated environment for git. Secrets travel as GIT_CONFIG_* variables, which unlike
    `git -c` do not show in the process list."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if k in _PASSED_THROUGH}
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "/bin/false",
            "GIT_PROTOCOL_FROM_USER": "0",
            "LC_ALL": "C",
        }
    )
    config = {
        # Only network transports: never file://, ext:: or anything a hostile repo could smuggle in.
        "protocol.allow": "never",
        "protocol.https.allow": "always",
        "protocol.http.allow": "always",
        "protocol.git.allow": "always",
        "credential.helper": "",
        "core.askPass": "/bin/false",
        "http.lowSpeedLimit": "1000",
        "http.lowSpeedTime": "30",
    }
    if credentials is not None:
        config["http.extraHeader"] = credentials.header()
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config.items()):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def redact(text: str, credentials: GitCredentials | None) -> str:
    """Remove anything secret from git's output before it reaches logs, status or Events."""
    text = re.sub(r"(://)[^/@\s]+@", r"\1***@", text)
    if credentials is not None:
        for secret in (
            credentials.password,
            base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode(),
        ):
            if secret:
                text = text.replace(secret, "***")
    return text


def _classify(stderr: str, url: str) -> SourceError:
    lowered = stderr.lower()
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "git failed")
    if (
        "authentication failed" in lowered
        or "could not read username" in lowered
        or " 401" in lowered
        or " 403" in lowered
    ):
        return SourceError(
            SourceErrorKind.AUTHENTICATION,
            f"authentication to {url} failed: check the username/password or token in the credentials Secret",
        )
    if (
        "repository not found" in lowered
        or ("not found" in lowered and "remote" in lowered)
        or " 404" in lowered
    ):
        return SourceError(SourceErrorKind.NOT_FOUND, f"repository {url} not found ({last})")
    if "does not appear to be a git repository" in lowered or "no such repository" in lowered:
        return SourceError(SourceErrorKind.NOT_FOUND, f"repository {url} not found ({last})")
    if any(
        s in lowered
        for s in (
            "connection refused",
            "could not resolve",
            "timed out",
            "unable to connect",
            "failed to connect",
            "couldn't connect",
            "connection reset",
            "unable to look up",
        )
    ):
        return SourceError(SourceErrorKind.UNREACHABLE, f"cannot reach {url}: {last}")
    return SourceError(SourceErrorKind.UNREACHABLE, f"git could not read {url}: {last}")


def _dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


class GitClient:
    """Blocking git operations; the operator calls them in a worker thread."""

    def __init__(self, limits: GitFetchLimits | None = None) -> None:
        self.limits = limits or GitFetchLimits()

    def _run(
        self,
        args: list[str],
        *,
        url: str,
        credentials: GitCredentials | None,
        cwd: Path | None = None,
        watch_dir: Path | None = None,
    ) -> str:
        env = git_env(credentials)
        proc = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        too_big = threading.Event()
        done = threading.Event()

        def guard_size() -> None:
            # A repository larger than the limit is stopped while it downloads, not after.
            while watch_dir is not None and not done.wait(0.25):
                if _dir_size(watch_dir) > self.limits.max_fetch_bytes:
                    too_big.set()
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, 9)
                    return

        guard = threading.Thread(target=guard_size, daemon=True)
        guard.start()
        try:
            out, err = proc.communicate(timeout=self.limits.timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.communicate()
            raise SourceError(
                SourceErrorKind.UNREACHABLE,
                f"git timed out after {self.limits.timeout_s:.0f}s talking to {url}",
            ) from None
        finally:
            done.set()
            guard.join()
        if too_big.is_set():
            raise SourceError(
                SourceErrorKind.TOO_LARGE,
                f"{url} sent more than {self.limits.max_fetch_bytes // (1024 * 1024)} MiB; "
                "keep the catalogue in a smaller repository",
            )
        if proc.returncode != 0:
            raise _classify(redact(err.decode(errors="replace"), credentials), url)
        return out.decode(errors="replace")

    def resolve(self, url: str, ref: GitRef, credentials: GitCredentials | None = None) -> str:
        """The commit `ref` names on the remote, from `git ls-remote` alone (nothing is downloaded)."""
        if ref.commit:
            return ref.commit.lower()
        if ref.branch:
            patterns = [f"refs/heads/{ref.branch}"]
        elif ref.tag:
            patterns = [f"refs/tags/{ref.tag}", f"refs/tags/{ref.tag}^{{}}"]
        else:
            patterns = ["HEAD"]
        output = self._run(["ls-remote", "--", url, *patterns], url=url, credentials=credentials)
        refs: dict[str, str] = {}
        for line in output.splitlines():
            sha, _, name = line.partition("\t")
            refs[name.strip()] = sha.strip()
        # An annotated tag's peeled entry (^{}) names the commit; the plain entry names the tag object.
        for name in reversed(patterns):
            if name in refs and SHA_RE.match(refs[name]):
                return refs[name]
        raise SourceError(SourceErrorKind.NOT_FOUND, f"{ref.describe()} does not exist in {url}")

    def read_file(
        self, url: str, ref: GitRef, path: str, credentials: GitCredentials | None = None
    ) -> tuple[str, bytes]:
        """(commit, bytes of `path` at that commit), by a shallow fetch of that one commit."""
        workdir = Path(tempfile.mkdtemp(prefix="mcpreg-git-"))
        try:
            repo = workdir / "repo.git"
            self._run(["init", "--bare", "--quiet", str(repo)], url=url, credentials=None)
            if ref.commit and not SHA_RE.match(ref.commit.lower()):
                # An abbreviated commit cannot be asked for by name: fetch the branches and tags, then
                # let git expand it.
                refspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
                depth: list[str] = []
                target = f"{ref.commit}^{{commit}}"
            else:
                wanted = ref.commit.lower() if ref.commit else None
                wanted = wanted or (f"refs/heads/{ref.branch}" if ref.branch else None)
                wanted = wanted or (f"refs/tags/{ref.tag}" if ref.tag else "HEAD")
                refspecs = [f"{wanted}:refs/mcpreg/wanted"]
                depth = ["--depth=1"]
                target = "refs/mcpreg/wanted^{commit}"
            fetch = ["fetch", "--quiet", *depth, "--no-tags", "--no-write-fetch-head", "--", url, *refspecs]
            try:
                self._run(fetch, url=url, credentials=credentials, cwd=repo, watch_dir=workdir)
            except SourceError as exc:
                lowered = exc.message.lower()
                if exc.kind is SourceErrorKind.UNREACHABLE and (
                    "not our ref" in lowered
                    or "couldn't find remote ref" in lowered
                    or "unadvertised" in lowered
                ):
                    raise SourceError(
                        SourceErrorKind.NOT_FOUND, f"{ref.describe()} does not exist in {url}"
                    ) from None
                raise
            try:
                commit = self._run(
                    ["rev-parse", "--verify", "--quiet", target], url=url, credentials=None, cwd=repo
                )
            except SourceError:
                raise SourceError(
                    SourceErrorKind.NOT_FOUND, f"{ref.describe()} does not exist in {url}"
                ) from None
            commit = commit.strip()
            spec = f"{commit}:{path}"
            try:
                kind = self._run(["cat-file", "-t", spec], url=url, credentials=None, cwd=repo).strip()
            except SourceError:
                raise SourceError(
                    SourceErrorKind.NOT_FOUND,
                    f"{path} does not exist at {ref.describe()} ({commit[:12]}) of {url}",
                ) from None
            if kind != "blob":
                raise SourceError(
                    SourceErrorKind.NOT_FOUND, f"{path} at {commit[:12]} of {url} is a {kind}, not a file"
                )
            size = int(self._run(["cat-file", "-s", spec], url=url, credentials=None, cwd=repo).strip())
            if size > self.limits.max_file_bytes:
                raise SourceError(
                    SourceErrorKind.TOO_LARGE,
                    f"{path} is {size} bytes, over the {self.limits.max_file_bytes} byte limit",
                )
            data = subprocess.run(
                ["git", "cat-file", "blob", spec],
                cwd=repo,
                env=git_env(None),
                capture_output=True,
                check=True,
                timeout=self.limits.timeout_s,
            ).stdout
            return commit, data
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
