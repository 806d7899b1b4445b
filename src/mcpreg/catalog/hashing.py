"""Canonical JSON and the content hash derived from it.

Two documents that mean the same thing must hash the same, so that an unchanged catalogue does not
rewrite storage or reload the API just because someone re-indented the file or reordered keys.
Canonical form: keys sorted, no insignificant whitespace, UTF-8 without escaping non-ASCII, and no
NaN/Infinity (the decoder refuses them anyway). Array order is meaningful and kept.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

HASH_PREFIX = "sha256:"


def canonical_json(value: Any) -> bytes:
    """`value` as canonical JSON bytes."""
    # check_circular=False: decoded JSON cannot contain cycles, and skipping the check is faster.
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        check_circular=False,
    ).encode("utf-8")


def content_hash(canonical: bytes) -> str:
    """`sha256:<hex>` of canonical JSON bytes."""
    return HASH_PREFIX + hashlib.sha256(canonical).hexdigest()


def hash_value(value: Any) -> str:
    """`sha256:<hex>` of `value`'s canonical JSON."""
    return content_hash(canonical_json(value))
