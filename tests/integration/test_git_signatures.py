"""Issue 18, Deliver 1: a synced revision must be signed by a trusted key.

Commits and tags are signed by the real tools (`ssh-keygen` keys and `gpg` keys, through git's own
`commit-tree -S` and `tag -s`), served by the session's real git daemon, fetched and verified by the
operator's `GitClient` (which runs `gpgv` and `ssh-keygen -Y`), and, in the last tests, synced by the
real operator against the real API server: refused with SourceVerificationFailed, the last good
catalogue kept."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fixtures.kube import Kube
from fixtures.operator import Registries
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer, run_git
from mcpreg_dev.gitsigning import GpgSigner, Signer, SshSigner, sign_tip, signed_tag
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.sources.git import GitClient, GitRef
from mcpreg_operator.sources.git_signatures import SignaturePolicy, TrustedKeys
from mcpreg_operator.spec.source import VerifyMode

pytestmark = pytest.mark.integration

CATALOGUE = b'{"version": "1.0.0", "last_updated": "2025-01-01T00:00:00Z", "servers": {}}\n'
MAIN = GitRef(branch="main")


@pytest.fixture
def ssh_signer(tmp_path: Path) -> SshSigner:
    return SshSigner.create(tmp_path / "ssh")


@pytest.fixture
def gpg_signer(tmp_path: Path) -> GpgSigner:
    return GpgSigner.create(tmp_path / "gpg")


def policy(signer: Signer, mode: VerifyMode = VerifyMode.HEAD) -> SignaturePolicy:
    return SignaturePolicy(mode, TrustedKeys.from_secret_data(signer.trusted_keys(), "Secret ns/keys"))


def refused(git_daemon: GitDaemonServer, repo: BareRepo, check: SignaturePolicy, ref: GitRef = MAIN) -> str:
    with pytest.raises(SourceError) as raised:
        GitClient().read_file(git_daemon.url(repo), ref, "registry.json", policy=check)
    assert raised.value.kind is SourceErrorKind.UNVERIFIED
    return raised.value.message


@pytest.mark.parametrize("kind", ["ssh", "gpg"])
def test_a_commit_signed_by_a_trusted_key_is_read(
    kind: str, request: pytest.FixtureRequest, git_daemon: GitDaemonServer, bare_repo: BareRepo
) -> None:
    signer: Signer = request.getfixturevalue(f"{kind}_signer")
    bare_repo.commit({"registry.json": CATALOGUE})
    signed = sign_tip(bare_repo, signer)
    client_ = GitClient()
    commit, data = client_.read_file(git_daemon.url(bare_repo), MAIN, "registry.json", policy=policy(signer))
    assert (commit, data) == (signed, CATALOGUE)


def test_an_unsigned_commit_is_refused(
    git_daemon: GitDaemonServer, bare_repo: BareRepo, ssh_signer: SshSigner
) -> None:
    commit = bare_repo.commit({"registry.json": CATALOGUE})
    message = refused(git_daemon, bare_repo, policy(ssh_signer))
    assert f"commit {commit[:12]} of {git_daemon.url(bare_repo)} is not signed" in message


@pytest.mark.parametrize("kind", ["ssh", "gpg"])
def test_a_commit_signed_by_another_key_is_refused_naming_the_signer(
    kind: str, tmp_path: Path, git_daemon: GitDaemonServer, bare_repo: BareRepo
) -> None:
    make = SshSigner.create if kind == "ssh" else GpgSigner.create
    trusted, stranger = make(tmp_path / "trusted"), make(tmp_path / "stranger")
    bare_repo.commit({"registry.json": CATALOGUE})
    commit = sign_tip(bare_repo, stranger)
    message = refused(git_daemon, bare_repo, policy(trusted))
    assert f"commit {commit[:12]}" in message
    # The signer found is named, so that a person can tell a missing key from an intruder.
    assert stranger.fingerprint in message
    assert "does not" in message


@pytest.mark.parametrize("kind", ["ssh", "gpg"])
def test_a_commit_altered_after_signing_is_refused(
    kind: str, request: pytest.FixtureRequest, git_daemon: GitDaemonServer, bare_repo: BareRepo
) -> None:
    signer: Signer = request.getfixturevalue(f"{kind}_signer")
    bare_repo.commit({"registry.json": CATALOGUE})
    signed = sign_tip(bare_repo, signer)
    # The same signature on a different message: what a forged history would look like.
    raw = run_git(["--git-dir", str(bare_repo.path), "cat-file", "commit", signed])
    forged_raw = raw.replace("Update catalogue", "Update catalogue (with an extra server)")
    forged = run_git(
        ["--git-dir", str(bare_repo.path), "hash-object", "-t", "commit", "-w", "--stdin"],
        input=forged_raw.encode(),
    ).strip()
    run_git(["--git-dir", str(bare_repo.path), "update-ref", "refs/heads/main", forged])
    message = refused(git_daemon, bare_repo, policy(signer))
    assert f"commit {forged[:12]}" in message
    assert "bad" in message or "does not verify" in message


def test_a_key_rotation_refuses_what_only_the_old_key_signed(
    tmp_path: Path, git_daemon: GitDaemonServer, bare_repo: BareRepo
) -> None:
    old, new = SshSigner.create(tmp_path / "old"), SshSigner.create(tmp_path / "new")
    bare_repo.commit({"registry.json": CATALOGUE})
    sign_tip(bare_repo, old)
    refused(git_daemon, bare_repo, policy(new))
    bare_repo.commit({"registry.json": CATALOGUE})
    signed = sign_tip(bare_repo, new)
    assert (
        GitClient().read_file(git_daemon.url(bare_repo), MAIN, "registry.json", policy=policy(new))[0]
        == signed
    )


def test_tag_mode_verifies_the_annotated_tag(
    git_daemon: GitDaemonServer, bare_repo: BareRepo, gpg_signer: GpgSigner
) -> None:
    commit = bare_repo.commit({"registry.json": CATALOGUE})  # the commit itself is not signed
    signed_tag(bare_repo, gpg_signer, "v1")
    tag = GitRef(tag="v1")
    client_ = GitClient()
    read = client_.read_file(
        git_daemon.url(bare_repo), tag, "registry.json", policy=policy(gpg_signer, VerifyMode.TAG)
    )
    assert read == (commit, CATALOGUE)
    # TagAndHEAD asks for both, and the commit is unsigned.
    message = refused(git_daemon, bare_repo, policy(gpg_signer, VerifyMode.TAG_AND_HEAD), tag)
    assert f"commit {commit[:12]}" in message and "is not signed" in message
    sign_tip(bare_repo, gpg_signer)
    both = signed_tag(bare_repo, gpg_signer, "v1")
    assert client_.read_file(
        git_daemon.url(bare_repo), tag, "registry.json", policy=policy(gpg_signer, VerifyMode.TAG_AND_HEAD)
    ) == (both, CATALOGUE)


def test_tag_mode_refuses_a_lightweight_tag(
    git_daemon: GitDaemonServer, bare_repo: BareRepo, ssh_signer: SshSigner
) -> None:
    bare_repo.commit({"registry.json": CATALOGUE}, tag="v2")
    message = refused(git_daemon, bare_repo, policy(ssh_signer, VerifyMode.TAG), GitRef(tag="v2"))
    assert "tag 'v2'" in message and "lightweight tag" in message


# --- the operator: status, and the last good catalogue kept --------------------------------------------


def trust_secret(kube: Kube, namespace: str, name: str, signer: Signer) -> None:
    kube.core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            data={key: base64.b64encode(value).decode() for key, value in signer.trusted_keys().items()},
        ),
    )


def source_condition(status: dict[str, object]) -> dict[str, str]:
    conditions = status.get("conditions") or []
    assert isinstance(conditions, list)
    return next((c for c in conditions if c["type"] == "SourceAvailable"), {})


def test_the_operator_syncs_only_signed_revisions_and_keeps_the_last_good(
    registries: Registries,
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    git_daemon: GitDaemonServer,
    bare_repo: BareRepo,
) -> None:
    trusted, stranger = SshSigner.create(tmp_path / "trusted"), SshSigner.create(tmp_path / "stranger")
    trust_secret(kube, namespace, "catalogue-signers", trusted)
    unsigned = bare_repo.commit({"registry.json": CATALOGUE})
    spec = {
        "source": {
            "type": "git",
            "git": {
                "repository": git_daemon.url(bare_repo),
                "branch": "main",
                "verify": {"secretRef": {"name": "catalogue-signers"}},
            },
        }
    }
    registries.create("signed", spec)
    failed = registries.wait(
        "signed", lambda s: source_condition(s).get("reason") == "SourceVerificationFailed", timeout=60
    )["status"]
    assert f"commit {unsigned[:12]}" in source_condition(failed)["message"]
    assert "is not signed" in source_condition(failed)["message"]
    assert not (failed.get("syncStatus") or {}).get("lastSyncHash")

    good = sign_tip(bare_repo, trusted)
    registries.trigger("signed")
    ready = registries.wait(
        "signed",
        lambda s: s.get("phase") == "Ready" and s.get("syncStatus", {}).get("revision") == good,
        timeout=60,
    )["status"]
    served_hash = ready["syncStatus"]["lastSyncHash"]
    data_before = kube.core.read_namespaced_config_map("signed-data", namespace).metadata.resource_version

    # A commit by someone else, with other content: refused, and the signed catalogue stays served.
    document = json.loads(CATALOGUE)
    document["servers"] = {}
    document["version"] = "2.0.0"
    bare_repo.commit({"registry.json": json.dumps(document).encode()})
    intruder = sign_tip(bare_repo, stranger)
    registries.trigger("signed")
    refused_status = registries.wait(
        "signed",
        lambda s: (
            source_condition(s).get("reason") == "SourceVerificationFailed"
            and intruder[:12] in source_condition(s).get("message", "")
        ),
        timeout=60,
    )["status"]
    assert stranger.fingerprint in source_condition(refused_status)["message"]
    assert refused_status["syncStatus"]["lastSyncHash"] == served_hash
    assert refused_status["syncStatus"]["revision"] == good
    assert (
        kube.core.read_namespaced_config_map("signed-data", namespace).metadata.resource_version
        == data_before
    )


def test_the_crd_refuses_tag_mode_without_a_tag(
    registries: Registries, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    spec = {
        "source": {
            "type": "git",
            "git": {
                "repository": git_daemon.url(bare_repo),
                "branch": "main",
                "verify": {"mode": "Tag", "secretRef": {"name": "keys"}},
            },
        }
    }
    with pytest.raises(ApiException) as raised:
        registries.create("tagless", spec)
    assert raised.value.status == 422
    assert "verify.mode Tag and TagAndHEAD need tag" in str(raised.value.body)
