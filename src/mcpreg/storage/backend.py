"""The primitives a storage backend implements; the generation protocol (`writer`, `reader`) is built
on them once, for every backend.

A backend stores one registry's generations as a manifest object (the ConfigMap head, the S3 pointer)
and blobs (part ConfigMaps, S3 objects). It knows names, wire encodings and its service's errors; it
knows nothing of when to skip a write, in which order to publish, what to prune or how to verify.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from mcpreg.storage.encoding import EncodedCatalog, EncodingLimits
from mcpreg.storage.errors import StorageError
from mcpreg.storage.manifest import BlobRef, Manifest
from mcpreg.storage.model import StorageLocation


class BlobUnavailable(StorageError):
    """A blob the manifest lists cannot be read now (gone, or not yet readable): the writer may have
    moved on, or the reader's permissions are catching up. The reader re-reads the manifest."""


@dataclass(frozen=True, slots=True)
class Head:
    """The manifest object as read: the manifest (None when the object exists but is not a valid
    manifest, `invalid` saying why: the next write replaces it), the version a compare-and-publish
    must match, the blobs that travel inside it (`inline` manifests, full reads only), and why a
    writer must not replace it (`refused`: e.g. a ConfigMap of that name the operator did not create)."""

    manifest: Manifest | None
    version: str
    inline: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    refused: str | None = None
    invalid: str | None = None


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A blob found by listing: its name, the generation (content hash) it belongs to (None: not a
    generation's object, never pruned), when it was created, and what deleting it exactly needs."""

    name: str
    generation: str | None
    created: datetime | None = None
    uid: str | None = None


@dataclass(frozen=True, slots=True)
class Retention:
    """What pruning keeps besides the published generation: up to `generations` generations in all
    (newest first), the replaced one among them when `keep_replaced`; objects of no kept generation
    younger than `grace` are left alone (a concurrent writer may be about to publish them), except
    those of the replaced generation, which no manifest can reference any more."""

    generations: int
    keep_replaced: bool
    grace: timedelta | None = None

    def __post_init__(self) -> None:
        if self.generations < 1:
            raise ValueError("keep_generations must be at least 1")


class Backend(Protocol):
    """Storage primitives for one registry. Every method is a coroutine on the caller's loop (or
    cheap and pure); blocking work runs in worker threads inside."""

    limits: EncodingLimits
    retention: Retention
    concurrency: int

    @property
    def where(self) -> str:
        """The manifest object, for messages and logs (never credentials)."""
        ...

    async def get_manifest(self, *, payload: bool = False) -> Head | None:
        """The manifest object, or None when there is none. With `payload`, inline blobs too."""
        ...

    async def put_manifest(
        self, manifest: Manifest, version: str | None, inline: Mapping[str, bytes]
    ) -> None:
        """Publish `manifest` in one request, only if the object is still at `version` (None: only if
        there is none). Raises `StorageConflictError` when another writer got there first."""
        ...

    def blob_refs(self, content_hash: str, encoded: EncodedCatalog) -> tuple[tuple[BlobRef, ...], bool]:
        """The names of a generation's blobs (and whether they go inline in the manifest object)."""
        ...

    def document_ref(self, content_hash: str, name: str, data: bytes) -> BlobRef:
        """The blob of a generation's extra document `name`."""
        ...

    async def put_blob(self, manifest: Manifest, ref: BlobRef, data: bytes) -> None:
        """Store a blob of `manifest`, reusing an identical one already there."""
        ...

    async def get_blob(self, manifest: Manifest, ref: BlobRef) -> bytes:
        """A blob's bytes (checked by the reader). Raises `BlobUnavailable` when it cannot be read."""
        ...

    async def missing(self, manifest: Manifest) -> list[str]:
        """Names of objects `manifest` needs (`Manifest.stored_objects`) that are not there. Cheap."""
        ...

    async def list_objects(self) -> list[StoredObject]:
        """Every blob stored for this registry (not the manifest object)."""
        ...

    async def delete_objects(self, objects: Sequence[StoredObject]) -> list[str]:
        """Delete `objects` (absent ones are fine); the names deleted."""
        ...

    async def delete_manifest(self) -> None:
        """Delete the manifest object (absent is fine)."""
        ...

    def location(self, manifest: Manifest | None) -> StorageLocation:
        """`status.storageRef` of the generation `manifest` (None: of where one would be)."""
        ...

    def announcements(self) -> AsyncGenerator[str | None, None]:
        """Signs that the published manifest changed: its `generation_id` (content hash and signing
        key) when the backend learns it cheaply, None for "look now". The first one is None (a fresh
        look). Runs until closed; transient failures the backend can resume from are handled inside,
        others raised."""
        ...


#: The backend a `GenerationReader` or `GenerationWriter` runs over, so that a backend's own reader
#: and writer see its own type (its settings, its names) without re-declaring it.
BackendT = TypeVar("BackendT", bound=Backend)
