"""Issue 12: every way reading the catalogue file out of a fetched commit can fail is a `SourceError`
that says what is wrong and where (repository URL without credentials, ref, path), never a traceback.

The fetch goes to the session's real git servers. To make the last step, `git cat-file blob`, fail the
way it does in production (the process killed, e.g. by the OOM killer; the fetched copy corrupt or
missing an object; git hanging past the timeout), the test puts a wrapper named `git` first on PATH
(git's PATH is the operator's): it runs the real git for everything and, for `cat-file blob` only,
first does the damage (kills itself, corrupts or deletes the object in the fetched repository, or
hangs). The real git then fails with its own words.

The second half reads out of local repositories made here (`GitClient.read_committed_file`, the step
after the fetch), damaged on purpose: corrupt loose objects and packs, missing objects, and every kind
of tree entry that is not a file.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from fixtures.git_servers import GitHTTPCredentials
from mcpreg_dev.gitserver import (
    BareRepo,
    GitDaemonServer,
    SmartHTTPGitServer,
    create_bare_repo,
    run_git,
)
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.sources.git import GitClient, GitFetchLimits, GitRef, display_url

pytestmark = pytest.mark.integration

CATALOGUE = b'{"version": "1.0.0", "servers": {}}\n'
MAIN = GitRef(branch="main")

_WRAPPER = r"""#!/bin/bash
# `git`, except that `git cat-file blob OBJECT` first suffers the fault named in FAULT.
if [ "$1" = cat-file ] && [ "$2" = blob ]; then
    case "@FAULT@" in
    kill)
        kill -KILL $$ ;;
    hang)
        exec sleep 60 ;;
    corrupt|missing)
        oid=$("@REAL@" rev-parse --verify --quiet "$3") || { echo "wrapper: no object $3" >&2; exit 99; }
        loose="objects/${oid:0:2}/${oid:2}"
        [ -f "$loose" ] || { echo "wrapper: $oid is not a loose object" >&2; exit 99; }
        if [ "@FAULT@" = missing ]; then
            rm -f "$loose"
        else
            chmod u+w "$loose" && printf 'x\234garbage, not zlib' >"$loose"
        fi ;;
    esac
