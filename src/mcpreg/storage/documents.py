"""The extra documents stored with each S3 generation, next to the catalogue.

`GET /api/v1/registry` of a large catalogue redirects to a presigned download of the generation's
ToolHive document rather than sending it through the API pod; the writer stores what this returns.
"""

from __future__ import annotations

import json

from mcpreg.storage.model import StoredCatalog

TOOLHIVE = "toolhive"


def extra_documents(stored: StoredCatalog) -> dict[str, bytes]:
    """The documents of generation `stored` by name (runs in a worker thread). For now the ToolHive
    registry document, rendered from the catalogue as `GET /api/v1/registry` serves it."""
    from mcpreg.catalog import parse_catalog

    view = parse_catalog(stored.data, format="auto").toolhive_view()
    return {TOOLHIVE: json.dumps(view, separators=(",", ":"), ensure_ascii=True).encode("ascii")}
