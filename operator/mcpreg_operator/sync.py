"""One sync of one MCPRegistry: source → detect/parse/validate → quarantine → filter → store.

The pipeline knows nothing about Kopf or status; it returns a `SyncOutcome` or raises `SyncFailure`
naming the stage that failed (which becomes a condition) and a message a person can act on. Blocking
work stays off the event loop: git in worker threads, parsing a large catalogue in a child process
(`parsing`), so the operator keeps serving its other registries meanwhile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from mcpreg.catalog import DEFAULT_LIMITS, CatalogError, CatalogLimits
from mcpreg.catalog.served import SERVED_FORMAT, served_documents
from mcpreg.kube import KubeError
from mcpreg.signing import Signer, sign_documents
from mcpreg.storage.errors import StorageError
from mcpreg.storage.interfaces import CatalogStore, PublishHook
from mcpreg.storage.model import StoredCatalog, WriteResult
from mcpreg_operator.merge import Conflict
from mcpreg_operator.parsing import ParsingFailed, prepare_stored
from mcpreg_operator.quarantine import INVALID_DATA, EntryReport, refusal, render_issue_list
from mcpreg_operator.sources.errors import SourceError
from mcpreg_operator.spec.filter import Filter
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.status import SourceState
from mcpreg_operator.sync_metrics import SyncStep, timed_step


class SyncStage(StrEnum):
    """Where a sync failed; each maps to the condition that turns False."""

    SPEC = "Spec"
    SOURCE = "Source"
    DATA = "Data"
    STORAGE = "Storage"
    INTERNAL = "Internal"  # a bug: no part of the registry is to blame


class SyncFailure(Exception):
    def __init__(self, stage: SyncStage, reason: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.reason = reason
        self.message = message


def failure_from_error(error: BaseException, stage: SyncStage, doing: str = "") -> SyncFailure:
    """The one place where an error raised during a sync becomes a condition reason and a message.

    Errors the code anticipates carry their own reason: storage errors (S3's BucketMissing,
    AccessDenied, EndpointUnreachable, …; the ConfigMap store's conflicts), Kubernetes API errors
    (`Kubernetes<Reason>`: KubernetesForbidden, KubernetesTooManyRequests, KubernetesUnavailable, …).
    Anything else is a bug, reported as InternalError naming only the exception's type (its text may
    hold data not meant for status) and logged in full by the caller.
    """
    prefix = f"{doing}: " if doing else ""
    if isinstance(error, SyncFailure):
        return error
    if isinstance(error, SourceError):
        return SyncFailure(SyncStage.SOURCE, error.kind.value, prefix + error.message)
    if isinstance(error, KubeError):
        return SyncFailure(stage, _reason("Kubernetes" + error.reason), f"{prefix}{error}")
    if isinstance(error, StorageError):
        named = type(error).__name__.removesuffix("Error")  # StorageConflict, StorageCorrupt, …
        reason = getattr(error, "reason", None) or ("StorageFailed" if type(error) is StorageError else named)
        return SyncFailure(SyncStage.STORAGE, _reason(str(reason)), f"{prefix}{error}")
    detail = f"internal error: {type(error).__name__} (see the operator log)"
    return SyncFailure(SyncStage.INTERNAL, "InternalError", prefix + detail)


def _reason(text: str) -> str:
    """A condition reason is CamelCase letters and digits: keep those of `text`."""
    cleaned = "".join(ch for ch in text if ch.isalnum())
    return cleaned if cleaned[:1].isalpha() else "Error" + cleaned


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
    # Entries skipped as invalid and warnings; None when nothing was read (the cheap path).
    entries: EntryReport | None = None
    signing_key_id: str | None = None  # the key that signed the stored generation
    # spec.sources only (see multi_sync): each source's part, and the names several sources have
    # (None: not known in this sync, the cheap path).
    sources: tuple[SourceReport, ...] = ()
    conflicts: ConflictReport | None = None


@dataclass(frozen=True)
class SourceReport:
    """One source of `spec.sources` after a sync."""

    name: str
    type: str
    description: str
    state: SourceState
    revision: str | None  # of the entries served from it
    entries: int | None  # entries (versions) served from it; None: not known (nothing was read)
    conflicts: int | None  # of its names, those an earlier source serves; None: not known
    failure: SyncFailure | None = None


@dataclass(frozen=True)
class ConflictReport:
    count: int
    hash: str | None
    items: tuple[Conflict, ...]


def data_spec_hash(spec: MCPRegistrySpec) -> str:
    """Hash of what shapes the stored data: the spec's source, filter, validation, storage and signing,
    and the format the data is stored in. A change to any of them forces a full sync; so the first pass
    of an operator that stores a new format rewrites data an older one stored, even when the source is
    unchanged, and switching `validation.onInvalidEntry` judges the current data again at once."""
    relevant = spec.model_dump(
        mode="json", by_alias=True, include={"source", "filter", "validation", "storage"}
    )
    if spec.sources is not None:  # likewise: the hash of every one-source registry stays what it was
        relevant["sources"] = [source.model_dump(mode="json", by_alias=True) for source in spec.sources]
    if spec.signing is not None:  # only when set: the hash of every unsigned registry stays what it was
        relevant["signing"] = spec.signing.model_dump(mode="json", by_alias=True)
    relevant["storedFormat"] = SERVED_FORMAT
    canonical = json.dumps(relevant, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def render_issues(error: CatalogError) -> str:
    return render_issue_list(error.issues, len(error.issues))


@dataclass(frozen=True)
class LastGood:
    """What status says is stored now: lets an unchanged source skip the download."""

    revision: str | None
    content_hash: str | None
    spec_hash: str | None
    signing_key_id: str | None = None

    def matches(self, revision: str, spec_hash: str, signer: Signer | None) -> bool:
        """Whether status describes data of this revision and spec, signed (or not) as now: then only
        storage needs checking, nothing downloading."""
        return (
            revision == self.revision
            and spec_hash == self.spec_hash
            and self.content_hash is not None
            # A rotated key re-signs the stored generation: the full path, which rewrites the manifest.
            and self.signing_key_id == (signer.key_id if signer is not None else None)
        )


def filter_spec(filter_: Filter | None) -> dict[str, Any] | None:
    """A filter of the spec as the catalogue library's filter mapping (None: keep everything)."""
    return filter_.model_dump(mode="json", by_alias=True, exclude_none=True) if filter_ else None


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """What a sync pass is given besides its inputs, the same for one registry's single and merged
    syncs: where CPU work runs, the catalogue limits, the hooks around fetching and publishing (status
    says Syncing before a download; the operator checks its lease before a write), and the signer."""

    executor: Executor | None = None
    limits: CatalogLimits = DEFAULT_LIMITS
    on_fetch: Callable[[], Awaitable[None]] | None = None
    before_publish: PublishHook | None = None
    signer: Signer | None = None


