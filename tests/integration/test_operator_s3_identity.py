"""No confused deputy (issue 17): with S3 storage and no `credentialsSecretRef`, the operator acts with
its own identity only in buckets the chart lists (`MCPREG_S3_AMBIENT_BUCKETS`); elsewhere the registry
fails with CredentialsRequired and an Event, and nothing is written or deleted. The finalizer deletes
with the credentials the writes used. Real MinIO, real control plane, real git daemon, and an operator
of this module's own whose environment holds valid MinIO credentials (its "cloud identity")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.kube import Kube, fresh_namespace, wait_until
from fixtures.operator import OperatorProcess, Registries
from integration.test_operator_s3 import (
    PREFIX,
    SNAPSHOTS,
    events_text,
    expected_count,
    failed_with,
    put_secret,
    ready_with,
    s3_storage,
    spec_for,
)
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer
from mcpreg_dev.minio import MinioServer

pytestmark = pytest.mark.integration


@pytest.fixture
def identity_namespace(kube: Kube) -> Iterator[str]:
    with fresh_namespace(kube, "tn-") as name:  # tn-*: not the session operator's
        yield name


@pytest.fixture
def allowed_bucket(minio: MinioServer) -> Iterator[str]:
    name = minio.create_bucket(f"allowed-{uuid.uuid4().hex[:8]}")
    yield name
    minio.delete_bucket(name)


@pytest.fixture
def victim_bucket(minio: MinioServer) -> Iterator[str]:
    """A bucket the operator's identity can reach but no tenant may use through it."""
    name = minio.create_bucket(f"victim-{uuid.uuid4().hex[:8]}")
    yield name
    minio.delete_bucket(name)


@pytest.fixture
def identity_operator(
    kube: Kube,
    crd: str,
    identity_namespace: str,
    minio: MinioServer,
    allowed_bucket: str,
    tmp_path: Path,
    product_image: str,
) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(
        kubeconfig=kube.kubeconfig,
        log_path=tmp_path / "operator.log",
        extra_env={
            "MCPREG_API_IMAGE": product_image,
            # The operator's own identity: valid for every bucket of this MinIO.
            "AWS_ACCESS_KEY_ID": minio.access_key,
            "AWS_SECRET_ACCESS_KEY": minio.secret_key,
            "MCPREG_S3_AMBIENT_BUCKETS": f"{minio.endpoint}/{allowed_bucket}",
            "MCPREG_S3_TIMEOUT_SECONDS": "5",
        },
        extra_args=["--namespace", identity_namespace],
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def tregistries(kube: Kube, identity_namespace: str, identity_operator: OperatorProcess) -> Registries:
    return Registries(kube=kube, namespace=identity_namespace, operator=identity_operator)


def test_without_a_secret_only_an_allowed_bucket_is_used(
    tregistries: Registries,
    kube: Kube,
    identity_namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    minio: MinioServer,
    allowed_bucket: str,
    victim_bucket: str,
) -> None:
    namespace = identity_namespace
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    url = git_daemon.url(bare_repo)
    # Someone else's data, where the tenant's registry would write and its finalizer would delete.
    planted = f"{PREFIX}/{namespace}/deputy/current.json"
    minio.client().put_object(Bucket=victim_bucket, Key=planted, Body=b"{}")

    tregistries.create("deputy", spec_for(url, s3_storage(minio, victim_bucket, credentials_ref=None)))
    status = tregistries.wait("deputy", failed_with("CredentialsRequired"), timeout=60)["status"]
    message = status["syncStatus"]["message"]
    assert "no credentialsSecretRef" in message and f"'{victim_bucket}'" in message
    assert "operator.s3.ambientCredentials.allowedBuckets" in message
    wait_until(
        lambda: (
            "SyncFailed: " in events_text(kube, namespace, "deputy")
            and "no credentialsSecretRef" in events_text(kube, namespace, "deputy")
        ),
        timeout=30,
        what="a Warning Event saying why",
    )
    assert minio.keys(victim_bucket) == [planted]  # nothing written
    tregistries.delete("deputy")
    wait_until(lambda: not tregistries.exists("deputy"), timeout=60, what="deletion of deputy")
    assert minio.keys(victim_bucket) == [planted]  # nor deleted with the operator's identity

    # A bucket the chart lists: the operator's own identity writes, and its finalizer deletes.
    # The API stays off: its pods would need the cloud identity too, which pods on this machine's node
    # do not have (on EKS or GKE they get it from their ServiceAccount); the operator's is what is tested.
    shared = spec_for(url, s3_storage(minio, allowed_bucket, credentials_ref=None)) | {
        "api": {"enabled": False}
    }
    tregistries.create("shared", shared)
    tregistries.wait("shared", ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    prefix = f"{PREFIX}/{namespace}/shared/"
    assert f"{prefix}current.json" in minio.keys(allowed_bucket, prefix)
    tregistries.delete("shared")
    wait_until(lambda: not tregistries.exists("shared"), timeout=60, what="deletion of shared")
    assert minio.keys(allowed_bucket, prefix) == []


def test_the_finalizer_deletes_with_the_secrets_credentials(
    tregistries: Registries,
    kube: Kube,
    identity_namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    minio: MinioServer,
    victim_bucket: str,
) -> None:
    """Written with a Secret's credentials, deleted with them: once the Secret holds wrong ones, the
    delete is refused by MinIO (and the objects stay, with a Warning) although the operator's own
    identity could have deleted them."""
    namespace = identity_namespace
    put_secret(kube, namespace, minio.access_key, minio.secret_key)
    bare_repo.commit({"registry.json": SNAPSHOTS[0].read_bytes()})
    tregistries.create("own", spec_for(git_daemon.url(bare_repo), s3_storage(minio, victim_bucket)))
    tregistries.wait("own", ready_with(expected_count(SNAPSHOTS[0])), timeout=60)
    prefix = f"{PREFIX}/{namespace}/own/"
    stored = minio.keys(victim_bucket, prefix)
    assert stored
    put_secret(kube, namespace, minio.access_key, "wrong-" + uuid.uuid4().hex)
    tregistries.delete("own")
    wait_until(lambda: not tregistries.exists("own"), timeout=120, what="the finalizer to give up")
    text = events_text(kube, namespace, "own")
    assert "StorageNotRemoved" in text and "rejected the credentials" in text, text
    assert minio.keys(victim_bucket, prefix) == stored
