"""Build the `CatalogSource` an MCPRegistry's spec names: a git file or a ConfigMap key, both in the
registry's own namespace (credentials Secret included), never anywhere else."""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import Executor
from dataclasses import dataclass

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.sources.git import GitClient, GitCredentials, GitRef
from mcpreg_operator.spec import ConfigMapSource, GitSource, MCPRegistrySpec, SourceType
from mcpreg_operator.sync import CatalogSource, SourceSnapshot


def _decode_secret_value(data: dict[str, str], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    return base64.b64decode(value).decode("utf-8", errors="strict").strip()


async def load_git_credentials(core: client.CoreV1Api, namespace: str, secret_name: str) -> GitCredentials:
    """username+password, or token (sent as the password, with the username if one is given)."""
    try:
        secret = await core.read_namespaced_secret(secret_name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise SourceError(
                SourceErrorKind.AUTHENTICATION,
                f"credentials Secret {namespace}/{secret_name} does not exist",
            ) from None
        if exc.status == 403:
            raise SourceError(
                SourceErrorKind.AUTHENTICATION,
                f"the operator may not read Secret {namespace}/{secret_name} (RBAC)",
            ) from None
        raise SourceError(
            SourceErrorKind.UNREACHABLE, f"cannot read Secret {namespace}/{secret_name}: HTTP {exc.status}"
        ) from None
    data = secret.data or {}
    try:
        username = _decode_secret_value(data, "username")
        password = _decode_secret_value(data, "password")
        token = _decode_secret_value(data, "token")
    except (ValueError, UnicodeDecodeError):
        raise SourceError(
            SourceErrorKind.AUTHENTICATION,
            f"Secret {namespace}/{secret_name} holds a value that is not UTF-8 text",
        ) from None
    if token:
        return GitCredentials(username=username or "x-access-token", password=token)
    if username and password:
        return GitCredentials(username=username, password=password)
    raise SourceError(
        SourceErrorKind.AUTHENTICATION,
        f"Secret {namespace}/{secret_name} must hold keys username and password, or token",
    )


@dataclass
class GitCatalogSource:
    git_spec: GitSource
    namespace: str
    core: client.CoreV1Api
    git: GitClient
    executor: Executor | None = None

    def _ref(self) -> GitRef:
        return GitRef(branch=self.git_spec.branch, tag=self.git_spec.tag, commit=self.git_spec.commit)

    def describe(self) -> str:
        return f"{self.git_spec.repository} ({self._ref().describe()}, {self.git_spec.path})"

    async def _credentials(self) -> GitCredentials | None:
        auth = self.git_spec.auth
        if auth is None or auth.secret_ref is None:
            return None
        return await load_git_credentials(self.core, self.namespace, auth.secret_ref.name)

    async def revision(self) -> str:
        credentials = await self._credentials()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, self.git.resolve, self.git_spec.repository, self._ref(), credentials
        )

    async def fetch(self) -> SourceSnapshot:
        credentials = await self._credentials()
        loop = asyncio.get_running_loop()
        commit, data = await loop.run_in_executor(
            self.executor,
            self.git.read_file,
            self.git_spec.repository,
            self._ref(),
            self.git_spec.path,
            credentials,
        )
        return SourceSnapshot(revision=commit, data=data, description=self.describe())


@dataclass
class ConfigMapCatalogSource:
    config_map: ConfigMapSource
    namespace: str
    core: client.CoreV1Api

    def describe(self) -> str:
        return f"ConfigMap {self.namespace}/{self.config_map.name} key {self.config_map.key}"

    async def _read(self) -> client.V1ConfigMap:
        try:
            return await self.core.read_namespaced_config_map(self.config_map.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise SourceError(
                    SourceErrorKind.NOT_FOUND, f"{self.describe()}: the ConfigMap does not exist"
                ) from None
            raise SourceError(
                SourceErrorKind.UNREACHABLE, f"cannot read {self.describe()}: HTTP {exc.status}"
            ) from None

    async def revision(self) -> str:
        # Reading a ConfigMap is the cheap check: its resourceVersion is the revision.
        return str((await self._read()).metadata.resource_version)

    async def fetch(self) -> SourceSnapshot:
        cm = await self._read()
        key = self.config_map.key
        if cm.data and key in cm.data:
            data = cm.data[key].encode()
        elif cm.binary_data and key in cm.binary_data:
            data = base64.b64decode(cm.binary_data[key])
        else:
            present = sorted([*(cm.data or {}), *(cm.binary_data or {})])
            raise SourceError(
                SourceErrorKind.NOT_FOUND,
                f"{self.describe()}: no key {key!r} (keys present: {', '.join(present) or 'none'})",
            )
        return SourceSnapshot(
            revision=str(cm.metadata.resource_version), data=data, description=self.describe()
        )


def build_source(
    spec: MCPRegistrySpec, namespace: str, core: client.CoreV1Api, git: GitClient, executor: Executor | None
) -> CatalogSource:
    if spec.source.type is SourceType.GIT:
        assert spec.source.git is not None  # the CRD's CEL rule and the spec model both require it
        return GitCatalogSource(spec.source.git, namespace, core, git, executor)
    assert spec.source.config_map is not None
    return ConfigMapCatalogSource(spec.source.config_map, namespace, core)
