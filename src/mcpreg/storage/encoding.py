"""How catalogue bytes become stored bytes and back: the encoding choice, compression and chunking.

Pure functions, no I/O. Callers run `encode`/`decode` in a worker thread for large catalogues.

Choice, given the most one stored object may hold (`max_object_bytes`):
1. fits as-is (and under `identity_max_bytes` when set) and is UTF-8 text (when the backend needs
   text, as a ConfigMap's `data` does) → stored as-is (`identity`, readable with kubectl);
2. otherwise gzip; fits → one compressed object;
3. otherwise the compressed bytes are cut into `ceil(size / max_object_bytes)` chunks.
Compression is deterministic (no timestamp, no file name in the gzip header), so the same catalogue
always yields the same chunks, and content-addressed chunk names can be reused by a retried write.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass, field

from mcpreg.storage.errors import StorageCorruptError, StorageTooLargeError
from mcpreg.storage.model import Encoding

KIB = 1024
MIB = 1024 * KIB
# A ConfigMap holds at most 1 MiB of keys and values together; 900 KiB leaves room for the key,
# and keeps requests well under etcd's default 1.5 MiB limit.
DEFAULT_MAX_OBJECT_BYTES = 900 * KIB
# 64 parts of 900 KiB of gzip is far beyond the catalogue library's 50 MiB input limit.
DEFAULT_MAX_PARTS = 64
DEFAULT_MAX_DECODED_BYTES = 256 * MIB
# Measured on the 10,000-server catalogue (18.5 MB): level 4 gives 3.28 MB in ~0.38 s, level 6
# (zlib's default) 3.08 MB in ~0.75 s, level 1 3.93 MB in ~0.25 s. Level 4 keeps the part count of
# level 6 at half its time; decompression costs the same (~0.12 s) whatever the level.
DEFAULT_COMPRESS_LEVEL = 4


@dataclass(frozen=True, slots=True)
class EncodingLimits:
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES
    max_parts: int = DEFAULT_MAX_PARTS
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
    compress_level: int = DEFAULT_COMPRESS_LEVEL
    identity_max_bytes: int | None = None  # stored as-is up to this size (None: max_object_bytes)
    identity_requires_text: bool = True

    def __post_init__(self) -> None:
        if self.max_object_bytes < 1 or self.max_parts < 1 or self.max_decoded_bytes < 1:
            raise ValueError("storage limits must be positive")
        if not 0 <= self.compress_level <= 9:
            raise ValueError("compress_level must be between 0 and 9")


DEFAULT_LIMITS = EncodingLimits()


@dataclass(frozen=True, slots=True)
class EncodedCatalog:
    """Stored form of one catalogue: `payload` encoded with `encoding`, cut into `chunks`.

    One chunk means the payload fits one object; `text` says it may go into a ConfigMap's `data`
    (identity-encoded UTF-8) rather than `binaryData`.
    """

    encoding: Encoding
    payload: bytes = field(repr=False)
    chunks: tuple[bytes, ...] = field(repr=False)
    decoded_size: int
    text: bool

    @property
    def split(self) -> bool:
        return len(self.chunks) > 1

    @property
    def stored_size(self) -> int:
        return len(self.payload)


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def compress(data: bytes, level: int = DEFAULT_COMPRESS_LEVEL) -> bytes:
    """Deterministic gzip: mtime 0 and no file name, so equal input gives equal output."""
    return gzip.compress(data, compresslevel=level, mtime=0)


def split_chunks(payload: bytes, chunk_size: int) -> tuple[bytes, ...]:
    """`payload` cut into as few chunks of at most `chunk_size` as possible, balanced in size.

    Balanced (not full chunks then a remainder) so that no part is a sliver; an empty payload is one
    empty chunk.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    count = max(1, math.ceil(len(payload) / chunk_size))
    base, extra = divmod(len(payload), count)
    chunks: list[bytes] = []
    start = 0
    for index in range(count):
        end = start + base + (1 if index < extra else 0)
        chunks.append(payload[start:end])
        start = end
    return tuple(chunks)


def encode(data: bytes, limits: EncodingLimits = DEFAULT_LIMITS) -> EncodedCatalog:
    """Choose the stored form of `data` (see the module docstring)."""
    if len(data) > limits.max_decoded_bytes:
        raise StorageTooLargeError(
            f"the catalogue is {len(data)} bytes; the storage limit is {limits.max_decoded_bytes} bytes"
        )
    identity_max = limits.max_object_bytes
    if limits.identity_max_bytes is not None:
        identity_max = min(identity_max, limits.identity_max_bytes)
    if len(data) <= identity_max and (not limits.identity_requires_text or is_utf8(data)):
        return EncodedCatalog("identity", data, (data,), len(data), text=limits.identity_requires_text)
    packed = compress(data, limits.compress_level)
    chunks = split_chunks(packed, limits.max_object_bytes)
    if len(chunks) > limits.max_parts:
        raise StorageTooLargeError(
            f"the catalogue is {len(data)} bytes ({len(packed)} compressed), which needs "
            f"{len(chunks)} parts of at most {limits.max_object_bytes} bytes; the limit is "
            f"{limits.max_parts} parts"
        )
    return EncodedCatalog("gzip", packed, chunks, len(data), text=False)


def decode(
    payload: bytes, encoding: Encoding, expected_size: int, max_bytes: int = DEFAULT_MAX_DECODED_BYTES
) -> bytes:
    """Stored bytes back to catalogue bytes, refusing anything but exactly `expected_size` bytes.

    Decompression stops one byte past the expected size, so a hostile or damaged payload cannot
    inflate into gigabytes before the size check.
    """
    if expected_size > max_bytes:
        raise StorageCorruptError(
            f"the stored catalogue claims {expected_size} bytes, over the {max_bytes}-byte limit"
        )
    if encoding == "identity":
        data = payload
    else:
        inflater = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        try:
            data = inflater.decompress(payload, expected_size + 1)
        except zlib.error as exc:
            raise StorageCorruptError(f"the stored catalogue is not valid gzip: {exc}") from exc
        if len(data) > expected_size:
            raise StorageCorruptError(f"the stored catalogue decodes to more than {expected_size} bytes")
        if not inflater.eof:
            raise StorageCorruptError("the stored catalogue's gzip stream is truncated")
        if inflater.unused_data:
            raise StorageCorruptError("the stored catalogue has bytes after its gzip stream")
    if len(data) != expected_size:
        raise StorageCorruptError(
            f"the stored catalogue decodes to {len(data)} bytes, expected {expected_size}"
        )
    return data
