"""`mcpreg serve --registry NAME` on the real control plane: the API reads what the storage layer wrote to
ConfigMaps, with only the ServiceAccount rights the API Deployment gets (get/list/watch on exactly the
storage ConfigMaps), and moves to a new generation while clients keep getting answers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from kubernetes import client as sync_client
from kubernetes_asyncio import config as async_config
from kubernetes_asyncio.client import ApiClient

from fixtures.kube import Kube, configmap_reader_role
from integration.test_api_server import LATEST, OLDER, ApiProcess, needs_shared, start_api
from mcpreg.storage import (
    ConfigMapAddress,
    ConfigMapCatalogStore,
    EncodingLimits,
    OwnerReference,
    StorageLocation,
    StoredCatalog,
)
from mcpreg_dev.samples import replicated_served

pytestmark = [pytest.mark.integration, needs_shared]

REGISTRY = "company-registry"
# Small parts, so that even these catalogues are stored as a head and several parts.
SMALL_PARTS = EncodingLimits(max_object_bytes=64 * 1024)


@pytest_asyncio.fixture(loop_scope="function")
async def api_client(kube: Kube) -> AsyncIterator[ApiClient]:
    client = await async_config.new_client_from_config(config_file=str(kube.kubeconfig))
    yield client
    await client.close()


class Poller(threading.Thread):
    """Asks the API for its catalogue over and over, recording every status and server count it sees."""

    def __init__(self, api: ApiProcess) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.stop = threading.Event()
        self.seen: list[tuple[int, int | None]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            status, _, _ = self.api.get("/v0.1/servers?limit=100&version=latest")
            version = self.api.json("/version") if status == 200 else {}
            self.seen.append((status, version.get("catalog", {}).get("servers")))
            time.sleep(0.02)


async def test_serves_configmaps_with_least_privilege_across_generations(
    kube: Kube, namespace: str, api_client: ApiClient, tmp_path: Path
) -> None:
    owner_map = kube.core.create_namespaced_config_map(
        namespace, sync_client.V1ConfigMap(metadata=sync_client.V1ObjectMeta(name="owner"))
    )
    owner = OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner_map.metadata.uid)
    store = ConfigMapCatalogStore(
        ConfigMapAddress(api_client, namespace, REGISTRY), owner=owner, limits=SMALL_PARTS
    )
    first_data, first_count = await asyncio.to_thread(replicated_served, LATEST, 1000)
    second_data, second_count = await asyncio.to_thread(replicated_served, OLDER, 400)
    first = StoredCatalog.create(first_data, revision="first", server_count=first_count)
    second = StoredCatalog.create(second_data, revision="second", server_count=second_count)
    await store.write(first)
    names = await store.resource_names()
    assert len(names) > 2, "expected a head and several parts"
    kubeconfig = kube.configmap_reader_kubeconfig(namespace, names, tmp_path / "api.kubeconfig")

    api = await asyncio.to_thread(
        start_api, tmp_path, "--registry", REGISTRY, "--namespace", namespace, "--kubeconfig", str(kubeconfig)
    )
    try:
        readiness = api.json("/readiness")["catalog"]
        assert readiness["servers"] == 1000 and readiness["revision"] == "first"
        assert readiness["contentHash"] == first.content_hash
        assert len(api.json("/api/v1/registry")["servers"]) > 0

        poller = Poller(api)
        poller.start()

        async def grant(location: StorageLocation) -> None:
            # What the operator does before publishing: let the API read the new generation's names.
            union = tuple(dict.fromkeys((*names, *location.config_maps)))
            kube.rbac.replace_namespaced_role(
                "registry-api", namespace, configmap_reader_role("registry-api", union)
            )

        await store.write(second, before_publish=grant)
        deadline = time.monotonic() + 60
        while api.json("/version")["catalog"]["revision"] != "second":
            assert time.monotonic() < deadline, api.stderr.read_text()[-3000:]
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        poller.stop.set()
        poller.join(10)

        assert api.json("/readiness")["catalog"]["servers"] == 400
        statuses = {status for status, _ in poller.seen}
        assert statuses == {200}, f"requests failed during the switch: {statuses}"
        counts = [count for _, count in poller.seen if count is not None]
        assert counts[0] == 1000 and counts[-1] == 400
        assert set(counts) <= {1000, 400}
        # Once switched, never back.
        assert counts == sorted(counts, reverse=True)
    finally:
        assert await asyncio.to_thread(api.stop) == 0
