"""The operator with `storage.type: s3` against a real MinIO, the real control plane and real git
servers, and `mcpreg serve` on the configuration document the operator rendered serving what it stored:
successive ToolHive snapshots, the service stopped mid-operation, wrong credentials, a missing bucket,
deletion, switching storage, and the document following the spec."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.kube import Kube, wait_until
from fixtures.operator import Registries
from integration.test_api_server import ApiProcess, start_api
from integration.test_operator_api import api_document
from mcpreg.storage.s3_layout import generation_of
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer
from mcpreg_dev.minio import MinioServer

pytestmark = pytest.mark.integration

SHARED = Path(os.environ.get("MCPREG_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
SNAPSHOTS = sorted((SHARED / "toolhive").glob("registry-*.json"))
PREFIX = "catalogues"


def expected_count(path: Path) -> int:
    document = json.loads(path.read_text())
    return len(document.get("servers", {})) + len(document.get("remote_servers", {}))


def s3_storage(minio: MinioServer, bucket: str, credentials_ref: str | None = "s3-creds") -> dict[str, Any]:
    s3: dict[str, Any] = {
        "bucket": bucket,
        "endpoint": minio.endpoint,
        "region": "us-east-1",
        "prefix": PREFIX,
        "forcePathStyle": True,
    }
    if credentials_ref:
        s3["credentialsSecretRef"] = {"name": credentials_ref}
    return {"type": "s3", "s3": s3}


def spec_for(url: str, storage: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": {"type": "git", "git": {"repository": url, "branch": "main", "path": "registry.json"}},
        "storage": storage,
    }


def put_secret(kube: Kube, namespace: str, access: str, secret: str, name: str = "s3-creds") -> None:
    kube.put_secret(namespace, name, {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret})


def ready_with(count: int) -> Any:
    def check(status: dict[str, Any]) -> bool:
        sync = status.get("syncStatus", {})
        return (
            status.get("phase") == "Ready"
            and sync.get("serverCount") == count
            and sync.get("phase") == "Complete"
        )

    return check


def synced_condition(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == "Synced")


def failed_with(reason: str) -> Any:
    def check(status: dict[str, Any]) -> bool:
        return status.get("phase") == "Failed" and synced_condition(status).get("reason") == reason

    return check


def events_text(kube: Kube, namespace: str, name: str) -> str:
    return "\n".join(
        f"{e.reason}: {e.message}" for e in kube.core.list_namespaced_event(namespace).items
        if e.involved_object.name == name
    )  # fmt: skip


def serve_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minio: MinioServer, kube: Kube, namespace: str,
             name: str) -> ApiProcess:  # fmt: skip
    """The API as its pods run it: the operator's configuration document (from the ConfigMap the pods
    mount), with a faster poll and presigned downloads laid over it by flags."""
    # The standard AWS chain: the API pod gets these from the Secret as environment variables.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", minio.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", minio.secret_key)
    config_file = tmp_path / f"{name}-config.json"
    config_file.write_text(json.dumps(api_document(kube, namespace, name)))
    return start_api(
        tmp_path,
        "--config", str(config_file), "--s3-poll-interval", "0.2", "--s3-presign", "--s3-presign-ttl", "120",
    )  # fmt: skip


def served_count(api: ApiProcess) -> int:
    return int(api.json("/readiness")["catalog"]["servers"])


@pytest.fixture
def s3_bucket(minio: MinioServer) -> Iterator[str]:
    name = minio.create_bucket(f"op-{os.urandom(5).hex()}")
    yield name
    minio.delete_bucket(name)


def test_syncs_snapshots_to_s3_and_serves_them(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    minio: MinioServer,
    s3_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put_secret(kube, namespace, minio.access_key, minio.secret_key)
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    registries.create("company", spec_for(git_daemon.url(bare_repo), s3_storage(minio, s3_bucket)))
    status = registries.wait("company", ready_with(expected_count(SNAPSHOTS[0])), timeout=60)["status"]
    prefix = f"{PREFIX}/{namespace}/company"
    assert status["storageRef"] == {
        "type": "s3",
        "configMaps": [],
        "s3": {
            "bucket": s3_bucket,
            "prefix": prefix,
            "key": f"{prefix}/current.json",
            "endpoint": minio.endpoint,
            "region": "us-east-1",
        },
    }
    # Nothing in ConfigMaps.
    assert not [
        cm
        for cm in kube.core.list_namespaced_config_map(namespace).items
        if cm.metadata.name == "company-data"
    ]

    api = serve_s3(tmp_path, monkeypatch, minio, kube, namespace, "company")
    try:
        assert served_count(api) == expected_count(SNAPSHOTS[0])
        for snapshot in SNAPSHOTS[1:]:
            commit = bare_repo.commit({"registry.json": snapshot.read_bytes()})
            registries.trigger("company")
            obj = registries.wait("company", ready_with(expected_count(snapshot)), timeout=60)
            assert obj["status"]["syncStatus"]["revision"] == commit
            want = expected_count(snapshot)
            wait_until(lambda: served_count(api) == want, timeout=20, what="API reload")  # noqa: B023
        # The ToolHive document by presigned redirect: the same document, straight from MinIO.
        status_code, headers, _ = api.get("/api/v1/registry")
        assert status_code == 302 and headers["Location"].startswith(minio.endpoint)
        assert minio.secret_key not in headers["Location"]
        with urllib.request.urlopen(headers["Location"], timeout=10) as response:  # noqa: S310 - loopback
            document = json.loads(response.read())
        assert len(document["servers"]) + len(document.get("remote_servers", {})) == expected_count(
            SNAPSHOTS[-1]
        )
        assert api.json("/v0.1/servers?limit=5")["metadata"]["count"] == 5
    finally:
        api.stop()
    generations = {generation_of(prefix, k) for k in minio.keys(s3_bucket, prefix + "/")} - {None}
    assert 1 <= len(generations) <= 3  # old generations pruned


def test_the_api_configuration_follows_the_spec(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    minio: MinioServer,
    s3_bucket: str,
) -> None:
    put_secret(kube, namespace, minio.access_key, minio.secret_key)
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    count = expected_count(SNAPSHOTS[0])
    obj = registries.create("docs", spec_for(git_daemon.url(bare_repo), s3_storage(minio, s3_bucket)))
    registries.wait("docs", ready_with(count), timeout=60)
    config_map = kube.core.read_namespaced_config_map("docs-api-config", namespace)
    [owner] = config_map.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "MCPRegistry",
        "docs",
        obj["metadata"]["uid"],
        True,
    )
    assert config_map.metadata.labels["app.kubernetes.io/managed-by"] == "mcp-registry-operator"
    assert config_map.metadata.labels["app.kubernetes.io/instance"] == "docs"
    assert api_document(kube, namespace, "docs")["storage"] == {
        "type": "s3",
        "bucket": s3_bucket,
        "prefix": PREFIX,
        "endpoint": minio.endpoint,
        "region": "us-east-1",
        "forcePathStyle": True,
        "pollIntervalSeconds": 10.0,
        "presign": {"enabled": False, "ttlSeconds": 300},
    }
    assert minio.access_key not in config_map.data["config.json"]
    # ...which stay in the environment, from the Secret by reference.
    [container] = kube.apps.read_namespaced_deployment("docs-api", namespace).spec.template.spec.containers
    from_secret = {
        e.name: e.value_from.secret_key_ref.name for e in container.env if e.value_from.secret_key_ref
    }
    assert from_secret == dict.fromkeys(
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"), "s3-creds"
    )

    def config_hash() -> str:
        deployment = kube.apps.read_namespaced_deployment("docs-api", namespace)
        return str(deployment.spec.template.metadata.annotations["mcpregistry.dev/config-hash"])

    before = config_hash()
    moved = s3_storage(minio, s3_bucket)
    moved["s3"]["prefix"] = "moved"
    registries.patch("docs", {"spec": {"storage": moved}})
    wait_until(
        lambda: api_document(kube, namespace, "docs")["storage"]["prefix"] == "moved",
        timeout=60,
        what="the document to follow spec.storage.s3.prefix",
    )
    wait_until(lambda: config_hash() != before, timeout=30, what="the pods to roll")
    registries.wait(
        "docs", lambda s: s.get("storageRef", {}).get("s3", {}).get("prefix") == f"moved/{namespace}/docs"
        and ready_with(count)(s), timeout=60,
    )  # fmt: skip


def test_minio_stopped_mid_operation_then_recovers(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    minio_private: MinioServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    minio = minio_private
    bucket = minio.create_bucket("flaky")
    put_secret(kube, namespace, minio.access_key, minio.secret_key)
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    registries.create("flaky", spec_for(git_daemon.url(bare_repo), s3_storage(minio, bucket)))
    registries.wait("flaky", ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    api = serve_s3(tmp_path, monkeypatch, minio, kube, namespace, "flaky")
    try:
        minio.stop()
        bare_repo.commit({"registry.json": SNAPSHOTS[-1].read_bytes()})
        registries.trigger("flaky")
        failed = registries.wait("flaky", failed_with("EndpointUnreachable"), timeout=90)["status"]
        assert "unreachable" in failed["syncStatus"]["message"]
        assert "last good catalogue" in failed["syncStatus"]["message"]
        # The API keeps serving the last good catalogue meanwhile.
        assert served_count(api) == expected_count(SNAPSHOTS[0])
        assert api.get("/readiness")[0] == 200
        minio.start()
        registries.trigger("flaky")
        registries.wait("flaky", ready_with(expected_count(SNAPSHOTS[-1])), timeout=90)
        wait_until(lambda: served_count(api) == expected_count(SNAPSHOTS[-1]), timeout=60, what="API reload")
    finally:
        api.stop()


def test_wrong_credentials_then_fixed(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    minio: MinioServer,
    s3_bucket: str,
) -> None:
    wrong_secret = "definitely-not-the-secret-" + os.urandom(6).hex()
    put_secret(kube, namespace, minio.access_key, wrong_secret)
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    registries.create("creds", spec_for(git_daemon.url(bare_repo), s3_storage(minio, s3_bucket)))
    failed = registries.wait("creds", failed_with("AccessDenied"), timeout=60)
    text = json.dumps(failed) + events_text(kube, namespace, "creds")
    assert "rejected the credentials" in failed["status"]["syncStatus"]["message"]
    for secret in (wrong_secret, minio.secret_key, minio.access_key):
        assert secret not in text
    put_secret(kube, namespace, minio.access_key, minio.secret_key)
    registries.trigger("creds")
    registries.wait("creds", ready_with(expected_count(SNAPSHOTS[0])), timeout=60)


def test_missing_secret_and_missing_bucket_then_fixed(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    minio: MinioServer,
) -> None:
    bucket = f"later-{os.urandom(4).hex()}"
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    registries.create("nobucket", spec_for(git_daemon.url(bare_repo), s3_storage(minio, bucket)))
    failed = registries.wait("nobucket", failed_with("CredentialsMissing"), timeout=60)["status"]
    assert (
        "s3-creds" in failed["syncStatus"]["message"] and "does not exist" in failed["syncStatus"]["message"]
    )
    put_secret(kube, namespace, minio.access_key, minio.secret_key)
    registries.trigger("nobucket")
    failed = registries.wait("nobucket", failed_with("BucketMissing"), timeout=60)["status"]
    assert f"bucket '{bucket}' does not exist" in failed["syncStatus"]["message"]
    minio.create_bucket(bucket)
    try:
        registries.trigger("nobucket")
        registries.wait("nobucket", ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    finally:
        registries.delete("nobucket")
        wait_until(lambda: not registries.exists("nobucket"), timeout=60, what="deletion")
        minio.delete_bucket(bucket)


def test_deletion_cleans_the_prefix_even_after_the_secret_is_gone(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    minio: MinioServer,
    s3_bucket: str,
) -> None:
    put_secret(kube, namespace, minio.access_key, minio.secret_key)
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    registries.create("doomed", spec_for(git_daemon.url(bare_repo), s3_storage(minio, s3_bucket)))
    registries.create("neighbour", spec_for(git_daemon.url(bare_repo), s3_storage(minio, s3_bucket)))
    for name in ("doomed", "neighbour"):
        registries.wait(name, ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    prefix = f"{PREFIX}/{namespace}/doomed/"
    assert minio.keys(s3_bucket, prefix)
    # As when a namespace goes: the Secret may be deleted before the finalizer runs.
    kube.core.delete_namespaced_secret("s3-creds", namespace)
    registries.delete("doomed")
    wait_until(lambda: not registries.exists("doomed"), timeout=60, what="deletion of doomed")
    assert minio.keys(s3_bucket, prefix) == []
    assert minio.keys(s3_bucket, f"{PREFIX}/{namespace}/neighbour/")


def test_switching_storage_moves_the_data_and_cleans_up(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    minio: MinioServer,
    s3_bucket: str,
) -> None:
    put_secret(kube, namespace, minio.access_key, minio.secret_key)
    bare_repo.commit({"registry.json": SNAPSHOTS[-1].read_bytes()})
    count = expected_count(SNAPSHOTS[-1])
    registries.create("mover", spec_for(git_daemon.url(bare_repo), {"type": "configmap"}))
    status = registries.wait("mover", ready_with(count), timeout=60)["status"]
    assert status["storageRef"]["type"] == "configmap"
    kube.core.read_namespaced_config_map("mover-data", namespace)

    def data_configmaps() -> list[str]:
        return [
            cm.metadata.name for cm in kube.core.list_namespaced_config_map(namespace).items
            if cm.metadata.name.startswith("mover-data")
        ]  # fmt: skip

    prefix = f"{PREFIX}/{namespace}/mover/"
    registries.patch("mover", {"spec": {"storage": s3_storage(minio, s3_bucket)}})
    status = registries.wait(
        "mover", lambda s: s.get("storageRef", {}).get("type") == "s3" and ready_with(count)(s), timeout=60
    )["status"]
    assert status["syncStatus"]["serverCount"] == count
    assert minio.keys(s3_bucket, prefix)
    wait_until(lambda: not data_configmaps(), timeout=30, what="old ConfigMaps removed")
    # Events are posted asynchronously.
    wait_until(lambda: "StorageMoved" in events_text(kube, namespace, "mover"), timeout=30, what="Event")

    registries.patch("mover", {"spec": {"storage": {"type": "configmap", "s3": None}}})
    status = registries.wait(
        "mover",
        lambda s: s.get("storageRef", {}).get("type") == "configmap" and ready_with(count)(s),
        timeout=60,
    )["status"]
    assert "s3" not in status["storageRef"] and status["storageRef"]["configMaps"]
    assert minio.keys(s3_bucket, prefix) == []
    assert data_configmaps()


async def test_finalizer_cleanup_with_an_invalid_spec_uses_status(
    minio: MinioServer, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcpreg.storage.model import StoredCatalog
    from mcpreg_operator.storage_factory import delete_storage

    # Objects written as the operator would, for registry ns-x/broken.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", minio.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", minio.secret_key)
    from mcpreg.storage.s3_config import S3Address
    from mcpreg.storage.s3_store import S3CatalogStore

    store = S3CatalogStore(S3Address(minio.settings(s3_bucket, prefix=PREFIX), "ns-x", "broken"))
    result = await store.write(StoredCatalog.create(b'{"servers": []}', revision="r", server_count=0))
    body = {
        "metadata": {"name": "broken", "namespace": "ns-x"},
        "spec": {"storage": {"type": "s3"}},  # invalid: no s3 settings
        "status": {"storageRef": result.location.to_status()},
    }
    # No Secret named anywhere: the operator's own identity deletes only where the chart allows it.
    from mcpreg_operator.ambient_s3 import AMBIENT_BUCKETS_ENV, OperatorCredentialsRefusedError

    monkeypatch.delenv(AMBIENT_BUCKETS_ENV, raising=False)
    with pytest.raises(OperatorCredentialsRefusedError):
        await delete_storage(None, "ns-x", "broken", body)  # type: ignore[arg-type]
    assert minio.keys(s3_bucket, f"{PREFIX}/ns-x/broken/")
    monkeypatch.setenv(AMBIENT_BUCKETS_ENV, f"{minio.endpoint}/{s3_bucket}")
    done = await delete_storage(None, "ns-x", "broken", body)  # type: ignore[arg-type]
    assert done == f"removed s3://{s3_bucket}/{PREFIX}/ns-x/broken/"
    assert minio.keys(s3_bucket, f"{PREFIX}/ns-x/broken/") == []
    body["status"] = {}
    assert "no S3 storage" in await delete_storage(None, "ns-x", "broken", body)  # type: ignore[arg-type]
