"""Store construction, the API pod's S3 credentials, and when storage counts as moved: pure logic."""

from __future__ import annotations

from typing import Any

import pytest

from mcpreg.storage.configmap_store import ConfigMapCatalogStore
from mcpreg.storage.s3_store import S3CatalogStore
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.storage_factory import (
    _same_place,
    api_storage_env,
    build_store,
    cleanup_previous_storage,
    s3_settings,
)

BODY = {"metadata": {"name": "reg", "namespace": "ns", "uid": "u-1"}}
SOURCE = {"type": "configmap", "configMap": {"name": "src"}}


def spec(storage: dict[str, Any]) -> MCPRegistrySpec:
    return MCPRegistrySpec.model_validate({"source": SOURCE, "storage": storage})


S3 = {
    "type": "s3",
    "s3": {
        "bucket": "mcp-registries",
        "prefix": "cat",
        "endpoint": "http://minio.storage:9000",
        "region": "eu-west-1",
        "forcePathStyle": True,
        "credentialsSecretRef": {"name": "s3-creds"},
        "serverSideEncryption": "aws:kms",
        "kmsKeyId": "key-1",
    },
}


def test_build_store_per_type() -> None:
    assert isinstance(build_store(None, spec({"type": "configmap"}), BODY), ConfigMapCatalogStore)  # type: ignore[arg-type]
    store = build_store(None, spec(S3), BODY)  # type: ignore[arg-type]
    assert isinstance(store, S3CatalogStore)
    assert store.prefix == "cat/ns/reg" and repr(store) == "S3CatalogStore(s3://mcp-registries/cat/ns/reg)"
    settings = s3_settings(spec(S3).storage.s3)  # type: ignore[arg-type]
    assert settings.encryption_args() == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "key-1"}
    assert settings.force_path_style and settings.region == "eu-west-1"


def test_operator_and_api_address_the_same_objects() -> None:
    """The operator's store and the API's reader start from one mapping of spec.storage.s3."""
    from mcpreg_operator.api_config import s3_reader_storage

    s3 = spec(S3).storage.s3
    assert s3 is not None
    reader, writer = s3_reader_storage(s3).settings(), s3_settings(s3)
    assert [getattr(writer, f) for f in ("bucket", "prefix", "endpoint", "region", "force_path_style")] == [
        getattr(reader, f) for f in ("bucket", "prefix", "endpoint", "region", "force_path_style")
    ]
    assert reader.encryption_args() == {}  # reading needs no encryption settings


def test_api_pod_gets_secret_references() -> None:
    assert api_storage_env(spec({"type": "configmap"})) == []
    env = api_storage_env(spec(S3))
    assert [e["name"] for e in env] == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
    assert all(e["valueFrom"]["secretKeyRef"]["name"] == "s3-creds" for e in env)
    no_secret = {"type": "s3", "s3": {"bucket": "mcp-registries"}}
    assert api_storage_env(spec(no_secret)) == []


def ref(bucket: str = "b", prefix: str = "cat/ns/reg", endpoint: str = "") -> dict[str, Any]:
    s3 = {"bucket": bucket, "prefix": prefix, "key": f"{prefix}/current.json"}
    if endpoint:
        s3["endpoint"] = endpoint
    return {"type": "s3", "s3": s3}


@pytest.mark.parametrize(
    "previous,current,same",
    [
        (
            {"type": "configmap", "configMaps": ["reg-data"]},
            {"type": "configmap", "configMaps": ["reg-data"]},
            True,
        ),
        ({"type": "configmap", "configMaps": ["reg-data"]}, ref(), False),
        (ref(), {"type": "configmap", "configMaps": ["reg-data"]}, False),
        (ref(), ref(), True),
        (ref(), ref(bucket="other"), False),
        (ref(), ref(prefix="x/ns/reg"), False),
        (ref(), ref(endpoint="http://elsewhere:9000"), False),
    ],
)
def test_same_place(previous: dict[str, Any], current: dict[str, Any], same: bool) -> None:
    assert _same_place(previous, current) is same


async def test_nothing_to_clean_when_nothing_moved() -> None:
    s = spec(S3)
    assert await cleanup_previous_storage(None, "ns", "reg", s, None, ref()) is None  # type: ignore[arg-type]
    assert await cleanup_previous_storage(None, "ns", "reg", s, ref(), ref()) is None  # type: ignore[arg-type]
