"""The MCP server catalogue model, shared by the operator and the registry API server.

Typical use::

    from mcpreg.catalog import CatalogError, compile_filter, parse_catalog

    try:
        catalog = parse_catalog(raw_bytes, format="auto")           # ToolHive or upstream, detected
        catalog = catalog.filtered(compile_filter(spec_filter))     # {names: {...}, tags: {...}}
    except CatalogError as exc:
        for issue in exc.issues:                                    # entry, path, message
            print(issue.render())          # servers.fetch.transport: must be one of …

    reading = read_catalog(raw_bytes)   # per-entry quarantine: bad entries left out and named
    reading.catalog, reading.skipped, reading.warnings, reading.total_entries
    catalog.upstream_view()     # [{"server": server.json, "_meta": {official: status, isLatest, …}}]
    catalog.toolhive_view()     # {"version", "last_updated", "servers", "remote_servers", …}
    catalog.canonical_json()    # bytes; parse_catalog(catalog.canonical_json()) gives it back
    catalog.content_hash        # "sha256:…", independent of key order and whitespace

    from mcpreg.catalog.served import read_served, render_served
    data = render_served(catalog)   # what storage holds: the API's bodies, index facts, ToolHive document
    read_served(data).entries       # read back without validation (the API server)

Everything a `Catalog` returns is shared and precomputed: treat it as read-only.
"""

from mcpreg.catalog.convert import (
    DEFAULT_NAMESPACE,
    NotExpressible,
    ToolHiveForm,
    server_json_to_toolhive,
    toolhive_key,
    toolhive_to_server_json,
    version_from_image,
)
from mcpreg.catalog.detect import CatalogFormat, DetectedFormat, FormatChoice, detect_format
from mcpreg.catalog.errors import CatalogError, CatalogIssue, Severity, format_path
from mcpreg.catalog.filtering import CatalogFilter, FilterSpec, PatternLists, compile_filter, make_filter
from mcpreg.catalog.hashing import canonical_json, content_hash, hash_value
from mcpreg.catalog.jsondoc import decode_json_document
from mcpreg.catalog.limits import DEFAULT_LIMITS, CatalogLimits
from mcpreg.catalog.model import (
    Catalog,
    CatalogEntry,
    CatalogGroup,
    EntryStatus,
    RegistryInfo,
    ToolHiveOmission,
    UpstreamDocumentShape,
)
from mcpreg.catalog.parse import catalog_from_document, parse_catalog, read_catalog_file, validate_catalog
from mcpreg.catalog.quarantine import CatalogReading, SkippedEntry, read_catalog
from mcpreg.catalog.upstream_models import (
    MCPREG_NAMESPACE,
    OFFICIAL_META_KEY,
    PUBLISHER_PROVIDED_KEY,
    SERVER_SCHEMA_URL,
    STACKLOK_NAMESPACE,
)
from mcpreg.catalog.versions import is_semver, latest_index, semver_key

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_NAMESPACE",
    "MCPREG_NAMESPACE",
    "OFFICIAL_META_KEY",
    "PUBLISHER_PROVIDED_KEY",
    "SERVER_SCHEMA_URL",
    "STACKLOK_NAMESPACE",
    "Catalog",
    "CatalogEntry",
    "CatalogError",
    "CatalogFilter",
    "CatalogFormat",
    "CatalogGroup",
    "CatalogIssue",
    "CatalogLimits",
    "CatalogReading",
    "DetectedFormat",
    "EntryStatus",
    "FilterSpec",
    "FormatChoice",
    "NotExpressible",
    "PatternLists",
    "RegistryInfo",
    "Severity",
    "SkippedEntry",
    "ToolHiveForm",
    "ToolHiveOmission",
    "UpstreamDocumentShape",
    "canonical_json",
    "catalog_from_document",
    "compile_filter",
    "content_hash",
    "decode_json_document",
    "detect_format",
    "format_path",
    "hash_value",
    "is_semver",
    "latest_index",
    "make_filter",
    "parse_catalog",
    "read_catalog",
    "read_catalog_file",
    "semver_key",
    "server_json_to_toolhive",
    "toolhive_key",
    "toolhive_to_server_json",
    "validate_catalog",
    "version_from_image",
]
