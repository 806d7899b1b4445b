"""Git source: resolve the wanted ref cheaply (`ls-remote`), and fetch one file at one commit with a
shallow fetch into a throw-away directory.

Credentials reach git only through environment variables (`GIT_CONFIG_*` carrying an
`http.extraHeader`), never through arguments, URLs, files or logs. Every git process runs with the
user's and system's git configuration ignored, prompts off, only network protocols allowed, and a
timeout; fetched data is bounded in size while it arrives.

Every failure, remote or local (git missing, killed or timed out, the fetched copy corrupt, the path a
directory, submodule or symbolic link), is a `SourceError` whose message names the repository URL
(without credentials), the ref, the commit and the path: never a traceback.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.sources.git_signatures import SignaturePolicy, split_commit, split_tag, verify
from mcpreg_operator.spec.source import COMMIT_SHA_RE, GIT_URL_SCHEME_RE
from mcpreg_operator.spec.url_rules import URL_USERINFO_RE

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
        # Only network transports: never file://, ext:: or anything a hostile repo could smuggle in
        # (a submodule URL, a redirect). file and ext are named too, in case a git changes defaults.
        "protocol.allow": "never",
        "protocol.https.allow": "always",
        "protocol.http.allow": "always",
        "protocol.git.allow": "always",
        "protocol.file.allow": "never",
        "protocol.ext.allow": "never",
        # Nothing of the repository's runs: no hooks (not even the fetch's reference-transaction
        # hook), no submodule recursion, no fsmonitor. Filters (.gitattributes) need a checkout or
        # --filters, and the copy is bare and read with plain `cat-file blob`, so none ever runs.
        "core.hooksPath": os.devnull,
        "submodule.recurse": "false",
        "fetch.recurseSubmodules": "false",
        "core.fsmonitor": "false",
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


def check_remote(url: str, ref: GitRef) -> None:
    """Refuse what would be unsafe to hand to git, before any git process starts.

    The CRD's rules refuse these at admission; an MCPRegistry admitted by an older or hand-made CRD
    must not get them through either: a URL git would read from the operator's own filesystem (file://
    or a plain path) or over SSH, a URL carrying credentials (they belong in a Secret, not in a spec
    anyone who can read the MCPRegistry sees), a ref git could take for an option.
    """
    shown = display_url(url)
    if re.fullmatch(GIT_URL_SCHEME_RE, url) is None:
        raise SourceError(
            SourceErrorKind.INVALID_REFERENCE,
            f"repository {shown!r} is not an https://, http:// or git:// URL "
            "(the operator reads no local paths or file:// URLs, and does not use SSH)",
        )
    if re.fullmatch(URL_USERINFO_RE, url) is not None:
        raise SourceError(
            SourceErrorKind.INVALID_REFERENCE,
            f"repository {shown} has credentials in its URL, which the operator does not use: "
            "put them in a Secret referenced by auth.secretRef",
        )
    if ref.commit is not None and re.fullmatch(COMMIT_SHA_RE, ref.commit) is None:
        raise SourceError(
            SourceErrorKind.INVALID_REFERENCE,
            f"commit {ref.commit!r} is not a hexadecimal commit SHA of 7 to 40 characters",
        )
    for kind, name in (("branch", ref.branch), ("tag", ref.tag)):
        if name is not None and (not name or name.startswith("-")):
            raise SourceError(
                SourceErrorKind.INVALID_REFERENCE,
                f"{kind} {name!r} is not a git ref name (empty or starting with '-')",
            )


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


def display_url(url: str) -> str:
    """`url` as messages show it: without any user or password before the host."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@", r"\1", url)