fi
exec "@REAL@" "$@"
"""


def _faulty_git(directory: Path, fault: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which("git")
    assert real is not None
    directory.mkdir()
    wrapper = directory / "git"
    wrapper.write_text(_WRAPPER.replace("@REAL@", real).replace("@FAULT@", fault))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")


def _commit_tree(repo: BareRepo, entries: list[str], message: str = "special entries") -> str:
    """Commit a root tree given as `git mktree` lines on top of main (any modes: gitlinks, symlinks)."""
    git_dir = ["--git-dir", str(repo.path)]
    tree = run_git([*git_dir, "mktree"], input="".join(f"{e}\n" for e in entries).encode()).strip()
    parent = repo.resolve("refs/heads/main")
    args = [*git_dir, "commit-tree", tree, "-m", message, *(["-p", parent] if parent else [])]
    commit = run_git(args).strip()
    run_git([*git_dir, "update-ref", "refs/heads/main", commit])
    return commit


def _blob(repo: BareRepo, data: bytes) -> str:
    return run_git(["--git-dir", str(repo.path), "hash-object", "-w", "--stdin"], input=data).strip()


def _assert_names_the_place(error: SourceError, url: str, path: str, commit: str) -> None:
    assert url in error.message, error.message
    assert path in error.message, error.message
    assert "branch 'main'" in error.message, error.message
    assert commit[:12] in error.message, error.message


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("kill", "SIGKILL"),
        ("corrupt", "corrupt"),
        ("missing", "git failed"),
    ],
)
def test_cat_file_failure_is_a_source_error(
    fault: str,
    words: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commit = bare_repo.commit({"registry.json": CATALOGUE})
    url = git_daemon.url(bare_repo)
    _faulty_git(tmp_path / "bin", fault, monkeypatch)
    with pytest.raises(SourceError) as raised:
        GitClient().read_file(url, MAIN, "registry.json")
    assert raised.value.kind is SourceErrorKind.UNREACHABLE  # transient: the next sync fetches anew
    _assert_names_the_place(raised.value, url, "registry.json", commit)
    assert words in raised.value.message, raised.value.message
    assert "Traceback" not in raised.value.message


def test_cat_file_hanging_past_the_timeout_is_a_source_error(
    bare_repo: BareRepo, git_daemon: GitDaemonServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = bare_repo.commit({"registry.json": CATALOGUE})
    url = git_daemon.url(bare_repo)
    _faulty_git(tmp_path / "bin", "hang", monkeypatch)
    with pytest.raises(SourceError) as raised:
        GitClient(GitFetchLimits(timeout_s=3)).read_file(url, MAIN, "registry.json")
    assert raised.value.kind is SourceErrorKind.UNREACHABLE
    assert "timed out after 3s" in raised.value.message
    _assert_names_the_place(raised.value, url, "registry.json", commit)


def test_credentials_in_the_url_are_refused_and_never_shown(
    bare_repo: BareRepo,
    git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
) -> None:
    # The CRD refuses such a URL; one admitted anyway (an older CRD) is refused by the git client
    # before git runs, and the message shows the URL without the credentials.
    bare_repo.commit({"registry.json": CATALOGUE})
    clean = git_http_server.url(bare_repo)
    secret = git_http_credentials.password
    with_userinfo = clean.replace("://", f"://{git_http_credentials.username}:{secret}@", 1)
    with pytest.raises(SourceError) as raised:
        GitClient().read_file(with_userinfo, MAIN, "registry.json")
    assert raised.value.kind is SourceErrorKind.INVALID_REFERENCE
    assert secret not in raised.value.message
    assert git_http_credentials.username not in raised.value.message
    assert clean in raised.value.message, raised.value.message


def test_submodule_entry_is_named_a_submodule(bare_repo: BareRepo, git_daemon: GitDaemonServer) -> None:
    # A gitlink names a commit of another repository: the fetched copy does not have that object.
    gitlink = "1234567890abcdef1234567890abcdef12345678"
    commit = _commit_tree(
        bare_repo,
        [f"100644 blob {_blob(bare_repo, CATALOGUE)}\tregistry.json", f"160000 commit {gitlink}\tcatalogue"],
    )
    url = git_daemon.url(bare_repo)
    with pytest.raises(SourceError) as raised:
        GitClient().read_file(url, MAIN, "catalogue")
    assert raised.value.kind is SourceErrorKind.NOT_FOUND
    _assert_names_the_place(raised.value, url, "catalogue", commit)
    assert "submodule" in raised.value.message, raised.value.message
    assert "does not exist" not in raised.value.message  # it exists: it is just not a file

    with pytest.raises(SourceError) as raised:
        GitClient().read_file(url, MAIN, "catalogue/registry.json")
    assert raised.value.kind is SourceErrorKind.NOT_FOUND
    assert "submodule" in raised.value.message, raised.value.message


def test_symbolic_link_is_named_a_link_not_read_as_the_catalogue(
    bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    # Git stores a link as a blob holding its target: read as the file, it would be "registry.json".
    commit = _commit_tree(
        bare_repo,
        [
            f"100644 blob {_blob(bare_repo, CATALOGUE)}\tregistry.json",
            f"120000 blob {_blob(bare_repo, b'registry.json')}\tlatest.json",
        ],
    )
    url = git_daemon.url(bare_repo)
    with pytest.raises(SourceError) as raised:
        GitClient().read_file(url, MAIN, "latest.json")
    assert raised.value.kind is SourceErrorKind.NOT_FOUND
    _assert_names_the_place(raised.value, url, "latest.json", commit)
    assert "symbolic link" in raised.value.message and "registry.json" in raised.value.message


def test_directory_and_missing_paths(bare_repo: BareRepo, git_daemon: GitDaemonServer) -> None:
    commit = bare_repo.commit({"catalogues/registry.json": CATALOGUE, "README.md": b"hi"})
    url = git_daemon.url(bare_repo)
    client = GitClient()
    assert client.read_file(url, MAIN, "catalogues/registry.json") == (commit, CATALOGUE)
    for path, words in [
        ("catalogues", "is a directory"),
        ("catalogues/missing.json", "does not exist"),
        ("README.md/registry.json", "README.md is a file, not a directory"),
        ("nowhere/registry.json", "does not exist"),
    ]:
        with pytest.raises(SourceError) as raised:
            client.read_file(url, MAIN, path)
        assert raised.value.kind is SourceErrorKind.NOT_FOUND, path
        _assert_names_the_place(raised.value, url, path, commit)
        assert words in raised.value.message, raised.value.message


# --------------------------------------------------------------------------------------------------
# The read after the fetch, on local repositories

URL = "https://git.example.com/team/catalogue.git"
REF = GitRef(tag="v1")


def _git(repo: BareRepo, *args: str, input: bytes | None = None) -> str:
    return run_git(["--git-dir", str(repo.path), *args], input=input).strip()


def _loose_commit(repo: BareRepo, tree_lines: list[str]) -> str:
    """A commit of a root tree given as `git mktree` lines; every object is written loose."""
    tree = _git(repo, "mktree", input="".join(f"{line}\n" for line in tree_lines).encode())
    return _git(repo, "commit-tree", tree, "-m", "test")


@pytest.fixture
def repo(tmp_path: Path) -> BareRepo:
    return create_bare_repo(tmp_path, "catalogue")


def _read(repo: BareRepo, commit: str, path: str, client: GitClient | None = None) -> bytes:
    return (client or GitClient()).read_committed_file(repo.path, commit, path, url=URL, ref=REF)


def _error(repo: BareRepo, commit: str, path: str, client: GitClient | None = None) -> SourceError:
    with pytest.raises(SourceError) as raised:
        _read(repo, commit, path, client)
    message = raised.value.message
    assert URL in message and "tag 'v1'" in message and commit[:12] in message, message
    assert "Traceback" not in message and str(repo.path) not in message, message
    return raised.value


def test_reads_files_at_any_depth_and_with_unusual_names(repo: BareRepo) -> None:
    names = {"registry.json": CATALOGUE, "a b/ü ñ.json": b"[1]", "deep/er/still/x.json": b"{}", "t\tab": b"t"}
    commit = repo.commit(names)
    for name, data in names.items():
        assert _read(repo, commit, name) == data
    # Redundant separators and "." segments name the same file.
    assert _read(repo, commit, "./deep//er/./still/x.json") == b"{}"


def test_corrupt_loose_object_is_a_transient_source_error(repo: BareRepo) -> None:
    blob = _blob(repo, CATALOGUE)
    commit = _loose_commit(repo, [f"100644 blob {blob}\tregistry.json"])
    loose = repo.path / "objects" / blob[:2] / blob[2:]
    loose.chmod(0o644)
    loose.write_bytes(b"x\x9c garbage, not zlib")
    error = _error(repo, commit, "registry.json")
    assert error.kind is SourceErrorKind.UNREACHABLE
    assert "git failed reading registry.json" in error.message


def test_missing_object_is_a_transient_source_error(repo: BareRepo) -> None:
    blob = _blob(repo, CATALOGUE)
    commit = _loose_commit(repo, [f"100644 blob {blob}\tregistry.json"])
    (repo.path / "objects" / blob[:2] / blob[2:]).unlink()
    error = _error(repo, commit, "registry.json")
    assert error.kind is SourceErrorKind.UNREACHABLE


def test_corrupt_pack_data_is_a_transient_source_error(repo: BareRepo) -> None:
    # Pack the objects, then damage the middle of the blob's compressed data (its header and size
    # stay readable, so only reading the content fails).
    payload = bytes(range(256)) * 64
    commit = repo.commit({"registry.json": payload})
    _git(repo, "repack", "-a", "-d", "-q")
    blob = _git(repo, "rev-parse", f"{commit}:registry.json")
    (pack_index,) = (repo.path / "objects" / "pack").glob("*.idx")
    offsets = {
        line.split()[1]: int(line.split()[0])
        for line in run_git(["show-index"], input=pack_index.read_bytes()).splitlines()
    }
    pack = pack_index.with_suffix(".pack")
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    middle = offsets[blob] + 40
    data[middle : middle + 16] = b"\xff" * 16
    pack.write_bytes(bytes(data))
    error = _error(repo, commit, "registry.json")
    assert error.kind is SourceErrorKind.UNREACHABLE


@pytest.mark.parametrize(
    ("path", "kind", "words"),
    [
        ("nothing.json", SourceErrorKind.NOT_FOUND, "nothing.json at tag 'v1'"),
        ("dir", SourceErrorKind.NOT_FOUND, "is a directory, not a file"),
        ("dir/missing.json", SourceErrorKind.NOT_FOUND, "dir/ has no 'missing.json'"),
        ("registry.json/x", SourceErrorKind.NOT_FOUND, "registry.json is a file, not a directory"),
        ("sub", SourceErrorKind.NOT_FOUND, "is a submodule (commit 1234567890ab of another repository)"),
        ("sub/registry.json", SourceErrorKind.NOT_FOUND, "inside sub, a submodule"),
        ("link.json", SourceErrorKind.NOT_FOUND, "is a symbolic link to 'registry.json'"),
        ("", SourceErrorKind.INVALID_REFERENCE, "names no file inside the repository"),
        ("./", SourceErrorKind.INVALID_REFERENCE, "names no file inside the repository"),
        ("dir/../registry.json", SourceErrorKind.INVALID_REFERENCE, "names no file inside the repository"),
    ],
)
def test_paths_that_name_no_file(repo: BareRepo, path: str, kind: SourceErrorKind, words: str) -> None:
    directory = _git(repo, "mktree", input=f"100644 blob {_blob(repo, b'{}')}\tx.json\n".encode())
    commit = _loose_commit(
        repo,
        [
            f"100644 blob {_blob(repo, CATALOGUE)}\tregistry.json",
            f"040000 tree {directory}\tdir",
            "160000 commit 1234567890abcdef1234567890abcdef12345678\tsub",
            f"120000 blob {_blob(repo, b'registry.json')}\tlink.json",
        ],
    )
    error = _error(repo, commit, path)
    assert error.kind is kind
    assert words in error.message, error.message
    assert "does not exist" not in error.message or kind is SourceErrorKind.NOT_FOUND


def test_file_over_the_limit_is_too_large_before_it_is_read(repo: BareRepo) -> None:
    commit = repo.commit({"registry.json": b"x" * 2048})
    client = GitClient(GitFetchLimits(max_file_bytes=1024))
    error = _error(repo, commit, "registry.json", client)
    assert error.kind is SourceErrorKind.TOO_LARGE and "2048 bytes" in error.message


def test_no_git_to_run_is_a_source_error(
    repo: BareRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = repo.commit({"registry.json": CATALOGUE})
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    error = _error(repo, commit, "registry.json")
    assert error.kind is SourceErrorKind.UNREACHABLE and "could not start git while" in error.message
    with pytest.raises(SourceError) as raised:  # the whole fetch, from its first git command on
        GitClient().read_file(URL, REF, "registry.json")
    assert "could not start git while" in raised.value.message and URL in raised.value.message


def test_display_url_drops_credentials() -> None:
    assert display_url("https://user:s3cret@host/r.git") == "https://host/r.git"
    assert display_url("http://token@host:8080/r.git") == "http://host:8080/r.git"
    assert display_url("git://host/a@b.git") == "git://host/a@b.git"  # an @ in the path is no userinfo
    assert display_url(URL) == URL
