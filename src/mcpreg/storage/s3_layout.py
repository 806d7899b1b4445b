"""The S3 layout: keys, the pointer document, and which generations to prune. Pure, no I/O.

    <prefix>/<namespace>/<name>/                    the registry's prefix (status.storageRef.s3.prefix)
      current.json                                  the pointer: names the published generation;
                                                    written last, in one PUT, so readers switch atomically
      <hex>/catalog.json | catalog.json.gz          a generation, keyed by its content hash (sha256 hex):
      <hex>/toolhive.json                           immutable; the ToolHive rendering (optional), for
                                                    presigned downloads of /api/v1/registry

A reader reads the pointer, then the catalogue object it names, and accepts the bytes only when they
hash to the pointer's content hash. Writers upload a generation completely before they touch the
pointer, so no reader can see a partial catalogue; old generations are pruned after the pointer moved,
keeping a few so readers that read the pointer a moment ago still find their generation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mcpreg.storage.errors import StorageCorruptError
from mcpreg.storage.model import HASH_PREFIX, Encoding, is_content_hash

POINTER_NAME = "current.json"
CATALOG_NAME = {"identity": "catalog.json", "gzip": "catalog.json.gz"}
TOOLHIVE_NAME = "toolhive.json"
POINTER_FORMAT = "mcpregistry.dev/s3-catalog-pointer/v1"
MAX_POINTER_BYTES = 64 * 1024
DEFAULT_KEEP_GENERATIONS = 3

_HEX_RE = re.compile(r"[0-9a-f]{64}")


def registry_prefix(prefix: str, namespace: str, name: str) -> str:
    """`<prefix>/<namespace>/<name>` (no trailing slash; the prefix may be empty)."""
    if not namespace or not name or "/" in namespace or "/" in name:
        raise ValueError("namespace and name must be non-empty and contain no '/'")
    return "/".join(part for part in (prefix.strip("/"), namespace, name) if part)


def hash_hex(content_hash: str) -> str:
    if not is_content_hash(content_hash):
        raise ValueError(f"not a content hash: {content_hash!r}")
    return content_hash[len(HASH_PREFIX) :]


def pointer_key(reg_prefix: str) -> str:
    return f"{reg_prefix}/{POINTER_NAME}"


def generation_prefix(reg_prefix: str, content_hash: str) -> str:
    return f"{reg_prefix}/{hash_hex(content_hash)}/"


def catalog_key(reg_prefix: str, content_hash: str, encoding: Encoding) -> str:
    return generation_prefix(reg_prefix, content_hash) + CATALOG_NAME[encoding]


def toolhive_key(reg_prefix: str, content_hash: str) -> str:
    return generation_prefix(reg_prefix, content_hash) + TOOLHIVE_NAME


def generation_of(reg_prefix: str, key: str) -> str | None:
    """The hash hex of the generation `key` belongs to, or None for any other key."""
    head = reg_prefix + "/"
    if not key.startswith(head):
        return None
    hexpart, sep, rest = key[len(head) :].partition("/")
    return hexpart if sep and rest and _HEX_RE.fullmatch(hexpart) else None


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ObjectRef:
    key: str
    size: int  # bytes as stored


@dataclass(frozen=True, slots=True)
class Pointer:
    """The content of `current.json`."""

    content_hash: str
    revision: str
    stored_at: datetime
    server_count: int
    encoding: Encoding
    size: int  # decoded catalogue bytes
    catalog: ObjectRef
    toolhive: ObjectRef | None = None

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "format": POINTER_FORMAT,
            "contentHash": self.content_hash,
            "revision": self.revision,
            "storedAt": _rfc3339(self.stored_at),
            "serverCount": self.server_count,
            "encoding": self.encoding,
            "size": self.size,
            "catalog": {"key": self.catalog.key, "size": self.catalog.size},
        }
        if self.toolhive is not None:
            doc["toolhive"] = {"key": self.toolhive.key, "size": self.toolhive.size}
        return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes, reg_prefix: str, where: str) -> Pointer:
        """Read and check a pointer; it may only name objects of its own generation directory (so a
        damaged or hostile pointer cannot send readers elsewhere in the bucket)."""

        def bad(why: str) -> StorageCorruptError:
            return StorageCorruptError(f"{where}: invalid catalogue pointer: {why}")

        if len(data) > MAX_POINTER_BYTES:
            raise bad(f"{len(data)} bytes, more than a pointer can be")
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad(f"not JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != POINTER_FORMAT:
            raise bad(f"format is not {POINTER_FORMAT}")
        try:
            content_hash = str(doc["contentHash"])
            encoding = doc["encoding"]
            if encoding not in CATALOG_NAME or not is_content_hash(content_hash):
                raise bad("bad contentHash or encoding")
            catalog = _ref(doc["catalog"])
            toolhive = _ref(doc["toolhive"]) if doc.get("toolhive") is not None else None
            stored_at = datetime.fromisoformat(str(doc["storedAt"]).replace("Z", "+00:00"))
            pointer = cls(
                content_hash=content_hash,
                revision=str(doc["revision"]),
                stored_at=stored_at if stored_at.tzinfo else stored_at.replace(tzinfo=UTC),
                server_count=_nonneg(doc["serverCount"]),
                encoding=encoding,
                size=_nonneg(doc["size"]),
                catalog=catalog,
                toolhive=toolhive,
            )
        except StorageCorruptError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"missing or malformed field ({type(exc).__name__}: {exc})") from None
        if pointer.catalog.key != catalog_key(reg_prefix, content_hash, encoding):
            raise bad("its catalogue key is not in its own generation")
        if pointer.toolhive is not None and pointer.toolhive.key != toolhive_key(reg_prefix, content_hash):
            raise bad("its ToolHive key is not in its own generation")
        return pointer


def _nonneg(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a non-negative integer")
    return value


def _ref(value: Any) -> ObjectRef:
    if not isinstance(value, Mapping):
        raise TypeError("an object reference must be an object")
    return ObjectRef(key=str(value["key"]), size=_nonneg(value["size"]))


@dataclass(frozen=True, slots=True)
class ListedObject:
    key: str
    last_modified: datetime


def prunable(
    reg_prefix: str, objects: Iterable[ListedObject], *, keep_hashes: Iterable[str], keep: int
) -> list[str]:
    """Keys of generations to delete: all but the `keep` newest generations, never those of
    `keep_hashes` (the published one, and the one just replaced). Keys that are not generation
    objects (the pointer, anything a person put there) are never chosen."""
    protected = {hash_hex(h) for h in keep_hashes}
    newest: dict[str, datetime] = {}
    keys: dict[str, list[str]] = {}
    for obj in objects:
        gen = generation_of(reg_prefix, obj.key)
        if gen is None:
            continue
        keys.setdefault(gen, []).append(obj.key)
        if gen not in newest or obj.last_modified > newest[gen]:
            newest[gen] = obj.last_modified
    others = sorted((g for g in newest if g not in protected), key=lambda g: newest[g], reverse=True)
    room = max(0, keep - len(protected & set(newest)))
    doomed = others[room:]
    return sorted(key for gen in doomed for key in keys[gen])
