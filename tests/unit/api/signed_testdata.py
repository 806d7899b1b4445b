"""A signed generation of the edge catalogue, and an API server serving it (the signed-document tests)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from api_testdata import OneGeneration, catalogue_bytes, edge_catalogue
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mcpreg.catalog.served import served_documents
from mcpreg.signing import PrivateKeySigner, sign_documents
from mcpreg.storage.model import StoredCatalog
from mcpreg_api.app import LOADER, create_app
from mcpreg_api.config import AccessLogConfig, HttpConfig
from mcpreg_api.snapshot import served_form
from mcpreg_cli.main import main as cli


def new_signer() -> PrivateKeySigner:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return PrivateKeySigner.from_pem(pem)


def generation(signer: PrivateKeySigner | None) -> StoredCatalog:
    data = served_form(catalogue_bytes(edge_catalogue()))
    stored = StoredCatalog.create(data, revision="r1", server_count=5)
    return (
        stored
        if signer is None
        else replace(stored, signatures=sign_documents(signer, served_documents(data, stored.content_hash)))
    )


async def start(stored: StoredCatalog) -> TestClient[web.Request, web.Application]:
    app = create_app(OneGeneration(stored), config=HttpConfig(access_log=AccessLogConfig(enabled=False)))
    client = TestClient(TestServer(app))
    await client.start_server()
    await app[LOADER].wait_loaded()
    return client


async def verify(*args: str) -> int:
    """`mcpreg verify ARGS`' exit status (in a thread: it blocks on the server this loop runs)."""
    return await asyncio.to_thread(cli, ["verify", *args])
