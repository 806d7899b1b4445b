"""Build the `CatalogSource` an MCPRegistry's spec names: a git file or a ConfigMap key, both in the
registry's own namespace (credentials Secret included), never anywhere else."""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import Executor
from dataclasses import dataclass

from mcpreg.kube import CONFIGMAPS, SECRETS, ForbiddenError, JsonObject, KubeClient, KubeError, Resource
from mcpreg_operator.sources.blob_signatures import check_detached_signature, trusted_public_keys
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.sources.git import GitClient, GitCredentials, GitRef
from mcpreg_operator.sources.git_signatures import SignaturePolicy, TrustedKeys
from mcpreg_operator.spec.identity import is_object_name
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.source import (
    BlobVerification,
    ConfigMapSource,
    GitSource,
    GitVerification,
    Source,
    SourceType,
)
from mcpreg_operator.sync import CatalogSource, SourceSnapshot


def check_object_name(kind: str, name: str, field: str) -> None:
    """Refuse a name that is not a Kubernetes object name, whatever admitted it: a ``/`` or ``..`` in
    a request path would reach past the registry's own namespace."""
    if not is_object_name(name):
        raise SourceError(
            SourceErrorKind.INVALID_REFERENCE,
            f"{field} {name!r} is not a {kind} name (a DNS-1123 subdomain); only {kind}s in the "
            "MCPRegistry's own namespace can be used",
        )


async def read_object(
    kube: KubeClient,
    resource: Resource,
    namespace: str,
    name: str,
    *,
    field: str,
    what: str,
    kind: SourceErrorKind,
    missing: SourceErrorKind | None = None,
    metadata_only: bool = False,
) -> JsonObject:
    """A Secret or ConfigMap `name` in the registry's namespace, the reference at `field`. Failures are
    `SourceError`s naming `what` (never a value): refused by RBAC → `kind`, absent → `missing` (default
    `kind`), the API server failing → UNREACHABLE."""
    check_object_name(_KIND_NAMES[resource], name, field)
    try:
        found = await kube.get(resource, namespace, name, metadata_only=metadata_only)
    except ForbiddenError:
        raise SourceError(kind, f"the operator may not read {what} (RBAC)") from None
    except KubeError as exc:
        raise SourceError(SourceErrorKind.UNREACHABLE, f"cannot read {what}: {exc}") from None
    if found is None:
        raise SourceError(missing or kind, f"{what} does not exist")
    return found


_KIND_NAMES = {SECRETS: "Secret", CONFIGMAPS: "ConfigMap"}


async def read_secret(
    kube: KubeClient, namespace: str, secret_name: str, field: str, kind: SourceErrorKind
) -> dict[str, bytes]:
    """The decoded values of a Secret in the registry's namespace, referenced at `field`."""
    what = f"Secret {namespace}/{secret_name} ({field})"
    secret = await read_object(
        kube, SECRETS, namespace, secret_name, field=f"{field}.name", what=what, kind=kind
    )
    try:
        return {key: base64.b64decode(value) for key, value in (secret.get("data") or {}).items()}
    except ValueError:
        raise SourceError(kind, f"{what} holds a value that is not base64") from None


def _text(data: dict[str, bytes], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else value.decode("utf-8", errors="strict").strip()


async def load_git_credentials(kube: KubeClient, namespace: str, secret_name: str) -> GitCredentials:
    """username+password, or token (sent as the password, with the username if one is given)."""
    data = await read_secret(
        kube, namespace, secret_name, "source.git.auth.secretRef", SourceErrorKind.AUTHENTICATION
    )
    try:
        username, password, token = (_text(data, key) for key in ("username", "password", "token"))
    except UnicodeDecodeError:
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


async def load_signature_policy(
    kube: KubeClient, namespace: str, verification: GitVerification
) -> SignaturePolicy:
    """The trusted keys of `source.git.verify` and what they must have signed."""
    name = verification.secret_ref.name
    data = await read_secret(kube, namespace, name, "source.git.verify.secretRef", SourceErrorKind.UNVERIFIED)
    return SignaturePolicy(
        verification.mode, TrustedKeys.from_secret_data(data, f"Secret {namespace}/{name}")
    )


@dataclass
class GitCatalogSource:
    git_spec: GitSource
    namespace: str
    kube: KubeClient
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
        return await load_git_credentials(self.kube, self.namespace, auth.secret_ref.name)

    async def revision(self) -> str:
        credentials = await self._credentials()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, self.git.resolve, self.git_spec.repository, self._ref(), credentials
        )

    async def fetch(self) -> SourceSnapshot:
        credentials = await self._credentials()
        verification = self.git_spec.verify
        policy = (
            await load_signature_policy(self.kube, self.namespace, verification) if verification else None
        )
        loop = asyncio.get_running_loop()
        commit, data = await loop.run_in_executor(
            self.executor,
            self.git.read_file,
            self.git_spec.repository,
            self._ref(),
            self.git_spec.path,
            credentials,
            policy,
        )
        return SourceSnapshot(revision=commit, data=data, description=self.describe())


