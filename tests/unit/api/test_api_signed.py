"""The signed documents: served as signed, the signature beside each, the key, and `mcpreg verify`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from signed_testdata import generation, new_signer, start, verify

from mcpreg.catalog.served import served_documents
from mcpreg.signing import ENTRIES_DOCUMENT, load_public_key, sign_documents, verify_blob
from mcpreg_api.paths import ENTRIES_PATH, INFO_PATH, SIGNING_KEY_PATH, UPSTREAM_PATH
from mcpreg_api.provenance import HEADER_GENERATION, HEADER_KEY_ID, HEADER_SIGNATURE

TOOLHIVE_PATH = "/api/v1/registry"


async def test_each_signed_document_is_served_as_signed_with_its_signature_and_key() -> None:
    signer = new_signer()
    stored = generation(signer)
    client = await start(stored)
    try:
        key = await client.get(SIGNING_KEY_PATH)
        assert key.status == 200 and key.headers[HEADER_KEY_ID] == signer.key_id
        public = load_public_key(await key.read())
        for path in (TOOLHIVE_PATH, UPSTREAM_PATH, ENTRIES_PATH):
            for encoding in ("identity", "gzip"):  # gzip is only a transfer encoding of the signed bytes
                document = await client.get(path, headers={"Accept-Encoding": encoding})
                assert document.status == 200
                body = await document.read()
                assert document.headers[HEADER_GENERATION] == stored.content_hash
                assert document.headers[HEADER_KEY_ID] == signer.key_id
                verify_blob(public, document.headers[HEADER_SIGNATURE], body)
            signature = await client.get(path + ".sig")
            assert signature.status == 200 and signature.headers[HEADER_GENERATION] == stored.content_hash
            verify_blob(public, await signature.read(), body)
        info = await (await client.get(INFO_PATH)).json()
        assert info["signing"] == {
            "keyId": signer.key_id,
            "keyUrl": SIGNING_KEY_PATH,
            "documents": {path: path + ".sig" for path in (TOOLHIVE_PATH, UPSTREAM_PATH, ENTRIES_PATH)},
        }
    finally:
        await client.close()


async def test_an_unsigned_registry_says_so_on_the_signature_and_key_paths() -> None:
    client = await start(generation(None))
    try:
        for path in (
            TOOLHIVE_PATH + ".sig",
            UPSTREAM_PATH + ".sig",
            ENTRIES_PATH,
            ENTRIES_PATH + ".sig",
            SIGNING_KEY_PATH,
        ):
            response = await client.get(path)
            assert response.status == 404
            assert "not signed" in (await response.json())["detail"]
        document = await client.get(TOOLHIVE_PATH)
        assert HEADER_KEY_ID not in document.headers and HEADER_SIGNATURE not in document.headers
        assert (await (await client.get(INFO_PATH)).json())["signing"] is None
    finally:
        await client.close()


async def test_mcpreg_verify_exits_0_on_a_match_1_on_a_mismatch_or_no_signature_2_when_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signer = new_signer()
    good_key = tmp_path / "good.pub"
    good_key.write_text(signer.public_key_pem)
    other_key = tmp_path / "other.pub"
    other_key.write_text(new_signer().public_key_pem)
    signed = await start(generation(signer))
    unsigned = await start(generation(None))
    try:
        base = str(signed.make_url("/"))
        assert await verify(base, "--key", str(good_key)) == 0
        out = capsys.readouterr().out
        assert out.count("verified:") == 3 and signer.key_id in out  # two documents, the entries manifest
        assert "entries.json" in out
        assert await verify(str(signed.make_url(UPSTREAM_PATH)), "--key", str(good_key)) == 0
        assert await verify(base, "--key", str(other_key)) == 1
        assert "does not match" in capsys.readouterr().err
        # A signature of another document is a mismatch too (a tampered document looks alike).
        wrong = str(signed.make_url(UPSTREAM_PATH + ".sig"))
        assert (
            await verify(str(signed.make_url(TOOLHIVE_PATH)), "--key", str(good_key), "--signature", wrong)
            == 1
        )
        assert await verify(str(unsigned.make_url("/")), "--key", str(good_key)) == 1
        assert "serves no signature" in capsys.readouterr().err
        port = signed.port
    finally:
        await signed.close()
        await unsigned.close()
    assert await verify(f"http://127.0.0.1:{port}/", "--key", str(good_key), "--timeout", "2") == 2
    assert "cannot connect" in capsys.readouterr().err
    assert await verify("ftp://x/", "--key", str(good_key)) == 2
    assert await verify("http://127.0.0.1:1/", "--key", str(tmp_path / "absent.pub")) == 2


async def test_a_generation_signed_before_the_entries_manifest_still_verifies_as_a_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signer = new_signer()
    key = tmp_path / "key.pub"
    key.write_text(signer.public_key_pem)
    unsigned = generation(None)
    documents = served_documents(unsigned.data, unsigned.content_hash)
    del documents[ENTRIES_DOCUMENT]  # what an operator signed before per-entry provenance
    older = await start(replace(unsigned, signatures=sign_documents(signer, documents)))
    try:
        assert await verify(str(older.make_url("/")), "--key", str(key)) == 0
        out = capsys.readouterr().out
        assert out.count("verified:") == 2
        assert "not checked:" in out and "no entries manifest" in out
    finally:
        await older.close()
