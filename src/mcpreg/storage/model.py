"""The values that cross the storage interfaces: a stored catalogue, where it lives, what a write did."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from mcpreg.signing import GenerationSignatures

if TYPE_CHECKING:
    from mcpreg.catalog import Catalog

HASH_PREFIX = "sha256:"
_HASH_RE = re.compile(r"sha256:[0-9a-f]{64}")

StorageType = Literal["configmap", "s3"]
Encoding = Literal["identity", "gzip"]


def sha256_hash(data: bytes) -> str:
    """`sha256:<hex>` of `data`: the form of every content hash in the project."""
    return HASH_PREFIX + hashlib.sha256(data).hexdigest()


def generation_id(content_hash: str, signing_key_id: str | None) -> str:
    """What tells generations apart for readers: the content hash, and the signing key when signed (a
    rotated key republishes the same data under a new id, so the API serves the new signatures)."""
    return content_hash if signing_key_id is None else f"{content_hash}@{signing_key_id}"


def is_content_hash(value: str) -> bool:
    return _HASH_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class StoredCatalog:
    """One stored generation: the bytes the operator produced, and facts about it.

    Storage treats `data` as opaque. The operator stores the served document (`mcpreg.catalog.served`);
    operators before it stored the canonical catalogue JSON (`from_catalog`), which readers still load.
    `content_hash` is `sha256:<hex>` of `data`. Construction checks its form but does not re-hash
    `data` (that costs tens of milliseconds on a large catalogue); readers verify it with `verify()`
    where it matters.
    """

    data: bytes = field(repr=False)
    content_hash: str
    revision: str
    stored_at: datetime
    server_count: int
    # The operator's signatures of the documents served whole, and the key (None: unsigned).
    signatures: GenerationSignatures | None = None

    @property
    def generation_id(self) -> str:
        return generation_id(self.content_hash, self.signatures.key_id if self.signatures else None)

    def __post_init__(self) -> None:
        if not is_content_hash(self.content_hash):
            raise ValueError(f"content_hash must be sha256:<64 hex digits>, got {self.content_hash!r}")
        if self.stored_at.tzinfo is None:
            raise ValueError("stored_at must be timezone-aware")
        if self.server_count < 0:
            raise ValueError("server_count must not be negative")

    @classmethod
    def create(
        cls, data: bytes, *, revision: str, server_count: int, stored_at: datetime | None = None
    ) -> StoredCatalog:
        """A generation of `data`, hashing it; `stored_at` defaults to now (UTC)."""
        return cls(
            data=data,
            content_hash=sha256_hash(data),
            revision=revision,
            stored_at=stored_at or datetime.now(UTC),
            server_count=server_count,
        )

    @classmethod
    def from_catalog(
        cls, catalog: Catalog, *, revision: str, stored_at: datetime | None = None
    ) -> StoredCatalog:
        """A generation of a parsed catalogue as older operators stored it: its canonical JSON, hash
        and server count (the upgrade path's tests, and `mcpreg serve --file` style raw data)."""
        return cls(
            data=catalog.canonical_json(),
            content_hash=catalog.content_hash,
            revision=revision,
            stored_at=stored_at or datetime.now(UTC),
            server_count=catalog.server_count,
        )

    @property
    def size(self) -> int:
        return len(self.data)

    def verify(self) -> bool:
        """True when `content_hash` is the hash of `data`."""
        return sha256_hash(self.data) == self.content_hash


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where an S3 backend keeps a registry's catalogue (filled in by that backend)."""

    bucket: str
    prefix: str = ""  # the registry's own prefix: everything stored for it is under `<prefix>/`
    key: str = ""  # the pointer object
    endpoint: str = ""  # empty: AWS; recorded so a later cleanup finds the objects
    region: str = ""


@dataclass(frozen=True, slots=True)
class StorageLocation:
    """Where the current catalogue is: the content of `status.storageRef`.

    For ConfigMaps, `config_maps` is every object a reader needs, head first, then the parts in order.
    """

    type: StorageType
    config_maps: tuple[str, ...] = ()
    s3: S3Location | None = None

    def to_status(self) -> dict[str, Any]:
        """The `status.storageRef` object (camelCase, as the CRD declares it)."""
        ref: dict[str, Any] = {"type": self.type}
        if self.type == "configmap":
            ref["configMaps"] = list(self.config_maps)
        if self.s3 is not None:
            s3: dict[str, Any] = {"bucket": self.s3.bucket}
            if self.s3.prefix:
                s3["prefix"] = self.s3.prefix
            if self.s3.key:
                s3["key"] = self.s3.key
            if self.s3.endpoint:
                s3["endpoint"] = self.s3.endpoint
            if self.s3.region:
                s3["region"] = self.s3.region
            ref["s3"] = s3
        return ref


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What `CatalogStore.write` did.

    `written` is False when the stored hash already equalled the new one and nothing was touched.
    `stored_bytes` is the size of what is stored (after compression); `encoding` how it is encoded.
    """

    location: StorageLocation
    written: bool
    content_hash: str
    previous_hash: str | None
    encoding: Encoding
    stored_bytes: int
    removed: tuple[str, ...] = ()