@dataclass
class ConfigMapCatalogSource:
    config_map: ConfigMapSource
    namespace: str
    kube: KubeClient

    def describe(self) -> str:
        return f"ConfigMap {self.namespace}/{self.config_map.name} key {self.config_map.key}"

    async def _read(self, *, metadata_only: bool = False) -> JsonObject:
        return await read_object(
            self.kube,
            CONFIGMAPS,
            self.namespace,
            self.config_map.name,
            field="source.configMap.name",
            what=self.describe(),
            kind=SourceErrorKind.AUTHENTICATION,
            missing=SourceErrorKind.NOT_FOUND,
            metadata_only=metadata_only,
        )

    async def revision(self) -> str:
        # Reading a ConfigMap's metadata is the cheap check: its resourceVersion is the revision.
        return str((await self._read(metadata_only=True))["metadata"].get("resourceVersion"))

    async def fetch(self) -> SourceSnapshot:
        cm = await self._read()
        key = self.config_map.key
        data = config_map_value(cm, key)
        if data is None:
            present = sorted([*(cm.get("data") or {}), *(cm.get("binaryData") or {})])
            raise SourceError(
                SourceErrorKind.NOT_FOUND,
                f"{self.describe()}: no key {key!r} (keys present: {', '.join(present) or 'none'})",
            )
        revision = str(cm["metadata"].get("resourceVersion"))
        if self.config_map.verify is not None:
            await self._verify(cm, data, revision, self.config_map.verify)
        return SourceSnapshot(revision=revision, data=data, description=self.describe())

    async def _verify(
        self, cm: JsonObject, data: bytes, revision: str, verification: BlobVerification
    ) -> None:
        """The catalogue's detached signature must verify with one of the trusted keys, before parsing."""
        name = verification.secret_ref.name
        where = f"{self.describe()} (resourceVersion {revision})"
        secret = await read_secret(
            self.kube, self.namespace, name, "source.configMap.verify.secretRef", SourceErrorKind.UNVERIFIED
        )
        keys = trusted_public_keys(secret, f"Secret {self.namespace}/{name}")
        signature_key = self.config_map.signature_key_name
        signature = config_map_value(cm, signature_key)
        if signature is None:
            raise SourceError(
                SourceErrorKind.UNVERIFIED,
                f"{where} is not signed: no signature under key {signature_key!r} of the ConfigMap "
                "(write the output of `cosign sign-blob` there)",
            )
        check_detached_signature(data, signature, keys, what=where, origin=f"Secret {self.namespace}/{name}")


def config_map_value(cm: JsonObject, key: str) -> bytes | None:
    """The value under `key` of a ConfigMap's data or binaryData, as bytes; None when absent."""
    text, binary = cm.get("data") or {}, cm.get("binaryData") or {}
    if key in text:
        return str(text[key]).encode()
    if key in binary:
        return base64.b64decode(binary[key])
    return None


def build_source(
    source: Source | MCPRegistrySpec,
    namespace: str,
    kube: KubeClient,
    git: GitClient,
    executor: Executor | None,
    *,
    registry: str = "",
) -> CatalogSource:
    """The `CatalogSource` of one `Source`: an item of `spec.sources`, or `spec.source` when given the
    whole spec (the one-source form)."""
    if isinstance(source, MCPRegistrySpec):
        source = source.single_source
    # The CRD's CEL rules require the sub-object source.type names; the API server enforces them.
    if source.type is SourceType.GIT and source.git is not None:
        return GitCatalogSource(source.git, namespace, kube, git, executor)
    if source.type is SourceType.CONFIGMAP and source.config_map is not None:
        return ConfigMapCatalogSource(source.config_map, namespace, kube)
    if source.type is SourceType.URL and source.url is not None:
        # Imported here: the URL source reads Secrets with this module's helpers.
        from mcpreg_operator.sources.url import UrlCatalogSource

        return UrlCatalogSource(source.url, namespace=namespace, registry=registry, kube=kube)
    if source.type is SourceType.API and source.api is not None:
        from mcpreg_operator.sources.api import ApiCatalogSource

        return ApiCatalogSource(source.api, namespace=namespace, registry=registry, kube=kube)
    field = {
        SourceType.GIT: "git",
        SourceType.CONFIGMAP: "configMap",
        SourceType.URL: "url",
        SourceType.API: "api",
    }[source.type]
    raise SourceError(
        SourceErrorKind.INVALID_REFERENCE,
        f"source.{field} is required when source.type is {source.type.value}",
    )
