"""What the API does with each kind of stored data: a served document is read as it is (in a thread, no
parse); canonical catalogue JSON from an older operator is parsed and served, with a warning; a served
document it cannot read is refused while the last good generation stays served."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from api_testdata import Served, catalogue_bytes, edge_catalogue, entry

from mcpreg.catalog import parse_catalog
from mcpreg.catalog.served import SERVED_FORMAT, render_served
from mcpreg.storage import StoredCatalog
from mcpreg_api import builder
from mcpreg_api.app import STATE
from mcpreg_api.builder import build_off_loop


def served_generation(entries: list[dict[str, Any]], revision: str = "r") -> StoredCatalog:
    return StoredCatalog.create(
        render_served(parse_catalog(catalogue_bytes(entries))), revision=revision, server_count=0
    )


async def readiness(served: Served) -> dict[str, Any]:
    response = await served.client.get("/readiness")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_a_served_document_is_served_as_stored(edge: Served) -> None:
    generation = served_generation([entry("io.github.acme/new", "1.0.0")], "served-1")
    assert await edge.loader.apply(generation) is True
    catalog = (await readiness(edge))["catalog"]
    assert catalog["storedFormat"] == "served" and catalog["contentHash"] == generation.content_hash
    listing = await (await edge.client.get("/v0.1/servers")).json()
    assert [s["server"]["name"] for s in listing["servers"]] == ["io.github.acme/new"]


async def test_a_catalogue_file_is_parsed_by_the_api(edge: Served) -> None:
    assert (await readiness(edge))["catalog"]["storedFormat"] == "catalogue"


async def test_an_older_operators_canonical_json_is_parsed_and_served(
    edge: Served, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = parse_catalog(catalogue_bytes([entry("io.github.acme/old", "1.0.0")]))
    legacy = StoredCatalog.from_catalog(catalog, revision="legacy")
    with caplog.at_level(logging.WARNING, logger="mcpreg_api.builder"):
        assert await edge.loader.apply(legacy) is True
    assert "canonical catalogue JSON" in caplog.text and legacy.content_hash in caplog.text
    body = await readiness(edge)
    assert body["catalog"]["storedFormat"] == "catalogue" and "detail" not in body
    listing = await (await edge.client.get("/v0.1/servers")).json()
    assert [s["server"]["name"] for s in listing["servers"]] == ["io.github.acme/old"]


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda data: data.replace(SERVED_FORMAT.encode(), b"mcpreg.served/v9", 1), "'mcpreg.served/v9'"),
        (lambda data: data[: len(data) // 2], "does not end with a newline"),
        (
            lambda data: data.replace(b'"active",true,', b'"active",1,', 1),
            "wrong types",
        ),
    ],
)
async def test_an_unreadable_served_document_keeps_the_last_good_one(
    edge: Served, damage: Any, said: str
) -> None:
    before = edge.app[STATE].snapshot
    assert before is not None
    good = served_generation(edge_catalogue())
    bad = StoredCatalog.create(damage(good.data), revision="bad", server_count=0)
    assert await edge.loader.apply(bad) is False
    assert edge.app[STATE].snapshot is before
    body = await readiness(edge)
    assert "serving the last good catalogue" in body["detail"] and said in body["detail"]
    assert bad.content_hash in body["detail"]
    metrics = await (await edge.client.get("/metrics")).text()
    assert 'mcpreg_api_catalog_reloads_total{result="invalid"} 1.0' in metrics


async def test_a_served_document_is_read_without_a_child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_child(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("a served document needs no child process")

    monkeypatch.setattr(builder, "render_in_child", no_child)
    generation = served_generation(edge_catalogue())
    snapshot = await build_off_loop(generation, process_above=0)
    assert snapshot.server_count == 5 and snapshot.stored_format == "served"
    # …whereas a catalogue that large goes to one.
    catalogue = StoredCatalog.create(catalogue_bytes(edge_catalogue()), revision="r", server_count=0)
    with pytest.raises(AssertionError, match="no child process"):
        await build_off_loop(catalogue, process_above=0)