def _failure(returncode: int, stderr: str) -> str:
    """What went wrong with a git process, in a few words: killed by which signal, or git's last line."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"git was killed ({name})"
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    return last or f"git exited with status {returncode}"


@dataclass(frozen=True)
class _Completed:
    returncode: int
    stdout: bytes
    stderr: str


@dataclass(frozen=True)
class _TreeEntry:
    mode: str
    type: str
    oid: str
    name: str


# Tree entry modes that are not files although git calls the first a blob: a symbolic link (its blob
# holds the target) and a submodule (a gitlink: a commit of another repository, never fetched).
_SYMLINK_MODE = "120000"
_GITLINK_MODE = "160000"
_MAX_LINK_BYTES = 4096  # a link target longer than this is not read for the message


# A Git LFS pointer file: small, and its first line names the LFS spec (git-lfs docs/spec.md).
_LFS_POINTER_MAX_BYTES = 1024
_LFS_POINTER_START = b"version https://git-lfs.github.com/spec/"


def is_lfs_pointer(data: bytes) -> bool:
    return len(data) <= _LFS_POINTER_MAX_BYTES and data.startswith(_LFS_POINTER_START) and b"\noid " in data


class GitClient:
    """Blocking git operations; the operator calls them in a worker thread.

    Every failure, of the remote or of the local git process (killed, timed out, a corrupt fetched
    copy), is a `SourceError` whose message names the repository (without credentials), the ref and
    the path; nothing else escapes.
    """

    def __init__(self, limits: GitFetchLimits | None = None) -> None:
        self.limits = limits or GitFetchLimits()

    def _spawn(
        self,
        args: list[str],
        *,
        doing: str,
        credentials: GitCredentials | None,
        cwd: Path | None = None,
        limit_size: bool = False,
    ) -> _Completed:
        """Run git to its end within the time limit (and, with `limit_size`, while `cwd` holds no more
        than the fetch limit). `doing` ("talking to URL", "reading PATH at …") completes the messages
        of the failures raised here: git not startable, timed out, too big."""
        env = git_env(credentials)
        try:
            proc = subprocess.Popen(
                ["git", *args],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:  # no git in the image, no memory or processes left, cwd gone
            raise SourceError(
                SourceErrorKind.UNREACHABLE,
                f"the operator could not start git while {doing}: {exc.strerror or exc}",
            ) from None
        too_big = threading.Event()
        done = threading.Event()

        def guard_size() -> None:
            # A repository larger than the limit is stopped while it downloads, not after.
            while cwd is not None and limit_size and not done.wait(0.25):
                if _dir_size(cwd) > self.limits.max_fetch_bytes:
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
                f"git timed out after {self.limits.timeout_s:.0f}s {doing}",
            ) from None
        finally:
            done.set()
            guard.join()
        if too_big.is_set():
            raise SourceError(
                SourceErrorKind.TOO_LARGE,
                f"git stopped {doing}: more than {self.limits.max_fetch_bytes // (1024 * 1024)} MiB "
                "arrived; keep the catalogue in a smaller repository",
            )
        return _Completed(proc.returncode, out, redact(err.decode(errors="replace"), credentials))

    def _run(
        self,
        args: list[str],
        *,
        url: str,
        credentials: GitCredentials | None,
        fetch_into: Path | None = None,
    ) -> str:
        """A command that talks to the remote: its failures are classified from git's words. With
        `fetch_into`, it runs in that repository and is stopped when the repository outgrows the fetch
        limit."""
        shown = display_url(url)
        done = self._spawn(
            args, doing=f"talking to {shown}", credentials=credentials, cwd=fetch_into, limit_size=True
        )
        if done.returncode != 0:
            if done.returncode < 0:
                raise SourceError(
                    SourceErrorKind.UNREACHABLE, f"{_failure(done.returncode, '')} talking to {shown}"
                )
            raise _classify(done.stderr, shown)
        return done.stdout.decode(errors="replace")

    def _local(self, args: list[str], *, repo: Path, doing: str) -> bytes:
        """A command on the fetched copy alone: any failure (killed, corrupt or missing objects) is a
        transient `SourceUnreachable` naming what was being read; the next sync fetches anew."""
        done = self._spawn(args, doing=doing, credentials=None, cwd=repo)
        if done.returncode != 0:
            detail = _failure(done.returncode, done.stderr.replace(str(repo), "<fetched copy>"))
            raise SourceError(SourceErrorKind.UNREACHABLE, f"git failed {doing}: {detail}")
        return done.stdout

    def resolve(self, url: str, ref: GitRef, credentials: GitCredentials | None = None) -> str:
        """The commit `ref` names on the remote, from `git ls-remote` alone (nothing is downloaded)."""
        check_remote(url, ref)
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
        raise SourceError(SourceErrorKind.NOT_FOUND, f"{ref.describe()} does not exist in {display_url(url)}")

    def read_file(
        self,
        url: str,
        ref: GitRef,
        path: str,
        credentials: GitCredentials | None = None,
        policy: SignaturePolicy | None = None,
    ) -> tuple[str, bytes]:
        """(commit, bytes of `path` at that commit), by a shallow fetch of that one commit. With a
        `policy`, the commit (or the annotated tag) must be signed by one of its keys first."""
        check_remote(url, ref)
        shown = display_url(url)
        try:
            workdir = Path(tempfile.mkdtemp(prefix="mcpreg-git-"))
        except OSError as exc:
            raise SourceError(
                SourceErrorKind.UNREACHABLE,
                f"cannot fetch {shown}: no room for a working copy ({exc.strerror or exc})",
            ) from None
        try:
            repo = workdir / "repo.git"
            self._local(
                ["init", "--bare", "--quiet", str(repo)], repo=workdir, doing=f"preparing a fetch of {shown}"
            )
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
                self._run(fetch, url=url, credentials=credentials, fetch_into=repo)
            except SourceError as exc:
                lowered = exc.message.lower()
                if exc.kind is SourceErrorKind.UNREACHABLE and (
                    "not our ref" in lowered
                    or "couldn't find remote ref" in lowered
                    or "unadvertised" in lowered
                ):
                    raise SourceError(
                        SourceErrorKind.NOT_FOUND, f"{ref.describe()} does not exist in {shown}"
                    ) from None
                raise
            found = self._spawn(
                ["rev-parse", "--verify", "--quiet", target],
                doing=f"looking up {ref.describe()} in the fetched copy of {shown}",
                credentials=None,
                cwd=repo,
            )
            commit = found.stdout.decode(errors="replace").strip()
            if found.returncode == 1 or (found.returncode == 0 and not SHA_RE.match(commit)):
                # --verify --quiet: exit 1, nothing said, when the name does not resolve to a commit.
                raise SourceError(SourceErrorKind.NOT_FOUND, f"{ref.describe()} does not exist in {shown}")
            if found.returncode != 0:
                raise SourceError(
                    SourceErrorKind.UNREACHABLE,
                    f"git failed looking up {ref.describe()} in the fetched copy of {shown}: "
                    f"{_failure(found.returncode, found.stderr)}",
                )
            if policy is not None:
                self.verify_signatures(repo, commit, policy, url=url, ref=ref)
            return commit, self.read_committed_file(repo, commit, path, url=url, ref=ref)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def verify_signatures(
        self, repo: Path, commit: str, policy: SignaturePolicy, *, url: str, ref: GitRef
    ) -> list[str]:
        """Check what `policy` asks of `commit` in the fetched copy `repo` (and of the tag `ref` names,
        fetched as refs/mcpreg/wanted); the signers found, or SourceError(UNVERIFIED)."""
        shown = display_url(url)
        reading = f"reading the signature of {ref.describe()} of {shown}"
        signers = []
        if policy.checks_tag:
            what = f"{ref.describe()} of {shown}"
            kind = self._local(["cat-file", "-t", "refs/mcpreg/wanted"], repo=repo, doing=reading).strip()
            if kind != b"tag":
                raise SourceError(
                    SourceErrorKind.UNVERIFIED,
                    f"{what} is a lightweight tag, which carries no signature; verify.mode "
                    f"{policy.mode.value} needs an annotated, signed tag",
                )
            raw = self._local(["cat-file", "tag", "refs/mcpreg/wanted"], repo=repo, doing=reading)
            signers.append(verify(split_tag(raw), policy.keys, what))
        if policy.checks_commit:
            raw = self._local(["cat-file", "commit", commit], repo=repo, doing=reading)
            signers.append(verify(split_commit(raw), policy.keys, f"commit {commit[:12]} of {shown}"))
        return signers

    def read_committed_file(self, repo: Path, commit: str, path: str, *, url: str, ref: GitRef) -> bytes:
        """The bytes of `path` in `commit` of the local repository `repo` (fetched from `url` for
        `ref`). The path is walked one tree at a time, so each failure says which part is wrong: a
        missing entry, a file where a directory was expected, a directory, a submodule, a symbolic
        link, a file over the size limit, or an object git cannot read."""
        where = f"{path} at {ref.describe()} ({commit[:12]}) of {display_url(url)}"
        parts = [part for part in path.split("/") if part not in ("", ".")]
        if not parts or ".." in parts:
            raise SourceError(
                SourceErrorKind.INVALID_REFERENCE,
                f"path {path!r} names no file inside the repository ({ref.describe()}, {commit[:12]}, "
                f"of {display_url(url)})",
            )
        reading = f"reading {where}"
        tree = commit
        entry: _TreeEntry | None = None
        for depth, name in enumerate(parts):
            if entry is not None:  # the entry walked into must be a directory
                prefix = "/".join(parts[:depth])
                if entry.mode == _GITLINK_MODE:
                    raise SourceError(
                        SourceErrorKind.NOT_FOUND,
                        f"{where} is inside {prefix}, a submodule (commit {entry.oid[:12]} of another "
                        "repository), which is not fetched: point path at a file of this repository",
                    )
                if entry.type != "tree":
                    raise SourceError(
                        SourceErrorKind.NOT_FOUND,
                        f"{where} does not exist: {prefix} is a file, not a directory",
                    )
                tree = entry.oid
            entries = self._list_tree(repo, tree, doing=reading)
            entry = next((e for e in entries if e.name == name), None)
            if entry is None:
                inside = f" ({'/'.join(parts[:depth])}/ has no {name!r})" if depth else ""
                raise SourceError(SourceErrorKind.NOT_FOUND, f"{where} does not exist{inside}")
        assert entry is not None  # parts is not empty
        if entry.mode == _GITLINK_MODE:
            raise SourceError(
                SourceErrorKind.NOT_FOUND,
                f"{where} is a submodule (commit {entry.oid[:12]} of another repository), not a file: "
                "submodules are not fetched; point path at a file of this repository",
            )
        if entry.type == "tree":
            raise SourceError(SourceErrorKind.NOT_FOUND, f"{where} is a directory, not a file")
        if entry.type != "blob":
            raise SourceError(SourceErrorKind.NOT_FOUND, f"{where} is a {entry.type}, not a file")
        size = self._blob_size(repo, entry.oid, doing=reading)
        if entry.mode == _SYMLINK_MODE:
            target = ""
            if size <= _MAX_LINK_BYTES:
                with contextlib.suppress(SourceError):
                    target = self._local(["cat-file", "blob", entry.oid], repo=repo, doing=reading).decode(
                        errors="replace"
                    )
            to = f" to {target!r}" if target else ""
            raise SourceError(
                SourceErrorKind.NOT_FOUND,
                f"{where} is a symbolic link{to}; links are not followed: point path at the file itself",
            )
        if size > self.limits.max_file_bytes:
            raise SourceError(
                SourceErrorKind.TOO_LARGE,
                f"{where} is {size} bytes, over the {self.limits.max_file_bytes} byte limit",
            )
        data = self._local(["cat-file", "blob", entry.oid], repo=repo, doing=reading)
        if len(data) != size:
            raise SourceError(
                SourceErrorKind.UNREACHABLE,
                f"git failed {reading}: it gave {len(data)} of the file's {size} bytes",
            )
        if is_lfs_pointer(data):
            raise SourceError(
                SourceErrorKind.INVALID_REFERENCE,
                f"{where} is a Git LFS pointer, not the catalogue: the repository stores the file in Git "
                "LFS, which the operator does not fetch; commit the catalogue itself (untrack it from LFS)",
            )
        return data

    def _list_tree(self, repo: Path, tree: str, *, doing: str) -> list[_TreeEntry]:
        # -z: names verbatim (no quoting), NUL-terminated; each entry is "MODE TYPE OID\tNAME".
        out = self._local(["ls-tree", "-z", tree], repo=repo, doing=doing)
        entries = []
        for record in out.split(b"\0"):
            meta, tab, name = record.partition(b"\t")
            fields = meta.decode(errors="replace").split()
            if not tab or len(fields) != 3:
                continue
            entries.append(_TreeEntry(fields[0], fields[1], fields[2], os.fsdecode(name)))
        return entries

    def _blob_size(self, repo: Path, oid: str, *, doing: str) -> int:
        out = self._local(["cat-file", "-s", oid], repo=repo, doing=doing).decode(errors="replace").strip()
        if not out.isdigit():
            raise SourceError(SourceErrorKind.UNREACHABLE, f"git failed {doing}: no size for it ({out!r})")
        return int(out)
