"""The extra documents stored with each S3 generation, next to the catalogue.

`GET /api/v1/registry` of a large catalogue redirects to a presigned download of the generation's
ToolHive document rather than sending it through the API pod; the writer stores what this returns.
"""

from __future__ import annotations

from mcpreg.storage.model import StoredCatalog

TOOLHIVE = "toolhive"


def extra_documents(stored: StoredCatalog) -> dict[str, bytes]:
    """The documents of generation `stored` by name (runs in a worker thread): the ToolHive registry
    document as `GET /api/v1/registry` serves it, taken from the served document as it is (nothing is
    parsed or validated again; only data in an older format is parsed to render it)."""
    from mcpreg.catalog.served import toolhive_document

    return {TOOLHIVE: toolhive_document(stored.data)}
