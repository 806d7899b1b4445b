"""Catalogue storage, shared by the operator (writer) and the registry API server (reader).

Typical use::

    from mcpreg.storage import (
        ConfigMapAddress, ConfigMapCatalogReader, ConfigMapCatalogStore, FileCatalogReader, OwnerReference,
        StoredCatalog,
    )

    # operator
    address = ConfigMapAddress(api, namespace, name)    # one registry's ConfigMaps
    store = ConfigMapCatalogStore(address, owner=OwnerReference.for_registry(name, uid))
    data = render_served(catalog)                       # mcpreg.catalog.served: what the API serves
    result = await store.write(StoredCatalog.create(data, revision=commit, server_count=catalog.server_count),
                               before_publish=grant_reader_access)   # e.g. widen the API pod's Role
    result.written                      # False: the hash was unchanged and nothing was touched
    result.location.to_status()         # {"type": "configmap", "configMaps": [...]}: status.storageRef
    await store.resource_names()        # exactly what the API pod's Role needs in resourceNames

    # registry API server
    reader = ConfigMapCatalogReader(address)                   # or FileCatalogReader(path)
    async for stored in reader.changes():                      # current generation first, then each new one
        load(stored.data)                                      # verified: sha256(data) == stored.content_hash

One generation protocol, two backends: a generation is a `Manifest` (`manifest`) and blobs; the write
protocol is `writer`, the read protocol `reader`, both built on the primitives of `backend`, which
`configmap_backend` (layout in `configmap_layout`) and `s3_backend` (layout in `s3_layout`) implement.
The encoding choice is in `encoding`; the extra documents S3 keeps with a generation in `documents`.

S3 (`storage.type: s3`) has the same two sides, over an S3-compatible bucket::

    settings = S3Settings(bucket="mcp-registries", endpoint="http://minio:9000", force_path_style=True)
    address = S3Address(settings, namespace, name, credentials=provider)    # None: AWS chain
    store = S3CatalogStore(address)
    reader = S3CatalogReader(address, poll_interval=10, presign_ttl=300)
    url = await reader.presigned_toolhive_url(stored.content_hash)           # for a 302, or None

Errors (BucketMissing,
AccessDenied, EndpointUnreachable, EncryptionRefused, CredentialsMissing) in `s3_errors`.
"""

from mcpreg.backoff import Backoff
from mcpreg.storage.configmap_backend import ConfigMapAddress
from mcpreg.storage.configmap_layout import ConfigMapNames, HeadAnnotations, OwnerReference
from mcpreg.storage.configmap_reader import ConfigMapCatalogReader
from mcpreg.storage.configmap_store import ConfigMapCatalogStore
from mcpreg.storage.encoding import EncodedCatalog, EncodingLimits, decode, encode, split_chunks
from mcpreg.storage.errors import (
    StorageAccessError,
    StorageConflictError,
    StorageCorruptError,
    StorageError,
    StorageTooLargeError,
)
from mcpreg.storage.file_reader import FileCatalogReader
from mcpreg.storage.interfaces import CatalogReader, CatalogStore, PublishHook
from mcpreg.storage.manifest import BlobRef, Manifest
from mcpreg.storage.model import (
    Encoding,
    S3Location,
    StorageLocation,
    StorageType,
    StoredCatalog,
    WriteResult,
    sha256_hash,
)
from mcpreg.storage.s3_config import S3Address, S3Credentials, S3Settings
from mcpreg.storage.s3_errors import S3StorageError
from mcpreg.storage.s3_reader import S3CatalogReader
from mcpreg.storage.s3_store import S3CatalogStore

__all__ = [
    "Backoff",
    "BlobRef",
    "CatalogReader",
    "CatalogStore",
    "ConfigMapAddress",
    "ConfigMapCatalogReader",
    "ConfigMapCatalogStore",
    "ConfigMapNames",
    "EncodedCatalog",
    "Encoding",
    "EncodingLimits",
    "FileCatalogReader",
    "HeadAnnotations",
    "Manifest",
    "OwnerReference",
    "PublishHook",
    "S3Address",
    "S3CatalogReader",
    "S3CatalogStore",
    "S3Credentials",
    "S3Location",
    "S3Settings",
    "S3StorageError",
    "StorageAccessError",
    "StorageConflictError",
    "StorageCorruptError",
    "StorageError",
    "StorageLocation",
    "StorageTooLargeError",
    "StorageType",
    "StoredCatalog",
    "WriteResult",
    "decode",
    "encode",
    "sha256_hash",
    "split_chunks",
]
