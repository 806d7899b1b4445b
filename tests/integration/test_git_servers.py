"""The git servers are real: the `git` CLI and GitPython clone, list and fetch from them over git:// and
smart HTTP, basic auth is enforced, pushes are refused, and stopping a server makes it unreachable."""

from __future__ import annotations

import base64
import gzip
import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import git
import pytest

from fixtures.git_servers import BareRepoFactory, GitHTTPCredentials
from mcpreg_dev.gitserver import (
    BareRepo,
    GitDaemonServer,
    GitServerError,
    SmartHTTPGitServer,
    create_bare_repo,
    isolated_git_env,
)

REGISTRY_V1 = '{"version": "1.0.0", "servers": {"fetch": {"image": "mcp/fetch:1"}}}\n'
REGISTRY_V2 = '{"version": "1.0.0", "servers": {"fetch": {"image": "mcp/fetch:2"}}}\n'


def run_git(
    *args: str, env: dict[str, str], cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["git", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args[:2])} failed ({result.returncode}): {result.stderr}")
    return result


def ls_remote(url: str, env: dict[str, str], *extra: str) -> dict[str, str]:
    out = run_git("ls-remote", *extra, url, env=env).stdout
    return {ref: sha for sha, ref in (line.split("\t") for line in out.splitlines())}


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def http_request(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> Response:
    """One plain HTTP request (no git client involved), whatever the status."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        conn.close()


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def with_userinfo(url: str, username: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{username}:{password}@{rest}"


@pytest.fixture
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mcpreg-git-test-") as tmp:
        yield Path(tmp)


@dataclass
class Remote:
    """How a client reaches a repository over one transport."""

    transport: str
    url: str
    env: dict[str, str]


@pytest.fixture(params=["git-daemon", "smart-http"])
def remote_for(
    request: pytest.FixtureRequest,
    git_daemon: GitDaemonServer,
    git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
) -> Callable[[BareRepo], Remote]:
    def make(repo: BareRepo) -> Remote:
        if request.param == "git-daemon":
            return Remote("git-daemon", git_daemon.url(repo), isolated_git_env())
        return Remote("smart-http", git_http_server.url(repo), git_http_credentials.env())

    return make


def live_group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def assert_connection_refused(port: int) -> None:
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


# ---------------------------------------------------------------------------------------------------
# The commit helper


def test_commit_helper_builds_branches_tags_and_history(bare_repo: BareRepo) -> None:
    first = bare_repo.commit({"registry.json": REGISTRY_V1, "docs/README.md": "hello"}, message="v1")
    second = bare_repo.commit({"registry.json": REGISTRY_V2}, message="v2", tag="v2", tag_message="release 2")
    assert first != second and len(second) == 40
    assert bare_repo.read_file("registry.json", first) == REGISTRY_V1.encode()
    assert bare_repo.read_file("registry.json") == REGISTRY_V2.encode()
    assert bare_repo.read_file("docs/README.md") == b"hello"  # untouched files are kept

    # Same tree, still a new commit: "new revision, same data" must be expressible.
    same = bare_repo.commit({"registry.json": REGISTRY_V2})
    assert same != second
    removed = bare_repo.commit({"docs/README.md": None})
    with pytest.raises(GitServerError):
        bare_repo.read_file("docs/README.md", removed)
    replaced = bare_repo.commit({"only.json": b"\x00\x01binary"}, replace=True)
    assert bare_repo.read_file("only.json", replaced) == b"\x00\x01binary"
    with pytest.raises(GitServerError):
        bare_repo.read_file("registry.json", replaced)

    dev = bare_repo.commit({"registry.json": "dev"}, branch="dev", start_point=first)
    assert bare_repo.resolve(f"{dev}~1") == first
    orphan = bare_repo.commit({"x": "y"}, branch="orphan")
    assert bare_repo.resolve(f"{orphan}~1") is None

    assert bare_repo.create_tag("v1", first) == first
    assert bare_repo.create_tag("v1-annotated", first, message="annotated") == first
    refs = bare_repo.refs()
    assert refs["refs/heads/main"] == replaced
    assert refs["refs/heads/dev"] == dev
    assert refs["refs/tags/v1"] == first
    assert refs["refs/tags/v2"] != second  # an annotated tag object...
    assert bare_repo.resolve("v2") == second  # ...that peels to the commit

    bare_repo.delete_ref("refs/heads/orphan")
    assert bare_repo.resolve("refs/heads/orphan") is None

    for bad in ("../evil", "/abs", "a//b", ".git/config"):
        with pytest.raises(ValueError):
            bare_repo.commit({bad: "x"})
    with pytest.raises(ValueError):
        bare_repo.commit({"a": "b"}, branch="bad..name")


def test_create_bare_repo_names_and_refuses_duplicates(git_repos_root: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = create_bare_repo(Path(tmp), "org/catalogue")
        assert repo.name == "org/catalogue.git" and (repo.path / "HEAD").is_file()
        with pytest.raises(FileExistsError):
            create_bare_repo(Path(tmp), "org/catalogue.git")
        with pytest.raises(ValueError):
            create_bare_repo(Path(tmp), "../outside")


# ---------------------------------------------------------------------------------------------------
# Cloning


def test_clone_over_git_daemon_with_cli_and_gitpython(
    git_daemon: GitDaemonServer, bare_repo: BareRepo, scratch: Path, git_client_env: dict[str, str]
) -> None:
    sha = bare_repo.commit({"registry.json": REGISTRY_V1})
    url = git_daemon.url(bare_repo)
    assert url == f"git://127.0.0.1:{git_daemon.port}/{bare_repo.name}"

    run_git("clone", "--quiet", url, str(scratch / "cli"), env=git_client_env)
    assert (scratch / "cli" / "registry.json").read_text() == REGISTRY_V1
    assert run_git("rev-parse", "HEAD", env=git_client_env, cwd=scratch / "cli").stdout.strip() == sha

    cloned = git.Repo.clone_from(url, scratch / "gitpython", env=git_client_env)
    assert cloned.head.commit.hexsha == sha
    assert (scratch / "gitpython" / "registry.json").read_text() == REGISTRY_V1

    # The daemon's log is read in the background: give the last lines a moment to arrive.
    deadline = time.monotonic() + 5
    while not any(req.path == f"/{bare_repo.name}" for req in git_daemon.requests()):
        assert time.monotonic() < deadline, git_daemon.log_lines()[-10:]
        time.sleep(0.05)
    assert {req.service for req in git_daemon.requests()} == {"upload-pack"}


def test_clone_over_http_with_basic_auth(
    git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
    bare_repo: BareRepo,
    scratch: Path,
    git_client_env: dict[str, str],
) -> None:
    sha = bare_repo.commit({"registry.json": REGISTRY_V1})
    url = git_http_server.url(bare_repo)
    assert url == f"http://127.0.0.1:{git_http_server.port}/{bare_repo.name}"
    creds = git_http_credentials

    # Credentials in the URL: git first asks anonymously, gets 401 + WWW-Authenticate, then retries.
    userinfo_url = with_userinfo(url, creds.username, creds.password)
    run_git("clone", "--quiet", userinfo_url, str(scratch / "url"), env=git_client_env)
    assert (scratch / "url" / "registry.json").read_text() == REGISTRY_V1

    # Credentials as a header from the environment (what keeps them out of argv).
    run_git("clone", "--quiet", url, str(scratch / "header"), env=creds.env())
    assert run_git("rev-parse", "HEAD", env=git_client_env, cwd=scratch / "header").stdout.strip() == sha

    # The token as the password, with any user name.
    run_git("clone", "--quiet", url, str(scratch / "token"), env=creds.token_env())
    token_url = with_userinfo(url, "oauth2", creds.token)
    assert ls_remote(token_url, git_client_env)["refs/heads/main"] == sha

    cloned = git.Repo.clone_from(url, scratch / "gitpython", env=creds.env())
    assert cloned.head.commit.hexsha == sha
    assert str(cloned.git.ls_remote(url, env=creds.env())).split()[0] == sha

    records = git_http_server.requests(bare_repo)
    assert {r.username for r in records if r.status == 200} >= {creds.username, "x-access-token", "oauth2"}
    assert git_http_server.pack_fetches(bare_repo) >= 4


def test_http_wrong_password_is_refused(
    git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
    bare_repo: BareRepo,
    git_client_env: dict[str, str],
) -> None:
    bare_repo.commit({"registry.json": REGISTRY_V1})
    url = git_http_server.url(bare_repo)
    wrong = "not-the-password-" + git_http_credentials.password[:4]

    result = run_git(
        "ls-remote", with_userinfo(url, git_http_credentials.username, wrong), env=git_client_env, check=False
    )
    assert result.returncode != 0
    assert "Authentication failed" in result.stderr
    assert wrong not in result.stderr

    from mcpreg_dev.gitserver import http_auth_env

    result = run_git("ls-remote", url, env=http_auth_env(git_http_credentials.username, wrong), check=False)
    assert result.returncode != 0
    # A right password for the wrong user is no better.
    result = run_git(
        "ls-remote", url, env=http_auth_env("someone-else", git_http_credentials.password), check=False
    )
    assert result.returncode != 0

    assert git_http_server.count(bare_repo, status=401) >= 3
    assert git_http_server.count(bare_repo, status=200) == 0


def test_http_without_credentials_gets_401_with_basic_challenge(
    git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
    bare_repo: BareRepo,
    git_client_env: dict[str, str],
) -> None:
    bare_repo.commit({"registry.json": REGISTRY_V1})
    url = git_http_server.url(bare_repo)
    refs_url = f"{url}/info/refs?service=git-upload-pack"
    response = http_request(refs_url)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")

    result = run_git("ls-remote", url, env=git_client_env, check=False)
    assert result.returncode != 0
    assert "terminal prompts disabled" in result.stderr or "Authentication failed" in result.stderr

    # Bearer tokens are accepted too (the operator may send the token that way).
    response = http_request(refs_url, headers={"Authorization": f"Bearer {git_http_credentials.token}"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/x-git-upload-pack-advertisement"
    assert response.headers["Transfer-Encoding"] == "chunked"  # streamed, not buffered
    assert b"# service=git-upload-pack" in response.body
    assert http_request(refs_url, headers={"Authorization": "Bearer wrong"}).status == 401
    assert http_request(refs_url, headers={"Authorization": "Basic !!not-base64"}).status == 401
    assert http_request(refs_url, headers=basic(git_http_credentials.username, "")).status == 401


def test_anonymous_http_server_needs_no_credentials(
    git_repos_root: Path, bare_repo: BareRepo, git_client_env: dict[str, str]
) -> None:
    sha = bare_repo.commit({"registry.json": REGISTRY_V1})
    with SmartHTTPGitServer(git_repos_root) as server:
        assert ls_remote(server.url(bare_repo), git_client_env)["HEAD"] == sha
        assert server.requests(bare_repo)[0].username is None


# ---------------------------------------------------------------------------------------------------
# Both transports


def test_ls_remote_sees_commits_pushed_after_start(
    remote_for: Callable[[BareRepo], Remote], bare_repo: BareRepo
) -> None:
    remote = remote_for(bare_repo)
    first = bare_repo.commit({"registry.json": REGISTRY_V1})
    assert ls_remote(remote.url, remote.env)["refs/heads/main"] == first
    second = bare_repo.commit({"registry.json": REGISTRY_V2})
    refs = ls_remote(remote.url, remote.env)
    assert refs["refs/heads/main"] == second
    assert refs["HEAD"] == second
    # GitPython sees the same.
    assert str(git.cmd.Git().ls_remote(remote.url, "refs/heads/main", env=remote.env)).split()[0] == second


def test_branches_and_tags(
    remote_for: Callable[[BareRepo], Remote], bare_repo: BareRepo, scratch: Path
) -> None:
    remote = remote_for(bare_repo)
    v1 = bare_repo.commit({"registry.json": REGISTRY_V1}, tag="v1.0.0")
    v2 = bare_repo.commit({"registry.json": REGISTRY_V2}, tag="v2.0.0", tag_message="second release")
    dev = bare_repo.commit({"registry.json": "{}"}, branch="dev", start_point="v1.0.0")

    heads = ls_remote(remote.url, remote.env, "--heads")
    assert heads == {"refs/heads/main": v2, "refs/heads/dev": dev}
    tags = ls_remote(remote.url, remote.env, "--tags")
    assert tags["refs/tags/v1.0.0"] == v1
    assert tags["refs/tags/v2.0.0^{}"] == v2  # annotated: the peeled commit is advertised too

    run_git("clone", "--quiet", "--branch", "v1.0.0", remote.url, str(scratch / "tag"), env=remote.env)
    assert (scratch / "tag" / "registry.json").read_text() == REGISTRY_V1
    run_git("clone", "--quiet", "--branch", "dev", remote.url, str(scratch / "dev"), env=remote.env)
    assert (scratch / "dev" / "registry.json").read_text() == "{}"

    # A moved tag is seen as moved.
    bare_repo.create_tag("v1.0.0", v2)
    assert ls_remote(remote.url, remote.env, "--tags")["refs/tags/v1.0.0"] == v2
    # The default branch can change.
    bare_repo.set_default_branch("dev")
    assert ls_remote(remote.url, remote.env)["HEAD"] == dev


def test_shallow_fetch(remote_for: Callable[[BareRepo], Remote], bare_repo: BareRepo, scratch: Path) -> None:
    remote = remote_for(bare_repo)
    shas = [bare_repo.commit({"registry.json": f'{{"n": {n}}}'}) for n in range(3)]

    work = scratch / "shallow"
    run_git("clone", "--quiet", "--depth", "1", remote.url, str(work), env=remote.env)
    assert run_git("rev-parse", "--is-shallow-repository", env=remote.env, cwd=work).stdout.strip() == "true"
    assert run_git("rev-list", "--count", "HEAD", env=remote.env, cwd=work).stdout.strip() == "1"
    assert run_git("rev-parse", "HEAD", env=remote.env, cwd=work).stdout.strip() == shas[-1]

    newest = bare_repo.commit({"registry.json": '{"n": 3}'})
    run_git("fetch", "--quiet", "--depth", "1", "origin", "main", env=remote.env, cwd=work)
    assert run_git("rev-parse", "FETCH_HEAD", env=remote.env, cwd=work).stdout.strip() == newest

    # A specific, no longer advertised commit can be fetched shallowly (spec.source.git.commit).
    pinned = scratch / "pinned"
    run_git("init", "--quiet", str(pinned), env=remote.env)
    run_git("fetch", "--quiet", "--depth", "1", remote.url, shas[0], env=remote.env, cwd=pinned)
    assert run_git("show", "FETCH_HEAD:registry.json", env=remote.env, cwd=pinned).stdout == '{"n": 0}'

    cloned = git.Repo.clone_from(remote.url, scratch / "gitpython", depth=1, env=remote.env)
    assert cloned.head.commit.hexsha == newest
    assert len(list(cloned.iter_commits())) == 1


# ---------------------------------------------------------------------------------------------------
# Cheap change checks: listing refs fetches no pack


def test_ls_remote_lists_refs_without_fetching_a_pack(
    git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
    bare_repo: BareRepo,
    scratch: Path,
) -> None:
    bare_repo.commit({"registry.json": REGISTRY_V1})
    url = git_http_server.url(bare_repo)
    env = git_http_credentials.env()

    ls_remote(url, env)  # protocol v2: one advertisement GET + one `ls-refs` POST
    assert git_http_server.ref_advertisements(bare_repo) == 1
    assert git_http_server.count(bare_repo, command="ls-refs", status=200) == 1
    assert git_http_server.pack_fetches(bare_repo) == 0

    v0_env = git_http_credentials.env({"protocol.version": "0"})
    ls_remote(url, v0_env)  # protocol v0: the advertisement GET is all there is
    assert git_http_server.ref_advertisements(bare_repo) == 2
    assert git_http_server.count(bare_repo, method="POST") == 1

    run_git("clone", "--quiet", url, str(scratch / "clone"), env=env)
    assert git_http_server.pack_fetches(bare_repo) >= 1
    run_git("clone", "--quiet", url, str(scratch / "clone-v0"), env=v0_env)
    assert git_http_server.pack_fetches(bare_repo) >= 2


def test_gzip_and_chunked_request_bodies(
    git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
    bare_repo_factory: BareRepoFactory,
    scratch: Path,
) -> None:
    env = git_http_credentials.env()

    # git gzips upload-pack request bodies over 1 KiB: 40 wanted tips make ~2 KiB of `want` lines.
    small = bare_repo_factory("gzip")
    for n in range(40):
        small.commit({"n": str(n)}, branch=f"b{n}")
    run_git("clone", "--quiet", "--no-checkout", git_http_server.url(small), str(scratch / "gz"), env=env)
    gzipped = [r for r in git_http_server.requests(small) if r.content_encoding == "gzip"]
    assert gzipped and all(r.status == 200 and r.command == "fetch" for r in gzipped)

    # Bodies over http.postBuffer are streamed chunked: 1500 tips make ~75 KiB of `want` lines, over a
    # buffer set just above its 64 KiB floor (git refuses anything smaller).
    big = bare_repo_factory("chunked")
    stream = b"".join(
        b"commit refs/heads/b%d\ncommitter t <t@t> 1700000000 +0000\ndata %d\nc%d\n\n"
        % (n, len(b"c%d" % n), n)
        for n in range(1500)
    )
    subprocess.run(
        ["git", "--git-dir", str(big.path), "fast-import", "--quiet"],
        input=stream,
        env=isolated_git_env(),
        check=True,
    )
    chunky_env = git_http_credentials.env({"http.postBuffer": "66000"})
    run_git(
        "clone", "--quiet", "--no-checkout", git_http_server.url(big), str(scratch / "ch"), env=chunky_env
    )
    branches = run_git("branch", "-r", env=env, cwd=scratch / "ch").stdout.splitlines()
    assert len(branches) >= 1500
    chunked = [r for r in git_http_server.requests(big) if r.transfer_encoding == "chunked"]
    assert chunked and all(r.status == 200 for r in chunked)
    assert any(r.command == "fetch" for r in chunked)


def test_raw_gzip_request_to_upload_pack(
    git_http_server: SmartHTTPGitServer, git_http_credentials: GitHTTPCredentials, bare_repo: BareRepo
) -> None:
    """The CGI bridge itself: a hand-made protocol-v2 `ls-refs` request, gzip-encoded."""
    sha = bare_repo.commit({"registry.json": REGISTRY_V1})

    def pkt(line: str) -> bytes:
        return b"%04x%s" % (len(line) + 4, line.encode())

    body = gzip.compress(pkt("command=ls-refs\n") + b"0001" + pkt("peel\n") + b"0000")
    response = http_request(
        f"{git_http_server.url(bare_repo)}/git-upload-pack",
        method="POST",
        body=body,
        headers={
            **basic(git_http_credentials.username, git_http_credentials.password),
            "Content-Type": "application/x-git-upload-pack-request",
            "Content-Encoding": "gzip",
            "Git-Protocol": "version=2",
        },
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/x-git-upload-pack-result"
    assert f"{sha} refs/heads/main".encode() in response.body
    assert git_http_server.count(bare_repo, command="ls-refs") == 1


# ---------------------------------------------------------------------------------------------------
# Read-only, failure on purpose, clean stop


def test_push_over_http_is_refused(
    git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
    bare_repo: BareRepo,
    scratch: Path,
) -> None:
    original = bare_repo.commit({"registry.json": REGISTRY_V1})
    env = git_http_credentials.env()
    work = scratch / "work"
    run_git("clone", "--quiet", git_http_server.url(bare_repo), str(work), env=env)
    (work / "registry.json").write_text(REGISTRY_V2)
    run_git("commit", "--quiet", "-am", "try to push", env=env, cwd=work)

    result = run_git("push", "origin", "main", env=env, cwd=work, check=False)
    assert result.returncode != 0
    assert "403" in result.stderr
    assert bare_repo.resolve("refs/heads/main") == original
    assert git_http_server.count(bare_repo, service="git-receive-pack", status=403) >= 1

    # Even a hand-made receive-pack request never reaches git.
    creds = basic(git_http_credentials.username, git_http_credentials.password)
    url = git_http_server.url(bare_repo)
    assert http_request(f"{url}/git-receive-pack", method="POST", headers=creds, body=b"0000").status == 403
    assert http_request(f"{url}/info/refs?service=git-receive-pack", headers=creds).status == 403


def test_stopped_http_server_refuses_connections_and_recovers(
    private_git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
    bare_repo: BareRepo,
) -> None:
    server = private_git_http_server
    sha = bare_repo.commit({"registry.json": REGISTRY_V1})
    url, env, port = server.url(bare_repo), git_http_credentials.env(), server.port
    assert ls_remote(url, env)["refs/heads/main"] == sha

    server.stop()
    assert not server.running
    result = run_git("ls-remote", url, env=env, check=False)
    assert result.returncode != 0
    assert "Failed to connect" in result.stderr or "Connection refused" in result.stderr
    assert_connection_refused(port)

    server.start()
    assert server.port == port  # same URL works again
    assert ls_remote(url, env)["refs/heads/main"] == sha

    with server.failing(503):
        result = run_git("ls-remote", url, env=env, check=False)
        assert result.returncode != 0 and "503" in result.stderr
    assert ls_remote(url, env)["refs/heads/main"] == sha


def test_stopped_git_daemon_refuses_connections_leaks_nothing_and_recovers(
    private_git_daemon: GitDaemonServer, bare_repo: BareRepo, git_client_env: dict[str, str]
) -> None:
    daemon = private_git_daemon
    sha = bare_repo.commit({"registry.json": REGISTRY_V1})
    url, port, pgid = daemon.url(bare_repo), daemon.port, daemon.pid
    assert pgid is not None
    assert ls_remote(url, git_client_env)["refs/heads/main"] == sha

    # A client that connected and said nothing holds a per-connection child process: stop() must take
    # it down too.
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        deadline = time.monotonic() + 5
        while len(live_group_members(pgid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(live_group_members(pgid)) >= 2
        daemon.stop()
    finally:
        idle.close()
    assert not daemon.running
    assert live_group_members(pgid) == []

    result = run_git("ls-remote", url, env=git_client_env, check=False)
    assert result.returncode != 0
    assert "Connection refused" in result.stderr
    assert_connection_refused(port)

    daemon.start()
    assert daemon.port == port
    assert ls_remote(url, git_client_env)["refs/heads/main"] == sha


def test_http_stop_cuts_requests_in_flight(
    git_repos_root: Path, git_http_credentials: GitHTTPCredentials, bare_repo: BareRepo
) -> None:
    """An idle keep-alive connection does not keep stop() waiting."""
    bare_repo.commit({"registry.json": REGISTRY_V1})
    server = SmartHTTPGitServer(git_repos_root, token=git_http_credentials.token).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(
            "GET",
            f"/{bare_repo.name}/info/refs?service=git-upload-pack",
            headers={"Authorization": f"Bearer {git_http_credentials.token}"},
        )
        assert conn.getresponse().read()
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 5
    finally:
        conn.close()
        server.stop()


def processes_serving(repo: BareRepo) -> list[int]:
    """Live processes working on `repo` (upload-pack names it; pack-objects runs inside it)."""
    found = []
    target = str(repo.path)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (target in cmdline or cwd == target):
            found.append(int(entry.name))
    return found


def test_http_client_hanging_up_mid_pack_leaves_no_process_behind(
    git_http_server: SmartHTTPGitServer, git_http_credentials: GitHTTPCredentials, bare_repo: BareRepo
) -> None:
    sha = bare_repo.commit({"big.bin": os.urandom(24 * 1024 * 1024)})

    def pkt(line: str) -> bytes:
        return b"%04x%s" % (len(line) + 4, line.encode())

    body = pkt("command=fetch\n") + b"0001" + pkt(f"want {sha}\n") + pkt("no-progress\n") + pkt("done\n")
    parts = urllib.parse.urlsplit(git_http_server.url(bare_repo))
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    conn.request(
        "POST",
        f"{parts.path}/git-upload-pack",
        body=body + b"0000",
        headers={
            **basic(git_http_credentials.username, git_http_credentials.password),
            "Content-Type": "application/x-git-upload-pack-request",
            "Git-Protocol": "version=2",
        },
    )
    response = conn.getresponse()
    assert response.status == 200
    assert response.read(1024)  # the pack is streaming...
    assert processes_serving(bare_repo)
    conn.close()  # ...and the client hangs up

    deadline = time.monotonic() + 10
    while processes_serving(bare_repo) or git_http_server.in_flight():
        assert time.monotonic() < deadline, processes_serving(bare_repo)
        time.sleep(0.05)
    assert git_http_server.count(bare_repo, command="fetch") == 1
    # The server is fine afterwards.
    assert ls_remote(git_http_server.url(bare_repo), git_http_credentials.env())["HEAD"] == sha


# ---------------------------------------------------------------------------------------------------
# Secrets


def test_credentials_never_reach_logs_or_records(
    caplog: pytest.LogCaptureFixture,
    git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
    bare_repo: BareRepo,
    scratch: Path,
) -> None:
    caplog.set_level(logging.DEBUG, logger="mcpreg_dev.gitserver")
    bare_repo.commit({"registry.json": REGISTRY_V1})
    url = git_http_server.url(bare_repo)
    creds = git_http_credentials
    run_git("clone", "--quiet", url, str(scratch / "ok"), env=creds.env())
    run_git("ls-remote", url, env=creds.token_env())
    run_git("ls-remote", with_userinfo(url, creds.username, creds.password), env=isolated_git_env())
    run_git(
        "ls-remote",
        with_userinfo(url, creds.username, "wrong-" + creds.token),
        env=isolated_git_env(),
        check=False,
    )

    basic = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    evidence = "\n".join(
        [caplog.text, repr(git_http_server), repr(creds), *map(repr, git_http_server.requests(bare_repo))]
    )
    assert "git http" in caplog.text  # the server did log these requests
    for secret in (creds.password, creds.token, basic):
        assert secret not in evidence


# ---------------------------------------------------------------------------------------------------
# Foreground runner (what `make up` can start in the background)


@pytest.mark.parametrize("kind", ["daemon", "http"])
def test_foreground_runner(
    kind: str, git_repos_root: Path, bare_repo: BareRepo, git_http_credentials: GitHTTPCredentials
) -> None:
    sha = bare_repo.commit({"registry.json": REGISTRY_V1})
    env = dict(os.environ, MCPREG_GIT_TOKEN=git_http_credentials.token)
    process = subprocess.Popen(
        [sys.executable, "-m", "mcpreg_dev.gitserver", kind, "--base-path", str(git_repos_root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("READY "), line
        base_url = line.removeprefix("READY ")
        client_env = isolated_git_env() if kind == "daemon" else git_http_credentials.token_env()
        assert ls_remote(f"{base_url}/{bare_repo.name}", client_env)["refs/heads/main"] == sha
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert live_group_members(process.pid) == []
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