DEFAULT_OPTIONS = SyncOptions()


async def run_sync(
    *,
    spec: MCPRegistrySpec,
    source: CatalogSource,
    store: CatalogStore,
    last_good: LastGood,
    options: SyncOptions = DEFAULT_OPTIONS,
) -> SyncOutcome:
    """Run the pipeline once. Storage is touched only when the content hash (or the signing key)
    changed. With `signer`, the documents served whole are signed and stored with the generation."""
    spec_hash = data_spec_hash(spec)
    try:
        with timed_step(SyncStep.REVISION):
            revision = await source.revision()
    except SourceError as exc:
        raise SyncFailure(SyncStage.SOURCE, exc.kind.value, exc.message) from None

    if last_good.matches(revision, spec_hash, options.signer):
        # Cheap path: same revision, same spec. Only confirm that storage still holds that data
        # (someone may have deleted it), without downloading anything.
        unchanged = await unchanged_outcome(store, last_good, revision=revision, source=source.describe())
        if unchanged is not None:
            return unchanged

    if options.on_fetch is not None:
        await options.on_fetch()
    try:
        with timed_step(SyncStep.FETCH):
            snapshot = await source.fetch()
    except SourceError as exc:
        raise SyncFailure(SyncStage.SOURCE, exc.kind.value, exc.message) from None
    assert snapshot.data is not None

    # Parse (leaving invalid entries out), filter, render the served document and hash it: in a child
    # process for large catalogues, so the event loop keeps serving (see parsing); `executor` runs the
    # small ones. Then spec.validation decides whether what is left may be stored (see quarantine).
    where = f"{snapshot.description} at {snapshot.revision[:12]}"
    try:
        with timed_step(SyncStep.PREPARE):
            stored, entries = await prepare_stored(
                snapshot.data,
                format=spec.single_source.format.value,
                filter_spec=filter_spec(spec.filter),
                limits=options.limits,
                revision=snapshot.revision,
                executor=options.executor,
            )
    except CatalogError as exc:  # the document as a whole, or the filter: whatever spec.validation says
        raise SyncFailure(SyncStage.DATA, INVALID_DATA, f"{where}: {render_issues(exc)}") from None
    except ParsingFailed as exc:
        # Not a verdict on the data (often the memory limit): Synced turns False, the retry backs off.
        raise SyncFailure(SyncStage.STORAGE, "ParsingFailed", f"{where}: {exc}") from None
    refused = refusal(entries, spec.validation)
    if refused is not None:  # Reject, or the guard: nothing is stored, the last good data stays served
        raise SyncFailure(SyncStage.DATA, refused.reason, f"{where}: {refused.message}")
    stored, result = await sign_and_store(stored, store, options)
    return stored_outcome(stored, result, source=snapshot.description, entries=entries, signer=options.signer)


