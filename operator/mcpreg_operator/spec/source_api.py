"""``spec.source.api``: mirror an MCP Registry API v0.1 endpoint (issue 15): the official registry,
another instance of this product, any server speaking the same list API."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from mcpreg.catalog.limits import DEFAULT_MAX_BYTES
from mcpreg_operator.spec.base import JsonInt, ResourceModel
from mcpreg_operator.spec.source_url import (
    CaBundle,
    RedirectPolicy,
    UrlAuth,
    bounded_seconds,
    duration_field,
    url_field,
)

DEFAULT_MAX_PAGES = 1000  # 100,000 entries at 100 a page: twice the catalogue's entry limit
MAX_PAGES_LIMIT = 10_000
DEFAULT_WALK_TIMEOUT = "5m"
MIN_WALK_TIMEOUT_SECONDS = 1
MAX_WALK_TIMEOUT_SECONDS = 1800
DEFAULT_FULL_RESYNC = "1h"
MIN_FULL_RESYNC_SECONDS = 60
MAX_FULL_RESYNC_SECONDS = 7 * 24 * 3600


#: Which versions of each server are mirrored.
ApiVersions = StrEnum("ApiVersions", {"LATEST": "latest", "ALL": "all"})


class ApiSource(ResourceModel):
    """A registry's `/v0.1/servers` list, walked page by page and refreshed with `updated_since`."""

    url: str = url_field(
        "url",
        (
            "Base URL of the registry, such as https://registry.modelcontextprotocol.io: requests go to "
            "<url>/v0.1/servers (a URL already ending in /v0.1 is used as it is). https://, or http:// "
            "only where the operator allows it (allowInsecureHttpSources). No credentials in the URL: "
            "use auth.secretRef. Link-local addresses are refused."
        ),
        required=True,
    )
    versions: ApiVersions = Field(
        default=ApiVersions.LATEST,
        description=(
            "latest (default): the latest version of each server (the list is asked with "
            "version=latest). all: every version the registry lists."
        ),
    )
    auth: UrlAuth | None = Field(
        default=None, description="Credentials sent with every request; omit for a public registry."
    )
    ca_bundle: CaBundle | None = Field(
        default=None,
        description=(
            "CA certificates for a registry whose certificate a private CA issued. When set, only these "
            "CAs are trusted; omit to trust the system's CAs."
        ),
    )
    max_pages: JsonInt = Field(
        default=DEFAULT_MAX_PAGES,
        ge=1,
        le=MAX_PAGES_LIMIT,
        description=(
            f"Most requests one walk may make (pages of 100 entries, and look-ups of a server whose latest "
            f"version was deleted); default {DEFAULT_MAX_PAGES}. Past it the sync fails with "
            "SourceTooLarge and the last good catalogue stays served."
        ),
    )
    max_bytes: JsonInt = Field(
        default=DEFAULT_MAX_BYTES,
        ge=1,
        le=DEFAULT_MAX_BYTES,
        description=(
            f"Most bytes one walk may read, all pages together, after decompression (default and maximum "
            f"{DEFAULT_MAX_BYTES // (1024 * 1024)} MiB, the catalogue limit). Past it the sync fails with "
            "SourceTooLarge."
        ),
    )
    timeout: str = duration_field(
        "timeout",
        DEFAULT_WALK_TIMEOUT,
        MIN_WALK_TIMEOUT_SECONDS,
        MAX_WALK_TIMEOUT_SECONDS,
        "Time allowed for one walk, every page included",
    )
    full_resync_interval: str = duration_field(
        "fullResyncInterval",
        DEFAULT_FULL_RESYNC,
        MIN_FULL_RESYNC_SECONDS,
        MAX_FULL_RESYNC_SECONDS,
        (
            "How often the whole list is walked again; between full walks only what changed is asked "
            "(updated_since). A full walk also follows every operator start. Entries removed upstream "
            "without a trace (not marked deleted) disappear at the next full walk"
        ),
    )
    redirects: RedirectPolicy = Field(
        default=RedirectPolicy.SAME_HOST,
        description=(
            "SameHost (default): follow redirects on url's host only. AnyHost: to other hosts too "
            "(credentials are not sent there). Refuse: a redirect fails the sync."
        ),
    )

    @property
    def timeout_seconds(self) -> float:
        return bounded_seconds(self.timeout, MIN_WALK_TIMEOUT_SECONDS, MAX_WALK_TIMEOUT_SECONDS)

    @property
    def full_resync_seconds(self) -> float:
        return bounded_seconds(self.full_resync_interval, MIN_FULL_RESYNC_SECONDS, MAX_FULL_RESYNC_SECONDS)
