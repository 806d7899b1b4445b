"""What schemathesis cannot know about our server, supplied to its generated cases (the fuzz test's and
the official contract test's hooks call `shape_positive_case`).

A cursor is only valid when this server issued it, so schema-valid cases get cursors of ours built from
the generated text; and random names are almost never in the catalogue, so half the schema-valid cases
ask for a real server name, reaching the found path too.
"""

from __future__ import annotations

import functools
import zlib
from typing import Any

from integration.test_api_server import LATEST
from mcpreg_api.pagination import encode_cursor


@functools.cache
def _real_names() -> list[str]:
    if not LATEST.is_file():
        return []
    from mcpreg.catalog import parse_catalog

    return sorted(parse_catalog(LATEST.read_bytes()).names())


def is_positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and not meta.generation.mode.is_negative


def shape_positive_case(case: Any) -> None:
    """Our cursors and (for half the cases) real server names in a schema-valid case."""
    query = case.query
    if query and isinstance(query.get("cursor"), str):
        query["cursor"] = encode_cursor((query["cursor"], ""))
    params = case.path_parameters
    if params and isinstance(params.get("serverName"), str):
        names = _real_names()
        pick = zlib.crc32(params["serverName"].encode("utf-8", "surrogatepass"))
        if names and pick % 2 == 0:
            params["serverName"] = names[pick % len(names)]
            if "version" in params and pick % 4 == 0:
                params["version"] = "latest"
