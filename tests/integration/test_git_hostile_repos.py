"""Issue 17: a repository is hostile input. Nothing in it runs when the operator reads the catalogue -
no hook, no .gitattributes filter, no submodule (neither fetched nor followed to file:// or ext::) - and
a Git LFS pointer in place of the catalogue is named for what it is. Real git servers (the session's
git daemon), the operator's `GitClient`; each "would have run" case is checked against plain git
first, so the tests fail if the hardening goes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fixtures.git_servers import BareRepoFactory
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer, run_git
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.sources.git import GitClient, GitRef, git_env

pytestmark = pytest.mark.integration

CATALOGUE = b'{"version": "1.0.0", "last_updated": "2026-01-01T00:00:00Z", "servers": {}}\n'
MAIN = GitRef(branch="main")


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def hostile_repo(repo: BareRepo, other: BareRepo, url_of_other: str, marker: Path) -> str:
    """A catalogue alongside everything a repository could use to run something on the reader: hook
    scripts, a filter on the catalogue, submodules (one on the same server, one over ext::, one file://)
    with a gitlink each, and a .lfsconfig."""
    other.commit({"registry.json": b'{"version": "1.0.0", "servers": {"from-the-submodule": {}}}'})
    gitlink = other.resolve("refs/heads/main")
    files: dict[str, str | bytes | None] = {
        "registry.json": CATALOGUE,
        ".gitattributes": "registry.json filter=evil\n* filter=lfs diff=lfs merge=lfs\n",
        ".gitmodules": (
            f'[submodule "sub"]\n\tpath = sub\n\turl = {url_of_other}\n'
            f'[submodule "ext"]\n\tpath = ext\n\turl = ext::sh -c touch% {marker}\n'
            '[submodule "local"]\n\tpath = local\n\turl = file:///etc\n'
        ),
        ".lfsconfig": "[lfs]\n\turl = file:///etc\n",
        ".githooks/post-checkout": f"#!/bin/sh\ntouch {marker}\n",
        ".githooks/reference-transaction": f"#!/bin/sh\ntouch {marker}\n",
    }
    repo.commit(files)
    tree = run_git(["--git-dir", str(repo.path), "ls-tree", "main"])
    lines = [line for line in tree.splitlines() if line]
    lines += [f"160000 commit {gitlink}\t{name}" for name in ("sub", "ext", "local")]
    new_tree = run_git(
        ["--git-dir", str(repo.path), "mktree"], input=("\n".join(lines) + "\n").encode()
    ).strip()
    parent = repo.resolve("refs/heads/main")
    commit = run_git(
        ["--git-dir", str(repo.path), "commit-tree", new_tree, "-p", str(parent), "-m", "hostile"]
    )
    run_git(["--git-dir", str(repo.path), "update-ref", "refs/heads/main", commit.strip()])
    return commit.strip()


def test_nothing_in_the_repository_runs_and_no_submodule_is_fetched(
    bare_repo_factory: BareRepoFactory, git_daemon: GitDaemonServer, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    repo, other = bare_repo_factory("hostile"), bare_repo_factory("elsewhere")
    commit = hostile_repo(repo, other, git_daemon.url(other), marker)
    git_daemon.clear_log()
    assert GitClient().read_file(git_daemon.url(repo), MAIN, "registry.json") == (commit, CATALOGUE)
    assert not marker.exists()
    # One repository was asked for (ls-remote is not part of read_file): never the submodule's.
    paths = {r.path for r in git_daemon.requests()}
    assert paths and all(other.name not in p for p in paths), paths
    # The gitlinks are there, and the submodule's own catalogue is not read through them.
    with pytest.raises(SourceError) as raised:
        GitClient().read_file(git_daemon.url(repo), MAIN, "sub/registry.json")
    assert "submodule" in raised.value.message and "not fetched" in raised.value.message


def test_hooks_of_the_local_copy_never_run(
    bare_repo: BareRepo, git_daemon: GitDaemonServer, tmp_path: Path
) -> None:
    """Whatever installed a hook in the operator's working copy (a git template, an image), the fetch
    does not run it: checked with the reference-transaction hook every fetch would call."""
    bare_repo.commit({"registry.json": CATALOGUE})
    marker = tmp_path / "hook-ran"

    def fetch(env: dict[str, str]) -> None:
        copy = tmp_path / f"copy-{len(list(tmp_path.iterdir()))}.git"
        run_git(["init", "--bare", "--quiet", str(copy)], env=env)
        _executable(copy / "hooks" / "reference-transaction", f"#!/bin/sh\ntouch {marker}\n")
        run_git(
            ["--git-dir", str(copy), "fetch", "--quiet", git_daemon.url(bare_repo), "main:refs/x"], env=env
        )

    plain = dict(git_env(None))
    for index in range(int(plain["GIT_CONFIG_COUNT"])):
        if plain[f"GIT_CONFIG_KEY_{index}"] == "core.hooksPath":
            plain[f"GIT_CONFIG_KEY_{index}"] = "mcpreg.unused"
    fetch(plain)
    assert marker.exists(), "the hook did not run even without core.hooksPath: the test proves nothing"
    marker.unlink()
    fetch(git_env(None))
    assert not marker.exists()


def test_a_filter_never_runs_on_the_catalogue(bare_repo: BareRepo, tmp_path: Path) -> None:
    """The catalogue is read from the object database, never through .gitattributes filters, even in
    a copy whose configuration defines the filter and whose attributes name it."""
    marker = tmp_path / "filter-ran"
    commit = bare_repo.commit({"registry.json": CATALOGUE, ".gitattributes": "registry.json filter=evil\n"})
    run_git(
        ["--git-dir", str(bare_repo.path), "config", "filter.evil.smudge", f"sh -c 'touch {marker}; cat'"]
    )
    run_git(["--git-dir", str(bare_repo.path), "config", "filter.evil.required", "true"])
    # A bare copy reads attributes from info/attributes, not from the tree: give it them there too.
    (bare_repo.path / "info").mkdir(exist_ok=True)
    (bare_repo.path / "info" / "attributes").write_text("registry.json filter=evil\n")
    # Plain git with --filters runs it: the set-up is live.
    run_git(["--git-dir", str(bare_repo.path), "cat-file", "--filters", f"{commit}:registry.json"])
    assert marker.exists()
    marker.unlink()
    data = GitClient().read_committed_file(
        bare_repo.path, commit, "registry.json", url="git://h/r.git", ref=MAIN
    )
    assert data == CATALOGUE and not marker.exists()


def test_a_git_lfs_pointer_is_named_for_what_it_is(bare_repo: BareRepo, git_daemon: GitDaemonServer) -> None:
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"ab" * 32 + b"\nsize 48213\n"
    commit = bare_repo.commit(
        {"registry.json": pointer, ".gitattributes": "*.json filter=lfs diff=lfs merge=lfs -text\n"}
    )
    with pytest.raises(SourceError) as raised:
        GitClient().read_file(git_daemon.url(bare_repo), MAIN, "registry.json")
    assert raised.value.kind is SourceErrorKind.INVALID_REFERENCE
    message = raised.value.message
    assert "is a Git LFS pointer, not the catalogue" in message and "stores the file in Git LFS" in message
    assert commit[:12] in message and "registry.json" in message


def test_file_urls_and_local_paths_are_refused_before_git_runs(tmp_path: Path) -> None:
    local = tmp_path / "local.git"
    run_git(["init", "--bare", "--quiet", str(local)])
    for url in (f"file://{local}", str(local), "ext::sh -c id", "ssh://host/repo.git", "host:repo.git"):
        with pytest.raises(SourceError) as raised:
            GitClient().read_file(url, MAIN, "registry.json")
        assert raised.value.kind is SourceErrorKind.INVALID_REFERENCE, url
        assert "is not an https://, http:// or git:// URL" in raised.value.message
    assert os.listdir(local / "refs" / "heads") == []
