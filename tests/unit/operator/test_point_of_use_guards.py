"""Spec values that would be unsafe are refused where they are used, whatever admitted them.

The API server enforces the CRD's CEL rules and the operator's models do not repeat them; an
MCPRegistry admitted by an older or hand-made CRD may still hold what those rules refuse. The git
client, the source factory and the storage factory refuse the values that would be unsafe to act on,
with a message a person can act on, before any git process or API request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mcpreg.kube import KubeClient
from mcpreg.storage.errors import StorageError
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.sources.factory import ConfigMapCatalogSource, build_source, load_git_credentials
from mcpreg_operator.sources.git import GitClient, GitRef, check_remote
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.source import ConfigMapSource
from mcpreg_operator.storage_factory import UnsupportedStorage, build_store, secret_credentials

# Nothing may reach the API server: a client without a connection fails any request it would send.
UNCONNECTED = KubeClient(None)  # type: ignore[arg-type]


@pytest.fixture
def no_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH without git: a refusal must come before any git process (else: 'could not start git')."""
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///var/lib/registry.git", "is not an https://, http:// or git:// URL"),
        ("/srv/git/registry.git", "reads no local paths"),
        ("ssh://git@git.example.com/r.git", "does not use SSH"),
        ("git@github.com:org/repo.git", "is not an https://, http:// or git:// URL"),
        ("ext::sh -c touch% /tmp/x", "is not an https://, http:// or git:// URL"),
        ("https://bot:hunter2@git.example.com/r.git", "has credentials in its URL"),
        ("https://ghp_abc@github.com/org/r.git", "put them in a Secret referenced by auth.secretRef"),
    ],
)
def test_git_refuses_urls_that_are_unsafe(url: str, words: str, no_git: None) -> None:
    for call in (
        lambda: GitClient().resolve(url, GitRef(branch="main")),
        lambda: GitClient().read_file(url, GitRef(branch="main"), "registry.json"),
    ):
        with pytest.raises(SourceError) as raised:
            call()
        assert raised.value.kind is SourceErrorKind.INVALID_REFERENCE
        assert words in raised.value.message, raised.value.message
        for secret in ("hunter2", "ghp_abc"):
            assert secret not in raised.value.message


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        (GitRef(commit="--all"), "is not a hexadecimal commit SHA"),
        (GitRef(commit="9f2c0ab --upload-pack=x"), "is not a hexadecimal commit SHA"),
        (GitRef(branch="--upload-pack=touch"), "branch '--upload-pack=touch' is not a git ref name"),
        (GitRef(tag="-v1"), "tag '-v1' is not a git ref name"),
        (GitRef(branch=""), "is not a git ref name"),
    ],
)
def test_git_refuses_refs_that_read_as_options(ref: GitRef, words: str, no_git: None) -> None:
    with pytest.raises(SourceError) as raised:
        GitClient().read_file("https://git.example.com/r.git", ref, "registry.json")
    assert raised.value.kind is SourceErrorKind.INVALID_REFERENCE
    assert words in raised.value.message, raised.value.message


@pytest.mark.parametrize(
    "url",
    ["https://git.example.com/r.git", "http://127.0.0.1:8080/r.git", "git://localhost:9418/r.git"],
)
def test_git_accepts_network_urls_and_refs(url: str) -> None:
    for ref in (GitRef(), GitRef(branch="release/1"), GitRef(tag="v1.2"), GitRef(commit="9F2C0AB")):
        check_remote(url, ref)  # no exception


@pytest.mark.parametrize("path", ["..", "../secret", "a/../../b.json", "/..", ""])
def test_git_path_never_leaves_the_repository(path: str) -> None:
    # Checked before the fetched copy (here: none at all) is looked at.
    with pytest.raises(SourceError) as raised:
        GitClient().read_committed_file(
            Path("/nonexistent"), "0" * 40, path, url="https://git.example.com/r.git", ref=GitRef()
        )
    assert raised.value.kind is SourceErrorKind.INVALID_REFERENCE
    assert "names no file inside the repository" in raised.value.message


NAMES_BEYOND_THE_NAMESPACE = ["..", ".", "../kube-system/configmaps/x", "other%2Fx", "UPPER", "a" * 254, ""]


@pytest.mark.parametrize("name", NAMES_BEYOND_THE_NAMESPACE)
async def test_configmap_source_refuses_names_that_are_not_object_names(name: str) -> None:
    source = ConfigMapCatalogSource(
        ConfigMapSource.model_construct(name=name, key="registry.json"), "team-a", UNCONNECTED
    )
    for call in (source.revision, source.fetch):
        with pytest.raises(SourceError) as raised:
            await call()
        assert raised.value.kind is SourceErrorKind.INVALID_REFERENCE
        assert "is not a ConfigMap name" in raised.value.message
        assert "own namespace" in raised.value.message


@pytest.mark.parametrize("name", NAMES_BEYOND_THE_NAMESPACE)
async def test_git_credentials_refuse_names_that_are_not_object_names(name: str) -> None:
    with pytest.raises(SourceError) as raised:
        await load_git_credentials(UNCONNECTED, "team-a", name)
    assert raised.value.kind is SourceErrorKind.INVALID_REFERENCE
    assert "source.git.auth.secretRef.name" in raised.value.message


@pytest.mark.parametrize("name", NAMES_BEYOND_THE_NAMESPACE)
async def test_s3_credentials_refuse_names_that_are_not_object_names(name: str) -> None:
    provide = secret_credentials(None, "team-a", "reg", name)  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="is not a Secret name"):
        await provide()


def _spec(raw: dict[str, Any]) -> MCPRegistrySpec:
    return MCPRegistrySpec.model_validate(raw)


def test_a_source_without_its_sub_object_is_a_clear_error() -> None:
    # The models no longer repeat the CEL rule: such a spec parses, and the source says what is missing.
    for raw, words in (
        ({"source": {"type": "git"}}, "source.git is required when source.type is git"),
        ({"source": {"type": "configmap"}}, "source.configMap is required when source.type is configmap"),
    ):
        with pytest.raises(SourceError) as raised:
            build_source(_spec(raw), "team-a", UNCONNECTED, GitClient(), None)
        assert raised.value.kind is SourceErrorKind.INVALID_REFERENCE
        assert raised.value.message == words


def test_s3_storage_without_settings_is_a_clear_error() -> None:
    spec = _spec({"source": {"type": "git"}, "storage": {"type": "s3"}})
    body = {"metadata": {"name": "reg", "namespace": "team-a", "uid": "u-1"}}
    with pytest.raises(UnsupportedStorage, match=r"storage\.s3 is required when storage\.type is s3"):
        build_store(None, spec, body)  # type: ignore[arg-type]
