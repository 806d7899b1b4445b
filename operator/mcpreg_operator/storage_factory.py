"""Build the `CatalogStore` an MCPRegistry's `spec.storage` names, and clean up storage it left.

- `build_store(api, spec, body)`: ConfigMaps owned by the MCPRegistry, or its prefix in an S3 bucket.
  Cheap and never failing: S3 credentials are read from the Secret by each operation (so a rotated
  Secret is picked up, and a missing one fails the sync with a message instead of the loop). Without
  a Secret, the operator's own identity is used only for buckets the chart allows (`ambient_s3`);
  elsewhere every operation fails with `CredentialsRequired` before any request is sent.
- `delete_storage(...)`: the finalizer's work - remove the registry's S3 objects, from the spec when it
  is valid, else from `status.storageRef`.
- `cleanup_previous_storage(...)`: after a successful write to a new place (`storage.type` switched, or
  another bucket or prefix), remove the data from the old one.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client

from mcpreg.kube import SECRETS, ForbiddenError, KubeClient, KubeError
from mcpreg.storage.configmap_backend import ConfigMapAddress
from mcpreg.storage.configmap_layout import OwnerReference
from mcpreg.storage.configmap_store import ConfigMapCatalogStore
from mcpreg.storage.errors import StorageError
from mcpreg.storage.interfaces import CatalogStore
from mcpreg.storage.s3_config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    CredentialsProvider,
    S3Address,
    S3Credentials,
    S3Settings,
)
from mcpreg.storage.s3_errors import S3AccessDeniedError, S3CredentialsMissingError
from mcpreg.storage.s3_store import S3CatalogStore
from mcpreg_operator.ambient_s3 import AmbientCredentialsPolicy, OperatorCredentialsRefusedError
from mcpreg_operator.api_config import s3_reader_storage
from mcpreg_operator.events import EventRecorder
from mcpreg_operator.references import foreign_references
from mcpreg_operator.spec.identity import is_object_name
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.status import StorageRef
from mcpreg_operator.spec.storage import S3Storage, StorageType

log = logging.getLogger(__name__)

ACCESS_KEY = "AWS_ACCESS_KEY_ID"
SECRET_KEY = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 - the key name, not a secret
SESSION_TOKEN = "AWS_SESSION_TOKEN"  # noqa: S105 - optional; the key name

# The last credentials each registry used successfully, in memory only: deleting a namespace deletes
# the credentials Secret alongside the MCPRegistry, often before the finalizer runs.
_LAST_CREDENTIALS: dict[tuple[str, str], S3Credentials] = {}


class UnsupportedStorage(Exception):
    pass


def s3_settings(s3: S3Storage) -> S3Settings:
    """The operator's own access to the bucket: the API's addressing, plus encryption for what it writes."""
    # An S3 service that stops answering fails a sync after this long per attempt (of 4).
    timeout = float(os.environ.get("MCPREG_S3_TIMEOUT_SECONDS") or DEFAULT_READ_TIMEOUT)
    return dataclasses.replace(
        s3_reader_storage(s3).settings(),
        server_side_encryption=s3.server_side_encryption,
        kms_key_id=s3.kms_key_id,
        connect_timeout=min(DEFAULT_CONNECT_TIMEOUT, timeout),
        read_timeout=timeout,
    )


def _decode(data: Mapping[str, str], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    return base64.b64decode(value, validate=True).decode("utf-8").strip() or None


def secret_credentials(
    api: client.ApiClient, namespace: str, registry: str, secret_name: str, *, remembered: bool = False
) -> CredentialsProvider:
    """Credentials from Secret `namespace/secret_name`, read when called. With `remembered`, the last
    credentials this registry used stand in for a Secret that is gone (the finalizer's case)."""
    where = f"Secret {namespace}/{secret_name} (spec.storage.s3.credentialsSecretRef)"

    async def provide() -> S3Credentials | None:
        if not is_object_name(secret_name):
            # Whatever admitted it: a '/' or '..' in the request path would reach past the namespace.
            raise StorageError(f"{where}: {secret_name!r} is not a Secret name (a DNS-1123 subdomain)")
        cached = _LAST_CREDENTIALS.get((namespace, registry)) if remembered else None
        try:
            secret = await KubeClient(api).get(SECRETS, namespace, secret_name)
        except KubeError as exc:
            if cached is not None:
                return cached
            if isinstance(exc, ForbiddenError):
                raise S3AccessDeniedError(f"the operator may not read {where} (RBAC)") from None
            raise StorageError(f"cannot read {where}: {exc}") from None
        if secret is None:
            if cached is not None:
                return cached
            raise S3CredentialsMissingError(
                f"{where} does not exist; create it with keys {ACCESS_KEY} and {SECRET_KEY}"
            )
        data = secret.get("data") or {}
        try:
            access, secret_key, token = (_decode(data, k) for k in (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise S3CredentialsMissingError(f"{where} holds a value that is not UTF-8 text") from None
        if not access or not secret_key:
            raise S3CredentialsMissingError(f"{where} must have both {ACCESS_KEY} and {SECRET_KEY}")
        credentials = S3Credentials(access, secret_key, token)
        _LAST_CREDENTIALS[(namespace, registry)] = credentials
        return credentials

    return provide


def _refused(message: str) -> CredentialsProvider:
    async def provide() -> S3Credentials | None:
        raise OperatorCredentialsRefusedError(message)

    return provide


def ambient_credentials(bucket: str, endpoint: str) -> CredentialsProvider | None:
    """The operator's own identity (None: the standard AWS chain) where the chart allows it for this
    bucket and endpoint; elsewhere a provider that refuses every operation, so nothing is sent."""
    policy = AmbientCredentialsPolicy.from_environment()
    if policy.allows(bucket, endpoint):
        return None
    return _refused(policy.refusal(bucket, endpoint))


def ambient_refused(bucket: str, endpoint: str) -> bool:
    return not AmbientCredentialsPolicy.from_environment().allows(bucket, endpoint)


def build_s3_store(
    api: client.ApiClient, s3: S3Storage, namespace: str, registry: str, *, remembered: bool = False
) -> S3CatalogStore:
    ref = s3.credentials_secret_ref
    credentials = (
        secret_credentials(api, namespace, registry, ref.name, remembered=remembered)
        if ref
        else ambient_credentials(s3.bucket, s3.endpoint)
    )
    return S3CatalogStore(S3Address(s3_settings(s3), namespace, registry, credentials))


def build_store(api: client.ApiClient, spec: MCPRegistrySpec, body: Mapping[str, Any]) -> CatalogStore:
    meta = body["metadata"]
    if spec.storage.type is StorageType.CONFIGMAP:
        owner = OwnerReference.for_registry(meta["name"], meta["uid"])
        return ConfigMapCatalogStore(ConfigMapAddress(api, meta["namespace"], meta["name"]), owner=owner)
    if spec.storage.type is StorageType.S3 and spec.storage.s3 is not None:
        return build_s3_store(api, spec.storage.s3, meta["namespace"], meta["name"])
    if spec.storage.type is StorageType.S3:  # the CRD's CEL rule requires it; the API server enforces it
        raise UnsupportedStorage("storage.s3 is required when storage.type is s3")
    raise UnsupportedStorage(f"storage type {spec.storage.type.value} is not available in this version")


# --- stored elsewhere before ------------------------------------------------------------------------


def _s3_ref(ref: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not ref or ref.get("type") != "s3":
        return None
    s3 = ref.get("s3")
    return s3 if isinstance(s3, Mapping) and s3.get("bucket") else None


def _same_place(previous: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    if previous.get("type") != current.get("type"):
        return False
    if previous.get("type") != "s3":
        return True  # ConfigMaps: always the registry's own, in its namespace
    old, new = _s3_ref(previous) or {}, _s3_ref(current) or {}
    fields = ("bucket", "prefix", "endpoint")
    return all((old.get(f) or "") == (new.get(f) or "") for f in fields)


def _store_at(
    api: client.ApiClient,
    namespace: str,
    registry: str,
    ref: Mapping[str, Any],
    raw_s3_spec: Mapping[str, Any] | None,
    *,
    remembered: bool,
) -> S3CatalogStore:
    """An S3 store for the place `ref` (a storageRef.s3) names. Credentials and addressing come from
    `raw_s3_spec` (spec.storage.s3, possibly of another type now, possibly invalid) when it has them.
    The credentials are those the writes used: the spec's Secret, else the ones this registry last
    used; the operator's own identity only where the chart allows it, as for the writes."""
    spec = raw_s3_spec or {}
    endpoint = str(ref.get("endpoint") or "")
    registry_prefix = str(ref.get("prefix") or "")
    suffix = f"{namespace}/{registry}"
    if registry_prefix != suffix and not registry_prefix.endswith("/" + suffix):
        raise StorageError(f"storageRef prefix {registry_prefix!r} is not this registry's; not deleting it")
    settings = S3Settings(
        bucket=str(ref["bucket"]),
        prefix=registry_prefix[: -len(suffix)].rstrip("/"),
        endpoint=endpoint,
        region=str(ref.get("region") or spec.get("region") or ""),
        force_path_style=bool(spec.get("forcePathStyle", bool(endpoint))),
    )
    secret = (spec.get("credentialsSecretRef") or {}).get("name")
    credentials: CredentialsProvider | None = None
    if secret:
        credentials = secret_credentials(api, namespace, registry, str(secret), remembered=remembered)
    elif remembered and (namespace, registry) in _LAST_CREDENTIALS:
        # The s3 settings are gone from the spec (switched to ConfigMaps and removed): the
        # credentials the registry last used still open the old place.
        credentials = _remembered(_LAST_CREDENTIALS[(namespace, registry)])
    else:
        credentials = ambient_credentials(settings.bucket, settings.endpoint)
    return S3CatalogStore(S3Address(settings, namespace, registry, credentials))


def _remembered(credentials: S3Credentials) -> CredentialsProvider:
    async def provide() -> S3Credentials:
        return credentials

    return provide


async def delete_storage(
    api: client.ApiClient, namespace: str, registry: str, body: Mapping[str, Any]
) -> str:
    """Remove the registry's S3 objects (ConfigMaps go by garbage collection). Works from the spec
    when it is valid, else from `status.storageRef`. Returns what was done, for the log; raises
    `StorageError` when the objects could not be removed."""
    raw_spec = body.get("spec") or {}
    raw_s3 = (raw_spec.get("storage") or {}).get("s3")
    ref = _s3_ref((body.get("status") or {}).get("storageRef"))
    stores: list[S3CatalogStore] = []
    try:
        spec = MCPRegistrySpec.model_validate(raw_spec)
    except ValueError:
        spec = None
    skipped: list[str] = []
    if spec is not None and foreign_references(spec, namespace):
        # Refused as a whole (CrossNamespaceReference): nothing was ever written from this spec.
        skipped.append("the spec names objects of other namespaces, so nothing was written from it")
    elif spec is not None and spec.storage.type is StorageType.S3 and spec.storage.s3 is not None:
        s3 = spec.storage.s3
        if s3.credentials_secret_ref is None and ambient_refused(s3.bucket, s3.endpoint):
            # The writes were refused there, so nothing of this registry's can be in that place
            # (status.storageRef, below, names any place it was written to with other credentials).
            skipped.append(f"s3://{s3.bucket}/ (the operator's own identity is not allowed there)")
        else:
            stores.append(build_s3_store(api, s3, namespace, registry, remembered=True))
    if ref is not None:
        raw = raw_s3 if isinstance(raw_s3, Mapping) else None
        stores.append(_store_at(api, namespace, registry, ref, raw, remembered=True))
    if not stores:
        if skipped:
            return "nothing written, nothing removed: " + ", ".join(skipped)
        if spec is None:
            return "the spec is invalid and status names no S3 storage: no object storage to remove"
        return "nothing stored outside Kubernetes"
    done: list[str] = []
    seen: set[str] = set()
    for store in stores:
        where = f"s3://{store.settings.bucket}/{store.prefix}/"
        if where in seen:
            continue
        seen.add(where)
        await store.delete()
        done.append(where)
    _LAST_CREDENTIALS.pop((namespace, registry), None)
    return "removed " + ", ".join(done)


async def cleanup_previous_storage(
    api: client.ApiClient,
    namespace: str,
    registry: str,
    spec: MCPRegistrySpec,
    previous: Mapping[str, Any] | None,
    current: Mapping[str, Any],
) -> str | None:
    """Remove the data from where `previous` (the old status.storageRef) says it was, when the
    catalogue now lives elsewhere (`current`). Returns what was removed, or None when nothing had to
    be. Raises `StorageError` when the old data could not be removed."""
    if not previous or not previous.get("type") or _same_place(previous, current):
        return None
    if previous.get("type") == "configmap":
        await ConfigMapCatalogStore(ConfigMapAddress(api, namespace, registry), owner=None).delete()
        names = ", ".join(previous.get("configMaps") or [f"{registry}-data"])
        return f"removed the catalogue ConfigMaps ({names})"
    ref = _s3_ref(previous)
    if ref is None:
        return None
    raw_s3 = spec.storage.s3.model_dump(mode="json", by_alias=True) if spec.storage.s3 else None
    store = _store_at(api, namespace, registry, ref, raw_s3, remembered=True)
    await store.delete()
    return f"removed s3://{store.settings.bucket}/{store.prefix}/"


async def cleanup_after_move(
    api: client.ApiClient,
    events: EventRecorder,
    body: Mapping[str, Any],
    spec: MCPRegistrySpec,
    previous: StorageRef | None,
    current: Mapping[str, Any],
) -> None:
    """`cleanup_previous_storage` for the controller: the outcome becomes an Event and a log line; a
    failure never fails the sync (the catalogue is safely in its new place)."""
    meta = body.get("metadata") or {}
    namespace, registry = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    before = previous.model_dump(mode="json", by_alias=True, exclude_none=True) if previous else None
    try:
        done = await cleanup_previous_storage(api, namespace, registry, spec, before, current)
    except (StorageError, KubeError, ValueError) as exc:
        message = f"the catalogue moved to {current.get('type')} storage; the old copy was not removed: {exc}"

        log.warning("%s/%s: %s", namespace, registry, message)
        events.warning(body, "StorageCleanupFailed", message)
        return
    if done is not None:
        message = f"the catalogue moved to {current.get('type')} storage; {done}"
        log.info("%s/%s: %s", namespace, registry, message)
        events.normal(body, "StorageMoved", message)


# --- what the API pods need to read it ----------------------------------------------------------------


def api_storage_env(spec: MCPRegistrySpec) -> list[dict[str, Any]]:
    """Environment for the API container: S3 credentials from the Secret (by reference: the values
    never pass through the operator), picked up by the standard AWS chain."""
    s3 = spec.storage.s3
    if spec.storage.type is not StorageType.S3 or s3 is None or s3.credentials_secret_ref is None:
        return []
    name = s3.credentials_secret_ref.name
    return [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": name, "key": key, "optional": optional}}}
        for key, optional in ((ACCESS_KEY, False), (SECRET_KEY, False), (SESSION_TOKEN, True))
    ]
