"""The values crossing the storage interfaces, and the helpers around them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from mcpreg.catalog import parse_catalog
from mcpreg.storage import Backoff, S3Location, StorageLocation, StoredCatalog, sha256_hash
from mcpreg.storage.concurrency import bounded_gather

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"


def test_create_hashes_the_data() -> None:
    stored = StoredCatalog.create(b"{}", revision="abc", server_count=0)
    assert (
        stored.content_hash
        == sha256_hash(b"{}")
        == ("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
    )
    assert stored.verify() and stored.size == 2
    assert stored.stored_at.tzinfo is not None


def test_data_stays_out_of_repr() -> None:
    stored = StoredCatalog.create(b'{"secret-looking": "x"}' * 1000, revision="abc", server_count=0)
    assert "secret-looking" not in repr(stored) and len(repr(stored)) < 300


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"content_hash": "abc"}, "sha256"),
        ({"stored_at": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"server_count": -1}, "negative"),
    ],
)
def test_invalid_values_are_refused(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "data": b"{}",
        "content_hash": sha256_hash(b"{}"),
        "revision": "r",
        "stored_at": datetime.now(UTC),
        "server_count": 0,
    }
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        StoredCatalog(**fields)  # type: ignore[arg-type]


def test_verify_detects_a_wrong_hash() -> None:
    stored = StoredCatalog(b"{}", sha256_hash(b"[]"), "r", datetime.now(UTC), 0)
    assert not stored.verify()


def test_from_catalog_uses_the_canonical_form() -> None:
    catalog = parse_catalog((SHARED / "toolhive" / "registry-2026-02-18.json").read_bytes())
    stored = StoredCatalog.from_catalog(catalog, revision="9f2c")
    assert stored.data == catalog.canonical_json()
    assert stored.content_hash == catalog.content_hash and stored.verify()
    assert stored.server_count == catalog.server_count == 102


def test_location_to_status() -> None:
    assert StorageLocation(type="configmap", config_maps=("r-data", "r-data-abc-0")).to_status() == {
        "type": "configmap",
        "configMaps": ["r-data", "r-data-abc-0"],
    }
    assert StorageLocation(
        type="s3", s3=S3Location(bucket="b", prefix="p", key="p/ns/r/pointer")
    ).to_status() == {
        "type": "s3",
        "s3": {"bucket": "b", "prefix": "p", "key": "p/ns/r/pointer"},
    }


def test_backoff_grows_to_its_cap() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    jittered = Backoff(initial=1.0, maximum=8.0, jitter=0.2)
    assert all(0.8 <= jittered.delay(1) <= 1.2 for _ in range(100))


async def test_bounded_gather_limits_concurrency_and_keeps_order() -> None:
    running = peak = 0

    async def job(value: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return value * 2

    results = await bounded_gather([partial(job, v) for v in range(10)], 3)
    assert results == [v * 2 for v in range(10)] and peak == 3


async def test_bounded_gather_cancels_the_rest_on_failure() -> None:
    finished: list[int] = []

    async def slow(value: int) -> int:
        await asyncio.sleep(0.5)
        finished.append(value)
        return value

    async def failing() -> int:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        jobs: list[Callable[[], Awaitable[int]]] = [failing, partial(slow, 1), partial(slow, 2)]
        await bounded_gather(jobs, 3)
    await asyncio.sleep(0.6)
    assert finished == []
