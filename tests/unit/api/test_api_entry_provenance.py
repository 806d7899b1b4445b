"""Per-entry provenance on the API: every served entry names its digest and the signed entries manifest,
the manifest and its signature are served, and `mcpreg verify --entry` checks one entry with them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from api_testdata import edge_catalogue
from signed_testdata import generation, new_signer, start, verify

from mcpreg.catalog.provenance import PROVENANCE_META_KEY, EntriesManifest, canonical_entry, entry_digest
from mcpreg.signing import ENTRIES_DOCUMENT, load_public_key, verify_blob
from mcpreg_api.paths import ENTRIES_PATH, SIGNATURE_SUFFIX
from mcpreg_api.provenance import HEADER_GENERATION

Client = TestClient[web.Request, web.Application]
WEATHER = "/v0.1/servers/io.github.acme%2Fweather"


async def manifest_of(client: Client) -> EntriesManifest:
    response = await client.get(ENTRIES_PATH)
    assert response.status == 200
    return EntriesManifest.model_validate_json(await response.read())


def assert_provenance(entry: dict[str, Any], manifest: EntriesManifest, key_id: str) -> None:
    block = entry["_meta"][PROVENANCE_META_KEY]
    digest = entry_digest(canonical_entry(entry))
    assert block == {
        "digest": digest,
        "generation": manifest.generation,
        "keyId": key_id,
        "manifest": ENTRIES_PATH,
        "signature": ENTRIES_PATH + SIGNATURE_SUFFIX,
    }
    assert manifest.digest_of(entry["server"]["name"], entry["server"]["version"]) == digest


async def test_every_served_entry_carries_its_provenance_and_the_manifest_is_signed() -> None:
    signer = new_signer()
    stored = generation(signer)
    client = await start(stored)
    try:
        manifest = await manifest_of(client)
        assert manifest.generation == stored.content_hash
        assert len(manifest.entries) == len(edge_catalogue())
        signature = await client.get(ENTRIES_PATH + SIGNATURE_SUFFIX)
        assert signature.headers[HEADER_GENERATION] == stored.content_hash
        verify_blob(
            load_public_key(signer.public_key_pem.encode()),
            await signature.read(),
            await (await client.get(ENTRIES_PATH)).read(),
        )
        seen: set[tuple[str, str]] = set()
        for path in ("/v0.1/servers?limit=100", "/v0/servers?version=latest", f"{WEATHER}/versions"):
            for entry in (await (await client.get(path)).json())["servers"]:
                assert_provenance(entry, manifest, signer.key_id)
                seen.add((entry["server"]["name"], entry["server"]["version"]))
        for version in ("latest", "1.0.0", "1.0.0%2Bbuild"):
            response = await client.get(f"{WEATHER}/versions/{version}")
            assert response.status == 200
            assert_provenance(await response.json(), manifest, signer.key_id)
        assert len(seen) >= 5
    finally:
        await client.close()


async def test_without_a_signed_entries_manifest_entries_carry_no_provenance() -> None:
    # Unsigned; and signed by an operator older than per-entry provenance (no entries signature).
    signer = new_signer()
    old = generation(signer)
    assert old.signatures is not None
    documents = {k: v for k, v in old.signatures.documents.items() if k != ENTRIES_DOCUMENT}
    old = replace(old, signatures=old.signatures.model_copy(update={"documents": documents}))
    for stored, why in ((generation(None), "not signed"), (old, "older than per-entry provenance")):
        client = await start(stored)
        try:
            entry = await (await client.get(f"{WEATHER}/versions/latest")).json()
            assert PROVENANCE_META_KEY not in entry["_meta"]
            for path in (ENTRIES_PATH, ENTRIES_PATH + SIGNATURE_SUFFIX):
                response = await client.get(path)
                assert response.status == 404
                assert why in (await response.json())["detail"]
        finally:
            await client.close()


Tamper = Callable[[str, bytes], bytes]


async def tampering_proxy(upstream: Client, tamper: Tamper) -> Client:
    """A registry in front of `upstream` that changes what it relays (`tamper(path, body)`)."""

    async def relay(request: web.Request) -> web.Response:
        async with aiohttp.ClientSession() as session, session.get(upstream.make_url(request.path_qs)) as got:
            body = tamper(request.path, await got.read())
            return web.Response(status=got.status, body=body, content_type=got.content_type)

    app = web.Application()
    app.router.add_get("/{tail:.*}", relay)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    return client


def change_entry(path: str, body: bytes) -> bytes:
    if not path.startswith("/v0.1/servers/"):
        return body
    entry = json.loads(body)
    entry["server"]["remotes"] = [{"type": "streamable-http", "url": "https://attacker.example/mcp"}]
    return json.dumps(entry).encode()


def change_manifest_digest(path: str, body: bytes) -> bytes:
    if path != ENTRIES_PATH:
        return body
    manifest = json.loads(body)
    manifest["entries"][0]["digest"] = "sha256:" + "0" * 64
    return json.dumps(manifest, separators=(",", ":")).encode()


def drop_provenance(path: str, body: bytes) -> bytes:
    if not path.startswith("/v0.1/servers/"):
        return body
    entry = json.loads(body)
    del entry["_meta"][PROVENANCE_META_KEY]
    return json.dumps(entry).encode()


async def test_mcpreg_verify_entry_accepts_the_signed_entry_and_refuses_every_kind_of_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signer = new_signer()
    good_key, other_key = tmp_path / "good.pub", tmp_path / "other.pub"
    good_key.write_text(signer.public_key_pem)
    other_key.write_text(new_signer().public_key_pem)
    signed = await start(generation(signer))
    unsigned = await start(generation(None))
    proxies = [
        await tampering_proxy(signed, t) for t in (change_entry, change_manifest_digest, drop_provenance)
    ]
    try:
        base = str(signed.make_url("/"))
        for entry in (
            "io.github.acme/weather",
            "io.github.acme/weather@1.0.0+build",
            "com.example/zeta@3.1.4",
        ):
            assert await verify(base, "--key", str(good_key), "--entry", entry) == 0
            out = capsys.readouterr().out
            assert out.startswith("verified: ") and signer.key_id in out and "digest sha256:" in out

        async def refused(url: str, key: Path, entry: str, message: str, code: int = 1) -> None:
            assert await verify(url, "--key", str(key), "--entry", entry) == code
            err = capsys.readouterr().err
            assert message in err, err

        weather = "io.github.acme/weather"
        await refused(base, other_key, weather, "not with the given key")
        tampered, forged_manifest, stripped = (str(p.make_url("/")) for p in proxies)
        await refused(tampered, good_key, weather, "was changed after it was signed")
        await refused(forged_manifest, good_key, "com.example/zeta", "does not match")
        await refused(stripped, good_key, weather, "carries no _meta")
        await refused(str(unsigned.make_url("/")), good_key, weather, "does not sign its entries")
        await refused(base, good_key, "io.github.acme/absent", "HTTP 404", code=2)
        await refused(base, good_key, "@1.0.0", "give a server name", code=2)
        assert (
            await verify(base, "--key", str(good_key), "--entry", weather, "--signature", base + "x.sig") == 2
        )
    finally:
        for client in (*proxies, signed, unsigned):
            await client.close()
