"""`source.type: api`: mirror an MCP Registry API v0.1 endpoint (`<url>/v0.1/servers`).

A full walk follows `metadata.nextCursor` over pages of 100; between full walks (every
`fullResyncInterval`, and the first pass after an operator start) `revision()` asks only for what
changed since the watermark, the latest `updatedAt` seen (`updated_since`, with If-None-Match when the
registry gave an ETag for that same query). An unchanged registry therefore costs one request: an empty
page, or a 304. The merge rules are in `api_mirror`.

The mirror of each registry (entries, watermark, time of the last full walk) lives in a process-wide
cache keyed by (namespace, registry, url, versions), bounded so that deleted registries do not pile
up; `revision()` keeps the assembled document for `fetch()` of the same pass. A walk that fails (an
HTTP error, a limit) changes nothing in the cache: the next pass asks the same again, and the sync
pipeline keeps serving the last good catalogue meanwhile.

Why the watermark is exact rather than overlapping: `updated_since` is strict, so an unchanged
registry answers an empty page. An entry committed upstream later than another with an earlier
`updatedAt` (two transactions racing) could be passed over by an incremental refresh; the next full
walk brings it.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import aiohttp
from yarl import URL

from mcpreg.catalog.limits import describe_bytes
from mcpreg.kube import KubeClient
from mcpreg.lru import LruCache
from mcpreg_operator.sources.api_mirror import (
    EntryKey,
    MirroredEntry,
    NotARegistryAnswer,
    Page,
    WalkError,
    apply_changes,
    apply_lookup,
    assemble,
    full_walk_entries,
    list_query,
    next_cursor,
    read_detail,
    read_page,
    revision_of,
    watermark,
)
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.sources.url import load_auth_headers, trust_context
from mcpreg_operator.sources.url_http import (
    Answer,
    Request,
    UrlPolicy,
    check_url,
    client_session,
    display,
    get,
)
from mcpreg_operator.spec.source_api import ApiSource
from mcpreg_operator.sync import SourceSnapshot

FIELD = "source.api"
API_PREFIX = "/v0.1"
_CACHE_SIZE = 64  # registries mirrored by one operator; each holds its entries' text


@dataclass
class MirrorState:
    """One registry's mirror between passes."""

    entries: dict[EntryKey, MirroredEntry]
    mark: tuple[datetime, str] | None  # the watermark: latest updatedAt seen, and its text
    full_walk_at: float  # monotonic time of the last full walk
    revision: str
    # The ETag of the last answer to a refresh's first page, and that page's query string.
    etag: tuple[str, str] | None = None


MIRRORS: LruCache[tuple[str, str, str, str], MirrorState] = LruCache(_CACHE_SIZE)


def base_url(url: str) -> URL:
    """The registry's root: the spec's URL without a trailing slash or a trailing /v0.1."""
    parsed = URL(url.rstrip("/"), encoded=True)
    if parsed.path.endswith(API_PREFIX):
        parsed = parsed.with_path(parsed.path[: -len(API_PREFIX)])
    return parsed


def not_a_registry(url: URL, detail: str) -> SourceError:
    return SourceError(
        SourceErrorKind.INVALID_REFERENCE,
        f"{display(url)} is not an MCP Registry API v0.1 endpoint: {detail}",
    )


@dataclass
class _Walk:
    """The requests of one pass: one session, one credential set, the page and byte budgets."""

    spec: ApiSource
    policy: UrlPolicy
    session: aiohttp.ClientSession
    credentials: dict[str, str]
    origin: str
    base: URL
    requests: int = 0
    bytes_read: int = 0

    async def _get(self, url: URL, conditional: dict[str, str]) -> Answer:
        if self.requests >= self.spec.max_pages:
            raise SourceError(
                SourceErrorKind.TOO_LARGE,
                f"{display(self.base)}: a walk needs more than {self.spec.max_pages} requests "
                f"({FIELD}.maxPages)",
            )
        budget = self.spec.max_bytes - self.bytes_read
        request = Request(
            url=url,
            what="the registry's list",
            max_bytes=max(budget, 0),
            timeout_s=self.spec.timeout_seconds,
            redirects=self.spec.redirects,
            credentials=self.credentials,
            credentials_origin=self.origin,
            conditional=conditional,
            limit_field=f"{FIELD}.maxBytes",
            field_prefix=FIELD,
        )
        self.requests += 1
        try:
            answer = await get(self.session, request, self.policy)
        except SourceError as exc:
            if exc.kind is SourceErrorKind.TOO_LARGE:
                raise SourceError(
                    SourceErrorKind.TOO_LARGE,
                    f"{display(self.base)}: the pages of one walk are larger together than "
                    f"{describe_bytes(self.spec.max_bytes)} ({FIELD}.maxBytes)",
                ) from None
            raise
        self.bytes_read += len(answer.body or b"")
        return answer

    async def page(self, query: dict[str, str], conditional: dict[str, str] | None = None) -> Answer:
        url = (self.base / "v0.1" / "servers").with_query(query)
        try:
            return await self._get(url, conditional or {})
        except SourceError as exc:
            if exc.kind is SourceErrorKind.NOT_FOUND:
                raise not_a_registry(self.base, exc.message) from None
            raise

    def read(self, answer: Answer) -> Page:
        assert answer.body is not None
        try:
            return read_page(answer.body)
        except NotARegistryAnswer as exc:
            raise not_a_registry(self.base, f"GET {display(answer.url)}: {exc}") from None

    async def pages(self, query: dict[str, str], first: Answer | None = None) -> list[Page]:
        """Every page of `query`, from its first answer (`first`, when already asked)."""
        answer = first or await self.page(query)
        read: list[Page] = []
        seen: set[str] = set()
        while True:
            page = self.read(answer)
            read.append(page)
            try:
                cursor = next_cursor(page, seen)
            except WalkError as exc:
                raise SourceError(SourceErrorKind.UNREACHABLE, f"{display(self.base)}: {exc}") from None
            if cursor is None:
                return read
            answer = await self.page({**query, "cursor": cursor})

    async def latest_of(self, name: str) -> tuple[EntryKey, MirroredEntry] | None:
        """GET /v0.1/servers/{name}/versions/latest: None when the registry has no such version."""
        path = (
            f"{self.base.path.rstrip('/')}/v0.1/servers/{urllib.parse.quote(name, safe='')}/versions/latest"
        )
        url = self.base.with_path(path, encoded=True)
        try:
            answer = await self._get(url, {})
        except SourceError as exc:
            if exc.kind is SourceErrorKind.NOT_FOUND:
                return None
            raise
        assert answer.body is not None
        try:
            return read_detail(answer.body)
        except NotARegistryAnswer as exc:
            raise not_a_registry(self.base, f"GET {display(url)}: {exc}") from None


