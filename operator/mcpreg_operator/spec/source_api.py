"""``spec.source.api``: mirror an MCP Registry API v0.1 endpoint (issue 15): the official registry,
another instance of this product, any server speaking the same list API."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from mcpreg_operator.spec.base import JsonInt, ResourceModel
from mcpreg_operator.spec.durations import DurationSetting
from mcpreg_operator.spec.source_url import (
    PrivateCaBundle,
    RedirectPolicy,
    Redirects,
    SourceAuth,
    max_bytes_field,
    url_field,
)

DEFAULT_MAX_PAGES = 1000  # 100,000 entries at 100 a page: twice the catalogue's entry limit
MAX_PAGES_LIMIT = 10_000
_WALK_TIMEOUT = DurationSetting("timeout", default="5m", min_s=1, max_s=1800)
_FULL_RESYNC = DurationSetting("fullResyncInterval", default="1h", min_s=60, max_s=7 * 24 * 3600)


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
    auth: SourceAuth = None
    ca_bundle: PrivateCaBundle = None
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
    max_bytes: JsonInt = max_bytes_field(
        "Most bytes one walk may read, all pages together,", "Past it the sync fails with SourceTooLarge."
    )
    timeout: str = _WALK_TIMEOUT.field("Time allowed for one walk, every page included")
    full_resync_interval: str = _FULL_RESYNC.field(
        "How often the whole list is walked again; between full walks only what changed is asked "
        "(updated_since). A full walk also follows every operator start. Entries removed upstream "
        "without a trace (not marked deleted) disappear at the next full walk"
    )
    redirects: Redirects = RedirectPolicy.SAME_HOST

    @property
    def timeout_seconds(self) -> float:
        return _WALK_TIMEOUT.seconds(self.timeout)

    @property
    def full_resync_seconds(self) -> float:
        return _FULL_RESYNC.seconds(self.full_resync_interval)
