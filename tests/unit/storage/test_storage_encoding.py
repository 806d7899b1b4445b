"""The encoding choice, chunking and decoding of stored catalogues (pure logic)."""

from __future__ import annotations

import gzip
import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpreg.storage import (
    EncodingLimits,
    StorageCorruptError,
    StorageTooLargeError,
    decode,
    encode,
    split_chunks,
)
from mcpreg.storage.encoding import DEFAULT_MAX_OBJECT_BYTES, compress

KIB = 1024


def catalogue_json(servers: int) -> bytes:
    entries = [
        {"name": f"io.example/server-{i}", "description": f"Server number {i} " * 4} for i in range(servers)
    ]
    return json.dumps({"servers": entries}, sort_keys=True, separators=(",", ":")).encode()


def test_default_object_limit_leaves_room_under_the_configmap_limit() -> None:
    assert DEFAULT_MAX_OBJECT_BYTES == 900 * KIB < 1024 * KIB


def test_small_text_is_stored_as_is() -> None:
    data = catalogue_json(10)
    encoded = encode(data)
    assert (encoded.encoding, encoded.text, encoded.split) == ("identity", True, False)
    assert encoded.payload == data and encoded.chunks == (data,)
    assert encoded.decoded_size == encoded.stored_size == len(data)


def test_exactly_the_limit_is_still_stored_as_is() -> None:
    data = b"x" * 100
    assert encode(data, EncodingLimits(max_object_bytes=100)).encoding == "identity"
    assert encode(data + b"x", EncodingLimits(max_object_bytes=100)).encoding == "gzip"


def test_small_binary_is_compressed_because_configmap_data_must_be_text() -> None:
    data = b"\xff\xfe not utf-8"
    encoded = encode(data)
    assert (encoded.encoding, encoded.text, encoded.split) == ("gzip", False, False)
    assert decode(encoded.payload, "gzip", len(data)) == data


def test_too_big_as_is_but_fits_compressed() -> None:
    data = catalogue_json(20_000)
    assert len(data) > DEFAULT_MAX_OBJECT_BYTES
    encoded = encode(data)
    assert (encoded.encoding, encoded.split) == ("gzip", False)
    assert encoded.stored_size < DEFAULT_MAX_OBJECT_BYTES
    assert gzip.decompress(encoded.payload) == data


def test_too_big_compressed_is_split_into_balanced_chunks() -> None:
    data = os.urandom(250 * KIB)  # incompressible
    encoded = encode(data, EncodingLimits(max_object_bytes=64 * KIB))
    assert encoded.encoding == "gzip" and encoded.split
    assert len(encoded.chunks) == 4  # ceil(~250 KiB / 64 KiB)
    assert b"".join(encoded.chunks) == encoded.payload
    sizes = [len(chunk) for chunk in encoded.chunks]
    assert max(sizes) <= 64 * KIB and max(sizes) - min(sizes) <= 1
    assert decode(b"".join(encoded.chunks), "gzip", len(data)) == data


def test_too_many_parts_is_refused_with_the_figures() -> None:
    with pytest.raises(StorageTooLargeError, match=r"needs 4 parts .* limit is 3 parts"):
        encode(os.urandom(200 * KIB), EncodingLimits(max_object_bytes=64 * KIB, max_parts=3))


def test_over_the_decoded_limit_is_refused_before_compressing() -> None:
    with pytest.raises(StorageTooLargeError, match="storage limit"):
        encode(b"x" * 101, EncodingLimits(max_decoded_bytes=100))


def test_compression_is_deterministic() -> None:
    # Equal input, equal stored bytes: a retried write finds its content-addressed parts unchanged.
    data = catalogue_json(5000)
    assert compress(data) == compress(bytes(data))
    assert (
        encode(data, EncodingLimits(max_object_bytes=16 * KIB)).chunks
        == encode(data, EncodingLimits(max_object_bytes=16 * KIB)).chunks
    )


@given(payload=st.binary(max_size=5000), chunk_size=st.integers(min_value=1, max_value=700))
def test_split_chunks_properties(payload: bytes, chunk_size: int) -> None:
    chunks = split_chunks(payload, chunk_size)
    assert b"".join(chunks) == payload
    assert all(len(chunk) <= chunk_size for chunk in chunks)
    assert len(chunks) == max(1, -(-len(payload) // chunk_size))  # as few as possible
    assert max(map(len, chunks)) - min(map(len, chunks)) <= 1


def test_split_chunks_refuses_a_zero_size() -> None:
    with pytest.raises(ValueError):
        split_chunks(b"abc", 0)


@given(data=st.binary(max_size=3000), limit=st.integers(min_value=200, max_value=2000))
def test_encode_decode_round_trip(data: bytes, limit: int) -> None:
    encoded = encode(data, EncodingLimits(max_object_bytes=limit, max_parts=1000))
    assert decode(b"".join(encoded.chunks), encoded.encoding, encoded.decoded_size) == data


def test_decode_refuses_a_wrong_size() -> None:
    with pytest.raises(StorageCorruptError, match="decodes to 3 bytes, expected 4"):
        decode(b"abc", "identity", 4)
    with pytest.raises(StorageCorruptError, match="more than 2 bytes"):
        decode(compress(b"abc"), "gzip", 2)


def test_decode_stops_a_decompression_bomb_early() -> None:
    bomb = compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB of zeros in ~64 KiB
    with pytest.raises(StorageCorruptError, match="more than 1000 bytes"):
        decode(bomb, "gzip", 1000)
    with pytest.raises(StorageCorruptError, match="limit"):
        decode(bomb, "gzip", 64 * 1024 * 1024, max_bytes=1024 * 1024)


def test_decode_refuses_truncated_garbled_and_trailing_gzip() -> None:
    packed = compress(catalogue_json(100))
    size = len(catalogue_json(100))
    with pytest.raises(StorageCorruptError, match="truncated"):
        decode(packed[: len(packed) // 2], "gzip", size)
    with pytest.raises(StorageCorruptError, match="not valid gzip"):
        decode(b"not gzip at all", "gzip", size)
    with pytest.raises(StorageCorruptError, match="after its gzip stream"):
        decode(packed + b"junk", "gzip", size)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        EncodingLimits(max_object_bytes=0)
    with pytest.raises(ValueError):
        EncodingLimits(compress_level=10)
