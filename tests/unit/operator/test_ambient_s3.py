"""The operator's own S3 identity is used only where the chart allows it: the policy and every path
that would use it (writes, cleanup after a move, the finalizer) refuse elsewhere before any request."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mcpreg.storage.errors import StorageError
from mcpreg.storage.s3_store import S3CatalogStore
from mcpreg_operator.ambient_s3 import (
    AMBIENT_BUCKETS_ENV,
    AmbientCredentialsPolicy,
    OperatorCredentialsRefusedError,
)
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.storage_factory import (
    build_store,
    cleanup_previous_storage,
    delete_storage,
)
from mcpreg_operator.sync import SyncStage, failure_from_error

BODY = {"metadata": {"name": "reg", "namespace": "tenant", "uid": "u-1"}}
SOURCE = {"type": "configmap", "configMap": {"name": "src"}}
ENDPOINT = "http://minio.storage:9000"
NO_SECRET: dict[str, Any] = {
    "type": "s3",
    "s3": {"bucket": "victim", "endpoint": ENDPOINT, "forcePathStyle": True},
}


def spec(storage: dict[str, Any]) -> MCPRegistrySpec:
    return MCPRegistrySpec.model_validate({"source": SOURCE, "storage": storage})


@pytest.mark.parametrize(
    ("allowed", "bucket", "endpoint", "allows"),
    [
        ("", "victim", "", False),  # nothing listed: nowhere
        ("catalogues", "catalogues", "", True),  # a bare name: that bucket on AWS
        ("catalogues", "catalogues", ENDPOINT, False),  # ... not a same-named bucket elsewhere
        ("catalogues", "other", "", False),
        (f"{ENDPOINT}/shared", "shared", ENDPOINT, True),
        (f"{ENDPOINT}/shared", "shared", ENDPOINT + "/", True),  # a trailing slash is noise
        (f"{ENDPOINT}/shared", "shared", "HTTP://MINIO.storage:9000", True),  # host case
        (f"{ENDPOINT}/shared", "shared", "http://evil.example:9000", False),  # the endpoint is granted too
        (f"{ENDPOINT}/shared", "shared", "", False),
        (f"a-bucket, {ENDPOINT}/shared\nthird", "third", "", True),  # commas, whitespace
    ],
)
def test_policy_allows_exactly_what_is_listed(allowed: str, bucket: str, endpoint: str, allows: bool) -> None:
    assert AmbientCredentialsPolicy.parse(allowed).allows(bucket, endpoint) is allows


@pytest.mark.parametrize("entry", ["Not_A_Bucket", "ftp://host/bucket", "http:///bucket", "http://h:9000/x"])
def test_malformed_entries_are_refused_with_their_text(entry: str) -> None:
    with pytest.raises(ValueError, match=AMBIENT_BUCKETS_ENV) as caught:
        AmbientCredentialsPolicy.parse(f"fine-bucket,{entry}")
    assert entry in str(caught.value)


async def test_without_a_secret_every_operation_is_refused_with_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(AMBIENT_BUCKETS_ENV, raising=False)
    store = build_store(None, spec(NO_SECRET), BODY)  # type: ignore[arg-type]
    assert isinstance(store, S3CatalogStore)
    # Refused before any request: the endpoint does not even resolve, yet the error is the refusal.
    with pytest.raises(OperatorCredentialsRefusedError) as caught:
        await store.current_hash()
    failure = failure_from_error(caught.value, SyncStage.STORAGE, "cannot store the catalogue")
    assert (failure.stage, failure.reason) == (SyncStage.STORAGE, "CredentialsRequired")
    assert "credentialsSecretRef" in failure.message and "'victim'" in failure.message
    assert "operator.s3.ambientCredentials.allowedBuckets" in failure.message


async def test_an_allowed_bucket_goes_to_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AMBIENT_BUCKETS_ENV, "http://127.0.0.1:9/victim")
    monkeypatch.setenv("MCPREG_S3_TIMEOUT_SECONDS", "1")
    storage = copy.deepcopy(NO_SECRET)
    storage["s3"]["endpoint"] = "http://127.0.0.1:9"  # the discard port: nothing listens
    store = build_store(None, spec(storage), BODY)  # type: ignore[arg-type]
    # The operator's own chain is used: the request is sent, and fails for want of a service.
    with pytest.raises(StorageError) as caught:
        await store.current_hash()
    assert not isinstance(caught.value, OperatorCredentialsRefusedError)


async def test_the_finalizer_skips_a_refused_place_it_never_wrote(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AMBIENT_BUCKETS_ENV, raising=False)
    body = {**BODY, "spec": {"source": SOURCE, "storage": NO_SECRET}}
    done = await delete_storage(None, "tenant", "reg", body)  # type: ignore[arg-type]
    assert done.startswith("nothing written, nothing removed: s3://victim/")


async def test_the_finalizer_never_deletes_with_the_operators_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """status.storageRef names a place, the spec no longer names a Secret: the delete is refused (no
    request), not sent with the operator's identity."""
    monkeypatch.delenv(AMBIENT_BUCKETS_ENV, raising=False)
    ref = {"type": "s3", "s3": {"bucket": "victim", "prefix": "tenant/reg", "endpoint": ENDPOINT}}
    body = {
        **BODY,
        "spec": {"source": SOURCE, "storage": {"type": "configmap"}},
        "status": {"storageRef": ref},
    }
    with pytest.raises(OperatorCredentialsRefusedError):
        await delete_storage(None, "tenant", "reg", body)  # type: ignore[arg-type]
    # Cleanup after a move goes the same way.
    with pytest.raises(OperatorCredentialsRefusedError):
        await cleanup_previous_storage(
            None,  # type: ignore[arg-type]
            "tenant",
            "reg",
            spec({"type": "configmap"}),
            copy.deepcopy(ref),
            {"type": "configmap"},
        )


async def test_the_finalizer_ignores_a_spec_refused_for_its_references() -> None:
    storage = {
        "type": "s3",
        "s3": {"bucket": "bkt", "credentialsSecretRef": {"name": "c", "namespace": "other"}},
    }
    body = {**BODY, "spec": {"source": SOURCE, "storage": storage}}
    done = await delete_storage(None, "tenant", "reg", body)  # type: ignore[arg-type]
    assert done.startswith("nothing written, nothing removed: the spec names objects of other namespaces")
