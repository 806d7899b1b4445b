"""One sync of one MCPRegistry: source → detect/parse/validate → filter → store.

The pipeline knows nothing about Kopf or status; it returns a `SyncOutcome` or raises `SyncFailure`
naming the stage that failed (which becomes a condition) and a message a person can act on. Blocking
work (git, parsing, hashing) runs in worker threads so the event loop keeps serving other registries.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from mcpreg.catalog import Catalog, CatalogError, CatalogLimits, compile_filter, parse_catalog
from mcpreg.storage.interfaces import CatalogStore
from mcpreg.storage.model import StoredCatalog
from mcpreg_operator.sources.errors import SourceError
from mcpreg_operator.spec import MCPRegistrySpec

# How many validation problems a status message lists before "and N more".
MAX_ISSUES_IN_MESSAGE = 5


class SyncStage(StrEnum):
    """Where a sync failed; each maps to the condition that turns False."""

    SPEC = "Spec"
    SOURCE = "Source"
    DATA = "Data"
    STORAGE = "Storage"


class SyncFailure(Exception):
    def __init__(self, stage: SyncStage, reason: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class SourceSnapshot:
    """What a source returned: its revision and, unless the change check short-circuited, the bytes."""

    revision: str
    data: bytes | None
    description: str  # "git https://… branch 'main'" — for messages


class CatalogSource(Protocol):
    """A place catalogue data comes from."""

    def describe(self) -> str: ...

    async def revision(self) -> str:
        """The source's current revision, as cheaply as possible (no download when avoidable)."""
        ...

    async def fetch(self) -> SourceSnapshot:
        """The data at the current revision."""
        ...


@dataclass(frozen=True)
class SyncOutcome:
    revision: str
    content_hash: str
    server_count: int
    written: bool  # storage was rewritten (the data changed)
    fetched: bool  # False when the cheap change check found nothing new
    storage_location: dict[str, Any]
    source: str


def data_spec_hash(spec: MCPRegistrySpec) -> str:
    """Hash of the spec fields that shape the stored data; a change to any of them forces a full sync."""
    relevant = spec.model_dump(mode="json", by_alias=True, include={"source", "filter", "storage"})
    canonical = json.dumps(relevant, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def render_issues(error: CatalogError) -> str:
    issues = [issue.render() for issue in error.issues[:MAX_ISSUES_IN_MESSAGE]]
    more = len(error.issues) - len(issues)
    text = "; ".join(issues)
    return f"{text} (and {more} more)" if more > 0 else text


@dataclass(frozen=True)
class LastGood:
    """What status says is stored now: lets an unchanged source skip the download."""

    revision: str | None
    content_hash: str | None
    spec_hash: str | None


def _parse_and_filter(data: bytes, spec: MCPRegistrySpec, limits: CatalogLimits) -> Catalog:
    catalog = parse_catalog(data, format=spec.source.format.value, limits=limits)
    raw_filter = (
        spec.filter.model_dump(mode="json", by_alias=True, exclude_none=True) if spec.filter else None
    )
    return catalog.filtered(compile_filter(raw_filter, path="spec.filter"))


async def run_sync(
    *,
    spec: MCPRegistrySpec,
    source: CatalogSource,
    store: CatalogStore,
    last_good: LastGood,
    executor: Executor | None = None,
    limits: CatalogLimits | None = None,
    on_fetch: Callable[[], Awaitable[None]] | None = None,
) -> SyncOutcome:
    """Run the pipeline once. Storage is touched only when the content hash changed."""
    loop = asyncio.get_running_loop()
    spec_hash = data_spec_hash(spec)
    try:
        revision = await source.revision()
    except SourceError as exc:
        raise SyncFailure(SyncStage.SOURCE, exc.kind.value, exc.message) from None

    if (
        revision == last_good.revision
        and spec_hash == last_good.spec_hash
        and last_good.content_hash is not None
    ):
        # Cheap path: same revision, same spec. Only confirm that storage still holds that data
        # (someone may have deleted it), without downloading anything.
        try:
            stored_hash = await store.current_hash()
        except Exception as exc:
            # S3 errors carry a specific reason (BucketMissing, AccessDenied, EndpointUnreachable, …).
            reason = getattr(exc, "reason", "StorageUnavailable")
            raise SyncFailure(SyncStage.STORAGE, reason, f"cannot read storage: {exc}") from None
        if stored_hash == last_good.content_hash:
            location = await store.location()
            assert location is not None  # a stored hash implies a location
            return SyncOutcome(
                revision=revision,
                content_hash=stored_hash,
                server_count=-1,
                written=False,
                fetched=False,
                storage_location=location.to_status(),
                source=source.describe(),
            )

    if on_fetch is not None:
        await on_fetch()
    try:
        snapshot = await source.fetch()
    except SourceError as exc:
        raise SyncFailure(SyncStage.SOURCE, exc.kind.value, exc.message) from None
    assert snapshot.data is not None

    try:
        catalog = await loop.run_in_executor(
            executor, _parse_and_filter, snapshot.data, spec, limits or CatalogLimits()
        )
    except CatalogError as exc:
        raise SyncFailure(
            SyncStage.DATA,
            "InvalidData",
            f"{snapshot.description} at {snapshot.revision[:12]}: {render_issues(exc)}",
        ) from None

    stored = await loop.run_in_executor(
        executor, lambda: StoredCatalog.from_catalog(catalog, revision=snapshot.revision)
    )
    try:
        result = await store.write(stored)
    except Exception as exc:  # storage backends raise their own errors; status must name them
        reason = getattr(exc, "reason", "StorageFailed")
        raise SyncFailure(SyncStage.STORAGE, reason, f"cannot store the catalogue: {exc}") from None
    return SyncOutcome(
        revision=snapshot.revision,
        content_hash=catalog.content_hash,
        server_count=catalog.server_count,
        written=result.written,
        fetched=True,
        storage_location=result.location.to_status(),
        source=snapshot.description,
    )