@dataclass
class ApiCatalogSource:
    spec: ApiSource
    namespace: str
    registry: str
    kube: KubeClient
    policy: UrlPolicy = field(default_factory=UrlPolicy.from_environment)
    cache: LruCache[tuple[str, str, str, str], MirrorState] = field(default_factory=lambda: MIRRORS)
    clock: Callable[[], float] = time.monotonic
    # Requests made by this source object (one pass): for tests and benchmarks.
    requests: int = field(default=0, init=False)
    # The document assembled by revision(), for fetch() of the same pass.
    _pending: tuple[str, bytes] | None = field(default=None, init=False, repr=False)

    @property
    def _base(self) -> URL:
        return base_url(self.spec.url)

    def describe(self) -> str:
        return f"MCP Registry API {display(self._base)}"

    def _key(self) -> tuple[str, str, str, str]:
        return (self.namespace, self.registry, self.spec.url, self.spec.versions.value)

    async def _run(self, state: MirrorState | None) -> tuple[MirrorState, bool]:
        """One pass's requests: a full walk when due, a refresh otherwise; (new state, changed)."""
        check_url(self._base, self.policy, field=f"{FIELD}.url")
        credentials, origin = await load_auth_headers(self.kube, self.namespace, self.spec.auth, FIELD)
        context = await trust_context(self.kube, self.namespace, self.spec.ca_bundle, FIELD)
        async with client_session(context) as session:
            walk = _Walk(self.spec, self.policy, session, credentials, origin, self._base)
            try:
                async with asyncio.timeout(self.spec.timeout_seconds):
                    if state is None or state.mark is None or self._full_walk_due(state):
                        return await self._full_walk(walk), True
                    return await self._refresh(walk, state)
            except TimeoutError:
                raise SourceError(
                    SourceErrorKind.UNREACHABLE,
                    f"{self.describe()}: the walk did not finish within {self.spec.timeout} "
                    f"({FIELD}.timeout; {walk.requests} requests made)",
                ) from None
            finally:
                self.requests += walk.requests

    def _full_walk_due(self, state: MirrorState) -> bool:
        return self.clock() - state.full_walk_at >= self.spec.full_resync_seconds

    async def _full_walk(self, walk: _Walk) -> MirrorState:
        started = self.clock()
        pages = await walk.pages(list_query(self.spec.versions, cursor=None, since=None))
        items = [item for page in pages for item in page.entries]
        entries = full_walk_entries(items, self.spec.versions)
        return MirrorState(entries, watermark(None, items), started, revision="")

    async def _refresh(self, walk: _Walk, state: MirrorState) -> tuple[MirrorState, bool]:
        assert state.mark is not None
        query = list_query(self.spec.versions, cursor=None, since=state.mark[1])
        query_text = URL.build(query=query).query_string
        conditional = {}
        if state.etag is not None and state.etag[0] == query_text:
            conditional = {"If-None-Match": state.etag[1]}
        first = await walk.page(query, conditional)
        etag = (query_text, first.etag) if first.etag else None
        if first.status == 304:
            return replace(state, etag=etag or state.etag), False
        pages = await walk.pages(query, first)
        changes = [item for page in pages for item in page.entries]
        if not changes:
            return replace(state, etag=etag), False
        entries = dict(state.entries)  # the cached state stays as it was if a look-up fails
        for name in sorted(apply_changes(entries, changes, self.spec.versions)):
            apply_lookup(entries, await walk.latest_of(name))
        mark = watermark(state.mark, changes)
        return MirrorState(entries, mark, state.full_walk_at, revision=state.revision), True

    async def revision(self) -> str:
        key = self._key()
        state, changed = await self._run(self.cache.get(key))
        if changed or not state.revision:
            document = await asyncio.to_thread(assemble, state.entries)
            state.revision = revision_of(document)
            self._pending = (state.revision, document)
        self.cache.put(key, state)
        return state.revision

    async def fetch(self) -> SourceSnapshot:
        if self._pending is None:
            state = self.cache.get(self._key())
            if state is None:  # fetch() without revision() first: walk now
                await self.revision()
            else:  # revision() found nothing new, yet the sync needs the data (a spec change)
                document = await asyncio.to_thread(assemble, state.entries)
                self._pending = (state.revision, document)
        assert self._pending is not None
        revision, document = self._pending
        self._pending = None
        return SourceSnapshot(revision=revision, data=document, description=self.describe())