async def unchanged_outcome(
    store: CatalogStore, last_good: LastGood, *, revision: str, source: str, **extra: Any
) -> SyncOutcome | None:
    """The outcome of a sync that found nothing new, once storage confirms it still holds what status
    says (someone may have deleted it); None when it does not, and the data must be written again."""
    try:
        with timed_step(SyncStep.STORE):
            stored_hash = await store.current_hash()
    except Exception as exc:
        raise failure_from_error(exc, SyncStage.STORAGE, "cannot read storage") from None
    if stored_hash is None or stored_hash != last_good.content_hash:
        return None
    location = await store.location()
    assert location is not None  # a stored hash implies a location
    return SyncOutcome(
        revision=revision,
        content_hash=stored_hash,
        server_count=-1,
        written=False,
        fetched=False,
        storage_location=location.to_status(),
        source=source,
        signing_key_id=last_good.signing_key_id,
        **extra,
    )


def stored_outcome(
    stored: StoredCatalog,
    result: WriteResult,
    *,
    source: str,
    entries: EntryReport,
    signer: Signer | None,
    **extra: Any,
) -> SyncOutcome:
    """The outcome of a sync that read its source(s) and stored (or confirmed) `stored`."""
    return SyncOutcome(
        revision=stored.revision,
        content_hash=stored.content_hash,
        server_count=stored.server_count,
        written=result.written,
        fetched=True,
        storage_location=result.location.to_status(),
        source=source,
        entries=entries,
        signing_key_id=signer.key_id if signer is not None else None,
        **extra,
    )


async def sign_and_store(
    stored: StoredCatalog,
    store: CatalogStore,
    options: SyncOptions,
) -> tuple[StoredCatalog, WriteResult]:
    """Sign `stored` (with the options' signer) and write it: the last steps of every sync that read
    its sources."""
    signer = options.signer
    if signer is not None:
        try:
            with timed_step(SyncStep.SIGN):
                stored = await asyncio.to_thread(sign_stored, stored, signer)
        except Exception as exc:  # a KMS signer's failure, or a served document that cannot be split
            raise SyncFailure(
                SyncStage.STORAGE, "SigningFailed", f"cannot sign the catalogue: {exc}"
            ) from None
    try:
        with timed_step(SyncStep.STORE):
            result = await store.write(stored, before_publish=options.before_publish)
    except Exception as exc:  # storage backends raise their own errors; status must name them
        raise failure_from_error(exc, SyncStage.STORAGE, "cannot store the catalogue") from None
    return stored, result


def sign_stored(stored: StoredCatalog, signer: Signer) -> StoredCatalog:
    """`stored` with the signatures of the documents the API serves whole (CPU work: off the loop)."""
    documents = served_documents(stored.data, stored.content_hash)
    return dataclasses.replace(stored, signatures=sign_documents(signer, documents))
