"""Build the `CatalogStore` an MCPRegistry's `spec.storage` names, owned by that MCPRegistry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client

from mcpreg.storage.configmap_layout import OwnerReference
from mcpreg.storage.configmap_store import ConfigMapCatalogStore
from mcpreg.storage.interfaces import CatalogStore
from mcpreg_operator.spec import MCPRegistrySpec, StorageType


class UnsupportedStorage(Exception):
    pass


def build_store(api: client.ApiClient, spec: MCPRegistrySpec, body: Mapping[str, Any]) -> CatalogStore:
    meta = body["metadata"]
    owner = OwnerReference.for_registry(meta["name"], meta["uid"])
    if spec.storage.type is StorageType.CONFIGMAP:
        return ConfigMapCatalogStore(api, namespace=meta["namespace"], registry=meta["name"], owner=owner)
    raise UnsupportedStorage(f"storage type {spec.storage.type.value} is not available in this version")
